//! The exps and logs of the AVX-512 kernels: the float32 table-driven `exp(x - m)` on 16
//! lanes (and the modes that make `x - m` exact cheaply), and the float64 `log1p` and `exp`
//! on 8 lanes the outer-dim kernel ends each lane with.
//!
//! Every `unsafe fn` here has one precondition: the CPU has AVX-512 F, DQ, VL and BW (they
//! are inlined into functions compiled with those features). None touches memory but the
//! tables, read whole.

use crate::kernels::exp::{LN2_16_HI, LN2_16_HI_F32, LN2_16_LO, LN2_16_LO_F32, LN2_HI, LN2_LO};
use std::arch::x86_64::*;

/// `2^(j/16)` rounded to float32, and its relative remainder `2^(j/16) / HI[j] - 1` rounded
/// to float32 (computed with 50-digit decimals; `tables_are_exp2_of_sixteenths` checks them).
pub(super) const EXP2_HI: [u32; 16] = [
    0x3f800000, 0x3f85aac3, 0x3f8b95c2, 0x3f91c3d3, 0x3f9837f0, 0x3f9ef532, 0x3fa5fed7, 0x3fad583f,
    0x3fb504f3, 0x3fbd08a4, 0x3fc5672a, 0x3fce248c, 0x3fd744fd, 0x3fe0ccdf, 0x3feac0c7, 0x3ff5257d,
];
pub(super) const EXP2_REL: [u32; 16] = [
    0x0, 0x3346cb6a, 0xb24e0611, 0x334b2482, 0x33092801, 0x331b85f2, 0xb3051aa8, 0xb2006c56,
    0x329302ae, 0xb302e5a2, 0x31b3d0e5, 0x31d1daf2, 0xb27ce182, 0xb1b4b0da, 0xb1d290be, 0x31b0a147,
];
/// `16 / ln 2`, rounded.
pub(super) const SIXTEEN_LOG2E: f32 = 23.083_12;
/// 1.5 * 2^23: adding it rounds to an integer kept in the low mantissa bits.
pub(super) const SHIFTER: f32 = 12_582_912.0;
/// Below this difference the term is 0 (e^-104 is under half of float32's smallest subnormal).
pub(super) const FLOOR: f32 = -104.0;

/// Constants loaded once per row.
#[derive(Clone, Copy)]
pub(super) struct ExpConsts {
    pub(super) m: __m512,
    pub(super) neg_m: __m512,
    pub(super) hi: __m512,
    pub(super) rel: __m512,
}

impl ExpConsts {
    /// # Safety
    ///
    /// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
    #[inline(always)]
    pub(super) unsafe fn new(m: f32) -> Self {
        // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
        unsafe { Self::lanes(_mm512_set1_ps(m)) }
    }

    /// A max per lane (the outer-dim kernel).
    #[inline(always)]
    pub(super) unsafe fn lanes(m: __m512) -> Self {
        // SAFETY: AVX-512 is available (this function's contract); the two table loads read 16 `u32`s from arrays of 16.
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
pub(super) const GENERAL: u8 = 0;
pub(super) const ABOVE: u8 = 1;
pub(super) const BELOW: u8 = 2;

/// The cheapest exact mode for a row with max `m` (finite) and min `mn` (NaN skipped).
#[inline(always)]
pub(super) fn mode(m: f32, mn: f32) -> u8 {
    // a NaN `mn` (a lane of NaN) must land here: hence not `mn < m - 100.0`
    if mn.partial_cmp(&(m - 100.0)).is_none_or(|o| o.is_lt()) {
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
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn exp16(x: __m512, c: ExpConsts, keep: __mmask16) -> __m512 {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
    unsafe { exp16xn::<1, GENERAL>([x], c, [keep])[0] }
}

/// [`exp16`] on `N` vectors at once, written step by step across the vectors: the
/// dependency chain of one vector is about 50 cycles long, and interleaving keeps enough
/// independent work in the scheduler to fill both vector ports. `MODE` must suit the row
/// ([`mode`]).
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn exp16xn<const N: usize, const MODE: u8>(
    x: [__m512; N],
    c: ExpConsts,
    keep: [__mmask16; N],
) -> [__m512; N] {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
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
            n16[i] = _mm512_fmadd_ps(
                k[i],
                _mm512_set1_ps(1.0 / 16.0),
                _mm512_set1_ps(-SHIFTER / 16.0),
            );
        }
        for i in 0..N {
            let hi = _mm512_fnmadd_ps(n16[i], _mm512_set1_ps(16.0 * LN2_16_HI_F32), t[i]);
            let lo = _mm512_fnmadd_ps(n16[i], _mm512_set1_ps(16.0 * LN2_16_LO_F32), err[i]);
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

/// The per-lane [`mode`] of 16 lanes with maxima `m` and minima `mn`: the cheapest one that
/// suits every lane.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn lanes_mode(m: __m512, mn: __m512) -> u8 {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
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
        let binade = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(
            _mm512_getexp_ps(_mm512_abs_ps(mn)),
            _mm512_getexp_ps(m),
        );
        if pos & binade == !0 { ABOVE } else { GENERAL }
    }
}

/// For 16 lanes no group mode suits (their maxima `m` and minima `mn` differ in sign or
/// binade from lane to lane): a shift `M >= m` per lane whose exponent is at least that of
/// every `|x|` in the lane (`max(m, 2^e)`, `2^e` the power of two in the largest magnitude's
/// binade), so that `x - M` is exact with [`ABOVE`]'s Fast2Sum. `None` when a lane is not
/// finite or too wide for every `e^(x - M)` to stay a normal float32 (`M - mn > 87`): those groups take TwoSum.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn lane_shift(m: __m512, mn: __m512) -> Option<__m512> {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
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
pub(super) const LOG_INV: [u64; 16] = [
    0x3ff0000000000000,
    0x3fed41d41d41d41d,
    0x3febacf914c1bad0,
    0x3fea41a41a41a41a,
    0x3fe8f9c18f9c18fa,
    0x3fe7d05f417d05f4,
    0x3fe6c16c16c16c17,
    0x3fe5c9882b931057,
    0x3fe4e5e0a72f0539,
    0x3fe4141414141414,
    0x3fe3521cfb2b78c1,
    0x3fe29e4129e4129e,
    0x3fe1f7047dc11f70,
    0x3fe15b1e5f75270d,
    0x3fe0c9714fbcda3b,
    0x3fe0410410410410,
];
pub(super) const LOG_NEG_LN_INV: [u64; 16] = [
    0x0,
    0x3fb6f0d28ae56b4e,
    0x3fc29552f81ff521,
    0x3fc9525a9cf456b6,
    0x3fcfb9186d5e3e29,
    0x3fd2e8e2bae11d31,
    0x3fd5d1bdbf5809ca,
    0x3fd89a3386c1425b,
    0x3fdb44f77bcc8f64,
    0x3fddd46a04c1c4a1,
    0x3fe02552a5a5d0ff,
    0x3fe154c3d2f4d5ea,
    0x3fe2795e1289b11b,
    0x3fe393e0d3562a1a,
    0x3fe4a4f85db03ebb,
    0x3fe5ad404c359f2d,
];
/// `2^(j/16)` rounded to float64 (50-digit decimals; checked by `log_and_exp_tables_are_what_they_say`).
pub(super) const EXP2_64: [u64; 16] = [
    0x3ff0000000000000,
    0x3ff0b5586cf9890f,
    0x3ff172b83c7d517b,
    0x3ff2387a6e756238,
    0x3ff306fe0a31b715,
    0x3ff3dea64c123422,
    0x3ff4bfdad5362a27,
    0x3ff5ab07dd485429,
    0x3ff6a09e667f3bcd,
    0x3ff7a11473eb0187,
    0x3ff8ace5422aa0db,
    0x3ff9c49182a3f090,
    0x3ffae89f995ad3ad,
    0x3ffc199bdd85529c,
    0x3ffd5818dcfba487,
    0x3ffea4afa2a490da,
];

/// A 16-entry float64 table looked up by the low 4 bits of each lane of `idx` (two registers,
/// `vpermt2pd`).
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn lookup16(table: &[u64; 16], idx: __m512i) -> __m512d {
    // SAFETY: AVX-512 is available (this function's contract); the two loads read the table's two halves of 8.
    unsafe {
        let p = table.as_ptr().cast::<f64>();
        _mm512_permutex2var_pd(_mm512_loadu_pd(p), idx, _mm512_loadu_pd(p.add(8)))
    }
}

/// `ln(1 + s)` on 8 float64 lanes, `s >= 0` (a lane's sum of terms besides its max), to
/// about 2^-39 relative: the accuracy float32 outputs need (their `x - m - lse` is rounded
/// to 2^-24), without `exp::log1p64`'s two divisions and 11-term polynomial, which cost 16% of
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
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn log1p_pd(s: __m512d) -> __m512d {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
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
        let (r2, a0, a1, a2, a3) = (
            _mm512_mul_pd(r, r),
            k(-1.0 / 2.0, 1.0 / 3.0),
            k(-1.0 / 4.0, 1.0 / 5.0),
            k(-1.0 / 6.0, 1.0 / 7.0),
            k(-1.0 / 8.0, 1.0 / 9.0),
        );
        let r4 = _mm512_mul_pd(r2, r2);
        let q = _mm512_fmadd_pd(r4, _mm512_fmadd_pd(r2, a3, a2), _mm512_fmadd_pd(r2, a1, a0));
        let p = _mm512_fmadd_pd(r2, q, r);
        let tail = _mm512_fmadd_pd(e, _mm512_set1_pd(LN2_LO), p);
        _mm512_fmadd_pd(
            e,
            _mm512_set1_pd(LN2_HI),
            _mm512_add_pd(lookup16(&LOG_NEG_LN_INV, idx), tail),
        )
    }
}

/// `e^d` on 8 float64 lanes, `|d| <= 700`, to about 2^-50 relative (the outer-dim kernel's
/// scale back, [`lane_shift`]): `d = (16 n + j) ln2/16 + r`, `|r| <= ln2/32`, `e^d = 2^n
/// 2^(j/16) e^r`, `e^r - 1` through `r^6` (the next term is below 2^-51), `2^n` by
/// `vscalefpd`. `exp::exp64`'s 13-term polynomial, lane by lane, cost 3% of 8x21x128x128.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn exp_pd(d: __m512d) -> __m512d {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
    unsafe {
        const SHIFTER: f64 = 6_755_399_441_055_744.0;
        let k = _mm512_fmadd_pd(
            d,
            _mm512_set1_pd(23.083_120_654_223_414),
            _mm512_set1_pd(SHIFTER),
        );
        let n = _mm512_sub_pd(k, _mm512_set1_pd(SHIFTER));
        let r = _mm512_fnmadd_pd(
            n,
            _mm512_set1_pd(LN2_16_LO),
            _mm512_fnmadd_pd(n, _mm512_set1_pd(LN2_16_HI), d),
        );
        let k6 = |a: f64, b: f64| _mm512_fmadd_pd(r, _mm512_set1_pd(b), _mm512_set1_pd(a));
        let r2 = _mm512_mul_pd(r, r);
        // e^r - 1 = r + r^2 (1/2 + r/6 + r^2/24 + r^3/120 + r^4/720)
        let q = _mm512_fmadd_pd(
            r2,
            _mm512_fmadd_pd(r2, _mm512_set1_pd(1.0 / 720.0), k6(1.0 / 24.0, 1.0 / 120.0)),
            k6(1.0 / 2.0, 1.0 / 6.0),
        );
        let t = lookup16(&EXP2_64, _mm512_castpd_si512(k));
        let y = _mm512_fmadd_pd(t, _mm512_fmadd_pd(r2, q, r), t);
        _mm512_scalef_pd(y, _mm512_mul_pd(n, _mm512_set1_pd(1.0 / 16.0)))
    }
}
