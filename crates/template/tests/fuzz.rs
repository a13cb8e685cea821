//! Bounded-time property test over the lexer, parser and executor: random templates built from
//! template fragments (valid and broken) must never panic, hang, or blow the stack.

use std::io::Write as _;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use midplane_template::{Options, Templates, Value};

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{-",
    " -}}",
    "{{ ",
    " }}",
    "{{/*",
    "*/}}",
    ".",
    ".Values",
    ".Values.a",
    ".Values.list",
    ".Release.Name",
    "$",
    "$x",
    "$x := ",
    "$x = ",
    "$i, $e := ",
    "|",
    "(",
    ")",
    " ",
    "\n",
    "\t",
    "if ",
    "else ",
    "else if ",
    "end",
    "range ",
    "with ",
    "define \"d\"",
    "template \"d\" .",
    "block \"b\" .",
    "break",
    "continue",
    "include \"d\" .",
    "tpl \"{{ .Values.a }}\" .",
    "\"str\"",
    "`raw`",
    "'c'",
    "1",
    "-2",
    "3.5",
    "1e6",
    "0x1F",
    "true",
    "nil",
    "printf",
    "\"%v %d %s\"",
    "print",
    "len",
    "index",
    "and",
    "or",
    "not",
    "eq",
    "lt",
    "default",
    "toYaml",
    "toJson",
    "fromYaml",
    "quote",
    "nindent 2",
    "indent 4",
    "upper",
    "list 1 2",
    "dict \"k\" 1",
    "until 5",
    "required \"m\"",
    "fail \"x\"",
    "semverCompare \">=1\"",
    "regexMatch \"a+\"",
    "trunc 3",
    "b64enc",
    "sha256sum",
    "set $x \"k\" 1",
    "merge",
    "add 1",
    "div 1 0",
    "slice",
    "repeat 3",
    "splitList \",\"",
    "join \",\"",
    "keys",
    "hasKey",
    "ternary 1 2",
    "text ",
    "a: b\n",
    "\"unterminated",
    "{{end}}",
    "{{ else }}",
    "}}}}",
    "{{{{",
    "\\",
    "é",
    "\u{0}",
    "- ",
    ": ",
    "&a ",
    "*a",
    "<<: ",
    "[",
    "]",
    "{",
    "}",
    "? ",
    "!!str ",
    "|\n  ",
    ">-\n",
    "'q'",
    "--- ",
    "#c\n",
    "yes",
    "0755",
];

fn random_template(rng: &mut Rng) -> String {
    let n = 1 + rng.below(40);
    let mut s = String::new();
    for _ in 0..n {
        if rng.below(20) == 0 {
            // raw bytes as chars
            s.push(char::from(rng.below(128) as u8));
        } else {
            s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
        }
    }
    s
}

fn data() -> Value {
    Value::from_yaml_str(
        "Values: {a: 1, list: [1, x, null], m: {k: v}}\nRelease: {Name: r}\nTemplate: {Name: t}\n",
    )
    .expect("static yaml")
}

#[test]
fn random_templates_never_panic_or_hang() {
    let budget = Duration::from_secs(
        std::env::var("MIDPLANE_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4),
    );
    let (tx, rx) = mpsc::channel::<(u64, String)>();
    let (done_tx, done_rx) = mpsc::channel::<(u64, usize, usize)>();
    let worker = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let data = data();
            let (mut ok, mut err) = (0usize, 0usize);
            for (seed, src) in rx {
                // the YAML reader (unsafe libyaml underneath) sees the same bytes
                let _ = Value::from_yaml_str(&src);
                let mut t = Templates::new(Options::default());
                let r = t.add("t", &src).and_then(|()| t.render("t", &data));
                if r.is_ok() {
                    ok += 1;
                } else {
                    err += 1;
                }
                if done_tx.send((seed, ok, err)).is_err() {
                    break;
                }
            }
        })
        .expect("spawn worker");
    let seed = std::env::var("MIDPLANE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15u64);
    let mut rng = Rng(seed | 1);
    let mut cases = 0u64;
    let (mut ok, mut err) = (0, 0);
    // deterministic nasty inputs first
    let mut fixed: Vec<String> = vec![
        "{{".repeat(10_000),
        "(".repeat(5_000),
        format!("{{{{ {} }}}}", "(".repeat(1_000)),
        "{{ if 1 }}".repeat(2_000),
        "{{ define \"r\" }}{{ include \"r\" . }}{{ end }}{{ include \"r\" . }}".to_string(),
        "{{ range $i := until 100000 }}{{ range until 100 }}x{{ end }}{{ end }}".to_string(),
        "{{ repeat 10000 \"x\" | repeat 10000 }}".to_string(),
        "[".repeat(10_000),
        "{{ $d := dict }}{{ range until 200000 }}{{ $d = dict \"k\" $d }}{{ end }}{{ len $d }}".to_string(),
        "{{ $d := list }}{{ range until 5000 }}{{ $d = list $d $d }}{{ end }}{{ $d | toYaml | len }}{{ $d | toJson | len }}{{ printf \"%v\" $d | len }}{{ has $d (list $d) }}".to_string(),
        "{{ $d := dict }}{{ range until 5000 }}{{ $d = dict \"k\" $d }}{{ end }}{{ $_ := merge $d $d }}{{ $d }}".to_string(),
        "a: &a [*a]".to_string(),
        "a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n".to_string(),
    ];
    fixed.reverse();
    let mut start = Instant::now();
    while start.elapsed() < budget || !fixed.is_empty() {
        if fixed.len() == 1 {
            // the random phase gets the whole budget, whatever the hostile inputs took
            start = Instant::now();
        }
        let src = fixed.pop().unwrap_or_else(|| random_template(&mut rng));
        let shown = src.chars().take(200).collect::<String>();
        tx.send((cases, src)).expect("worker alive");
        match done_rx.recv_timeout(Duration::from_secs(20)) {
            Ok((_, o, e)) => {
                ok = o;
                err = e;
            }
            Err(_) => panic!("no result within 20s (hang or panic) on input {shown:?}"),
        }
        cases += 1;
    }
    drop(tx);
    worker.join().expect("worker panicked");
    let _ = writeln!(
        std::io::stderr(),
        "fuzz: {cases} templates, {ok} rendered, {err} rejected with errors"
    );
    assert!(cases > 100, "fuzz ran too few cases: {cases}");
    assert!(
        ok > 0 && err > 0,
        "generator should produce both valid and invalid templates"
    );
}
