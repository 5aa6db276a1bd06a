//! Explicit AVX-512 code for the float32 row kernels: the row's extremes and the sum of
//! `exp(x_j - max)`, which is where a log_softmax or cross_entropy row spends its time.
//!
//! Written with intrinsics because the compiler, left alone, picks 256-bit vectors and
//! scalar tails; here every loop runs on 16 lanes and a row's last partial vector is a
//! masked load, never a scalar loop.
//!
//! The exp is table-driven, as in glibc's and SLEEF's vector exps: `x - m = (16q + j) ln2/16
//! + r` with `|r| <= ln2/32`, so `exp(x - m) = 2^q * 2^(j/16) * e^r`. `2^(j/16)` is a
//! 16-entry float32 table with a second table of relative remainders (one register each,
//! looked up with `vpermps`), `e^r - 1` is a cubic (truncation below 9.3e-9 relative), and
//! `2^q` is applied by `vscalefps`, which also rounds results below float32's normal range
//! correctly. The difference `x - m` is kept exact (its rounding error folded into `r`):
//! with TwoSum in general, and with the 2-operation Fast2Sum when the row's max and min show
//! it is exact ([`mode`]; rows of logits almost always qualify). A term is within 0.66 ulp
//! of `exp` of the exact difference (the unit test measures it).
//!
//! Terms are added four vectors at a time in float32 (two roundings of half an ulp of a
//! partial sum at most), then accumulated in float64 lanes, so the sum's error does not grow
//! with the row length. Measured on the whole kernel: every float32 log_softmax output within
//! 1 ulp (`nllspec accuracy`). The loop also reads the next row for its max and min, and
//! prefetches the row after that, so a row's first read is not a pass of its own.
//!
//! Layout: [`exp`] (the exps and logs), [`vectors`] (lane plumbing), [`rows`] (contiguous
//! rows), [`block`] (outer-dim blocks).
//!
//! # Safety
//!
//! Every function here requires AVX-512 F, DQ, VL and BW (the entry points are compiled with
//! them: `#[target_feature]`; the helpers are inlined into those). The float32 kernels call
//! the entry points only from code `simd::dispatched!` compiled for the AVX-512 level and
//! runs after `simd::level()` detected it. Memory is reached through slices' pointers, each
//! access in bounds as its comment says; a row's partial last vector is a masked load or
//! store, which touches no lane outside its mask.

pub(crate) mod block;
pub(crate) mod exp;
pub(crate) mod rows;
#[cfg(test)]
mod tests;
pub(crate) mod vectors;
