//! Parser + executor over arbitrary bytes: `cargo +nightly fuzz run render -- -max_total_time=300`
#![no_main]

use libfuzzer_sys::fuzz_target;
use midplane_template::{Options, Templates, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let values = Value::from_yaml_str("Values: {a: 1, list: [1, x, null], m: {k: v}}\nTemplate: {Name: t, BasePath: b}\n")
        .expect("static values");
    let mut t = Templates::new(Options::default());
    if t.add("t", src).is_ok() {
        let _ = t.render("t", &values);
    }
});
