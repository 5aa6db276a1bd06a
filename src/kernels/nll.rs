//! nll_loss's per-position loops, compiled per SIMD level ([`super::simd`]'s `dispatched!`):
//! the target bounds check and the gather-and-sum of a reduced loss. Left to the baseline
//! x86-64 target they run as scalar SSE2 code, about ten cycles a position; compiled for
//! AVX2 or AVX-512 the bounds check becomes wide compares and the gather vector gathers
//! (faster at both benchmark shapes: docs/PERFORMANCE.md).

use super::scalar::{CompensatedSum, compensated_sum_slice_body};
use super::simd::{MulAdd, Plain, dispatched};
use crate::tensor::Data;

/// Whether a target is neither `ignore` nor in `0..c` (a negative target is a huge u64).
#[inline(always)]
fn bad(t: i64, ignore: i64, c: usize) -> bool {
    (t != ignore) & (t as u64 >= c as u64)
}

/// `Err` with the first target that is neither `ignore` nor in `0..c`, else the number that
/// are not `ignore` (the unweighted mean's denominator): one branch-free pass (it
/// vectorises), the offender looked for only if there is one.
#[inline(always)]
fn check_segment(targets: &[i64], ignore: i64, c: usize) -> Result<usize, i64> {
    let (any, kept) = targets.iter().fold((false, 0), |(b, n), &t| {
        (b | bad(t, ignore, c), n + (t != ignore) as usize)
    });
    if !any {
        return Ok(kept);
    }
    targets
        .iter()
        .copied()
        .find(|&t| bad(t, ignore, c))
        .map_or(Ok(kept), Err)
}

#[inline(always)]
fn check_body<F: MulAdd>(targets: &[i64], ignore: i64, c: usize, out: &mut Result<usize, i64>) {
    *out = check_segment(targets, ignore, c);
}

dispatched!(check, check_body, (targets: &[i64], ignore: i64, c: usize, out: &mut Result<usize, i64>));

/// The targets' bounds check and count (`check_segment`) over a whole target tensor.
pub fn check_targets(targets: &[i64], ignore: i64, c: usize) -> Result<usize, i64> {
    let mut out = Ok(0);
    check(targets, ignore, c, &mut out);
    out
}

/// Positions per chunk: each chunk's terms are summed with compensation, then the chunks.
const CHUNK: usize = 512;

/// One position's term, `-x[at(t)] * weight[t]`, 0 if the position is ignored: branch-free
/// (an ignored position reads class 0); the read is in bounds by the callers' checks, and
/// `get` keeps it safe without a panic path (which would stop the loop from vectorising).
#[inline(always)]
fn term<T: Copy + Into<f64>>(
    x: &[T],
    t: i64,
    ignore: i64,
    weight: Option<&[f64]>,
    at: impl Fn(usize) -> usize,
) -> f64 {
    let keep = t != ignore;
    let t = if keep { t as usize } else { 0 };
    let v = x.get(at(t)).map_or(0.0, |&v| v.into());
    let w = weight.map_or(1.0, |w| w.get(t).copied().unwrap_or(0.0));
    if keep { -(v * w) } else { 0.0 }
}

#[inline(always)]
fn gather_sum_body<F: MulAdd, T: Copy + Into<f64>>(
    x: &[T],
    targets: &[i64],
    c: usize,
    inner: usize,
    ignore: i64,
    weight: Option<&[f64]>,
) -> Result<(f64, usize), i64> {
    let mut acc = CompensatedSum::default();
    let mut buf = [0.0f64; CHUNK];
    // each chunk's targets are checked and counted just before they are read (from L1 then)
    let mut kept = 0;
    if inner == 1 {
        // position p reads class t at p * c + t
        for (p0, chunk) in (0..).step_by(CHUNK).zip(targets.chunks(CHUNK)) {
            kept += check_segment(chunk, ignore, c)?;
            for (q, (o, &t)) in buf.iter_mut().zip(chunk).enumerate() {
                *o = term(x, t, ignore, weight, |t| (p0 + q) * c + t);
            }
            acc.add(compensated_sum_slice_body(&buf[..chunk.len()]));
        }
        return Ok((acc.value(), kept));
    }
    // Position (b, s) reads class t at b * c * inner + t * inner + s. The buffer is filled
    // with segments of consecutive positions within a batch element, across batch elements,
    // so that short spatial dims do not make short chunks.
    let mut fill = 0;
    for (b, ts) in targets.chunks(inner).enumerate() {
        let mut s0 = 0;
        while s0 < ts.len() {
            let n = (CHUNK - fill).min(ts.len() - s0);
            let base = b * c * inner + s0;
            kept += check_segment(&ts[s0..s0 + n], ignore, c)?;
            for (q, (o, &t)) in buf[fill..fill + n]
                .iter_mut()
                .zip(&ts[s0..s0 + n])
                .enumerate()
            {
                *o = term(x, t, ignore, weight, |t| base + t * inner + q);
            }
            (fill, s0) = (fill + n, s0 + n);
            if fill == CHUNK {
                acc.add(compensated_sum_slice_body(&buf));
                fill = 0;
            }
        }
    }
    acc.add(compensated_sum_slice_body(&buf[..fill]));
    Ok((acc.value(), kept))
}

#[inline(always)]
fn gather_sum32<F: MulAdd>(
    x: &[f32],
    targets: &[i64],
    c: usize,
    inner: usize,
    ignore: i64,
    weight: Option<&[f64]>,
    out: &mut Result<(f64, usize), i64>,
) {
    *out = gather_sum_body::<F, f32>(x, targets, c, inner, ignore, weight);
}

#[inline(always)]
fn gather_sum64<F: MulAdd>(
    x: &[f64],
    targets: &[i64],
    c: usize,
    inner: usize,
    ignore: i64,
    weight: Option<&[f64]>,
    out: &mut Result<(f64, usize), i64>,
) {
    *out = gather_sum_body::<F, f64>(x, targets, c, inner, ignore, weight);
}

dispatched!(gather_sum_f32, gather_sum32, (x: &[f32], targets: &[i64], c: usize, inner: usize, ignore: i64, weight: Option<&[f64]>, out: &mut Result<(f64, usize), i64>));
dispatched!(gather_sum_f64, gather_sum64, (x: &[f64], targets: &[i64], c: usize, inner: usize, ignore: i64, weight: Option<&[f64]>, out: &mut Result<(f64, usize), i64>));

/// `sum over positions p of -x[b, t_p, s] * weight[t_p]` (weight 1 when `None`), ignored
/// positions left out, for an `outer x c x inner` input and one target per position
/// (`outer * inner` of them): a float tensor's data. Each chunk of positions is summed with
/// compensation, then the chunks. With the sum, the number of targets that are not `ignore`;
/// `Err` with the first target that is neither `ignore` nor in `0..c` (each chunk's targets
/// are checked before any of them is read, as PyTorch's kernel checks each as it reads it).
pub fn nll_sum(
    x: &Data,
    targets: &[i64],
    c: usize,
    inner: usize,
    ignore: i64,
    weight: Option<&[f64]>,
) -> Result<(f64, usize), i64> {
    let mut out = Ok((0.0, 0));
    if c == 0 || inner == 0 {
        return check_targets(targets, ignore, c).map(|kept| (0.0, kept));
    }
    match x {
        Data::F32(x) => gather_sum_f32(x, targets, c, inner, ignore, weight, &mut out),
        Data::F64(x) => gather_sum_f64(x, targets, c, inner, ignore, weight, &mut out),
        // rarer: the portable loop
        Data::F16(x) => out = gather_sum_body::<Plain, _>(x, targets, c, inner, ignore, weight),
        Data::BF16(x) => out = gather_sum_body::<Plain, _>(x, targets, c, inner, ignore, weight),
        // integer inputs are rejected before any loss is computed
        _ => out = check_targets(targets, ignore, c).map(|kept| (f64::NAN, kept)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_sum_matches_a_direct_sum() {
        // targets with ignored positions, with and without weights; shapes whose positions
        // fill the 512-position chunks partly, across batch elements, and past a chunk
        for (outer, c, inner) in [
            (3usize, 4usize, 5usize),
            (1100, 4, 1),
            (3, 4, 700),
            (2, 3, 512),
            (0, 4, 5),
        ] {
            let x: Vec<f32> = (0..outer * c * inner)
                .map(|i| ((i * 37 % 101) as f32) * 0.37 - 4.0)
                .collect();
            let t: Vec<i64> = (0..(outer * inner) as i64)
                .map(|p| if p % 4 == 3 { -100 } else { (p * 7) % c as i64 })
                .collect();
            let w = [0.5, 2.0, 1.0, 0.25];
            for weight in [None, Some(&w[..c])] {
                let mut want = 0.0;
                for b in 0..outer {
                    for s in 0..inner {
                        let tt = t[b * inner + s];
                        if tt != -100 {
                            let wt = weight.map_or(1.0, |w| w[tt as usize]);
                            want += -(x[(b * c + tt as usize) * inner + s] as f64) * wt;
                        }
                    }
                }
                for data in [
                    Data::F32(x.clone()),
                    Data::F64(x.iter().map(|&v| v as f64).collect()),
                ] {
                    let (got, kept) = nll_sum(&data, &t, c, inner, -100, weight).unwrap();
                    assert!(
                        (got - want).abs() <= 1e-12 * want.abs(),
                        "{outer}x{c}x{inner}: {got} vs {want}"
                    );
                    assert_eq!(kept, t.iter().filter(|&&v| v != -100).count());
                }
            }
        }
    }

    /// The sum checks each chunk before it reads it: the first offender in position order is
    /// reported wherever it lies (a later chunk, a later batch element of a spatial input),
    /// and an offender far out of range is never read.
    #[test]
    fn nll_sum_reports_the_first_offender() {
        let x = Data::F32(vec![0.5; 3 * 4 * 700]);
        for (outer, inner) in [(2100usize, 1usize), (3, 700)] {
            let mut t: Vec<i64> = (0..(outer * inner) as i64).map(|p| p % 4).collect();
            assert_eq!(
                nll_sum(&x, &t, 4, inner, -100, None),
                Ok((-0.5 * t.len() as f64, t.len()))
            );
            t[1900] = i64::MIN;
            assert_eq!(nll_sum(&x, &t, 4, inner, -100, None), Err(i64::MIN));
            t[1200] = 4;
            t[1300] = -1;
            assert_eq!(
                nll_sum(&x, &t, 4, inner, -100, None),
                Err(4),
                "{outer}x{inner}"
            );
        }
        // no classes: every target that is not ignored is out of bounds
        assert_eq!(
            nll_sum(&Data::F32(vec![]), &[-100, 0], 0, 1, -100, None),
            Err(0)
        );
    }

    #[test]
    fn check_targets_finds_the_offender_or_counts() {
        assert_eq!(check_targets(&[0, 1, -100, 2], -100, 3), Ok(3));
        assert_eq!(check_targets(&[0, 3, -1, 5], -100, 3), Err(3));
        assert_eq!(check_targets(&[0, i64::MIN], -100, 3), Err(i64::MIN));
        assert_eq!(check_targets(&[], -100, 3), Ok(0));
        // an ignore_index inside 0..c is not counted either
        assert_eq!(check_targets(&[1, 1, 0, 2, 1], 1, 3), Ok(2));
    }
}
