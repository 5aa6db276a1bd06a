//! Scalar float64 reference kernels (libm's exp and log1p, compensated sums): the log_softmax
//! the vectorised kernels are tested against and fall back to, its backward, and the
//! compensated sums the losses reduce with.

use super::lanes::Lanes;

/// Neumaier's compensated sum: the error stays within a couple of ulp of the exact sum of the
/// terms whatever their number, where a naive sum's grows with it.
#[derive(Debug, Default, Clone, Copy)]
pub struct CompensatedSum {
    sum: f64,
    comp: f64,
}

impl CompensatedSum {
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    #[inline]
    pub fn value(&self) -> f64 {
        // A non-finite running sum makes the compensation NaN (inf - inf); the sum itself is
        // then the answer.
        if self.sum.is_finite() {
            self.sum + self.comp
        } else {
            self.sum
        }
    }
}

/// [`compensated_sum`] of a slice, several times faster: 16 independent lanes, each a
/// branch-free TwoSum accumulation (so the loop vectorises), combined with compensation at the
/// end. The result is as accurate (the error of each lane is its rounding's, carried in its
/// compensation); it may differ from the sequential sum in the last bit.
pub fn compensated_sum_slice(x: &[f64]) -> f64 {
    use super::simd::{MulAdd, dispatched};
    #[inline(always)]
    fn body<F: MulAdd>(x: &[f64], out: &mut f64) {
        *out = compensated_sum_slice_body(x);
    }
    dispatched!(sum, body, (x: &[f64], out: &mut f64));
    let mut out = 0.0;
    sum(x, &mut out);
    out
}

/// TwoSum accumulation, branch-free (it vectorises across lanes): `s + c` carries the exact
/// running sum of the values added to within an ulp of `s`.
#[inline(always)]
pub(crate) fn accumulate(s: &mut f64, c: &mut f64, v: f64) {
    let sum = *s + v;
    let b = sum - *s;
    *c += (*s - (sum - b)) + (v - b);
    *s = sum;
}

/// [`compensated_sum_slice`]'s loop, inlined into callers compiled for a SIMD level.
#[inline(always)]
pub(crate) fn compensated_sum_slice_body(x: &[f64]) -> f64 {
    const L: usize = 16;
    let (mut s, mut c) = ([0.0f64; L], [0.0f64; L]);
    let chunks = x.chunks_exact(L);
    let tail = chunks.remainder();
    for ch in chunks {
        for i in 0..L {
            accumulate(&mut s[i], &mut c[i], ch[i]);
        }
    }
    if s.iter().any(|v| !v.is_finite()) {
        // the compensations are NaN (inf - inf): the plain sum is the answer, as in `value`
        return s.iter().sum::<f64>() + tail.iter().sum::<f64>();
    }
    let mut acc = CompensatedSum::default();
    for i in 0..L {
        acc.add(s[i]);
        acc.add(c[i]);
    }
    for &v in tail {
        acc.add(v);
    }
    acc.value()
}

/// A compensated sum fed one value at a time, summed a chunk at a time with
/// [`compensated_sum_slice`] (the vectorised loop), so a streaming loss needs no
/// per-position buffer.
pub struct ChunkedSum {
    buf: [f64; 256],
    n: usize,
    acc: CompensatedSum,
}

impl Default for ChunkedSum {
    fn default() -> Self {
        ChunkedSum {
            buf: [0.0; 256],
            n: 0,
            acc: CompensatedSum::default(),
        }
    }
}

impl ChunkedSum {
    #[inline]
    pub fn push(&mut self, v: f64) {
        self.buf[self.n] = v;
        self.n += 1;
        if self.n == self.buf.len() {
            self.acc.add(compensated_sum_slice(&self.buf));
            self.n = 0;
        }
    }

    pub fn value(mut self) -> f64 {
        self.acc.add(compensated_sum_slice(&self.buf[..self.n]));
        self.acc.value()
    }
}

pub fn compensated_sum(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut s = CompensatedSum::default();
    for x in xs {
        s.add(x);
    }
    s.value()
}

/// log_softmax of one contiguous row.
///
/// With `m = x[k]` the maximum, `log(sum_j exp(x_j - m)) = log1p(s)` where `s` sums every term
/// but the dominant one (which is exactly 1). Computing `log1p(s)` instead of `log(1 + s)` keeps
/// the dominant element's log-probability `-log1p(s)` accurate when `s` is tiny: a confident
/// prediction's loss is `1e-9`, not 0 (PyTorch's kernel rounds it to 0).
///
/// Non-finite rows follow PyTorch: a NaN or +inf anywhere, or a row of only -inf, makes the
/// whole row NaN; a -inf element next to finite ones is -inf.
pub fn log_softmax_row(x: &[f64], out: &mut [f64]) {
    debug_assert_eq!(x.len(), out.len());
    if x.is_empty() {
        return;
    }
    let mut k = 0;
    let mut m = x[0];
    for (j, &v) in x.iter().enumerate() {
        if v.is_nan() {
            m = f64::NAN;
            break;
        }
        if v > m {
            m = v;
            k = j;
        }
    }
    if !m.is_finite() {
        out.fill(f64::NAN);
        return;
    }
    let mut s = CompensatedSum::default();
    for (j, &v) in x.iter().enumerate() {
        if j != k {
            // v - m rounds by up to |v - m| 2^-53, which exp turns into a relative error of
            // the term (16 ulp at v - m = -35): fold the rounding error (TwoSum) back in,
            // exp(t + err) = exp(t) (1 + err). A -inf v makes err NaN; its term is 0.
            let t = v - m;
            let bv = t - v;
            let err = (v - (t - bv)) + (-m - bv);
            let e = t.exp();
            s.add(if e == 0.0 { 0.0 } else { e + e * err });
        }
    }
    let lse = s.value().ln_1p();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - m) - lse;
    }
}

/// The vector-Jacobian product of log_softmax for one row: `g - exp(out) * sum(g)`.
pub fn log_softmax_backward_row(grad_out: &[f64], out: &[f64], grad_in: &mut [f64]) {
    let total = compensated_sum(grad_out.iter().copied());
    for ((gi, &g), &o) in grad_in.iter_mut().zip(grad_out).zip(out) {
        *gi = g - o.exp() * total;
    }
}

/// Applies a row function to every lane, gathering strided lanes into scratch rows.
fn for_each_lane(lanes: Lanes, src: &[&[f64]], dst: &mut [f64], f: impl Fn(&[&[f64]], &mut [f64])) {
    let Lanes { outer, len, inner } = lanes;
    if len == 0 {
        return;
    }
    if inner == 1 {
        for o in 0..outer {
            let r = o * len..(o + 1) * len;
            let rows: Vec<&[f64]> = src.iter().map(|s| &s[r.clone()]).collect();
            f(&rows, &mut dst[r]);
        }
        return;
    }
    let mut scratch: Vec<Vec<f64>> = vec![vec![0.0; len]; src.len()];
    let mut out_row = vec![0.0; len];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            for (row, s) in scratch.iter_mut().zip(src) {
                for (j, r) in row.iter_mut().enumerate() {
                    *r = s[base + j * inner];
                }
            }
            let rows: Vec<&[f64]> = scratch.iter().map(|r| r.as_slice()).collect();
            f(&rows, &mut out_row);
            for (j, &v) in out_row.iter().enumerate() {
                dst[base + j * inner] = v;
            }
        }
    }
}

/// log_softmax over the `len` axis with the scalar [`log_softmax_row`] (libm's exp), one lane
/// at a time: what the vectorised kernel (`double::log_softmax_f64`) is tested against, and its fallback for sums below exp's range.
pub fn log_softmax_scalar(x: &[f64], lanes: Lanes, out: &mut [f64]) {
    for_each_lane(lanes, &[x], out, |rows, o| log_softmax_row(rows[0], o));
}

/// The log_softmax backward over the `len` axis.
pub fn log_softmax_backward(grad_out: &[f64], out: &[f64], lanes: Lanes, grad_in: &mut [f64]) {
    for_each_lane(lanes, &[grad_out, out], grad_in, |rows, gi| {
        log_softmax_backward_row(rows[0], rows[1], gi)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliced_compensated_sum_matches_the_sequential_one() {
        // terms that cancel: the naive sum loses everything, both compensated sums keep 1e-3
        let mut x = vec![];
        for i in 0..1001 {
            x.extend([1e16, 1e-3 * (i % 2) as f64, -1e16]);
        }
        let (a, b) = (
            compensated_sum_slice(&x),
            compensated_sum(x.iter().copied()),
        );
        assert_eq!(a, b);
        assert!((a - 0.5).abs() < 1e-12, "{a}");
        for n in 0..9 {
            let y: Vec<f64> = (0..n).map(|i| 0.1 * i as f64).collect();
            assert!(
                (compensated_sum_slice(&y) - compensated_sum(y.iter().copied())).abs() <= 1e-15
            );
        }
        assert_eq!(
            compensated_sum_slice(&[1.0, f64::INFINITY, 2.0, 3.0, 4.0]),
            f64::INFINITY
        );
        assert!(compensated_sum_slice(&[1.0, f64::INFINITY, -f64::INFINITY, 3.0, 4.0]).is_nan());
        assert!(compensated_sum_slice(&[1.0, 2.0, 3.0, 4.0, f64::NAN]).is_nan());
    }

    #[test]
    fn compensated_sum_keeps_small_terms() {
        // 1 + 1e-16 * 10 = 1 + 1e-15; a naive f64 sum loses every 1e-16 (below half an ulp of 1).
        let xs = std::iter::once(1.0).chain(std::iter::repeat_n(1e-16, 10));
        assert_eq!(compensated_sum(xs), 1.0 + 1e-15);
    }

    #[test]
    fn non_finite_rows_follow_torch() {
        // torch 2.15: log_softmax([1, nan, 2]) = nan x3; [1, inf, 2] = nan x3;
        // [-inf, -inf] = nan x2; [-inf, 0] = [-inf, 0].
        let mut o = [0.0; 3];
        log_softmax_row(&[1.0, f64::NAN, 2.0], &mut o);
        assert!(o.iter().all(|v| v.is_nan()));
        log_softmax_row(&[1.0, f64::INFINITY, 2.0], &mut o);
        assert!(o.iter().all(|v| v.is_nan()));
        let mut o2 = [0.0; 2];
        log_softmax_row(&[f64::NEG_INFINITY, f64::NEG_INFINITY], &mut o2);
        assert!(o2.iter().all(|v| v.is_nan()));
        log_softmax_row(&[f64::NEG_INFINITY, 0.0], &mut o2);
        assert_eq!(o2, [f64::NEG_INFINITY, 0.0]);
    }

    #[test]
    fn dominant_element_is_not_rounded_to_zero() {
        // log_softmax([0, -30])[0] = -log1p(y), y = exp(-30) ~ 9.36e-14; log1p(y) = y - y^2/2
        // + O(y^3), and y^3 is far below an ulp of y. `log(1 + y)` would give a value off by
        // ~1e-3 relative (1 + y rounds to a multiple of 2^-52).
        let mut o = [0.0; 2];
        log_softmax_row(&[0.0, -30.0], &mut o);
        let y = (-30f64).exp();
        let truth = -(y - y * y / 2.0);
        assert!(
            (o[0] - truth).abs() <= truth.abs() * f64::EPSILON,
            "{} vs {truth}",
            o[0]
        );
        assert_eq!(o[1], -30.0 + truth);
    }

    #[test]
    fn strided_lanes_match_contiguous() {
        // A 2x3 tensor over dim 0 is the transpose's rows.
        let x = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0];
        let mut out = [0.0; 6];
        log_softmax_scalar(&x, Lanes::along(&[2, 3], 0), &mut out);
        for i in 0..3 {
            let mut row = [0.0; 2];
            log_softmax_row(&[x[i], x[3 + i]], &mut row);
            assert_eq!([out[i], out[3 + i]], row);
        }
    }
}
