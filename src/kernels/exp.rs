//! Scalar exp and log primitives, generic over the level's multiply-add: compiled inside each
//! level's kernels (`simd::dispatched!`), they vectorise across the lanes of the loops that
//! call them. The splits of ln 2 they and the AVX-512 kernels reduce by are here, in one place.

use super::simd::MulAdd;

/// fdlibm's split of ln 2: `LN2_HI` has 32 significant bits, so `n * LN2_HI` is exact for
/// every exponent `n` of a float64 (the float64 kernels' exp and log, and the AVX-512 lanes').
pub(crate) const LN2_HI: f64 = 6.931_471_803_691_238e-1;
pub(crate) const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// Cephes' float32 split of ln 2 ([`exp_diff32`]'s Cody-Waite reduction).
pub(crate) const LN2_HI_F32: f32 = 0.693_359_4;
pub(crate) const LN2_LO_F32: f32 = -2.121_944_4e-4;
/// `ln2 / 16` in two float32 parts (the AVX-512 table-driven exp): the first has 9
/// significant bits, so `n * LN2_16_HI_F32` is exact for every `|n| < 2^15`.
pub(crate) const LN2_16_HI_F32: f32 = 0.043_334_96;
pub(crate) const LN2_16_LO_F32: f32 = -1.326_215_3e-5;
/// `ln2 / 16` in two float64 parts (the AVX-512 float64 exp): the first's error alone would
/// be `n * 2^-57`.
pub(crate) const LN2_16_HI: f64 = 0.043_321_698_784_996_58;
pub(crate) const LN2_16_LO: f64 = 1.449_404_258_653_937_2e-18;

/// `exp(x - m)` for float32 `x <= m`, in float32 arithmetic: twice the lanes of [`exp_neg`].
/// `x - m` is split into its rounded value and the rounding error (TwoSum), so the argument is
/// exact; Cody-Waite reduction and Cephes' minimax polynomial give about 1 ulp (6e-8). Below
/// `-87` the result is 0: callers recompute a row whose sum is small enough for that to
/// matter (`row_stats`).
#[inline(always)]
pub(crate) fn exp_diff32<F: MulAdd>(x: f32, m: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
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
    let r = F::mul_add32(-n, LN2_LO_F32, F::mul_add32(-n, LN2_HI_F32, tc)) + err;
    let mut p = 1.987_569_1e-4;
    p = F::mul_add32(p, r, 1.398_199_9e-3);
    p = F::mul_add32(p, r, 8.333_452e-3);
    p = F::mul_add32(p, r, 4.166_579_6e-2);
    p = F::mul_add32(p, r, 1.666_666_5e-1);
    p = F::mul_add32(p, r, 5e-1);
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

/// Below this, a term `exp(t)` is dropped (`2^-1021`, the smallest power the bit trick builds).
pub(crate) const EXP_MIN: f64 = -708.0;

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
    for coef in [
        1.0 / 21.0,
        1.0 / 19.0,
        1.0 / 17.0,
        1.0 / 15.0,
        1.0 / 13.0,
        1.0 / 11.0,
        1.0 / 9.0,
        1.0 / 7.0,
        1.0 / 5.0,
        1.0 / 3.0,
    ] {
        p = F::mul_add(p, w, coef);
    }
    let r = 2.0 * w * p;
    // log m = f - hfsq + z (hfsq + r)
    let log_m = f - (hfsq - z * (hfsq + r));
    F::mul_add(e, LN2_HI, log_m + F::mul_add(e, LN2_LO, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::{Fused, Plain};

    fn ulps(a: f64, b: f64) -> i64 {
        (a.to_bits() as i64 - b.to_bits() as i64).abs()
    }

    #[test]
    fn exp_neg_is_accurate() {
        let mut x = 0.0f64;
        while x > -745.0 {
            for (a, b) in [
                (exp_neg::<Plain>(x), x.exp()),
                (exp_neg::<Fused>(x), x.exp()),
            ] {
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
        for s in [
            0.0, 1e-300, 1e-20, 1e-17, 1e-16, 3e-16, 1e-9, 1e-3, 0.4142, 0.5, 1.0, 2.0, 31999.0,
            1e10, 1e300,
        ] {
            let (a, b) = (log1p64::<Plain>(s), s.ln_1p());
            assert!(
                (a - b).abs() <= 2e-15 * b.abs() + f64::MIN_POSITIVE,
                "log1p({s}) = {a}, std {b}"
            );
        }
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
        for s in [
            0.0, 1e-17, 1.1e-16, 2.2e-16, 0.4142, 0.41421356, 1.0, 31999.0,
        ] {
            worst = worst.max(ulps(log1p64::<Fused>(s), s.ln_1p()));
        }
        assert!(worst <= 1, "worst {worst} ulp");
        assert!(log1p64::<Fused>(f64::NAN).is_nan());
    }
}
