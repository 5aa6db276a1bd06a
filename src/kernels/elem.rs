//! The element types the float32 kernels read and write: float32 itself, and float16 and
//! bfloat16, whose every value is exactly a float32.
//!
//! A kernel generic over [`Elem`] loads 16 elements into a float32 vector (`vcvtph2ps` for
//! float16, a zero-extension and a shift for bfloat16), computes in float32 as it does for a
//! float32 input, and rounds each result once to the element type when it stores it (`vcvtps2ph`
//! for float16, an integer round-to-nearest-even for bfloat16, or AVX512_BF16's `vcvtneps2bf16`
//! through `NativeBf16` where the CPU has it). So a 16-bit input is converted
//! in registers: no float32 copy of it is made, and the result is the float32 kernel's,
//! rounded, bit for bit.

use half::{bf16, f16};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Keeps [`Elem`] to the types here: its loads and stores are part of the kernels' safety
/// argument, and the kernels tell bfloat16 apart by type.
mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
    impl Sealed for super::NativeBf16 {}
}

/// A float type the float32 kernels read and write (sealed: float32, float16, bfloat16).
pub trait Elem: sealed::Sealed + Copy + Send + Sync + Default + 'static {
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
    /// `simd::level()` detected them.
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
        // SAFETY: the trait's contract: `p[..16]` readable, AVX-512 available.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16_masked(h: __mmask16, p: *const f32) -> __m512 {
        // SAFETY: the trait's contract: the lanes `h` of `p[..16]` readable (the others are not read), AVX-512 available.
        unsafe { _mm512_maskz_loadu_ps(h, p) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16(p: *mut f32, v: __m512) {
        // SAFETY: the trait's contract: `p[..16]` writable, AVX-512 available.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16_masked(p: *mut f32, h: __mmask16, v: __m512) {
        // SAFETY: the trait's contract: the lanes `h` of `p[..16]` writable (the others are not written), AVX-512 available.
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
        // SAFETY: the trait's contract: `p[..16]` readable, AVX-512 available.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16_masked(h: __mmask16, p: *const f16) -> __m512 {
        // SAFETY: the trait's contract: the lanes `h` of `p[..16]` readable (the others are not read), AVX-512 available.
        unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(h, p.cast())) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16(p: *mut f16, v: __m512) {
        // SAFETY: the trait's contract: `p[..16]` writable, AVX-512 available.
        unsafe {
            _mm256_storeu_si256(
                p.cast(),
                _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v),
            )
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16_masked(p: *mut f16, h: __mmask16, v: __m512) {
        // SAFETY: the trait's contract: the lanes `h` of `p[..16]` writable (the others are not written), AVX-512 available.
        unsafe {
            _mm256_mask_storeu_epi16(
                p.cast(),
                h,
                _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v),
            )
        }
    }
}

/// `v` rounded to bfloat16, in the low half of each 32-bit lane: the same integer rounding as
/// [`bf16_bits`] (AVX512_BF16's `vcvtneps2bf16` would flush subnormals).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn bf16_lanes(v: __m512) -> __m512i {
    // SAFETY: AVX-512 is this function's contract; the intrinsics touch registers only.
    unsafe {
        let b = _mm512_castps_si512(v);
        let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
        let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(
            b,
            _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd),
        ));
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
        // SAFETY: the trait's contract: `p[..16]` readable, AVX-512 available.
        unsafe {
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(
                _mm256_loadu_si256(p.cast()),
            )))
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16_masked(h: __mmask16, p: *const bf16) -> __m512 {
        // SAFETY: the trait's contract: the lanes `h` of `p[..16]` readable (the others are not read), AVX-512 available.
        unsafe {
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(
                _mm256_maskz_loadu_epi16(h, p.cast()),
            )))
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16(p: *mut bf16, v: __m512) {
        // SAFETY: the trait's contract: `p[..16]` writable, AVX-512 available.
        unsafe { _mm256_storeu_si256(p.cast(), _mm512_cvtepi32_epi16(bf16_lanes(v))) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16_masked(p: *mut bf16, h: __mmask16, v: __m512) {
        // SAFETY: the trait's contract: the lanes `h` of `p[..16]` writable (the others are not written), AVX-512 available.
        unsafe { _mm512_mask_cvtepi32_storeu_epi16(p.cast(), h, bf16_lanes(v)) }
    }
}

/// bfloat16 stored with AVX512_BF16's `vcvtneps2bf16` (one instruction where [`bf16_lanes`]
/// takes nine): the same bits, since it rounds to nearest even and quietens a NaN as
/// [`bf16_bits`] does, but for subnormal inputs, which it flushes to zero; a vector holding one
/// (a log-probability between -2^-126 and 0, rare) takes the integer rounding. Loads are
/// bfloat16's.
///
/// Only a function compiled with `avx512bf16` (besides AVX-512 F, BW, VL and DQ), called after
/// [`native_bf16`] detected it, may use it: its stores are that instruction. Hence crate-private:
/// the public kernels generic over [`Elem`] would execute it unchecked.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
#[repr(transparent)]
pub(crate) struct NativeBf16(pub bf16);

/// Whether `E` is bfloat16: a type test, not a trait constant.
fn is_bf16<E: Elem>() -> bool {
    std::any::TypeId::of::<E>() == std::any::TypeId::of::<bf16>()
}

/// Whether `E` is bfloat16 and the CPU has AVX512_BF16 besides the AVX-512 level
/// (`NLLSPEC_SIMD` below it says no): the AVX-512 kernels then run their [`NativeBf16`] twins.
pub(crate) fn native_bf16_for<E: Elem>() -> bool {
    is_bf16::<E>() && native_bf16()
}

/// Whether the CPU has AVX512_BF16 besides the AVX-512 level (both detections are cached).
pub(crate) fn native_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::simd::level() == super::simd::Level::Avx512
        && is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A bfloat16 kernel's input as [`NativeBf16`] (the same layout, repr(transparent)).
///
/// # Safety
///
/// `E` is `bf16`.
pub(crate) unsafe fn as_native<E: Elem>(x: &[E]) -> &[NativeBf16] {
    debug_assert!(is_bf16::<E>());
    // SAFETY: E is bf16, which NativeBf16 wraps transparently.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

/// A bfloat16 kernel's output as [`NativeBf16`] storage.
///
/// # Safety
///
/// As [`as_native`].
pub(crate) unsafe fn as_native_out<E: Elem>(
    out: &mut [std::mem::MaybeUninit<E>],
) -> &mut [std::mem::MaybeUninit<NativeBf16>] {
    debug_assert!(is_bf16::<E>());
    // SAFETY: as in as_native; MaybeUninit keeps its parameter's layout.
    unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), out.len()) }
}

/// `v` to bfloat16 with `vcvtneps2bf16`, subnormal lanes by [`bf16_lanes`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn bf16_native(v: __m512) -> __m256i {
    // SAFETY: AVX-512 and AVX512-BF16 are this function's contract; the intrinsics touch registers only.
    unsafe {
        // SAFETY (layout): __m256bh and __m256i are both 32 bytes of lanes.
        let r: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
        // vfpclassps category 0x20: subnormal
        let sub = _mm512_fpclass_ps_mask::<0x20>(v);
        if sub == 0 {
            r
        } else {
            _mm256_mask_blend_epi16(sub, r, _mm512_cvtepi32_epi16(bf16_lanes(v)))
        }
    }
}

impl Elem for NativeBf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self.0.to_f32()
    }
    #[inline(always)]
    fn from_f32(v: f32) -> NativeBf16 {
        NativeBf16(<bf16 as Elem>::from_f32(v))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const NativeBf16) -> __m512 {
        // SAFETY: the trait's contract: `p[..16]` readable, AVX-512 available.
        unsafe { bf16::load16(p.cast()) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16_masked(h: __mmask16, p: *const NativeBf16) -> __m512 {
        // SAFETY: the trait's contract: the lanes `h` of `p[..16]` readable (the others are not read), AVX-512 available.
        unsafe { bf16::load16_masked(h, p.cast()) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16(p: *mut NativeBf16, v: __m512) {
        // SAFETY: the trait's contract: `p[..16]` writable, AVX-512 available.
        unsafe { _mm256_storeu_si256(p.cast(), bf16_native(v)) }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn store16_masked(p: *mut NativeBf16, h: __mmask16, v: __m512) {
        // SAFETY: the trait's contract: the lanes `h` of `p[..16]` writable (the others are not written), AVX-512 available.
        unsafe { _mm256_mask_storeu_epi16(p.cast(), h, bf16_native(v)) }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// [`NativeBf16`]'s stores give [`bf16_bits`]'s bits for every class of float32: normal
    /// values at and around each rounding tie, subnormals (flushed by the instruction alone),
    /// zeros, infinities, overflow to infinity, NaNs with assorted payloads and signs.
    #[test]
    fn native_bfloat16_stores_round_as_the_integer_path() {
        if !native_bf16() {
            return;
        }
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx512bf16")]
        unsafe fn native(v: &[f32; 16], h: __mmask16) -> [u16; 16] {
            let mut out = [NativeBf16(bf16::from_bits(0xdead)); 16];
            // SAFETY: the caller checked the features (`native_bf16`); `out` and `v` hold 16.
            unsafe {
                if h == !0 {
                    NativeBf16::store16(out.as_mut_ptr(), _mm512_loadu_ps(v.as_ptr()))
                } else {
                    NativeBf16::store16_masked(out.as_mut_ptr(), h, _mm512_loadu_ps(v.as_ptr()))
                }
            }
            out.map(|b| b.0.to_bits())
        }
        let mut bits: Vec<u32> = vec![
            0,
            0x8000_0000,
            0x7f80_0000,
            0xff80_0000,
            0x7f7f_ffff,
            0x7f7f_8000,
            0x7f7f_7fff,
            1,
            0x8000_0001,
        ];
        for hi in [
            0x0000u32, 0x0001, 0x003b, 0x007f, 0x0080, 0x3f80, 0x3f81, 0x7f80, 0x7fc0, 0x7fff,
            0x8000, 0x807f, 0xbf80, 0xff81,
        ] {
            for lo in [0x0000u32, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff] {
                bits.push(hi << 16 | lo);
            }
        }
        let mut s = 0x9e37_79b9u32;
        bits.extend((0..4096).map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        }));
        for chunk in bits.chunks(16) {
            let mut v = [0f32; 16];
            for (o, &b) in v.iter_mut().zip(chunk) {
                *o = f32::from_bits(b);
            }
            let h = if chunk.len() == 16 {
                !0
            } else {
                ((1u32 << chunk.len()) - 1) as __mmask16
            };
            // SAFETY: `native_bf16()` said the CPU has its features.
            let got = unsafe { native(&v, h) };
            for (l, &b) in chunk.iter().enumerate() {
                assert_eq!(got[l], bf16_bits(f32::from_bits(b)), "{b:#010x}");
            }
            for &g in &got[chunk.len()..] {
                assert_eq!(g, 0xdead, "lanes outside the mask are not written");
            }
        }
    }
}
