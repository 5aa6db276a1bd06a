//! The three ops with PyTorch 2.15 (CPU) semantics: forward, backward, and every rejection.
//!
//! Each op validates its arguments in the order PyTorch does (so that of two problems the same
//! one is reported), then hands the input, in its own dtype, to the kernel for that dtype
//! (`crate::kernels`: float64, float32, float16 and bfloat16 each read and written as they
//! are). The kernels compute in float32 or float64 with exact differences and compensated sums,
//! and round each result once into the output dtype: float16/bfloat16/float32 values are within
//! an ulp or two of the correctly rounded result, more accurate than PyTorch's own kernels and
//! always within the contract's tolerance of them (see `expected.reference` in spec/FORMAT.md).
//!
//! | op | PyTorch | module |
//! | --- | --- | --- |
//! | `log_softmax(input, dim)` | `torch.log_softmax`, `F.log_softmax(dim=None)` | [`log_softmax`](mod@log_softmax) |
//! | `nll_loss(input, target, weight, reduction, ignore_index)` | `F.nll_loss` | [`nll_loss`](mod@nll_loss) |
//! | `cross_entropy(..., label_smoothing)` | `F.cross_entropy` | [`cross_entropy`](mod@cross_entropy) |

pub mod call;
pub mod cross_entropy;
pub mod log_softmax;
pub mod nll_loss;

pub use call::{Call, Op};
pub use cross_entropy::{cross_entropy, cross_entropy_backward};
pub use log_softmax::{implicit_dim, log_softmax, log_softmax_backward, log_softmax_into};
pub use nll_loss::{nll_loss, nll_loss_backward};

use crate::error::{ErrorKind, OpError, PyType};
use crate::tensor::{DType, Tensor};

/// How a loss reduces over its elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Per element.
    None,
    /// Weighted mean over the targets not ignored.
    Mean,
    /// Sum.
    Sum,
}

impl Reduction {
    /// PyTorch's `_Reduction.get_enum`: `"elementwise_mean"` is the deprecated spelling of
    /// `"mean"` (torch warns and accepts it); anything else is a ValueError raised before any
    /// tensor is looked at.
    pub fn parse(s: &str) -> Result<Reduction, OpError> {
        match s {
            "none" => Ok(Reduction::None),
            "mean" | "elementwise_mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            other => Err(OpError::new(
                ErrorKind::InvalidReduction,
                PyType::ValueError,
                format!("{other} is not a valid value for reduction"),
            )
            .with_check(crate::error::Check::Reduction {
                given: other.to_string(),
            })),
        }
    }
}

/// A forward result together with, when a `grad_output` was given, the gradient with respect
/// to `input`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// The op's result.
    pub output: Tensor,
    /// The gradient with respect to the input, when a `grad_output` was given.
    pub grad_input: Option<Tensor>,
}

/// `dim` wrapped into `0..ndim` as PyTorch's `maybe_wrap_dim` does (a 0-d tensor accepts -1
/// and 0).
pub(crate) fn wrap_dim(dim: i64, ndim: usize) -> Result<usize, OpError> {
    let n = ndim.max(1) as i64;
    if dim < -n || dim >= n {
        return Err(OpError::new(
            ErrorKind::DimOutOfRange,
            PyType::IndexError,
            format!(
                "Dimension out of range (expected to be in range of [{}, {}], but got {dim})",
                -n,
                n - 1
            ),
        ));
    }
    Ok(if dim < 0 {
        (dim + n) as usize
    } else {
        dim as usize
    })
}

/// The dtype `a op b` has under PyTorch's type promotion, for the float cases the ops meet:
/// integers never promote a float; two different 16-bit floats meet at float32.
pub(crate) fn promote_float(a: DType, b: DType) -> DType {
    use DType::*;
    match (a.is_float(), b.is_float()) {
        (true, false) => a,
        (false, true) => b,
        (false, false) => a,
        (true, true) if a == b => a,
        (true, true) => {
            if a == F64 || b == F64 {
                F64
            } else {
                F32
            }
        }
    }
}

/// C++ `operator<<` for a double (printf `%g`, six significant digits), which is how
/// PyTorch's TORCH_CHECK prints numbers such as a label_smoothing of 1e10 (`1e+10`).
pub(crate) fn fmt_cpp_double(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Round to six significant digits first: the exponent is the rounded value's.
    let sci = format!("{x:.5e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim(&format!("{x:.decimals$}"))
    }
}

/// A rejection of an argument the API adds to PyTorch's (a `grad_output`, an `out` buffer).
pub(crate) fn invalid_argument(message: String) -> OpError {
    OpError::new(ErrorKind::InvalidArgument, PyType::RuntimeError, message)
}

/// A backward pass's `grad_output`, widened, and its gradient to fill (zeroed).
pub(crate) type Backward = (Vec<f64>, Vec<f64>);

/// The start of a backward pass: `grad_output` checked against `output` and widened, and a
/// zeroed gradient of `n` elements to fill; `None` without a `grad_output`.
pub(crate) fn backward_start(
    grad_output: Option<&Tensor>,
    output: &Tensor,
    n: usize,
) -> Result<Option<Backward>, OpError> {
    let Some(g) = grad_output else {
        return Ok(None);
    };
    check_grad_output(g, output)?;
    Ok(Some((g.to_f64_vec(), vec![0.0; n])))
}

fn check_grad_output(grad_output: &Tensor, output: &Tensor) -> Result<(), OpError> {
    if grad_output.shape() != output.shape() {
        return Err(invalid_argument(format!(
            "Mismatch in shape: grad_output has a shape of {} and output has a shape of {}.",
            crate::tensor::fmt_shape(grad_output.shape()),
            crate::tensor::fmt_shape(output.shape())
        )));
    }
    if !grad_output.dtype().is_float() {
        return Err(invalid_argument(format!(
            "grad_output must be a floating point tensor, got {}",
            grad_output.dtype().torch_name()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpp_double_format_matches_torch_messages() {
        // Each right-hand side was printed by torch 2.15 in
        // "label_smoothing must be between 0.0 and 1.0. Got: ...".
        assert_eq!(fmt_cpp_double(1.5), "1.5");
        assert_eq!(fmt_cpp_double(2.0), "2");
        assert_eq!(fmt_cpp_double(1e10), "1e+10");
        assert_eq!(fmt_cpp_double(1.0000001), "1");
        assert_eq!(fmt_cpp_double(f64::INFINITY), "inf");
        assert_eq!(fmt_cpp_double(123456789.5), "1.23457e+08");
        // printf("%g") rules, derived by hand: exponent -5 goes scientific, -4 stays fixed.
        assert_eq!(fmt_cpp_double(0.0001), "0.0001");
        assert_eq!(fmt_cpp_double(0.00001), "1e-05");
        assert_eq!(fmt_cpp_double(999999.5), "1e+06");
    }

    #[test]
    fn reduction_parse() {
        assert_eq!(
            Reduction::parse("elementwise_mean").unwrap(),
            Reduction::Mean
        );
        let e = Reduction::parse("avg").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidReduction);
        assert_eq!(e.message, "avg is not a valid value for reduction");
    }

    #[test]
    fn wrap_dim_rules() {
        assert_eq!(wrap_dim(-1, 0).unwrap(), 0);
        assert_eq!(wrap_dim(-2, 2).unwrap(), 0);
        // torch 2.15: torch.log_softmax(torch.randn(3, 5), 2)
        assert_eq!(
            wrap_dim(2, 2).unwrap_err().message,
            "Dimension out of range (expected to be in range of [-2, 1], but got 2)"
        );
        assert!(wrap_dim(i64::MIN, 3).is_err());
    }
}
