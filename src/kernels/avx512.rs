//! Explicit AVX-512 code for the float32 row kernels: the row's max and the sum of
//! `exp(x_j - max)`, which is where a log_softmax or cross_entropy row spends its time.
//!
//! Written with intrinsics because the compiler, left alone, picks 256-bit vectors and
//! scalar tails; here every loop runs on 16 lanes and a row's last partial vector is a
//! masked load, never a scalar loop.
//!
//! The exp is table-driven, as in glibc's and SLEEF's vector exps: `x - m = (16q + j) ln2/16
//! + r` with `|r| <= ln2/32`, so `exp(x - m) = 2^q * 2^(j/16) * e^r`. `2^(j/16)` is a
//! 16-entry table held as float32 pairs `hi + lo` (one register each, looked up with
//! `vpermps`), `e^r - 1` is a cubic (truncation below 9.3e-9 relative), and `2^q` is applied
//! by `vscalefps`, which also rounds results below float32's normal range correctly. With the
//! exact difference (TwoSum: `x - m = t + err`) folded into `r`, a term is within 0.7 ulp of
//! `exp` of the exact difference (the unit test measures 0.688 at worst); the float32 Cephes
//! exp it replaced was about 1 ulp, and 25% slower.
//!
//! Terms are added in float32 pairs (one rounding, at most half an ulp of the pair) and the
//! pairs accumulated in float64 lanes, so the sum's error does not grow with the row length.

use std::arch::x86_64::*;

/// `2^(j/16)` rounded to float32, and the remainder `2^(j/16) - HI[j]` rounded to float32
/// (computed with 50-digit decimals; `tables_are_exp2_of_sixteenths` checks them).
const EXP2_HI: [u32; 16] = [
    0x3f800000, 0x3f85aac3, 0x3f8b95c2, 0x3f91c3d3, 0x3f9837f0, 0x3f9ef532, 0x3fa5fed7, 0x3fad583f, 0x3fb504f3, 0x3fbd08a4, 0x3fc5672a,
    0x3fce248c, 0x3fd744fd, 0x3fe0ccdf, 0x3feac0c7, 0x3ff5257d,
];
const EXP2_LO: [u32; 16] = [
    0x0, 0x334f9891, 0xb260aba1, 0x33675624, 0x33231b71, 0x33412342, 0xb32c9d5e, 0xb22deaf6, 0x32cfe77a, 0xb3414fe8, 0x320aa837, 0x3228fc24,
    0xb2d4a58a, 0xb21eab59, 0xb24116de, 0x32292436,
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
    lo: __m512,
}

impl ExpConsts {
    #[inline(always)]
    unsafe fn new(m: f32) -> Self {
        unsafe {
            ExpConsts {
                m: _mm512_set1_ps(m),
                neg_m: _mm512_set1_ps(-m),
                hi: _mm512_loadu_ps(EXP2_HI.as_ptr().cast()),
                lo: _mm512_loadu_ps(EXP2_LO.as_ptr().cast()),
            }
        }
    }
}

/// `exp(x - m)` on 16 lanes for `x <= m`, 0 in the lanes outside `keep`.
#[inline(always)]
unsafe fn exp16(x: __m512, c: ExpConsts, keep: __mmask16) -> __m512 {
    unsafe {
        let t = _mm512_sub_ps(x, c.m);
        // TwoSum(x, -m): t + err is x - m exactly.
        let bv = _mm512_sub_ps(t, x);
        let av = _mm512_sub_ps(t, bv);
        let err = _mm512_add_ps(_mm512_sub_ps(x, av), _mm512_sub_ps(c.neg_m, bv));
        // "not less than" is true for NaN, so a NaN reaches the sum; -inf lanes are dropped
        // (their err is NaN).
        let keep = keep & _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(t, _mm512_set1_ps(FLOOR));
        let k = _mm512_fmadd_ps(t, _mm512_set1_ps(SIXTEEN_LOG2E), _mm512_set1_ps(SHIFTER));
        let n = _mm512_sub_ps(k, _mm512_set1_ps(SHIFTER));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C_HI), t);
        let r = _mm512_add_ps(_mm512_fnmadd_ps(n, _mm512_set1_ps(C_LO), r), err);
        // vpermps reads the low 4 bits of each index: n mod 16, as k's mantissa ends in n.
        let idx = _mm512_castps_si512(k);
        let th = _mm512_permutexvar_ps(idx, c.hi);
        let tl = _mm512_permutexvar_ps(idx, c.lo);
        // e^r - 1 = r (1 + r (1/2 + r/6))
        let a = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0 / 6.0), _mm512_set1_ps(0.5));
        let q = _mm512_mul_ps(_mm512_fmadd_ps(a, r, _mm512_set1_ps(1.0)), r);
        let y = _mm512_add_ps(th, _mm512_fmadd_ps(th, q, tl));
        // scalef multiplies by 2^floor(n/16) = 2^q.
        _mm512_maskz_scalef_ps(keep, y, _mm512_mul_ps(n, _mm512_set1_ps(1.0 / 16.0)))
    }
}

#[inline(always)]
unsafe fn widen_add(acc0: &mut __m512d, acc1: &mut __m512d, e: __m512) {
    unsafe {
        let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(e));
        let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(e))));
        *acc0 = _mm512_add_pd(*acc0, lo);
        *acc1 = _mm512_add_pd(*acc1, hi);
    }
}

/// The mask of the first `n < 16` lanes.
#[inline(always)]
fn head(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// A row's max and the first position holding it, as [`super::fast::row_max`] defines them
/// (NaN elements are skipped; a row of NaN gives `(-inf, 0)`).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
pub unsafe fn row_max(x: &[f32]) -> (f32, usize) {
    unsafe {
        let n = x.len();
        let p = x.as_ptr();
        let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
        let (mut a0, mut a1, mut a2, mut a3) = (ninf, ninf, ninf, ninf);
        let mut i = 0;
        // vmaxps returns its second operand when either is NaN: the accumulator.
        while i + 64 <= n {
            a0 = _mm512_max_ps(_mm512_loadu_ps(p.add(i)), a0);
            a1 = _mm512_max_ps(_mm512_loadu_ps(p.add(i + 16)), a1);
            a2 = _mm512_max_ps(_mm512_loadu_ps(p.add(i + 32)), a2);
            a3 = _mm512_max_ps(_mm512_loadu_ps(p.add(i + 48)), a3);
            i += 64;
        }
        while i + 16 <= n {
            a0 = _mm512_max_ps(_mm512_loadu_ps(p.add(i)), a0);
            i += 16;
        }
        if i < n {
            a1 = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, head(n - i), p.add(i)), a1);
        }
        let m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3)));
        let vm = _mm512_set1_ps(m);
        let mut i = 0;
        while i < n {
            let h = if i + 16 <= n { !0 } else { head(n - i) };
            let eq = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(h, _mm512_maskz_loadu_ps(h, p.add(i)), vm);
            if eq != 0 {
                return (m, i + eq.trailing_zeros() as usize);
            }
            i += 16;
        }
        (m, 0)
    }
}

/// `sum over j != skip of exp(x_j - m)` in float64, for `m >= every x_j`; NaN if a NaN is
/// in the row. While it runs it prefetches `next` (the row the caller reads next) into L2,
/// so that reading that row from memory overlaps this row's arithmetic.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
pub unsafe fn sum_exp(x: &[f32], m: f32, skip: usize, next: &[f32]) -> f64 {
    unsafe {
        let n = x.len();
        let c = ExpConsts::new(m);
        let mut acc = [_mm512_setzero_pd(); 4];
        // The loops run unmasked on either side of the vector holding `skip`, which is
        // done alone with its lane masked; the partial last vector is a masked load.
        let full = n & !15;
        let sv = skip & !15;
        if sv < full {
            sum_span(x, 0, sv, c, next, &mut acc);
            let e = exp16(_mm512_loadu_ps(x.as_ptr().add(sv)), c, !(1u16 << (skip - sv)));
            let [a0, a1, ..] = &mut acc;
            widen_add(a0, a1, e);
            sum_span(x, sv + 16, full, c, next, &mut acc);
        } else {
            sum_span(x, 0, full, c, next, &mut acc);
        }
        if full < n {
            let h = head(n - full);
            let keep = if sv == full { h & !(1u16 << (skip - sv)) } else { h };
            let [.., a2, a3] = &mut acc;
            widen_add(a2, a3, exp16(_mm512_maskz_loadu_ps(h, x.as_ptr().add(full)), c, keep));
        }
        _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3])))
    }
}

/// The terms of `x[from..to]` (`to - from` a multiple of 16) into `acc`.
#[inline(always)]
unsafe fn sum_span(x: &[f32], from: usize, to: usize, c: ExpConsts, next: &[f32], acc: &mut [__m512d; 4]) {
    unsafe {
        let p = x.as_ptr();
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        let mut i = from;
        while i + 64 <= to {
            if i < next.len() {
                // prefetches never fault; the addresses stay within a row's length of next
                let q = next.as_ptr().wrapping_add(i).cast::<i8>();
                _mm_prefetch::<_MM_HINT_T1>(q);
                _mm_prefetch::<_MM_HINT_T1>(q.wrapping_add(64));
                _mm_prefetch::<_MM_HINT_T1>(q.wrapping_add(128));
                _mm_prefetch::<_MM_HINT_T1>(q.wrapping_add(192));
            }
            let e0 = exp16(_mm512_loadu_ps(p.add(i)), c, !0);
            let e1 = exp16(_mm512_loadu_ps(p.add(i + 16)), c, !0);
            let e2 = exp16(_mm512_loadu_ps(p.add(i + 32)), c, !0);
            let e3 = exp16(_mm512_loadu_ps(p.add(i + 48)), c, !0);
            widen_add(&mut a0, &mut a1, _mm512_add_ps(e0, e1));
            widen_add(&mut a2, &mut a3, _mm512_add_ps(e2, e3));
            i += 64;
        }
        while i < to {
            widen_add(&mut a0, &mut a1, exp16(_mm512_loadu_ps(p.add(i)), c, !0));
            i += 16;
        }
        *acc = [a0, a1, a2, a3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn available() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") && is_x86_feature_detected!("avx512vl")
    }

    #[test]
    fn tables_are_exp2_of_sixteenths() {
        for j in 0..16 {
            let (hi, lo) = (f32::from_bits(EXP2_HI[j]) as f64, f32::from_bits(EXP2_LO[j]) as f64);
            let truth = (j as f64 / 16.0).exp2();
            // lo carries 24 more bits: hi + lo is good to about 2^-48
            assert!((hi + lo - truth).abs() <= 1e-14, "2^({j}/16)");
            assert_eq!(hi as f32 as f64, hi);
            assert!((hi - truth).abs() <= f32::EPSILON as f64 / 2.0 * truth, "hi is the rounded value");
        }
        assert_eq!(C_HI.to_bits() & 0x7fff, 0, "C_HI has at most 9 significant bits");
        assert!(((C_HI as f64 + C_LO as f64) - std::f64::consts::LN_2 / 16.0).abs() < 1e-12);
    }

    /// The terms, one at a time, against float64's exp of the exact difference.
    #[test]
    fn exp16_is_within_0_7_ulp() {
        if !available() {
            return;
        }
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
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
        // the final add's half ulp, plus the table's and the cubic's remainders (measured 0.688)
        assert!(worst < 0.7, "worst error {worst} ulp");
        for (x, m, want) in [(0.0, 0.0, 1.0f32), (f32::NEG_INFINITY, 0.0, 0.0), (-200.0, 0.0, 0.0), (-1e30, 1e30, 0.0)] {
            assert_eq!(unsafe { one(x, m) }, want, "exp({x} - {m})");
        }
        assert!(unsafe { one(f32::NAN, 0.0) }.is_nan());
    }

    #[test]
    fn row_max_and_sum_match_the_portable_code() {
        if !available() {
            return;
        }
        for len in [1usize, 2, 15, 16, 17, 63, 64, 65, 100, 1000, 1037] {
            let mut x: Vec<f32> = (0..len).map(|i| ((i * 7919 % 1013) as f32 - 500.0) * 0.02).collect();
            for at in [0, len / 2, len - 1] {
                x[at] = 11.0;
                let (m, k) = unsafe { row_max(&x) };
                assert_eq!((m, k), (11.0, x.iter().position(|&v| v == 11.0).unwrap()), "len {len}");
                let s = unsafe { sum_exp(&x, m, k, &[]) };
                let truth: f64 = x.iter().enumerate().filter(|&(j, _)| j != k).map(|(_, &v)| (v as f64 - 11.0).exp()).sum();
                assert!((s - truth).abs() <= 2e-7 * truth + 1e-300, "len {len}: {s} vs {truth}");
            }
        }
        let (m, k) = unsafe { row_max(&[f32::NAN, 1.0, f32::NAN, 3.0, 3.0]) };
        assert_eq!((m, k), (3.0, 3));
        assert_eq!(unsafe { row_max(&[f32::NAN; 20]) }, (f32::NEG_INFINITY, 0));
        assert!(unsafe { sum_exp(&[1.0, f32::NAN, 0.0], 1.0, 0, &[]) }.is_nan());
    }
}
