//! Numeric kernels behind the ops, by element type: float64 ([`double`]), float32 and the
//! 16-bit types read and written as they are ([`fast`], [`elem`]) or through float32 tiles
//! ([`narrow`]), nll_loss's gathers ([`nll`]), and the scalar reference ([`scalar`]).
//!
//! They are written for accuracy first (every float32 result within an ulp of the truth,
//! float64 within a few ulp): the log-sum-exp uses `log1p` of the sum without the dominant
//! term, and every sum is compensated, so the error does not grow with the row length. Each is
//! compiled per SIMD level and chosen at run time ([`simd`]); the geometry and the threading
//! are [`lanes`]'s. Measurements are in docs/PERFORMANCE.md.

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
    ChunkedSum, CompensatedSum, compensated_sum, compensated_sum_slice, log_softmax_backward, log_softmax_backward_row,
    log_softmax_row, log_softmax_scalar,
};
