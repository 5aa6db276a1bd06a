//! Protocol 1's messages (spec/PROTOCOL.md): a request as the line an external implementation
//! reads, and its response line read back into an [`Outcome`]. The process handling is
//! [`super::external`]'s. Tensors are written as golden files write them.

use super::{Outcome, Request};
use crate::error::ErrorKind;
use crate::golden::format::{float_to_json, parse_tensor, tensor_to_json};
use crate::ops::Call;
use serde_json::{Map, Value};

/// The request line for `req` (contract section 4), newline-terminated. Written by hand so
/// that "id" comes first: adapters can route on it cheaply.
pub fn request_line(req: &Request<'_>) -> String {
    format!(
        "{{\"id\":{},\"op\":\"{}\",\"inputs\":{},\"attrs\":{}}}\n",
        Value::from(req.id),
        req.call.op().name(),
        inputs_to_json(req.call, req.grad_output),
        attrs_to_json(req.call)
    )
}

/// A call's attributes as a request carries them (and `nllspec show` prints them).
pub fn attrs_to_json(call: &Call) -> Value {
    match call {
        Call::LogSoftmax { dim, .. } => serde_json::json!({"dim": dim}),
        Call::NllLoss {
            reduction,
            ignore_index,
            ..
        } => {
            serde_json::json!({"reduction": reduction, "ignore_index": ignore_index})
        }
        Call::CrossEntropy {
            reduction,
            ignore_index,
            label_smoothing,
            ..
        } => serde_json::json!({
            "reduction": reduction, "ignore_index": ignore_index, "label_smoothing": float_to_json(*label_smoothing)
        }),
    }
}

/// A call's tensors, and the `grad_output` of a backward case, as a request carries them.
pub fn inputs_to_json(call: &Call, grad_output: Option<&crate::tensor::Tensor>) -> Value {
    let mut m = Map::new();
    m.insert("input".into(), tensor_to_json(call.input()));
    for (k, t) in [
        ("target", call.target()),
        ("weight", call.weight()),
        ("grad_output", grad_output),
    ] {
        if let Some(t) = t {
            m.insert(k.into(), tensor_to_json(t));
        }
    }
    Value::Object(m)
}

/// A response line that breaks protocol 1: what is wrong, and the fix where the cause is a
/// common one (the detail a failing case shows).
#[derive(Debug)]
pub enum Malformed {
    /// Not JSON; `bare` names a non-finite word written outside a string (Python's default).
    NotJson {
        /// The bare word, when that is why.
        bare: Option<&'static str>,
        /// The parser's error.
        error: serde_json::Error,
        /// The line's beginning.
        preview: String,
    },
    /// A JSON value that is not an object.
    NotAnObject,
    /// A key protocol 1 does not have.
    UnknownKey(String),
    /// An `error` without a string `kind`.
    ErrorWithoutKind,
    /// None of `output`, `error`, `unsupported`.
    NoAnswer,
    /// `output` or `grad_input` is not a golden tensor of its dtype.
    Tensor {
        /// `output` or `grad_input`.
        field: &'static str,
        /// Why it is not a tensor.
        error: crate::golden::format::FormatError,
    },
    /// Both `grad_input` and `grad_input_unsupported`.
    BothGradientKeys,
    /// A `grad_input_unsupported` that is not a reason (a string).
    ReasonNotAString,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::NotJson {
                bare: Some(word),
                preview,
                ..
            } => write!(
                f,
                "malformed response: bare {word} is not JSON: write \"{word}\" (a string), as golden files do: {preview}"
            ),
            Malformed::NotJson {
                bare: None,
                error,
                preview,
            } => {
                write!(f, "malformed response (not JSON: {error}): {preview}")
            }
            Malformed::NotAnObject => f.write_str("response is not an object"),
            Malformed::UnknownKey(k) => write!(f, "unknown key \"{k}\" in the response"),
            Malformed::ErrorWithoutKind => f.write_str("error without a string \"kind\""),
            Malformed::NoAnswer => f.write_str("response has none of output, error, unsupported"),
            Malformed::Tensor { error, .. } => {
                let fix = if error.message.contains("is not exactly a") {
                    ": round answers to the output dtype"
                } else {
                    ""
                };
                write!(f, "malformed response: {error}{fix}")
            }
            Malformed::BothGradientKeys => {
                f.write_str("response has both grad_input and grad_input_unsupported")
            }
            Malformed::ReasonNotAString => {
                f.write_str("grad_input_unsupported must be a string (the reason)")
            }
        }
    }
}

impl std::error::Error for Malformed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Malformed::NotJson { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A line that is not JSON, with the fix when the cause is a common one.
pub(crate) fn not_json(line: &str, error: serde_json::Error) -> Malformed {
    Malformed::NotJson {
        bare: bare_non_finite(line),
        error,
        preview: preview(line),
    }
}

/// `NaN`, `Infinity` or `-Infinity` written outside a string (Python's `json.dumps` default).
fn bare_non_finite(line: &str) -> Option<&'static str> {
    let b = line.as_bytes();
    let (mut in_string, mut escaped) = (false, false);
    for i in 0..b.len() {
        let c = b[i];
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == b'"' {
            in_string = true;
        } else if b[i..].starts_with(b"NaN") {
            return Some("NaN");
        } else if b[i..].starts_with(b"-Infinity") {
            return Some("-Infinity");
        } else if b[i..].starts_with(b"Infinity") {
            return Some("Infinity");
        }
    }
    None
}

pub(crate) fn preview(s: &str) -> String {
    let t: String = s.trim_end().chars().take(200).collect();
    if t.len() < s.trim_end().len() {
        format!("{t}...")
    } else {
        t
    }
}

/// Reads a response object (already checked to be for this id).
pub fn parse_response(v: &Value) -> Result<Outcome, Malformed> {
    let Some(m) = v.as_object() else {
        return Err(Malformed::NotAnObject);
    };
    for k in m.keys() {
        if ![
            "id",
            "output",
            "grad_input",
            "grad_input_unsupported",
            "error",
            "unsupported",
        ]
        .contains(&k.as_str())
        {
            return Err(Malformed::UnknownKey(k.clone()));
        }
    }
    if let Some(reason) = m.get("unsupported") {
        return Ok(Outcome::Unsupported(
            reason.as_str().unwrap_or("(no reason given)").to_string(),
        ));
    }
    if let Some(e) = m.get("error") {
        let kind_s = e
            .get("kind")
            .and_then(Value::as_str)
            .ok_or(Malformed::ErrorWithoutKind)?;
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(match ErrorKind::parse(kind_s) {
            Some(k) => Outcome::error(Some(k), message),
            None => Outcome::error(None, format!("(unknown kind \"{kind_s}\") {message}")),
        });
    }
    let tensor = |field: &'static str, v: &Value| {
        parse_tensor(v, field).map_err(|error| Malformed::Tensor { field, error })
    };
    let output = m.get("output").ok_or(Malformed::NoAnswer)?;
    let output = tensor("output", output)?;
    match (m.get("grad_input"), m.get("grad_input_unsupported")) {
        (Some(_), Some(_)) => Err(Malformed::BothGradientKeys),
        (Some(g), None) => Ok(Outcome::Values {
            output,
            grad_input: Some(tensor("grad_input", g)?),
        }),
        (None, Some(reason)) => {
            let reason = reason.as_str().ok_or(Malformed::ReasonNotAString)?;
            Ok(Outcome::ForwardOnly {
                output,
                reason: reason.to_string(),
            })
        }
        (None, None) => Ok(Outcome::Values {
            output,
            grad_input: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_non_finite_words_are_found_outside_strings_only() {
        assert_eq!(
            bare_non_finite(r#"{"id":"a","output":{"data":[NaN]}}"#),
            Some("NaN")
        );
        assert_eq!(
            bare_non_finite(r#"{"data":[1.0, -Infinity]}"#),
            Some("-Infinity")
        );
        assert_eq!(bare_non_finite(r#"{"data":[Infinity]}"#), Some("Infinity"));
        assert_eq!(
            bare_non_finite(r#"{"id":"NaN \"Infinity\"","data":["NaN"]}"#),
            None
        );
    }
}
