//! The geometry every kernel shares, and how a call is spread over threads.
//!
//! A reduction over one dimension of a row-major tensor sees the data as `outer × len × inner`
//! ([`Lanes`]): lane `(o, i)` is the `len` elements `x[(o * len + j) * inner + i]`. With
//! `inner == 1` the lanes are contiguous rows; otherwise each `len × inner` block holds `inner`
//! lanes side by side, its classes strided by `inner`.

use rayon::prelude::*;

/// The `outer × len × inner` view of a reduction over one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lanes {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

impl Lanes {
    /// The lanes of `shape` along `dim` (a 0-d tensor is one lane of one element).
    pub fn along(shape: &[usize], dim: usize) -> Lanes {
        if shape.is_empty() {
            return Lanes {
                outer: 1,
                len: 1,
                inner: 1,
            };
        }
        Lanes {
            outer: shape[..dim].iter().product(),
            len: shape[dim],
            inner: shape[dim + 1..].iter().product(),
        }
    }
}

/// Inputs with fewer elements stay on the calling thread.
pub const PARALLEL_MIN: usize = 1 << 17;

/// Whether an input of `n` elements is worth spreading over threads.
pub(crate) fn parallel(n: usize) -> bool {
    n >= PARALLEL_MIN && rayon::current_num_threads() > 1
}

/// The driver every log_softmax kernel shares: an `outer x len x inner` input and its
/// output, split into runs of whole rows when `inner == 1` (handed to `rows`) or into whole
/// `len x inner` blocks (handed to `block`), spread over threads above [`PARALLEL_MIN`]
/// elements. `init` makes the per-task scratch (one for the whole call on one thread). Each
/// row or block is computed the same way whatever the split, so results do not depend on the
/// thread count.
pub(crate) fn split_lanes<T: Sync, U: Send, S>(
    x: &[T],
    out: &mut [U],
    lanes: Lanes,
    init: impl Fn() -> S + Sync + Send,
    rows: impl Fn(&[T], &mut [U], &mut S) + Sync + Send,
    block: impl Fn(&[T], &mut [U], &mut S) + Sync + Send,
) {
    let Lanes { outer, len, inner } = lanes;
    assert_eq!(x.len(), outer * len * inner);
    assert_eq!(out.len(), x.len());
    if x.is_empty() {
        return;
    }
    let parallel = parallel(x.len());
    if inner == 1 {
        if parallel {
            // Chunks of rows per task keep the per-task overhead small for short rows.
            let per_task = (PARALLEL_MIN / len).max(1) * len;
            x.par_chunks(per_task)
                .zip(out.par_chunks_mut(per_task))
                .for_each_init(init, |s, (r, o)| rows(r, o, s));
        } else {
            rows(x, out, &mut init());
        }
        return;
    }
    let size = len * inner;
    if parallel && outer > 1 {
        x.par_chunks(size)
            .zip(out.par_chunks_mut(size))
            .for_each_init(init, |s, (r, o)| block(r, o, s));
    } else {
        let mut s = init();
        for (r, o) in x.chunks(size).zip(out.chunks_mut(size)) {
            block(r, o, &mut s);
        }
    }
}
