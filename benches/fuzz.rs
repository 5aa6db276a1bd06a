//! `nllspec fuzz`'s own speed: native judged against itself (the oracle and the implementation
//! under test both native), so that the oracle is never the bottleneck of a campaign. One
//! iteration is a campaign of 1000 cases: drawing each with proptest, running native twice,
//! judging. `cargo bench --bench fuzz`; cases/s = 1000 / the median.

use criterion::{Criterion, criterion_group, criterion_main};
use nllspec::fuzz::{Budget, FuzzOptions, fuzz};
use nllspec::impls::native::Native;
use std::time::Duration;

fn campaign(c: &mut Criterion) {
    let opts = FuzzOptions {
        seed: 7,
        budget: Budget::Cases(1000),
        shrink_budget: Duration::from_secs(1),
        torch_python: None,
    };
    c.bench_function("fuzz native vs native, 1000 cases", |b| {
        b.iter(|| {
            let r = fuzz(&Native, &opts, &mut |_| {});
            assert_eq!(r.findings.len(), 0);
            r.cases
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = campaign
}
criterion_main!(benches);
