//! One op applied to its arguments: [`Call`], a variant per op carrying exactly that op's
//! inputs and attributes (a log_softmax has no target; a loss always has one), so that code
//! taking a call never meets a combination the contract does not have. Golden cases, the
//! implementations' requests, and the cases `nllspec shrink` and `fuzz` make all speak it
//! (`nllspec explain` calls the ops directly and describes a snippet's call in its own
//! `explain::advice::SnippetCall`, the Python spelling of the arguments).

use super::{Outputs, Reduction, cross_entropy, log_softmax, nll_loss};
use crate::error::OpError;
use crate::tensor::Tensor;
use std::fmt;

/// The three ops of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `torch.log_softmax`.
    LogSoftmax,
    /// `torch.nn.functional.nll_loss`.
    NllLoss,
    /// `torch.nn.functional.cross_entropy`.
    CrossEntropy,
}

impl Op {
    /// The three ops.
    pub const ALL: [Op; 3] = [Op::LogSoftmax, Op::NllLoss, Op::CrossEntropy];

    /// The op's name in golden files and protocol 1.
    pub fn name(self) -> &'static str {
        match self {
            Op::LogSoftmax => "log_softmax",
            Op::NllLoss => "nll_loss",
            Op::CrossEntropy => "cross_entropy",
        }
    }

    /// The op called `s`.
    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An op and its arguments, defaults filled in (contract section 1). `reduction` stays the
/// string the caller gave: an unknown one is PyTorch's ValueError, raised in its turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `dim: None` is PyTorch's implicit rule.
    LogSoftmax {
        /// Any shape, any dtype (an integer one is rejected unless empty).
        input: Tensor,
        /// The dimension to normalise over, negative counting from the end.
        dim: Option<i64>,
    },
    /// `nll_loss(input, target, weight, reduction=..., ignore_index=...)`.
    NllLoss {
        /// Log-probabilities: `(C)`, `(N, C)` or `(N, C, d1, ...)`.
        input: Tensor,
        /// Class indices.
        target: Tensor,
        /// A weight per class.
        weight: Option<Tensor>,
        /// `none`, `mean`, `sum` (another string is rejected in its turn).
        reduction: String,
        /// The target value that contributes nothing.
        ignore_index: i64,
    },
    /// `cross_entropy(input, target, weight, reduction=..., ignore_index=..., label_smoothing=...)`.
    CrossEntropy {
        /// Raw scores: `(C)`, `(N, C)` or `(N, C, d1, ...)`.
        input: Tensor,
        /// Class indices, or class probabilities of the input's shape.
        target: Tensor,
        /// A weight per class.
        weight: Option<Tensor>,
        /// `none`, `mean`, `sum` (another string is rejected in its turn).
        reduction: String,
        /// The target value that contributes nothing (class indices only).
        ignore_index: i64,
        /// The share of each target spread uniformly over the classes.
        label_smoothing: f64,
    },
}

impl Call {
    /// Which op.
    pub fn op(&self) -> Op {
        match self {
            Call::LogSoftmax { .. } => Op::LogSoftmax,
            Call::NllLoss { .. } => Op::NllLoss,
            Call::CrossEntropy { .. } => Op::CrossEntropy,
        }
    }

    /// The input tensor.
    pub fn input(&self) -> &Tensor {
        match self {
            Call::LogSoftmax { input, .. }
            | Call::NllLoss { input, .. }
            | Call::CrossEntropy { input, .. } => input,
        }
    }

    /// The class targets (or probabilities) of a loss.
    pub fn target(&self) -> Option<&Tensor> {
        match self {
            Call::LogSoftmax { .. } => None,
            Call::NllLoss { target, .. } | Call::CrossEntropy { target, .. } => Some(target),
        }
    }

    /// A loss's class weights, if given.
    pub fn weight(&self) -> Option<&Tensor> {
        match self {
            Call::LogSoftmax { .. } => None,
            Call::NllLoss { weight, .. } | Call::CrossEntropy { weight, .. } => weight.as_ref(),
        }
    }

    /// The same call with every tensor replaced by `f(tensor)` (widened to float64, say).
    pub fn map_tensors(&self, f: impl Fn(&Tensor) -> Tensor) -> Call {
        match self {
            Call::LogSoftmax { input, dim } => Call::LogSoftmax {
                input: f(input),
                dim: *dim,
            },
            Call::NllLoss {
                input,
                target,
                weight,
                reduction,
                ignore_index,
            } => Call::NllLoss {
                input: f(input),
                target: f(target),
                weight: weight.as_ref().map(&f),
                reduction: reduction.clone(),
                ignore_index: *ignore_index,
            },
            Call::CrossEntropy {
                input,
                target,
                weight,
                reduction,
                ignore_index,
                label_smoothing,
            } => Call::CrossEntropy {
                input: f(input),
                target: f(target),
                weight: weight.as_ref().map(&f),
                reduction: reduction.clone(),
                ignore_index: *ignore_index,
                label_smoothing: *label_smoothing,
            },
        }
    }

    /// The op's result and, with a `grad_output`, the gradient with respect to `input`.
    pub fn run(&self, grad_output: Option<&Tensor>) -> Result<Outputs, OpError> {
        let g = grad_output;
        match self {
            Call::LogSoftmax { input, dim } => log_softmax::log_softmax_with_grad(input, *dim, g),
            Call::NllLoss {
                input,
                target,
                weight,
                reduction,
                ignore_index,
            } => {
                let r = Reduction::parse(reduction)?;
                nll_loss::nll_loss_with_grad(input, target, weight.as_ref(), r, *ignore_index, g)
            }
            Call::CrossEntropy {
                input,
                target,
                weight,
                reduction,
                ignore_index,
                label_smoothing,
            } => {
                let r = Reduction::parse(reduction)?;
                cross_entropy::cross_entropy_with_grad(
                    input,
                    target,
                    weight.as_ref(),
                    r,
                    *ignore_index,
                    *label_smoothing,
                    g,
                )
            }
        }
    }

    /// Every check the op makes, in PyTorch's order, without computing anything: the rejection
    /// PyTorch would raise, or `Ok`. Implementations with numerics of their own (the Candle
    /// ones) share it, so that their rejections are PyTorch's.
    pub fn check(&self) -> Result<(), OpError> {
        match self {
            Call::LogSoftmax { input, dim } => log_softmax::check(input, *dim).map(drop),
            Call::NllLoss {
                input,
                target,
                weight,
                reduction,
                ignore_index,
            } => {
                let r = Reduction::parse(reduction)?;
                nll_loss::plan(
                    input.shape(),
                    input.dtype(),
                    target,
                    weight.as_ref(),
                    r,
                    *ignore_index,
                    nll_loss::Bounds::Check,
                )
                .map(drop)
            }
            Call::CrossEntropy {
                input,
                target,
                weight,
                reduction,
                ignore_index,
                label_smoothing,
            } => {
                let r = Reduction::parse(reduction)?;
                cross_entropy::check(
                    input,
                    target,
                    weight.as_ref(),
                    r,
                    *ignore_index,
                    *label_smoothing,
                )
                .map(drop)
            }
        }
    }
}
