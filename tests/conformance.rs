//! `cargo test`'s conformance matrix: every golden case against native, the Candle reference
//! and candle-nn, each with its shipped expectations file. See nllspec::harness for naming and
//! strictness.

use nllspec::execution::Target;
use nllspec::impls::{candle::CandleReference, candle_nn::CandleNn, native::Native};

fn main() {
    let targets = [
        Target::shipped(Native),
        Target::shipped(CandleReference),
        Target::shipped(CandleNn),
    ];
    let targets = targets
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| {
            eprintln!("nllspec: {e}");
            std::process::exit(2)
        });
    nllspec::harness::main_targets(targets)
}
