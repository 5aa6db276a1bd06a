//! The allocating ops hand the kernels uninitialised storage (`tensor::written`) and rely on
//! them writing every element. Here each `*_uninit` kernel gets storage filled with a
//! signalling NaN, a bit pattern no arithmetic produces (it quiets NaNs), and no element may
//! keep it: rows and outer dims, partial vectors and tiles, rows of NaN, +inf and -inf (the
//! kernels' early paths), and inputs above the parallel threshold (split over threads).

use half::{bf16, f16};
use nllspec::kernels::double::log_softmax_f64_uninit;
use nllspec::kernels::fast::log_softmax_f32_uninit;
use nllspec::kernels::narrow::log_softmax_narrow_uninit;
use nllspec::kernels::{Lanes, PARALLEL_MIN};
use std::mem::MaybeUninit;

const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (3, 7, 1),
    (5, 1000, 1),
    (2, 17, 1),
    (2, 5, 37),
    (3, 21, 1024),
    (1, 3, 16 * 1024 + 5),
    (700, 300, 1),
    (6, 21, 1100),
];

/// Values of every kind: a NaN in the first lane, +inf in the second, -inf in the third,
/// otherwise finite values of mixed scale.
fn values(outer: usize, len: usize, inner: usize) -> Vec<f64> {
    let mut x: Vec<f64> = (0..outer * len * inner)
        .map(|i| ((i * 7919 % 1009) as f64 - 500.0) * 0.037)
        .collect();
    let at = |lane: usize, j: usize| (lane / inner * len + j) * inner + lane % inner;
    let lanes = outer * inner;
    for (lane, v) in [(0, f64::NAN), (1, f64::INFINITY), (2, f64::NEG_INFINITY)] {
        if lane < lanes {
            x[at(lane, len - 1)] = v;
        }
    }
    x
}

fn check<T: Copy>(
    name: &str,
    sentinel: T,
    bits: impl Fn(T) -> u64,
    run: impl Fn(&[f64], &mut [MaybeUninit<T>], Lanes),
) {
    let mut checked_parallel = false;
    for (outer, len, inner) in SHAPES {
        let x = values(outer, len, inner);
        checked_parallel |= x.len() >= PARALLEL_MIN;
        let mut out = vec![MaybeUninit::new(sentinel); x.len()];
        run(&x, &mut out, Lanes { outer, len, inner });
        for (i, o) in out.iter().enumerate() {
            // SAFETY: every element was initialised with the sentinel, at least.
            let v = unsafe { o.assume_init() };
            assert!(
                bits(v) != bits(sentinel),
                "{name} {outer}x{len}x{inner}: element {i} not written"
            );
        }
    }
    assert!(checked_parallel, "a shape above the parallel threshold");
}

#[test]
fn every_output_element_is_written() {
    check(
        "float32",
        f32::from_bits(0x7fa5_a5a5),
        |v| v.to_bits() as u64,
        |x, out, lanes| {
            let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            log_softmax_f32_uninit(&x, out, lanes)
        },
    );
    check(
        "float64",
        f64::from_bits(0x7ff4_a5a5_a5a5_a5a5),
        f64::to_bits,
        log_softmax_f64_uninit,
    );
    check(
        "float16",
        f16::from_bits(0x7d5a),
        |v| v.to_bits() as u64,
        |x, out, lanes| {
            let x: Vec<f16> = x.iter().map(|&v| f16::from_f64(v)).collect();
            log_softmax_narrow_uninit(&x, out, lanes)
        },
    );
    check(
        "bfloat16",
        bf16::from_bits(0x7f85),
        |v| v.to_bits() as u64,
        |x, out, lanes| {
            let x: Vec<bf16> = x.iter().map(|&v| bf16::from_f64(v)).collect();
            log_softmax_narrow_uninit(&x, out, lanes)
        },
    );
}
