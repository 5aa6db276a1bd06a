//! The float32 outer-dim kernel's portable code: a `len x inner` block (classes strided by
//! `inner`) a tile of lanes at a time, vectorised across the lanes.

use crate::kernels::elem::Elem;
use crate::kernels::exp::{exp_diff32, exp_neg, log1p64};
use crate::kernels::simd::MulAdd;
use std::mem::MaybeUninit;

/// Lanes per tile of the outer-dim kernel: its scratch (24 bytes a lane) and a tile of a
/// short class axis stay in L1.
pub(crate) const TILE: usize = 512;

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
    pub(crate) column: Vec<f32>,
}

/// Per-lane max and log-sum-exp of a `len x inner` block (classes strided by `inner`),
/// vectorised across the lanes.
#[inline(always)]
fn block_stats_body<F: MulAdd, E: Elem>(
    x: &[E],
    len: usize,
    inner: usize,
    i0: usize,
    w: usize,
    b: &mut Block,
) {
    assert!(
        u32::try_from(len).is_ok(),
        "{len} classes: more than a tensor can hold"
    );
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
    // off instead of 1). The float64 exp here ran on half-width vectors and was slower at every
    // level (measured: docs/PERFORMANCE.md).
    let mut c = 0;
    while c + 4 <= len {
        let (r0, r1, r2, r3) = (
            &x[lanes(c)],
            &x[lanes(c + 1)],
            &x[lanes(c + 2)],
            &x[lanes(c + 3)],
        );
        let ci = c as u32;
        let (p01, p23) = b.p.split_at_mut(2 * w);
        let (p0, p1) = p01.split_at_mut(w);
        let (p2, p3) = p23.split_at_mut(w);
        for (((((p0, p1), p2), p3), (&m, &k)), (((&v0, &v1), &v2), &v3)) in p0
            .iter_mut()
            .zip(p1.iter_mut())
            .zip(p2.iter_mut())
            .zip(p3.iter_mut())
            .zip(b.m.iter().zip(&b.k))
            .zip(r0.iter().zip(r1).zip(r2).zip(r3))
        {
            // the first max is left out: the sum is of the others
            let d = k.wrapping_sub(ci);
            let z = |v: E, j: u32| {
                let e = exp_diff32::<F>(v.to_f32(), m);
                if d == j { 0.0 } else { e }
            };
            (*p0, *p1, *p2, *p3) = (z(v0, 0), z(v1, 1), z(v2, 2), z(v3, 3));
        }
        for ((((s, &e0), &e1), &e2), &e3) in
            b.lse.iter_mut().zip(&*p0).zip(&*p1).zip(&*p2).zip(&*p3)
        {
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
                *s = (0..len)
                    .filter(|&c| c != k)
                    .map(|c| exp_neg::<F>(x[c * inner + i0 + i].to_f32() as f64 - m))
                    .sum();
            }
        }
    }
    for (s, &m) in b.lse.iter_mut().zip(&b.mm) {
        // A NaN in row 0 makes the max NaN; +inf or an all -inf lane makes it non-finite.
        *s = if m.is_finite() {
            log1p64::<F>(*s)
        } else {
            f64::NAN
        };
    }
}

#[inline(always)]
pub(crate) fn log_softmax_block_tiled<F: MulAdd, E: Elem>(
    x: &[E],
    out: &mut [MaybeUninit<E>],
    len: usize,
    inner: usize,
    b: &mut Block,
) {
    for i0 in (0..inner).step_by(TILE) {
        let w = TILE.min(inner - i0);
        block_stats_body::<F, E>(x, len, inner, i0, w, b);
        for c in 0..len {
            let at = c * inner + i0..c * inner + i0 + w;
            for (((o, &v), &m), &lse) in out[at.clone()]
                .iter_mut()
                .zip(&x[at])
                .zip(&b.mm)
                .zip(&b.lse)
            {
                o.write(E::from_f32(((v.to_f32() as f64 - m) - lse) as f32));
            }
        }
    }
}

#[inline(always)]
pub(crate) fn block_lse_tiled<F: MulAdd, E: Elem>(
    x: &[E],
    len: usize,
    inner: usize,
    from: usize,
    b: &mut Block,
    out: &mut [(f64, f64)],
) {
    for (j0, o) in (0..out.len()).step_by(TILE).zip(out.chunks_mut(TILE)) {
        block_stats_body::<F, E>(x, len, inner, from + j0, o.len(), b);
        for ((o, &m), &lse) in o.iter_mut().zip(&b.mm).zip(&b.lse) {
            *o = (m, lse);
        }
    }
}
