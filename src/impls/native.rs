//! The native implementation: this crate's [`crate::ops`].

use super::{Implementation, Outcome, Request};
use crate::golden::format::{Attrs, Op};
use crate::ops::{self, Outputs, Reduction};
use crate::OpError;

pub struct Native;

/// Runs a request through the native ops (shared by the Candle reference for validation).
pub fn run_ops(req: &Request<'_>) -> Result<Outputs, OpError> {
    let i = req.inputs;
    let g = i.grad_output.as_ref();
    match (req.op, req.attrs) {
        (Op::LogSoftmax, Attrs::LogSoftmax { dim }) => ops::log_softmax::log_softmax_with_grad(&i.input, *dim, g),
        (Op::NllLoss, Attrs::NllLoss { reduction, ignore_index }) => {
            let r = Reduction::parse(reduction)?;
            let t = i.target.as_ref().expect("the loader requires a target for losses");
            ops::nll_loss::nll_loss_with_grad(&i.input, t, i.weight.as_ref(), r, *ignore_index, g)
        }
        (Op::CrossEntropy, Attrs::CrossEntropy { reduction, ignore_index, label_smoothing }) => {
            let r = Reduction::parse(reduction)?;
            let t = i.target.as_ref().expect("the loader requires a target for losses");
            ops::cross_entropy::cross_entropy_with_grad(&i.input, t, i.weight.as_ref(), r, *ignore_index, *label_smoothing, g)
        }
        _ => unreachable!("the loader pairs each op with its own attrs"),
    }
}

impl Implementation for Native {
    fn name(&self) -> &str {
        "native"
    }

    fn run(&self, req: &Request<'_>) -> Outcome {
        match run_ops(req) {
            Ok(o) => Outcome::Values { output: o.output, grad_input: o.grad_input },
            Err(e) => Outcome::Error { kind: Some(e.kind), message: format!("{}: {}", e.py_type.name(), e.message) },
        }
    }

    fn exact_messages(&self) -> bool {
        true
    }
}

/// Every check the op makes, without computing anything: the rejection PyTorch would raise,
/// or `Ok`. The Candle implementations share it, so that their rejections follow PyTorch's
/// order while their numerics stay Candle's.
pub fn validate(req: &Request<'_>) -> Result<(), OpError> {
    let i = req.inputs;
    match (req.op, req.attrs) {
        (Op::LogSoftmax, Attrs::LogSoftmax { dim }) => ops::log_softmax::check(&i.input, *dim).map(drop),
        (Op::NllLoss, Attrs::NllLoss { reduction, ignore_index }) => {
            let r = Reduction::parse(reduction)?;
            let t = i.target.as_ref().expect("the loader requires a target for losses");
            ops::nll_loss::plan(i.input.shape(), i.input.dtype(), t, i.weight.as_ref(), r, *ignore_index, ops::nll_loss::Bounds::Check).map(drop)
        }
        (Op::CrossEntropy, Attrs::CrossEntropy { reduction, ignore_index, label_smoothing }) => {
            let r = Reduction::parse(reduction)?;
            let t = i.target.as_ref().expect("the loader requires a target for losses");
            ops::cross_entropy::check(&i.input, t, i.weight.as_ref(), r, *ignore_index, *label_smoothing).map(drop)
        }
        _ => unreachable!("the loader pairs each op with its own attrs"),
    }
}
