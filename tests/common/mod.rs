//! What the command-line tests share: running the built binary, and where the checkout is.
//! (Each test binary compiles this module and uses part of it.)
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `nllspec` binary this test build made.
pub fn nllspec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args(args)
        .output()
        .expect("nllspec runs")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped nll_loss seed cases, a small real golden file: values with a gradient in every
/// float dtype, and errors.
pub fn seed() -> String {
    root()
        .join("golden/nll_loss/seed.json")
        .display()
        .to_string()
}
