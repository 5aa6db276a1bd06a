//! Fast float32 kernels: log_softmax over the contiguous last dim or over an outer dim, and a
//! fused cross_entropy forward that never writes log-probabilities. They read and write any
//! [`Elem`] (float32, float16, bfloat16) and compute in float32; the 16-bit types take them
//! where AVX-512 converts in registers ([`super::narrow::in_registers`]).
//!
//! Accuracy first, then speed. Each row is read three times at most (max, sum, write):
//!
//! - `s = sum over j != argmax of exp(x_j - max)`: the difference `x_j - max` is kept exact
//!   (its rounding error folded into the exp's argument), each term is within about an ulp,
//!   and the terms are accumulated in float64 lanes, so the sum's error does not grow with the
//!   row length. Rows whose sum is so small that terms below float32's exp range could count
//!   are summed again with the float64 `exp_neg`.
//! - `lse = log1p(s)` (`exp::log1p64`): the dominant element's log-probability is `-log1p(s)`,
//!   which stays accurate when `s` is tiny (PyTorch's `log(1 + s)` rounds it to 0);
//! - `out_j = x_j - max - lse`, rounded once to float32.
//!
//! Every element is then within an ulp or two of the correctly rounded result (the property
//! test allows 4; the measured maximum is 1).
//!
//! Where the CPU has AVX-512 the hot loops are explicit intrinsics (`kernels::avx512`: a
//! table-driven exp, masked tails, the next row's max and min read in the sum loop, 16-lane
//! outer-dim blocks, float32 writes with an exact split of `max + lse`). Elsewhere they are
//! the plain Rust of `generic` and `block`, written for auto-vectorisation (lane arrays, no branches in the hot
//! loops, integer bit tricks instead of float-to-int conversions, the float32 Cody-Waite exp
//! `exp_diff32` with TwoSum differences, float64 widening for the outputs), compiled for
//! AVX2+FMA and for the portable baseline, chosen at run time (`simd::level`); `kernel` says what each level compiles
//! differently. Rows (or outer
//! blocks) are spread over threads with rayon above `PARALLEL_MIN` elements (`lanes::split_lanes`); each row is
//! computed the same way whatever the thread count, so results are bit-identical.

pub(crate) mod block;
pub(crate) mod generic;
pub(crate) mod kernel;
#[cfg(test)]
mod tests;

use self::block::{Block, TILE};
use self::generic::sum_exp;
use self::kernel::Kernel32;
use super::elem::Elem;
use super::exp::log1p64;
use super::lanes::{Lanes, PARALLEL_MIN, parallel, split_lanes};
use super::simd::dispatched;
use crate::tensor::as_uninit;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A row's `(max, lse)`.
type RowStats = (f64, f64);
/// A row's `(max, min)`, NaN skipped.
type Extremes = (f32, f32);

/// `(max, lse)` of a row, or `None` when the row is all NaN by PyTorch's rules (+inf in it,
/// or only -inf; a NaN in it makes `lse` NaN, which has the same effect).
///
/// `known` is this row's `(max, min)` if the previous row's pass computed them; `next` is
/// the row the caller reads after this one, whose `(max, min)` the second result carries
/// when the pass computed them on the way; `ahead` is the row after `next`.
#[inline(always)]
fn row_stats<F: Kernel32, E: Elem>(
    x: &[E],
    known: Option<(f32, f32)>,
    next: &[E],
    ahead: &[E],
) -> (Option<RowStats>, Option<Extremes>) {
    let (m, min, k) = F::row_max32(x, known);
    if !m.is_finite() {
        return (None, None);
    }
    let (mut s, next_extremes) = F::sum_exp32(x, m, min, k, next, ahead);
    let m = m as f64;
    // The float32 exp drops terms below e^-104 and rounds those below e^-87 to subnormals
    // (1.2e-38 at most each): when the sum is small enough for them to count (relative
    // 1.2e-9 at most), redo it with the float64 exp.
    if s < x.len() as f64 * 1e-29 {
        s = sum_exp::<F, E>(&x[..k], m) + sum_exp::<F, E>(&x[k + 1..], m);
    }
    (Some((m, log1p64::<F>(s))), next_extremes)
}

/// `f(row, stats)` for each row of `len` elements, in order, with [`row_stats`] carrying each
/// row's max into the next.
#[inline(always)]
fn for_rows<F: Kernel32, E: Elem>(
    x: &[E],
    len: usize,
    mut f: impl FnMut(usize, Option<(f64, f64)>),
) {
    let mut known = None;
    for (r, row) in x.chunks(len).enumerate() {
        let next = x.get((r + 1) * len..(r + 2) * len).unwrap_or(&[]);
        let ahead = x.get((r + 2) * len..(r + 3) * len).unwrap_or(&[]);
        let (st, next_extremes) = row_stats::<F, E>(row, known, next, ahead);
        known = next_extremes;
        f(r, st);
    }
}

/// Rows of `len` elements, one after the other.
#[inline(always)]
fn log_softmax_rows_body<F: Kernel32, E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], len: usize) {
    for_rows::<F, E>(x, len, |r, st| {
        let (row, o) = (&x[r * len..(r + 1) * len], &mut out[r * len..(r + 1) * len]);
        match st {
            None => o.fill(MaybeUninit::new(E::from_f32(f32::NAN))),
            Some((m, lse)) => F::write_row32(row, o, m, lse),
        }
    });
}

dispatched!(log_softmax_rows<E: Elem>, log_softmax_rows_body, (x: &[E], out: &mut [MaybeUninit<E>], len: usize));
dispatched!(log_softmax_block<E: Elem>, log_softmax_block_body, (x: &[E], out: &mut [MaybeUninit<E>], len: usize, inner: usize, b: &mut Block));
dispatched!(block_lse<E: Elem>, block_lse_body, (x: &[E], len: usize, inner: usize, from: usize, b: &mut Block, out: &mut [(f64, f64)]));

#[inline(always)]
fn log_softmax_block_body<F: Kernel32, E: Elem>(
    x: &[E],
    out: &mut [MaybeUninit<E>],
    len: usize,
    inner: usize,
    b: &mut Block,
) {
    F::log_softmax_block32(x, out, len, inner, b)
}

#[inline(always)]
fn block_lse_body<F: Kernel32, E: Elem>(
    x: &[E],
    len: usize,
    inner: usize,
    from: usize,
    b: &mut Block,
    out: &mut [(f64, f64)],
) {
    F::block_lse32(x, len, inner, from, b, out)
}

/// log_softmax of an `outer x len x inner` tensor over its `len` axis, into `out`, in float32
/// arithmetic: a float32 tensor, or a float16 or bfloat16 one read and written in registers
/// where the CPU has AVX-512 ([`super::elem`]; elsewhere [`super::narrow`] converts tiles).
pub fn log_softmax_f32<E: Elem>(x: &[E], out: &mut [E], lanes: Lanes) {
    // SAFETY: the kernel writes only values.
    log_softmax_f32_uninit(x, unsafe { as_uninit(out) }, lanes)
}

/// [`log_softmax_f32`] into uninitialised storage: every element of `out` is written.
pub fn log_softmax_f32_uninit<E: Elem>(x: &[E], out: &mut [MaybeUninit<E>], lanes: Lanes) {
    let Lanes { len, inner, .. } = lanes;
    split_lanes(
        x,
        out,
        lanes,
        Block::default,
        |r, o, _| log_softmax_rows(r, o, len),
        |r, o, b| log_softmax_block(r, o, len, inner, b),
    );
}

/// Per-position `(max, lse)` of an `outer x len x inner` tensor over its `len` axis (`lse`
/// NaN where the position's row is NaN by PyTorch's rules), in `(outer, inner)` order:
/// what a fused loss needs to read one log-probability per position.
pub fn lane_lse_f32<E: Elem>(x: &[E], lanes: Lanes) -> Vec<(f64, f64)> {
    let Lanes { outer, len, inner } = lanes;
    let mut out = vec![(0.0, f64::NAN); outer * inner];
    if len == 0 || inner == 0 {
        return out;
    }
    if inner == 1 {
        for (o, st) in out.iter_mut().zip(row_lse_f32(x, len)) {
            *o = st.unwrap_or((0.0, f64::NAN));
        }
        return out;
    }
    let block = len * inner;
    if parallel(x.len()) && outer > 1 {
        x.par_chunks(block)
            .zip(out.par_chunks_mut(inner))
            .for_each_init(Block::default, |b, (r, o)| {
                block_lse(r, len, inner, 0, b, o)
            });
    } else {
        let mut b = Block::default();
        for (r, o) in x.chunks(block).zip(out.chunks_mut(inner)) {
            block_lse(r, len, inner, 0, &mut b, o);
        }
    }
    out
}

/// [`lane_lse_f32`] handed to `f(b, s0, stats)` a chunk at a time: `stats[q]` is position
/// `b * inner + s0 + q`'s `(max, lse)`. On one thread, spatial inputs are done a tile of
/// lanes at a time, so a fused loss reads each tile's logits while they are in cache and
/// allocates no per-position buffer (a fresh 2 MB one costs more in page faults than its
/// arithmetic).
pub fn lane_lse_visit<E: Elem>(
    x: &[E],
    lanes: Lanes,
    mut f: impl FnMut(usize, usize, &[(f64, f64)]),
) {
    let Lanes { outer, len, inner } = lanes;
    if inner == 1 || len == 0 || (parallel(x.len()) && outer > 1) {
        let stats = lane_lse_f32(x, lanes);
        for (b, st) in stats.chunks(inner.max(1)).enumerate() {
            f(b, 0, st);
        }
        return;
    }
    let mut b = Block::default();
    let mut buf = vec![(0.0, 0.0); TILE.min(inner)];
    for (bi, block) in x.chunks(len * inner).enumerate() {
        for s0 in (0..inner).step_by(TILE) {
            let o = &mut buf[..TILE.min(inner - s0)];
            block_lse(block, len, inner, s0, &mut b, o);
            f(bi, s0, o);
        }
    }
}

/// The max of `x`, NaN elements skipped (`-inf` if there is none): one read of the input with
/// the row kernels' max loop, the floor every log-sum-exp pays (the benchmarks' "read once").
pub fn max_f32(x: &[f32]) -> f32 {
    dispatched!(max_dispatch, max_body, (x: &[f32], out: &mut f32));
    #[inline(always)]
    fn max_body<F: Kernel32>(x: &[f32], out: &mut f32) {
        *out = F::max32(x);
    }
    let mut m = f32::NEG_INFINITY;
    max_dispatch(x, &mut m);
    m
}

/// Per-row statistics for a fused loss: `(max, lse)` or `None` for a NaN row, computed
/// exactly as [`log_softmax_f32`] computes them.
pub fn row_lse_f32<E: Elem>(x: &[E], len: usize) -> Vec<Option<(f64, f64)>> {
    dispatched!(stats_rows<E: Elem>, stats_rows_body, (x: &[E], len: usize, out: &mut [Option<(f64, f64)>]));
    #[inline(always)]
    fn stats_rows_body<F: Kernel32, E: Elem>(x: &[E], len: usize, out: &mut [Option<(f64, f64)>]) {
        for_rows::<F, E>(x, len, |r, st| out[r] = st);
    }
    let rows = x.len().checked_div(len).unwrap_or(0);
    let mut out = vec![None; rows];
    if len == 0 {
        return out;
    }
    // Chunks of rows per task keep the per-task overhead small for short rows.
    let per_task = (PARALLEL_MIN / len).max(1);
    if parallel(x.len()) {
        x.par_chunks(per_task * len)
            .zip(out.par_chunks_mut(per_task))
            .for_each(|(r, o)| stats_rows(r, len, o));
    } else {
        stats_rows(x, len, &mut out);
    }
    out
}
