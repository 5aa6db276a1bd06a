//! `torch.testing.assert_close`, as the contract states it, plus ulp distances.
//!
//! A value passes when `|actual - expected| <= atol + rtol * |expected|`; NaN matches NaN, an
//! infinity matches the same infinity; shapes and dtypes must match exactly. Where the golden
//! case carries a float64 `reference`, an element passes when it is close to PyTorch's value
//! *or* to the reference: a more accurate answer than PyTorch's is never judged wrong.

use crate::golden::format::Tolerance;
use crate::tensor::{DType, Data, Tensor, fmt_shape};
use std::fmt;

/// `torch.testing.assert_close`'s defaults for the dtype (integers compare exactly).
pub fn default_tolerance(dtype: DType) -> Tolerance {
    let (rtol, atol) = match dtype {
        DType::F16 => (1e-3, 1e-5),
        DType::BF16 => (1.6e-2, 1e-5),
        DType::F32 => (1.3e-6, 1e-5),
        DType::F64 => (1e-7, 1e-7),
        _ => (0.0, 0.0),
    };
    Tolerance { rtol, atol }
}

/// What a passing comparison measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accuracy {
    /// Largest distance, in units in the last place of the dtype, to PyTorch's values.
    pub max_ulp_torch: u64,
    /// Largest distance to the float64 reference (when the case has one).
    pub max_ulp_reference: Option<u64>,
}

/// Why `actual` is not close to `expected`, with what a user needs to act on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    Dtype { expected: DType, actual: DType },
    Shape { expected: Vec<usize>, actual: Vec<usize> },
    Values {
        /// How many elements fail, of how many.
        failing: usize,
        total: usize,
        /// The worst element (largest excess over its allowance).
        index: Vec<usize>,
        actual: f64,
        expected: f64,
        reference: Option<f64>,
        abs_err: f64,
        rel_err: f64,
        ulp: u64,
        tolerance: Tolerance,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Dtype { expected, actual } => write!(f, "dtype {actual}, expected {expected}"),
            Mismatch::Shape { expected, actual } => {
                write!(f, "shape {}, expected {}", fmt_shape(actual), fmt_shape(expected))
            }
            Mismatch::Values { failing, total, index, actual, expected, reference, abs_err, rel_err, ulp, tolerance } => {
                write!(
                    f,
                    "{failing} of {total} elements differ; worst at {index:?}: got {actual:e}, expected {expected:e}"
                )?;
                if let Some(r) = reference {
                    write!(f, " (float64 reference {r:e})")?;
                }
                write!(
                    f,
                    "; abs err {abs_err:e}, rel err {rel_err:e}, {ulp} ulp (allowed: atol {:e} + rtol {:e} * |expected|)",
                    tolerance.atol, tolerance.rtol
                )
            }
        }
    }
}

fn close(a: f64, e: f64, tol: Tolerance) -> bool {
    if a.is_nan() || e.is_nan() {
        return a.is_nan() && e.is_nan();
    }
    if a.is_infinite() || e.is_infinite() {
        return a == e;
    }
    (a - e).abs() <= tol.atol + tol.rtol * e.abs()
}

/// The value's position on the dtype's number line, so that adjacent values differ by 1.
fn ordinal(dtype: DType, x: f64) -> i128 {
    let (bits, sign_bit): (u64, u32) = match dtype {
        DType::F16 => (crate::tensor::f16_from_f64(x).to_bits() as u64, 15),
        DType::BF16 => (crate::tensor::bf16_from_f64(x).to_bits() as u64, 15),
        DType::F32 => ((x as f32).to_bits() as u64, 31),
        _ => (x.to_bits(), 63),
    };
    let magnitude = (bits & !(1u64 << sign_bit)) as i128;
    if bits >> sign_bit & 1 == 1 { -magnitude } else { magnitude }
}

/// Distance in ulp of `dtype` between two values (0 for two NaNs or equal infinities, the
/// largest value for NaN against a number).
pub fn ulp_distance(dtype: DType, a: f64, b: f64) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() { 0 } else { u64::MAX };
    }
    if !dtype.is_float() {
        return (a - b).abs() as u64;
    }
    (ordinal(dtype, a) - ordinal(dtype, b)).unsigned_abs().min(u64::MAX as u128) as u64
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[i] = flat % d;
            flat /= d;
        }
    }
    idx
}

fn values(t: &Tensor) -> Vec<f64> {
    match t.data() {
        Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
        _ => t.to_f64_vec(),
    }
}

/// Judges `actual` against PyTorch's `expected` (and the optional float64 `reference`).
pub fn compare(
    actual: &Tensor,
    expected: &Tensor,
    reference: Option<&Tensor>,
    tol: Tolerance,
) -> Result<Accuracy, Mismatch> {
    if actual.dtype() != expected.dtype() {
        return Err(Mismatch::Dtype { expected: expected.dtype(), actual: actual.dtype() });
    }
    if actual.shape() != expected.shape() {
        return Err(Mismatch::Shape { expected: expected.shape().to_vec(), actual: actual.shape().to_vec() });
    }
    let reference = reference.filter(|r| r.shape() == expected.shape());
    let dtype = expected.dtype();
    let (a, e) = (values(actual), values(expected));
    let r = reference.map(values);
    let mut acc = Accuracy { max_ulp_torch: 0, max_ulp_reference: r.as_ref().map(|_| 0) };
    let mut failing = 0;
    let mut worst: Option<(f64, usize)> = None;
    for i in 0..a.len() {
        let ok_torch = close(a[i], e[i], tol);
        let ok_ref = r.as_ref().is_some_and(|r| close(a[i], r[i], tol));
        let u = ulp_distance(dtype, a[i], e[i]);
        acc.max_ulp_torch = acc.max_ulp_torch.max(u);
        if let (Some(r), Some(m)) = (&r, acc.max_ulp_reference.as_mut()) {
            *m = (*m).max(ulp_distance(dtype, a[i], r[i]));
        }
        if !(ok_torch || ok_ref) {
            failing += 1;
            let allowed = tol.atol + tol.rtol * e[i].abs();
            let excess = if (a[i] - e[i]).is_nan() { f64::INFINITY } else { (a[i] - e[i]).abs() / allowed.max(f64::MIN_POSITIVE) };
            if worst.is_none_or(|(w, _)| excess > w) {
                worst = Some((excess, i));
            }
        }
    }
    match worst {
        None => Ok(acc),
        Some((_, i)) => {
            let abs_err = (a[i] - e[i]).abs();
            Err(Mismatch::Values {
                failing,
                total: a.len(),
                index: unravel(i, expected.shape()),
                actual: a[i],
                expected: e[i],
                reference: r.as_ref().map(|r| r[i]),
                abs_err,
                rel_err: abs_err / e[i].abs(),
                ulp: ulp_distance(dtype, a[i], e[i]),
                tolerance: tol,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dtype: DType, v: &[f64]) -> Tensor {
        Tensor::from_f64(dtype, vec![v.len()], v).unwrap()
    }

    #[test]
    fn assert_close_rules() {
        let tol = default_tolerance(DType::F32);
        let e = t(DType::F32, &[1.0, f64::NAN, f64::INFINITY]);
        assert!(compare(&t(DType::F32, &[1.000001, f64::NAN, f64::INFINITY]), &e, None, tol).is_ok());
        assert!(compare(&t(DType::F32, &[1.0, 0.0, f64::INFINITY]), &e, None, tol).is_err());
        assert!(compare(&t(DType::F32, &[1.0, f64::NAN, f64::NEG_INFINITY]), &e, None, tol).is_err());
        // dtype and shape must match exactly
        assert!(matches!(compare(&t(DType::F64, &[1.0, 0.0, 0.0]), &e, None, tol), Err(Mismatch::Dtype { .. })));
    }

    #[test]
    fn reference_rescues_a_more_accurate_answer() {
        let tol = default_tolerance(DType::F16);
        // float16 spacing near 2.2 is 2^-9: these are 2 ulp apart, 3.9e-3 > 1e-5 + 1e-3 * 2.2.
        let torch = t(DType::F16, &[-2.19921875]);
        let reference = t(DType::F16, &[-2.203125]);
        let ours = t(DType::F16, &[-2.203125]);
        assert!(compare(&ours, &torch, None, tol).is_err());
        let acc = compare(&ours, &torch, Some(&reference), tol).unwrap();
        assert_eq!(acc.max_ulp_reference, Some(0));
        assert_eq!(acc.max_ulp_torch, 2);
    }

    #[test]
    fn mismatch_names_the_worst_element() {
        let tol = default_tolerance(DType::F64);
        let e = Tensor::from_f64(DType::F64, vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let a = Tensor::from_f64(DType::F64, vec![2, 2], &[1.0, 2.1, 3.0, 5.0]).unwrap();
        match compare(&a, &e, None, tol) {
            Err(Mismatch::Values { failing, index, .. }) => {
                assert_eq!(failing, 2);
                assert_eq!(index, vec![1, 1]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ulps() {
        assert_eq!(ulp_distance(DType::F32, 1.0, 1.0 + f32::EPSILON as f64), 1);
        assert_eq!(ulp_distance(DType::F32, -0.0, 0.0), 0);
        assert_eq!(ulp_distance(DType::F16, 1.0, 1.0 + 2.0 * 2f64.powi(-10)), 2);
        // across zero: the smallest positive and negative subnormals are 2 apart
        assert_eq!(ulp_distance(DType::F64, f64::from_bits(1), -f64::from_bits(1)), 2);
    }
}
