//! A Helm-faithful Go `text/template` engine: the same template and values render to the bytes
//! Helm renders. Plugins (Helm-style charts) are rendered with it.
//!
//! ```
//! use midplane_template::{Templates, Options, Value};
//! let mut t = Templates::new(Options::default());
//! t.add("x", r#"port: {{ .Values.port }} name: {{ .Values.name | quote }}"#).unwrap();
//! let values = Value::from_yaml_str("Values: {port: 6379, name: redis}").unwrap();
//! assert_eq!(t.render("x", &values).unwrap(), r#"port: 6379 name: "redis""#);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod ast;
pub mod chart;
mod error;
mod eval;
mod exec;
pub mod funcs;
pub mod gofmt;
mod guard;
mod lexer;
mod object;
mod parser;
mod printf;
mod shared;
mod strvals;
mod token;
pub mod value;
pub mod values;
mod yaml_load;

pub use ast::Tree;
pub use error::{Error, ExecError};
pub use object::Object;
pub use value::Value;

/// Which Helm's behaviour to follow where Helm 3 and Helm 4 differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HelmMajor {
    /// Helm 3.17.
    V3,
    /// Helm 4.1, the current major.
    #[default]
    V4,
}

impl HelmMajor {
    /// `3` or `4` (as `--helm` takes it).
    pub fn parse(s: &str) -> Result<HelmMajor, Error> {
        match s.trim_start_matches('v') {
            "3" | "3.17" => Ok(HelmMajor::V3),
            "4" | "4.1" => Ok(HelmMajor::V4),
            _ => Err(Error::Chart(format!(
                "invalid argument {s:?} for \"--helm\" flag: want 3 or 4"
            ))),
        }
    }
}

/// What a missing map key evaluates to (Go's `missingkey` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// `missingkey=zero`, Helm's setting: a nil interface (`<no value>` when printed, an error when
    /// a field is taken from it).
    #[default]
    Zero,
    /// Go's default (`missingkey=invalid`).
    Invalid,
    /// `missingkey=error` (`helm template --strict`).
    Error,
}

/// Resource limits for untrusted templates. `None` switches a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of output of one render (and of each `include`/`tpl` result).
    pub max_output_bytes: Option<usize>,
    /// Nesting of `include`/`tpl` calls.
    pub max_include_depth: Option<usize>,
    /// Nesting of `{{template}}` calls.
    pub max_template_depth: Option<usize>,
    /// Total `range` iterations of one render.
    pub max_range_iterations: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output_bytes: Some(32 << 20),
            max_include_depth: Some(100),
            max_template_depth: Some(100),
            max_range_iterations: Some(1_000_000),
        }
    }
}

impl Limits {
    /// What Helm itself allows: `{{template}}` nests up to Go's 100,000 levels (render on a
    /// thread with a large stack), `include` to Helm's 1,000 per name, nothing else bounded.
    pub fn helm() -> Self {
        Limits {
            max_output_bytes: None,
            max_include_depth: None,
            max_template_depth: Some(100_000),
            max_range_iterations: None,
        }
    }

    /// Every limit off (Go's own behaviour; deep recursion can then exhaust the stack).
    pub fn none() -> Self {
        Limits {
            max_output_bytes: None,
            max_include_depth: None,
            max_template_depth: None,
            max_range_iterations: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub limits: Limits,
    /// Which Helm's function set and behaviour to follow.
    pub helm: HelmMajor,
    pub missing_key: MissingKey,
    /// Helm removes every `<no value>` from rendered output; plain Go keeps it.
    pub strip_no_value: bool,
    /// `--enable-dns`: `getHostByName` resolves names (else it returns "").
    pub enable_dns: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            helm: HelmMajor::V4,
            missing_key: MissingKey::Zero,
            strip_no_value: true,
            enable_dns: false,
        }
    }
}

impl Options {
    /// Plain Go text/template with `missingkey=zero` (what the conformance generator runs).
    pub fn go() -> Self {
        Options {
            limits: Limits::default(),
            helm: HelmMajor::V4,
            missing_key: MissingKey::Zero,
            strip_no_value: false,
            enable_dns: false,
        }
    }
}

type ParseCache = HashMap<(String, String), Arc<Vec<Arc<Tree>>>>;

/// A set of parsed templates sharing their `define`s, like Go's template tree set.
pub struct Templates {
    pub(crate) options: Options,
    pub(crate) trees: HashMap<String, Arc<Tree>>,
    tpl_cache: Mutex<ParseCache>,
}

const TPL_CACHE_MAX: usize = 512;

impl Templates {
    pub fn new(options: Options) -> Self {
        Templates {
            options,
            trees: HashMap::new(),
            tpl_cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Parses `source` as template `name`; its `define`s join the set (a later definition
    /// replaces an earlier one, an empty one never replaces a non-empty one).
    pub fn add(&mut self, name: &str, source: &str) -> Result<(), Error> {
        let helm = self.options.helm;
        let trees = parser::parse(name, source, &|n| funcs::exists_in(n, helm))?;
        for (i, tree) in trees.into_iter().enumerate() {
            let keep_old = i > 0 && tree.is_empty() && self.trees.contains_key(&tree.name);
            if !keep_old {
                self.trees.insert(tree.name.clone(), Arc::new(tree));
            }
        }
        Ok(())
    }

    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Names of all templates in the set (files and `define`s), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.trees.keys().cloned().collect();
        v.sort();
        v
    }

    /// Executes template `name` with `data` as dot.
    pub fn render(&self, name: &str, data: &Value) -> Result<String, Error> {
        self.render_tracking(name, data).map(|(out, _)| out)
    }

    /// Renders and also returns the maps that `set`/`merge` replaced (old, new), so a caller
    /// sharing values across renders (Helm shares `.Values` across a chart's files) can follow.
    pub(crate) fn render_tracking(
        &self,
        name: &str,
        data: &Value,
    ) -> Result<(String, Vec<(Value, Value)>), Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::ExecNoNode {
                name: name.to_string(),
                msg: format!(
                    "no template {} associated with template \"gotpl\"",
                    gofmt::quote(name)
                ),
            });
        };
        let mut ex = exec::Exec::new(self, tree.clone());
        ex.run(exec::Val::new(data.clone()))?;
        let mut out = ex.out;
        if self.options.strip_no_value && out.contains("<no value>") {
            out = out.replace("<no value>", "");
        }
        Ok((out, ex.replacements))
    }

    /// Parses a `tpl` string once per (name, source).
    pub(crate) fn parse_cached(&self, name: &str, src: &str) -> Result<Arc<Vec<Arc<Tree>>>, Error> {
        let key = (name.to_string(), src.to_string());
        if let Ok(cache) = self.tpl_cache.lock()
            && let Some(t) = cache.get(&key)
        {
            return Ok(t.clone());
        }
        let helm = self.options.helm;
        let trees: Vec<Arc<Tree>> = parser::parse(name, src, &|n| funcs::exists_in(n, helm))?
            .into_iter()
            .map(Arc::new)
            .collect();
        let trees = Arc::new(trees);
        if let Ok(mut cache) = self.tpl_cache.lock() {
            if cache.len() >= TPL_CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, trees.clone());
        }
        Ok(trees)
    }
}
