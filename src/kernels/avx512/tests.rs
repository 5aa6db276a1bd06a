//! The AVX-512 kernels against float64 references and the portable code.

use super::block::*;
use super::exp::*;
use super::rows::*;
use crate::kernels::exp::{LN2_16_HI_F32, LN2_16_LO_F32};
use crate::tensor::as_uninit;
use std::arch::x86_64::*;

fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512bw")
}

#[test]
fn tables_are_exp2_of_sixteenths() {
    for j in 0..16 {
        let (hi, rel) = (
            f32::from_bits(EXP2_HI[j]) as f64,
            f32::from_bits(EXP2_REL[j]) as f64,
        );
        let truth = (j as f64 / 16.0).exp2();
        // rel carries 24 more bits: hi (1 + rel) is good to about 2^-48
        assert!((hi * (1.0 + rel) - truth).abs() <= 1e-14, "2^({j}/16)");
        assert_eq!(hi as f32 as f64, hi);
        assert!(
            (hi - truth).abs() <= f32::EPSILON as f64 / 2.0 * truth,
            "hi is the rounded value"
        );
    }
    assert_eq!(
        LN2_16_HI_F32.to_bits() & 0x7fff,
        0,
        "LN2_16_HI_F32 has at most 9 significant bits"
    );
    assert!(
        ((LN2_16_HI_F32 as f64 + LN2_16_LO_F32 as f64) - std::f64::consts::LN_2 / 16.0).abs()
            < 1e-12
    );
}

#[test]
fn log_and_exp_tables_are_what_they_say() {
    for j in 0..16 {
        let (inv, neg_ln) = (
            f64::from_bits(LOG_INV[j]),
            f64::from_bits(LOG_NEG_LN_INV[j]),
        );
        let want = if j == 0 {
            1.0
        } else {
            1.0 / (1.0 + (j as f64 + 0.5) / 16.0)
        };
        assert!((inv - want).abs() <= f64::EPSILON * want, "LOG_INV[{j}]");
        // libm's ln is within an ulp; the tables were rounded from 50 digits
        assert!(
            (neg_ln + inv.ln()).abs() <= f64::EPSILON * neg_ln,
            "LOG_NEG_LN_INV[{j}]"
        );
        let e = f64::from_bits(EXP2_64[j]);
        assert!(
            (e - (j as f64 / 16.0).exp2()).abs() <= f64::EPSILON * e,
            "EXP2_64[{j}]"
        );
    }
}

/// [`log1p_pd`] and [`exp_pd`] on one value, through all 8 lanes.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
unsafe fn log1p_exp_pd(v: f64) -> (f64, f64) {
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    unsafe {
        let (mut l, mut e) = ([0f64; 8], [0f64; 8]);
        _mm512_storeu_pd(l.as_mut_ptr(), log1p_pd(_mm512_set1_pd(v)));
        _mm512_storeu_pd(e.as_mut_ptr(), exp_pd(_mm512_set1_pd(v)));
        assert!(
            l.iter().all(|x| x.to_bits() == l[0].to_bits())
                && e.iter().all(|x| x.to_bits() == e[0].to_bits()),
            "lanes differ"
        );
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
                // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
                let (l, _) = unsafe { log1p_exp_pd(v) };
                worst.0 = worst.0.max(((l - v.ln_1p()) / v.ln_1p()).abs());
            }
        }
        s *= 2.0;
    }
    let mut d = -100.0;
    while d <= 100.0 {
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
        let (_, e) = unsafe { log1p_exp_pd(d) };
        worst.1 = worst.1.max(((e - d.exp()) / d.exp()).abs());
        d += 0.001_37;
    }
    assert!(worst.0 < 2f64.powi(-39), "log1p: {:e}", worst.0);
    assert!(worst.1 < 2f64.powi(-50), "exp: {:e}", worst.1);
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    let (l, e) = unsafe { log1p_exp_pd(0.0) };
    assert_eq!((l, e), (0.0, 1.0));
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
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
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
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
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
        let v = unsafe { one(x, m) } as f64;
        let truth = (x as f64 - m as f64).exp();
        if truth >= f32::MIN_POSITIVE as f64 {
            let ulp = f32::EPSILON as f64 * (2f64).powi((truth.log2().floor()) as i32);
            worst = worst.max((v - truth).abs() / ulp);
        } else {
            // subnormal results: within one subnormal step
            assert!(
                (v - truth).abs() <= 1.5e-45,
                "exp({x} - {m}) = {v}, truth {truth}"
            );
        }
    }
    // the final rounding, plus the table's and the cubic's remainders (measured 0.659)
    assert!(worst < 0.7, "worst error {worst} ulp");
    for (x, m, want) in [
        (0.0, 0.0, 1.0f32),
        (f32::NEG_INFINITY, 0.0, 0.0),
        (-200.0, 0.0, 0.0),
        (-1e30, 1e30, 0.0),
    ] {
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
        assert_eq!(unsafe { one(x, m) }, want, "exp({x} - {m})");
    }
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    assert!(unsafe { one(f32::NAN, 0.0) }.is_nan());
}

fn extremes(x: &[f32]) -> (f32, f32) {
    let v = x.iter().copied().filter(|v| !v.is_nan());
    (
        v.clone().fold(f32::NEG_INFINITY, f32::max),
        v.fold(f32::INFINITY, f32::min),
    )
}

#[test]
fn row_max_and_sum_match_the_portable_code() {
    if !available() {
        return;
    }
    // offsets that pick each mode: rows straddling 0 with |min| <= max's binade (ABOVE),
    // all negative (BELOW), mixed signs beyond it and -inf (GENERAL)
    for (shift, tail) in [
        (0.0f32, None),
        (-30.0, None),
        (8.0, Some(-40.0)),
        (0.0, Some(f32::NEG_INFINITY)),
    ] {
        for len in [1usize, 2, 15, 16, 17, 63, 64, 65, 100, 1000, 1037] {
            let mut x: Vec<f32> = (0..len)
                .map(|i| ((i * 7919 % 1013) as f32 - 500.0) * 0.02 + shift)
                .collect();
            if let Some(t) = tail {
                x[len - 1] = t;
            }
            for at in [0, len / 2, len - 1] {
                let top = 11.0 + shift;
                x[at] = top;
                // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
                let (m, mn, k) = unsafe { row_max(&x, None) };
                assert_eq!((m, mn), extremes(&x), "len {len}");
                assert_eq!(k, x.iter().position(|&v| v == top).unwrap(), "len {len}");
                // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
                assert_eq!(unsafe { row_max(&x, Some((m, mn))) }, (m, mn, k));
                // the next row: this one reversed, with a NaN (skipped by the extremes)
                let mut next: Vec<f32> = x.iter().rev().map(|v| v - 1.5).collect();
                next[len / 3] = f32::NAN;
                let truth: f64 = x
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .map(|(_, &v)| (v as f64 - top as f64).exp())
                    .sum();
                for (nx, want) in [
                    (&next[..], Some(extremes(&next))),
                    (&[][..], None),
                    (&next[1..], None),
                ] {
                    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
                    let (s, got) = unsafe { sum_exp(&x, m, mn, k, nx, &[]) };
                    assert!(
                        (s - truth).abs() <= 2e-7 * truth + 1e-300,
                        "shift {shift} len {len}: {s} vs {truth}"
                    );
                    assert_eq!(got, want, "len {len}");
                }
            }
        }
    }
    for len in [0usize, 5, 64, 100] {
        let x: Vec<f32> = (0..len)
            .map(|i| {
                if i % 7 == 3 {
                    f32::NAN
                } else {
                    (i as f32 * 0.37).sin()
                }
            })
            .collect();
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
        assert_eq!(unsafe { max(&x) }, extremes(&x).0, "len {len}");
    }
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    let (m, mn, k) = unsafe { row_max(&[f32::NAN, 1.0, f32::NAN, 3.0, 3.0], None) };
    assert_eq!((m, mn, k), (3.0, 1.0, 3));
    assert_eq!(
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
        unsafe { row_max(&[f32::NAN; 20], None) },
        (f32::NEG_INFINITY, f32::INFINITY, 0)
    );
    for x in [[1.0, f32::NAN, 0.0], [-1.0, f32::NAN, -2.0]] {
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
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
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 40) as f32 / 16777216.0 - 0.5
    }
}

/// Lane `i` of a `len x inner` block's log-probabilities in float64 from its float32
/// inputs: the max NaN-skipped, and the log1p of the sum without one max (`ln(1 + s)`
/// would lose a tiny `s`).
fn lane_reference(x: &[f32], len: usize, inner: usize, i: usize) -> Vec<f64> {
    let lane: Vec<f64> = (0..len).map(|c| x[c * inner + i] as f64).collect();
    let m = lane
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f64::NEG_INFINITY, f64::max);
    let k = lane.iter().position(|&v| v == m).unwrap_or(0);
    let lse = lane
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != k)
        .map(|(_, &v)| (v - m).exp())
        .sum::<f64>()
        .ln_1p();
    lane.iter().map(|&v| (v - m) - lse).collect()
}

/// float32 `x - m - lse`, correctly rounded from float64 (the reference for the writes).
fn ulps(a: f32, b: f64) -> i64 {
    let b = b as f32;
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            i64::MAX
        };
    }
    let key = |v: f32| {
        if v.to_bits() >> 31 == 1 {
            -((v.to_bits() & 0x7fff_ffff) as i64)
        } else {
            v.to_bits() as i64
        }
    };
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
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
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
            // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
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
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
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
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    let groups = (0..inner)
        .step_by(16)
        .filter(|&at| unsafe { shifted(&x, len, inner, at) })
        .count();
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    let shifted_at_48 = groups >= 1 && unsafe { shifted(&x, len, inner, 48) };
    assert!(shifted_at_48, "{groups} groups took the shifted path");
    let mut out = vec![0f32; x.len()];
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
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
    assert!(
        !wants_column::<f32>(3, inner) && !wants_column::<f32>(300, inner),
        "few classes, or a column beyond L1"
    );
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
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    unsafe { block_log_softmax(&wide, as_uninit(&mut direct), len, padded, &mut Vec::new()) };
    let mut storage = vec![0f32; len * inner + 1024];
    for shift in (0..1024).step_by(64) {
        let out = &mut storage[shift..shift + len * inner];
        // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
        unsafe { block_log_softmax(&x, as_uninit(out), len, inner, &mut Vec::new()) };
        for c in 0..len {
            for i in 0..inner {
                let (a, b) = (out[c * inner + i], direct[c * padded + i]);
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "shift {shift} class {c} lane {i}: {a} vs {b}"
                );
            }
        }
    }
    // lane 900's +inf makes it NaN by torch's rules, which lane_reference does not follow
    for i in [0, 3, 5, 511, 1023] {
        for (c, want) in lane_reference(&x, len, inner, i).into_iter().enumerate() {
            let o = direct[c * padded + i];
            assert!(
                ulps(o, want) <= 1 || (o.is_nan() && want.is_nan()),
                "lane {i} class {c}: {o} vs {want}"
            );
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
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    unsafe { block_log_softmax(&x, as_uninit(&mut out), len, inner, &mut Vec::new()) };
    let mut lse_out = vec![(0.0, 0.0); inner];
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
    unsafe { block_lse(&x, len, inner, 0, &mut lse_out[..20], &mut Vec::new()) };
    // SAFETY: the tests call the AVX-512 code only after `available()` found the features; every slice is as long as the lengths passed with it.
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
                assert!(
                    ulps(o, want) <= 1,
                    "{len}x{inner} lane {i} class {c}: {o} vs {want}"
                );
            }
        }
    }
}
