//! Renders `docs/api.md`, the gRPC API reference, from the compiled protos
//! (their descriptors and comments), so the reference cannot drift from the
//! contract: `tests/api_docs.rs` compares the committed file with this output.

use prost::Message;
use prost_types::source_code_info::Location;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet, field_descriptor_proto::Label, field_descriptor_proto::Type,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Command that regenerates the document.
pub const REGENERATE: &str = "MIDPLANE_BLESS=1 cargo test -p midplane-proto --test api_docs";

// Field numbers in descriptor.proto, the steps of a source location's path.
const FILE_PACKAGE: i32 = 2;
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED: i32 = 3;
const MESSAGE_ENUM: i32 = 4;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

/// Failures reading the compiled descriptors.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("decoding the descriptor set: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// Comments by source path, of one file.
struct Comments(BTreeMap<Vec<i32>, String>);

impl Comments {
    fn of(file: &FileDescriptorProto) -> Self {
        let mut map = BTreeMap::new();
        for loc in file.source_code_info.iter().flat_map(|i| i.location.iter()) {
            let text = comment_text(loc);
            if !text.is_empty() {
                map.insert(loc.path.clone(), text);
            }
        }
        Self(map)
    }

    fn at(&self, path: &[i32]) -> &str {
        self.0.get(path).map(String::as_str).unwrap_or_default()
    }
}

/// Leading then trailing comment, one space of indentation removed per line.
fn comment_text(loc: &Location) -> String {
    let mut parts = Vec::new();
    for c in [loc.leading_comments(), loc.trailing_comments()] {
        let lines: Vec<&str> = c
            .trim_end()
            .lines()
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect();
        let text = lines.join("\n");
        if !text.trim().is_empty() {
            parts.push(text.trim_matches('\n').to_string());
        }
    }
    parts.join("\n")
}

/// A comment on one table line.
fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn anchor(full_name: &str) -> String {
    full_name.replace('.', "").to_lowercase()
}

/// `.midplane.common.v1.ObjectRef` as a link, shortened inside `package`.
fn type_link(type_name: &str, package: &str, known: &BTreeMap<String, ()>) -> String {
    let full = type_name.trim_start_matches('.');
    let short = full
        .strip_prefix(&format!("{package}."))
        .unwrap_or(full)
        .to_string();
    if known.contains_key(full) {
        format!("[`{short}`](#{})", anchor(full))
    } else {
        format!("`{short}`")
    }
}

fn scalar(t: Type) -> &'static str {
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Group => "group",
        Type::Message => "message",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Enum => "enum",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
    }
}

struct Ctx<'a> {
    package: &'a str,
    known: &'a BTreeMap<String, ()>,
    /// Map entry messages by full name: (key type, value type).
    maps: &'a BTreeMap<String, (String, String)>,
}

fn field_type(f: &FieldDescriptorProto, ctx: &Ctx<'_>) -> String {
    let base = match f.r#type() {
        Type::Message | Type::Enum => {
            let full = f.type_name().trim_start_matches('.');
            if let Some((k, v)) = ctx.maps.get(full) {
                return format!("map<{k}, {v}>");
            }
            type_link(f.type_name(), ctx.package, ctx.known)
        }
        t => format!("`{}`", scalar(t)),
    };
    if f.label() == Label::Repeated {
        format!("repeated {base}")
    } else if f.proto3_optional() {
        format!("optional {base}")
    } else {
        base
    }
}

fn plain_type(f: &FieldDescriptorProto, package: &str) -> String {
    match f.r#type() {
        Type::Message | Type::Enum => {
            let full = f.type_name().trim_start_matches('.');
            full.strip_prefix(&format!("{package}."))
                .unwrap_or(full)
                .to_string()
        }
        t => scalar(t).to_string(),
    }
}

/// Every message and enum by full name; map entries by full name.
fn index(
    files: &[FileDescriptorProto],
) -> (BTreeMap<String, ()>, BTreeMap<String, (String, String)>) {
    fn walk(
        prefix: &str,
        package: &str,
        m: &DescriptorProto,
        known: &mut BTreeMap<String, ()>,
        maps: &mut BTreeMap<String, (String, String)>,
    ) {
        let full = format!("{prefix}.{}", m.name());
        if m.options.as_ref().is_some_and(|o| o.map_entry()) {
            let kv: Vec<String> = m.field.iter().map(|f| plain_type(f, package)).collect();
            if let [k, v] = kv.as_slice() {
                maps.insert(full, (k.clone(), v.clone()));
            }
            return;
        }
        known.insert(full.clone(), ());
        for e in &m.enum_type {
            known.insert(format!("{full}.{}", e.name()), ());
        }
        for n in &m.nested_type {
            walk(&full, package, n, known, maps);
        }
    }
    let mut known = BTreeMap::new();
    let mut maps = BTreeMap::new();
    for f in files {
        for m in &f.message_type {
            walk(f.package(), f.package(), m, &mut known, &mut maps);
        }
        for e in &f.enum_type {
            known.insert(format!("{}.{}", f.package(), e.name()), ());
        }
    }
    (known, maps)
}

fn write_enum(
    out: &mut String,
    full: &str,
    e: &EnumDescriptorProto,
    path: &[i32],
    comments: &Comments,
) {
    let _ = writeln!(
        out,
        "\n#### enum {}\n",
        full.rsplit('.').next().unwrap_or(full)
    );
    let _ = writeln!(out, "<a id=\"{}\"></a>`{full}`", anchor(full));
    let c = comments.at(path);
    if !c.is_empty() {
        let _ = writeln!(out, "\n{c}");
    }
    let _ = writeln!(
        out,
        "\n| value | number | description |\n| --- | --- | --- |"
    );
    for (i, v) in e.value.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([ENUM_VALUE, i as i32]);
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            v.name(),
            v.number(),
            one_line(comments.at(&p))
        );
    }
}

fn write_message(
    out: &mut String,
    prefix: &str,
    m: &DescriptorProto,
    path: &[i32],
    comments: &Comments,
    ctx: &Ctx<'_>,
) {
    if m.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let full = format!("{prefix}.{}", m.name());
    let shown = full
        .strip_prefix(&format!("{}.", ctx.package))
        .unwrap_or(&full);
    let _ = writeln!(out, "\n#### {shown}\n");
    let _ = writeln!(out, "<a id=\"{}\"></a>`{full}`", anchor(&full));
    let c = comments.at(path);
    if !c.is_empty() {
        let _ = writeln!(out, "\n{c}");
    }
    if m.field.is_empty() {
        let _ = writeln!(out, "\nNo fields.");
    } else {
        let _ = writeln!(
            out,
            "\n| field | number | type | description |\n| --- | --- | --- | --- |"
        );
        for (i, f) in m.field.iter().enumerate() {
            let mut p = path.to_vec();
            p.extend([MESSAGE_FIELD, i as i32]);
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                f.name(),
                f.number(),
                field_type(f, ctx),
                one_line(comments.at(&p))
            );
        }
    }
    for r in &m.reserved_range {
        let last = r.end() - 1;
        let range = if last == r.start() {
            r.start().to_string()
        } else {
            format!("{}–{last}", r.start())
        };
        let names = if m.reserved_name.is_empty() {
            String::new()
        } else {
            format!(" (`{}`)", m.reserved_name.join("`, `"))
        };
        let _ = writeln!(out, "\nReserved: {range}{names}, never reused.");
    }
    for (i, e) in m.enum_type.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([MESSAGE_ENUM, i as i32]);
        write_enum(out, &format!("{full}.{}", e.name()), e, &p, comments);
    }
    for (i, n) in m.nested_type.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([MESSAGE_NESTED, i as i32]);
        write_message(out, &full, n, &p, comments, ctx);
    }
}

fn write_file(out: &mut String, file: &FileDescriptorProto, ctx: &Ctx<'_>) {
    let comments = Comments::of(file);
    let pkg = file.package();
    let _ = writeln!(out, "\n## {pkg}\n");
    let _ = writeln!(out, "File: `proto/{}`", file.name());
    let c = comments.at(&[FILE_PACKAGE]);
    if !c.is_empty() {
        let _ = writeln!(out, "\n{c}");
    }
    for (si, s) in file.service.iter().enumerate() {
        let full = format!("{pkg}.{}", s.name());
        let _ = writeln!(out, "\n### service {}\n", s.name());
        let _ = writeln!(out, "<a id=\"{}\"></a>`{full}`", anchor(&full));
        let c = comments.at(&[FILE_SERVICE, si as i32]);
        if !c.is_empty() {
            let _ = writeln!(out, "\n{c}");
        }
        for (mi, m) in s.method.iter().enumerate() {
            let stream = |b: bool| if b { "stream " } else { "" };
            let _ = writeln!(out, "\n#### {}.{}\n", s.name(), m.name());
            let _ = writeln!(
                out,
                "`rpc {}({}{}) returns ({}{})` — request {}, response {}",
                m.name(),
                stream(m.client_streaming()),
                m.input_type().rsplit('.').next().unwrap_or_default(),
                stream(m.server_streaming()),
                m.output_type().rsplit('.').next().unwrap_or_default(),
                type_link(m.input_type(), pkg, ctx.known),
                type_link(m.output_type(), pkg, ctx.known),
            );
            let c = comments.at(&[FILE_SERVICE, si as i32, SERVICE_METHOD, mi as i32]);
            if !c.is_empty() {
                // "Errors:" starts a paragraph of its own.
                let _ = writeln!(out, "\n{}", c.replace("\nErrors", "\n\nErrors"));
            }
        }
    }
    if !file.message_type.is_empty() {
        let _ = writeln!(out, "\n### Messages of {pkg}");
    }
    for (i, m) in file.message_type.iter().enumerate() {
        write_message(out, pkg, m, &[FILE_MESSAGE, i as i32], &comments, ctx);
    }
    if !file.enum_type.is_empty() {
        let _ = writeln!(out, "\n### Enums of {pkg}");
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        write_enum(
            out,
            &format!("{pkg}.{}", e.name()),
            e,
            &[FILE_ENUM, i as i32],
            &comments,
        );
    }
}

/// The introduction: ports, auth, deadlines, health, reflection, load, the error model.
const PREAMBLE: &str = include_str!("preamble.md");
/// One word per concept across CRDs, protos and events.
const VOCABULARY: &str = include_str!("vocabulary.md");
const PACKAGE_ORDER: &[&str] = &[
    "midplane.app.v1",
    "midplane.group.v1",
    "midplane.plugin.v1",
    "midplane.backup.v1",
    "midplane.gateway.v1",
    "midplane.agent.v1",
    "midplane.common.v1",
];

/// `docs/api.md` from the compiled protos.
pub fn api_markdown() -> Result<String, DocsError> {
    let set = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET)?;
    let mut files: Vec<FileDescriptorProto> = set
        .file
        .into_iter()
        .filter(|f| f.package().starts_with("midplane."))
        .collect();
    // The public APIs first, then the internal ones, shared messages last.
    files.sort_by_key(|f| {
        let rank = PACKAGE_ORDER
            .iter()
            .position(|p| *p == f.package())
            .unwrap_or(PACKAGE_ORDER.len());
        (rank, f.package().to_string())
    });
    let (known, maps) = index(&files);
    let mut out = format!(
        "# Midplane gRPC API reference\n\n\
<!-- Generated from proto/ by `{REGENERATE}`. Do not edit by hand. -->\n\n"
    );
    out.push_str(PREAMBLE.replace("{DOMAIN}", crate::reason::DOMAIN).as_str());
    for (name, meaning) in crate::reason::ALL {
        let _ = writeln!(out, "| `{name}` | {meaning} |");
    }
    out.push_str(VOCABULARY);
    out.push_str("\n## Services\n\n| service | package | methods |\n| --- | --- | --- |\n");
    for f in &files {
        for s in &f.service {
            let full = format!("{}.{}", f.package(), s.name());
            let methods: Vec<String> = s.method.iter().map(|m| m.name().to_string()).collect();
            let _ = writeln!(
                out,
                "| [`{full}`](#{}) | `{}` | {} |",
                anchor(&full),
                f.package(),
                methods.join(", ")
            );
        }
    }
    for f in &files {
        let ctx = Ctx {
            package: f.package(),
            known: &known,
            maps: &maps,
        };
        write_file(&mut out, f, &ctx);
    }
    Ok(out)
}
