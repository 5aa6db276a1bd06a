//! Shrinking a failing case (delta debugging, as Hypothesis and proptest shrink): while the
//! implementation still fails it with the same cause when judged against native, take away
//! batch rows, classes and spatial positions (halves first, then single slices), the backward
//! pass, attributes back to their defaults, and distinct values (rounded, then zero). A
//! candidate is kept only when it is strictly simpler ([`Subject::complexity`]) and still fails
//! alike, so the result always fails and the loop always ends; a time budget bounds it.

use super::oracle;
use crate::impls::Implementation;
use crate::ops::Call;
use crate::tensor::{Data, Tensor};
use std::time::{Duration, Instant};

/// A call and the gradient it is differentiated with: what a case is, before its expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub call: Call,
    pub grad_output: Option<Tensor>,
}

/// `t` with the slices `[start, end)` along `dim` taken out.
pub fn without(t: &Tensor, dim: usize, start: usize, end: usize) -> Option<Tensor> {
    let shape = t.shape();
    let len = *shape.get(dim)?;
    if start >= end || end > len {
        return None;
    }
    let inner: usize = shape[dim + 1..].iter().product();
    let outer: usize = shape[..dim].iter().product();
    fn gather<T: Copy>(
        v: &[T],
        outer: usize,
        len: usize,
        inner: usize,
        start: usize,
        end: usize,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len() - outer * (end - start) * inner);
        for o in 0..outer {
            for i in (0..len).filter(|i| *i < start || *i >= end) {
                let at = (o * len + i) * inner;
                out.extend_from_slice(&v[at..at + inner]);
            }
        }
        out
    }
    let data = match t.data() {
        Data::F16(v) => Data::F16(gather(v, outer, len, inner, start, end)),
        Data::BF16(v) => Data::BF16(gather(v, outer, len, inner, start, end)),
        Data::F32(v) => Data::F32(gather(v, outer, len, inner, start, end)),
        Data::F64(v) => Data::F64(gather(v, outer, len, inner, start, end)),
        Data::I64(v) => Data::I64(gather(v, outer, len, inner, start, end)),
        Data::I32(v) => Data::I32(gather(v, outer, len, inner, start, end)),
        Data::U8(v) => Data::U8(gather(v, outer, len, inner, start, end)),
    };
    let mut new_shape = shape.to_vec();
    new_shape[dim] = len - (end - start);
    Tensor::new(new_shape, data).ok()
}

/// Slices `[start, end)` along `dim`: what one shrinking step takes out.
#[derive(Debug, Clone, Copy)]
struct Cut {
    dim: usize,
    start: usize,
    end: usize,
}

/// `call` with its input replaced.
fn with_input(call: &Call, t: Tensor) -> Call {
    let mut call = call.clone();
    match &mut call {
        Call::LogSoftmax { input, .. }
        | Call::NllLoss { input, .. }
        | Call::CrossEntropy { input, .. } => *input = t,
    }
    call
}

/// `t` with every value through `f` (floats only; integer tensors are returned as they are).
fn map_floats(t: &Tensor, f: impl Fn(f64) -> f64) -> Tensor {
    if !t.dtype().is_float() {
        return t.clone();
    }
    let v: Vec<f64> = t.to_f64_vec().into_iter().map(f).collect();
    Tensor::from_f64(t.dtype(), t.shape().to_vec(), &v).unwrap_or_else(|_| t.clone())
}

/// Class-index targets with the classes `[start, end)` removed: later classes move down, the
/// removed ones become the first class left (an ignored or out-of-range target stays).
fn remap_targets(
    t: &Tensor,
    classes: usize,
    start: usize,
    end: usize,
    ignore_index: i64,
) -> Tensor {
    let Some(v) = t.to_i64_vec() else {
        return t.clone();
    };
    let k = (end - start) as i64;
    let (start, end, c) = (start as i64, end as i64, classes as i64);
    let mapped: Vec<f64> = v
        .into_iter()
        .map(|x| match x {
            x if x == ignore_index || x < 0 || x >= c => x,
            x if x >= end => x - k,
            x if x >= start => {
                if start < c - k {
                    start
                } else {
                    0
                }
            }
            x => x,
        } as f64)
        .collect();
    Tensor::from_f64(t.dtype(), t.shape().to_vec(), &mapped).unwrap_or_else(|_| t.clone())
}

impl Subject {
    /// How complicated it is, to be made strictly smaller by every step kept: elements, then
    /// attributes away from their defaults, then values that are not small integers, then
    /// values that are not zero.
    pub fn complexity(&self) -> (usize, usize, usize, usize) {
        let tensors: Vec<&Tensor> = [
            Some(self.call.input()),
            self.call.target(),
            self.call.weight(),
            self.grad_output.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let elements = tensors.iter().map(|t| t.numel()).sum::<usize>()
            + usize::from(self.grad_output.is_some());
        let attrs = match &self.call {
            Call::LogSoftmax { .. } => 0,
            Call::NllLoss {
                reduction,
                ignore_index,
                weight,
                ..
            } => {
                usize::from(reduction != "mean")
                    + usize::from(*ignore_index != -100)
                    + usize::from(weight.is_some())
            }
            Call::CrossEntropy {
                reduction,
                ignore_index,
                weight,
                label_smoothing,
                ..
            } => {
                usize::from(reduction != "mean")
                    + usize::from(*ignore_index != -100)
                    + usize::from(weight.is_some())
                    + usize::from(*label_smoothing != 0.0)
            }
        };
        let values: Vec<f64> = tensors
            .iter()
            .filter(|t| t.dtype().is_float())
            .flat_map(|t| t.to_f64_vec())
            .collect();
        let odd = values
            .iter()
            .filter(|v| !(v.fract() == 0.0 && v.abs() <= 4.0))
            .count();
        let nonzero = values.iter().filter(|v| **v != 0.0).count();
        (elements, attrs, odd, nonzero)
    }

    /// Simpler subjects, the biggest steps first.
    pub fn candidates(&self) -> Vec<Subject> {
        let mut out = Vec::new();
        let input = self.call.input();
        for dim in 0..input.ndim() {
            let len = input.shape()[dim];
            let mut k = len / 2;
            while k >= 1 {
                let mut start = 0;
                while start + k <= len {
                    if len - k >= 1 {
                        out.extend(self.remove(Cut {
                            dim,
                            start,
                            end: start + k,
                        }));
                    }
                    start += k;
                }
                k /= 2;
            }
        }
        // a target or a weight whose shape is what fails: slices of it alone
        for t in [self.call.target(), self.call.weight()]
            .into_iter()
            .flatten()
        {
            let is_target = self.call.target() == Some(t);
            for dim in 0..t.ndim() {
                for i in 0..t.shape()[dim].min(8) {
                    if let Some(smaller) = without(t, dim, i, i + 1) {
                        out.push(self.with_tensor(is_target, smaller));
                    }
                }
            }
        }
        if self.grad_output.is_some() {
            out.push(Subject {
                call: self.call.clone(),
                grad_output: None,
            });
            if let Some(g) = &self.grad_output {
                out.push(Subject {
                    call: self.call.clone(),
                    grad_output: Some(map_floats(g, |_| 1.0)),
                });
            }
        }
        out.extend(self.default_attrs());
        // values: rounded, zero; then one element at a time
        for f in [f64::round as fn(f64) -> f64, |_| 0.0] {
            out.push(Subject {
                call: with_input(&self.call, map_floats(input, f)),
                ..self.clone()
            });
            if let Some(t) = self.call.target().filter(|t| t.dtype().is_float()) {
                out.push(self.with_tensor(true, map_floats(t, f)));
            }
        }
        if let Some(w) = self.call.weight() {
            out.push(self.with_tensor(false, map_floats(w, f64::round)));
            out.push(self.with_tensor(false, map_floats(w, |_| 1.0)));
        }
        if let Some(t) = self.call.target().filter(|t| !t.dtype().is_float()) {
            out.push(
                self.with_tensor(
                    true,
                    Tensor::from_f64(t.dtype(), t.shape().to_vec(), &vec![0.0; t.numel()])
                        .unwrap_or_else(|_| t.clone()),
                ),
            );
        }
        let values = input.to_f64_vec();
        for (i, v) in values.iter().enumerate().take(64) {
            if input.dtype().is_float() && *v != 0.0 {
                let mut w = values.clone();
                w[i] = if v.is_finite() && v.fract() != 0.0 {
                    v.round()
                } else {
                    0.0
                };
                if let Ok(t) = Tensor::from_f64(input.dtype(), input.shape().to_vec(), &w) {
                    out.push(Subject {
                        call: with_input(&self.call, t),
                        ..self.clone()
                    });
                }
            }
        }
        out
    }

    /// The same call with its target (or weight) replaced.
    fn with_tensor(&self, target: bool, t: Tensor) -> Subject {
        let mut call = self.call.clone();
        match (&mut call, target) {
            (Call::NllLoss { target: x, .. } | Call::CrossEntropy { target: x, .. }, true) => {
                *x = t
            }
            (Call::NllLoss { weight: w, .. } | Call::CrossEntropy { weight: w, .. }, false) => {
                *w = Some(t)
            }
            _ => {}
        }
        Subject {
            call,
            grad_output: self.grad_output.clone(),
        }
    }

    /// The subject with one attribute back to its default: no weight, `mean`, -100, no smoothing.
    fn default_attrs(&self) -> Vec<Subject> {
        let steps: [fn(&mut Call) -> bool; 4] = [
            |c| match c {
                Call::NllLoss { weight, .. } | Call::CrossEntropy { weight, .. } => {
                    weight.take().is_some()
                }
                Call::LogSoftmax { .. } => false,
            },
            |c| match c {
                Call::NllLoss { reduction, .. } | Call::CrossEntropy { reduction, .. }
                    if reduction != "mean" =>
                {
                    *reduction = "mean".into();
                    true
                }
                _ => false,
            },
            |c| match c {
                Call::NllLoss { ignore_index, .. } | Call::CrossEntropy { ignore_index, .. }
                    if *ignore_index != -100 =>
                {
                    *ignore_index = -100;
                    true
                }
                _ => false,
            },
            |c| match c {
                Call::CrossEntropy {
                    label_smoothing, ..
                } if *label_smoothing != 0.0 => {
                    *label_smoothing = 0.0;
                    true
                }
                _ => false,
            },
        ];
        steps
            .iter()
            .filter_map(|step| {
                let mut call = self.call.clone();
                step(&mut call).then(|| Subject {
                    call,
                    grad_output: self.grad_output.clone(),
                })
            })
            .collect()
    }

    /// The subject with the input's slices cut out, and every tensor that follows that dim
    /// (targets, weight, probabilities, the gradient) alike.
    fn remove(&self, cut: Cut) -> Option<Subject> {
        let new_input = without(self.call.input(), cut.dim, cut.start, cut.end)?;
        let mut call = with_input(&self.call, new_input);
        if let Call::NllLoss {
            target,
            weight,
            ignore_index,
            ..
        }
        | Call::CrossEntropy {
            target,
            weight,
            ignore_index,
            ..
        } = &mut call
        {
            let (t, w) = self.loss_tensors(cut, target, weight.as_ref(), *ignore_index)?;
            (*target, *weight) = (t, w);
        }
        let grad_output = self.grad_output.as_ref().map(|g| self.follow(g, cut));
        Some(Subject { call, grad_output }.fit_gradient())
    }

    /// The input's class dimension (0 for an unbatched `(C)` input).
    fn class_dim(&self) -> usize {
        usize::from(self.call.input().ndim() >= 2)
    }

    /// A loss's target and weight after the input lost `cut`.
    fn loss_tensors(
        &self,
        cut: Cut,
        target: &Tensor,
        weight: Option<&Tensor>,
        ignore_index: i64,
    ) -> Option<(Tensor, Option<Tensor>)> {
        let input = self.call.input();
        let class_dim = self.class_dim();
        let Cut { dim, start, end } = cut;
        let probabilities = target.dtype().is_float() && target.shape() == input.shape();
        let classes = input.shape().get(class_dim).copied().unwrap_or(0);
        let weight = match weight {
            Some(w) if dim == class_dim && w.ndim() == 1 && w.numel() == classes => {
                Some(without(w, 0, start, end)?)
            }
            w => w.cloned(),
        };
        let target = if probabilities {
            without(target, dim, start, end)?
        } else if dim == class_dim {
            remap_targets(target, classes, start, end, ignore_index)
        } else {
            // the target lacks the class dim: batch dim 0 stays 0, spatial dim k is k - 1
            let t_dim = if dim == 0 { 0 } else { dim - 1 };
            if target.ndim() + 1 == input.ndim() {
                without(target, t_dim, start, end)?
            } else {
                target.clone()
            }
        };
        Some((target, weight))
    }

    /// The gradient after the input lost `cut`, where its shape follows the input's.
    fn follow(&self, g: &Tensor, cut: Cut) -> Tensor {
        let input = self.call.input();
        let dim = cut.dim;
        let g_dim = match &self.call {
            Call::LogSoftmax { .. } => Some(dim),
            _ if g.ndim() == 0 => None,
            _ if dim == self.class_dim() && input.ndim() >= 2 => None,
            _ if g.ndim() == input.ndim() => Some(dim),
            _ => Some(if dim == 0 { 0 } else { dim - 1 }),
        };
        g_dim
            .and_then(|d| without(g, d, cut.start, cut.end))
            .unwrap_or_else(|| g.clone())
    }

    /// A gradient of the output's shape: ones where the one carried along does not fit.
    fn fit_gradient(mut self) -> Subject {
        if let Some(g) = &self.grad_output
            && let Ok(out) = self.call.run(None)
            && out.output.shape() != g.shape()
        {
            let n = out.output.numel();
            self.grad_output =
                Tensor::from_f64(g.dtype(), out.output.shape().to_vec(), &vec![1.0; n]).ok();
        }
        self
    }
}

/// How a shrink went.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub subject: Subject,
    /// The failure the shrunk case still has (the original's cause).
    pub cause: String,
    pub detail: String,
    pub steps: usize,
    pub tries: usize,
    pub elapsed: Duration,
    /// Whether the budget ran out before no simpler candidate failed alike.
    pub out_of_time: bool,
}

/// Shrinks `start`, which `imp` fails with `cause` when judged against native, within `budget`.
/// `None` when `imp` does not fail `start` that way to begin with.
pub fn shrink(
    imp: &dyn Implementation,
    start: Subject,
    cause: &str,
    budget: Duration,
) -> Option<Shrunk> {
    let began = Instant::now();
    let fails = |s: &Subject| {
        let case = oracle::case("shrinking", s.call.clone(), s.grad_output.clone());
        oracle::disagreement(imp, &case)
            .filter(|f| f.cause() == cause)
            .map(|f| f.detail())
    };
    let mut detail = fails(&start)?;
    let (mut current, mut steps, mut tries, mut out_of_time) = (start, 0, 0, false);
    'outer: loop {
        let score = current.complexity();
        for candidate in current.candidates() {
            if began.elapsed() > budget {
                out_of_time = true;
                break 'outer;
            }
            if candidate.complexity() >= score {
                continue;
            }
            tries += 1;
            if let Some(d) = fails(&candidate) {
                current = candidate;
                detail = d;
                steps += 1;
                continue 'outer;
            }
        }
        break;
    }
    Some(Shrunk {
        subject: current,
        cause: cause.to_string(),
        detail,
        steps,
        tries,
        elapsed: began.elapsed(),
        out_of_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    #[test]
    fn slices_come_out_along_any_dim() {
        let t = Tensor::from_f64(DType::F32, vec![2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(
            without(&t, 1, 1, 2).unwrap().to_f64_vec(),
            [0.0, 2.0, 3.0, 5.0]
        );
        assert_eq!(without(&t, 0, 0, 1).unwrap().shape(), [1, 3]);
        assert!(without(&t, 2, 0, 1).is_none());
    }

    #[test]
    fn removing_a_class_moves_the_later_targets_down() {
        let t = Tensor::from_f64(DType::I64, vec![4], &[0.0, 2.0, 3.0, -100.0]).unwrap();
        assert_eq!(
            remap_targets(&t, 4, 1, 2, -100).to_i64_vec().unwrap(),
            [0, 1, 2, -100]
        );
    }
}
