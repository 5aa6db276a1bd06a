//! One judge for every implementation: an outcome against a golden case.

pub mod compare;
pub mod expectations;

use crate::golden::format::{Case, Expected};
use crate::impls::Outcome;
use compare::{Accuracy, compare, default_tolerance};

/// The judgement of one outcome, before expectations are applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass(Option<Accuracy>),
    Fail(String),
    Skip(String),
}

/// Judges `outcome` against `case`. Errors are matched by kind; with `exact_messages` the
/// message must also be PyTorch's, verbatim, as `Type: message`.
pub fn judge(case: &Case, outcome: &Outcome, exact_messages: bool) -> Verdict {
    match (&case.expected, outcome) {
        (_, Outcome::Unsupported(reason)) => Verdict::Skip(reason.clone()),
        (_, Outcome::Broken(detail)) => Verdict::Fail(detail.clone()),
        (Expected::Error(e), Outcome::Error { kind, message }) => {
            if *kind != Some(e.kind) {
                let got = kind.map_or("an error of no contract kind".to_string(), |k| format!("error kind {k}"));
                return Verdict::Fail(format!(
                    "expected error kind {} (torch: {}: {}), got {got}: {message}",
                    e.kind, e.py_type, e.message
                ));
            }
            let torch = format!("{}: {}", e.py_type, e.message);
            if exact_messages && *message != torch {
                return Verdict::Fail(format!("error kind {} matches, message differs:\n  got:      {message}\n  expected: {torch}", e.kind));
            }
            Verdict::Pass(None)
        }
        (Expected::Error(e), Outcome::Values { output, .. }) => Verdict::Fail(format!(
            "expected error kind {} (torch: {}: {}), got an output of shape {:?}",
            e.kind, e.py_type, e.message, output.shape()
        )),
        (Expected::Values { .. }, Outcome::Error { kind, message }) => Verdict::Fail(format!(
            "expected values, got error{}: {message}",
            kind.map_or(String::new(), |k| format!(" kind {k}"))
        )),
        (Expected::Values { torch, reference }, Outcome::Values { output, grad_input }) => {
            let tol = |dtype| case.tolerance.as_ref().map_or_else(|| default_tolerance(dtype), |(t, _)| *t);
            let r_out = reference.as_ref().map(|r| &r.output);
            let mut acc = match compare(output, &torch.output, r_out, tol(torch.output.dtype())) {
                Ok(a) => a,
                Err(m) => return Verdict::Fail(format!("output: {m}")),
            };
            if let Some(expected_grad) = &torch.grad_input {
                let Some(actual_grad) = grad_input else {
                    return Verdict::Fail("grad_input: missing (the case sends a grad_output)".into());
                };
                let r_grad = reference.as_ref().and_then(|r| r.grad_input.as_ref());
                match compare(actual_grad, expected_grad, r_grad, tol(expected_grad.dtype())) {
                    Ok(g) => {
                        acc.max_ulp_torch = acc.max_ulp_torch.max(g.max_ulp_torch);
                        acc.max_ulp_reference = match (acc.max_ulp_reference, g.max_ulp_reference) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    Err(m) => return Verdict::Fail(format!("grad_input: {m}")),
                }
            }
            Verdict::Pass(Some(acc))
        }
    }
}
