//! Reading a chart's files as Helm's loader does: a directory walked in lexical order with the
//! top `.helmignore` applied to every path (subchart directories included, their own
//! `.helmignore` not), or a gzipped tar archive whose first path segment is dropped.

use std::io::Read;
use std::path::Path;

use crate::error::Error;

/// A chart file: its chart-relative path and bytes (a leading UTF-8 BOM removed).
pub type RawFile = (String, Vec<u8>);

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

fn strip_bom(mut data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(UTF8_BOM) {
        data.drain(..3);
    }
    data
}

/// One `.helmignore` rule (helm's pkg/ignore).
struct Rule {
    pattern: String,
    negate: bool,
    must_dir: bool,
    /// `/x`: matched against the whole path; `a/b`: the whole path; `x`: the base name only.
    whole_path: bool,
}

pub struct Rules(Vec<Rule>);

impl Rules {
    pub fn parse(text: &str) -> Result<Rules, Error> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let rule = line.trim();
            if rule.is_empty() || rule.starts_with('#') {
                continue;
            }
            if rule.contains("**") {
                return Err(Error::Chart(
                    "double-star (**) syntax is not supported".into(),
                ));
            }
            if go_match(rule, "abc").is_err() {
                return Err(Error::Chart("syntax error in pattern".into()));
            }
            let (negate, rule) = match rule.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, rule),
            };
            let (must_dir, rule) = match rule.strip_suffix('/') {
                Some(r) => (true, r),
                None => (false, rule),
            };
            let (whole_path, pattern) = if let Some(r) = rule.strip_prefix('/') {
                (true, r.to_string())
            } else {
                (rule.contains('/'), rule.to_string())
            };
            rules.push(Rule {
                pattern,
                negate,
                must_dir,
                whole_path,
            });
        }
        Ok(Rules(rules))
    }

    /// Helm's default rule: hidden files inside templates/.
    fn add_defaults(&mut self) {
        self.0.push(Rule {
            pattern: "templates/.?*".into(),
            negate: false,
            must_dir: false,
            whole_path: true,
        });
    }

    fn matches(rule: &Rule, path: &str) -> bool {
        let name = if rule.whole_path {
            path
        } else {
            path.rsplit('/').next().unwrap_or(path)
        };
        go_match(&rule.pattern, name).unwrap_or(false)
    }

    /// Rules.Ignore, negation quirks included.
    pub fn ignore(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        for r in &self.0 {
            if r.negate {
                if r.must_dir && !is_dir {
                    return true;
                }
                if !Self::matches(r, path) {
                    return true;
                }
                continue;
            }
            if r.must_dir && !is_dir {
                continue;
            }
            if Self::matches(r, path) {
                return true;
            }
        }
        false
    }
}

/// Go's path/filepath.Match with '/' as the separator; `Err` for a malformed pattern.
pub fn go_match(pattern: &str, name: &str) -> Result<bool, ()> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> Result<bool, ()> {
    if p.is_empty() {
        return Ok(n.is_empty());
    }
    match p[0] {
        '*' => {
            // a run of stars matches any run of non-separators
            let rest = &p[1..];
            let mut i = 0;
            loop {
                if match_from(rest, &n[i..])? {
                    return Ok(true);
                }
                if i >= n.len() || n[i] == '/' {
                    // a malformed rest must still be reported
                    check_pattern(rest)?;
                    return Ok(false);
                }
                i += 1;
            }
        }
        '?' => {
            if n.is_empty() || n[0] == '/' {
                check_pattern(&p[1..])?;
                return Ok(false);
            }
            match_from(&p[1..], &n[1..])
        }
        '[' => {
            let (matched, used) = match_class(&p[1..], n.first().copied())?;
            if !matched || n.is_empty() {
                check_pattern(&p[1 + used..])?;
                return Ok(false);
            }
            match_from(&p[1 + used..], &n[1..])
        }
        '\\' => {
            let Some(&c) = p.get(1) else { return Err(()) };
            if n.first() != Some(&c) {
                check_pattern(&p[2..])?;
                return Ok(false);
            }
            match_from(&p[2..], &n[1..])
        }
        c => {
            if n.first() != Some(&c) {
                check_pattern(&p[1..])?;
                return Ok(false);
            }
            match_from(&p[1..], &n[1..])
        }
    }
}

/// Parses a class after '[': (does `c` match, characters used including ']').
fn match_class(p: &[char], c: Option<char>) -> Result<(bool, usize), ()> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut n_ranges = 0;
    loop {
        if i < p.len() && p[i] == ']' && n_ranges > 0 {
            i += 1;
            break;
        }
        let (lo, used) = class_char(&p[i..])?;
        i += used;
        let mut hi = lo;
        if i < p.len() && p[i] == '-' {
            let (h, used) = class_char(&p[i + 1..])?;
            hi = h;
            i += 1 + used;
        }
        if let Some(ch) = c
            && lo <= ch
            && ch <= hi
        {
            matched = true;
        }
        n_ranges += 1;
    }
    Ok((matched != negated && c.is_some_and(|ch| ch != '/'), i))
}

fn class_char(p: &[char]) -> Result<(char, usize), ()> {
    match p.first() {
        None | Some('-' | ']') => Err(()),
        Some('\\') => p.get(1).map(|&c| (c, 2)).ok_or(()),
        Some(&c) => Ok((c, 1)),
    }
}

/// Validates the rest of a pattern (Go reports bad patterns even after a mismatch).
fn check_pattern(p: &[char]) -> Result<(), ()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(());
                }
                i += 2;
            }
            '[' => {
                let (_, used) = match_class(&p[i + 1..], None)?;
                i += 1 + used;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// LoadDir: every file under `dir` that the top `.helmignore` keeps.
pub fn read_dir(dir: &Path) -> Result<Vec<RawFile>, Error> {
    let mut rules = match std::fs::read_to_string(dir.join(".helmignore")) {
        Ok(text) => Rules::parse(&text)?,
        Err(_) => Rules(Vec::new()),
    };
    rules.add_defaults();
    let mut out = Vec::new();
    walk(dir, "", &rules, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, rel: &str, rules: &Rules, out: &mut Vec<RawFile>) -> Result<(), Error> {
    let io =
        |e: std::io::Error| Error::Chart(format!("{}: {}", dir.display(), super::go_io_error(&e)));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let n = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        // symlinks are followed, as sympath.Walk does
        let meta = std::fs::metadata(&path).map_err(io)?;
        if meta.is_dir() {
            if rules.ignore(&n, true) {
                continue;
            }
            walk(&path, &n, rules, out)?;
            continue;
        }
        if rules.ignore(&n, false) {
            continue;
        }
        if !meta.is_file() {
            return Err(Error::Chart(format!(
                "cannot load irregular file {} as it has file mode type bits set",
                path.display()
            )));
        }
        let data = std::fs::read(&path)
            .map_err(|e| Error::Chart(format!("error reading {n}: {}", super::go_io_error(&e))))?;
        out.push((n, strip_bom(data)));
    }
    Ok(())
}

/// http.DetectContentType for the cases a chart path can hit.
fn content_type(head: &[u8]) -> &'static str {
    if head.starts_with(b"\x1f\x8b\x08") {
        return "application/x-gzip";
    }
    if head.starts_with(b"PK\x03\x04") {
        return "application/zip";
    }
    if head.starts_with(b"\xef\xbb\xbf") {
        return "text/plain; charset=utf-8";
    }
    if head.starts_with(b"\xfe\xff") {
        return "text/plain; charset=utf-16be";
    }
    if head.starts_with(b"\xff\xfe") {
        return "text/plain; charset=utf-16le";
    }
    let binary = head.iter().any(|&b| {
        b <= 0x08 || b == 0x0b || (0x0e..=0x1a).contains(&b) || (0x1c..=0x1f).contains(&b)
    });
    if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// LoadFile's checks and LoadArchiveFiles: `name` is the path Helm prints in errors.
pub fn read_archive_file(path: &Path, name: &str) -> Result<Vec<RawFile>, Error> {
    let data = std::fs::read(path).map_err(|e| {
        Error::Chart(format!(
            "file '{name}' cannot be read: {}",
            super::go_io_error(&e)
        ))
    })?;
    let head = &data[..data.len().min(512)];
    let ct = content_type(head);
    if ct != "application/x-gzip" {
        if name.ends_with(".yml") || name.ends_with(".yaml") {
            return Err(Error::Chart(format!(
                "file '{name}' seems to be a YAML file, but expected a gzipped archive"
            )));
        }
        return Err(Error::Chart(format!(
            "file '{name}' does not appear to be a gzipped archive; got '{ct}'"
        )));
    }
    read_archive(&data)
}

/// LoadArchiveFiles: entries of a .tgz with the chart's own directory dropped from each path.
pub fn read_archive(data: &[u8]) -> Result<Vec<RawFile>, Error> {
    let gz = flate2::read::GzDecoder::new(data);
    let mut tar = tar::Archive::new(gz);
    let mut out = Vec::new();
    let entries = tar
        .entries()
        .map_err(|e| Error::Chart(format!("gzip: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Chart(e.to_string()))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let delim = if raw_name.contains('\\') { '\\' } else { '/' };
        let parts: Vec<&str> = raw_name.split(delim).collect();
        let n = parts[1..].join("/");
        if n.starts_with('/') {
            return Err(Error::Chart(
                "chart illegally contains absolute paths".into(),
            ));
        }
        let n = clean_path(&n);
        if n == "." {
            return Err(Error::Chart(format!(
                "chart illegally contains content outside the base directory: {raw_name:?}"
            )));
        }
        if n.starts_with("..") {
            return Err(Error::Chart(
                "chart illegally references parent directory".into(),
            ));
        }
        if parts[0] == "Chart.yaml" {
            return Err(Error::Chart("chart yaml not in base directory".into()));
        }
        let mut buf = Vec::new();
        entry
            .read_to_end(&mut buf)
            .map_err(|e| Error::Chart(e.to_string()))?;
        out.push((n, strip_bom(buf)));
    }
    if out.is_empty() {
        return Err(Error::Chart("no files in chart archive".into()));
    }
    Ok(out)
}

/// path.Clean.
fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|s| *s != "..") {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_follows_filepath_match() {
        assert_eq!(go_match("*.md", "README.md"), Ok(true));
        assert_eq!(go_match("*.md", "docs/README.md"), Ok(false));
        assert_eq!(go_match("a?c", "abc"), Ok(true));
        assert_eq!(go_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(go_match("[^a-c]x", "bx"), Ok(false));
        assert_eq!(go_match("\\*", "*"), Ok(true));
        assert!(go_match("[", "x").is_err());
        assert!(go_match("a[", "b").is_err());
    }

    #[test]
    fn helmignore_rules() {
        let r = Rules::parse("*.md\n/top.txt\ndocs/\n").expect("rules");
        assert!(r.ignore("charts/sub/README.md", false));
        assert!(r.ignore("top.txt", false));
        assert!(!r.ignore("sub/top.txt", false));
        assert!(r.ignore("charts/sub/docs", true));
        assert!(!r.ignore("docs", false));
    }
}
