//! What each level compiles differently in the float32 kernels: [`Kernel32`], the hot loops,
//! portable Rust at the [`Plain`] and [`Fused`] levels and explicit intrinsics at the
//! [`Avx512`] level (`kernels::avx512`).

use super::block::{Block, block_lse_tiled, log_softmax_block_tiled};
use super::generic::{lanes_max, row_max, sum_exp32_generic};
use crate::kernels::elem::Elem;
use crate::kernels::simd::{Avx512, Fused, MulAdd, Plain};
use std::mem::MaybeUninit;

/// The float32 kernels' hot loops, per level.
pub(crate) trait Kernel32: MulAdd {
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
    /// `sum over j != skip of exp(x_j - m)` in float64 (see `exp::exp_diff32`), and, where the
    /// implementation fuses it into the same loop (AVX-512), the max and min of `next`, the
    /// row read after this one (`ahead`, the one after it, may be prefetched).
    #[inline(always)]
    fn sum_exp32<E: Elem>(
        x: &[E],
        m: f32,
        min: f32,
        skip: usize,
        next: &[E],
        ahead: &[E],
    ) -> (f64, Option<(f32, f32)>) {
        let _ = (min, next, ahead);
        (
            sum_exp32_generic::<Self, E>(&x[..skip], m)
                + sum_exp32_generic::<Self, E>(&x[skip + 1..], m),
            None,
        )
    }
    /// log_softmax of one `len x inner` block over its `len` axis: tiles of float64 lanes
    /// here, 16 float32 lanes at a time with AVX-512.
    #[inline(always)]
    fn log_softmax_block32<E: Elem>(
        x: &[E],
        out: &mut [MaybeUninit<E>],
        len: usize,
        inner: usize,
        b: &mut Block,
    ) {
        log_softmax_block_tiled::<Self, E>(x, out, len, inner, b)
    }
    /// Per-lane `(max, lse)` of the lanes `from..from + out.len()` of one block.
    #[inline(always)]
    fn block_lse32<E: Elem>(
        x: &[E],
        len: usize,
        inner: usize,
        from: usize,
        b: &mut Block,
        out: &mut [(f64, f64)],
    ) {
        block_lse_tiled::<Self, E>(x, len, inner, from, b, out)
    }
    /// The max of `x`, NaN skipped (`-inf` if none): [`lanes_max`], whose running maxima
    /// vectorise (one running max is a chain of dependent selects).
    #[inline(always)]
    fn max32(x: &[f32]) -> f32 {
        lanes_max(x)
    }
}

impl Kernel32 for Plain {}
impl Kernel32 for Fused {}

// SAFETY (every block below): `Avx512` is only instantiated by `simd::dispatched!` inside
// functions compiled with AVX-512 (F, DQ, VL, BW), which it calls after `simd::level()`
// detected them: the AVX-512 functions' one precondition.
#[cfg(target_arch = "x86_64")]
impl Kernel32 for Avx512 {
    #[inline(always)]
    fn write_row32<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], m: f64, lse: f64) {
        // SAFETY: AVX-512 is available (see above).
        unsafe { crate::kernels::avx512::rows::write_row(x, out, m, lse) }
    }
    #[inline(always)]
    fn row_max32<E: Elem>(x: &[E], known: Option<(f32, f32)>) -> (f32, f32, usize) {
        // SAFETY: AVX-512 is available (see above).
        unsafe { crate::kernels::avx512::rows::row_max(x, known) }
    }
    #[inline(always)]
    fn sum_exp32<E: Elem>(
        x: &[E],
        m: f32,
        min: f32,
        skip: usize,
        next: &[E],
        ahead: &[E],
    ) -> (f64, Option<(f32, f32)>) {
        // SAFETY: AVX-512 is available (see above); `skip < x.len()` (the row's max).
        unsafe { crate::kernels::avx512::rows::sum_exp(x, m, min, skip, next, ahead) }
    }
    #[inline(always)]
    fn log_softmax_block32<E: Elem>(
        x: &[E],
        out: &mut [MaybeUninit<E>],
        len: usize,
        inner: usize,
        b: &mut Block,
    ) {
        // SAFETY: AVX-512 is available (see above).
        unsafe {
            crate::kernels::avx512::block::block_log_softmax(x, out, len, inner, &mut b.column)
        }
    }
    #[inline(always)]
    fn block_lse32<E: Elem>(
        x: &[E],
        len: usize,
        inner: usize,
        from: usize,
        b: &mut Block,
        out: &mut [(f64, f64)],
    ) {
        // SAFETY: AVX-512 is available (see above).
        unsafe { crate::kernels::avx512::block::block_lse(x, len, inner, from, out, &mut b.column) }
    }
    #[inline(always)]
    fn max32(x: &[f32]) -> f32 {
        // SAFETY: AVX-512 is available (see above).
        unsafe { crate::kernels::avx512::rows::max(x) }
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Kernel32 for Avx512 {}
