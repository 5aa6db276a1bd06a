//! Vectorised float64 log_softmax, over the contiguous last dim and over an outer dim.
//!
//! The same plan as the float32 kernels, in float64 throughout:
//!
//! - each difference `x_j - max` is made exact (TwoSum: its rounding error is folded into the
//!   exp's reduced argument), so the terms are within an ulp of `exp` of the true difference;
//! - `exp::exp64`: Cody-Waite reduction with a two-part ln 2 and a degree-13 polynomial, plain
//!   arithmetic that compiles to vector code (no libm call per element);
//! - the sum leaves the dominant element out and counts ties to the max instead of finding the
//!   argmax (`s = sum over x_j < max + (ties - 1)`), accumulated with TwoSum in every lane, so
//!   its error does not grow with the row length;
//! - `lse = log1p(s)` (`exp::log1p64`, vectorisable, within an ulp): the dominant element's
//!   log-probability `-log1p(s)` stays accurate when `s` is tiny;
//! - `out_j = (x_j - max) - lse`.
//!
//! Terms below `e^-708` are dropped (float64's exp range ends there); a row or lane whose sum is
//! small enough for them to count is recomputed by the scalar [`log_softmax_row`], which
//! uses libm's exp. The result: every element within a few ulp of a double-double computation
//! (`tests/properties.rs`).

use super::exp::{EXP_MIN, exp64, log1p64};
use super::lanes::{Lanes, split_lanes};
use super::scalar::{accumulate, log_softmax_row};
use super::simd::{MulAdd, dispatched};
use crate::tensor::as_uninit;
use std::mem::MaybeUninit;

/// Elements per step of the row loops (four AVX-512 registers of float64).
const LANES: usize = 32;

/// Lanes per tile of the outer-dim kernel: its scratch (five float64 a lane) and a tile of a
/// short class axis stay in L1.
const TILE: usize = 256;

/// The max of `x`, NaN skipped (`-inf` if none).
#[inline(always)]
fn max64(x: &[f64]) -> f64 {
    let mut acc = [f64::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter()
        .chain(tail)
        .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// One element's contribution to a row's sum: `(exp(v - m), 0)` below the max, `(0, 1)` at it.
/// NaN propagates; -inf and differences below [`EXP_MIN`] give 0.
#[inline(always)]
fn term<F: MulAdd>(v: f64, m: f64) -> (f64, f64) {
    let t = v - m;
    let bv = t - v;
    let err = (v - (t - bv)) + (-m - bv);
    let e = exp64::<F>(if t < EXP_MIN { EXP_MIN } else { t }, err);
    let tie = v == m;
    (
        if t < EXP_MIN || tie { 0.0 } else { e },
        if tie { 1.0 } else { 0.0 },
    )
}

/// A row's max and `s = sum over j != argmax of exp(x_j - max)`; no `s` when the row is NaN
/// by PyTorch's rules (+inf in it, or only -inf; a NaN in it makes `s` NaN, which has the same
/// effect).
#[inline(always)]
fn row_sum<F: MulAdd>(x: &[f64]) -> (f64, Option<f64>) {
    let m = max64(x);
    if !m.is_finite() {
        return (m, None);
    }
    let (mut s, mut c, mut ties) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for ch in chunks {
        for i in 0..LANES {
            let (e, tie) = term::<F>(ch[i], m);
            accumulate(&mut s[i], &mut c[i], e);
            ties[i] += tie;
        }
    }
    let (mut total, mut comp, mut tie_count) = (0.0, 0.0, -1.0);
    for &v in tail {
        let (e, tie) = term::<F>(v, m);
        accumulate(&mut total, &mut comp, e);
        tie_count += tie;
    }
    for i in 0..LANES {
        accumulate(&mut total, &mut comp, s[i]);
        comp += c[i];
        tie_count += ties[i];
    }
    (m, Some(total + (comp + tie_count)))
}

/// Whether a sum `s` of `len` terms is small enough for the dropped terms (below `e^-708`,
/// 3.3e-308 each) to reach 2^-60 of it.
#[inline(always)]
fn needs_libm(s: f64, len: usize) -> bool {
    s < len as f64 * 3.9e-290
}

#[inline(always)]
fn rows_body<F: MulAdd>(x: &[f64], out: &mut [MaybeUninit<f64>], len: usize) {
    for (row, o) in x.chunks(len).zip(out.chunks_mut(len)) {
        match row_sum::<F>(row) {
            (_, None) => o.fill(MaybeUninit::new(f64::NAN)),
            (_, Some(s)) if needs_libm(s, len) => {
                let mut exact = vec![0.0; len];
                log_softmax_row(row, &mut exact);
                o.iter_mut().zip(exact).for_each(|(o, v)| _ = o.write(v));
            }
            (m, Some(s)) => {
                let lse = log1p64::<F>(s);
                for (o, &v) in o.iter_mut().zip(row) {
                    o.write((v - m) - lse);
                }
            }
        }
    }
}

/// log_softmax of one `len x inner` block over its `len` axis, a tile of lanes at a time.
#[inline(always)]
fn block_body<F: MulAdd>(x: &[f64], out: &mut [MaybeUninit<f64>], len: usize, inner: usize) {
    let (mut m, mut s, mut c, mut ties) = (
        [0.0f64; TILE],
        [0.0f64; TILE],
        [0.0f64; TILE],
        [0.0f64; TILE],
    );
    for i0 in (0..inner).step_by(TILE) {
        let w = TILE.min(inner - i0);
        let lanes = |k: usize| k * inner + i0..k * inner + i0 + w;
        let (m, s, c, ties) = (&mut m[..w], &mut s[..w], &mut c[..w], &mut ties[..w]);
        m.fill(f64::NEG_INFINITY);
        for k in 0..len {
            for (m, &v) in m.iter_mut().zip(&x[lanes(k)]) {
                *m = if v > *m { v } else { *m };
            }
        }
        s.fill(0.0);
        c.fill(0.0);
        ties.fill(-1.0);
        for k in 0..len {
            for ((((s, c), tie_count), &m), &v) in s
                .iter_mut()
                .zip(c.iter_mut())
                .zip(ties.iter_mut())
                .zip(m.iter())
                .zip(&x[lanes(k)])
            {
                let (e, tie) = term::<F>(v, m);
                accumulate(s, c, e);
                *tie_count += tie;
            }
        }
        // s becomes the lane's lse: NaN for a lane NaN by PyTorch's rules, +inf for a lane the
        // scalar kernel must redo.
        let mut redo = false;
        for (((s, &c), &tie_count), &m) in s.iter_mut().zip(c.iter()).zip(ties.iter()).zip(m.iter())
        {
            let total = *s + (c + tie_count);
            let libm = needs_libm(total, len);
            redo |= libm & m.is_finite();
            *s = if !m.is_finite() {
                f64::NAN
            } else if libm {
                f64::INFINITY
            } else {
                log1p64::<F>(total)
            };
        }
        for k in 0..len {
            for (((o, &v), &m), &lse) in out[lanes(k)]
                .iter_mut()
                .zip(&x[lanes(k)])
                .zip(m.iter())
                .zip(s.iter())
            {
                o.write((v - m) - lse);
            }
        }
        if redo {
            let (mut row, mut o) = (vec![0.0; len], vec![0.0; len]);
            for q in (0..w).filter(|&q| s[q] == f64::INFINITY) {
                let at = |k: usize| k * inner + i0 + q;
                row.iter_mut().enumerate().for_each(|(k, r)| *r = x[at(k)]);
                log_softmax_row(&row, &mut o);
                o.iter()
                    .enumerate()
                    .for_each(|(k, &v)| _ = out[at(k)].write(v));
            }
        }
    }
}

dispatched!(rows, rows_body, (x: &[f64], out: &mut [MaybeUninit<f64>], len: usize));
dispatched!(block, block_body, (x: &[f64], out: &mut [MaybeUninit<f64>], len: usize, inner: usize));

/// log_softmax of an `outer x len x inner` float64 tensor over its `len` axis, into `out`
/// (rows or outer blocks spread over threads by `split_lanes`).
pub fn log_softmax_f64(x: &[f64], out: &mut [f64], lanes: Lanes) {
    // SAFETY: the kernel writes only values.
    log_softmax_f64_uninit(x, unsafe { as_uninit(out) }, lanes)
}

/// [`log_softmax_f64`] into uninitialised storage: every element of `out` is written.
pub fn log_softmax_f64_uninit(x: &[f64], out: &mut [MaybeUninit<f64>], lanes: Lanes) {
    let Lanes { len, inner, .. } = lanes;
    split_lanes(
        x,
        out,
        lanes,
        || (),
        |r, o, _| rows(r, o, len),
        |r, o, _| block(r, o, len, inner),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> i64 {
        (a.to_bits() as i64 - b.to_bits() as i64).abs()
    }

    fn scalar(x: &[f64], outer: usize, len: usize, inner: usize) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        super::super::log_softmax_scalar(x, super::super::Lanes { outer, len, inner }, &mut out);
        out
    }

    #[test]
    fn matches_the_scalar_kernel() {
        // rows and an outer dim, tails of every length, ties, -inf, a tiny sum redone with libm
        let mut x: Vec<f64> = (0..3 * 37 * 5)
            .map(|i| ((i * 7919 % 211) as f64 - 100.0) * 0.173)
            .collect();
        x[3] = x[4];
        x[10] = f64::NEG_INFINITY;
        for (outer, len, inner) in [
            (15, 37, 1),
            (3, 37, 5),
            (111, 5, 1),
            (1, 555, 1),
            (5, 3, 37),
        ] {
            let mut out = vec![0.0; x.len()];
            log_softmax_f64(&x, &mut out, Lanes { outer, len, inner });
            for (a, b) in out.iter().zip(scalar(&x, outer, len, inner)) {
                assert!(
                    ulps(*a, b) <= 2 || a == &b,
                    "{outer}x{len}x{inner}: {a} vs {b}"
                );
            }
        }
        // [0, -710]: the second term is below exp64's range; the row is redone with libm
        for inner in [1, 3] {
            let x: Vec<f64> = [0.0, -710.0]
                .iter()
                .flat_map(|&v| std::iter::repeat_n(v, inner))
                .collect();
            let mut out = vec![0.0; x.len()];
            log_softmax_f64(
                &x,
                &mut out,
                Lanes {
                    outer: 1,
                    len: 2,
                    inner,
                },
            );
            assert_eq!(out[0], -(-710f64).exp());
            assert!(out[0] < 0.0);
        }
    }

    #[test]
    fn non_finite_lanes_follow_torch() {
        // torch 2.15: [1, nan, 2] -> nan x3; [1, inf, 2] -> nan x3; [-inf, -inf] -> nan x2;
        // [-inf, 0] -> [-inf, 0]
        for inner in [1, 2] {
            for (row, want) in [
                (vec![1.0, f64::NAN, 2.0], vec![f64::NAN; 3]),
                (vec![1.0, f64::INFINITY, 2.0], vec![f64::NAN; 3]),
                (vec![f64::NEG_INFINITY; 2], vec![f64::NAN; 2]),
                (vec![f64::NEG_INFINITY, 0.0], vec![f64::NEG_INFINITY, 0.0]),
            ] {
                let x: Vec<f64> = row
                    .iter()
                    .flat_map(|&v| std::iter::repeat_n(v, inner))
                    .collect();
                let mut out = vec![0.0; x.len()];
                log_softmax_f64(
                    &x,
                    &mut out,
                    Lanes {
                        outer: 1,
                        len: row.len(),
                        inner,
                    },
                );
                for (k, w) in want.iter().enumerate() {
                    for i in 0..inner {
                        let o = out[k * inner + i];
                        assert!(
                            o == *w || (o.is_nan() && w.is_nan()),
                            "{row:?} inner {inner}: {out:?}"
                        );
                    }
                }
            }
        }
    }
}
