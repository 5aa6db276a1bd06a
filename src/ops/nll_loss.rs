//! `F.nll_loss(input, target, weight, reduction, ignore_index)`.
//!
//! `input` holds log-probabilities with the classes on dimension 1 (dimension 0 for an
//! unbatched `(C,)` input); `target` holds one class index per position:
//!
//! | input | target | `reduction="none"` output |
//! | --- | --- | --- |
//! | `(C)` | `()` or `(1)` | `()` |
//! | `(N, C)` | `(N)` | `(N)` |
//! | `(N, C, d1, ..., dK)` | `(N, d1, ..., dK)` | `(N, d1, ..., dK)` |
//!
//! `loss[p] = -weight[t] * input[p, t]` with `t = target[p]`; a position whose target equals
//! `ignore_index` contributes 0 and is never read. `mean` divides the sum by the sum of the
//! weights of the non-ignored positions (NaN when that is 0/0, ±inf when only the weights sum
//! to 0), `sum` does not divide.
//!
//! The checks follow PyTorch 2.15's order: `nll_loss_nd` (rank, batch size, the spatial target
//! size for 3-D and 5-D+), then `nll_loss` (1-D/2-D) or `nll_loss2d` (4-D, which 3-D and
//! 5-D+ inputs are reshaped into), each with its own messages.

use super::{Outputs, Reduction, backward_start};
use crate::error::{Check, ErrorKind, OpError, PyType};
use crate::kernels::CompensatedSum;
use crate::tensor::{DType, Data, Tensor, fmt_shape};
use std::borrow::Cow;

/// A validated nll_loss: geometry, targets and weights, ready for [`forward`] and [`backward`].
#[derive(Debug, Clone)]
pub(crate) struct Plan<'t> {
    /// Number of classes.
    pub c: usize,
    /// Positions per batch element (the product of d1..dK; 1 without spatial dims).
    pub inner: usize,
    /// Shape of the `reduction="none"` output.
    pub none_shape: Vec<usize>,
    /// Borrowed from an int64 target, converted from the others.
    pub targets: Cow<'t, [i64]>,
    /// How many targets are not `ignore_index` (0 when the kernel checks them, [`Bounds::InKernel`]).
    pub kept: usize,
    pub weight: Option<Vec<f64>>,
    pub reduction: Reduction,
    pub ignore_index: i64,
}

impl Plan<'_> {
    /// Flat index into the input of class `c` at position `p`.
    #[inline]
    pub fn index(&self, p: usize, class: usize) -> usize {
        let (b, s) = (p / self.inner, p % self.inner);
        (b * self.c + class) * self.inner + s
    }

    #[inline]
    pub fn class_weight(&self, class: usize) -> f64 {
        self.weight.as_ref().map_or(1.0, |w| w[class])
    }

    /// The class of position `p`, or `None` when it is ignored.
    #[inline]
    pub fn class_at(&self, p: usize) -> Option<usize> {
        let t = self.targets[p];
        // `plan` has checked every non-ignored target is in 0..c.
        (t != self.ignore_index).then_some(t as usize)
    }

    /// `f(p, t, i)` for each non-ignored position `p`, in order, with its class `t` and the
    /// flat index `i` of `(p, t)` in the input (no division per position).
    #[inline]
    pub fn for_each_target(&self, mut f: impl FnMut(usize, usize, usize)) {
        if self.inner == 0 {
            return;
        }
        for (b, ts) in self.targets.chunks(self.inner).enumerate() {
            let (p0, base) = (b * self.inner, b * self.c * self.inner);
            for (s, &t) in ts.iter().enumerate() {
                // `plan` has checked every non-ignored target is in 0..c.
                if t != self.ignore_index {
                    f(p0 + s, t as usize, base + t as usize * self.inner + s);
                }
            }
        }
    }

    /// The mean's denominator: the weights of the non-ignored positions, summed.
    pub fn total_weight(&self) -> f64 {
        self.total_weight_of(self.kept)
    }

    /// [`Plan::total_weight`] with `kept` non-ignored targets, counted by whoever checked them.
    fn total_weight_of(&self, kept: usize) -> f64 {
        match &self.weight {
            // a count: exact in float64 up to 2^53 positions
            None => kept as f64,
            Some(w) => {
                let mut s = CompensatedSum::default();
                self.for_each_target(|_, t, _| s.add(w[t]));
                s.value()
            }
        }
    }

    pub fn output_shape(&self) -> Vec<usize> {
        match self.reduction {
            Reduction::None => self.none_shape.clone(),
            _ => vec![],
        }
    }
}

fn err(kind: ErrorKind, py: PyType, msg: impl Into<String>) -> OpError {
    OpError::new(kind, py, msg)
}

fn is_index_dtype(d: DType) -> bool {
    matches!(d, DType::I64 | DType::U8)
}

fn target_dtype_error(d: DType) -> OpError {
    err(
        ErrorKind::TargetDtype,
        PyType::RuntimeError,
        format!(
            "expected target dtype to be Long or Byte, but got {}",
            d.torch_name()
        ),
    )
}

fn dtype_mismatch(expected: DType, found: DType) -> OpError {
    err(
        ErrorKind::DtypeMismatch,
        PyType::RuntimeError,
        format!(
            "expected scalar type {} but found {}",
            expected.torch_name(),
            found.torch_name()
        ),
    )
}

/// The kernel's dispatch on the input dtype (named as torch names it), then the weight's dtype.
fn check_kernel_dtypes(dtype: DType, weight: Option<&Tensor>, kernel: &str) -> Result<(), OpError> {
    if !dtype.is_float() {
        return Err(err(
            ErrorKind::InputDtype,
            PyType::NotImplementedError,
            format!("\"{kernel}\" not implemented for '{}'", dtype.torch_name()),
        ));
    }
    match weight {
        Some(w) if w.dtype() != dtype => Err(dtype_mismatch(dtype, w.dtype())),
        _ => Ok(()),
    }
}

/// Where a [`plan`] has its targets bounds-checked, `F.nll_loss`'s last check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Bounds {
    /// In [`plan`]: one branch-free pass (it vectorises; a negative target is a huge u64)
    /// checks and counts `kept`, the first offender looked for only if there is one.
    Check,
    /// By the reduced forward pass's kernel, each chunk just before it reads it
    /// ([`crate::kernels::nll::nll_sum`], the same error, as PyTorch's kernel raises it while
    /// reading): one pass over the targets instead of two. `kept` stays 0; the kernel counts.
    InKernel,
}

/// PyTorch's error for a target that is neither `ignore_index` nor a class, the last check.
fn out_of_bounds(t: i64) -> OpError {
    err(
        ErrorKind::TargetOutOfBounds,
        PyType::IndexError,
        format!("Target {t} is out of bounds."),
    )
    .with_check(Check::TargetOutOfBounds { target: t })
}

/// Every check `F.nll_loss` makes, in PyTorch's order, on an input of `shape` and `dtype`
/// (the targets' bounds where `bounds` says).
pub(crate) fn plan<'t>(
    shape: &[usize],
    dtype: DType,
    target: &'t Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    bounds: Bounds,
) -> Result<Plan<'t>, OpError> {
    let nd = shape.len();
    if nd < 1 {
        return Err(err(
            ErrorKind::InputRank,
            PyType::ValueError,
            format!("Expected 1 or more dimensions (got {nd})"),
        ));
    }
    if nd != 1 {
        // torch reads sizes()[0] of a 0-d target as 0.
        let tb = target.shape().first().copied().unwrap_or(0);
        if shape[0] != tb {
            return Err(err(
                ErrorKind::BatchSizeMismatch,
                PyType::ValueError,
                format!(
                    "Expected input batch_size ({}) to match target batch_size ({tb}).",
                    shape[0]
                ),
            ));
        }
    }
    let (c, inner, none_shape) = if nd <= 2 {
        check_1d_2d(shape, dtype, target, weight)?;
        if nd == 1 {
            (shape[0], 1, vec![])
        } else {
            (shape[1], 1, vec![shape[0]])
        }
    } else {
        if nd != 4 {
            if target.ndim() == 0 {
                return Err(err(
                    ErrorKind::TargetShape,
                    PyType::RuntimeError,
                    "ArrayRef: invalid slice, N = 1; size = 0",
                ));
            }
            if target.shape()[1..] != shape[2..] {
                let mut expected = vec![shape[0]];
                expected.extend_from_slice(&shape[2..]);
                return Err(err(
                    ErrorKind::TargetShape,
                    PyType::RuntimeError,
                    format!(
                        "Expected target size {}, got {}",
                        fmt_shape(&expected),
                        fmt_shape(target.shape())
                    ),
                ));
            }
        }
        check_2d(shape, dtype, target, weight, nd == 4)?;
        let mut none_shape = vec![shape[0]];
        none_shape.extend_from_slice(&shape[2..]);
        (shape[1], shape[2..].iter().product(), none_shape)
    };
    let targets = match target.data() {
        Data::I64(v) => Cow::Borrowed(&v[..]),
        _ => Cow::Owned(
            target
                .to_i64_vec()
                .expect("target dtype checked to be an integer"),
        ),
    };
    let kept = match bounds {
        Bounds::Check => {
            crate::kernels::nll::check_targets(&targets, ignore_index, c).map_err(out_of_bounds)?
        }
        Bounds::InKernel => 0,
    };
    Ok(Plan {
        kept,
        c,
        inner,
        none_shape,
        targets,
        weight: weight.map(|w| w.to_f64_vec()),
        reduction,
        ignore_index,
    })
}

/// `nll_loss_forward`'s meta checks (1-D and 2-D input), then its kernel's dispatch.
fn check_1d_2d(
    shape: &[usize],
    dtype: DType,
    target: &Tensor,
    weight: Option<&Tensor>,
) -> Result<(), OpError> {
    if target.ndim() > 1 {
        return Err(err(
            ErrorKind::TargetShape,
            PyType::RuntimeError,
            "0D or 1D target tensor expected, multi-target not supported",
        )
        .with_check(Check::MultiTarget {
            target_ndim: target.ndim(),
        }));
    }
    if !is_index_dtype(target.dtype()) {
        return Err(target_dtype_error(target.dtype()));
    }
    if shape.len() == 2 && target.ndim() == 0 {
        // Reached only with an empty batch: the batch-size check compared 0 with 0.
        return Err(err(
            ErrorKind::TargetShape,
            PyType::IndexError,
            "Dimension specified as 0 but tensor has no dimensions",
        ));
    }
    if shape.len() == 1 && target.ndim() == 1 && target.numel() != 1 {
        return Err(err(
            ErrorKind::TargetShape,
            PyType::ValueError,
            format!(
                "For 1D input, 1D target must have size 1, but got target size: {}",
                target.numel()
            ),
        )
        .with_check(Check::UnbatchedTargetSize {
            size: target.numel(),
        }));
    }
    let c = shape[shape.len() - 1];
    if let Some(w) = weight
        && (w.ndim() != 1 || w.numel() != c)
    {
        return Err(err(
            ErrorKind::WeightShape,
            PyType::RuntimeError,
            format!(
                "weight tensor should be defined either for all {c} classes or no classes but got weight tensor of shape: {}",
                fmt_shape(w.shape())
            ),
        ));
    }
    check_kernel_dtypes(dtype, weight, "nll_loss_out_frame")
}

/// `nll_loss2d`'s checks. 3-D and 5-D+ inputs arrive here reshaped to `(N, C, 1, -1)` with a
/// matching 3-D target, so only the dtype and weight checks can fire for them.
fn check_2d(
    shape: &[usize],
    dtype: DType,
    target: &Tensor,
    weight: Option<&Tensor>,
    really_4d: bool,
) -> Result<(), OpError> {
    if really_4d && target.ndim() != 3 {
        return Err(err(
            ErrorKind::TargetShape,
            PyType::RuntimeError,
            format!(
                "only batches of spatial targets supported (3D tensors) but got targets of dimension: {}",
                target.ndim()
            ),
        ));
    }
    if !is_index_dtype(target.dtype()) {
        return Err(target_dtype_error(target.dtype()));
    }
    if let Some(w) = weight
        && w.numel() != shape[1]
    {
        return Err(err(
            ErrorKind::WeightShape,
            PyType::RuntimeError,
            "weight tensor should be defined either for all or no classes",
        ));
    }
    if really_4d {
        let t = target.shape();
        if shape[0] != t[0] || shape[2] != t[1] || shape[3] != t[2] {
            // Verbatim, including the space before the comma and the missing parenthesis.
            return Err(err(
                ErrorKind::TargetShape,
                PyType::RuntimeError,
                format!(
                    "size mismatch (got input: {} , target: {}",
                    fmt_shape(shape),
                    fmt_shape(t)
                ),
            ));
        }
    }
    check_kernel_dtypes(dtype, weight, "nll_loss2d_forward_out_frame")?;
    if target.dtype() == DType::U8 {
        // nll_loss2d's kernel reads targets as int64 only: torch words it as a dtype mismatch,
        // but what is wrong is the target's dtype.
        let mut e = dtype_mismatch(DType::I64, DType::U8);
        e.kind = ErrorKind::TargetDtype;
        return Err(e);
    }
    Ok(())
}

/// Per-position losses (0 where ignored) and the reduced value, in float64.
pub(crate) struct Forward {
    pub per_position: Vec<f64>,
    pub total_weight: f64,
}

/// `logp(i)` reads element `i` of the (log-probability) input: only the targets' are read.
pub(crate) fn forward(plan: &Plan<'_>, logp: impl Fn(usize) -> f64) -> Forward {
    let mut per_position = vec![0.0; plan.targets.len()];
    match &plan.weight {
        None => plan.for_each_target(|p, _, i| per_position[p] = -logp(i)),
        Some(w) => plan.for_each_target(|p, t, i| per_position[p] = -(logp(i) * w[t])),
    }
    Forward {
        per_position,
        total_weight: plan.total_weight(),
    }
}

/// The reduced output and the mean's denominator: per position for `none`, else the sum (divided
/// for `mean`) streamed in chunks, each summed with compensation, so that no per-position
/// buffer is written.
pub(crate) fn forward_reduced(
    plan: &Plan<'_>,
    reduction: Reduction,
    input: &Tensor,
) -> Result<(Vec<f64>, f64), OpError> {
    if reduction == Reduction::None {
        let f = match input.data() {
            Data::F32(x) => forward(plan, |i| x[i] as f64),
            _ => forward(plan, |i| input.get_f64(i)),
        };
        return Ok((f.per_position, f.total_weight));
    }
    let (sum, kept) = crate::kernels::nll::nll_sum(
        input.data(),
        &plan.targets,
        plan.c,
        plan.inner,
        plan.ignore_index,
        plan.weight.as_deref(),
    )
    .map_err(out_of_bounds)?;
    let total = plan.total_weight_of(kept);
    Ok((
        vec![if reduction == Reduction::Mean {
            sum / total
        } else {
            sum
        }],
        total,
    ))
}

/// Applies the reduction to per-position values (`total` is the mean's denominator).
pub(crate) fn reduce(reduction: Reduction, per_position: &[f64], total: f64) -> Vec<f64> {
    match reduction {
        Reduction::None => per_position.to_vec(),
        Reduction::Sum => vec![crate::kernels::compensated_sum_slice(per_position)],
        Reduction::Mean => vec![crate::kernels::compensated_sum_slice(per_position) / total],
    }
}

/// The scale each position's gradient receives from `grad_output` under the reduction.
pub(crate) fn position_scale(reduction: Reduction, g: &[f64], p: usize, total: f64) -> f64 {
    match reduction {
        Reduction::None => g[p],
        Reduction::Sum => g[0],
        Reduction::Mean => g[0] / total,
    }
}

/// d loss / d input, as PyTorch's `nll_loss_backward`: `-weight[t] * scale` at each
/// non-ignored `(p, t)`, exact zeros everywhere else.
pub(crate) fn backward(plan: &Plan<'_>, g: &[f64], total: f64, grad: &mut [f64]) {
    for p in 0..plan.targets.len() {
        if let Some(t) = plan.class_at(p) {
            let s = position_scale(plan.reduction, g, p, total);
            grad[plan.index(p, t)] = plan.class_weight(t) * -s;
        }
    }
}

/// `F.nll_loss`.
pub fn nll_loss(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
) -> Result<Tensor, OpError> {
    Ok(nll_loss_with_grad(input, target, weight, reduction, ignore_index, None)?.output)
}

/// The gradient of `F.nll_loss` with respect to `input`, given `grad_output`.
pub fn nll_loss_backward(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    grad_output: &Tensor,
) -> Result<Tensor, OpError> {
    let r = nll_loss_with_grad(
        input,
        target,
        weight,
        reduction,
        ignore_index,
        Some(grad_output),
    )?;
    Ok(r.grad_input.expect("a grad_output yields a grad_input"))
}

/// `nll_loss`, and with a `grad_output` its gradient with respect to the input.
pub fn nll_loss_with_grad(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    grad_output: Option<&Tensor>,
) -> Result<Outputs, OpError> {
    // A reduced forward pass checks the targets as its kernel reads them, before any gradient
    // is computed (`backward` takes the kernel's denominator); `none` indexes by them first.
    let bounds = if reduction == Reduction::None {
        Bounds::Check
    } else {
        Bounds::InKernel
    };
    let plan = plan(
        input.shape(),
        input.dtype(),
        target,
        weight,
        reduction,
        ignore_index,
        bounds,
    )?;
    let (out, total_weight) = forward_reduced(&plan, reduction, input)?;
    let output = Tensor::from_f64(input.dtype(), plan.output_shape(), &out).expect("output shape");
    let grad_input = match backward_start(grad_output, &output, input.numel())? {
        None => None,
        Some((g, mut grad)) => {
            backward(&plan, &g, total_weight, &mut grad);
            Some(
                Tensor::from_f64(input.dtype(), input.shape().to_vec(), &grad)
                    .expect("input shape"),
            )
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
    fn i64t(shape: &[usize], v: Vec<i64>) -> Tensor {
        Tensor::new(shape.to_vec(), Data::I64(v)).unwrap()
    }
    fn nll(
        input: &Tensor,
        target: &Tensor,
        weight: Option<&Tensor>,
        r: Reduction,
    ) -> Result<Tensor, OpError> {
        nll_loss(input, target, weight, r, -100)
    }

    #[test]
    fn seed_question_errors() {
        // torch 2.15: F.nll_loss(torch.randn(5).log_softmax(0), torch.tensor([1, 0, 0]))
        let x = f32t(&[5], vec![0.0; 5]);
        let e = nll(&x, &i64t(&[3], vec![1, 0, 0]), None, Reduction::Mean).unwrap_err();
        assert_eq!(
            (e.kind, e.py_type),
            (ErrorKind::TargetShape, PyType::ValueError)
        );
        assert_eq!(
            e.message,
            "For 1D input, 1D target must have size 1, but got target size: 3"
        );
        // torch 2.15: F.nll_loss(torch.randn(3, 5), torch.tensor([1]))
        let x = f32t(&[3, 5], vec![0.0; 15]);
        let e = nll(&x, &i64t(&[1], vec![1]), None, Reduction::Mean).unwrap_err();
        assert_eq!(
            e.message,
            "Expected input batch_size (3) to match target batch_size (1)."
        );
    }

    #[test]
    fn check_order_matches_torch() {
        let x = f32t(&[3, 5], vec![0.0; 15]);
        let w4 = f32t(&[4], vec![1.0; 4]);
        let wd = Tensor::new(vec![5], Data::F64(vec![1.0; 5])).unwrap();
        let ft = f32t(&[3], vec![1.0, 0.0, 0.0]);
        // torch 2.15: float target and a wrong weight: the target dtype is reported.
        let e = nll(&x, &ft, Some(&w4), Reduction::Mean).unwrap_err();
        assert_eq!(
            e.message,
            "expected target dtype to be Long or Byte, but got Float"
        );
        // torch 2.15: a double weight and an out-of-bounds target: the dtype is reported.
        let e = nll(&x, &i64t(&[3], vec![9, 0, 0]), Some(&wd), Reduction::Mean).unwrap_err();
        assert_eq!(e.message, "expected scalar type Float but found Double");
        // torch 2.15: Long input and a wrong weight: the weight shape is reported.
        let xl = i64t(&[3, 5], vec![1; 15]);
        let e = nll(&xl, &i64t(&[3], vec![1, 0, 0]), Some(&w4), Reduction::Mean).unwrap_err();
        assert_eq!(e.kind, ErrorKind::WeightShape);
        // torch 2.15: 4-D input, size mismatch with Long input: the size mismatch wins.
        let x4 = i64t(&[2, 5, 3, 3], vec![1; 90]);
        let e = nll(&x4, &i64t(&[2, 3, 4], vec![0; 24]), None, Reduction::Mean).unwrap_err();
        assert_eq!(
            e.message,
            "size mismatch (got input: [2, 5, 3, 3] , target: [2, 3, 4]"
        );
        // torch 2.15: 3-D input with a uint8 target.
        let x3 = f32t(&[2, 5, 3], vec![0.0; 30]);
        let e = nll(
            &x3,
            &Tensor::new(vec![2, 3], Data::U8(vec![0; 6])).unwrap(),
            None,
            Reduction::Mean,
        )
        .unwrap_err();
        assert_eq!(e.message, "expected scalar type Long but found Byte");
    }

    #[test]
    fn reductions_and_ignore_by_hand() {
        // input rows are log-probs; targets [1, -100, 4]; weight w.
        // none = [-x[0,1]*w1, 0, -x[2,4]*w4] = [-(-1)*2, 0, -(-3)*0.5] = [2, 0, 1.5]
        // sum = 3.5; mean = 3.5 / (w1 + w4) = 3.5 / 2.5 = 1.4
        let mut v = vec![0.0f32; 15];
        v[1] = -1.0;
        v[14] = -3.0;
        let x = f32t(&[3, 5], v);
        let t = i64t(&[3], vec![1, -100, 4]);
        let w = f32t(&[5], vec![1.0, 2.0, 1.0, 1.0, 0.5]);
        let none = nll(&x, &t, Some(&w), Reduction::None).unwrap();
        assert_eq!(none.to_f64_vec(), vec![2.0, 0.0, 1.5]);
        assert_eq!(
            nll(&x, &t, Some(&w), Reduction::Sum).unwrap().to_f64_vec(),
            vec![3.5]
        );
        assert_eq!(
            nll(&x, &t, Some(&w), Reduction::Mean).unwrap().to_f64_vec(),
            vec![1.4f32 as f64]
        );
        // All ignored: mean is 0/0 (torch 2.15: nan), sum is 0.
        let ign = i64t(&[3], vec![-100; 3]);
        assert!(nll(&x, &ign, None, Reduction::Mean).unwrap().to_f64_vec()[0].is_nan());
        assert_eq!(
            nll(&x, &ign, None, Reduction::Sum).unwrap().to_f64_vec(),
            vec![0.0]
        );
    }

    #[test]
    fn backward_by_hand() {
        // mean with weights: grad[p, t] = -w_t * g / sum(w_t) = -w_t / 2.5 at (0,1) and (2,4).
        let x = f32t(&[3, 5], vec![0.0; 15]);
        let t = i64t(&[3], vec![1, -100, 4]);
        let w = f32t(&[5], vec![1.0, 2.0, 1.0, 1.0, 0.5]);
        let g = f32t(&[], vec![1.0]);
        let gi = nll_loss_backward(&x, &t, Some(&w), Reduction::Mean, -100, &g)
            .unwrap()
            .to_f64_vec();
        let mut expect = vec![0.0; 15];
        expect[1] = (-2.0f32 / 2.5) as f64;
        expect[14] = (-0.5f32 / 2.5) as f64;
        assert_eq!(gi, expect);
    }

    #[test]
    fn extreme_targets_do_not_overflow() {
        let x = f32t(&[2, 3], vec![0.0; 6]);
        for t in [i64::MIN, i64::MAX, -1, 3] {
            // checked in the plan (`none`) or by the reduced pass's kernel, with a gradient or not
            for r in [Reduction::None, Reduction::Mean, Reduction::Sum] {
                let target = i64t(&[2], vec![0, t]);
                let g = if r == Reduction::None {
                    f32t(&[2], vec![1.0; 2])
                } else {
                    f32t(&[], vec![1.0])
                };
                for e in [
                    nll(&x, &target, None, r).unwrap_err(),
                    nll_loss_backward(&x, &target, None, r, -100, &g).unwrap_err(),
                ] {
                    assert_eq!(
                        (e.kind, e.message),
                        (
                            ErrorKind::TargetOutOfBounds,
                            format!("Target {t} is out of bounds.")
                        ),
                        "{r:?}"
                    );
                }
            }
        }
        // ignore_index may name a valid class: that class is then never counted.
        let r = nll_loss(&x, &i64t(&[2], vec![0, 2]), None, Reduction::Mean, 0).unwrap();
        assert_eq!(r.to_f64_vec(), vec![0.0]);
    }
}
