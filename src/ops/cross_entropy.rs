//! `F.cross_entropy(input, target, weight, reduction, ignore_index, label_smoothing)`.
//!
//! `input` holds raw scores (logits) with the classes on dimension 1 (0 for an unbatched
//! `(C,)` input). PyTorch 2.15 chooses between two losses by shape alone:
//!
//! - **class probabilities** when `target.shape == input.shape`: the target must then be a
//!   float tensor, `ignore_index` must be negative, and
//!   `loss[p] = -sum_c weight[c] * t'[p, c] * log_softmax(input)[p, c]` with
//!   `t' = t * (1 - ls) + ls / C` when `ls > 0`; `mean` divides by the number of positions
//!   (not by the weights), and the output dtype is the promotion of input, target and weight.
//! - **class indices** otherwise: `nll_loss(log_softmax(input, class_dim), target, ...)`, and
//!   with `0 < ls <= 1`, `(1 - ls) * nll + (ls / C) * smooth` where
//!   `smooth[p] = -sum_c weight[c] * log_softmax(input)[p, c]` (0 at ignored positions),
//!   reduced like nll (the mean divides by the same weight total).
//!
//! A `label_smoothing` above 1 is rejected; one at or below 0 (or NaN) is ignored, as in torch.

use super::{
    Outputs, Reduction, backward_start, fmt_cpp_double, log_softmax, nll_loss, promote_float,
};
use crate::error::{Check, ErrorKind, OpError, PyType};
use crate::kernels::elem::Elem;
use crate::kernels::{self, ChunkedSum, CompensatedSum, Lanes};
use crate::tensor::{DType, Data, Tensor, fmt_shape};

fn check_label_smoothing(ls: f64) -> Result<(), OpError> {
    // torch 2.15 rejects only values above 1: -0.5 and NaN pass (and smooth nothing)
    if ls > 1.0 {
        return Err(OpError::new(
            ErrorKind::InvalidArgument,
            PyType::RuntimeError,
            format!(
                "label_smoothing must be between 0.0 and 1.0. Got: {}",
                fmt_cpp_double(ls)
            ),
        )
        .with_check(Check::LabelSmoothingRange { value: ls }));
    }
    Ok(())
}

/// `F.cross_entropy`.
pub fn cross_entropy(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    label_smoothing: f64,
) -> Result<Tensor, OpError> {
    Ok(cross_entropy_with_grad(
        input,
        target,
        weight,
        reduction,
        ignore_index,
        label_smoothing,
        None,
    )?
    .output)
}

/// The gradient of `F.cross_entropy` with respect to `input`, given `grad_output`.
pub fn cross_entropy_backward(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    label_smoothing: f64,
    grad_output: &Tensor,
) -> Result<Tensor, OpError> {
    let r = cross_entropy_with_grad(
        input,
        target,
        weight,
        reduction,
        ignore_index,
        label_smoothing,
        Some(grad_output),
    )?;
    Ok(r.grad_input.expect("a grad_output yields a grad_input"))
}

/// `cross_entropy`, and with a `grad_output` its gradient with respect to the input.
pub fn cross_entropy_with_grad(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    label_smoothing: f64,
    grad_output: Option<&Tensor>,
) -> Result<Outputs, OpError> {
    match check(
        input,
        target,
        weight,
        reduction,
        ignore_index,
        label_smoothing,
    )? {
        Checked::Prob { cd, c, out_dtype } => prob_target(ProbTarget {
            input,
            target,
            weight,
            reduction,
            label_smoothing,
            grad_output,
            class_dim: cd,
            classes: c,
            out_dtype,
        }),
        Checked::Index { cd, plan } => {
            index_target(input, reduction, label_smoothing, grad_output, cd, plan)
        }
    }
}

/// A validated cross_entropy: which of the two losses, and what it needs.
pub(crate) enum Checked<'t> {
    Prob {
        cd: usize,
        c: usize,
        out_dtype: DType,
    },
    Index {
        cd: usize,
        plan: nll_loss::Plan<'t>,
    },
}

/// Every check `F.cross_entropy` makes (after the reduction string), in PyTorch's order.
pub(crate) fn check<'t>(
    input: &Tensor,
    target: &'t Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    ls: f64,
) -> Result<Checked<'t>, OpError> {
    if input.shape() != target.shape() {
        check_label_smoothing(ls)?;
        let cd = log_softmax::check(input, Some(class_dim(input.ndim()) as i64))?;
        let plan = nll_loss::plan(
            input.shape(),
            input.dtype(),
            target,
            weight,
            reduction,
            ignore_index,
            nll_loss::Bounds::Check,
        )?;
        return Ok(Checked::Index { cd, plan });
    }
    if !target.dtype().is_float() {
        return Err(OpError::new(
            ErrorKind::TargetDtype,
            PyType::RuntimeError,
            format!(
                "Expected floating point type for target with class probabilities, got {}",
                target.dtype().torch_name()
            ),
        )
        .with_check(Check::ProbabilityTargetDtype {
            dtype: target.dtype(),
        }));
    }
    if ignore_index >= 0 {
        return Err(OpError::new(
            ErrorKind::InvalidArgument,
            PyType::RuntimeError,
            "ignore_index is not supported for floating point target",
        ));
    }
    if input.ndim() == 0 {
        return Err(OpError::new(
            ErrorKind::DimOutOfRange,
            PyType::IndexError,
            "Dimension specified as 1 but tensor has no dimensions",
        ));
    }
    let cd = class_dim(input.ndim());
    let c = input.shape()[cd];
    if let Some(w) = weight
        && (w.ndim() != 1 || w.numel() != c)
    {
        return Err(OpError::new(
            ErrorKind::WeightShape,
            PyType::RuntimeError,
            format!(
                "cross_entropy: weight tensor should be defined either for all {c} classes or no classes but got weight tensor of shape: {}",
                fmt_shape(w.shape())
            ),
        ));
    }
    log_softmax::check(input, Some(cd as i64))?;
    check_label_smoothing(ls)?;
    let mut out_dtype = promote_float(input.dtype(), target.dtype());
    if let Some(w) = weight {
        out_dtype = promote_float(out_dtype, w.dtype());
    }
    Ok(Checked::Prob { cd, c, out_dtype })
}

fn class_dim(ndim: usize) -> usize {
    if ndim == 1 { 0 } else { 1 }
}

/// A cross entropy with class probabilities, its arguments checked: the call's own, and the
/// class dimension, the class count and the output dtype the checks found.
struct ProbTarget<'a> {
    input: &'a Tensor,
    target: &'a Tensor,
    weight: Option<&'a Tensor>,
    reduction: Reduction,
    label_smoothing: f64,
    grad_output: Option<&'a Tensor>,
    class_dim: usize,
    classes: usize,
    out_dtype: DType,
}

fn prob_target(p: ProbTarget<'_>) -> Result<Outputs, OpError> {
    let ProbTarget {
        input,
        target,
        weight,
        reduction,
        label_smoothing: ls,
        grad_output,
        class_dim: cd,
        classes: c,
        out_dtype,
    } = p;
    let lanes = Lanes::along(input.shape(), cd);
    let logp = log_softmax::forward_f64(input, cd);
    let t = target.to_f64_vec();
    let w = weight.map(|w| w.to_f64_vec());
    let smoothed = |v: f64| {
        if ls > 0.0 {
            v * (1.0 - ls) + ls / c as f64
        } else {
            v
        }
    };
    // coef[i] = t'[i] * w[class of i]: the loss is -sum(logp * coef) per position.
    let coef: Vec<f64> = (0..t.len())
        .map(|i| {
            let class = (i / lanes.inner) % lanes.len.max(1);
            smoothed(t[i]) * w.as_ref().map_or(1.0, |w| w[class])
        })
        .collect();
    let positions = lanes.outer * lanes.inner;
    let per_position: Vec<f64> = (0..positions)
        .map(|p| {
            let (o, s) = (p / lanes.inner, p % lanes.inner);
            let mut acc = CompensatedSum::default();
            for k in 0..c {
                let i = (o * c + k) * lanes.inner + s;
                acc.add(logp[i] * coef[i]);
            }
            -acc.value()
        })
        .collect();
    // torch: -(input * target).sum() / (numel / C), NaN when the input is empty.
    let count = if input.numel() == 0 {
        f64::NAN
    } else {
        (input.numel() / c) as f64
    };
    let out = nll_loss::reduce(reduction, &per_position, count);
    let mut none_shape = input.shape().to_vec();
    none_shape.remove(cd);
    let out_shape = if reduction == Reduction::None {
        none_shape
    } else {
        vec![]
    };
    let output = Tensor::from_f64(out_dtype, out_shape, &out).expect("output shape");

    let grad_input = match backward_start(grad_output, &output, logp.len())? {
        None => None,
        Some((g, mut grad_logp)) => {
            for p in 0..positions {
                let scale = nll_loss::position_scale(reduction, &g, p, count);
                let (o, s) = (p / lanes.inner, p % lanes.inner);
                for k in 0..c {
                    let i = (o * c + k) * lanes.inner + s;
                    grad_logp[i] = -(scale * coef[i]);
                }
            }
            Some(log_softmax_vjp(input, &logp, &grad_logp, lanes))
        }
    };
    Ok(Outputs { output, grad_input })
}

fn log_softmax_vjp(input: &Tensor, logp: &[f64], grad_logp: &[f64], lanes: Lanes) -> Tensor {
    let mut gi = vec![0.0; logp.len()];
    kernels::log_softmax_backward(grad_logp, logp, lanes, &mut gi);
    Tensor::from_f64(input.dtype(), input.shape().to_vec(), &gi).expect("input shape")
}

/// The float32 forward without materialising log-probabilities: each row's (or, for spatial
/// inputs, each tile of lanes') max and log-sum-exp ([`kernels::fast::lane_lse_visit`]),
/// then each position reads only its target's logit (and, with label smoothing, its row once
/// more), summed as it goes unless `reduction="none"` asks for every position.
fn fused_forward_f32<E: Elem>(
    x: &[E],
    lanes: Lanes,
    plan: &nll_loss::Plan<'_>,
    reduction: Reduction,
    ls: f64,
) -> Vec<f64> {
    let (c, inner) = (plan.c, lanes.inner);
    let positions = plan.targets.len();
    let none = reduction == Reduction::None;
    let smooth = ls > 0.0;
    let (mut nll_pp, mut smooth_pp) = (vec![], vec![]);
    if none {
        nll_pp = vec![0.0; positions];
        if smooth {
            smooth_pp = vec![0.0; positions];
        }
    }
    let (mut nll_sum, mut smooth_sum) = (ChunkedSum::default(), ChunkedSum::default());
    kernels::fast::lane_lse_visit(x, lanes, |b, s0, stats| {
        for (q, &(m, lse)) in stats.iter().enumerate() {
            let p = b * inner + s0 + q;
            let Some(t) = plan.class_at(p) else { continue };
            let logp = |k: usize| (x[(b * c + k) * inner + s0 + q].to_f32() as f64 - m) - lse;
            let v = -(logp(t) * plan.class_weight(t));
            if none {
                nll_pp[p] = v
            } else {
                nll_sum.push(v)
            }
            if smooth {
                let mut acc = CompensatedSum::default();
                for k in 0..c {
                    acc.add(logp(k) * plan.class_weight(k));
                }
                if none {
                    smooth_pp[p] = -acc.value()
                } else {
                    smooth_sum.push(-acc.value())
                }
            }
        }
    });
    let total = plan.total_weight();
    let finish = |pp: Vec<f64>, sum: ChunkedSum| match reduction {
        Reduction::None => pp,
        Reduction::Sum => vec![sum.value()],
        Reduction::Mean => vec![sum.value() / total],
    };
    let nll_out = finish(nll_pp, nll_sum);
    if !smooth {
        return nll_out;
    }
    let smooth_out = finish(smooth_pp, smooth_sum);
    nll_out
        .iter()
        .zip(&smooth_out)
        .map(|(&n, &s)| (1.0 - ls) * n + s * (ls / c as f64))
        .collect()
}

fn index_target(
    input: &Tensor,
    reduction: Reduction,
    ls: f64,
    grad_output: Option<&Tensor>,
    cd: usize,
    plan: nll_loss::Plan<'_>,
) -> Result<Outputs, OpError> {
    let lanes = Lanes::along(input.shape(), cd);
    if grad_output.is_none() {
        // float16 and bfloat16 are exactly float32 values: the fused float32 forward on them
        // (read in registers, or on a widened copy where the kernels cannot), rounded once at
        // the end.
        let in_registers = kernels::narrow::in_registers();
        let out = match input.data() {
            Data::F32(x) => Some(fused_forward_f32(x, lanes, &plan, reduction, ls)),
            Data::F16(x) if in_registers => Some(fused_forward_f32(x, lanes, &plan, reduction, ls)),
            Data::BF16(x) if in_registers => {
                Some(fused_forward_f32(x, lanes, &plan, reduction, ls))
            }
            Data::F16(_) | Data::BF16(_) => Some(fused_forward_f32(
                &input.to_f32_vec(),
                lanes,
                &plan,
                reduction,
                ls,
            )),
            _ => None,
        };
        if let Some(out) = out {
            let output =
                Tensor::from_f64(input.dtype(), plan.output_shape(), &out).expect("output shape");
            return Ok(Outputs {
                output,
                grad_input: None,
            });
        }
    }
    let logp = log_softmax::forward_f64(input, cd);
    let nll = nll_loss::forward(&plan, |i| logp[i]);
    let total = nll.total_weight;
    let nll_out = nll_loss::reduce(reduction, &nll.per_position, total);
    let smooth = ls > 0.0;
    let out: Vec<f64> = if smooth {
        let per_position: Vec<f64> = (0..plan.targets.len())
            .map(|p| {
                if plan.class_at(p).is_none() {
                    return 0.0;
                }
                let mut acc = CompensatedSum::default();
                for k in 0..plan.c {
                    acc.add(logp[plan.index(p, k)] * plan.class_weight(k));
                }
                -acc.value()
            })
            .collect();
        let smooth_out = nll_loss::reduce(reduction, &per_position, total);
        let c = plan.c as f64;
        nll_out
            .iter()
            .zip(&smooth_out)
            .map(|(&n, &s)| (1.0 - ls) * n + s * (ls / c))
            .collect()
    } else {
        nll_out
    };
    let output = Tensor::from_f64(input.dtype(), plan.output_shape(), &out).expect("output shape");

    let grad_input = match backward_start(grad_output, &output, logp.len())? {
        None => None,
        Some((g, mut grad_logp)) => {
            if smooth {
                let (keep, spread) = (1.0 - ls, ls / plan.c as f64);
                for p in 0..plan.targets.len() {
                    if let Some(t) = plan.class_at(p) {
                        let scale = nll_loss::position_scale(reduction, &g, p, total);
                        for k in 0..plan.c {
                            grad_logp[plan.index(p, k)] = -(spread * scale) * plan.class_weight(k);
                        }
                        grad_logp[plan.index(p, t)] += -(keep * scale) * plan.class_weight(t);
                    }
                }
            } else {
                nll_loss::backward(&plan, &g, total, &mut grad_logp);
            }
            Some(log_softmax_vjp(input, &logp, &grad_logp, lanes))
        }
    };
    Ok(Outputs { output, grad_input })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Data;

    fn f32t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::new(shape.to_vec(), Data::F32(v)).unwrap()
    }

    #[test]
    fn uniform_logits_by_hand() {
        // All logits equal: log_softmax = -ln C, so the loss is ln C for any target, any
        // label smoothing, and the gradient of the mean is (1/C - onehot') / N.
        let x = f32t(&[2, 4], vec![0.5; 8]);
        let t = Tensor::new(vec![2], Data::I64(vec![1, 3])).unwrap();
        for ls in [0.0, 0.25] {
            let y = cross_entropy(&x, &t, None, Reduction::Mean, -100, ls).unwrap();
            assert_eq!(y.to_f64_vec(), vec![(4f64).ln() as f32 as f64]);
        }
        let g = f32t(&[], vec![1.0]);
        let gi = cross_entropy_backward(&x, &t, None, Reduction::Mean, -100, 0.0, &g).unwrap();
        let expect: Vec<f64> = [0.25, -0.75, 0.25, 0.25, 0.25, 0.25, 0.25, -0.75]
            .iter()
            .map(|v| ((v / 2.0) as f32) as f64)
            .collect();
        assert_eq!(gi.to_f64_vec(), expect);
    }

    #[test]
    fn errors_match_torch() {
        let x = f32t(&[3, 5], vec![0.0; 15]);
        // torch 2.15: F.cross_entropy(x, torch.ones(3, 5, dtype=torch.long))
        let lt = Tensor::new(vec![3, 5], Data::I64(vec![1; 15])).unwrap();
        let e = cross_entropy(&x, &lt, None, Reduction::Mean, -100, 0.0).unwrap_err();
        assert_eq!(
            e.message,
            "Expected floating point type for target with class probabilities, got Long"
        );
        // torch 2.15: label_smoothing=1e10 -> "... Got: 1e+10", checked before the batch size.
        let t = Tensor::new(vec![2], Data::I64(vec![7, 0])).unwrap();
        let e = cross_entropy(&x, &t, None, Reduction::Mean, -100, 1e10).unwrap_err();
        assert_eq!(
            e.message,
            "label_smoothing must be between 0.0 and 1.0. Got: 1e+10"
        );
        // torch 2.15: a negative label_smoothing is silently ignored with index targets.
        let t = Tensor::new(vec![3], Data::I64(vec![1, 0, 0])).unwrap();
        let a = cross_entropy(&x, &t, None, Reduction::Mean, -100, -0.5).unwrap();
        let b = cross_entropy(&x, &t, None, Reduction::Mean, -100, 0.0).unwrap();
        assert_eq!(a, b);
        // torch 2.15: 0-d input, 0-d float target.
        let z = Tensor::scalar(DType::F32, 1.0);
        let e = cross_entropy(&z, &z, None, Reduction::Mean, -100, 0.0).unwrap_err();
        assert_eq!(
            e.message,
            "Dimension specified as 1 but tensor has no dimensions"
        );
    }

    #[test]
    fn prob_target_promotes_dtype() {
        // torch 2.15: F.cross_entropy(float32 (3,5), float64 (3,5)) has dtype float64.
        let x = f32t(&[3, 5], vec![0.0; 15]);
        let t = Tensor::new(vec![3, 5], Data::F64(vec![0.2; 15])).unwrap();
        let y = cross_entropy(&x, &t, None, Reduction::Mean, -100, 0.0).unwrap();
        assert_eq!(y.dtype(), DType::F64);
        // -sum(0.2 * ln(1/5)) over 5 classes = ln 5.
        assert!((y.to_f64_vec()[0] - 5f64.ln()).abs() < 1e-15);
    }
}
