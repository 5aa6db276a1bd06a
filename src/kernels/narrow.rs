//! float16 and bfloat16 log_softmax through the float32 kernels ([`super::fast`]).
//!
//! Every float16 and bfloat16 value is exactly a float32. Where the CPU has AVX-512 the
//! kernels read and write the 16-bit data themselves, converting in registers
//! ([`super::elem`]). Elsewhere the input is widened a tile at a time into a float32 scratch
//! that stays in cache, the float32 kernel runs on the tile, and its output is rounded back (to
//! nearest even). Either way no full-size float32 copy is made, and the results are the same
//! bit for bit (the float32 kernel's, rounded once).
//!
//! Accuracy: the float32 result is within an ulp of its own, then rounded once more, so an
//! element lands on the neighbour of the correctly rounded 16-bit value when the truth lies
//! within that ulp of a 16-bit rounding midpoint (double rounding; PyTorch's float32
//! accumulation does the same). `nllspec accuracy` measures at most 1 ulp. The float64 kernel
//! on widened values would be correctly rounded, and about twice as slow (compare the float64
//! and float16 rows of `cargo bench --bench ops -- log_softmax_dtypes`); the backward, which
//! starts from the float64 forward, is correctly rounded.
//!
//! Tiles: whole rows for the last dim (about `TILE_ELEMENTS` elements a tile); for an outer
//! dim, a range of lanes with every class, gathered into a compact `len x w` block (its own
//! `inner = w`). Each lane's result does not depend on the tiling, nor on the thread count.

use super::elem::Elem;
use super::fast::{log_softmax_f32, log_softmax_f32_uninit};
use super::lanes::{Lanes, split_lanes};
use super::simd::{Level, level};
use crate::tensor::as_uninit;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use std::mem::MaybeUninit;

/// Elements per tile: 64 KiB of float32 input and as much output, in L2.
const TILE_ELEMENTS: usize = 16 * 1024;

/// A 16-bit float the float32 kernels can work on: its slice conversions for the tiles, one
/// [`Elem`] conversion an element (branch-free, so that they vectorise).
pub trait Narrow: Elem {
    /// `dst[i] = src[i]` exactly.
    fn widen(src: &[Self], dst: &mut [f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s.to_f32();
        }
    }
    /// `dst[i] = src[i]` rounded to nearest, ties to even (every element of `dst` written).
    fn narrow(src: &[f32], dst: &mut [MaybeUninit<Self>]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            d.write(Self::from_f32(s));
        }
    }
}

impl Narrow for f16 {
    /// `half`'s slice conversion, which uses F16C where the CPU has it.
    fn widen(src: &[f16], dst: &mut [f32]) {
        src.convert_to_f32_slice(dst);
    }
    /// F16C's `vcvtps2ph` where the CPU has it, above the portable level: `half`'s conversion an element at a time does
    /// not vectorise, and made float16 log_softmax 8x21x128x128 at the AVX2 level 32 ms
    /// against 6 ms for bfloat16 (`half`'s slice conversion needs initialised storage).
    fn narrow(src: &[f32], dst: &mut [MaybeUninit<f16>]) {
        // not at the portable level (which NLLSPEC_SIMD=portable forces, so that CI runs the loop below)
        #[cfg(target_arch = "x86_64")]
        if level() != Level::Portable && is_x86_feature_detected!("f16c") {
            // SAFETY: the features were detected.
            return unsafe { narrow_f16c(src, dst) };
        }
        for (d, &s) in dst.iter_mut().zip(src) {
            d.write(f16::from_f32(s));
        }
    }
}

/// [`Narrow::narrow`] for float16 with F16C, 8 elements at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn narrow_f16c(src: &[f32], dst: &mut [MaybeUninit<f16>]) {
    use std::arch::x86_64::*;
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n elements of both.
        unsafe {
            let h =
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
        }
        i += 8;
    }
    for (d, &s) in dst[i..n].iter_mut().zip(&src[i..n]) {
        d.write(f16::from_f32(s));
    }
}

impl Narrow for bf16 {}

/// Whether the float32 kernels read and write 16-bit data directly ([`super::elem`]): with
/// AVX-512. Elsewhere their portable code would convert element by element, and tiles
/// converted a slice at a time are faster.
pub fn in_registers() -> bool {
    level() == Level::Avx512
}

/// Scratch for one tile: float32 input and output, kept per thread (a fresh 64 KiB buffer
/// per call costs page faults again whenever the allocator has given the last one back).
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    y: Vec<f32>,
}

impl Scratch {
    fn sized(&mut self, n: usize) -> (&mut [f32], &mut [f32]) {
        self.x.resize(n, 0.0);
        self.y.resize(n, 0.0);
        (&mut self.x[..n], &mut self.y[..n])
    }
}

/// `f` with this thread's scratch (a fresh one if this thread is already using its own: the
/// float32 kernels called inside may run rayon tasks on it).
fn with_scratch(f: impl FnOnce(&mut Scratch)) {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
    }
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Whole rows, about [`TILE_ELEMENTS`] at a time.
fn rows<T: Narrow>(x: &[T], out: &mut [MaybeUninit<T>], len: usize, s: &mut Scratch) {
    let per_tile = (TILE_ELEMENTS / len).max(1) * len;
    for (xs, os) in x.chunks(per_tile).zip(out.chunks_mut(per_tile)) {
        let (a, b) = s.sized(xs.len());
        T::widen(xs, a);
        log_softmax_f32(
            a,
            b,
            Lanes {
                outer: xs.len() / len,
                len,
                inner: 1,
            },
        );
        T::narrow(b, os);
    }
}

/// One `len x inner` block, a range of lanes at a time.
fn block<T: Narrow>(
    x: &[T],
    out: &mut [MaybeUninit<T>],
    len: usize,
    inner: usize,
    s: &mut Scratch,
) {
    // A multiple of 16 lanes (the AVX-512 block kernel's width), at least 16.
    let w = ((TILE_ELEMENTS / len).max(16) / 16 * 16).min(inner);
    for i0 in (0..inner).step_by(w) {
        let w = w.min(inner - i0);
        let (a, b) = s.sized(len * w);
        for k in 0..len {
            T::widen(
                &x[k * inner + i0..k * inner + i0 + w],
                &mut a[k * w..(k + 1) * w],
            );
        }
        log_softmax_f32(
            a,
            b,
            Lanes {
                outer: 1,
                len,
                inner: w,
            },
        );
        for k in 0..len {
            T::narrow(
                &b[k * w..(k + 1) * w],
                &mut out[k * inner + i0..k * inner + i0 + w],
            );
        }
    }
}

/// log_softmax of an `outer x len x inner` float16 or bfloat16 tensor over its `len` axis, into
/// `out`: converted in registers where the CPU has AVX-512, a tile at a time elsewhere (the
/// result is the same, bit for bit). Rows or blocks are spread over threads by `split_lanes`.
pub fn log_softmax_narrow<T: Narrow>(x: &[T], out: &mut [T], lanes: Lanes) {
    // SAFETY: the kernels write only values.
    log_softmax_narrow_uninit(x, unsafe { as_uninit(out) }, lanes)
}

/// [`log_softmax_narrow`] into uninitialised storage: every element of `out` is written.
pub fn log_softmax_narrow_uninit<T: Narrow>(x: &[T], out: &mut [MaybeUninit<T>], lanes: Lanes) {
    if in_registers() {
        return log_softmax_f32_uninit(x, out, lanes);
    }
    tiled(x, out, lanes)
}

/// [`log_softmax_narrow`] through float32 tiles.
fn tiled<T: Narrow>(x: &[T], out: &mut [MaybeUninit<T>], lanes: Lanes) {
    let Lanes { len, inner, .. } = lanes;
    split_lanes(
        x,
        out,
        lanes,
        || (),
        |r, o, _| with_scratch(|s| rows(r, o, len, s)),
        |r, o, _| with_scratch(|s| block(r, o, len, inner, s)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfloat16_rounding_matches_half() {
        let mut b = 0x0000_0001u32;
        let mut values = vec![
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MAX,
            f32::MIN_POSITIVE,
        ];
        for _ in 0..200_000 {
            b = b.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            values.push(f32::from_bits(b));
            // exact ties, both parities
            values.push(f32::from_bits(b & 0xffff_0000 | 0x8000));
        }
        let mut ours = vec![bf16::ZERO; values.len()];
        // SAFETY: narrow writes only values.
        bf16::narrow(&values, unsafe { as_uninit(&mut ours) });
        for (v, o) in values.iter().zip(&ours) {
            assert_eq!(
                o.to_bits(),
                bf16::from_f32(*v).to_bits(),
                "{v:e} ({:#x})",
                v.to_bits()
            );
        }
        let mut back = vec![0.0f32; values.len()];
        bf16::widen(&ours, &mut back);
        for (o, w) in ours.iter().zip(&back) {
            assert_eq!(o.to_f32().to_bits(), w.to_bits());
        }
    }

    #[test]
    fn float16_rounding_matches_the_software_conversion() {
        // half's const conversion is software whatever the CPU: the reference for F16C's
        let mut b = 0x0000_0001u32;
        let mut values = vec![
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MAX,
            f32::MIN_POSITIVE,
            65520.0,
            65519.99,
            5.96e-8,
            2.98e-8,
        ];
        for _ in 0..200_000 {
            b = b.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            values.push(f32::from_bits(b));
            // near float16's range: ties (13 low bits 0x1000), both parities, and subnormals
            let v = f32::from_bits(b & 0x87ff_e000 | 0x3000_1000);
            values.push(v);
            values.push(v * 2f32.powi(-20));
        }
        // odd lengths: a tail after the 8-element steps
        for len in [values.len(), values.len() - 3] {
            let mut ours = vec![f16::ZERO; len];
            // SAFETY: narrow writes only values.
            f16::narrow(&values[..len], unsafe { as_uninit(&mut ours) });
            for (v, o) in values.iter().zip(&ours) {
                let want = f16::from_f32_const(*v);
                assert!(
                    o.to_bits() == want.to_bits() || (o.is_nan() && want.is_nan()),
                    "{v:e} ({:#x}): {:#x} vs {:#x}",
                    v.to_bits(),
                    o.to_bits(),
                    want.to_bits()
                );
            }
        }
    }

    /// Both 16-bit paths (in registers where the CPU has AVX-512, and tiles) against the
    /// float32 kernel on the widened input, rounded: bit for bit, for rows and outer dims with
    /// partial vectors and tiles, NaN, infinities, and a dominant element whose log-probability
    /// is a float32 subnormal (-18 e^-91, about -5.4e-39: bfloat16 keeps it, 0x803b, where a
    /// flushing conversion gives -0; float16 rounds it to -0).
    fn check<T: Narrow>(make: impl Fn(f32) -> T, bits: impl Fn(T) -> u16) {
        let shapes = [
            (3, 7, 1),
            (2, 4000, 1),
            (5, 20_000, 1),
            (2, 5, 37),
            (2, 3, 16 * 1024 + 5),
            (1, 1500, 33),
            (6, 19, 1),
            (2, 19, 21),
        ];
        for (outer, len, inner) in shapes {
            let n = outer * len * inner;
            let mut x: Vec<T> = (0..n)
                .map(|i| make(((i * 7919 % 1009) as f32 - 500.0) * 0.021))
                .collect();
            if len == 19 {
                // lane 0: a NaN; lane 1: +inf; lane 2: -inf and a finite max; lane 3: all
                // -inf; lane 4: [0, -91, -91, ...]
                let at = |lane: usize, j: usize| (lane / inner * len + j) * inner + lane % inner;
                x[at(0, 5)] = make(f32::NAN);
                x[at(1, 18)] = make(f32::INFINITY);
                x[at(2, 0)] = make(f32::NEG_INFINITY);
                for j in 0..len {
                    x[at(3, j)] = make(f32::NEG_INFINITY);
                    x[at(4, j)] = make(if j == 0 { 0.0 } else { -91.0 });
                }
            }
            let wide: Vec<f32> = x.iter().map(|&v| v.to_f32()).collect();
            let mut y = vec![0.0f32; n];
            log_softmax_f32(&wide, &mut y, Lanes { outer, len, inner });
            let mut want = vec![T::default(); n];
            // SAFETY: as above.
            T::narrow(&y, unsafe { as_uninit(&mut want) });
            let mut direct = vec![T::default(); n];
            log_softmax_narrow(&x, &mut direct, Lanes { outer, len, inner });
            let mut tiles = vec![T::default(); n];
            // SAFETY: as above.
            tiled(
                &x,
                unsafe { as_uninit(&mut tiles) },
                Lanes { outer, len, inner },
            );
            for (path, out) in [("direct", &direct), ("tiled", &tiles)] {
                for (i, (&a, &b)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        bits(a) == bits(b),
                        "{path} {outer}x{len}x{inner} element {i}: {} vs {}",
                        a.to_f32(),
                        b.to_f32()
                    );
                }
            }
        }
    }

    #[test]
    fn both_paths_give_the_float32_kernels_result() {
        check(f16::from_f32, f16::to_bits);
        check(bf16::from_f32, bf16::to_bits);
    }
}
