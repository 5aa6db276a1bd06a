//! Fast float32 kernels: log_softmax over the contiguous last dim or over an outer dim, and a
//! fused cross_entropy forward that never writes log-probabilities. They read and write any
//! [`Elem`] (float32, float16, bfloat16) and compute in float32; the 16-bit types take them
//! where AVX-512 converts in registers ([`super::narrow::in_registers`]).
//!
//! Accuracy first, then speed. Each row is read three times at most (max, sum, write):
//!
//! - `s = sum over j != argmax of exp(x_j - max)`: the difference `x_j - max` is kept exact
//!   (its rounding error folded into the exp's argument), each term is within about an ulp,
//!   and the terms are accumulated in float64 lanes, so the sum's error does not grow with the
//!   row length. Rows whose sum is so small that terms below float32's exp range could count
//!   are summed again with the float64 `exp_neg`.
//! - `lse = log1p(s)` ([`super::double::log1p64`]): the dominant element's log-probability is `-log1p(s)`,
//!   which stays accurate when `s` is tiny (PyTorch's `log(1 + s)` rounds it to 0);
//! - `out_j = x_j - max - lse`, rounded once to float32.
//!
//! Every element is then within an ulp or two of the correctly rounded result (the property
//! test allows 4; the measured maximum is 1).
//!
//! Where the CPU has AVX-512 the hot loops are explicit intrinsics (`kernels/avx512.rs`: a
//! table-driven exp, masked tails, the next row's max and min read in the sum loop, 16-lane
//! outer-dim blocks, float32 writes with an exact split of `max + lse`). Elsewhere they are
//! the plain Rust here, written for auto-vectorisation (lane arrays, no branches in the hot
//! loops, integer bit tricks instead of float-to-int conversions, the float32 Cody-Waite exp
//! `exp_diff32` with TwoSum differences, float64 widening for the outputs), compiled for
//! AVX2+FMA and for the portable baseline, chosen at run time by [`Level`]. Rows (or outer
//! blocks) are spread over threads with rayon above [`PARALLEL_MIN`] elements; each row is
//! computed the same way whatever the thread count, so results are bit-identical.

use super::double::{LN2_HI, LN2_LO, log1p64};
use super::elem::Elem;
use crate::tensor::as_uninit;
use std::mem::MaybeUninit;
use rayon::prelude::*;
use std::sync::OnceLock;

/// Inputs with fewer elements stay on the calling thread.
pub const PARALLEL_MIN: usize = 1 << 17;

/// Elements per step of the row loops: enough independent chains to hide the latency of
/// the exp polynomial (four AVX-512 registers of float64).
const LANES: usize = 32;

/// What each instruction-set level compiles differently: multiply-add, fused where the CPU
/// has FMA (one rounding, one instruction) and plain elsewhere (`f64::mul_add` without
/// hardware FMA is a slow library call), and the hot loops, which [`Avx512`] replaces with
/// explicit intrinsics. [`dispatched!`] picks the implementation once per call.
pub(crate) trait MulAdd: Sized {
    fn mul_add(a: f64, b: f64, c: f64) -> f64;
    fn mul_add32(a: f32, b: f32, c: f32) -> f32;
    /// `out_j = x_j - m - lse`, rounded once: in float64 here, in float32 with exact
    /// differences where AVX-512 is available.
    #[inline(always)]
    fn write_row32<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], m: f64, lse: f64) {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(E::from_f32(((v.to_f32() as f64 - m) - lse) as f32));
        }
    }
    /// A row's max, min (where the implementation uses it; NaN otherwise) and the max's
    /// first position (`row_max`); explicit AVX-512 code where available. `known` is
    /// `(max, min)` when an earlier pass computed them.
    #[inline(always)]
    fn row_max32<E: Elem>(x: &[E], known: Option<(f32, f32)>) -> (f32, f32, usize) {
        let _ = known;
        let (m, k) = row_max(x);
        (m, f32::NAN, k)
    }
    /// `sum over j != skip of exp(x_j - m)` in float64 (see [`exp_diff32`]), and, where the
    /// implementation fuses it into the same loop (AVX-512), the max and min of `next`, the
    /// row read after this one (`ahead`, the one after it, may be prefetched).
    #[inline(always)]
    fn sum_exp32<E: Elem>(x: &[E], m: f32, min: f32, skip: usize, next: &[E], ahead: &[E]) -> (f64, Option<(f32, f32)>) {
        let _ = (min, next, ahead);
        (sum_exp32_generic::<Self, E>(&x[..skip], m) + sum_exp32_generic::<Self, E>(&x[skip + 1..], m), None)
    }
    /// log_softmax of one `len x inner` block over its `len` axis: tiles of float64 lanes
    /// here, 16 float32 lanes at a time with AVX-512.
    #[inline(always)]
    fn log_softmax_block32<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], len: usize, inner: usize, b: &mut Block) {
        log_softmax_block_tiled::<Self, E>(x, out, len, inner, b)
    }
    /// Per-lane `(max, lse)` of the lanes `from..from + out.len()` of one block.
    #[inline(always)]
    fn block_lse32<E: Elem>(x: &[E], len: usize, inner: usize, from: usize, b: &mut Block, out: &mut [(f64, f64)]) {
        block_lse_tiled::<Self, E>(x, len, inner, from, b, out)
    }
    /// The max of `x`, NaN skipped (`-inf` if none): [`lanes_max`], whose `LANES`
    /// running maxima vectorise (one running max is a chain of dependent selects, 1.4 ns an
    /// element at the AVX2 level).
    #[inline(always)]
    fn max32(x: &[f32]) -> f32 {
        lanes_max(x)
    }
}

/// Fused multiply-add and 512-bit vectors (only used inside functions compiled with AVX-512).
pub(crate) struct Avx512;

impl MulAdd for Avx512 {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        Fused::mul_add(a, b, c)
    }
    #[inline(always)]
    fn mul_add32(a: f32, b: f32, c: f32) -> f32 {
        Fused::mul_add32(a, b, c)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn write_row32<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], m: f64, lse: f64) {
        // SAFETY: as below.
        unsafe { super::avx512::write_row(x, out, m, lse) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn row_max32<E: Elem>(x: &[E], known: Option<(f32, f32)>) -> (f32, f32, usize) {
        // SAFETY: `Avx512` is only instantiated by `dispatched!` inside functions compiled
        // with AVX-512, called after `level()` detected it.
        unsafe { super::avx512::row_max(x, known) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn sum_exp32<E: Elem>(x: &[E], m: f32, min: f32, skip: usize, next: &[E], ahead: &[E]) -> (f64, Option<(f32, f32)>) {
        // SAFETY: as above.
        unsafe { super::avx512::sum_exp(x, m, min, skip, next, ahead) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn log_softmax_block32<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], len: usize, inner: usize, b: &mut Block) {
        // SAFETY: as above.
        unsafe { super::avx512::block_log_softmax(x, out, len, inner, &mut b.column) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn block_lse32<E: Elem>(x: &[E], len: usize, inner: usize, from: usize, b: &mut Block, out: &mut [(f64, f64)]) {
        // SAFETY: as above.
        unsafe { super::avx512::block_lse(x, len, inner, from, out, &mut b.column) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn max32(x: &[f32]) -> f32 {
        // SAFETY: as above.
        unsafe { super::avx512::max(x) }
    }
}

/// `a * b + c` with one rounding (an FMA instruction).
pub(crate) struct Fused;
/// `a * b + c` with two roundings.
pub(crate) struct Plain;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn mul_add32(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Plain {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
    #[inline(always)]
    fn mul_add32(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `exp(x - m)` for float32 `x <= m`, in float32 arithmetic: twice the lanes of [`exp_neg`].
/// `x - m` is split into its rounded value and the rounding error (TwoSum), so the argument is
/// exact; Cody-Waite reduction and Cephes' minimax polynomial give about 1 ulp (6e-8). Below
/// `-87` the result is 0: callers recompute a row whose sum is small enough for that to
/// matter (`row_stats`).
#[inline(always)]
pub(crate) fn exp_diff32<F: MulAdd>(x: f32, m: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer kept in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let t = x - m;
    let bv = t - x;
    let av = t - bv;
    let err = (x - av) + (-m - bv);
    let tiny = t < -87.0;
    let tc = if tiny { -87.0 } else { t };
    let k = F::mul_add32(tc, LOG2E, SHIFTER);
    let n = k - SHIFTER;
    let r = F::mul_add32(-n, LN2_LO, F::mul_add32(-n, LN2_HI, tc)) + err;
    let mut p = 1.987_569_1e-4;
    p = F::mul_add32(p, r, 1.398_199_9e-3);
    p = F::mul_add32(p, r, 8.333_452e-3);
    p = F::mul_add32(p, r, 4.166_579_6e-2);
    p = F::mul_add32(p, r, 1.666_666_5e-1);
    p = F::mul_add32(p, r, 5.000_000_1e-1);
    let e = F::mul_add32(p, r * r, r) + 1.0;
    let scale = f32::from_bits(k.to_bits().wrapping_add(127) << 23);
    if tiny { 0.0 } else { e * scale }
}

/// `exp(x)` for `x <= 0` (a logit minus its row's max), in float64 arithmetic. Relative error
/// below 3e-10, 200 000 times smaller than float32's half ulp, so the float32 results it feeds
/// see it as exact; `x <= -708` (and -inf) gives about 3e-308 instead of 0, which no float32
/// result can see. NaN propagates.
#[inline(always)]
pub(crate) fn exp_neg<F: MulAdd>(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // 1.5 * 2^52: adding it rounds to an integer kept in the low mantissa bits.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let x = if x < -708.0 { -708.0 } else { x };
    let k = F::mul_add(x, LOG2E, SHIFTER);
    let n = k - SHIFTER;
    let r = F::mul_add(-n, LN2_LO, F::mul_add(-n, LN2_HI, x));
    // Taylor to degree 8 on |r| <= ln2/2 (remainder below 2.1e-10 relative), evaluated by
    // Estrin's scheme: a short dependency chain keeps the vector units busy.
    let r2 = r * r;
    let r4 = r2 * r2;
    let a = F::mul_add(r, 1.0, 1.0);
    let b = F::mul_add(r, 1.0 / 6.0, 0.5);
    let c = F::mul_add(r, 1.0 / 120.0, 1.0 / 24.0);
    let d = F::mul_add(r, 1.0 / 5040.0, 1.0 / 720.0);
    let hi = F::mul_add(r4, 1.0 / 40320.0, F::mul_add(r2, d, c));
    let p = F::mul_add(r4, hi, F::mul_add(r2, b, a));
    // 2^n from the integer in k's low bits: (2^51 + n + 1023) << 52 drops the 2^51.
    let scale = f64::from_bits(k.to_bits().wrapping_add(1023) << 52);
    p * scale
}

/// A row's max and the first position holding it. NaN elements are skipped here (a `>` is
/// false for them) and caught by the sum instead: `exp(NaN - max)` is NaN, so the row's
/// log-sum-exp, and every output, is NaN. A row of NaN only keeps `max = -inf`.
#[inline(always)]
fn row_max<E: Elem>(x: &[E]) -> (f32, usize) {
    let m = lanes_max(x);
    // The first position of the max, a chunk at a time (no early exit inside a chunk, so
    // that the comparison vectorises).
    let mut base = 0;
    for c in x.chunks(LANES) {
        if c.iter().fold(false, |hit, &v| hit | (v.to_f32() == m)) {
            return (m, base + c.iter().position(|&v| v.to_f32() == m).unwrap_or(0));
        }
        base += c.len();
    }
    (m, 0)
}

/// The max of `x`, NaN skipped (`-inf` if none), in `LANES` running maxima.
#[inline(always)]
fn lanes_max<E: Elem>(x: &[E]) -> f32 {
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
fn sum_terms<E: Elem>(x: &[E], term: impl Fn(f32) -> f64) -> f64 {
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
fn sum_exp32_generic<F: MulAdd, E: Elem>(x: &[E], m: f32) -> f64 {
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
    head + tail.iter().map(|&v| exp_diff32::<F>(v.to_f32(), m) as f64).sum::<f64>()
}

#[inline(always)]
fn sum_exp<F: MulAdd, E: Elem>(x: &[E], m: f64) -> f64 {
    sum_terms(x, |v| exp_neg::<F>(v as f64 - m))
}

/// `(max, lse)` of a row, or `None` when the row is all NaN by PyTorch's rules (+inf in it,
/// or only -inf; a NaN in it makes `lse` NaN, which has the same effect).
///
/// `known` is this row's `(max, min)` if the previous row's pass computed them; `next` is
/// the row the caller reads after this one, whose `(max, min)` the second result carries
/// when the pass computed them on the way; `ahead` is the row after `next`.
#[inline(always)]
fn row_stats<F: MulAdd, E: Elem>(x: &[E], known: Option<(f32, f32)>, next: &[E], ahead: &[E]) -> (Option<(f64, f64)>, Option<(f32, f32)>) {
    let (m, min, k) = F::row_max32(x, known);
    if !m.is_finite() {
        return (None, None);
    }
    let (mut s, next_extremes) = F::sum_exp32(x, m, min, k, next, ahead);
    let m = m as f64;
    // The float32 exp drops terms below e^-104 and rounds those below e^-87 to subnormals
    // (1.2e-38 at most each): when the sum is small enough for them to count (relative
    // 1.2e-9 at most), redo it with the float64 exp.
    if s < x.len() as f64 * 1e-29 {
        s = sum_exp::<F, E>(&x[..k], m) + sum_exp::<F, E>(&x[k + 1..], m);
    }
    (Some((m, log1p64::<F>(s))), next_extremes)
}

/// `f(row, stats)` for each row of `len` elements, in order, with [`row_stats`] carrying each
/// row's max into the next.
#[inline(always)]
fn for_rows<F: MulAdd, E: Elem>(x: &[E], len: usize, mut f: impl FnMut(usize, Option<(f64, f64)>)) {
    let mut known = None;
    for (r, row) in x.chunks(len).enumerate() {
        let next = x.get((r + 1) * len..(r + 2) * len).unwrap_or(&[]);
        let ahead = x.get((r + 2) * len..(r + 3) * len).unwrap_or(&[]);
        let (st, next_extremes) = row_stats::<F, E>(row, known, next, ahead);
        known = next_extremes;
        f(r, st);
    }
}

/// Rows of `len` elements, one after the other.
#[inline(always)]
fn log_softmax_rows_body<F: MulAdd, E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], len: usize) {
    for_rows::<F, E>(x, len, |r, st| {
        let (row, o) = (&x[r * len..(r + 1) * len], &mut out[r * len..(r + 1) * len]);
        match st {
            None => o.fill(MaybeUninit::new(E::from_f32(f32::NAN))),
            Some((m, lse)) => F::write_row32(row, o, m, lse),
        }
    });
}

/// Lanes per tile of the outer-dim kernel: its scratch (24 bytes a lane) and a tile of a
/// short class axis stay in L1.
const TILE: usize = 512;

/// Scratch for the outer-dim kernel, per tile of lanes.
#[derive(Default)]
pub(crate) struct Block {
    m: Vec<f32>,
    /// The first class holding the max (a class index fits in 32 bits: tensors have at most
    /// `tensor::MAX_ELEMENTS` elements).
    k: Vec<u32>,
    mm: Vec<f64>,
    /// log-sum-exp per lane; NaN for a lane that is NaN by PyTorch's rules.
    lse: Vec<f64>,
    /// Four classes' float32 terms per lane (`4 * w`), before the float64 sum.
    p: Vec<f32>,
    /// The AVX-512 kernels' column (`avx512::Column`); the fields above are the tiled code's.
    column: Vec<f32>,
}

/// Per-lane max and log-sum-exp of a `len x inner` block (classes strided by `inner`),
/// vectorised across the lanes.
#[inline(always)]
fn block_stats_body<F: MulAdd, E: Elem>(x: &[E], len: usize, inner: usize, i0: usize, w: usize, b: &mut Block) {
    assert!(u32::try_from(len).is_ok(), "{len} classes: more than a tensor can hold");
    let lanes = |c: usize| c * inner + i0..c * inner + i0 + w;
    b.m.clear();
    b.m.extend(x[lanes(0)].iter().map(|v| v.to_f32()));
    b.k.clear();
    b.k.resize(w, 0);
    for c in 1..len {
        let row = &x[lanes(c)];
        let ci = c as u32;
        for ((m, k), &v) in b.m.iter_mut().zip(b.k.iter_mut()).zip(row) {
            let v = v.to_f32();
            let gt = v > *m;
            *m = if gt { v } else { *m };
            *k = if gt { ci } else { *k };
        }
    }
    b.mm.clear();
    b.mm.extend(b.m.iter().map(|&v| v as f64));
    b.lse.clear();
    b.lse.resize(w, 0.0);
    b.p.clear();
    b.p.resize(4 * w, 0.0);
    // The row kernel's float32 exp (`exp_diff32`, exact differences), four classes at a time
    // in a loop of float32 only (so that the exp runs on full vectors), each term widened to
    // float64 in a second loop (adding the four in float32 first made the worst lane 2 ulp
    // off instead of 1). Against the float64 exp: NLLSPEC_SIMD=avx2 8x21x128x128 4.5-4.7 ->
    // 3.5-3.6 ms, 4x1000x256 1.43 -> 1.0 ms, float16 5.6 -> 4.4-4.6 ms; portable 17.2 -> 14.1 ms.
    let mut c = 0;
    while c + 4 <= len {
        let (r0, r1, r2, r3) = (&x[lanes(c)], &x[lanes(c + 1)], &x[lanes(c + 2)], &x[lanes(c + 3)]);
        let ci = c as u32;
        let (p01, p23) = b.p.split_at_mut(2 * w);
        let (p0, p1) = p01.split_at_mut(w);
        let (p2, p3) = p23.split_at_mut(w);
        for (((((p0, p1), p2), p3), (&m, &k)), (((&v0, &v1), &v2), &v3)) in
            p0.iter_mut().zip(p1.iter_mut()).zip(p2.iter_mut()).zip(p3.iter_mut()).zip(b.m.iter().zip(&b.k)).zip(r0.iter().zip(r1).zip(r2).zip(r3))
        {
            // the first max is left out: the sum is of the others
            let d = k.wrapping_sub(ci);
            let z = |v: E, j: u32| {
                let e = exp_diff32::<F>(v.to_f32(), m);
                if d == j { 0.0 } else { e }
            };
            (*p0, *p1, *p2, *p3) = (z(v0, 0), z(v1, 1), z(v2, 2), z(v3, 3));
        }
        for ((((s, &e0), &e1), &e2), &e3) in b.lse.iter_mut().zip(&*p0).zip(&*p1).zip(&*p2).zip(&*p3) {
            *s += (e0 as f64 + e1 as f64) + (e2 as f64 + e3 as f64);
        }
        c += 4;
    }
    // the last (fewer than 4) classes keep the float64 exp: a short class axis (64x3x4096)
    // runs entirely here, as fast as before
    for c in c..len {
        let ci = c as u32;
        for (((s, &m), &k), &v) in b.lse.iter_mut().zip(&b.mm).zip(&b.k).zip(&x[lanes(c)]) {
            let e = exp_neg::<F>(v.to_f32() as f64 - m);
            *s += if k == ci { 0.0 } else { e };
        }
    }
    // As in `row_stats`: where terms below the float32 exp's range could count, the float64
    // exp (rare: a loop of its own, so that the log below stays vectorised).
    if len >= 4 {
        for (i, (s, &m)) in b.lse.iter_mut().zip(&b.mm).enumerate() {
            if *s < len as f64 * 1e-29 && m.is_finite() {
                let k = b.k[i] as usize;
                *s = (0..len).filter(|&c| c != k).map(|c| exp_neg::<F>(x[c * inner + i0 + i].to_f32() as f64 - m)).sum();
            }
        }
    }
    for (s, &m) in b.lse.iter_mut().zip(&b.mm) {
        // A NaN in row 0 makes the max NaN; +inf or an all -inf lane makes it non-finite.
        *s = if m.is_finite() { log1p64::<F>(*s) } else { f64::NAN };
    }
}

#[inline(always)]
fn log_softmax_block_tiled<F: MulAdd, E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], len: usize, inner: usize, b: &mut Block) {
    for i0 in (0..inner).step_by(TILE) {
        let w = TILE.min(inner - i0);
        block_stats_body::<F, E>(x, len, inner, i0, w, b);
        for c in 0..len {
            let at = c * inner + i0..c * inner + i0 + w;
            for (((o, &v), &m), &lse) in out[at.clone()].iter_mut().zip(&x[at]).zip(&b.mm).zip(&b.lse) {
                o.write(E::from_f32(((v.to_f32() as f64 - m) - lse) as f32));
            }
        }
    }
}

#[inline(always)]
fn block_lse_tiled<F: MulAdd, E: Elem>(x: &[E], len: usize, inner: usize, from: usize, b: &mut Block, out: &mut [(f64, f64)]) {
    for (j0, o) in (0..out.len()).step_by(TILE).zip(out.chunks_mut(TILE)) {
        block_stats_body::<F, E>(x, len, inner, from + j0, o.len(), b);
        for ((o, &m), &lse) in o.iter_mut().zip(&b.mm).zip(&b.lse) {
            *o = (m, lse);
        }
    }
}

/// The instruction sets the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Avx512,
    Avx2,
    Portable,
}

/// The best level this CPU supports (detected once). `NLLSPEC_SIMD=portable|avx2` lowers it,
/// for testing the fallbacks.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("NLLSPEC_SIMD").unwrap_or_default();
        #[cfg(target_arch = "x86_64")]
        {
            // every feature a function compiled for the level enables (`dispatched!`, and the
            // AVX-512 kernels' 16-bit loads and stores, `elem`), not only the ones the kernels
            // are named after
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512 = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512bw");
            if cap != "portable" && cap != "avx2" && avx2 && avx512 {
                return Level::Avx512;
            }
            if cap != "portable" && avx2 {
                return Level::Avx2;
            }
        }
        let _ = cap;
        Level::Portable
    })
}

macro_rules! dispatched {
    // `dispatched!(name, body, (args))` calls `body::<Avx512>(args)` and so on; with an element
    // type, `dispatched!(name<E: Elem>, body, (x: &[E], ...))` calls `body::<Avx512, E>`
    ($name:ident $(< $g:ident : $bound:path >)?, $body:ident, ($($arg:ident : $ty:ty),*)) => {
        #[inline]
        fn $name $(<$g: $bound>)? ($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
                unsafe fn avx512 $(<$g: $bound>)? ($($arg: $ty),*) { $body::<Avx512 $(, $g)?>($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2 $(<$g: $bound>)? ($($arg: $ty),*) { $body::<Fused $(, $g)?>($($arg),*) }
                match level() {
                    // SAFETY: level() checked that the CPU has these features.
                    Level::Avx512 => return unsafe { avx512($($arg),*) },
                    Level::Avx2 => return unsafe { avx2($($arg),*) },
                    Level::Portable => {}
                }
            }
            $body::<Plain $(, $g)?>($($arg),*)
        }
    };
}

pub(crate) use dispatched;

dispatched!(log_softmax_rows<E: Elem>, log_softmax_rows_body, (x: &[E], out: &mut [MaybeUninit<E>], len: usize));
dispatched!(log_softmax_block<E: Elem>, log_softmax_block_body, (x: &[E], out: &mut [MaybeUninit<E>], len: usize, inner: usize, b: &mut Block));
dispatched!(block_lse<E: Elem>, block_lse_body, (x: &[E], len: usize, inner: usize, from: usize, b: &mut Block, out: &mut [(f64, f64)]));

#[inline(always)]
fn log_softmax_block_body<F: MulAdd, E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], len: usize, inner: usize, b: &mut Block) {
    F::log_softmax_block32(x, out, len, inner, b)
}

#[inline(always)]
fn block_lse_body<F: MulAdd, E: Elem>(x: &[E], len: usize, inner: usize, from: usize, b: &mut Block, out: &mut [(f64, f64)]) {
    F::block_lse32(x, len, inner, from, b, out)
}

/// Whether an input of `n` elements is worth spreading over threads.
pub(crate) fn parallel(n: usize) -> bool {
    n >= PARALLEL_MIN && rayon::current_num_threads() > 1
}

/// The driver every log_softmax kernel shares: an `outer x len x inner` input and its
/// output, split into runs of whole rows when `inner == 1` (handed to `rows`) or into whole
/// `len x inner` blocks (handed to `block`), spread over threads above [`PARALLEL_MIN`]
/// elements. `init` makes the per-task scratch (one for the whole call on one thread). Each
/// row or block is computed the same way whatever the split, so results do not depend on the
/// thread count.
pub(crate) fn split_lanes<T: Sync, U: Send, S>(
    x: &[T],
    out: &mut [U],
    (outer, len, inner): (usize, usize, usize),
    init: impl Fn() -> S + Sync + Send,
    rows: impl Fn(&[T], &mut [U], &mut S) + Sync + Send,
    block: impl Fn(&[T], &mut [U], &mut S) + Sync + Send,
) {
    assert_eq!(x.len(), outer * len * inner);
    assert_eq!(out.len(), x.len());
    if x.is_empty() {
        return;
    }
    let parallel = parallel(x.len());
    if inner == 1 {
        if parallel {
            // Chunks of rows per task keep the per-task overhead small for short rows.
            let per_task = (PARALLEL_MIN / len).max(1) * len;
            x.par_chunks(per_task).zip(out.par_chunks_mut(per_task)).for_each_init(init, |s, (r, o)| rows(r, o, s));
        } else {
            rows(x, out, &mut init());
        }
        return;
    }
    let size = len * inner;
    if parallel && outer > 1 {
        x.par_chunks(size).zip(out.par_chunks_mut(size)).for_each_init(init, |s, (r, o)| block(r, o, s));
    } else {
        let mut s = init();
        for (r, o) in x.chunks(size).zip(out.chunks_mut(size)) {
            block(r, o, &mut s);
        }
    }
}

/// log_softmax of an `outer x len x inner` tensor over its `len` axis, into `out`, in float32
/// arithmetic: a float32 tensor, or a float16 or bfloat16 one read and written in registers
/// where the CPU has AVX-512 ([`super::elem`]; elsewhere [`super::narrow`] converts tiles).
pub fn log_softmax_f32<E: Elem>(x: &[E], out: &mut [E], outer: usize, len: usize, inner: usize) {
    // SAFETY: the kernel writes only values.
    log_softmax_f32_uninit(x, unsafe { as_uninit(out) }, outer, len, inner)
}

/// [`log_softmax_f32`] into uninitialised storage: every element of `out` is written.
pub fn log_softmax_f32_uninit<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], outer: usize, len: usize, inner: usize) {
    split_lanes(
        x,
        out,
        (outer, len, inner),
        Block::default,
        |r, o, _| log_softmax_rows(r, o, len),
        |r, o, b| log_softmax_block(r, o, len, inner, b),
    );
}

/// Per-position `(max, lse)` of an `outer x len x inner` tensor over its `len` axis (`lse`
/// NaN where the position's row is NaN by PyTorch's rules), in `(outer, inner)` order:
/// what a fused loss needs to read one log-probability per position.
pub fn lane_lse_f32<E: Elem>(x: &[E], outer: usize, len: usize, inner: usize) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, f64::NAN); outer * inner];
    if len == 0 || inner == 0 {
        return out;
    }
    if inner == 1 {
        for (o, st) in out.iter_mut().zip(row_lse_f32(x, len)) {
            *o = st.unwrap_or((0.0, f64::NAN));
        }
        return out;
    }
    let block = len * inner;
    if parallel(x.len()) && outer > 1 {
        x.par_chunks(block).zip(out.par_chunks_mut(inner)).for_each_init(Block::default, |b, (r, o)| block_lse(r, len, inner, 0, b, o));
    } else {
        let mut b = Block::default();
        for (r, o) in x.chunks(block).zip(out.chunks_mut(inner)) {
            block_lse(r, len, inner, 0, &mut b, o);
        }
    }
    out
}

/// [`lane_lse_f32`] handed to `f(b, s0, stats)` a chunk at a time: `stats[q]` is position
/// `b * inner + s0 + q`'s `(max, lse)`. On one thread, spatial inputs are done a tile of
/// lanes at a time, so a fused loss reads each tile's logits while they are in cache and
/// allocates no per-position buffer (a fresh 2 MB one costs more in page faults than its
/// arithmetic).
pub fn lane_lse_visit<E: Elem>(x: &[E], outer: usize, len: usize, inner: usize, mut f: impl FnMut(usize, usize, &[(f64, f64)])) {
    if inner == 1 || len == 0 || (parallel(x.len()) && outer > 1) {
        let stats = lane_lse_f32(x, outer, len, inner);
        for (b, st) in stats.chunks(inner.max(1)).enumerate() {
            f(b, 0, st);
        }
        return;
    }
    let mut b = Block::default();
    let mut buf = vec![(0.0, 0.0); TILE.min(inner)];
    for (bi, block) in x.chunks(len * inner).enumerate() {
        for s0 in (0..inner).step_by(TILE) {
            let o = &mut buf[..TILE.min(inner - s0)];
            block_lse(block, len, inner, s0, &mut b, o);
            f(bi, s0, o);
        }
    }
}

/// The max of `x`, NaN elements skipped (`-inf` if there is none): one read of the input with
/// the row kernels' max loop, the floor every log-sum-exp pays (the benchmarks' "read once").
pub fn max_f32(x: &[f32]) -> f32 {
    dispatched!(max_dispatch, max_body, (x: &[f32], out: &mut f32));
    #[inline(always)]
    fn max_body<F: MulAdd>(x: &[f32], out: &mut f32) {
        *out = F::max32(x);
    }
    let mut m = f32::NEG_INFINITY;
    max_dispatch(x, &mut m);
    m
}

/// Per-row statistics for a fused loss: `(max, lse)` or `None` for a NaN row, computed
/// exactly as [`log_softmax_f32`] computes them.
pub fn row_lse_f32<E: Elem>(x: &[E], len: usize) -> Vec<Option<(f64, f64)>> {
    dispatched!(stats_rows<E: Elem>, stats_rows_body, (x: &[E], len: usize, out: &mut [Option<(f64, f64)>]));
    #[inline(always)]
    fn stats_rows_body<F: MulAdd, E: Elem>(x: &[E], len: usize, out: &mut [Option<(f64, f64)>]) {
        for_rows::<F, E>(x, len, |r, st| out[r] = st);
    }
    let rows = x.len().checked_div(len).unwrap_or(0);
    let mut out = vec![None; rows];
    if len == 0 {
        return out;
    }
    // Chunks of rows per task keep the per-task overhead small for short rows.
    let per_task = (PARALLEL_MIN / len).max(1);
    if parallel(x.len()) {
        x.par_chunks(per_task * len).zip(out.par_chunks_mut(per_task)).for_each(|(r, o)| stats_rows(r, len, o));
    } else {
        stats_rows(x, len, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_neg_is_accurate() {
        let mut x = 0.0f64;
        while x > -745.0 {
            for (a, b) in [(exp_neg::<Plain>(x), x.exp()), (exp_neg::<Fused>(x), x.exp())] {
            if x > -708.0 {
                assert!((a - b).abs() <= 3e-10 * b, "exp({x}) = {a}, std {b}");
            } else {
                assert!(a < 1e-307);
            }
            }
            x -= 0.0137;
        }
        assert_eq!(exp_neg::<Plain>(0.0), 1.0);
        assert_eq!(exp_neg::<Fused>(0.0), 1.0);
        assert!(exp_neg::<Plain>(f64::NAN).is_nan());
        assert!(exp_neg::<Plain>(f64::NEG_INFINITY) < 1e-307);
    }

    #[test]
    fn exp_diff32_is_accurate() {
        let mut worst = 0.0f64;
        for i in 0..200_000 {
            let m = ((i % 97) as f32 - 40.0) * 1.37;
            let x = m - (i as f32) * 0.000_437_1;
            let truth = (x as f64 - m as f64).exp();
            for v in [exp_diff32::<Plain>(x, m), exp_diff32::<Fused>(x, m)] {
                if x as f64 - m as f64 > -87.0 {
                    worst = worst.max((v as f64 - truth).abs() / truth);
                } else {
                    assert_eq!(v, 0.0);
                }
            }
        }
        // about one float32 ulp (2^-23 = 1.19e-7)
        assert!(worst < 1.5e-7, "worst relative error {worst}");
    }

    #[test]
    fn log1p_is_accurate() {
        for s in [0.0, 1e-300, 1e-20, 1e-17, 1e-16, 3e-16, 1e-9, 1e-3, 0.4142, 0.5, 1.0, 2.0, 31999.0, 1e10, 1e300] {
            let (a, b) = (log1p64::<Plain>(s), s.ln_1p());
            assert!((a - b).abs() <= 2e-15 * b.abs() + f64::MIN_POSITIVE, "log1p({s}) = {a}, std {b}");
        }
    }

    #[test]
    fn fused_and_plain_agree_within_an_ulp() {
        // The FMA and non-FMA compilations differ only in float64 roundings far below
        // float32's: their float32 results are equal or adjacent.
        let x: Vec<f32> = (0..1000).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.03).collect();
        let mut a = vec![0.0f32; 1000];
        let mut b = vec![0.0f32; 1000];
        // SAFETY (both): the kernels write only values.
        log_softmax_rows_body::<Plain, f32>(&x, unsafe { as_uninit(&mut a) }, 1000);
        log_softmax_rows(&x, unsafe { as_uninit(&mut b) }, 1000);
        for (p, q) in a.iter().zip(&b) {
            assert!((p.to_bits() as i64 - q.to_bits() as i64).abs() <= 1, "{p} vs {q}");
        }
    }

    #[test]
    fn sums_below_float32_exp_range_are_redone_in_float64() {
        // log_softmax([50, -40])[0] = -log1p(e^-90) = -8.19e-40, a float32 subnormal that the
        // float32 exp (flushing below e^-87) alone would return as 0.
        let truth = -((-90f64).exp()) as f32;
        assert!(truth < 0.0);
        let mut o = [0.0f32; 2];
        log_softmax_f32(&[50.0, -40.0], &mut o, 1, 2, 1);
        assert_eq!(o[0], truth);
        // the same pair along an outer dim, three lanes
        let x = [50.0, 50.0, 50.0, -40.0, -40.0, -40.0];
        let mut o = [0.0f32; 6];
        log_softmax_f32(&x, &mut o, 1, 2, 3);
        assert_eq!(o[..3], [truth; 3]);
        // five classes (four of them summed with the float32 exp in the generic outer-dim
        // kernel), through the dispatch and through the generic kernel whatever the CPU
        let truth = -(4.0 * (-90f64).exp()) as f32;
        let x: Vec<f32> = (0..15).map(|i| if i < 3 { 50.0 } else { -40.0 }).collect();
        let mut o = [0.0f32; 15];
        log_softmax_f32(&x, &mut o, 1, 5, 3);
        // the AVX-512 kernel rounds each term e^-90 to a float32 subnormal (vscalefps), four
        // of them: one subnormal step from the truth
        assert!(o[..3].iter().all(|v| (v.to_bits() as i64 - truth.to_bits() as i64).abs() <= 1), "{:?} vs {truth}", &o[..3]);
        let mut o = [0.0f32; 15];
        // SAFETY: the kernel writes only values.
        log_softmax_block_tiled::<Plain, f32>(&x, unsafe { as_uninit(&mut o) }, 5, 3, &mut Block::default());
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
                    let x: Vec<f32> = (0..outer * len * inner).map(|i| ((i * 7919 % 1009) as f32 - 500.0) * 0.02).collect();
                    let mut y = vec![0.0f32; x.len()];
                    log_softmax_f32(&x, &mut y, outer, len, inner);
                    assert!(y.iter().all(|v| v.is_finite() && *v <= 0.0));
                    let xb: Vec<half::bf16> = x.iter().map(|&v| half::bf16::from_f32(v)).collect();
                    let mut yb = vec![half::bf16::ZERO; x.len()];
                    log_softmax_f32(&xb, &mut yb, outer, len, inner);
                    let xh: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
                    let mut yh = vec![half::f16::ZERO; x.len()];
                    log_softmax_f32(&xh, &mut yh, outer, len, inner);
                    assert_eq!(lane_lse_f32(&x, outer, len, inner).len(), outer * inner);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn outer_dim_matches_last_dim() {
        // (3, 5, 4) over dim 1 equals the transposed rows over their last dim.
        let x: Vec<f32> = (0..60).map(|i| ((i * 37 % 60) as f32) * 0.25 - 7.0).collect();
        let mut out = vec![0.0; 60];
        log_softmax_f32(&x, &mut out, 3, 5, 4);
        for o in 0..3 {
            for i in 0..4 {
                let row: Vec<f32> = (0..5).map(|c| x[(o * 5 + c) * 4 + i]).collect();
                let mut r = vec![0.0f32; 5];
                log_softmax_f32(&row, &mut r, 1, 5, 1);
                for c in 0..5 {
                    // the row kernel sums with the float32 exp, the block kernel with float64
                    let (a, b) = (out[(o * 5 + c) * 4 + i], r[c]);
                    assert!((a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1, "{a} vs {b}");
                }
            }
        }
    }
}
