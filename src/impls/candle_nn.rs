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
use crate::ops::{Call, Op};
use candle_core::{Tensor as CTensor, Var};

/// candle-nn's own `ops::log_softmax`, `loss::nll` and `loss::cross_entropy`.
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
            Err(e) => Outcome::error(None, format!("candle: {}", first_line(&e.to_string()))),
        }
    }
}

fn unsupported(req: &Request<'_>) -> Option<String> {
    let (input, target, weight, reduction, ls) = match req.call {
        Call::LogSoftmax { .. } => return None,
        Call::NllLoss {
            input,
            target,
            weight,
            reduction,
            ..
        } => (input, target, weight, reduction, 0.0),
        Call::CrossEntropy {
            input,
            target,
            weight,
            reduction,
            label_smoothing,
            ..
        } => (input, target, weight, reduction, *label_smoothing),
    };
    if weight.is_some() {
        return Some("candle-nn's loss functions take no class weight".into());
    }
    if reduction != "mean" {
        return Some(format!(
            "candle-nn's loss functions always take the mean (reduction \"{reduction}\" requested)"
        ));
    }
    if ls > 0.0 {
        return Some("candle-nn's cross_entropy has no label smoothing".into());
    }
    if req.call.op() == Op::CrossEntropy && target.shape() == input.shape() {
        return Some(
            "candle-nn's cross_entropy takes class indices only, not probabilities".into(),
        );
    }
    if input.ndim() != 2 {
        return Some(format!(
            "candle-nn's loss functions take (N, C) inputs only, not {}-d",
            input.ndim()
        ));
    }
    None
}

fn run(req: &Request<'_>) -> candle_core::Result<(crate::Tensor, Option<crate::Tensor>)> {
    let input = req.call.input();
    let x = Var::from_tensor(&to_candle(input)?)?;
    let out: CTensor = match req.call {
        Call::LogSoftmax { dim, .. } => {
            let n = input.ndim() as i64;
            let d = dim.unwrap_or_else(|| crate::ops::implicit_dim(input.ndim()));
            let d = if d < 0 { d + n } else { d };
            if d < 0 {
                candle_core::bail!("dim {d} out of range");
            }
            candle_nn::ops::log_softmax(x.as_tensor(), d as usize)?
        }
        Call::NllLoss { target, .. } => candle_nn::loss::nll(x.as_tensor(), &to_candle(target)?)?,
        Call::CrossEntropy { target, .. } => {
            candle_nn::loss::cross_entropy(x.as_tensor(), &to_candle(target)?)?
        }
    };
    let out_shape: Vec<usize> = out.dims().to_vec();
    let output = from_candle(&out, &out_shape, input.dtype())?;
    let grad = match req.grad_output {
        None => None,
        Some(g) => {
            let g = to_candle(g)?;
            let s = out.mul(&g.reshape(out.shape())?)?.sum_all()?;
            let grads = s.backward()?;
            let gi = match grads.get(x.as_tensor()) {
                Some(gi) => gi.clone(),
                None => x.as_tensor().zeros_like()?,
            };
            Some(from_candle(&gi, input.shape(), input.dtype())?)
        }
    };
    Ok((output, grad))
}
