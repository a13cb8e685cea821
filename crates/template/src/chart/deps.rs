//! Helm's dependency processing and value coalescing (chartutil's dependencies.go and
//! coalesce.go): which subcharts are enabled (tags, conditions), aliases, `import-values`, and
//! how chart defaults, subchart sections and globals combine with the user's values.

use std::collections::BTreeMap;

use super::load::Chart;
use super::meta::Dependency;
use crate::error::Error;
use crate::funcs::semver_range_matches;
use crate::value::Value;

pub use super::coalesce::coalesce_values;
use super::coalesce::merge_values;

type Map = BTreeMap<String, Value>;

fn as_map(v: &Value) -> Option<&Map> {
    v.as_map()
}

/// CheckDependencies: every dependency in Chart.yaml must be present under charts/.
pub fn check_dependencies(c: &Chart) -> Result<(), String> {
    let missing: Vec<&str> = c
        .metadata
        .dependencies
        .iter()
        .flatten()
        .filter(|r| !c.dependencies.iter().any(|d| d.name() == r.name))
        .map(|r| r.name.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "found in Chart.yaml, but missing in charts/ directory: {}",
            missing.join(", ")
        ))
    }
}

fn compatible(constraint: &str, version: &str) -> bool {
    semver_range_matches(constraint, version).unwrap_or(false)
}

/// getAliasDependency: the loaded chart a dependency entry refers to, renamed to its alias.
fn alias_dependency(charts: &[Chart], dep: &Dependency) -> Option<Chart> {
    let c = charts
        .iter()
        .find(|c| c.name() == dep.name && compatible(&dep.version, &c.metadata.version))?;
    let mut out = c.clone();
    if !dep.alias.is_empty() {
        out.metadata.name = dep.alias.clone();
    }
    Some(out)
}

/// ProcessDependenciesWithMerge: enabled subcharts, then imported values.
pub fn process(c: &mut Chart, user: &Value) -> Result<(), Error> {
    process_enabled(c, user, "")?;
    process_import_values(c)?;
    set_paths(c, None);
    Ok(())
}

fn set_paths(c: &mut Chart, parent: Option<&str>) {
    c.full_path = match parent {
        Some(p) => format!("{p}/charts/{}", c.metadata.name),
        None => c.metadata.name.clone(),
    };
    let me = c.full_path.clone();
    for d in &mut c.dependencies {
        set_paths(d, Some(&me));
    }
}

fn process_enabled(c: &mut Chart, v: &Value, path: &str) -> Result<(), Error> {
    let Some(reqs) = c.metadata.dependencies.clone() else {
        return Ok(());
    };
    let mut reqs = reqs;
    // subcharts not named in Chart.yaml come first, then the named ones in Chart.yaml order
    let mut deps: Vec<Chart> = c
        .dependencies
        .iter()
        .filter(|existing| {
            !reqs.iter().any(|r| {
                existing.name() == r.name && compatible(&r.version, &existing.metadata.version)
            })
        })
        .cloned()
        .collect();
    for r in &mut reqs {
        if let Some(d) = alias_dependency(&c.dependencies, r) {
            deps.push(d);
        }
        if !r.alias.is_empty() {
            r.name = r.alias.clone();
        }
    }
    c.dependencies = deps;
    for r in &mut reqs {
        r.enabled = true;
    }
    let cvals = coalesce_values(c, v)?;
    process_tags(&mut reqs, &cvals);
    process_conditions(&mut reqs, &cvals, path);
    let removed: Vec<String> = reqs
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.clone())
        .collect();
    c.dependencies
        .retain(|d| !removed.contains(&d.metadata.name));
    reqs.retain(|r| !removed.contains(&r.name));
    for d in &mut c.dependencies {
        let sub = format!("{path}{}.", d.metadata.name);
        process_enabled(d, &cvals, &sub)?;
    }
    // Helm appends to a nil slice: nothing left is nil again
    c.metadata.dependencies = if reqs.is_empty() { None } else { Some(reqs) };
    Ok(())
}

fn process_tags(reqs: &mut [Dependency], cvals: &Value) {
    let Some(Value::Map(tags)) = cvals.path("tags") else {
        return;
    };
    for r in reqs.iter_mut() {
        let (mut has_true, mut has_false) = (false, false);
        for k in &r.tags {
            if let Some(Value::Bool(b)) = tags.get(k) {
                if *b {
                    has_true = true;
                } else {
                    has_false = true;
                }
            }
        }
        if !has_true && has_false {
            r.enabled = false;
        } else if has_true || !has_false {
            r.enabled = true;
        }
    }
}

fn process_conditions(reqs: &mut [Dependency], cvals: &Value, path: &str) {
    for r in reqs.iter_mut() {
        for cond in r.condition.trim().split(',') {
            if cond.is_empty() {
                continue;
            }
            if let Some(Value::Bool(b)) = path_value(cvals, &format!("{path}{cond}")) {
                r.enabled = b;
                break;
            }
        }
    }
}

/// Values.PathValue: a non-table value at a dotted path.
fn path_value(v: &Value, path: &str) -> Option<Value> {
    let parts: Vec<&str> = path.split('.').collect();
    let (last, tables) = parts.split_last()?;
    let mut cur = v;
    for p in tables {
        cur = as_map(cur)?.get(*p)?;
    }
    match as_map(cur)?.get(*last)? {
        Value::Map(_) => None,
        other => Some(other.clone()),
    }
}

fn process_import_values(c: &mut Chart) -> Result<(), Error> {
    for d in &mut c.dependencies {
        process_import_values(d)?;
    }
    if c.metadata.dependencies.is_none() {
        return Ok(());
    }
    let cvals = merge_values(c, &Value::empty_map())?;
    // Go's maps are references: an imported table stays the child's own map, so later imports
    // merged into it show up in the child's values too. The arena keeps that sharing.
    let mut heap = Heap::default();
    let root = heap.load(&cvals);
    let b = heap.new_map();
    let Some(reqs) = c.metadata.dependencies.as_mut() else {
        return Ok(());
    };
    for r in reqs.iter_mut() {
        let mut out = Vec::new();
        for iv in &r.import_values {
            let (child, parent) = match iv {
                Value::Map(m) => (
                    m.get("child").map(crate::funcs::strval).unwrap_or_default(),
                    m.get("parent")
                        .map(crate::funcs::strval)
                        .unwrap_or_default(),
                ),
                Value::String(s) => (format!("exports.{s}"), ".".to_string()),
                _ => continue,
            };
            out.push(child_parent(&child, &parent));
            let Some(vv) = heap.table(root, &format!("{}.{child}", r.name)) else {
                continue;
            };
            let src = heap.path_to_map(&parent, vv);
            heap.merge(b, src);
        }
        r.import_values = out;
    }
    heap.merge(root, b);
    c.values = heap.value(root);
    Ok(())
}

/// Maps with Go's reference semantics, for import-values.
#[derive(Default)]
struct Heap {
    maps: Vec<BTreeMap<String, Slot>>,
}

#[derive(Clone)]
enum Slot {
    Map(usize),
    Other(Value),
}

impl Heap {
    fn new_map(&mut self) -> usize {
        self.maps.push(BTreeMap::new());
        self.maps.len() - 1
    }

    fn load(&mut self, v: &Value) -> usize {
        let id = self.new_map();
        if let Value::Map(m) = v {
            for (k, e) in m.iter() {
                let slot = match e {
                    Value::Map(_) => Slot::Map(self.load(e)),
                    other => Slot::Other(other.clone()),
                };
                self.maps[id].insert(k.clone(), slot);
            }
        }
        id
    }

    fn value(&self, id: usize) -> Value {
        Value::map(
            self.maps[id]
                .iter()
                .map(|(k, s)| {
                    let v = match s {
                        Slot::Map(m) => self.value(*m),
                        Slot::Other(v) => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        )
    }

    /// Values.Table.
    fn table(&self, root: usize, path: &str) -> Option<usize> {
        let mut cur = root;
        for p in path.split('.') {
            match self.maps[cur].get(p)? {
                Slot::Map(m) => cur = *m,
                Slot::Other(_) => return None,
            }
        }
        Some(cur)
    }

    fn path_to_map(&mut self, path: &str, data: usize) -> usize {
        if path == "." {
            return data;
        }
        let mut cur = data;
        for p in path.split('.').rev() {
            let id = self.new_map();
            self.maps[id].insert(p.to_string(), Slot::Map(cur));
            cur = id;
        }
        cur
    }

    /// MergeTables (coalesceTablesFullKey with merge): `dst` wins, its maps are reused.
    fn merge(&mut self, dst: usize, src: usize) {
        if dst == src {
            return;
        }
        let nils: Vec<String> = self.maps[dst]
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Other(Value::Nil)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in nils {
            self.maps[src].insert(k, Slot::Other(Value::Nil));
        }
        let entries: Vec<(String, Slot)> = self.maps[src]
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        for (k, val) in entries {
            match (self.maps[dst].get(&k).cloned(), val) {
                (None, val) => {
                    self.maps[dst].insert(k, val);
                }
                (Some(Slot::Map(d)), Slot::Map(s)) => self.merge(d, s),
                _ => {}
            }
        }
    }
}

fn child_parent(child: &str, parent: &str) -> Value {
    let mut m = Map::new();
    m.insert("child".into(), Value::from(child));
    m.insert("parent".into(), Value::from(parent));
    Value::map(m)
}

/// The values each chart's templates see: the root's coalesced values, and for a subchart
/// its parent's section named after it.
pub fn scoped(parent: &Value, name: &str) -> Value {
    match parent.as_map().and_then(|m| m.get(name)) {
        Some(v @ Value::Map(_)) => v.clone(),
        _ => Value::empty_map(),
    }
}
