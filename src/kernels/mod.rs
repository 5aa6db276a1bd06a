//! Numeric kernels behind the ops, by element type: float64 ([`double`]), float32 and the
//! 16-bit types read and written as they are ([`fast`], [`elem`]) or through float32 tiles
//! ([`narrow`]), nll_loss's gathers ([`nll`]), and the scalar reference ([`scalar`]).
//!
//! They are written for accuracy first (every float32 result within an ulp of the truth,
//! float64 within a few ulp): the log-sum-exp uses `log1p` of the sum without the dominant
//! term, and every sum is compensated, so the error does not grow with the row length.
//! Measurements are in docs/PERFORMANCE.md.
//!
//! Read from the bottom up; each module imports only those above it in this list:
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`simd`] | the SIMD [`simd::Level`] detected at run time, the `MulAdd` level markers, `dispatched!` (a body compiled once per level) |
//! | [`lanes`] | the geometry ([`Lanes`]: `outer x len x inner`) and the split over threads |
//! | `exp` | scalar exp and log1p generic over the level, every split of ln 2 |
//! | [`scalar`] | the float64 reference with libm, compensated sums |
//! | [`elem`] | the element types the float32 kernels read and write (sealed) |
//! | `avx512` | explicit AVX-512 code: `exp` (table-driven exps, logs), `vectors`, `rows`, `block` |
//! | [`fast`] | the float32 kernels: `kernel` (what each level compiles), `generic` and `block` (portable code) |
//! | [`double`] | the vectorised float64 kernels |
//! | [`narrow`] | float16 / bfloat16 through float32 tiles where registers cannot convert them |
//! | [`nll`] | nll_loss's target checks and gathers |

#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod double;
pub mod elem;
pub(crate) mod exp;
pub mod fast;
pub mod lanes;
pub mod narrow;
pub mod nll;
pub mod scalar;
pub mod simd;

pub use lanes::{Lanes, PARALLEL_MIN};
pub use scalar::{
    ChunkedSum, CompensatedSum, compensated_sum, compensated_sum_slice, log_softmax_backward,
    log_softmax_backward_row, log_softmax_row, log_softmax_scalar,
};
