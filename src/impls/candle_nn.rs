//! `candle-nn`: candle-nn's own `ops::log_softmax`, `loss::nll` and `loss::cross_entropy`,
//! called as a Candle user calls them, gradients from Candle's autograd.
//!
//! These functions cover a subset of PyTorch's: `(N, C)` inputs, the mean reduction, no
//! weight, no ignore_index, no label smoothing, no probability targets. A request outside that
//! subset is `unsupported` (with the missing feature named); everything inside it is run and
//! judged, and where candle-nn then diverges from PyTorch the divergence is listed, with its
//! reason, in spec/expectations/candle-nn.json.

use super::candle_bridge::{first_line, from_candle, to_candle};
use super::{Implementation, Outcome, Request};
use crate::golden::format::{Attrs, Op};
use candle_core::{Tensor as CTensor, Var};

pub struct CandleNn;

impl Implementation for CandleNn {
    fn name(&self) -> &str {
        "candle-nn"
    }

    fn run(&self, req: &Request<'_>) -> Outcome {
        if let Some(reason) = unsupported(req) {
            return Outcome::Unsupported(reason);
        }
        match run(req) {
            Ok((output, grad_input)) => Outcome::Values { output, grad_input },
            // candle's errors carry no contract kind: they never match an expected rejection.
            Err(e) => Outcome::Error { kind: None, message: format!("candle: {}", first_line(&e.to_string())) },
        }
    }
}

fn unsupported(req: &Request<'_>) -> Option<String> {
    let i = req.inputs;
    if let Op::LogSoftmax = req.op {
        return None;
    }
    if i.weight.is_some() {
        return Some("candle-nn's loss functions take no class weight".into());
    }
    let (reduction, ls) = match req.attrs {
        Attrs::NllLoss { reduction, .. } => (reduction.as_str(), 0.0),
        Attrs::CrossEntropy { reduction, label_smoothing, .. } => (reduction.as_str(), *label_smoothing),
        Attrs::LogSoftmax { .. } => unreachable!(),
    };
    if reduction != "mean" {
        return Some(format!("candle-nn's loss functions always take the mean (reduction \"{reduction}\" requested)"));
    }
    if ls > 0.0 {
        return Some("candle-nn's cross_entropy has no label smoothing".into());
    }
    let target = i.target.as_ref()?;
    if req.op == Op::CrossEntropy && target.shape() == i.input.shape() {
        return Some("candle-nn's cross_entropy takes class indices only, not probabilities".into());
    }
    if i.input.ndim() != 2 {
        return Some(format!(
            "candle-nn's loss functions take (N, C) inputs only, not {}-d",
            i.input.ndim()
        ));
    }
    None
}

fn run(req: &Request<'_>) -> candle_core::Result<(crate::Tensor, Option<crate::Tensor>)> {
    let i = req.inputs;
    let x = Var::from_tensor(&to_candle(&i.input)?)?;
    let out: CTensor = match req.attrs {
        Attrs::LogSoftmax { dim } => {
            let n = i.input.ndim() as i64;
            let d = dim.unwrap_or_else(|| crate::ops::implicit_dim(i.input.ndim()));
            let d = if d < 0 { d + n } else { d };
            if d < 0 {
                candle_core::bail!("dim {d} out of range");
            }
            candle_nn::ops::log_softmax(x.as_tensor(), d as usize)?
        }
        Attrs::NllLoss { .. } => candle_nn::loss::nll(x.as_tensor(), &to_candle(i.target.as_ref().expect("target"))?)?,
        Attrs::CrossEntropy { .. } => {
            candle_nn::loss::cross_entropy(x.as_tensor(), &to_candle(i.target.as_ref().expect("target"))?)?
        }
    };
    let out_shape: Vec<usize> = out.dims().to_vec();
    let output = from_candle(&out, &out_shape, i.input.dtype())?;
    let grad = match &i.grad_output {
        None => None,
        Some(g) => {
            let g = to_candle(g)?;
            let s = out.mul(&g.reshape(out.shape())?)?.sum_all()?;
            let grads = s.backward()?;
            let gi = match grads.get(x.as_tensor()) {
                Some(gi) => gi.clone(),
                None => x.as_tensor().zeros_like()?,
            };
            Some(from_candle(&gi, i.input.shape(), i.input.dtype())?)
        }
    };
    Ok((output, grad))
}
