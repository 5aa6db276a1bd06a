//! Burn's gate: one test per golden case (`cargo test -- burn/cross_entropy` filters), judged as
//! `nllspec run` judges, with Burn's known divergences in adapters/expectations/burn.json.
//! `NLLSPEC_WRITE_EXPECTATIONS=../expectations/burn.json cargo test --test nllspec` rewrites
//! that file from a run (nllspec::harness::WRITE_EXPECTATIONS).

fn main() {
    let expectations = concat!(env!("CARGO_MANIFEST_DIR"), "/../expectations/burn.json");
    let path = std::path::Path::new(expectations);
    nllspec::harness::main(nllspec_burn::Burn, path.exists().then_some(path));
}
