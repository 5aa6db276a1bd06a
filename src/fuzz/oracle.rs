//! The native implementation as the oracle for cases no golden file holds: a call becomes a
//! [`Case`] whose expected answer is native's (PyTorch's semantics, which native passes on every
//! golden case), with the float64 reference beside it as the exporter writes one, so that a
//! generated or shrunk case is judged exactly as a golden case is against PyTorch.

use crate::golden::format::{Case, Expected, ExpectedError, Values};
use crate::impls::{Implementation, Request};
use crate::judge::{Failure, Messages, Verdict, judge};
use crate::ops::Call;
use crate::tensor::{DType, Tensor};

/// `t` in float64 (integer tensors unchanged).
fn widen(t: &Tensor) -> Tensor {
    if t.dtype().is_float() && t.dtype() != DType::F64 {
        Tensor::from_f64(DType::F64, t.shape().to_vec(), &t.to_f64_vec())
            .unwrap_or_else(|_| t.clone())
    } else {
        t.clone()
    }
}

fn round_to(t: &Tensor, dtype: DType) -> Tensor {
    Tensor::from_f64(dtype, t.shape().to_vec(), &t.to_f64_vec()).unwrap_or_else(|_| t.clone())
}

/// The case `call` makes, with native's answer as the expected one.
pub fn case(id: &str, call: Call, grad_output: Option<Tensor>) -> Case {
    let expected = match call.run(grad_output.as_ref()) {
        Err(e) => Expected::Error(ExpectedError {
            kind: e.kind,
            py_type: Some(e.py_type),
            message: e.message,
        }),
        Ok(out) => {
            let low = matches!(call.input().dtype(), DType::F16 | DType::BF16 | DType::F32);
            let reference = if low {
                let wide = call.map_tensors(widen);
                let g = grad_output.as_ref().map(widen);
                wide.run(g.as_ref()).ok().map(|r| Values {
                    output: round_to(&r.output, out.output.dtype()),
                    grad_input: match (r.grad_input, &out.grad_input) {
                        (Some(w), Some(n)) => Some(round_to(&w, n.dtype())),
                        _ => None,
                    },
                })
            } else {
                None
            };
            Expected::Values {
                torch: Values {
                    output: out.output,
                    grad_input: out.grad_input,
                },
                reference,
            }
        }
    };
    Case {
        id: id.to_string(),
        call,
        grad_output,
        expected,
        tolerance: None,
        tags: vec![],
        note: None,
    }
}

/// How an implementation fares on a case judged against native: `None` when it passes (or
/// skips: a case it cannot express is not a disagreement), else the failure.
pub fn disagreement(imp: &dyn Implementation, case: &Case) -> Option<Failure> {
    let outcome = crate::execution::run_guarded(imp, &Request::of(case));
    match judge(case, &outcome, Messages::Kind) {
        Verdict::Fail(f) => Some(f),
        _ => None,
    }
}
