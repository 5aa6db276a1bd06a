//! The element types the float32 kernels read and write: float32 itself, and float16 and
//! bfloat16, whose every value is exactly a float32.
//!
//! A kernel generic over [`Elem`] loads 16 elements into a float32 vector (`vcvtph2ps` for
//! float16, a zero-extension and a shift for bfloat16), computes in float32 as it does for a
//! float32 input, and rounds each result once to the element type when it stores it (`vcvtps2ph`
//! for float16, an integer round-to-nearest-even for bfloat16). So a 16-bit input is converted
//! in registers: no float32 copy of it is made, and the result is the float32 kernel's,
//! rounded, bit for bit.

use half::{bf16, f16};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// A float type the float32 kernels read and write.
pub trait Elem: Copy + Send + Sync + Default + 'static {
    /// The value, exactly.
    fn to_f32(self) -> f32;
    /// `v` rounded to nearest, ties to even (NaN stays NaN).
    fn from_f32(v: f32) -> Self;

    /// 16 elements from `p` as float32.
    ///
    /// # Safety
    ///
    /// Like every function below: `p[..16]` is readable (for the masked ones, the lanes of the
    /// mask), and the caller is compiled with AVX-512 F, BW and VL, called after
    /// `fast::level()` detected them.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> __m512;
    /// The elements `h` of `p[..16]`, 0 in the other lanes (which are not read).
    ///
    /// # Safety
    ///
    /// See [`Elem::load16`].
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16_masked(h: __mmask16, p: *const Self) -> __m512;
    /// `v` rounded to the element type into `p[..16]`.
    ///
    /// # Safety
    ///
    /// See [`Elem::load16`] (`p[..16]` writable).
    #[cfg(target_arch = "x86_64")]
    unsafe fn store16(p: *mut Self, v: __m512);
    /// The lanes `h` of `v`, rounded, into `p[..16]` (the others are not written).
    ///
    /// # Safety
    ///
    /// See [`Elem::load16`] (the lanes `h` of `p[..16]` writable).
    #[cfg(target_arch = "x86_64")]
    unsafe fn store16_masked(p: *mut Self, h: __mmask16, v: __m512);
}

impl Elem for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> f32 {
        v
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16_masked(h: __mmask16, p: *const f32) -> __m512 {
        unsafe { _mm512_maskz_loadu_ps(h, p) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16(p: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16_masked(p: *mut f32, h: __mmask16, v: __m512) {
        unsafe { _mm512_mask_storeu_ps(p, h, v) }
    }
}

impl Elem for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> f16 {
        f16::from_f32(v)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const f16) -> __m512 {
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16_masked(h: __mmask16, p: *const f16) -> __m512 {
        unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(h, p.cast())) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16(p: *mut f16, v: __m512) {
        unsafe { _mm256_storeu_si256(p.cast(), _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16_masked(p: *mut f16, h: __mmask16, v: __m512) {
        unsafe { _mm256_mask_storeu_epi16(p.cast(), h, _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)) }
    }
}

/// `v` rounded to bfloat16, in the low half of each 32-bit lane: the same integer rounding as
/// [`bf16_bits`] (AVX512_BF16's `vcvtneps2bf16` would flush subnormals).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn bf16_lanes(v: __m512) -> __m512i {
    unsafe {
        let b = _mm512_castps_si512(v);
        let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
        let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd)));
        let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(0x40));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
        _mm512_mask_blend_epi32(nan, rounded, quiet)
    }
}

/// `v` rounded to bfloat16 bits, to nearest even, branch-free (it vectorises): add just under
/// half of the dropped part plus the kept part's last bit; a NaN stays NaN (quietened, sign and
/// the payload's top bits kept, as `bf16::from_f32` does).
#[inline(always)]
fn bf16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
    let nan = ((b >> 16) | 0x40) as u16;
    if v.is_nan() { nan } else { rounded }
}

impl Elem for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits((self.to_bits() as u32) << 16)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> bf16 {
        bf16::from_bits(bf16_bits(v))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const bf16) -> __m512 {
        unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast())))) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16_masked(h: __mmask16, p: *const bf16) -> __m512 {
        unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(h, p.cast())))) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16(p: *mut bf16, v: __m512) {
        unsafe { _mm256_storeu_si256(p.cast(), _mm512_cvtepi32_epi16(bf16_lanes(v))) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16_masked(p: *mut bf16, h: __mmask16, v: __m512) {
        unsafe { _mm512_mask_cvtepi32_storeu_epi16(p.cast(), h, bf16_lanes(v)) }
    }
}
