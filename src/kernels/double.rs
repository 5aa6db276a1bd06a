//! Vectorised float64 log_softmax, over the contiguous last dim and over an outer dim.
//!
//! The same plan as the float32 kernels, in float64 throughout:
//!
//! - each difference `x_j - max` is made exact (TwoSum: its rounding error is folded into the
//!   exp's reduced argument), so the terms are within an ulp of `exp` of the true difference;
//! - [`exp64`]: Cody-Waite reduction with a two-part ln 2 and a degree-13 polynomial, plain
//!   arithmetic that compiles to vector code (no libm call per element);
//! - the sum leaves the dominant element out and counts ties to the max instead of finding the
//!   argmax (`s = sum over x_j < max + (ties - 1)`), accumulated with TwoSum in every lane, so
//!   its error does not grow with the row length;
//! - `lse = log1p(s)` ([`log1p64`], vectorisable, within an ulp): the dominant element's
//!   log-probability `-log1p(s)` stays accurate when `s` is tiny;
//! - `out_j = (x_j - max) - lse`.
//!
//! Terms below `e^-708` are dropped (float64's exp range ends there); a row or lane whose sum is
//! small enough for them to count is recomputed by the scalar [`super::log_softmax_row`], which
//! uses libm's exp. The result: every element within a few ulp of a double-double computation
//! (`tests/properties.rs`).

use super::accumulate;
use super::fast::{Avx512, Fused, Level, MulAdd, Plain, dispatched, level, split_lanes};
use crate::tensor::as_uninit;
use std::mem::MaybeUninit;

/// Elements per step of the row loops (four AVX-512 registers of float64).
const LANES: usize = 32;

/// Lanes per tile of the outer-dim kernel: its scratch (five float64 a lane) and a tile of a
/// short class axis stay in L1.
const TILE: usize = 256;

/// Below this, a term `exp(t)` is dropped (`2^-1021`, the smallest power the bit trick builds).
const EXP_MIN: f64 = -708.0;

/// fdlibm's split of ln 2: `LN2_HI` has 32 significant bits, so `n * LN2_HI` is exact for
/// every exponent `n` of a float64 (the float64 kernels' exp and log, and the AVX-512 lanes').
pub(crate) const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
pub(crate) const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `exp(t)` for `EXP_MIN <= t <= 88`, `r_err` added to the reduced argument (the rounding error
/// of the difference `t` came from). Within an ulp for `t <= 0`, two above
/// (`exp64_is_accurate`). Outside the range the result is garbage: callers mask it.
#[inline(always)]
pub(crate) fn exp64<F: MulAdd>(t: f64, r_err: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // 1.5 * 2^52: adding it rounds to an integer kept in the low mantissa bits.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let k = F::mul_add(t, LOG2E, SHIFTER);
    let n = k - SHIFTER;
    let r = F::mul_add(-n, LN2_LO, F::mul_add(-n, LN2_HI, t)) + r_err;
    // e^r - 1 = r + r^2 q(r), q the Taylor coefficients 1/2! .. 1/13! (|r| <= 0.3466: the
    // remainder is below 4e-18 relative), Estrin's scheme for a short dependency chain.
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let c = |a: f64, b: f64| F::mul_add(r, b, a);
    let q01 = c(1.0 / 2.0, 1.0 / 6.0);
    let q23 = c(1.0 / 24.0, 1.0 / 120.0);
    let q45 = c(1.0 / 720.0, 1.0 / 5040.0);
    let q67 = c(1.0 / 40320.0, 1.0 / 362_880.0);
    let q89 = c(1.0 / 3_628_800.0, 1.0 / 39_916_800.0);
    let qab = c(1.0 / 479_001_600.0, 1.0 / 6_227_020_800.0);
    let q03 = F::mul_add(r2, q23, q01);
    let q47 = F::mul_add(r2, q67, q45);
    let q8b = F::mul_add(r2, qab, q89);
    let q = F::mul_add(r8, q8b, F::mul_add(r4, q47, q03));
    let em1 = F::mul_add(r2, q, r);
    // 2^n from the integer in k's low bits: (2^51 + n + 1023) << 52 drops the 2^51.
    let scale = f64::from_bits(k.to_bits().wrapping_add(1023) << 52);
    F::mul_add(em1, scale, scale)
}

/// `log(1 + s)` for `s >= 0` (NaN propagates), plain arithmetic that vectorises, within an ulp
/// (`log1p64_is_accurate`): `1 + s` is split into `2^e m` with its rounding error kept, and
/// `log m = 2 atanh((m - 1) / (m + 1))`, with `e ln 2` in two parts.
#[inline(always)]
pub(crate) fn log1p64<F: MulAdd>(s: f64) -> f64 {
    let y = 1.0 + s;
    // y's rounding error: log1p(s) = log(y) + c / y to first order.
    let c = (s - (y - 1.0)) / y;
    let bits = y.to_bits();
    let e = ((bits >> 52) as i64 - 1023) as f64;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let (m, e) = (if big { m * 0.5 } else { m }, if big { e + 1.0 } else { e });
    let f = m - 1.0;
    // z = f / (2 + f), and log m = 2z + 2z^3/3 + ... written as f - f^2/2 + z (f^2/2 + R(z^2))
    // (fdlibm's form: the large term f is exact, the correction small).
    let hfsq = 0.5 * f * f;
    let z = f / (2.0 + f);
    let w = z * z;
    let mut p = 1.0 / 23.0;
    for coef in [1.0 / 21.0, 1.0 / 19.0, 1.0 / 17.0, 1.0 / 15.0, 1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0] {
        p = F::mul_add(p, w, coef);
    }
    let r = 2.0 * w * p;
    // log m = f - hfsq + z (hfsq + r)
    let log_m = f - (hfsq - z * (hfsq + r));
    F::mul_add(e, LN2_HI, log_m + F::mul_add(e, LN2_LO, c))
}

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
    acc.iter().chain(tail).fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
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
    (if t < EXP_MIN || tie { 0.0 } else { e }, if tie { 1.0 } else { 0.0 })
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
                super::log_softmax_row(row, &mut exact);
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
    let (mut m, mut s, mut c, mut ties) = ([0.0f64; TILE], [0.0f64; TILE], [0.0f64; TILE], [0.0f64; TILE]);
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
            for ((((s, c), tie_count), &m), &v) in s.iter_mut().zip(c.iter_mut()).zip(ties.iter_mut()).zip(m.iter()).zip(&x[lanes(k)]) {
                let (e, tie) = term::<F>(v, m);
                accumulate(s, c, e);
                *tie_count += tie;
            }
        }
        // s becomes the lane's lse: NaN for a lane NaN by PyTorch's rules, +inf for a lane the
        // scalar kernel must redo.
        let mut redo = false;
        for (((s, &c), &tie_count), &m) in s.iter_mut().zip(c.iter()).zip(ties.iter()).zip(m.iter()) {
            let total = *s + (c + tie_count);
            let libm = needs_libm(total, len);
            redo |= libm & m.is_finite();
            *s = if !m.is_finite() { f64::NAN } else if libm { f64::INFINITY } else { log1p64::<F>(total) };
        }
        for k in 0..len {
            for (((o, &v), &m), &lse) in out[lanes(k)].iter_mut().zip(&x[lanes(k)]).zip(m.iter()).zip(s.iter()) {
                o.write((v - m) - lse);
            }
        }
        if redo {
            let (mut row, mut o) = (vec![0.0; len], vec![0.0; len]);
            for q in (0..w).filter(|&q| s[q] == f64::INFINITY) {
                let at = |k: usize| k * inner + i0 + q;
                row.iter_mut().enumerate().for_each(|(k, r)| *r = x[at(k)]);
                super::log_softmax_row(&row, &mut o);
                o.iter().enumerate().for_each(|(k, &v)| _ = out[at(k)].write(v));
            }
        }
    }
}

dispatched!(rows, rows_body, (x: &[f64], out: &mut [MaybeUninit<f64>], len: usize));
dispatched!(block, block_body, (x: &[f64], out: &mut [MaybeUninit<f64>], len: usize, inner: usize));

/// log_softmax of an `outer x len x inner` float64 tensor over its `len` axis, into `out`
/// (rows or outer blocks spread over threads by [`split_lanes`]).
pub fn log_softmax_f64(x: &[f64], out: &mut [f64], outer: usize, len: usize, inner: usize) {
    // SAFETY: the kernel writes only values.
    log_softmax_f64_uninit(x, unsafe { as_uninit(out) }, outer, len, inner)
}

/// [`log_softmax_f64`] into uninitialised storage: every element of `out` is written.
pub fn log_softmax_f64_uninit(x: &[f64], out: &mut [MaybeUninit<f64>], outer: usize, len: usize, inner: usize) {
    split_lanes(x, out, (outer, len, inner), || (), |r, o, _| rows(r, o, len), |r, o, _| block(r, o, len, inner));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> i64 {
        (a.to_bits() as i64 - b.to_bits() as i64).abs()
    }

    #[test]
    fn exp64_is_accurate() {
        // against libm's exp (itself within an ulp): the difference stays within 1 ulp
        let mut worst = 0;
        let mut t = 0.0f64;
        while t > EXP_MIN {
            for v in [exp64::<Plain>(t, 0.0), exp64::<Fused>(t, 0.0)] {
                worst = worst.max(ulps(v, t.exp()));
            }
            t -= 0.000_713_1;
        }
        assert!(worst <= 1, "worst {worst} ulp");
        // the positive range, which the outer-dim float32 kernel's scale back uses
        let mut worst = 0;
        let mut t = 0.0f64;
        while t <= 88.0 {
            for t in [t, t + 1e-3, t + 0.3466, t + 0.5, 88.0, 1e-300, 87.999] {
                worst = worst.max(ulps(exp64::<Fused>(t, 0.0), t.exp()));
            }
            t += 0.001_37;
        }
        assert!(worst <= 2, "worst {worst} ulp above 0");
        assert_eq!(exp64::<Fused>(0.0, 0.0), 1.0);
        assert!(exp64::<Fused>(f64::NAN, 0.0).is_nan());
        // the argument's rounding error is honoured: exp(t + 1e-17) for t = -1
        let (t, err) = (-1.0f64, 1e-17);
        let want = t.exp() * (1.0 + err);
        assert!(ulps(exp64::<Fused>(t, err), want) <= 1);
    }

    #[test]
    fn log1p64_is_accurate() {
        let mut worst = 0;
        let mut s = 1e-300f64;
        while s < 1e300 {
            for v in [log1p64::<Plain>(s), log1p64::<Fused>(s)] {
                worst = worst.max(ulps(v, s.ln_1p()));
            }
            s *= 1.000_37;
        }
        for s in [0.0, 1e-17, 1.1e-16, 2.2e-16, 0.4142, 0.41421356, 1.0, 31999.0] {
            worst = worst.max(ulps(log1p64::<Fused>(s), s.ln_1p()));
        }
        assert!(worst <= 1, "worst {worst} ulp");
        assert!(log1p64::<Fused>(f64::NAN).is_nan());
    }

    fn scalar(x: &[f64], outer: usize, len: usize, inner: usize) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        super::super::log_softmax_scalar(x, super::super::Lanes { outer, len, inner }, &mut out);
        out
    }

    #[test]
    fn matches_the_scalar_kernel() {
        // rows and an outer dim, tails of every length, ties, -inf, a tiny sum redone with libm
        let mut x: Vec<f64> = (0..3 * 37 * 5).map(|i| ((i * 7919 % 211) as f64 - 100.0) * 0.173).collect();
        x[3] = x[4];
        x[10] = f64::NEG_INFINITY;
        for (outer, len, inner) in [(15, 37, 1), (3, 37, 5), (111, 5, 1), (1, 555, 1), (5, 3, 37)] {
            let mut out = vec![0.0; x.len()];
            log_softmax_f64(&x, &mut out, outer, len, inner);
            for (a, b) in out.iter().zip(scalar(&x, outer, len, inner)) {
                assert!(ulps(*a, b) <= 2 || a == &b, "{outer}x{len}x{inner}: {a} vs {b}");
            }
        }
        // [0, -710]: the second term is below exp64's range; the row is redone with libm
        for inner in [1, 3] {
            let x: Vec<f64> = [0.0, -710.0].iter().flat_map(|&v| std::iter::repeat_n(v, inner)).collect();
            let mut out = vec![0.0; x.len()];
            log_softmax_f64(&x, &mut out, 1, 2, inner);
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
                let x: Vec<f64> = row.iter().flat_map(|&v| std::iter::repeat_n(v, inner)).collect();
                let mut out = vec![0.0; x.len()];
                log_softmax_f64(&x, &mut out, 1, row.len(), inner);
                for (k, w) in want.iter().enumerate() {
                    for i in 0..inner {
                        let o = out[k * inner + i];
                        assert!(o == *w || (o.is_nan() && w.is_nan()), "{row:?} inner {inner}: {out:?}");
                    }
                }
            }
        }
    }
}
