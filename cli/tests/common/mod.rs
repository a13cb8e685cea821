//! What the `midplane dev` tests share.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Child;

/// `midplane dev`, killed if the test ends early.
pub struct Dev(pub Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
