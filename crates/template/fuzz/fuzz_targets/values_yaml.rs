//! The YAML values reader (libyaml events underneath): `cargo +nightly fuzz run values_yaml`
#![no_main]

use libfuzzer_sys::fuzz_target;
use midplane_template::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        if let Ok(v) = Value::from_yaml_str(src) {
            let _ = v.to_json();
        }
    }
});
