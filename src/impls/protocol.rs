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

/// The detail for a line that is not JSON, with the fix when the cause is a common one.
pub(crate) fn not_json(line: &str, e: &serde_json::Error) -> String {
    match bare_non_finite(line) {
        Some(word) => format!(
            "malformed response: bare {word} is not JSON: write \"{word}\" (a string), as golden files do: {}",
            preview(line)
        ),
        None => format!("malformed response (not JSON: {e}): {}", preview(line)),
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
pub fn parse_response(v: &Value) -> Result<Outcome, String> {
    let Some(m) = v.as_object() else {
        return Err("response is not an object".into());
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
            return Err(format!("unknown key \"{k}\" in the response"));
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
            .ok_or("error without a string \"kind\"")?;
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
    let tensor = |key: &str, v: &Value| {
        parse_tensor(v, key).map_err(|e| {
            let fix = if e.message.contains("is not exactly a") {
                ": round answers to the output dtype"
            } else {
                ""
            };
            format!("malformed response: {e}{fix}")
        })
    };
    let output = m
        .get("output")
        .ok_or("response has none of output, error, unsupported")?;
    let output = tensor("output", output)?;
    match (m.get("grad_input"), m.get("grad_input_unsupported")) {
        (Some(_), Some(_)) => Err("response has both grad_input and grad_input_unsupported".into()),
        (Some(g), None) => Ok(Outcome::Values {
            output,
            grad_input: Some(tensor("grad_input", g)?),
        }),
        (None, Some(reason)) => {
            let reason = reason
                .as_str()
                .ok_or("grad_input_unsupported must be a string (the reason)")?;
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
