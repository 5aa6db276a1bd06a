//! `candle`: a reference implementation composed of candle-core / candle-nn tensor ops.
//!
//! log_softmax is `candle_nn::ops::log_softmax`; nll_loss (weights, ignore_index, reductions,
//! spatial inputs), cross_entropy (index and probability targets, label smoothing) and every
//! backward are composed here from Candle tensor ops (gather, scatter_add, where_cond, sums),
//! so that every number is computed by Candle, in the case's dtype, as a Candle user would.
//! Gradients use the closed-form vector-Jacobian products rather than Candle's autograd, whose
//! backward through `max_keepdim` turns a -inf logit into NaN.
//!
//! Argument checks are shared with the native implementation ([`crate::ops::Call::check`]):
//! they are PyTorch's semantics, not numerics, and Candle has no equivalent of them.

use super::candle_bridge::{CResult, cdtype, first_line, from_candle, to_candle};
use super::{Implementation, Outcome, Request};
use crate::ops::{Call, Op, Reduction, promote_float};
use crate::tensor::{DType, Tensor};
use candle_core::{D, DType as CDType, Device, Tensor as CTensor};

/// The Candle reference: the three ops composed of candle-core and candle-nn tensor ops.
pub struct CandleReference;

impl Implementation for CandleReference {
    fn name(&self) -> &str {
        "candle"
    }

    fn run(&self, req: &Request<'_>) -> Outcome {
        if let Err(e) = req.call.check() {
            return Outcome::Error {
                kind: Some(e.kind),
                py_type: Some(e.py_type),
                message: e.message,
            };
        }
        match run(req) {
            Ok((output, grad_input)) => Outcome::Values { output, grad_input },
            Err(NotRun::Inexpressible(reason)) => Outcome::Unsupported(reason),
            Err(NotRun::Candle(e)) => {
                Outcome::Broken(format!("candle error: {}", first_line(&e.to_string())))
            }
        }
    }
}

/// float16 and bfloat16 are computed in float32, as PyTorch's CPU kernels accumulate them
/// (Candle's own half-precision sums drift by several ulp over a row).
fn wide(d: CDType) -> CDType {
    match d {
        CDType::F16 | CDType::BF16 => CDType::F32,
        d => d,
    }
}

/// Why a request has no values.
enum NotRun {
    /// A case Candle's operations cannot express (skipped, with the reason).
    Inexpressible(String),
    /// Candle failed (a broken answer).
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for NotRun {
    fn from(e: candle_core::Error) -> NotRun {
        NotRun::Candle(e)
    }
}

/// The output and, for a backward case, the gradient.
type Run = Result<(Tensor, Option<Tensor>), NotRun>;

/// A loss call's arguments, the reduction parsed; `label_smoothing` is `None` for nll_loss.
struct LossArgs<'a> {
    x: &'a Tensor,
    target: &'a Tensor,
    weight: Option<&'a Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    label_smoothing: Option<f64>,
    grad_output: Option<&'a Tensor>,
}

fn run(req: &Request<'_>) -> Run {
    let x = req.call.input();
    let op = req.call.op();
    // Candle's max/log_softmax reject empty tensors and 0-d inputs; nll_loss needs neither.
    if (x.numel() == 0 && op != Op::NllLoss) || (x.ndim() == 0 && op == Op::LogSoftmax) {
        return Err(NotRun::Inexpressible(empty_or_scalar(x)));
    }
    let (target, weight, reduction, ignore_index, label_smoothing) = match req.call {
        Call::LogSoftmax { input, dim } => return log_softmax(input, *dim, req.grad_output),
        Call::NllLoss {
            target,
            weight,
            reduction,
            ignore_index,
            ..
        } => (target, weight, reduction, *ignore_index, None),
        Call::CrossEntropy {
            target,
            weight,
            reduction,
            ignore_index,
            label_smoothing,
            ..
        } => (
            target,
            weight,
            reduction,
            *ignore_index,
            Some(*label_smoothing),
        ),
    };
    // `check()` passed, so the reduction parses; an error here would be a case Candle cannot run
    let reduction = match Reduction::parse(reduction) {
        Ok(r) => r,
        Err(e) => return Err(NotRun::Inexpressible(e.message)),
    };
    loss(LossArgs {
        x,
        target,
        weight: weight.as_ref(),
        reduction,
        ignore_index,
        label_smoothing,
        grad_output: req.grad_output,
    })
}

fn empty_or_scalar(x: &Tensor) -> String {
    if x.numel() == 0 {
        "Candle's max reduction, inside log_softmax, rejects empty tensors (\"empty tensor for reduce\")".into()
    } else {
        "Candle's log_softmax needs a dimension to reduce; a 0-d tensor has none".into()
    }
}

fn log_softmax(x: &Tensor, dim: Option<i64>, grad_output: Option<&Tensor>) -> Run {
    let d = dim.unwrap_or_else(|| crate::ops::implicit_dim(x.ndim()));
    let d = if d < 0 {
        (d + x.ndim() as i64) as usize
    } else {
        d as usize
    };
    let cx = to_candle(x)?;
    let cx = cx.to_dtype(wide(cx.dtype()))?;
    let out = candle_nn::ops::log_softmax(&cx, d)?;
    let grad = match grad_output {
        None => None,
        Some(g) => {
            let g = to_candle(g)?.to_dtype(cx.dtype())?;
            // g - exp(out) * sum(g)
            let gi = g.broadcast_sub(&out.exp()?.broadcast_mul(&g.sum_keepdim(d)?)?)?;
            Some(from_candle(&gi, x.shape(), x.dtype())?)
        }
    };
    Ok((from_candle(&out, x.shape(), x.dtype())?, grad))
}

/// The classes moved last and every other dimension flattened: `(P, C)`, and back.
fn to_rows(x: &CTensor) -> CResult<CTensor> {
    let dims = x.dims().to_vec();
    match dims.len() {
        1 => x.unsqueeze(0),
        2 => Ok(x.clone()),
        n => {
            let mut perm: Vec<usize> = vec![0];
            perm.extend(2..n);
            perm.push(1);
            let c = dims[1];
            x.permute(perm)?.contiguous()?.reshape(((), c))
        }
    }
}

fn from_rows(rows: &CTensor, shape: &[usize]) -> CResult<CTensor> {
    match shape.len() {
        1 | 2 => rows.reshape(shape),
        n => {
            let mut moved = vec![shape[0]];
            moved.extend_from_slice(&shape[2..]);
            moved.push(shape[1]);
            let mut perm: Vec<usize> = vec![0, n - 1];
            perm.extend(1..n - 1);
            rows.reshape(moved)?.permute(perm)?.contiguous()
        }
    }
}

fn loss(a: LossArgs<'_>) -> Run {
    let LossArgs {
        x,
        target,
        weight,
        reduction,
        ignore_index,
        label_smoothing,
        grad_output,
    } = a;
    let prob = label_smoothing.is_some() && target.shape() == x.shape();
    let ls = label_smoothing.unwrap_or(0.0);
    let ls = if ls > 0.0 { ls } else { 0.0 };
    let rows = to_rows(&to_candle(x)?.to_dtype(wide(cdtype(x.dtype())))?)?;
    let (p, c) = rows.dims2()?;
    let dt = rows.dtype();
    // cross_entropy works on log-probabilities, nll_loss on the input as given
    let logp = if label_smoothing.is_some() {
        candle_nn::ops::log_softmax(&rows, 1)?
    } else {
        rows.clone()
    };
    let weight_in = weight;
    let weight = match weight_in {
        Some(w) => Some(
            to_candle(w)?
                .flatten_all()?
                .to_dtype(wide(cdtype(w.dtype())))?,
        ),
        None => None,
    };

    let out_shape: Vec<usize> = {
        let mut s = x.shape().to_vec();
        s.remove(if x.ndim() == 1 { 0 } else { 1 });
        s
    };
    if prob {
        let out_dtype = {
            let mut d = promote_float(x.dtype(), target.dtype());
            if let Some(w) = weight_in {
                d = promote_float(d, w.dtype());
            }
            d
        };
        let odt = wide(cdtype(out_dtype));
        let mut t = to_rows(&to_candle(target)?)?.to_dtype(odt)?;
        if ls > 0.0 {
            t = t.affine(1.0 - ls, ls / c as f64)?;
        }
        let coef = match &weight {
            Some(w) => t.broadcast_mul(&w.to_dtype(odt)?.unsqueeze(0)?)?,
            None => t,
        };
        let lp = logp.to_dtype(odt)?;
        let per_row = lp.mul(&coef)?.sum(1)?.neg()?;
        let out = match reduction {
            Reduction::None => per_row.reshape(out_shape.as_slice())?,
            Reduction::Sum => per_row.sum_all()?,
            Reduction::Mean => per_row.sum_all()?.affine(1.0 / p as f64, 0.0)?,
        };
        let grad = match grad_output {
            None => None,
            Some(g) => {
                let g = to_candle(g)?.to_dtype(odt)?;
                let scale = match reduction {
                    Reduction::None => g.reshape((p, 1))?,
                    Reduction::Sum => g.reshape((1, 1))?,
                    Reduction::Mean => g.reshape((1, 1))?.affine(1.0 / p as f64, 0.0)?,
                };
                let grad_logp = coef.broadcast_mul(&scale)?.neg()?.to_dtype(dt)?;
                Some(log_softmax_vjp(&logp, &grad_logp, x.shape(), x.dtype())?)
            }
        };
        return Ok((
            from_candle(&out, &out_dims(reduction, &out_shape), out_dtype)?,
            grad,
        ));
    }

    // class-index targets
    let t = to_candle(target)?.flatten_all()?.to_dtype(CDType::I64)?;
    let keep = t.ne(ignore_index)?; // u8 mask over positions
    let safe_t = keep.where_cond(&t, &t.zeros_like()?)?;
    let picked = logp.gather(&safe_t.unsqueeze(1)?, 1)?.squeeze(1)?;
    let zero = CTensor::zeros(p, dt, &Device::Cpu)?;
    let w_t = match &weight {
        Some(w) => keep.where_cond(&w.index_select(&safe_t, 0)?, &zero)?,
        None => keep.where_cond(&zero.ones_like()?, &zero)?,
    };
    let nll = keep.where_cond(&picked.mul(&w_t)?.neg()?, &zero)?;
    let total = w_t.sum_all()?;
    let reduce = |v: &CTensor| -> CResult<CTensor> {
        match reduction {
            Reduction::None => v.reshape(out_shape.as_slice()),
            Reduction::Sum => v.sum_all(),
            Reduction::Mean => v.sum_all()?.div(&total),
        }
    };
    let mut out = reduce(&nll)?;
    if ls > 0.0 {
        let weighted = match &weight {
            Some(w) => logp.broadcast_mul(&w.unsqueeze(0)?)?,
            None => logp.clone(),
        };
        let smooth = keep.where_cond(&weighted.sum(1)?.neg()?, &zero)?;
        out = out
            .affine(1.0 - ls, 0.0)?
            .add(&reduce(&smooth)?.affine(ls / c as f64, 0.0)?)?;
    }
    let grad = match grad_output {
        None => None,
        Some(g) => {
            let g = to_candle(g)?.to_dtype(dt)?;
            let scale = match reduction {
                Reduction::None => g.reshape(p)?,
                Reduction::Sum => g.reshape(1)?.broadcast_as(p)?.contiguous()?,
                Reduction::Mean => g
                    .reshape(1)?
                    .div(&total.reshape(1)?)?
                    .broadcast_as(p)?
                    .contiguous()?,
            };
            // d loss / d logp: -(1 - ls) * w[t] * s at (p, t), and -(ls / C) * w[c] * s on every c
            let at_target = keep.where_cond(&w_t.mul(&scale)?.affine(-(1.0 - ls), 0.0)?, &zero)?;
            let mut grad_logp = CTensor::zeros((p, c), dt, &Device::Cpu)?.scatter_add(
                &safe_t.unsqueeze(1)?,
                &at_target.unsqueeze(1)?,
                1,
            )?;
            if ls > 0.0 {
                let s = keep
                    .where_cond(&scale, &zero)?
                    .unsqueeze(1)?
                    .affine(-ls / c as f64, 0.0)?;
                let spread = match &weight {
                    Some(w) => s.broadcast_mul(&w.unsqueeze(0)?)?,
                    None => s.broadcast_as((p, c))?.contiguous()?,
                };
                grad_logp = grad_logp.add(&spread)?;
            }
            Some(if label_smoothing.is_some() {
                log_softmax_vjp(&logp, &grad_logp, x.shape(), x.dtype())?
            } else {
                from_candle(&from_rows(&grad_logp, x.shape())?, x.shape(), x.dtype())?
            })
        }
    };
    Ok((
        from_candle(&out, &out_dims(reduction, &out_shape), x.dtype())?,
        grad,
    ))
}

fn out_dims(reduction: Reduction, none_shape: &[usize]) -> Vec<usize> {
    if reduction == Reduction::None {
        none_shape.to_vec()
    } else {
        vec![]
    }
}

/// log_softmax's vector-Jacobian product on `(P, C)` rows, returned in the input's layout.
fn log_softmax_vjp(
    logp: &CTensor,
    grad_logp: &CTensor,
    shape: &[usize],
    dtype: DType,
) -> CResult<Tensor> {
    let gi = grad_logp.broadcast_sub(
        &logp
            .exp()?
            .broadcast_mul(&grad_logp.sum_keepdim(D::Minus1)?)?,
    )?;
    from_candle(&from_rows(&gi, shape)?, shape, dtype)
}
