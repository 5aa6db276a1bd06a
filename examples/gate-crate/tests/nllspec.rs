//! A framework's gate: one test per golden case (`cargo test -- log_softmax/seed` filters,
//! `--list` lists), judged as `nllspec run` judges. `harness::main(imp, Some(path))` adds an
//! expectations file of known divergences.
//!
//! The implementation is a naive float64 log_softmax and `unsupported` for the losses: it
//! passes every log_softmax case and skips the rest. nllspec's own `cargo run --example
//! rust_gate` runs this same file.

use nllspec::impls::{Implementation, Outcome, Request};
use nllspec::ops::Call;
use nllspec::{DType, ErrorKind, Tensor};

/// The implementation under test: in a real framework, the bridge from `Request` to its own ops.
pub struct NaiveLogSoftmax;

impl Implementation for NaiveLogSoftmax {
    fn name(&self) -> &str {
        "naive"
    }

    fn run(&self, req: &Request<'_>) -> Outcome {
        let Call::LogSoftmax { input: x, dim } = req.call else {
            return Outcome::Unsupported("this example implements log_softmax only".into());
        };
        let nd = x.ndim().max(1) as i64;
        let dim = dim.unwrap_or(if matches!(x.ndim(), 0 | 1 | 3) { 0 } else { 1 });
        if dim < -nd || dim >= nd {
            return Outcome::error(Some(ErrorKind::DimOutOfRange), format!("dim {dim}"));
        }
        if x.numel() == 0 {
            let grad_input = req.grad_output.map(|_| x.clone());
            return Outcome::Values {
                output: x.clone(),
                grad_input,
            };
        }
        if !x.dtype().is_float() {
            return Outcome::error(Some(ErrorKind::InputDtype), "integer input");
        }
        let d = if x.ndim() == 0 {
            0
        } else {
            dim.rem_euclid(nd) as usize
        };
        let shape = x.shape().to_vec();
        let (len, inner) = if shape.is_empty() {
            (1, 1)
        } else {
            (shape[d], shape[d + 1..].iter().product())
        };
        let v = x.to_f64_vec();
        let mut out = vec![0.0; v.len()];
        for o in 0..v.len() / (len * inner) {
            for i in 0..inner {
                let at = |j: usize| (o * len + j) * inner + i;
                let m = (0..len).map(|j| v[at(j)]).fold(f64::NEG_INFINITY, |a, b| {
                    if a.is_nan() || b.is_nan() {
                        f64::NAN
                    } else {
                        a.max(b)
                    }
                });
                let lse = (0..len).map(|j| (v[at(j)] - m).exp()).sum::<f64>().ln();
                for j in 0..len {
                    out[at(j)] = if m.is_finite() {
                        v[at(j)] - m - lse
                    } else {
                        f64::NAN
                    };
                }
            }
        }
        let grad_input = req.grad_output.map(|g| {
            let g = g.to_f64_vec();
            let mut gi = vec![0.0; g.len()];
            for o in 0..g.len() / (len * inner) {
                for i in 0..inner {
                    let at = |j: usize| (o * len + j) * inner + i;
                    let s: f64 = (0..len).map(|j| g[at(j)]).sum();
                    for j in 0..len {
                        gi[at(j)] = g[at(j)] - out[at(j)].exp() * s;
                    }
                }
            }
            Tensor::from_f64(x.dtype(), shape.clone(), &gi).expect("same shape")
        });
        let output = Tensor::from_f64(x.dtype(), shape, &out).expect("same shape");
        debug_assert!(output.dtype() != DType::I64);
        Outcome::Values { output, grad_input }
    }
}

/// The test binary's entry point (`harness = false`).
pub fn main() {
    nllspec::harness::main(NaiveLogSoftmax, None);
}
