//! Explicit AVX-512 code for the float32 row kernels: the row's extremes and the sum of
//! `exp(x_j - max)`, which is where a log_softmax or cross_entropy row spends its time.
//!
//! Written with intrinsics because the compiler, left alone, picks 256-bit vectors and
//! scalar tails; here every loop runs on 16 lanes and a row's last partial vector is a
//! masked load, never a scalar loop.
//!
//! The exp is table-driven, as in glibc's and SLEEF's vector exps: `x - m = (16q + j) ln2/16
//! + r` with `|r| <= ln2/32`, so `exp(x - m) = 2^q * 2^(j/16) * e^r`. `2^(j/16)` is a
//! 16-entry float32 table with a second table of relative remainders (one register each,
//! looked up with `vpermps`), `e^r - 1` is a cubic (truncation below 9.3e-9 relative), and
//! `2^q` is applied by `vscalefps`, which also rounds results below float32's normal range
//! correctly. The difference `x - m` is kept exact (its rounding error folded into `r`):
//! with TwoSum in general, and with the 2-operation Fast2Sum when the row's max and min show
//! it is exact ([`mode`]; rows of logits almost always qualify). A term is within 0.66 ulp
//! of `exp` of the exact difference (the unit test measures it).
//!
//! Terms are added four vectors at a time in float32 (two roundings of half an ulp of a
//! partial sum at most), then accumulated in float64 lanes, so the sum's error does not grow
//! with the row length. Measured on the whole kernel: every float32 log_softmax output within
//! 1 ulp (`nllspec accuracy`). The loop also reads the next row for its max and min, and
//! prefetches the row after that, so a row's first read is not a pass of its own.

use super::double::{LN2_HI, LN2_LO};
use super::elem::{Elem, NativeBf16, as_native, as_native_out, native_bf16_for};
use std::mem::MaybeUninit;
use std::arch::x86_64::*;

/// `2^(j/16)` rounded to float32, and its relative remainder `2^(j/16) / HI[j] - 1` rounded
/// to float32 (computed with 50-digit decimals; `tables_are_exp2_of_sixteenths` checks them).
const EXP2_HI: [u32; 16] = [
    0x3f800000, 0x3f85aac3, 0x3f8b95c2, 0x3f91c3d3, 0x3f9837f0, 0x3f9ef532, 0x3fa5fed7, 0x3fad583f, 0x3fb504f3, 0x3fbd08a4, 0x3fc5672a,
    0x3fce248c, 0x3fd744fd, 0x3fe0ccdf, 0x3feac0c7, 0x3ff5257d,
];
const EXP2_REL: [u32; 16] = [
    0x0, 0x3346cb6a, 0xb24e0611, 0x334b2482, 0x33092801, 0x331b85f2, 0xb3051aa8, 0xb2006c56, 0x329302ae, 0xb302e5a2, 0x31b3d0e5, 0x31d1daf2,
    0xb27ce182, 0xb1b4b0da, 0xb1d290be, 0x31b0a147,
];
/// `16 / ln 2`, rounded.
const SIXTEEN_LOG2E: f32 = 23.083_12;
/// `ln2 / 16` in two parts: the first has 9 significant bits, so `n * C_HI` is exact for every
/// `|n| < 2^15`.
const C_HI: f32 = 0.043_334_96;
const C_LO: f32 = -1.326_215_3e-5;
/// 1.5 * 2^23: adding it rounds to an integer kept in the low mantissa bits.
const SHIFTER: f32 = 12_582_912.0;
/// Below this difference the term is 0 (e^-104 is under half of float32's smallest subnormal).
const FLOOR: f32 = -104.0;

/// Constants loaded once per row.
#[derive(Clone, Copy)]
struct ExpConsts {
    m: __m512,
    neg_m: __m512,
    hi: __m512,
    rel: __m512,
}

impl ExpConsts {
    #[inline(always)]
    unsafe fn new(m: f32) -> Self {
        unsafe { Self::lanes(_mm512_set1_ps(m)) }
    }

    /// A max per lane (the outer-dim kernel).
    #[inline(always)]
    unsafe fn lanes(m: __m512) -> Self {
        unsafe {
            ExpConsts {
                m,
                neg_m: _mm512_sub_ps(_mm512_setzero_ps(), m),
                hi: _mm512_loadu_ps(EXP2_HI.as_ptr().cast()),
                rel: _mm512_loadu_ps(EXP2_REL.as_ptr().cast()),
            }
        }
    }
}

/// How a row's differences `x - m` are made exact, chosen per row by [`mode`] from its max
/// and min.
///
/// `GENERAL`: TwoSum (5 operations), and lanes below [`FLOOR`] (or -inf) masked to 0. The
/// outer-dim kernel first tries a per-lane shift instead ([`lane_shift`]): `ABOVE`'s formula
/// against a shift `M >= max` chosen so that it is exact in every lane, the sum scaled back by
/// `e^(M - max)` ([`exp_pd`]; measured 2.5% faster at 8x21x128x128, where most 16-lane groups suit no
/// group mode).
/// `ABOVE`: every `|x|` has an exponent no larger than `m`'s, so Fast2Sum(-m, x) is exact
/// (2 operations); `BELOW`: `m <= 0`, so every `|x| >= |m|` and Fast2Sum(x, -m) is exact. In
/// both, the row's min is within 100 of its max, so no lane can fall below [`FLOOR`].
const GENERAL: u8 = 0;
const ABOVE: u8 = 1;
const BELOW: u8 = 2;

/// The cheapest exact mode for a row with max `m` (finite) and min `mn` (NaN skipped).
#[inline(always)]
fn mode(m: f32, mn: f32) -> u8 {
    if !(mn >= m - 100.0) {
        GENERAL
    } else if m <= 0.0 {
        BELOW
    } else if mn >= 0.0 || (mn.abs().to_bits() >> 23) <= (m.to_bits() >> 23) {
        ABOVE
    } else {
        GENERAL
    }
}

/// `exp(x - m)` on 16 lanes for `x <= m`, 0 in the lanes outside `keep`, for any row.
#[inline(always)]
unsafe fn exp16(x: __m512, c: ExpConsts, keep: __mmask16) -> __m512 {
    unsafe { exp16xn::<1, GENERAL>([x], c, [keep])[0] }
}

/// [`exp16`] on `N` vectors at once, written step by step across the vectors: the
/// dependency chain of one vector is about 50 cycles long, and interleaving keeps enough
/// independent work in the scheduler to fill both vector ports. `MODE` must suit the row
/// ([`mode`]).
#[inline(always)]
unsafe fn exp16xn<const N: usize, const MODE: u8>(x: [__m512; N], c: ExpConsts, keep: [__mmask16; N]) -> [__m512; N] {
    unsafe {
        let z = _mm512_setzero_ps();
        let (mut t, mut err, mut n16, mut r, mut y) = ([z; N], [z; N], [z; N], [z; N], [z; N]);
        let mut k = [z; N];
        let mut live = keep;
        for i in 0..N {
            t[i] = _mm512_sub_ps(x[i], c.m);
        }
        for i in 0..N {
            // t + err is x - m exactly
            err[i] = match MODE {
                ABOVE => _mm512_sub_ps(x[i], _mm512_add_ps(t[i], c.m)),
                BELOW => _mm512_sub_ps(c.neg_m, _mm512_sub_ps(t[i], x[i])),
                _ => {
                    let bv = _mm512_sub_ps(t[i], x[i]);
                    let av = _mm512_sub_ps(t[i], bv);
                    _mm512_add_ps(_mm512_sub_ps(x[i], av), _mm512_sub_ps(c.neg_m, bv))
                }
            };
            k[i] = _mm512_fmadd_ps(t[i], _mm512_set1_ps(SIXTEEN_LOG2E), _mm512_set1_ps(SHIFTER));
        }
        for i in 0..N {
            if MODE == GENERAL {
                // "not less than" is true for NaN, so a NaN reaches the sum; -inf lanes are
                // dropped (their err is NaN).
                live[i] &= _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(t[i], _mm512_set1_ps(FLOOR));
            }
            // n / 16 exactly (k - SHIFTER is the integer n; one rounding of an exact, representable
            // value): the operand scalef wants, and, with the constants scaled by 16 (exactly),
            // the reduction's, which saves a multiplication
            n16[i] = _mm512_fmadd_ps(k[i], _mm512_set1_ps(1.0 / 16.0), _mm512_set1_ps(-SHIFTER / 16.0));
        }
        for i in 0..N {
            let hi = _mm512_fnmadd_ps(n16[i], _mm512_set1_ps(16.0 * C_HI), t[i]);
            let lo = _mm512_fnmadd_ps(n16[i], _mm512_set1_ps(16.0 * C_LO), err[i]);
            r[i] = _mm512_add_ps(hi, lo);
        }
        for i in 0..N {
            // vpermps reads the low 4 bits of each index: n mod 16, as k's mantissa ends in n.
            let idx = _mm512_castps_si512(k[i]);
            let th = _mm512_permutexvar_ps(idx, c.hi);
            let rel = _mm512_permutexvar_ps(idx, c.rel);
            // 2^(j/16) e^r = th (1 + rel) (1 + q) = th (1 + (q + rel)) up to rel * q (< 2e-9),
            // with e^r - 1 = q = r + r^2 (1/2 + r/6); one rounding at the end.
            let a = _mm512_fmadd_ps(r[i], _mm512_set1_ps(1.0 / 6.0), _mm512_set1_ps(0.5));
            let q = _mm512_fmadd_ps(_mm512_mul_ps(r[i], r[i]), a, _mm512_add_ps(r[i], rel));
            y[i] = _mm512_fmadd_ps(th, q, th);
        }
        for i in 0..N {
            // scalef multiplies by 2^floor(n/16) = 2^q.
            y[i] = _mm512_maskz_scalef_ps(live[i], y[i], n16[i]);
        }
        y
    }
}

#[inline(always)]
unsafe fn widen_add(acc0: &mut __m512d, acc1: &mut __m512d, e: __m512) {
    unsafe {
        let [lo, hi] = to_pd(e);
        *acc0 = _mm512_add_pd(*acc0, lo);
        *acc1 = _mm512_add_pd(*acc1, hi);
    }
}

/// 16 float32 lanes as two vectors of 8 float64 (lanes 0..8 and 8..16), exactly.
#[inline(always)]
unsafe fn to_pd(v: __m512) -> [__m512d; 2] {
    unsafe {
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        [_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(hi)]
    }
}

/// [`to_pd`]'s inverse: two vectors of 8 float64, each rounded to float32, as 16 lanes.
#[inline(always)]
unsafe fn to_ps(v: [__m512d; 2]) -> __m512 {
    unsafe { _mm512_insertf32x8::<1>(_mm512_castps256_ps512(_mm512_cvtpd_ps(v[0])), _mm512_cvtpd_ps(v[1])) }
}

/// The mask of the first `n < 16` lanes.
#[inline(always)]
fn head(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// A row's max and min (NaN elements skipped, as [`super::fast::row_max`] does; a row of
/// NaN gives `(-inf, +inf)`) and the first position of the max (0 if none). `known` is
/// `(max, min)` when an earlier pass computed them ([`sum_exp`] does, for the next row):
/// only the position is searched then.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub unsafe fn row_max<E: Elem>(x: &[E], known: Option<(f32, f32)>) -> (f32, f32, usize) {
    unsafe {
        let n = x.len();
        let p = x.as_ptr();
        let (m, mn) = known.unwrap_or_else(|| extremes(x));
        let vm = _mm512_set1_ps(m);
        let mut i = 0;
        while i < n {
            let h = if i + 16 <= n { !0 } else { head(n - i) };
            let eq = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(h, E::load16_masked(h, p.add(i)), vm);
            if eq != 0 {
                return (m, mn, i + eq.trailing_zeros() as usize);
            }
            i += 16;
        }
        (m, mn, 0)
    }
}

/// The max of `x`, NaN elements skipped (`-inf` if there is none).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub unsafe fn max(x: &[f32]) -> f32 {
    unsafe { extremes::<f32>(x).0 }
}

/// `(max, min)` of `x`, NaN elements skipped (`(-inf, +inf)` if there is none).
#[inline(always)]
unsafe fn extremes<E: Elem>(x: &[E]) -> (f32, f32) {
    unsafe {
        let n = x.len();
        let mut a = Extremes::new();
        a.span(x, 0, n & !15);
        if !n.is_multiple_of(16) {
            a.masked(x, n & !15, head(n % 16));
        }
        a.reduce()
    }
}

/// Running max and min. vmaxps and vminps return their second operand when either is NaN:
/// the accumulator, so NaN elements are skipped.
#[derive(Clone, Copy)]
struct Extremes {
    max: __m512,
    min: __m512,
}

impl Extremes {
    #[inline(always)]
    unsafe fn new() -> Self {
        unsafe { Extremes { max: _mm512_set1_ps(f32::NEG_INFINITY), min: _mm512_set1_ps(f32::INFINITY) } }
    }

    #[inline(always)]
    unsafe fn add(&mut self, v: __m512) {
        unsafe {
            self.max = _mm512_max_ps(v, self.max);
            self.min = _mm512_min_ps(v, self.min);
        }
    }

    /// `x[from..to]`, `to - from` a multiple of 16.
    #[inline(always)]
    unsafe fn span<E: Elem>(&mut self, x: &[E], from: usize, to: usize) {
        unsafe {
            let mut i = from;
            while i < to {
                self.add(E::load16(x.as_ptr().add(i)));
                i += 16;
            }
        }
    }

    /// The lanes `h` of `x[at..at + 16]`.
    #[inline(always)]
    unsafe fn masked<E: Elem>(&mut self, x: &[E], at: usize, h: __mmask16) {
        unsafe {
            let v = E::load16_masked(h, x.as_ptr().add(at));
            self.max = _mm512_max_ps(_mm512_mask_blend_ps(h, _mm512_set1_ps(f32::NEG_INFINITY), v), self.max);
            self.min = _mm512_min_ps(_mm512_mask_blend_ps(h, _mm512_set1_ps(f32::INFINITY), v), self.min);
        }
    }

    #[inline(always)]
    unsafe fn reduce(self) -> (f32, f32) {
        unsafe { (_mm512_reduce_max_ps(self.max), _mm512_reduce_min_ps(self.min)) }
    }
}

/// `sum over j != skip of exp(x_j - m)` in float64, for `m = max(x)` (finite) and
/// `mn = min(x)` (both NaN-skipping); NaN if a NaN is in the row.
///
/// `next` is the row the caller reads after this one: when it has this row's length, its
/// max and min are computed in the same loop and returned (that row is in L2 by then:
/// `ahead`, the row after it, is prefetched on the way), so that no row needs a pass of its
/// own for them and memory traffic overlaps arithmetic.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub unsafe fn sum_exp<E: Elem>(x: &[E], m: f32, mn: f32, skip: usize, next: &[E], ahead: &[E]) -> (f64, Option<(f32, f32)>) {
    unsafe {
        let n = x.len();
        let c = ExpConsts::new(m);
        // Without a next row of the same length, the loop reads this row twice (from L1)
        // and the extremes are dropped: one loop to compile, not two.
        let fuse = next.len() == n;
        let next = if fuse { next } else { x };
        let mut pass = Pass { acc: [_mm512_setzero_pd(); 2], next: Extremes::new() };
        // The loops run unmasked on either side of the vector holding `skip`, which is
        // done alone with its lane masked; the partial last vector is a masked load.
        let full = n & !15;
        let sv = skip & !15;
        let one = |at: usize, h: __mmask16, pass: &mut Pass| {
            let keep = if sv == at { h & !(1u16 << (skip - sv)) } else { h };
            let e = exp16(E::load16_masked(h, x.as_ptr().add(at)), c, keep);
            let [a0, a1] = &mut pass.acc;
            widen_add(a0, a1, e);
            pass.next.masked(next, at, h);
        };
        let span = |from: usize, to: usize, pass: &mut Pass| match mode(m, mn) {
            ABOVE => sum_span::<E, ABOVE>(x, from, to, c, next, ahead, pass),
            BELOW => sum_span::<E, BELOW>(x, from, to, c, next, ahead, pass),
            _ => sum_span::<E, GENERAL>(x, from, to, c, next, ahead, pass),
        };
        if sv < full {
            span(0, sv, &mut pass);
            one(sv, !0, &mut pass);
            span(sv + 16, full, &mut pass);
        } else {
            span(0, full, &mut pass);
        }
        if full < n {
            one(full, head(n - full), &mut pass);
        }
        let s = _mm512_reduce_add_pd(_mm512_add_pd(pass.acc[0], pass.acc[1]));
        (s, fuse.then(|| pass.next.reduce()))
    }
}

/// The state of one [`sum_exp`] pass: float64 sums of this row's terms, and the extremes of
/// the next row.
struct Pass {
    acc: [__m512d; 2],
    next: Extremes,
}

/// The terms of `x[from..to]` (`to - from` a multiple of 16) into `pass`, and the extremes of
/// `next[from..to]` (`next` as long as `x`).
///
/// Four vectors of terms are added in float32 ((e0 + e1) + (e2 + e3): two roundings of at
/// most half an ulp of a partial sum) before the float64 accumulation, whose conversions
/// would otherwise cost more than a sixth of the loop.
#[inline(always)]
unsafe fn sum_span<E: Elem, const MODE: u8>(x: &[E], from: usize, to: usize, c: ExpConsts, next: &[E], ahead: &[E], pass: &mut Pass) {
    unsafe {
        let p = x.as_ptr();
        let q = next.as_ptr();
        let [mut a0, mut a1] = pass.acc;
        let mut ex = pass.next;
        let mut i = from;
        while i + 64 <= to {
            if i < ahead.len() {
                // prefetches never fault; the addresses stay within a row's length of ahead
                let a = ahead.as_ptr().wrapping_add(i).cast::<i8>();
                // the lines 64 elements span
                for line in 0..std::mem::size_of::<E>() {
                    _mm_prefetch::<_MM_HINT_T1>(a.wrapping_add(64 * line));
                }
            }
            // Into L1, 1024 elements ahead, this row's and the next row's elements (both come
            // from L2: a row is longer than L1): with the L2 prefetch above, the ratio of this
            // loop to one plain read of the input fell from about 1.55 to 1.37 at 1024x32000
            // (min of 25 runs, three alternating runs each).
            for line in 0..std::mem::size_of::<E>() {
                _mm_prefetch::<_MM_HINT_T0>(q.wrapping_add(i + 1024).cast::<i8>().wrapping_add(64 * line));
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(i + 1024).cast::<i8>().wrapping_add(64 * line));
            }
            // an array literal, not `map`: a closure would not inherit this function's target features
            let v = [E::load16(p.add(i)), E::load16(p.add(i + 16)), E::load16(p.add(i + 32)), E::load16(p.add(i + 48))];
            // a chain, not a tree: a tree would let a NaN hide its neighbours
            for o in [0, 16, 32, 48] {
                ex.add(E::load16(q.add(i + o)));
            }
            let [e0, e1, e2, e3] = exp16xn::<4, MODE>(v, c, [!0; 4]);
            widen_add(&mut a0, &mut a1, _mm512_add_ps(_mm512_add_ps(e0, e1), _mm512_add_ps(e2, e3)));
            i += 64;
        }
        while i < to {
            ex.add(E::load16(q.add(i)));
            widen_add(&mut a0, &mut a1, exp16xn::<1, MODE>([E::load16(p.add(i))], c, [!0])[0]);
            i += 16;
        }
        pass.acc = [a0, a1];
        pass.next = ex;
    }
}

/// `m + lse` as two float32s, `hi + lo`, with `lo` carrying what `hi` rounds away (also
/// when `lse` is far below `m`'s ulp, where float64's `m + lse` would drop it).
#[inline(always)]
fn split_shift(m: f64, lse: f64) -> (f32, f32) {
    let hi = (m + lse) as f32;
    (hi, ((m - hi as f64) + lse) as f32)
}

/// `x - (hi + lo)` on 16 lanes, within half an ulp of the exact value plus a rounding of a
/// far smaller term: `x - hi` is split exactly (TwoSum) into `d + e`, and the result is
/// `d + (e - lo)`, one rounding after the exact part. Four float32 operations cheaper than
/// widening to float64 and back, and as accurate.
#[inline(always)]
unsafe fn shifted(x: __m512, hi: __m512, neg_hi: __m512, lo: __m512) -> __m512 {
    unsafe {
        let d = _mm512_sub_ps(x, hi);
        let bv = _mm512_sub_ps(d, x);
        let av = _mm512_sub_ps(d, bv);
        let e = _mm512_add_ps(_mm512_sub_ps(x, av), _mm512_sub_ps(neg_hi, bv));
        // x = -inf makes e NaN: vmaxps then returns its second operand, a finite stand-in, so
        // the result is -inf; other values of e - lo are far above it and pass unchanged.
        let r = _mm512_max_ps(_mm512_sub_ps(e, lo), _mm512_set1_ps(-1e30));
        _mm512_add_ps(d, r)
    }
}

/// A row's log-probabilities `x - m - lse` into `out` (same length), see [`shifted`].
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub unsafe fn write_row<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], m: f64, lse: f64) {
    unsafe {
        if native_bf16_for::<E>() {
            return write_row_native(as_native(x), as_native_out(out), m, lse);
        }
        write_row_body(x, out, m, lse)
    }
}

/// [`write_row`] for bfloat16 where the CPU converts to it ([`NativeBf16`]).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,avx512bf16")]
unsafe fn write_row_native(x: &[NativeBf16], out: &mut [MaybeUninit<NativeBf16>], m: f64, lse: f64) {
    unsafe { write_row_body(x, out, m, lse) }
}

#[inline(always)]
unsafe fn write_row_body<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], m: f64, lse: f64) {
    unsafe {
        let n = x.len().min(out.len());
        let (hi, lo) = split_shift(m, lse);
        let (vh, vnh, vl) = (_mm512_set1_ps(hi), _mm512_set1_ps(-hi), _mm512_set1_ps(lo));
        let (p, o) = (x.as_ptr(), out.as_mut_ptr().cast::<E>());
        let mut i = 0;
        while i + 16 <= n {
            E::store16(o.add(i), shifted(E::load16(p.add(i)), vh, vnh, vl));
            i += 16;
        }
        if i < n {
            let h = head(n - i);
            E::store16_masked(o.add(i), h, shifted(E::load16_masked(h, p.add(i)), vh, vnh, vl));
        }
    }
}

/// The per-lane [`mode`] of 16 lanes with maxima `m` and minima `mn`: the cheapest one that
/// suits every lane.
#[inline(always)]
unsafe fn lanes_mode(m: __m512, mn: __m512) -> u8 {
    unsafe {
        let near = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(mn, _mm512_sub_ps(m, _mm512_set1_ps(100.0)));
        if near != !0 {
            return GENERAL;
        }
        if _mm512_cmp_ps_mask::<_CMP_LE_OQ>(m, _mm512_setzero_ps()) == !0 {
            return BELOW;
        }
        let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, _mm512_setzero_ps());
        // getexp(0) is -inf, which suits too
        let binade = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_getexp_ps(_mm512_abs_ps(mn)), _mm512_getexp_ps(m));
        if pos & binade == !0 { ABOVE } else { GENERAL }
    }
}

/// For 16 lanes no group mode suits (their maxima `m` and minima `mn` differ in sign or
/// binade from lane to lane): a shift `M >= m` per lane whose exponent is at least that of
/// every `|x|` in the lane (`max(m, 2^e)`, `2^e` the power of two in the largest magnitude's
/// binade), so that `x - M` is exact with [`ABOVE`]'s Fast2Sum. `None` when a lane is not
/// finite or too wide for every `e^(x - M)` to stay a normal float32 (`M - mn > 87`): those groups take TwoSum.
#[inline(always)]
unsafe fn lane_shift(m: __m512, mn: __m512) -> Option<__m512> {
    unsafe {
        let a = _mm512_max_ps(_mm512_abs_ps(m), _mm512_abs_ps(mn));
        let binade = _mm512_and_ps(a, _mm512_castsi512_ps(_mm512_set1_epi32(0x7f80_0000)));
        let shift = _mm512_max_ps(m, binade);
        let ok = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_sub_ps(shift, mn), _mm512_set1_ps(87.0));
        (ok == !0).then_some(shift)
    }
}

/// `1 / (1 + (j + 1/2) / 16)` for `j` in 1..16 rounded to float64 (1 for `j = 0`), and
/// `-ln` of each stored value rounded to float64 (computed with 50-digit decimals;
/// `log_and_exp_tables_are_what_they_say` checks them). [`log1p_pd`]'s table.
const LOG_INV: [u64; 16] = [
    0x3ff0000000000000, 0x3fed41d41d41d41d, 0x3febacf914c1bad0, 0x3fea41a41a41a41a, 0x3fe8f9c18f9c18fa, 0x3fe7d05f417d05f4, 0x3fe6c16c16c16c17,
    0x3fe5c9882b931057, 0x3fe4e5e0a72f0539, 0x3fe4141414141414, 0x3fe3521cfb2b78c1, 0x3fe29e4129e4129e, 0x3fe1f7047dc11f70, 0x3fe15b1e5f75270d,
    0x3fe0c9714fbcda3b, 0x3fe0410410410410,
];
const LOG_NEG_LN_INV: [u64; 16] = [
    0x0, 0x3fb6f0d28ae56b4e, 0x3fc29552f81ff521, 0x3fc9525a9cf456b6, 0x3fcfb9186d5e3e29, 0x3fd2e8e2bae11d31, 0x3fd5d1bdbf5809ca, 0x3fd89a3386c1425b,
    0x3fdb44f77bcc8f64, 0x3fddd46a04c1c4a1, 0x3fe02552a5a5d0ff, 0x3fe154c3d2f4d5ea, 0x3fe2795e1289b11b, 0x3fe393e0d3562a1a, 0x3fe4a4f85db03ebb,
    0x3fe5ad404c359f2d,
];
/// `2^(j/16)` rounded to float64 (50-digit decimals; checked by `log_and_exp_tables_are_what_they_say`).
const EXP2_64: [u64; 16] = [
    0x3ff0000000000000, 0x3ff0b5586cf9890f, 0x3ff172b83c7d517b, 0x3ff2387a6e756238, 0x3ff306fe0a31b715, 0x3ff3dea64c123422, 0x3ff4bfdad5362a27,
    0x3ff5ab07dd485429, 0x3ff6a09e667f3bcd, 0x3ff7a11473eb0187, 0x3ff8ace5422aa0db, 0x3ff9c49182a3f090, 0x3ffae89f995ad3ad, 0x3ffc199bdd85529c,
    0x3ffd5818dcfba487, 0x3ffea4afa2a490da,
];

/// A 16-entry float64 table looked up by the low 4 bits of each lane of `idx` (two registers,
/// `vpermt2pd`).
#[inline(always)]
unsafe fn lookup16(table: &[u64; 16], idx: __m512i) -> __m512d {
    unsafe {
        let p = table.as_ptr().cast::<f64>();
        _mm512_permutex2var_pd(_mm512_loadu_pd(p), idx, _mm512_loadu_pd(p.add(8)))
    }
}

/// `ln(1 + s)` on 8 float64 lanes, `s >= 0` (a lane's sum of terms besides its max), to
/// about 2^-39 relative: the accuracy float32 outputs need (their `x - m - lse` is rounded
/// to 2^-24), without [`super::double::log1p64`]'s two divisions and 11-term polynomial, which cost 16% of
/// the 8x21x128x128 log_softmax (measured by leaving the log out).
///
/// `y = 1 + s` rounds away `c = s - (y - 1)` (exactly: `y - 1` is exact for `y >= 1`), which
/// is the whole result when `s` is below half an ulp of 1.
/// `y + c = 2^e (m + c 2^-e)`, `m` in [1, 2); with `j` the top 4 bits of `m`'s fraction and `inv` its
/// table entry, `ln m = -ln(inv) + ln(1 + r)`, `r = m inv - 1` rounded once (`vfmsub`, then
/// `c 2^-e inv` added):
/// `|r| < 1/32`, or `[0, 1/16)` where `j = 0`, whose `inv` is 1 so that `ln y` for `y` near 1
/// is the polynomial alone, without cancellation. `ln(1 + r)` is its Taylor series through
/// `r^9` (the next term is below 2^-39 of `r`).
#[inline(always)]
unsafe fn log1p_pd(s: __m512d) -> __m512d {
    unsafe {
        let one = _mm512_set1_pd(1.0);
        let y = _mm512_add_pd(one, s);
        let c = _mm512_sub_pd(s, _mm512_sub_pd(y, one));
        let e = _mm512_getexp_pd(y);
        let m = _mm512_getmant_pd::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(y);
        let idx = _mm512_srli_epi64::<48>(_mm512_castpd_si512(y));
        let inv = lookup16(&LOG_INV, idx);
        let c = _mm512_scalef_pd(c, _mm512_sub_pd(_mm512_setzero_pd(), e));
        let r = _mm512_fmadd_pd(c, inv, _mm512_fmsub_pd(m, inv, one));
        let k = |a: f64, b: f64| _mm512_fmadd_pd(r, _mm512_set1_pd(b), _mm512_set1_pd(a));
        let (r2, a0, a1, a2, a3) = (_mm512_mul_pd(r, r), k(-1.0 / 2.0, 1.0 / 3.0), k(-1.0 / 4.0, 1.0 / 5.0), k(-1.0 / 6.0, 1.0 / 7.0), k(-1.0 / 8.0, 1.0 / 9.0));
        let r4 = _mm512_mul_pd(r2, r2);
        let q = _mm512_fmadd_pd(r4, _mm512_fmadd_pd(r2, a3, a2), _mm512_fmadd_pd(r2, a1, a0));
        let p = _mm512_fmadd_pd(r2, q, r);
        let tail = _mm512_fmadd_pd(e, _mm512_set1_pd(LN2_LO), p);
        _mm512_fmadd_pd(e, _mm512_set1_pd(LN2_HI), _mm512_add_pd(lookup16(&LOG_NEG_LN_INV, idx), tail))
    }
}

/// `e^d` on 8 float64 lanes, `|d| <= 700`, to about 2^-50 relative (the outer-dim kernel's
/// scale back, [`lane_shift`]): `d = (16 n + j) ln2/16 + r`, `|r| <= ln2/32`, `e^d = 2^n
/// 2^(j/16) e^r`, `e^r - 1` through `r^6` (the next term is below 2^-51), `2^n` by
/// `vscalefpd`. [`super::double::exp64`]'s 13-term polynomial, lane by lane, cost 3% of 8x21x128x128.
#[inline(always)]
unsafe fn exp_pd(d: __m512d) -> __m512d {
    unsafe {
        const SHIFTER: f64 = 6_755_399_441_055_744.0;
        let k = _mm512_fmadd_pd(d, _mm512_set1_pd(23.083_120_654_223_414), _mm512_set1_pd(SHIFTER));
        let n = _mm512_sub_pd(k, _mm512_set1_pd(SHIFTER));
        // ln2/16 as hi + lo: hi's error alone would be n * 2^-57
        let r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.449_404_258_653_937_2e-18), _mm512_fnmadd_pd(n, _mm512_set1_pd(0.043_321_698_784_996_58), d));
        let k6 = |a: f64, b: f64| _mm512_fmadd_pd(r, _mm512_set1_pd(b), _mm512_set1_pd(a));
        let r2 = _mm512_mul_pd(r, r);
        // e^r - 1 = r + r^2 (1/2 + r/6 + r^2/24 + r^3/120 + r^4/720)
        let q = _mm512_fmadd_pd(r2, _mm512_fmadd_pd(r2, _mm512_set1_pd(1.0 / 720.0), k6(1.0 / 24.0, 1.0 / 120.0)), k6(1.0 / 2.0, 1.0 / 6.0));
        let t = lookup16(&EXP2_64, _mm512_castpd_si512(k));
        let y = _mm512_fmadd_pd(t, _mm512_fmadd_pd(r2, q, r), t);
        _mm512_scalef_pd(y, _mm512_mul_pd(n, _mm512_set1_pd(1.0 / 16.0)))
    }
}

/// Max and log-sum-exp of 16 lanes of a `len x inner` block (classes strided by `inner`),
/// starting at lane `at`, lanes outside `h` unused. `lse` is NaN in the lanes that are NaN
/// by PyTorch's rules (the same rules as the rows: +inf, all -inf, or a NaN in the lane).
struct LaneStats {
    m: __m512,
    lse: [__m512d; 2],
}

/// The [`LaneStats`] of 16 lanes.
///
/// With debug assertions (the dev and test profiles: unoptimised) a function of its own:
/// there every inlined copy gets its own stack, and the outer-dim kernel's four tile variants
/// made a 1.6 MB frame that overflowed a 2 MB thread stack (the test harness's, rayon's); now
/// 56 KB, and 192 KB here. Optimised, inlined as the code around it (a call per group made
/// 64x3x4096 6% slower).
#[cfg(debug_assertions)]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
unsafe fn lane_stats<E: Elem>(x: &[E], len: usize, inner: usize, at: usize, h: __mmask16) -> LaneStats {
    unsafe { lane_stats_body(x, len, inner, at, h) }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
unsafe fn lane_stats<E: Elem>(x: &[E], len: usize, inner: usize, at: usize, h: __mmask16) -> LaneStats {
    unsafe { lane_stats_body(x, len, inner, at, h) }
}

#[inline(always)]
unsafe fn lane_stats_body<E: Elem>(x: &[E], len: usize, inner: usize, at: usize, h: __mmask16) -> LaneStats {
    unsafe {
        let p = x.as_ptr().add(at);
        let load = |c: usize| E::load16_masked(h, p.add(c * inner));
        // The max and min, NaN skipped, in four independent chains (one chain over the classes
        // would wait on each vmaxps's latency).
        let mut ex = [Extremes::new(); 4];
        let mut c = 0;
        while c + 4 <= len {
            for (j, e) in ex.iter_mut().enumerate() {
                e.add(load(c + j));
            }
            c += 4;
        }
        while c < len {
            ex[0].add(load(c));
            c += 1;
        }
        let [e0, e1, e2, e3] = ex;
        let m = _mm512_max_ps(_mm512_max_ps(e0.max, e1.max), _mm512_max_ps(e2.max, e3.max));
        let mn = _mm512_min_ps(_mm512_min_ps(e0.min, e1.min), _mm512_min_ps(e2.min, e3.min));
        let consts = ExpConsts::lanes(m);
        let mode = if h == !0 { lanes_mode(m, mn) } else { GENERAL };
        let one = [_mm512_set1_pd(1.0); 2];
        let acc = match (mode, h == !0) {
            (ABOVE, _) => lane_sums::<ABOVE>(load, len, m, consts, one),
            (BELOW, _) => lane_sums::<BELOW>(load, len, m, consts, one),
            (_, true) => match lane_shift(m, mn) {
                // the terms e^(x - M) = e^(x - m) e^(m - M), scaled back by e^(M - m)
                Some(shift) => {
                    // once per group, of the exact differences
                    let ([s0, s1], [m0, m1]) = (to_pd(shift), to_pd(m));
                    let scale = [exp_pd(_mm512_sub_pd(s0, m0)), exp_pd(_mm512_sub_pd(s1, m1))];
                    lane_sums::<ABOVE>(load, len, m, ExpConsts::lanes(shift), scale)
                }
                None => lane_sums::<GENERAL>(load, len, m, consts, one),
            },
            _ => lane_sums::<GENERAL>(load, len, m, consts, one),
        };
        let finite = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(_mm512_sub_ps(m, m), _mm512_setzero_ps());
        let nan = _mm512_set1_pd(f64::NAN);
        let l = [log1p_pd(acc[0]), log1p_pd(acc[1])];
        let lse = [_mm512_mask_blend_pd(finite as __mmask8, nan, l[0]), _mm512_mask_blend_pd((finite >> 8) as __mmask8, nan, l[1])];
        LaneStats { m, lse }
    }
}

/// Per lane, `sum over classes c != argmax of exp(x_c - m)` in float64 (lanes 0..8, 8..16).
///
/// Every element equal to the max is left out of the exp sum (exactly 1 each) and counted:
/// the sum is then that count minus one plus the others' terms, with no argmax to track.
#[inline(always)]
unsafe fn lane_sums<const MODE: u8>(load: impl Fn(usize) -> __m512, len: usize, m: __m512, consts: ExpConsts, scale: [__m512d; 2]) -> [__m512d; 2] {
    unsafe {
        let (mut a0, mut a1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut ties = _mm512_setzero_si512();
        let one = _mm512_set1_epi32(1);
        // NaN compares unequal, so a NaN reaches the sum
        let mut keep = |v: __m512| {
            let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(v, m);
            ties = _mm512_mask_add_epi32(ties, eq, ties, one);
            !eq
        };
        let mut c = 0;
        while c + 4 <= len {
            let v = [load(c), load(c + 1), load(c + 2), load(c + 3)];
            let k = [keep(v[0]), keep(v[1]), keep(v[2]), keep(v[3])];
            let [e0, e1, e2, e3] = exp16xn::<4, MODE>(v, consts, k);
            widen_add(&mut a0, &mut a1, _mm512_add_ps(_mm512_add_ps(e0, e1), _mm512_add_ps(e2, e3)));
            c += 4;
        }
        while c < len {
            let v = load(c);
            let k = keep(v);
            widen_add(&mut a0, &mut a1, exp16xn::<1, MODE>([v], consts, [k])[0]);
            c += 1;
        }
        let extra = _mm512_sub_epi32(ties, one);
        [
            _mm512_fmadd_pd(a0, scale[0], _mm512_cvtepi32_pd(_mm512_castsi512_si256(extra))),
            _mm512_fmadd_pd(a1, scale[1], _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64::<1>(extra))),
        ]
    }
}

/// The lanes of `[from, to)` in steps of 16, with the mask of each step.
#[inline(always)]
fn steps(from: usize, to: usize) -> impl Iterator<Item = (usize, __mmask16)> {
    (from..to).step_by(16).map(move |at| (at, if at + 16 <= to { !0 } else { head(to - at) }))
}

/// Classes up to which a 16-bit block is widened into a float32 column (256 KiB, in L2).
const COLUMN_MAX: usize = 4096;

/// Where a 16-lane group's elements are read from after its first read: the input, or a
/// float32 copy of the group (its 16 lanes of every class) in L1 or L2.
///
/// A 16-bit input would be converted on each of the three reads (max, sum, write); the
/// column widens it once. A float32 input gets one when its classes' lines crowd into a few
/// L1 sets (the class stride a multiple of 4 KiB, as in 8x21x128x128, puts all 21 of a
/// group's lines, and the output's 21, in one 12-way set): the sum and write passes would
/// then reload from L2 what the max pass brought in, and each load would wait on the store
/// the previous class made at the same page offset ("4K aliasing", 7-19% depending on where
/// the output lies from the input). See [`wants_column`].
///
/// It holds the groups of one tile ([`TILE`]), one after another.
struct Column<'a> {
    buf: &'a mut [f32],
    start: usize,
    len: usize,
}

impl<'a> Column<'a> {
    /// A column of `groups` groups of `len` classes in `scratch` if `wanted` (the caller's
    /// per-task scratch, so that a call per tile of lanes does not allocate one each time).
    fn new(scratch: &'a mut Vec<f32>, len: usize, groups: usize, wanted: bool) -> Self {
        // a page of room to slide the column to any page offset, plus a line to align it
        let n = if wanted { 1040 + groups * len * 16 } else { 0 };
        if scratch.len() < n {
            scratch.resize(n, 0.0);
        }
        Column { buf: &mut scratch[..n], start: 0, len }
    }

    /// Puts the column half a page from `away` (an address about to be stored to) modulo
    /// 4 KiB, so that its loads never alias those stores.
    fn place(&mut self, away: usize) {
        if !self.buf.is_empty() {
            let base = self.buf.as_ptr() as usize;
            self.start = (((away + 2048) & 4032).wrapping_sub(base) & 4095) / 4;
        }
    }

    /// [`lane_stats`] of the 16 lanes from `at` (those outside `h` unused), copying them
    /// into the column's slot `g` first when there is one.
    #[inline(always)]
    unsafe fn stats<E: Elem>(&mut self, x: &[E], inner: usize, at: usize, h: __mmask16, g: usize) -> LaneStats {
        unsafe {
            let len = self.len;
            if self.buf.is_empty() {
                return lane_stats(x, len, inner, at, h);
            }
            let from = self.start + g * len * 16;
            let col = self.buf.as_mut_ptr().add(from);
            for c in 0..len {
                _mm512_storeu_ps(col.add(c * 16), E::load16_masked(h, x.as_ptr().add(at + c * inner)));
            }
            lane_stats(&self.buf[from..], len, 16, 0, h)
        }
    }

    /// Class `c` of the group [`Column::stats`] saw in slot `g`.
    #[inline(always)]
    unsafe fn load<E: Elem>(&self, x: &[E], inner: usize, at: usize, h: __mmask16, c: usize, g: usize) -> __m512 {
        unsafe {
            if self.buf.is_empty() {
                E::load16_masked(h, x.as_ptr().add(at + c * inner))
            } else {
                _mm512_loadu_ps(self.buf.as_ptr().add(self.start + (g * self.len + c) * 16))
            }
        }
    }
}

/// Whether a `len x inner` block of `E` is read through a [`Column`]: always for 16-bit
/// types (up to [`COLUMN_MAX`] classes); for float32 when the column fits in L1 beside the
/// data (256 classes, 16 KiB) and the group's class lines fall more than 4 to an L1 set
/// (64 sets of 64-byte lines: a class stride of `k` lines reaches `64 / gcd(k, 64)` sets).
/// Elsewhere the copy costs 2-4% (8x21x100x100, 64x3x64x64, 4x1000x16x16, measured).
fn wants_column<E: Elem>(len: usize, inner: usize) -> bool {
    let stride = inner * std::mem::size_of::<E>();
    let sets = if !stride.is_multiple_of(64) { 64 } else { 64 >> ((stride / 64) % 64).trailing_zeros().min(6) };
    if std::mem::size_of::<E>() < 4 { len <= COLUMN_MAX } else { len <= 256 && len > 4 * sets }
}

/// log_softmax of a `len x inner` block over its `len` axis (classes strided by `inner`),
/// 16 lanes at a time: [`lane_stats`], then `out = ((x - m) - lse)` in float64, rounded once.
/// `scratch` holds the [`Column`], if any.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub unsafe fn block_log_softmax<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], len: usize, inner: usize, scratch: &mut Vec<f32>) {
    unsafe {
        if native_bf16_for::<E>() {
            return block_log_softmax_native(as_native(x), as_native_out(out), len, inner, scratch);
        }
        block_log_softmax_body(x, out, len, inner, scratch)
    }
}

/// [`block_log_softmax`] for bfloat16 where the CPU converts to it ([`NativeBf16`]).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,avx512bf16")]
unsafe fn block_log_softmax_native(x: &[NativeBf16], out: &mut [MaybeUninit<NativeBf16>], len: usize, inner: usize, scratch: &mut Vec<f32>) {
    unsafe { block_log_softmax_body(x, out, len, inner, scratch) }
}

/// 16-lane groups [`block_log_softmax`] takes together, where it tiles ([`tiled`]): their
/// statistics one after another, then their writes class by class (a class's 4 groups are 256
/// contiguous bytes of output). One group's statistics are a long dependency chain (max,
/// sums, log), and the next group's no longer wait behind this one's writes. Against one group
/// at a time (interleaved runs, one probe process each): 8x21x128x128 float32 2.15 -> 1.94-1.97
/// ms, float16 / bfloat16 1.86 / 2.08 -> 1.65-1.71 / 1.82-1.87 ms, 4x1000x256 0.97-0.99 ->
/// 0.82-0.85 ms, 64x3x4096 1.12 -> 1.08-1.09 ms; 2 and 8 groups 1-4% slower than 4.
const TILE: usize = 4;

/// Whether [`block_log_softmax`] runs [`TILE`] groups at a time: where it reads through a
/// [`Column`] (in L1), or the class axis is long; without one, 24 to 32 classes were 10-15%
/// slower tiled (8x24x10000, 6x32x10000, 8x21x10000: 5%), 40 the same, 50 and more faster
/// (16x50x1000 6%, 8x100x1000 18%).
fn tiled(column: bool, len: usize) -> bool {
    column || len > 40
}

#[inline(always)]
unsafe fn block_log_softmax_body<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], len: usize, inner: usize, scratch: &mut Vec<f32>) {
    unsafe {
        assert!(x.len() >= len * inner && out.len() >= len * inner);
        let column = wants_column::<E>(len, inner);
        let o = out.as_mut_ptr().cast::<E>();
        if tiled(column, len) {
            tiles::<E, TILE>(x, o, inner, &mut Column::new(scratch, len, TILE, column));
        } else {
            // a column always tiles
            tiles::<E, 1>(x, o, inner, &mut Column::new(scratch, len, 1, false));
        }
    }
}

/// [`block_log_softmax`] in tiles of `G` groups.
#[inline(always)]
unsafe fn tiles<E: Elem, const G: usize>(x: &[E], o: *mut E, inner: usize, col: &mut Column) {
    unsafe {
        let mut t = 0;
        while t + 16 * G <= inner {
            tile::<E, G, true>(x, o, inner, t, col);
            t += 16 * G;
        }
        if t < inner {
            tile::<E, G, false>(x, o, inner, t, col);
        }
    }
}

/// The `G` groups from lane `t` (fewer if the block's `inner` lanes end first); `FULL` when
/// all of them have 16 lanes, so that every mask is a constant.
#[inline(always)]
unsafe fn tile<E: Elem, const G: usize, const FULL: bool>(x: &[E], o: *mut E, inner: usize, t: usize, col: &mut Column) {
    unsafe {
        let len = col.len;
        col.place(o.add(t) as usize);
        let z = _mm512_setzero_ps();
        // per group: its first lane, its mask, and m + lse per lane as hi + lo (see split_shift)
        let mut groups = [(0, 0, z, z, z); G];
        let mut n = 0;
        for (g, (at, h)) in steps(t, inner.min(t + 16 * G)).enumerate() {
            let h = if FULL { !0 } else { h };
            let st = col.stats(x, inner, at, h, g);
            let m = to_pd(st.m);
            let hi = to_ps([_mm512_add_pd(m[0], st.lse[0]), _mm512_add_pd(m[1], st.lse[1])]);
            let h64 = to_pd(hi);
            let lo = to_ps([
                _mm512_add_pd(_mm512_sub_pd(m[0], h64[0]), st.lse[0]),
                _mm512_add_pd(_mm512_sub_pd(m[1], h64[1]), st.lse[1]),
            ]);
            groups[g] = (at, h, hi, _mm512_sub_ps(z, hi), lo);
            n = g + 1;
        }
        for c in 0..len {
            for (g, &(at, h, hi, neg_hi, lo)) in groups[..if FULL { G } else { n }].iter().enumerate() {
                let h = if FULL { !0 } else { h };
                let v = col.load(x, inner, at, h, c, g);
                // The output line 16 groups on in this class's plane, read into L1 ahead of its
                // store: the store then finds it there (owned: no other core holds it) rather
                // than waiting on a read-for-ownership. 4-5% over 8x21x128x128 and 8x21x100x100
                // one group at a time; tiled, 0-3% there and 5-8% over 64x3x4096 and 4x1000x256.
                _mm_prefetch::<_MM_HINT_T0>(o.wrapping_add(at + c * inner + 256).cast::<i8>());
                E::store16_masked(o.add(at + c * inner), h, shifted(v, hi, neg_hi, lo));
            }
        }
    }
}

/// Per-lane `(max, lse)` of the lanes `from..from + out.len()` of a `len x inner` block
/// (`scratch` as for [`block_log_softmax`]).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub unsafe fn block_lse<E: Elem>(x: &[E], len: usize, inner: usize, from: usize, out: &mut [(f64, f64)], scratch: &mut Vec<f32>) {
    unsafe {
        let to = from + out.len();
        assert!(x.len() >= len * inner && to <= inner);
        let mut col = Column::new(scratch, len, 1, wants_column::<E>(len, inner));
        // nothing is stored meanwhile: any page offset will do
        col.place(0);
        for (at, h) in steps(from, to) {
            let st = col.stats(x, inner, at, h, 0);
            let (mut m, mut lse) = ([0f32; 16], [0f64; 16]);
            _mm512_storeu_ps(m.as_mut_ptr(), st.m);
            _mm512_storeu_pd(lse.as_mut_ptr(), st.lse[0]);
            _mm512_storeu_pd(lse.as_mut_ptr().add(8), st.lse[1]);
            for (l, o) in out[at - from..(to - from).min(at - from + 16)].iter_mut().enumerate() {
                *o = (m[l] as f64, lse[l]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::as_uninit;

    fn available() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") && is_x86_feature_detected!("avx512vl")
    }

    #[test]
    fn tables_are_exp2_of_sixteenths() {
        for j in 0..16 {
            let (hi, rel) = (f32::from_bits(EXP2_HI[j]) as f64, f32::from_bits(EXP2_REL[j]) as f64);
            let truth = (j as f64 / 16.0).exp2();
            // rel carries 24 more bits: hi (1 + rel) is good to about 2^-48
            assert!((hi * (1.0 + rel) - truth).abs() <= 1e-14, "2^({j}/16)");
            assert_eq!(hi as f32 as f64, hi);
            assert!((hi - truth).abs() <= f32::EPSILON as f64 / 2.0 * truth, "hi is the rounded value");
        }
        assert_eq!(C_HI.to_bits() & 0x7fff, 0, "C_HI has at most 9 significant bits");
        assert!(((C_HI as f64 + C_LO as f64) - std::f64::consts::LN_2 / 16.0).abs() < 1e-12);
    }

    #[test]
    fn log_and_exp_tables_are_what_they_say() {
        for j in 0..16 {
            let (inv, neg_ln) = (f64::from_bits(LOG_INV[j]), f64::from_bits(LOG_NEG_LN_INV[j]));
            let want = if j == 0 { 1.0 } else { 1.0 / (1.0 + (j as f64 + 0.5) / 16.0) };
            assert!((inv - want).abs() <= f64::EPSILON * want, "LOG_INV[{j}]");
            // libm's ln is within an ulp; the tables were rounded from 50 digits
            assert!((neg_ln + inv.ln()).abs() <= f64::EPSILON * neg_ln, "LOG_NEG_LN_INV[{j}]");
            let e = f64::from_bits(EXP2_64[j]);
            assert!((e - (j as f64 / 16.0).exp2()).abs() <= f64::EPSILON * e, "EXP2_64[{j}]");
        }
    }

    /// [`log1p_pd`] and [`exp_pd`] on one value, through all 8 lanes.
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
    unsafe fn log1p_exp_pd(v: f64) -> (f64, f64) {
        unsafe {
            let (mut l, mut e) = ([0f64; 8], [0f64; 8]);
            _mm512_storeu_pd(l.as_mut_ptr(), log1p_pd(_mm512_set1_pd(v)));
            _mm512_storeu_pd(e.as_mut_ptr(), exp_pd(_mm512_set1_pd(v)));
            assert!(l.iter().all(|x| x.to_bits() == l[0].to_bits()) && e.iter().all(|x| x.to_bits() == e[0].to_bits()), "lanes differ");
            (l[0], e[0])
        }
    }

    #[test]
    fn lane_log1p_and_exp_meet_their_bounds() {
        if !available() {
            return;
        }
        // Against libm (within an ulp of float64): the bounds their docs state, 2^-39 and 2^-50
        // relative, with room for libm's own ulp. Every binade of s from 2^-60 (where
        // 1 + s rounds to 1 and the result is the correction alone) to 2^30, each table entry
        // of the mantissa, and the points either side of each entry's edge.
        let mut worst = (0.0f64, 0.0f64);
        let mut s = 2f64.powi(-60);
        while s < 2f64.powi(30) {
            for k in 0..64 {
                let v = s * (1.0 + k as f64 / 64.0);
                for v in [v, v.next_up(), v.next_down()] {
                    let (l, _) = unsafe { log1p_exp_pd(v) };
                    worst.0 = worst.0.max(((l - v.ln_1p()) / v.ln_1p()).abs());
                }
            }
            s *= 2.0;
        }
        let mut d = -100.0;
        while d <= 100.0 {
            let (_, e) = unsafe { log1p_exp_pd(d) };
            worst.1 = worst.1.max(((e - d.exp()) / d.exp()).abs());
            d += 0.001_37;
        }
        assert!(worst.0 < 2f64.powi(-39), "log1p: {:e}", worst.0);
        assert!(worst.1 < 2f64.powi(-50), "exp: {:e}", worst.1);
        let (l, e) = unsafe { log1p_exp_pd(0.0) };
        assert_eq!((l, e), (0.0, 1.0));
        let (l, e) = unsafe { log1p_exp_pd(f64::NAN) };
        assert!(l.is_nan() && e.is_nan());
    }

    /// The terms, one at a time, against float64's exp of the exact difference.
    #[test]
    fn exp16_is_within_0_7_ulp() {
        if !available() {
            return;
        }
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
        unsafe fn one(x: f32, m: f32) -> f32 {
            unsafe {
                let v = exp16(_mm512_set1_ps(x), ExpConsts::new(m), !0);
                let mut o = [0f32; 16];
                _mm512_storeu_ps(o.as_mut_ptr(), v);
                o[0]
            }
        }
        let mut worst = 0.0f64;
        for i in 0..400_000u32 {
            let m = ((i % 97) as f32 - 40.0) * 1.37 + (i % 13) as f32 * 1.3e-3;
            let x = m - (i as f32) * 0.000_261_7;
            let v = unsafe { one(x, m) } as f64;
            let truth = (x as f64 - m as f64).exp();
            if truth >= f32::MIN_POSITIVE as f64 {
                let ulp = f32::EPSILON as f64 * (2f64).powi((truth.log2().floor()) as i32);
                worst = worst.max((v - truth).abs() / ulp);
            } else {
                // subnormal results: within one subnormal step
                assert!((v - truth).abs() <= 1.5e-45, "exp({x} - {m}) = {v}, truth {truth}");
            }
        }
        // the final rounding, plus the table's and the cubic's remainders (measured 0.659)
        assert!(worst < 0.7, "worst error {worst} ulp");
        for (x, m, want) in [(0.0, 0.0, 1.0f32), (f32::NEG_INFINITY, 0.0, 0.0), (-200.0, 0.0, 0.0), (-1e30, 1e30, 0.0)] {
            assert_eq!(unsafe { one(x, m) }, want, "exp({x} - {m})");
        }
        assert!(unsafe { one(f32::NAN, 0.0) }.is_nan());
    }

    fn extremes(x: &[f32]) -> (f32, f32) {
        let v = x.iter().copied().filter(|v| !v.is_nan());
        (v.clone().fold(f32::NEG_INFINITY, f32::max), v.fold(f32::INFINITY, f32::min))
    }

    #[test]
    fn row_max_and_sum_match_the_portable_code() {
        if !available() {
            return;
        }
        // offsets that pick each mode: rows straddling 0 with |min| <= max's binade (ABOVE),
        // all negative (BELOW), mixed signs beyond it and -inf (GENERAL)
        for (shift, tail) in [(0.0f32, None), (-30.0, None), (8.0, Some(-40.0)), (0.0, Some(f32::NEG_INFINITY))] {
            for len in [1usize, 2, 15, 16, 17, 63, 64, 65, 100, 1000, 1037] {
                let mut x: Vec<f32> = (0..len).map(|i| ((i * 7919 % 1013) as f32 - 500.0) * 0.02 + shift).collect();
                if let Some(t) = tail {
                    x[len - 1] = t;
                }
                for at in [0, len / 2, len - 1] {
                    let top = 11.0 + shift;
                    x[at] = top;
                    let (m, mn, k) = unsafe { row_max(&x, None) };
                    assert_eq!((m, mn), extremes(&x), "len {len}");
                    assert_eq!(k, x.iter().position(|&v| v == top).unwrap(), "len {len}");
                    assert_eq!(unsafe { row_max(&x, Some((m, mn))) }, (m, mn, k));
                    // the next row: this one reversed, with a NaN (skipped by the extremes)
                    let mut next: Vec<f32> = x.iter().rev().map(|v| v - 1.5).collect();
                    next[len / 3] = f32::NAN;
                    let truth: f64 = x.iter().enumerate().filter(|&(j, _)| j != k).map(|(_, &v)| (v as f64 - top as f64).exp()).sum();
                    for (nx, want) in [(&next[..], Some(extremes(&next))), (&[][..], None), (&next[1..], None)] {
                        let (s, got) = unsafe { sum_exp(&x, m, mn, k, nx, &[]) };
                        assert!((s - truth).abs() <= 2e-7 * truth + 1e-300, "shift {shift} len {len}: {s} vs {truth}");
                        assert_eq!(got, want, "len {len}");
                    }
                }
            }
        }
        for len in [0usize, 5, 64, 100] {
            let x: Vec<f32> = (0..len).map(|i| if i % 7 == 3 { f32::NAN } else { (i as f32 * 0.37).sin() }).collect();
            assert_eq!(unsafe { max(&x) }, extremes(&x).0, "len {len}");
        }
        let (m, mn, k) = unsafe { row_max(&[f32::NAN, 1.0, f32::NAN, 3.0, 3.0], None) };
        assert_eq!((m, mn, k), (3.0, 1.0, 3));
        assert_eq!(unsafe { row_max(&[f32::NAN; 20], None) }, (f32::NEG_INFINITY, f32::INFINITY, 0));
        for x in [[1.0, f32::NAN, 0.0], [-1.0, f32::NAN, -2.0]] {
            assert!(unsafe { sum_exp(&x, x[0], x[2], 0, &[], &[]) }.0.is_nan());
        }
    }

    #[test]
    fn modes_are_chosen_by_exponents() {
        assert_eq!(mode(10.0, -15.9), ABOVE); // 15.9 < 16: same binade as 10
        assert_eq!(mode(10.0, -16.0), GENERAL);
        assert_eq!(mode(10.0, 3.0), ABOVE);
        assert_eq!(mode(0.0, -5.0), BELOW);
        assert_eq!(mode(-3.0, -90.0), BELOW);
        assert_eq!(mode(-3.0, -200.0), GENERAL); // terms below FLOOR need the mask
        assert_eq!(mode(5.0, f32::NEG_INFINITY), GENERAL);
    }

    /// A fixed-seed generator of uniforms in [-0.5, 0.5) (a 64-bit LCG's top 24 bits).
    fn uniforms(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / 16777216.0 - 0.5
        }
    }

    /// Lane `i` of a `len x inner` block's log-probabilities in float64 from its float32
    /// inputs: the max NaN-skipped, and the log1p of the sum without one max (`ln(1 + s)`
    /// would lose a tiny `s`).
    fn lane_reference(x: &[f32], len: usize, inner: usize, i: usize) -> Vec<f64> {
        let lane: Vec<f64> = (0..len).map(|c| x[c * inner + i] as f64).collect();
        let m = lane.iter().copied().filter(|v| !v.is_nan()).fold(f64::NEG_INFINITY, f64::max);
        let k = lane.iter().position(|&v| v == m).unwrap_or(0);
        let lse = lane.iter().enumerate().filter(|&(j, _)| j != k).map(|(_, &v)| (v - m).exp()).sum::<f64>().ln_1p();
        lane.iter().map(|&v| (v - m) - lse).collect()
    }

    /// float32 `x - m - lse`, correctly rounded from float64 (the reference for the writes).
    fn ulps(a: f32, b: f64) -> i64 {
        let b = b as f32;
        if a.is_nan() || b.is_nan() {
            return if a.is_nan() && b.is_nan() { 0 } else { i64::MAX };
        }
        let key = |v: f32| if v.to_bits() >> 31 == 1 { -((v.to_bits() & 0x7fff_ffff) as i64) } else { v.to_bits() as i64 };
        (key(a) - key(b)).abs()
    }

    #[test]
    fn row_writes_keep_what_float64_would() {
        if !available() {
            return;
        }
        // lse far below m's ulp: float64's m + lse drops it, the split keeps it
        let x = [50.0f32, -40.0, f32::NEG_INFINITY, 49.999996];
        let (m, lse) = (50.0f64, 1e-20f64);
        let mut out = [0f32; 4];
        unsafe { write_row(&x, as_uninit(&mut out), m, lse) };
        for (o, &v) in out.iter().zip(&x) {
            assert_eq!(*o, ((v as f64 - m) - lse) as f32, "x = {v}");
        }
        assert_eq!(out[0], -1e-20f32);
        assert_eq!(out[2], f32::NEG_INFINITY);
        // random rows against the float64 formula
        let mut u = uniforms(7);
        let mut worst = 0;
        for len in [1usize, 5, 16, 33, 100] {
            for scale in [1.0f32, 30.0, 1e4] {
                let x: Vec<f32> = (0..len).map(|_| u() * scale).collect();
                let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let lse = x.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
                let mut out = vec![0f32; len];
                unsafe { write_row(&x, as_uninit(&mut out), m, lse) };
                for (o, &v) in out.iter().zip(&x) {
                    worst = worst.max(ulps(*o, (v as f64 - m) - lse));
                }
            }
        }
        assert!(worst <= 1, "worst {worst} ulp");
    }

    #[test]
    fn shifted_lanes_stay_within_an_ulp() {
        if !available() {
            return;
        }
        // 64 lanes whose maxima and minima differ in sign and binade from lane to lane, so
        // that no group mode suits some of the groups: lane_shift's path (checked below),
        // against float64
        let (len, inner) = (21usize, 64usize);
        let mut u = uniforms(7);
        let mut x: Vec<f32> = (0..len * inner)
            .map(|i| {
                // lanes of several scales and offsets: all negative, all positive, mixed
                let lane = i % inner;
                u() * [3.0, 20.0, 0.5, 60.0][lane % 4] + [0.0, -30.0, 7.0, 0.001][lane / 16]
            })
            .collect();
        // a dominant max in lane 53 (its other terms sum to about e^-50: the scale back by
        // e^(M - m) must keep them), ties to the max in lane 54
        x[4 * inner + 53] = 60.0;
        for c in [1, 2] {
            x[c * inner + 54] = 20.0;
        }
        // lane 52: a small positive max over negatives a binade above it, so no group mode
        // suits the group (its shift is 4, not its max)
        for c in 0..len {
            x[c * inner + 52] = if c == 20 { 0.3 } else { -5.0 + c as f32 * 0.01 };
        }
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
        unsafe fn shifted(x: &[f32], len: usize, inner: usize, at: usize) -> bool {
            unsafe {
                let load = |c: usize| _mm512_loadu_ps(x.as_ptr().add(at + c * inner));
                let (mut m, mut mn) = (load(0), load(0));
                for c in 1..len {
                    m = _mm512_max_ps(load(c), m);
                    mn = _mm512_min_ps(load(c), mn);
                }
                lanes_mode(m, mn) == GENERAL && lane_shift(m, mn).is_some()
            }
        }
        let groups = (0..inner).step_by(16).filter(|&at| unsafe { shifted(&x, len, inner, at) }).count();
        assert!(groups >= 1 && unsafe { shifted(&x, len, inner, 48) }, "{groups} groups took the shifted path");
        let mut out = vec![0f32; x.len()];
        unsafe { block_log_softmax(&x, as_uninit(&mut out), len, inner, &mut Vec::new()) };
        for i in 0..inner {
            for (c, want) in lane_reference(&x, len, inner, i).into_iter().enumerate() {
                let o = out[c * inner + i];
                assert!(ulps(o, want) <= 1, "lane {i} class {c}: {o} vs {want}");
            }
        }
    }

    /// A float32 block whose class stride is a multiple of 4 KiB goes through the column; the
    /// same lanes with a padded stride do not; both give the same bits, wherever the output
    /// lies from the input modulo 4 KiB (the column's placement follows it).
    #[test]
    fn float32_column_gives_the_direct_reads_bits() {
        if !available() {
            return;
        }
        let (len, inner, padded) = (21usize, 1024usize, 1040usize);
        assert!(wants_column::<f32>(len, inner) && !wants_column::<f32>(len, padded));
        assert!(!wants_column::<f32>(3, inner) && !wants_column::<f32>(300, inner), "few classes, or a column beyond L1");
        let mut u = uniforms(5);
        let mut x: Vec<f32> = (0..len * inner).map(|_| u() * 20.0).collect();
        x[2 * inner + 3] = f32::NAN;
        for c in 0..len {
            x[c * inner + 5] = f32::NEG_INFINITY;
        }
        x[7 * inner + 900] = f32::INFINITY;
        let mut wide = vec![0f32; len * padded];
        for c in 0..len {
            wide[c * padded..c * padded + inner].copy_from_slice(&x[c * inner..(c + 1) * inner]);
        }
        let mut direct = vec![0f32; wide.len()];
        unsafe { block_log_softmax(&wide, as_uninit(&mut direct), len, padded, &mut Vec::new()) };
        let mut storage = vec![0f32; len * inner + 1024];
        for shift in (0..1024).step_by(64) {
            let out = &mut storage[shift..shift + len * inner];
            unsafe { block_log_softmax(&x, as_uninit(out), len, inner, &mut Vec::new()) };
            for c in 0..len {
                for i in 0..inner {
                    let (a, b) = (out[c * inner + i], direct[c * padded + i]);
                    assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "shift {shift} class {c} lane {i}: {a} vs {b}");
                }
            }
        }
        // lane 900's +inf makes it NaN by torch's rules, which lane_reference does not follow
        for i in [0, 3, 5, 511, 1023] {
            for (c, want) in lane_reference(&x, len, inner, i).into_iter().enumerate() {
                let o = direct[c * padded + i];
                assert!(ulps(o, want) <= 1 || (o.is_nan() && want.is_nan()), "lane {i} class {c}: {o} vs {want}");
            }
        }
    }

    #[test]
    fn block_kernel_matches_float64_and_torch_rules() {
        if !available() {
            return;
        }
        // one group at a time (37 lanes: 2 groups and a tail), and tiled without a column
        // (101 lanes: a full tile of 4 groups, then 2 and a tail of 5)
        for (len, inner) in [(21usize, 37usize), (45, 101)] {
            assert_eq!(tiled(wants_column::<f32>(len, inner), len), len == 45);
            block_kernel_case(len, inner);
        }
    }

    fn block_kernel_case(len: usize, inner: usize) {
        let mut u = uniforms(11);
        let mut x: Vec<f32> = (0..len * inner).map(|_| u() * 20.0).collect();
        // lane 3: a NaN; lane 4: +inf; lane 5: all -inf; lane 6: one -inf; lane 36: a huge max
        x[2 * inner + 3] = f32::NAN;
        x[7 * inner + 4] = f32::INFINITY;
        for c in 0..len {
            x[c * inner + 5] = f32::NEG_INFINITY;
        }
        x[inner + 6] = f32::NEG_INFINITY;
        x[9 * inner + 36] = 1e6;
        // lane 7: the max three times (each exactly 1 in the sum); lane 8: a max far above
        // the rest (the sum is tiny and must not be lost next to the 1)
        for c in [0, 5, 20] {
            x[c * inner + 7] = 10.5;
        }
        x[3 * inner + 8] = 40.0;
        let mut out = vec![0f32; x.len()];
        unsafe { block_log_softmax(&x, as_uninit(&mut out), len, inner, &mut Vec::new()) };
        let mut lse_out = vec![(0.0, 0.0); inner];
        unsafe { block_lse(&x, len, inner, 0, &mut lse_out[..20], &mut Vec::new()) };
        unsafe { block_lse(&x, len, inner, 20, &mut lse_out[20..], &mut Vec::new()) };
        for i in 0..inner {
            let nan_lane = matches!(i, 3..=5);
            assert_eq!(lse_out[i].1.is_nan(), nan_lane, "{len}x{inner} lane {i}");
            // lane 8's tiny sum needs the reference's log1p
            for (c, want) in lane_reference(&x, len, inner, i).into_iter().enumerate() {
                let o = out[c * inner + i];
                if nan_lane {
                    assert!(o.is_nan(), "{len}x{inner} lane {i} class {c}: {o}");
                } else {
                    assert!(ulps(o, want) <= 1, "{len}x{inner} lane {i} class {c}: {o} vs {want}");
                }
            }
        }
    }
}
