//! `torch.log_softmax(input, dim)`: `x_i - log(sum_j exp(x_j))` along `dim`.
//!
//! PyTorch 2.15 rules reproduced here:
//! - `dim` is wrapped (`-ndim..ndim`, and `-1..=0` for a 0-d tensor); out of range is an
//!   IndexError, checked before the dtype.
//! - A 0-d input is a row of one element: the result is 0 (NaN for a non-finite input).
//! - An empty input is returned as it is, whatever its dtype (torch does not dispatch on it).
//! - A non-float input is a NotImplementedError naming the kernel torch would have used:
//!   `log_softmax_lastdim_kernel_impl` when `dim` is the last dimension (or the input is 0-d),
//!   `log_softmax_kernel_impl` otherwise.
//! - `dim = None` (the deprecated implicit form of `F.log_softmax`) picks
//!   `0 if ndim in (0, 1, 3) else 1`.

use super::{Outputs, backward_start, invalid_argument, wrap_dim};
use crate::error::{ErrorKind, OpError, PyType};
use crate::kernels::{self, Lanes};
use crate::tensor::{DType, Data, DataMut, Tensor, written};

/// PyTorch's `_get_softmax_dim` for `F.log_softmax(x, dim=None)`.
pub fn implicit_dim(ndim: usize) -> i64 {
    if matches!(ndim, 0 | 1 | 3) { 0 } else { 1 }
}

/// Validates `(input, dim)` and returns the wrapped dim.
pub(crate) fn check(input: &Tensor, dim: Option<i64>) -> Result<usize, OpError> {
    let dim = dim.unwrap_or_else(|| implicit_dim(input.ndim()));
    let d = wrap_dim(dim, input.ndim())?;
    if input.numel() > 0 && !input.dtype().is_float() {
        let last = input.ndim() == 0 || d == input.ndim() - 1;
        let kernel = if last {
            "log_softmax_lastdim_kernel_impl"
        } else {
            "log_softmax_kernel_impl"
        };
        return Err(OpError::new(
            ErrorKind::InputDtype,
            PyType::NotImplementedError,
            format!(
                "\"{kernel}\" not implemented for '{}'",
                input.dtype().torch_name()
            ),
        ));
    }
    Ok(d)
}

/// log_softmax along `d` in float64 (the input widened exactly).
pub(crate) fn forward_f64(input: &Tensor, d: usize) -> Vec<f64> {
    let x = input.to_f64_vec();
    let mut out = vec![0.0; x.len()];
    kernels::double::log_softmax_f64(&x, &mut out, Lanes::along(input.shape(), d));
    out
}

/// `torch.log_softmax(input, dim)`; `dim: None` is the implicit rule.
pub fn log_softmax(input: &Tensor, dim: Option<i64>) -> Result<Tensor, OpError> {
    Ok(log_softmax_with_grad(input, dim, None)?.output)
}

/// `log_softmax(input, dim)` written into `out`, a tensor of the input's shape and dtype that
/// the caller owns (so that a hot loop allocates nothing).
pub fn log_softmax_into(input: &Tensor, dim: Option<i64>, out: &mut Tensor) -> Result<(), OpError> {
    let d = check(input, dim)?;
    if out.shape() != input.shape() || out.dtype() != input.dtype() {
        return Err(invalid_argument(format!(
            "out has shape {} and dtype {}, expected {} and {}",
            crate::tensor::fmt_shape(out.shape()),
            out.dtype(),
            crate::tensor::fmt_shape(input.shape()),
            input.dtype()
        )));
    }
    if input.numel() == 0 {
        return Ok(());
    }
    let l = Lanes::along(input.shape(), d);
    match (input.data(), out.data_mut()) {
        (Data::F32(x), DataMut::F32(y)) => kernels::fast::log_softmax_f32(x, y, l),
        (Data::F64(x), DataMut::F64(y)) => kernels::double::log_softmax_f64(x, y, l),
        (Data::F16(x), DataMut::F16(y)) => kernels::narrow::log_softmax_narrow(x, y, l),
        (Data::BF16(x), DataMut::BF16(y)) => kernels::narrow::log_softmax_narrow(x, y, l),
        // check() admits non-empty float inputs only, and `out` has the input's dtype
        _ => {
            return Err(invalid_argument(format!(
                "log_softmax_into: no kernel for dtype {}",
                input.dtype()
            )));
        }
    }
    Ok(())
}

/// The gradient of `log_softmax(input, dim)` with respect to `input`, given `grad_output`.
pub fn log_softmax_backward(
    input: &Tensor,
    dim: Option<i64>,
    grad_output: &Tensor,
) -> Result<Tensor, OpError> {
    let r = log_softmax_with_grad(input, dim, Some(grad_output))?;
    Ok(r.grad_input.expect("a grad_output yields a grad_input"))
}

/// Forward and, when `grad_output` is given, backward in one call (the backward reuses the
/// float64 forward, so it never sees the output's rounding).
pub fn log_softmax_with_grad(
    input: &Tensor,
    dim: Option<i64>,
    grad_output: Option<&Tensor>,
) -> Result<Outputs, OpError> {
    let d = check(input, dim)?;
    if input.numel() == 0 {
        let grad_input = grad_output.map(|_| input.clone());
        return Ok(Outputs {
            output: input.clone(),
            grad_input,
        });
    }
    let l = Lanes::along(input.shape(), d);
    let n = input.numel();
    let data = match input.data() {
        Data::F32(x) => {
            // SAFETY: the kernels write every element of their output
            // (tests/written.rs checks it).
            Data::F32(unsafe { written(n, |y| kernels::fast::log_softmax_f32_uninit(x, y, l)) })
        }
        Data::F64(x) => {
            // SAFETY: as above.
            Data::F64(unsafe { written(n, |y| kernels::double::log_softmax_f64_uninit(x, y, l)) })
        }
        // SAFETY: as above.
        Data::F16(x) => Data::F16(unsafe {
            written(n, |y| kernels::narrow::log_softmax_narrow_uninit(x, y, l))
        }),
        // SAFETY: as above.
        Data::BF16(x) => Data::BF16(unsafe {
            written(n, |y| kernels::narrow::log_softmax_narrow_uninit(x, y, l))
        }),
        _ => unreachable!("check() rejects non-empty integer inputs"),
    };
    let output = Tensor::new(input.shape().to_vec(), data).expect("input shape");
    // The backward needs the output in float64: widened from float32's, float64's own, and
    // for a 16-bit input the float64 forward rather than its rounded output (PyTorch's
    // float32 accumulation keeps more than the rounded output too).
    let out = match (grad_output, input.dtype()) {
        (None, _) => vec![],
        (Some(_), DType::F16 | DType::BF16) => forward_f64(input, d),
        (Some(_), _) => output.to_f64_vec(),
    };
    let grad_input = match backward_start(grad_output, &output, out.len())? {
        None => None,
        Some((g, mut gi)) => {
            kernels::log_softmax_backward(&g, &out, Lanes::along(input.shape(), d), &mut gi);
            Some(round(input.dtype(), input.shape(), &gi))
        }
    };
    Ok(Outputs { output, grad_input })
}

pub(crate) fn round(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
    Tensor::from_f64(dtype, shape.to_vec(), values).expect("values computed for this shape")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Data;

    fn t32(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::new(shape.to_vec(), Data::F32(v.to_vec())).unwrap()
    }

    #[test]
    fn matches_torch_values() {
        // torch 2.15: torch.log_softmax(torch.tensor([3e38, -3e38, 0.0]), 0)
        //   -> [0.0, -inf, -3.0000000054977558e+38]
        let y = log_softmax(&t32(&[3], &[3e38, -3e38, 0.0]), Some(0)).unwrap();
        assert_eq!(
            y.to_f64_vec(),
            vec![0.0, f64::NEG_INFINITY, -3.0000000054977558e+38]
        );
        // torch 2.15: log_softmax of a 0-d tensor is 0, and NaN for nan/inf/-inf.
        let z = log_softmax(&Tensor::scalar(DType::F32, 2.0), Some(0)).unwrap();
        assert_eq!(z.to_f64_vec(), vec![0.0]);
        let z = log_softmax(&Tensor::scalar(DType::F32, f64::NEG_INFINITY), Some(-1)).unwrap();
        assert!(z.to_f64_vec()[0].is_nan());
    }

    #[test]
    fn errors_match_torch() {
        // torch 2.15 messages, copied from probe output.
        let e = log_softmax(&Tensor::scalar(DType::F32, 2.0), Some(1)).unwrap_err();
        assert_eq!(
            e.message,
            "Dimension out of range (expected to be in range of [-1, 0], but got 1)"
        );
        let long = Tensor::new(vec![1, 2], Data::I64(vec![1, 2])).unwrap();
        let e = log_softmax(&long, Some(0)).unwrap_err();
        assert_eq!(
            (e.kind, e.py_type),
            (ErrorKind::InputDtype, PyType::NotImplementedError)
        );
        assert_eq!(
            e.message,
            "\"log_softmax_kernel_impl\" not implemented for 'Long'"
        );
        let e = log_softmax(&long, Some(1)).unwrap_err();
        assert_eq!(
            e.message,
            "\"log_softmax_lastdim_kernel_impl\" not implemented for 'Long'"
        );
        // Out of range is reported before the dtype: torch.log_softmax(torch.tensor([1, 2]), 3).
        let e = log_softmax(&long, Some(3)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::DimOutOfRange);
        // Empty integer input is returned unchanged (torch: shape (0,), dtype int64).
        let empty = Tensor::new(vec![0], Data::I64(vec![])).unwrap();
        assert_eq!(log_softmax(&empty, Some(0)).unwrap(), empty);
    }

    #[test]
    fn implicit_dim_rule() {
        assert_eq!([0, 1, 2, 3, 4, 5].map(implicit_dim), [0, 0, 1, 0, 1, 1]);
    }
}
