//! The AVX-512 row kernels: a contiguous row's extremes, its sum of `exp(x_j - max)` (the next
//! row's extremes read in the same loop), and its writes.

use super::exp::{ABOVE, BELOW, ExpConsts, GENERAL, exp16, exp16xn, mode};
use super::vectors::{Extremes, head, shifted, split_shift, widen_add};
use crate::kernels::elem::{Elem, NativeBf16, as_native, as_native_out, native_bf16_for};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// A row's max and min (NaN elements skipped, as `fast::generic::row_max` does; a row of
/// NaN gives `(-inf, +inf)`) and the first position of the max (0 if none). `known` is
/// `(max, min)` when an earlier pass computed them ([`sum_exp`] does, for the next row):
/// only the position is searched then.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the float32 kernels call this only at the AVX-512 level).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(crate) unsafe fn row_max<E: Elem>(x: &[E], known: Option<(f32, f32)>) -> (f32, f32, usize) {
    // SAFETY: AVX-512 is this function's contract; each load is of `x[i..]` masked to the lanes below `x.len()`.
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
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(crate) unsafe fn max(x: &[f32]) -> f32 {
    // SAFETY: AVX-512 is this function's contract; `extremes` reads only inside `x`.
    unsafe { extremes::<f32>(x).0 }
}

/// `(max, min)` of `x`, NaN elements skipped (`(-inf, +inf)` if there is none).
#[inline(always)]
pub(super) unsafe fn extremes<E: Elem>(x: &[E]) -> (f32, f32) {
    // SAFETY: AVX-512 is this function's contract; `span` covers whole vectors below `n & !15` and `masked` the lanes below `n` of the last.
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

/// `sum over j != skip of exp(x_j - m)` in float64, for `m = max(x)` (finite) and
/// `mn = min(x)` (both NaN-skipping); NaN if a NaN is in the row.
///
/// `next` is the row the caller reads after this one: when it has this row's length, its
/// max and min are computed in the same loop and returned (that row is in L2 by then:
/// `ahead`, the row after it, is prefetched on the way), so that no row needs a pass of its
/// own for them and memory traffic overlaps arithmetic.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the float32 kernels call this only at the AVX-512 level).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(crate) unsafe fn sum_exp<E: Elem>(
    x: &[E],
    m: f32,
    mn: f32,
    skip: usize,
    next: &[E],
    ahead: &[E],
) -> (f64, Option<(f32, f32)>) {
    // SAFETY: AVX-512 is this function's contract; the loads are of whole vectors below `x.len() & !15` and masked partial ones; `next` is as long as `x` (or is `x`); `ahead` is only prefetched, which never faults.
    unsafe {
        let n = x.len();
        let c = ExpConsts::new(m);
        // Without a next row of the same length, the loop reads this row twice (from L1)
        // and the extremes are dropped: one loop to compile, not two.
        let fuse = next.len() == n;
        let next = if fuse { next } else { x };
        let mut pass = Pass {
            acc: [_mm512_setzero_pd(); 2],
            next: Extremes::new(),
        };
        // The loops run unmasked on either side of the vector holding `skip`, which is
        // done alone with its lane masked; the partial last vector is a masked load.
        let full = n & !15;
        let sv = skip & !15;
        let one = |at: usize, h: __mmask16, pass: &mut Pass| {
            let keep = if sv == at {
                h & !(1u16 << (skip - sv))
            } else {
                h
            };
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
pub(super) struct Pass {
    pub(super) acc: [__m512d; 2],
    pub(super) next: Extremes,
}

/// The terms of `x[from..to]` (`to - from` a multiple of 16) into `pass`, and the extremes of
/// `next[from..to]` (`next` as long as `x`).
///
/// Four vectors of terms are added in float32 ((e0 + e1) + (e2 + e3): two roundings of at
/// most half an ulp of a partial sum) before the float64 accumulation, whose conversions
/// would otherwise cost more than a sixth of the loop.
///
/// # Safety
///
/// AVX-512 F, DQ, VL and BW; `from..to` lies within `x` and `next`.
#[inline(always)]
pub(super) unsafe fn sum_span<E: Elem, const MODE: u8>(
    x: &[E],
    from: usize,
    to: usize,
    c: ExpConsts,
    next: &[E],
    ahead: &[E],
    pass: &mut Pass,
) {
    // SAFETY: the caller's contract: every load is of a whole vector inside `from..to`, within `x` and `next`; prefetches never fault.
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
            // from L2: a row is longer than L1), so that the loads do not wait on L2; with the
            // L2 prefetch above, this loop comes closer to one plain read of the input
            // (measured: docs/PERFORMANCE.md).
            for line in 0..std::mem::size_of::<E>() {
                _mm_prefetch::<_MM_HINT_T0>(
                    q.wrapping_add(i + 1024)
                        .cast::<i8>()
                        .wrapping_add(64 * line),
                );
                _mm_prefetch::<_MM_HINT_T0>(
                    p.wrapping_add(i + 1024)
                        .cast::<i8>()
                        .wrapping_add(64 * line),
                );
            }
            // an array literal, not `map`: a closure would not inherit this function's target features
            let v = [
                E::load16(p.add(i)),
                E::load16(p.add(i + 16)),
                E::load16(p.add(i + 32)),
                E::load16(p.add(i + 48)),
            ];
            // a chain, not a tree: a tree would let a NaN hide its neighbours
            for o in [0, 16, 32, 48] {
                ex.add(E::load16(q.add(i + o)));
            }
            let [e0, e1, e2, e3] = exp16xn::<4, MODE>(v, c, [!0; 4]);
            widen_add(
                &mut a0,
                &mut a1,
                _mm512_add_ps(_mm512_add_ps(e0, e1), _mm512_add_ps(e2, e3)),
            );
            i += 64;
        }
        while i < to {
            ex.add(E::load16(q.add(i)));
            widen_add(
                &mut a0,
                &mut a1,
                exp16xn::<1, MODE>([E::load16(p.add(i))], c, [!0])[0],
            );
            i += 16;
        }
        pass.acc = [a0, a1];
        pass.next = ex;
    }
}

/// A row's log-probabilities `x - m - lse` into `out` (same length), see [`shifted`].
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the float32 kernels call this only at the AVX-512 level).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(crate) unsafe fn write_row<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], m: f64, lse: f64) {
    // SAFETY: AVX-512 is this function's contract; `as_native` needs the check `native_bf16_for` just made (AVX512-BF16, `E` is bfloat16).
    unsafe {
        if native_bf16_for::<E>() {
            return write_row_native(as_native(x), as_native_out(out), m, lse);
        }
        write_row_body(x, out, m, lse)
    }
}

/// [`write_row`] for bfloat16 where the CPU converts to it ([`NativeBf16`]).
///
/// # Safety
///
/// AVX-512 F, DQ, VL, BW and BF16.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,avx512bf16")]
pub(super) unsafe fn write_row_native(
    x: &[NativeBf16],
    out: &mut [MaybeUninit<NativeBf16>],
    m: f64,
    lse: f64,
) {
    // SAFETY: the caller's contract: the CPU features.
    unsafe { write_row_body(x, out, m, lse) }
}

/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn write_row_body<E: Elem>(
    x: &[E],
    out: &mut [MaybeUninit<E>],
    m: f64,
    lse: f64,
) {
    // SAFETY: AVX-512 is this function's contract; loads and stores are of whole vectors below `n = min(x.len(), out.len())` and one masked partial vector.
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
            E::store16_masked(
                o.add(i),
                h,
                shifted(E::load16_masked(h, p.add(i)), vh, vnh, vl),
            );
        }
    }
}
