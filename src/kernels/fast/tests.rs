//! The float32 kernels against float64 references, per level.

use super::block::{Block, log_softmax_block_tiled};
use super::*;
use crate::kernels::simd::Plain;

#[test]
fn fused_and_plain_agree_within_an_ulp() {
    // The FMA and non-FMA compilations differ only in float64 roundings far below
    // float32's: their float32 results are equal or adjacent.
    let x: Vec<f32> = (0..1000)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.03)
        .collect();
    let mut a = vec![0.0f32; 1000];
    let mut b = vec![0.0f32; 1000];
    // SAFETY: the kernels write only values.
    log_softmax_rows_body::<Plain, f32>(&x, unsafe { as_uninit(&mut a) }, 1000);
    // SAFETY: the kernels write only values.
    log_softmax_rows(&x, unsafe { as_uninit(&mut b) }, 1000);
    for (p, q) in a.iter().zip(&b) {
        assert!(
            (p.to_bits() as i64 - q.to_bits() as i64).abs() <= 1,
            "{p} vs {q}"
        );
    }
}

#[test]
fn sums_below_float32_exp_range_are_redone_in_float64() {
    // log_softmax([50, -40])[0] = -log1p(e^-90) = -8.19e-40, a float32 subnormal that the
    // float32 exp (flushing below e^-87) alone would return as 0.
    let truth = -((-90f64).exp()) as f32;
    assert!(truth < 0.0);
    let mut o = [0.0f32; 2];
    log_softmax_f32(
        &[50.0, -40.0],
        &mut o,
        Lanes {
            outer: 1,
            len: 2,
            inner: 1,
        },
    );
    assert_eq!(o[0], truth);
    // the same pair along an outer dim, three lanes
    let x = [50.0, 50.0, 50.0, -40.0, -40.0, -40.0];
    let mut o = [0.0f32; 6];
    log_softmax_f32(
        &x,
        &mut o,
        Lanes {
            outer: 1,
            len: 2,
            inner: 3,
        },
    );
    assert_eq!(o[..3], [truth; 3]);
    // five classes (four of them summed with the float32 exp in the generic outer-dim
    // kernel), through the dispatch and through the generic kernel whatever the CPU
    let truth = -(4.0 * (-90f64).exp()) as f32;
    let x: Vec<f32> = (0..15).map(|i| if i < 3 { 50.0 } else { -40.0 }).collect();
    let mut o = [0.0f32; 15];
    log_softmax_f32(
        &x,
        &mut o,
        Lanes {
            outer: 1,
            len: 5,
            inner: 3,
        },
    );
    // the AVX-512 kernel rounds each term e^-90 to a float32 subnormal (vscalefps), four
    // of them: one subnormal step from the truth
    assert!(
        o[..3]
            .iter()
            .all(|v| (v.to_bits() as i64 - truth.to_bits() as i64).abs() <= 1),
        "{:?} vs {truth}",
        &o[..3]
    );
    let mut o = [0.0f32; 15];
    // SAFETY: the kernel writes only values.
    log_softmax_block_tiled::<Plain, f32>(
        &x,
        unsafe { as_uninit(&mut o) },
        5,
        3,
        &mut Block::default(),
    );
    assert_eq!(o[..3], [truth; 3]);
}

/// The kernels on a thread with half the stack of a test harness's (or a rayon worker's)
/// thread: the unoptimised build's frames must fit (the tiled AVX-512 outer-dim kernel once
/// took 1.6 MB and aborted the test process).
#[test]
fn kernels_run_on_a_1_mib_stack() {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            // rows; outer dims with a column (class stride 4 KiB), tiled without one (45
            // classes), one group at a time; 16-bit types; the fused loss's statistics
            for (outer, len, inner) in [(3, 1000, 1), (2, 21, 1024), (2, 45, 101), (2, 21, 37)] {
                let x: Vec<f32> = (0..outer * len * inner)
                    .map(|i| ((i * 7919 % 1009) as f32 - 500.0) * 0.02)
                    .collect();
                let mut y = vec![0.0f32; x.len()];
                log_softmax_f32(&x, &mut y, Lanes { outer, len, inner });
                assert!(y.iter().all(|v| v.is_finite() && *v <= 0.0));
                let xb: Vec<half::bf16> = x.iter().map(|&v| half::bf16::from_f32(v)).collect();
                let mut yb = vec![half::bf16::ZERO; x.len()];
                log_softmax_f32(&xb, &mut yb, Lanes { outer, len, inner });
                let xh: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
                let mut yh = vec![half::f16::ZERO; x.len()];
                log_softmax_f32(&xh, &mut yh, Lanes { outer, len, inner });
                assert_eq!(
                    lane_lse_f32(&x, Lanes { outer, len, inner }).len(),
                    outer * inner
                );
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn outer_dim_matches_last_dim() {
    // (3, 5, 4) over dim 1 equals the transposed rows over their last dim.
    let x: Vec<f32> = (0..60)
        .map(|i| ((i * 37 % 60) as f32) * 0.25 - 7.0)
        .collect();
    let mut out = vec![0.0; 60];
    log_softmax_f32(
        &x,
        &mut out,
        Lanes {
            outer: 3,
            len: 5,
            inner: 4,
        },
    );
    for o in 0..3 {
        for i in 0..4 {
            let row: Vec<f32> = (0..5).map(|c| x[(o * 5 + c) * 4 + i]).collect();
            let mut r = vec![0.0f32; 5];
            log_softmax_f32(
                &row,
                &mut r,
                Lanes {
                    outer: 1,
                    len: 5,
                    inner: 1,
                },
            );
            for c in 0..5 {
                // the row kernel sums with the float32 exp, the block kernel with float64
                let (a, b) = (out[(o * 5 + c) * 4 + i], r[c]);
                assert!(
                    (a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1,
                    "{a} vs {b}"
                );
            }
        }
    }
}
