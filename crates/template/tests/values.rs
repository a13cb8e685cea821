//! Helm's values rules: coalescing with null-deletes, `-f` merging and `--set` parsing.

use midplane_template::values::{coalesce, merge_maps, parse_set};
use midplane_template::{Templates, Value};

fn y(s: &str) -> Value {
    Value::from_yaml_str(s).expect("yaml")
}

#[test]
fn coalesce_overrides_win_and_null_deletes() {
    let defaults = y("a: 1\nb: {c: 2, d: 3}\ne: [1, 2]\nf: keep\n");
    let user = y("a: 10\nb: {c: null, x: 9}\ne: [3]\nf: null\n");
    let got = coalesce(&defaults, &user);
    assert_eq!(
        got.to_json(),
        serde_json::json!({"a": 10.0, "b": {"d": 3.0, "x": 9.0}, "e": [3.0]})
    );
}

#[test]
fn merge_maps_merges_tables_and_replaces_lists() {
    let a = y("a: {b: 1, c: 2}\nl: [1, 2]\n");
    let b = y("a: {c: 3}\nl: [9]\n");
    assert_eq!(
        merge_maps(&a, &b).to_json(),
        serde_json::json!({"a": {"b": 1.0, "c": 3.0}, "l": [9.0]})
    );
}

#[test]
fn set_syntax_types_paths_and_lists() {
    let mut v = Value::empty_map();
    parse_set(
        "a.b=1,c=true,d=null,e=007,f={x,y},g[1]=z,h=a\\,b,i.j\\.k=v,n=",
        &mut v,
    )
    .expect("parse");
    assert_eq!(
        v.to_json(),
        serde_json::json!({
            "a": {"b": 1}, "c": true, "d": null, "e": "007", "f": ["x", "y"],
            "g": [null, "z"], "h": "a,b", "i": {"j.k": "v"}, "n": ""
        })
    );
    let err = parse_set("novalue", &mut v).expect_err("missing = must fail");
    assert!(
        err.to_string().contains("key \"novalue\" has no value"),
        "{err}"
    );
}

#[test]
fn set_values_are_ints_and_print_as_such() {
    // --set keeps int64 (Helm's strvals), values files give float64
    let mut v = Value::empty_map();
    parse_set("big=1000000", &mut v).expect("parse");
    let mut data = std::collections::BTreeMap::new();
    data.insert(
        "Values".to_string(),
        coalesce(&y("big: 1000000\nfile: 1000000\n"), &v),
    );
    let mut t = Templates::new(Default::default());
    t.add("t", "{{ .Values.big }} {{ .Values.file }}")
        .expect("parse");
    assert_eq!(
        t.render("t", &Value::map(data)).expect("render"),
        "1000000 1e+06"
    );
}

#[test]
fn templates_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
    assert_send_sync::<Value>();
}
