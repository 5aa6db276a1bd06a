//! The float32 row kernels' portable pieces: plain Rust written for auto-vectorisation (lane
//! arrays, no branches in the hot loops), compiled per level by `simd::dispatched!`. The
//! AVX-512 level replaces some with explicit intrinsics (`super::kernel`).

use crate::kernels::elem::Elem;
use crate::kernels::exp::{exp_diff32, exp_neg};
use crate::kernels::simd::MulAdd;

/// Elements per step of the row loops: enough independent chains to hide the latency of
/// the exp polynomial (four AVX-512 registers of float64).
pub(crate) const LANES: usize = 32;

/// A row's max and the first position holding it. NaN elements are skipped here (a `>` is
/// false for them) and caught by the sum instead: `exp(NaN - max)` is NaN, so the row's
/// log-sum-exp, and every output, is NaN. A row of NaN only keeps `max = -inf`.
#[inline(always)]
pub(crate) fn row_max<E: Elem>(x: &[E]) -> (f32, usize) {
    let m = lanes_max(x);
    // The first position of the max, a chunk at a time (no early exit inside a chunk, so
    // that the comparison vectorises).
    let mut base = 0;
    for c in x.chunks(LANES) {
        if c.iter().fold(false, |hit, &v| hit | (v.to_f32() == m)) {
            return (
                m,
                base + c.iter().position(|&v| v.to_f32() == m).unwrap_or(0),
            );
        }
        base += c.len();
    }
    (m, 0)
}

/// The max of `x`, NaN skipped (`-inf` if none), in `LANES` running maxima.
#[inline(always)]
pub(crate) fn lanes_max<E: Elem>(x: &[E]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let v = c[i].to_f32();
            acc[i] = if v > acc[i] { v } else { acc[i] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for a in acc.into_iter().chain(tail.iter().map(|v| v.to_f32())) {
        if a > m {
            m = a;
        }
    }
    m
}

/// `sum of term(x_j)` with `LANES` float64 accumulators, added pairwise at the end.
#[inline(always)]
pub(crate) fn sum_terms<E: Elem>(x: &[E], term: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += term(c[i].to_f32());
        }
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0] + tail.iter().map(|&v| term(v.to_f32())).sum::<f64>()
}

/// `sum of exp(x_j - m)`: each chunk's 32 float32 terms are added four to a lane in float32
/// (as the AVX-512 kernel does) before 8 float64 accumulators take them, so that the exp runs
/// on full-width float32 vectors (a float64 accumulator per term made the compiler pair each
/// 4-lane float64 add with a 4-lane, half-width, float32 exp).
#[inline(always)]
pub(crate) fn sum_exp32_generic<F: MulAdd, E: Elem>(x: &[E], m: f32) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        let mut e = [0.0f32; LANES];
        for i in 0..LANES {
            e[i] = exp_diff32::<F>(c[i].to_f32(), m);
        }
        for i in 0..8 {
            acc[i] += ((e[i] + e[i + 8]) + (e[i + 16] + e[i + 24])) as f64;
        }
    }
    let head = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    head + tail
        .iter()
        .map(|&v| exp_diff32::<F>(v.to_f32(), m) as f64)
        .sum::<f64>()
}

#[inline(always)]
pub(crate) fn sum_exp<F: MulAdd, E: Elem>(x: &[E], m: f64) -> f64 {
    sum_terms(x, |v| exp_neg::<F>(v as f64 - m))
}
