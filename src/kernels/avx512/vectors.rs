//! Vector plumbing the AVX-512 row and block kernels share: widening and narrowing 16 lanes,
//! masks, running extremes, and the exact split of `max + lse` the writes subtract.
//!
//! Every `unsafe fn` here requires AVX-512 F, DQ, VL and BW; those that read memory say what
//! else in their own `# Safety`.

use crate::kernels::elem::Elem;
use std::arch::x86_64::*;

/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn widen_add(acc0: &mut __m512d, acc1: &mut __m512d, e: __m512) {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
    unsafe {
        let [lo, hi] = to_pd(e);
        *acc0 = _mm512_add_pd(*acc0, lo);
        *acc1 = _mm512_add_pd(*acc1, hi);
    }
}

/// 16 float32 lanes as two vectors of 8 float64 (lanes 0..8 and 8..16), exactly.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn to_pd(v: __m512) -> [__m512d; 2] {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
    unsafe {
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        [
            _mm512_cvtps_pd(_mm512_castps512_ps256(v)),
            _mm512_cvtps_pd(hi),
        ]
    }
}

/// [`to_pd`]'s inverse: two vectors of 8 float64, each rounded to float32, as 16 lanes.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn to_ps(v: [__m512d; 2]) -> __m512 {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
    unsafe {
        _mm512_insertf32x8::<1>(
            _mm512_castps256_ps512(_mm512_cvtpd_ps(v[0])),
            _mm512_cvtpd_ps(v[1]),
        )
    }
}

/// The mask of the first `n < 16` lanes.
#[inline(always)]
pub(super) fn head(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// The lanes of `[from, to)` in steps of 16, with the mask of each step.
#[inline(always)]
pub(super) fn steps(from: usize, to: usize) -> impl Iterator<Item = (usize, __mmask16)> {
    (from..to)
        .step_by(16)
        .map(move |at| (at, if at + 16 <= to { !0 } else { head(to - at) }))
}

/// Running max and min. vmaxps and vminps return their second operand when either is NaN:
/// the accumulator, so NaN elements are skipped.
#[derive(Clone, Copy)]
pub(super) struct Extremes {
    pub(super) max: __m512,
    pub(super) min: __m512,
}

impl Extremes {
    /// # Safety
    ///
    /// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
    #[inline(always)]
    pub(super) unsafe fn new() -> Self {
        // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
        unsafe {
            Extremes {
                max: _mm512_set1_ps(f32::NEG_INFINITY),
                min: _mm512_set1_ps(f32::INFINITY),
            }
        }
    }

    /// # Safety
    ///
    /// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
    #[inline(always)]
    pub(super) unsafe fn add(&mut self, v: __m512) {
        // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
        unsafe {
            self.max = _mm512_max_ps(v, self.max);
            self.min = _mm512_min_ps(v, self.min);
        }
    }

    /// `x[from..to]`, `to - from` a multiple of 16.
    ///
    /// # Safety
    ///
    /// AVX-512 F, DQ, VL and BW; `to <= x.len()`, `to - from` a multiple of 16.
    #[inline(always)]
    pub(super) unsafe fn span<E: Elem>(&mut self, x: &[E], from: usize, to: usize) {
        // SAFETY: the caller's contract: every load is a whole vector inside `from..to`, within `x`.
        unsafe {
            let mut i = from;
            while i < to {
                self.add(E::load16(x.as_ptr().add(i)));
                i += 16;
            }
        }
    }

    /// The lanes `h` of `x[at..at + 16]`.
    ///
    /// # Safety
    ///
    /// AVX-512 F, DQ, VL and BW; the lanes `h` of `x[at..at + 16]` are in bounds.
    #[inline(always)]
    pub(super) unsafe fn masked<E: Elem>(&mut self, x: &[E], at: usize, h: __mmask16) {
        // SAFETY: the caller's contract: the masked load touches only the lanes `h`, in bounds.
        unsafe {
            let v = E::load16_masked(h, x.as_ptr().add(at));
            self.max = _mm512_max_ps(
                _mm512_mask_blend_ps(h, _mm512_set1_ps(f32::NEG_INFINITY), v),
                self.max,
            );
            self.min = _mm512_min_ps(
                _mm512_mask_blend_ps(h, _mm512_set1_ps(f32::INFINITY), v),
                self.min,
            );
        }
    }

    /// # Safety
    ///
    /// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
    #[inline(always)]
    pub(super) unsafe fn reduce(self) -> (f32, f32) {
        // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
        unsafe {
            (
                _mm512_reduce_max_ps(self.max),
                _mm512_reduce_min_ps(self.min),
            )
        }
    }
}

/// `m + lse` as two float32s, `hi + lo`, with `lo` carrying what `hi` rounds away (also
/// when `lse` is far below `m`'s ulp, where float64's `m + lse` would drop it).
#[inline(always)]
pub(super) fn split_shift(m: f64, lse: f64) -> (f32, f32) {
    let hi = (m + lse) as f32;
    (hi, ((m - hi as f64) + lse) as f32)
}

/// `x - (hi + lo)` on 16 lanes, within half an ulp of the exact value plus a rounding of a
/// far smaller term: `x - hi` is split exactly (TwoSum) into `d + e`, and the result is
/// `d + (e - lo)`, one rounding after the exact part. Four float32 operations cheaper than
/// widening to float64 and back, and as accurate.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn shifted(x: __m512, hi: __m512, neg_hi: __m512, lo: __m512) -> __m512 {
    // SAFETY: AVX-512 is available (this function's contract); the intrinsics touch registers only.
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
