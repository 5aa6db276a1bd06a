//! `torch.testing.assert_close`, as the contract states it, plus ulp distances.
//!
//! A value passes when `|actual - expected| <= atol + rtol * |expected|`; NaN matches NaN, an
//! infinity matches the same infinity; shapes and dtypes must match exactly. Where the golden
//! case carries a float64 `reference`, an element passes when it is close to PyTorch's value,
//! close to the reference, or at least as close to the reference as PyTorch's own value is: a
//! more accurate answer than PyTorch's is never judged wrong.

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

/// Why `actual` is not close to `expected`, with what a user needs to act on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    /// The dtype differs.
    Dtype {
        /// PyTorch's.
        expected: DType,
        /// The answer's.
        actual: DType,
    },
    /// The shape differs.
    Shape {
        /// PyTorch's.
        expected: Vec<usize>,
        /// The answer's.
        actual: Vec<usize>,
    },
    /// Values are not close.
    Values {
        /// How many elements fail, of how many.
        failing: usize,
        /// Elements in all.
        total: usize,
        /// The worst element (largest excess over its allowance).
        index: Vec<usize>,
        /// The worst element's value in the answer.
        actual: f64,
        /// PyTorch's value there.
        expected: f64,
        /// The float64 reference there, when the case has one.
        reference: Option<f64>,
        /// The errors below are against the reference (nearer to the answer than PyTorch's
        /// value), not against PyTorch's value.
        against_reference: bool,
        /// Absolute error against the nearer of PyTorch's value and the reference.
        abs_err: f64,
        /// Relative error, likewise.
        rel_err: f64,
        /// `None` when one side is NaN and the other is not.
        ulp: Option<u64>,
        /// The tolerance it was judged with.
        tolerance: Tolerance,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Dtype { expected, actual } => {
                write!(f, "dtype {actual}, expected {expected}")
            }
            Mismatch::Shape { expected, actual } => {
                write!(
                    f,
                    "shape {}, expected {}",
                    fmt_shape(actual),
                    fmt_shape(expected)
                )
            }
            Mismatch::Values {
                failing,
                total,
                index,
                actual,
                expected,
                reference,
                against_reference,
                abs_err,
                rel_err,
                ulp,
                tolerance,
            } => {
                write!(
                    f,
                    "{failing} of {total} elements differ; worst at {index:?}: got {actual:e}, expected {expected:e}"
                )?;
                if let Some(r) = reference {
                    write!(f, " (float64 reference {r:e})")?;
                }
                let target = if *against_reference {
                    "the reference"
                } else {
                    "PyTorch's value"
                };
                let target_value = if *against_reference {
                    reference.unwrap_or(*expected)
                } else {
                    *expected
                };
                if !actual.is_nan()
                    && !target_value.is_nan()
                    && (actual.is_infinite() || target_value.is_infinite())
                {
                    // ulp and relative errors across an infinity are meaningless numbers
                    let word = |x: f64| {
                        if x.is_finite() {
                            "a finite value".to_string()
                        } else {
                            format!("{x}")
                        }
                    };
                    return write!(
                        f,
                        "; {} where {target} is {}",
                        word(*actual),
                        word(target_value)
                    );
                }
                match ulp {
                    None if actual.is_nan() => write!(f, "; NaN where {target} is a number"),
                    None => write!(f, "; a number where {target} is NaN"),
                    Some(ulp) => write!(
                        f,
                        "; against {target} (the nearer): abs err {abs_err:e}, rel err {rel_err:e}, {ulp} ulp \
                         (allowed: atol {:e} + rtol {:e} * |expected|)",
                        tolerance.atol, tolerance.rtol
                    ),
                }
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
    if bits >> sign_bit & 1 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// Distance in ulp of `dtype` between two values (0 for two NaNs or equal infinities, the
/// largest value for NaN against a number).
pub fn ulp_distance(dtype: DType, a: f64, b: f64) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    if !dtype.is_float() {
        return (a - b).abs() as u64;
    }
    (ordinal(dtype, a) - ordinal(dtype, b))
        .unsigned_abs()
        .min(u64::MAX as u128) as u64
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
) -> Result<(), Mismatch> {
    if actual.dtype() != expected.dtype() {
        return Err(Mismatch::Dtype {
            expected: expected.dtype(),
            actual: actual.dtype(),
        });
    }
    if actual.shape() != expected.shape() {
        return Err(Mismatch::Shape {
            expected: expected.shape().to_vec(),
            actual: actual.shape().to_vec(),
        });
    }
    let reference = reference.filter(|r| r.shape() == expected.shape());
    let dtype = expected.dtype();
    let (a, e) = (values(actual), values(expected));
    let r = reference.map(values);
    let mut failing = 0;
    let mut worst: Option<(f64, usize, bool)> = None;
    for i in 0..a.len() {
        let ok_torch = close(a[i], e[i], tol);
        let ok_ref = r
            .as_ref()
            .is_some_and(|r| close(a[i], r[i], tol) || at_least_as_close(a[i], e[i], r[i]));
        if !(ok_torch || ok_ref) {
            failing += 1;
            // Measured against whichever of PyTorch's value and the reference is nearer.
            let against_reference = r.as_ref().is_some_and(|r| nearer(a[i], r[i], e[i]));
            let target = if against_reference {
                r.as_ref().map_or(e[i], |r| r[i])
            } else {
                e[i]
            };
            let allowed = tol.atol + tol.rtol * target.abs();
            let diff = (a[i] - target).abs();
            let excess = if diff.is_nan() {
                f64::INFINITY
            } else {
                diff / allowed.max(f64::MIN_POSITIVE)
            };
            if worst.is_none_or(|(w, _, _)| excess > w) {
                worst = Some((excess, i, against_reference));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((_, i, against_reference)) => {
            let target = if against_reference {
                r.as_ref().map_or(e[i], |r| r[i])
            } else {
                e[i]
            };
            let abs_err = (a[i] - target).abs();
            let ulp = ulp_distance(dtype, a[i], target);
            Err(Mismatch::Values {
                failing,
                total: a.len(),
                index: unravel(i, expected.shape()),
                actual: a[i],
                expected: e[i],
                reference: r.as_ref().map(|r| r[i]),
                against_reference,
                abs_err,
                rel_err: abs_err / target.abs(),
                ulp: (a[i].is_nan() == target.is_nan()).then_some(ulp),
                tolerance: tol,
            })
        }
    }
}

/// Whether `actual` is at least as close to the float64 `reference` as PyTorch's `expected`
/// is (all three finite: a NaN or an infinity is judged by [`close`] alone).
fn at_least_as_close(actual: f64, expected: f64, reference: f64) -> bool {
    actual.is_finite()
        && expected.is_finite()
        && reference.is_finite()
        && (actual - reference).abs() <= (expected - reference).abs()
}

/// Whether `x` is nearer to `reference` than to `expected` (NaN is nearest to NaN).
fn nearer(x: f64, reference: f64, expected: f64) -> bool {
    if x.is_nan() || reference.is_nan() || expected.is_nan() {
        return x.is_nan() == reference.is_nan() && x.is_nan() != expected.is_nan();
    }
    (x - reference).abs() < (x - expected).abs()
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
        assert!(
            compare(
                &t(DType::F32, &[1.000001, f64::NAN, f64::INFINITY]),
                &e,
                None,
                tol
            )
            .is_ok()
        );
        assert!(compare(&t(DType::F32, &[1.0, 0.0, f64::INFINITY]), &e, None, tol).is_err());
        assert!(
            compare(
                &t(DType::F32, &[1.0, f64::NAN, f64::NEG_INFINITY]),
                &e,
                None,
                tol
            )
            .is_err()
        );
        // dtype and shape must match exactly
        assert!(matches!(
            compare(&t(DType::F64, &[1.0, 0.0, 0.0]), &e, None, tol),
            Err(Mismatch::Dtype { .. })
        ));
    }

    #[test]
    fn reference_rescues_a_more_accurate_answer() {
        let tol = default_tolerance(DType::F16);
        // float16 spacing near 2.2 is 2^-9: these are 2 ulp apart, 3.9e-3 > 1e-5 + 1e-3 * 2.2.
        let torch = t(DType::F16, &[-2.19921875]);
        let reference = t(DType::F16, &[-2.203125]);
        let ours = t(DType::F16, &[-2.203125]);
        assert!(compare(&ours, &torch, None, tol).is_err());
        assert!(compare(&ours, &torch, Some(&reference), tol).is_ok());
        assert_eq!(ulp_distance(DType::F16, -2.203125, -2.19921875), 2);
    }

    #[test]
    fn an_answer_at_least_as_close_to_the_reference_as_pytorch_passes() {
        // bfloat16 near 1 has a spacing of 2^-7: PyTorch 15 ulp above the reference (1 +
        // 15/128), the answer 3 ulp above it. Neither is within atol 1e-5 + rtol 1.6e-2 of the
        // other or of the reference (3/128 = 0.023 > 0.016), yet the answer is nearer the truth.
        let tol = default_tolerance(DType::BF16);
        let reference = t(DType::BF16, &[1.0]);
        let torch = t(DType::BF16, &[1.0 + 15.0 / 128.0]);
        let ours = t(DType::BF16, &[1.0 + 3.0 / 128.0]);
        assert!(compare(&ours, &torch, None, tol).is_err());
        assert!(compare(&ours, &torch, Some(&reference), tol).is_ok());
        // further from the reference than PyTorch (0.125 below it, 32 ulp of 2^-8; PyTorch is
        // 0.117 above) still fails, measured against the nearer of the two (the reference)
        let worse = t(DType::BF16, &[1.0 - 32.0 / 256.0]);
        match compare(&worse, &torch, Some(&reference), tol) {
            Err(
                m @ Mismatch::Values {
                    against_reference: true,
                    ulp: Some(32),
                    ..
                },
            ) => {
                assert!(
                    m.to_string().contains("against the reference (the nearer)"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nan_against_a_number_says_so() {
        let tol = default_tolerance(DType::F32);
        let m = compare(
            &t(DType::F32, &[f64::NAN]),
            &t(DType::F32, &[1.0]),
            None,
            tol,
        )
        .unwrap_err();
        assert!(
            m.to_string()
                .ends_with("NaN where PyTorch's value is a number"),
            "{m}"
        );
        let m = compare(
            &t(DType::F32, &[1.0]),
            &t(DType::F32, &[f64::NAN]),
            None,
            tol,
        )
        .unwrap_err();
        assert!(
            m.to_string()
                .ends_with("a number where PyTorch's value is NaN"),
            "{m}"
        );
        assert!(!m.to_string().contains("18446744073709551615"), "{m}");
    }

    #[test]
    fn finite_against_infinite_is_said_in_words() {
        let tol = default_tolerance(DType::F32);
        let m = compare(
            &t(DType::F32, &[-3.5]),
            &t(DType::F32, &[f64::NEG_INFINITY]),
            None,
            tol,
        )
        .unwrap_err();
        assert!(
            m.to_string()
                .ends_with("a finite value where PyTorch's value is -inf"),
            "{m}"
        );
        assert!(
            !m.to_string().contains("ulp") && !m.to_string().contains("NaN"),
            "{m}"
        );
        let m = compare(
            &t(DType::F32, &[f64::INFINITY]),
            &t(DType::F32, &[2.0]),
            None,
            tol,
        )
        .unwrap_err();
        assert!(
            m.to_string()
                .ends_with("inf where PyTorch's value is a finite value"),
            "{m}"
        );
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
        assert_eq!(
            ulp_distance(DType::F64, f64::from_bits(1), -f64::from_bits(1)),
            2
        );
    }
}
