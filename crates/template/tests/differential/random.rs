//! Property-based differential cases: random values documents and random templates over them
//! (expressions nested through Sprig and Helm functions, if/with/range/variables, whitespace
//! trimming), rendered by Helm and Midplane; both must print the same, or fail the same way.
//!
//! The seed is fixed so CI is repeatable; `MIDPLANE_DIFF_SEED=N` explores another part of the
//! space and `MIDPLANE_DIFF_RANDOM=N` changes how many templates are tried.

use crate::functions::Case;

/// xorshift64*: small, seedable, good enough to pick grammar branches.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const WORDS: &[&str] = &[
    "redis",
    "Alpha",
    "beta gamma",
    "x-y_z",
    "",
    "yes",
    "on",
    "123",
    "1.5",
    "null",
    "a: b",
    "#hash",
    "  padded  ",
    "multi\\nline",
    "tab\\there",
    "ünï",
    "CamelCase",
    "snake_case",
    "\\\"q\\\"",
    "long text that keeps going for a while so the YAML emitter has to fold it somewhere",
];

/// A values document with typed leaves, and where each kind of leaf lives.
pub struct Values {
    pub yaml: String,
    strs: Vec<String>,
    nums: Vec<String>,
    bools: Vec<String>,
    lists: Vec<String>,
    maps: Vec<String>,
}

fn word(r: &mut Rng) -> String {
    r.pick(WORDS).to_string()
}

fn yaml_scalar(r: &mut Rng) -> String {
    match r.below(6) {
        0 => format!("{}", r.below(2000) as i64 - 500),
        1 => format!("{}.{}", r.below(100), r.below(1000)),
        2 => r.pick(&["true", "false"]).to_string(),
        3 => "null".into(),
        _ => format!("\"{}\"", word(r)),
    }
}

pub fn values(r: &mut Rng) -> Values {
    let mut v = Values {
        yaml: String::new(),
        strs: Vec::new(),
        nums: Vec::new(),
        bools: Vec::new(),
        lists: Vec::new(),
        maps: Vec::new(),
    };
    for i in 0..4 {
        v.yaml.push_str(&format!("s{i}: \"{}\"\n", word(r)));
        v.strs.push(format!(".Values.s{i}"));
        v.yaml
            .push_str(&format!("n{i}: {}\n", r.below(100_000) as i64 - 1000));
        v.nums.push(format!(".Values.n{i}"));
    }
    v.yaml
        .push_str(&format!("f0: {}.{}\n", r.below(50), r.below(99)));
    v.nums.push(".Values.f0".into());
    v.yaml.push_str("b0: true\nb1: false\n");
    v.bools.extend([".Values.b0".into(), ".Values.b1".into()]);
    for i in 0..2 {
        let items: Vec<String> = (0..r.below(5)).map(|_| yaml_scalar(r)).collect();
        v.yaml.push_str(&format!("l{i}: [{}]\n", items.join(", ")));
        v.lists.push(format!(".Values.l{i}"));
    }
    for i in 0..2 {
        v.yaml.push_str(&format!("m{i}:\n"));
        for k in 0..1 + r.below(4) {
            v.yaml.push_str(&format!("  k{k}: {}\n", yaml_scalar(r)));
        }
        v.yaml
            .push_str("  inner:\n    deep: \"x\"\n    list: [1, 2]\n");
        v.maps.push(format!(".Values.m{i}"));
        v.strs.push(format!(".Values.m{i}.inner.deep"));
    }
    // `.Values` itself is Helm's named map type (chartutil.Values / common.Values), which a
    // type error names; Midplane names it map[string]interface {} (README: known differences)
    v.maps.push("(omit .Values \"none\")".into());
    v
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    List,
    Map,
}

struct Gen<'a> {
    r: Rng,
    v: &'a Values,
    vars: Vec<&'static str>,
}

impl Gen<'_> {
    fn any(&mut self, d: usize) -> String {
        let k = *self.r.pick(&[
            Kind::Str,
            Kind::Str,
            Kind::Int,
            Kind::Bool,
            Kind::List,
            Kind::Map,
        ]);
        self.expr(k, d)
    }

    fn leaf(&mut self, k: Kind) -> String {
        let v = self.v;
        match k {
            Kind::Str => {
                if self.r.chance(50) {
                    self.r.pick(&v.strs).clone()
                } else {
                    format!("\"{}\"", word(&mut self.r))
                }
            }
            Kind::Int => {
                if self.r.chance(40) {
                    self.r.pick(&v.nums).clone()
                } else {
                    format!("{}", self.r.below(20))
                }
            }
            Kind::Bool => {
                if self.r.chance(50) {
                    self.r.pick(&v.bools).clone()
                } else {
                    self.r.pick(&["true", "false"]).to_string()
                }
            }
            Kind::List => self.r.pick(&v.lists).clone(),
            Kind::Map => self.r.pick(&v.maps).clone(),
        }
    }

    fn expr(&mut self, k: Kind, d: usize) -> String {
        if d == 0 || self.r.chance(30) {
            if !self.vars.is_empty() && self.r.chance(15) {
                return self.r.pick(&self.vars).to_string();
            }
            return self.leaf(k);
        }
        let d = d - 1;
        match k {
            Kind::Str => match self.r.below(24) {
                0 => format!("(upper {})", self.expr(Kind::Str, d)),
                1 => format!("(lower {})", self.expr(Kind::Str, d)),
                2 => format!("(trim {})", self.expr(Kind::Str, d)),
                3 => format!("(quote {})", self.any(d)),
                4 => format!("(squote {})", self.any(d)),
                5 => format!(
                    "(printf \"%v-%s\" {} {})",
                    self.any(d),
                    self.expr(Kind::Str, d)
                ),
                6 => format!("(toString {})", self.any(d)),
                7 => format!("(replace \"a\" \"_\" {})", self.expr(Kind::Str, d)),
                8 => format!("(trunc {} {})", self.r.below(8), self.expr(Kind::Str, d)),
                9 => format!("(default {} {})", self.expr(Kind::Str, d), self.any(d)),
                10 => format!("(join \",\" {})", self.expr(Kind::List, d)),
                11 => format!("(b64enc {})", self.expr(Kind::Str, d)),
                12 => format!("(sha256sum {} | trunc 8)", self.expr(Kind::Str, d)),
                13 => format!("(toYaml {})", self.any(d)),
                14 => format!("(toJson {})", self.any(d)),
                15 => format!("(nindent 2 {})", self.expr(Kind::Str, d)),
                16 => format!("(indent 3 {})", self.expr(Kind::Str, d)),
                17 => format!("(title {})", self.expr(Kind::Str, d)),
                18 => format!("(cat {} {})", self.any(d), self.any(d)),
                19 => format!(
                    "(ternary {} {} {})",
                    self.expr(Kind::Str, d),
                    self.expr(Kind::Str, d),
                    self.expr(Kind::Bool, d)
                ),
                20 => format!("(snakecase {})", self.expr(Kind::Str, d)),
                21 => format!("(camelcase {})", self.expr(Kind::Str, d)),
                22 => format!(
                    "(regexReplaceAll \"[aeiou]+\" {} \"<$0>\")",
                    self.expr(Kind::Str, d)
                ),
                _ => format!("({} | kebabcase)", self.expr(Kind::Str, d)),
            },
            Kind::Int => match self.r.below(7) {
                0 => format!("(len {})", self.expr(Kind::Str, d)),
                1 => format!(
                    "(add {} {})",
                    self.expr(Kind::Int, d),
                    self.expr(Kind::Int, d)
                ),
                2 => format!(
                    "(sub {} {})",
                    self.expr(Kind::Int, d),
                    self.expr(Kind::Int, d)
                ),
                3 => format!(
                    "(mul {} {})",
                    self.expr(Kind::Int, d),
                    self.expr(Kind::Int, d)
                ),
                4 => format!(
                    "(max {} {})",
                    self.expr(Kind::Int, d),
                    self.expr(Kind::Int, d)
                ),
                5 => format!("(int {})", self.expr(Kind::Int, d)),
                _ => format!("(len {})", self.expr(Kind::List, d)),
            },
            Kind::Bool => match self.r.below(7) {
                0 => format!(
                    "(eq {} {})",
                    self.expr(Kind::Str, d),
                    self.expr(Kind::Str, d)
                ),
                1 => format!("(and {} {})", self.expr(Kind::Bool, d), self.any(d)),
                2 => format!("(not {})", self.any(d)),
                3 => format!(
                    "(contains {} {})",
                    self.expr(Kind::Str, d),
                    self.expr(Kind::Str, d)
                ),
                4 => format!("(empty {})", self.any(d)),
                5 => format!("(hasKey {} \"k0\")", self.expr(Kind::Map, d)),
                _ => format!("(or {} {})", self.any(d), self.expr(Kind::Bool, d)),
            },
            Kind::List => match self.r.below(8) {
                0 => format!("(list {} {})", self.any(d), self.any(d)),
                1 => format!("(splitList \" \" {})", self.expr(Kind::Str, d)),
                2 => format!("(keys {} | sortAlpha)", self.expr(Kind::Map, d)),
                3 => format!("(until {})", self.r.below(6)),
                4 => format!("(append {} {})", self.expr(Kind::List, d), self.any(d)),
                5 => format!("(uniq {})", self.expr(Kind::List, d)),
                6 => format!("(compact {})", self.expr(Kind::List, d)),
                _ => format!("(reverse {})", self.expr(Kind::List, d)),
            },
            Kind::Map => match self.r.below(5) {
                0 => format!("(dict \"a\" {} \"b\" {})", self.any(d), self.any(d)),
                1 => format!("(pick {} \"k0\" \"inner\")", self.expr(Kind::Map, d)),
                2 => format!("(omit {} \"k1\")", self.expr(Kind::Map, d)),
                3 => format!("(deepCopy {})", self.expr(Kind::Map, d)),
                _ => format!("(fromYaml (toYaml {}))", self.expr(Kind::Map, d)),
            },
        }
    }

    fn block(&mut self, d: usize) -> String {
        let mut out = String::new();
        for _ in 0..1 + self.r.below(4) {
            out.push_str(&self.stmt(d));
        }
        out
    }

    fn stmt(&mut self, d: usize) -> String {
        let l = if self.r.chance(20) { "{{- " } else { "{{ " };
        let rt = if self.r.chance(20) { " -}}" } else { " }}" };
        match if d == 0 {
            self.r.below(3)
        } else {
            self.r.below(9)
        } {
            0 => format!("{}\n", word(&mut self.r).replace('\\', "")),
            1 | 2 => format!("{l}{}{rt}", self.any(3)),
            3 => format!(
                "{l}if {}{rt}{}{l}else{rt}{}{l}end{rt}",
                self.expr(Kind::Bool, 2),
                self.block(d - 1),
                self.block(d - 1)
            ),
            4 => format!("{l}with {}{rt}{{{{ toJson . }}}}{l}end{rt}", self.any(2)),
            5 => {
                self.vars.push("$v");
                let body = format!("[{{{{ $i }}}}]{}", self.block(d - 1));
                self.vars.pop();
                format!(
                    "{l}range $i, $v := {}{rt}{body}{l}else{rt}none{l}end{rt}",
                    self.expr(Kind::List, 2)
                )
            }
            6 => format!(
                "{l}range $k, $e := {}{rt}{{{{ $k }}}}={{{{ toJson $e }}}};{l}end{rt}",
                self.expr(Kind::Map, 2)
            ),
            7 => {
                let e = self.any(3);
                format!("{l}$x := {e}{rt}<{{{{ $x }}}}>")
            }
            _ => format!(
                "{l}{} | {}{rt}",
                self.expr(Kind::Str, 2),
                self.r
                    .pick(&["upper", "quote", "b64enc", "toYaml", "len", "nindent 4"])
            ),
        }
    }
}

/// `count` random cases in batches of up to 40 that share a values document.
pub fn cases(seed: u64, count: usize) -> Vec<Case> {
    let mut r = Rng::new(seed);
    let mut out = Vec::new();
    let mut n = 0;
    while n < count {
        let v = values(&mut r);
        let mut g = Gen {
            r: Rng::new(r.next()),
            v: &v,
            vars: Vec::new(),
        };
        for _ in 0..40.min(count - n) {
            out.push(Case {
                suite: "random".into(),
                name: format!("seed{seed}-{n}"),
                template: g.block(3),
                values: Some(v.yaml.clone()),
                error: false,
                only: None,
                shape: None,
                check: None,
                either: true,
            });
            n += 1;
        }
        r = Rng::new(g.r.next());
    }
    out
}
