//! Run-time dispatch: the instruction-set [`Level`] this CPU supports, and `dispatched!`,
//! which compiles a kernel body once per level and calls the best one.
//!
//! A kernel body is generic over a `MulAdd` marker type (`Avx512`, `Fused`, `Plain`):
//! the marker says how `a * b + c` is computed, and the float32 kernels
//! (`kernels::fast::kernel`) give the `Avx512` marker explicit intrinsics for their hot
//! loops. This module imports nothing from the crate, so that every kernel can use it.

use std::sync::OnceLock;

/// The instruction sets the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Avx512,
    Avx2,
    Portable,
}

/// The best level this CPU supports (detected once). `NLLSPEC_SIMD=portable|avx2` lowers it,
/// for testing the fallbacks.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("NLLSPEC_SIMD").unwrap_or_default();
        #[cfg(target_arch = "x86_64")]
        {
            // every feature a function compiled for the level enables (`dispatched!`, and the
            // AVX-512 kernels' 16-bit loads and stores, `elem`), not only the ones the kernels
            // are named after
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512 = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512bw");
            if cap != "portable" && cap != "avx2" && avx2 && avx512 {
                return Level::Avx512;
            }
            if cap != "portable" && avx2 {
                return Level::Avx2;
            }
        }
        let _ = cap;
        Level::Portable
    })
}

/// How a level computes `a * b + c`: fused where the CPU has FMA (one rounding, one
/// instruction), plain elsewhere (`f64::mul_add` without hardware FMA is a slow library call).
pub(crate) trait MulAdd: Sized {
    fn mul_add(a: f64, b: f64, c: f64) -> f64;
    fn mul_add32(a: f32, b: f32, c: f32) -> f32;
}

/// The AVX-512 level: fused multiply-add, and 512-bit vectors in the kernels that have
/// explicit code for it. Only instantiated by `dispatched!` inside functions compiled with
/// AVX-512, called after [`level`] detected it.
pub(crate) struct Avx512;
/// `a * b + c` with one rounding (an FMA instruction): the AVX2 level.
pub(crate) struct Fused;
/// `a * b + c` with two roundings: the portable level.
pub(crate) struct Plain;

/// The fused levels: `f64::mul_add` is one FMA instruction inside their functions.
macro_rules! fused {
    ($($t:ty),*) => {$(
        impl MulAdd for $t {
            #[inline(always)]
            fn mul_add(a: f64, b: f64, c: f64) -> f64 {
                a.mul_add(b, c)
            }
            #[inline(always)]
            fn mul_add32(a: f32, b: f32, c: f32) -> f32 {
                a.mul_add(b, c)
            }
        }
    )*};
}

fused!(Avx512, Fused);

impl MulAdd for Plain {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
    #[inline(always)]
    fn mul_add32(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `dispatched!(name, body, (args))` defines `fn name(args)`, which calls
/// `body::<Avx512>(args)`, `body::<Fused>(args)` or `body::<Plain>(args)`, each compiled for
/// its level, by [`level`]. With an element type, `dispatched!(name<E: Elem>, body, (x: &[E],
/// ...))` calls `body::<Avx512, E>` and so on. The body is `#[inline(always)]` so that it is
/// compiled inside each level's function.
macro_rules! dispatched {
    ($name:ident $(< $g:ident : $bound:path >)?, $body:ident, ($($arg:ident : $ty:ty),*)) => {
        #[inline]
        fn $name $(<$g: $bound>)? ($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// The CPU has every feature enabled here (`level()` is `Avx512`).
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
                unsafe fn avx512 $(<$g: $bound>)? ($($arg: $ty),*) { $body::<$crate::kernels::simd::Avx512 $(, $g)?>($($arg),*) }
                /// # Safety
                /// The CPU has AVX2 and FMA (`level()` is `Avx2` or above).
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2 $(<$g: $bound>)? ($($arg: $ty),*) { $body::<$crate::kernels::simd::Fused $(, $g)?>($($arg),*) }
                match $crate::kernels::simd::level() {
                    // SAFETY: level() checked that the CPU has these features.
                    $crate::kernels::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::simd::Level::Portable => {}
                }
            }
            $body::<$crate::kernels::simd::Plain $(, $g)?>($($arg),*)
        }
    };
}

pub(crate) use dispatched;
