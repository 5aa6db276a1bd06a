//! `cargo test`'s conformance matrix: every golden case against native, the Candle reference
//! and candle-nn (with its expectations file). See nllspec::harness for naming and strictness.

use nllspec::golden::load::default_golden_dir;
use nllspec::harness::{Target, golden_paths_for, load_or_fail, trials};
use nllspec::impls::{candle::CandleReference, candle_nn::CandleNn, native::Native};
use nllspec::judge::expectations::Expectations;
use std::path::Path;

fn expectations(name: &str) -> Expectations {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/expectations").join(format!("{name}.json"));
    if !path.exists() {
        return Expectations::none(name);
    }
    Expectations::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let targets = [
        Target::new(Native, expectations("native")),
        Target::new(CandleReference, expectations("candle")),
        Target::new(CandleNn, expectations("candle-nn")),
    ];
    let trials = match load_or_fail(&golden_paths_for(&args, &default_golden_dir())) {
        Ok(cases) => trials(&targets, cases),
        Err(trial) => vec![trial],
    };
    libtest_mimic::run(&args, trials).exit()
}
