//! One judge for every implementation: an outcome against a golden case.

pub mod audit;
pub mod compare;
pub mod expectations;
pub mod writer;

use crate::error::ErrorKind;
use crate::golden::format::{Case, Expected, ExpectedError, Tolerance};
use crate::impls::Outcome;
use crate::tensor::{DType, Tensor};
use compare::{Mismatch, compare, default_tolerance};

/// How an error answer is judged. The contract matches errors by kind; the native
/// implementation, which reproduces PyTorch's messages, is held to them word for word too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Messages {
    /// The error kind must match (every implementation but the native one).
    Kind,
    /// The kind and PyTorch's message, verbatim.
    Verbatim,
}

impl Messages {
    /// The policy for the implementation called `name`: verbatim for the built-in native one.
    pub fn for_builtin(name: &str) -> Messages {
        if name == "native" {
            Messages::Verbatim
        } else {
            Messages::Kind
        }
    }
}

/// The judgement of one outcome, before expectations are applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Within tolerance, or the right rejection.
    Pass,
    /// The output is right and the implementation said it cannot compute the gradient (why).
    ForwardOnly(String),
    /// Not, and why.
    Fail(Failure),
    /// The implementation does not cover the case (reported as `skip`), and why.
    Unsupported(String),
}

/// Why a case failed. Reports print [`Failure::detail`], this case's whole story, and group
/// failures by [`Failure::cause`], the same for every case that failed the same way.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The implementation crashed, hung or answered garbage, in its own words.
    Broken(String),
    /// PyTorch raised; the implementation raised another kind (`None`: no contract kind).
    WrongKind {
        /// PyTorch's rejection.
        expected: ExpectedError,
        /// The kind answered (`None`: no contract kind).
        got: Option<ErrorKind>,
        /// The implementation's message.
        message: String,
    },
    /// The right kind with other words, where messages are judged verbatim.
    Message {
        /// PyTorch's rejection.
        expected: ExpectedError,
        /// The type and message answered.
        got: String,
    },
    /// PyTorch raised; the implementation answered with an output of this shape.
    ValuesNotError {
        /// PyTorch's rejection.
        expected: ExpectedError,
        /// The shape of the output answered instead.
        shape: Vec<usize>,
    },
    /// PyTorch answered; the implementation raised.
    ErrorNotValues {
        /// The kind answered.
        kind: Option<ErrorKind>,
        /// The implementation's message.
        message: String,
    },
    /// A field (`output` or `grad_input`) is not close to PyTorch's.
    Values {
        /// `output` or `grad_input`.
        field: &'static str,
        /// How it differs.
        mismatch: Mismatch,
    },
    /// A backward case answered without `grad_input`.
    NoGradInput,
}

impl Failure {
    /// What this failure has in common with others alike. An implementation's own words (a
    /// crash, a timeout, a malformed answer) count once numbers and quoted text are left out.
    pub fn cause(&self) -> String {
        match self {
            Failure::Broken(detail) => generalize(detail.lines().next().unwrap_or("")),
            Failure::WrongKind { expected, got, .. } => format!(
                "expected error kind {}, got {}",
                expected.kind,
                got_kind(*got)
            ),
            Failure::Message { expected, .. } => {
                format!("error kind {}: message differs", expected.kind)
            }
            Failure::ValuesNotError { expected, .. } => {
                format!("expected error kind {}, got values", expected.kind)
            }
            Failure::ErrorNotValues { kind, .. } => {
                format!("expected values, got error{}", kind_suffix(*kind))
            }
            Failure::Values { field, mismatch } => {
                let what = match mismatch {
                    Mismatch::Dtype { .. } => "wrong dtype",
                    Mismatch::Shape { .. } => "wrong shape",
                    Mismatch::Values { .. } => "values differ",
                };
                format!("{field}: {what}")
            }
            Failure::NoGradInput => "grad_input: missing".into(),
        }
    }

    /// This case's whole story, for a person.
    pub fn detail(&self) -> String {
        match self {
            Failure::Broken(detail) => detail.clone(),
            Failure::WrongKind { expected: e, got, message } => format!(
                "expected error kind {} (torch: {}: {}), got {}: {message}",
                e.kind,
                e.type_name(),
                e.message,
                got_kind(*got)
            ),
            Failure::Message { expected: e, got } => format!(
                "error kind {} matches, message differs:\n  got:      {got}\n  expected: {}: {}",
                e.kind,
                e.type_name(),
                e.message
            ),
            Failure::ValuesNotError { expected: e, shape } => format!(
                "expected error kind {} (torch: {}: {}), got an output of shape {shape:?}",
                e.kind,
                e.type_name(),
                e.message
            ),
            Failure::ErrorNotValues { kind, message } => format!("expected values, got error{}: {message}", kind_suffix(*kind)),
            Failure::Values { field, mismatch } => format!("{field}: {mismatch}"),
            Failure::NoGradInput => "grad_input: missing (the case sends a grad_output; an implementation without gradients answers \
                                     \"grad_input_unsupported\": \"<reason>\")"
                .into(),
        }
    }
}

fn got_kind(kind: Option<ErrorKind>) -> String {
    kind.map_or("an error of no contract kind".to_string(), |k| {
        format!("error kind {k}")
    })
}

fn kind_suffix(kind: Option<ErrorKind>) -> String {
    kind.map_or(String::new(), |k| format!(" kind {k}"))
}

/// A line with its numbers as `N` and its quoted or bracketed parts as `…`, cut at 100
/// characters: "no response within 1s" and "no response within 2s" are one cause.
fn generalize(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' | '[' | '{' => {
                let close = match c {
                    '[' => ']',
                    '{' => '}',
                    q => q,
                };
                for d in chars.by_ref() {
                    if d == close {
                        break;
                    }
                }
                out.push('…');
            }
            c if c.is_ascii_digit() => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
                {
                    chars.next();
                }
                out.push('N');
            }
            c => out.push(c),
        }
        if out.chars().count() >= 100 {
            out.push('…');
            break;
        }
    }
    out
}

/// Looser tolerances for one case (an expectations file's `tolerances` entries), per field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Loosen {
    /// For the output.
    pub output: Option<Tolerance>,
    /// For the gradient.
    pub grad_input: Option<Tolerance>,
}

/// Judges `outcome` against `case`. Errors are matched by kind; with [`Messages::Verbatim`] the
/// exception type and message must also be PyTorch's, as far as the case records them.
pub fn judge(case: &Case, outcome: &Outcome, messages: Messages) -> Verdict {
    judge_with(case, outcome, messages, &Loosen::default())
}

/// The tolerance a case is judged with when it states none: `torch.testing.assert_close`'s for
/// the least precise floating dtype among its inputs and outputs. A float32 result computed
/// from float16 logits and bfloat16 probabilities cannot be closer to the truth than its
/// bfloat16 input allows, whatever its own dtype.
pub fn case_tolerance(case: &Case) -> Tolerance {
    if let Some((t, _)) = &case.tolerance {
        return *t;
    }
    let c = &case.call;
    let mut dtypes: Vec<DType> = [
        Some(c.input()),
        c.target(),
        c.weight(),
        case.grad_output.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(Tensor::dtype)
    .collect();
    if let Expected::Values { torch, .. } = &case.expected {
        dtypes.push(torch.output.dtype());
    }
    let least = dtypes
        .into_iter()
        .filter(|d| d.is_float())
        .min_by_key(|d| d.mantissa_bits());
    least.map_or_else(|| default_tolerance(c.input().dtype()), default_tolerance)
}

fn wider(a: Tolerance, b: Option<Tolerance>) -> Tolerance {
    b.map_or(a, |b| Tolerance {
        rtol: a.rtol.max(b.rtol),
        atol: a.atol.max(b.atol),
    })
}

/// [`judge`], with each field's tolerance widened to `loosen`'s where it has one.
pub fn judge_with(case: &Case, outcome: &Outcome, messages: Messages, loosen: &Loosen) -> Verdict {
    let (torch, reference, output, grad_input, forward_only) = match (&case.expected, outcome) {
        (_, Outcome::Unsupported(reason)) => return Verdict::Unsupported(reason.clone()),
        (_, Outcome::Broken(detail)) => return Verdict::Fail(Failure::Broken(detail.clone())),
        (
            Expected::Error(e),
            Outcome::Error {
                kind,
                py_type,
                message,
            },
        ) => {
            if *kind != Some(e.kind) {
                return Verdict::Fail(Failure::WrongKind {
                    expected: e.clone(),
                    got: *kind,
                    message: message.clone(),
                });
            }
            // Verbatim: what the golden case records of PyTorch's exception, its type and its
            // message (a file may leave either out: then there is nothing to compare).
            let type_differs = e.py_type.is_some() && *py_type != e.py_type;
            let message_differs = !e.message.is_empty() && *message != e.message;
            if messages == Messages::Verbatim && (type_differs || message_differs) {
                let got = match py_type {
                    Some(t) => format!("{t}: {message}"),
                    None => message.clone(),
                };
                return Verdict::Fail(Failure::Message {
                    expected: e.clone(),
                    got,
                });
            }
            return Verdict::Pass;
        }
        (
            Expected::Error(e),
            Outcome::Values { output, .. } | Outcome::ForwardOnly { output, .. },
        ) => {
            return Verdict::Fail(Failure::ValuesNotError {
                expected: e.clone(),
                shape: output.shape().to_vec(),
            });
        }
        (Expected::Values { .. }, Outcome::Error { kind, message, .. }) => {
            return Verdict::Fail(Failure::ErrorNotValues {
                kind: *kind,
                message: message.clone(),
            });
        }
        (Expected::Values { torch, reference }, Outcome::Values { output, grad_input }) => {
            (torch, reference, output, grad_input.as_ref(), None)
        }
        (Expected::Values { torch, reference }, Outcome::ForwardOnly { output, reason }) => {
            (torch, reference, output, None, Some(reason))
        }
    };
    let base = case_tolerance(case);
    let r_out = reference.as_ref().map(|r| &r.output);
    if let Err(m) = compare(output, &torch.output, r_out, wider(base, loosen.output)) {
        return Verdict::Fail(Failure::Values {
            field: "output",
            mismatch: m,
        });
    }
    if let Some(expected_grad) = &torch.grad_input {
        let Some(actual_grad) = grad_input else {
            return match forward_only {
                Some(reason) => Verdict::ForwardOnly(reason.clone()),
                None => Verdict::Fail(Failure::NoGradInput),
            };
        };
        let r_grad = reference.as_ref().and_then(|r| r.grad_input.as_ref());
        if let Err(m) = compare(
            actual_grad,
            expected_grad,
            r_grad,
            wider(base, loosen.grad_input),
        ) {
            return Verdict::Fail(Failure::Values {
                field: "grad_input",
                mismatch: m,
            });
        }
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::load::load_all;
    use crate::impls::Implementation;

    /// A shipped case and its expected values.
    fn shipped(file: &str, id: &str) -> Case {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        load_all(&[path])
            .unwrap()
            .into_iter()
            .find(|c| c.case.id == id)
            .unwrap()
            .case
    }

    #[test]
    fn an_input_less_precise_than_the_output_sets_the_default_tolerance() {
        // float16 logits, bfloat16 probabilities, a float32 loss: bfloat16's tolerance.
        let case = shipped(
            "golden/cross_entropy/probs.json",
            "cross_entropy/probs/promotion_f16_bf16@float16",
        );
        assert_eq!(
            case_tolerance(&case),
            compare::default_tolerance(DType::BF16)
        );
        let Expected::Values { torch, reference } = &case.expected else {
            panic!("a values case")
        };
        // PyTorch's loss moved 0.5% away from the float64 reference: outside float32's
        // rtol 1.3e-6, inside bfloat16's 1.6e-2, and not nearer the reference than PyTorch.
        let (e, r) = (
            torch.output.to_f64_vec()[0],
            reference.as_ref().unwrap().output.to_f64_vec()[0],
        );
        let moved = if e >= r { e * 1.005 } else { e * 0.995 };
        let output = Tensor::from_f64(DType::F32, vec![], &[moved]).unwrap();
        let outcome = Outcome::Values {
            output,
            grad_input: torch.grad_input.clone(),
        };
        assert!(
            matches!(judge(&case, &outcome, Messages::Kind), Verdict::Pass),
            "{:?}",
            judge(&case, &outcome, Messages::Kind)
        );
        let strict = Loosen::default();
        let mut float32_only = case.clone();
        float32_only.tolerance = Some((
            compare::default_tolerance(DType::F32),
            "the output dtype's".into(),
        ));
        assert!(matches!(
            judge_with(&float32_only, &outcome, Messages::Kind, &strict),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn a_golden_error_without_type_or_message_is_judged_by_what_it_records() {
        // spec/FORMAT.md: `type` and `message` are optional. Native raises IndexError
        // "Target 5 is out of bounds." for this call.
        let case = |error: &str| {
            let doc: serde_json::Value = serde_json::from_str(&format!(
                r#"{{"format": "nllspec-golden-v1", "generator": {{}}, "cases": [{{"id": "a@float32", "op": "nll_loss",
                    "inputs": {{"input": {{"dtype": "float32", "shape": [1, 5], "data": [0, 0, 0, 0, 0]}},
                               "target": {{"dtype": "int64", "shape": [1], "data": [5]}}}},
                    "expected": {{"error": {error}}}}}]}}"#
            ))
            .unwrap();
            crate::golden::format::parse_document(&doc)
                .unwrap()
                .cases
                .remove(0)
        };
        let native = |c: &Case| {
            judge(
                c,
                &crate::impls::native::Native.run(&crate::impls::Request::of(c)),
                Messages::Verbatim,
            )
        };
        assert_eq!(
            native(&case(r#"{"kind": "target_out_of_bounds"}"#)),
            Verdict::Pass
        );
        assert_eq!(
            native(&case(
                r#"{"kind": "target_out_of_bounds", "type": "IndexError"}"#
            )),
            Verdict::Pass
        );
        assert_eq!(
            native(&case(
                r#"{"kind": "target_out_of_bounds", "message": "Target 5 is out of bounds."}"#
            )),
            Verdict::Pass
        );
        let wrong = native(&case(
            r#"{"kind": "target_out_of_bounds", "type": "ValueError", "message": "Target 5 is out of bounds."}"#,
        ));
        match wrong {
            Verdict::Fail(Failure::Message { got, .. }) => {
                assert_eq!(got, "IndexError: Target 5 is out of bounds.")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn causes_leave_out_numbers_and_quotes() {
        assert_eq!(
            generalize("no response within 1.5s"),
            generalize("no response within 30s")
        );
        assert_eq!(
            generalize("the process exited (exit status: 1) without answering"),
            "the process exited (exit status: N) without answering"
        );
        assert_eq!(
            generalize(r#"response for id "a/b", expected "c""#),
            "response for id …, expected …"
        );
    }
}
