//! The golden file format, version 1 (spec/FORMAT.md), read strictly.
//!
//! Files are parsed into `serde_json::Value` (serde_json's recursion limit turns deep nesting
//! into an error) and then converted by hand, so that every rejection names the field it is
//! about (`cases[3].inputs.target.data[7]`). Unknown keys are errors: a misspelled
//! `tolerence` must not silently fall back to the default tolerance.

use crate::error::{ErrorKind, PyType};
pub use crate::ops::{Call, Op};
use crate::tensor::{DType, Data, MAX_ELEMENTS, Tensor, checked_numel};
use serde_json::{Map, Number, Value};
use std::fmt;

/// The `format` of a version 1 golden file.
pub const FORMAT_V1: &str = "nllspec-golden-v1";

#[derive(Debug, Clone, PartialEq)]
/// An op's values: the output, and the gradient for a backward case.
pub struct Values {
    /// The op's result.
    pub output: Tensor,
    /// The gradient with respect to the input (a backward case).
    pub grad_input: Option<Tensor>,
}

#[derive(Debug, Clone, PartialEq)]
/// A rejection PyTorch made.
pub struct ExpectedError {
    /// What every implementation must match.
    pub kind: ErrorKind,
    /// The Python exception type PyTorch raised (`type`; optional in the format).
    pub py_type: Option<PyType>,
    /// PyTorch's message, verbatim (optional in the format: empty when absent).
    pub message: String,
}

impl ExpectedError {
    /// The exception type's name, empty when the case does not say.
    pub fn type_name(&self) -> &'static str {
        self.py_type.map_or("", PyType::name)
    }
}

#[derive(Debug, Clone, PartialEq)]
/// What PyTorch did with a case.
pub enum Expected {
    /// It answered.
    Values {
        /// PyTorch's own values.
        torch: Values,
        /// The same op in float64, rounded to the dtype (float16, bfloat16 and float32 cases).
        reference: Option<Values>,
    },
    /// It raised.
    Error(ExpectedError),
}

#[derive(Debug, Clone, Copy, PartialEq)]
/// `|actual - expected| <= atol + rtol * |expected|`.
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

#[derive(Debug, Clone, PartialEq)]
/// One golden case.
pub struct Case {
    /// The case's identity: its test name, filter and expectations key.
    pub id: String,
    /// The op and its inputs and attributes.
    pub call: Call,
    /// The gradient of the output to propagate back (a backward case), if any.
    pub grad_output: Option<Tensor>,
    /// What PyTorch did.
    pub expected: Expected,
    /// A per-case override and its reason.
    pub tolerance: Option<(Tolerance, String)>,
    /// Its tags (spec/tags.json).
    pub tags: Vec<String>,
    /// Why the case exists, for a person.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
/// A golden file.
pub struct GoldenFile {
    /// Free-form provenance (torch and exporter versions); not interpreted.
    pub generator: Value,
    /// Its cases, in file order.
    pub cases: Vec<Case>,
}

/// A rejection of a golden document: where (a JSON path) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatError {
    /// The case id, once known.
    pub case_id: Option<String>,
    /// Where in the document (`cases[3].inputs.input.data`).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.case_id {
            Some(id) => write!(f, "case {id}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

type R<T> = Result<T, FormatError>;

fn ferr<T>(path: &str, message: impl Into<String>) -> R<T> {
    Err(FormatError {
        case_id: None,
        path: path.to_string(),
        message: message.into(),
    })
}

fn object<'a>(v: &'a Value, path: &str) -> R<&'a Map<String, Value>> {
    v.as_object().map_or_else(
        || ferr(path, format!("expected an object, found {}", kind_of(v))),
        Ok,
    )
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn only_keys(m: &Map<String, Value>, allowed: &[&str], path: &str) -> R<()> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return ferr(
                path,
                format!("unknown key \"{k}\" (allowed: {})", allowed.join(", ")),
            );
        }
    }
    Ok(())
}

fn required<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> R<&'a Value> {
    m.get(key)
        .map_or_else(|| ferr(path, format!("missing \"{key}\"")), Ok)
}

fn string<'a>(v: &'a Value, path: &str) -> R<&'a str> {
    v.as_str().map_or_else(
        || ferr(path, format!("expected a string, found {}", kind_of(v))),
        Ok,
    )
}

fn integer(v: &Value, path: &str) -> R<i64> {
    match v {
        Value::Number(n) => n.as_i64().map_or_else(
            || {
                ferr(
                    path,
                    format!("expected an integer in the int64 range, found {n}"),
                )
            },
            Ok,
        ),
        _ => ferr(path, format!("expected an integer, found {}", kind_of(v))),
    }
}

fn number(v: &Value, path: &str) -> R<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| ferr(path, "expected a number"), Ok),
        _ => ferr(path, format!("expected a number, found {}", kind_of(v))),
    }
}

/// Parses one golden document (already JSON) into its cases.
pub fn parse_document(doc: &Value) -> R<GoldenFile> {
    let top = object(doc, "(top level)")?;
    only_keys(top, &["format", "generator", "cases"], "(top level)")?;
    let format = string(required(top, "format", "(top level)")?, "format")?;
    if format != FORMAT_V1 {
        return ferr(
            "format",
            format!("unknown format \"{format}\" (this nllspec reads \"{FORMAT_V1}\")"),
        );
    }
    let generator = top.get("generator").cloned().unwrap_or(Value::Null);
    let cases_v = required(top, "cases", "(top level)")?;
    let Some(items) = cases_v.as_array() else {
        return ferr(
            "cases",
            format!("expected an array, found {}", kind_of(cases_v)),
        );
    };
    let mut cases = Vec::with_capacity(items.len());
    for (i, c) in items.iter().enumerate() {
        let path = format!("cases[{i}]");
        let id = c.get("id").and_then(Value::as_str).map(str::to_string);
        cases.push(parse_case(c, &path).map_err(|mut e| {
            e.case_id = e.case_id.or(id);
            e
        })?);
    }
    Ok(GoldenFile { generator, cases })
}

/// Whether `id` uses only the characters an id may have (`[A-Za-z0-9_./@=-]`).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@=-".contains(c))
}

fn parse_case(v: &Value, path: &str) -> R<Case> {
    let m = object(v, path)?;
    only_keys(
        m,
        &[
            "id",
            "op",
            "inputs",
            "attrs",
            "expected",
            "tolerance",
            "tags",
            "note",
        ],
        path,
    )?;
    let id = string(required(m, "id", path)?, &format!("{path}.id"))?.to_string();
    if !valid_id(&id) {
        return ferr(
            &format!("{path}.id"),
            format!("\"{id}\" has characters outside [A-Za-z0-9_./@=-]"),
        );
    }
    let op_s = string(required(m, "op", path)?, &format!("{path}.op"))?;
    let op = Op::parse(op_s).map_or_else(
        || {
            ferr(
                &format!("{path}.op"),
                format!("unknown op \"{op_s}\" (log_softmax, nll_loss, cross_entropy)"),
            )
        },
        Ok,
    )?;
    let inputs = parse_inputs(op, required(m, "inputs", path)?, &format!("{path}.inputs"))?;
    let (call, grad_output) = parse_call(op, inputs, m.get("attrs"), &format!("{path}.attrs"))?;
    let expected = parse_expected(required(m, "expected", path)?, &format!("{path}.expected"))?;
    let tolerance = match m.get("tolerance") {
        None => None,
        Some(t) => Some(parse_tolerance(t, &format!("{path}.tolerance"))?),
    };
    let tags = match m.get("tags") {
        None => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, t)| string(t, &format!("{path}.tags[{i}]")).map(str::to_string))
            .collect::<R<_>>()?,
        Some(other) => {
            return ferr(
                &format!("{path}.tags"),
                format!("expected an array, found {}", kind_of(other)),
            );
        }
    };
    let note = match m.get("note") {
        None => None,
        Some(n) => Some(string(n, &format!("{path}.note"))?.to_string()),
    };
    Ok(Case {
        id,
        call,
        grad_output,
        expected,
        tolerance,
        tags,
        note,
    })
}

/// The tensors of a case's `inputs`, before they are paired with the op's attributes.
struct Inputs {
    input: Tensor,
    target: Option<Tensor>,
    weight: Option<Tensor>,
    grad_output: Option<Tensor>,
}

fn parse_inputs(op: Op, v: &Value, path: &str) -> R<Inputs> {
    let m = object(v, path)?;
    let allowed: &[&str] = match op {
        Op::LogSoftmax => &["input", "grad_output"],
        _ => &["input", "target", "weight", "grad_output"],
    };
    only_keys(m, allowed, path)?;
    let get = |k: &str| -> R<Option<Tensor>> {
        m.get(k)
            .map(|t| parse_tensor(t, &format!("{path}.{k}")))
            .transpose()
    };
    let input = parse_tensor(required(m, "input", path)?, &format!("{path}.input"))?;
    let target = get("target")?;
    if op != Op::LogSoftmax && target.is_none() {
        return ferr(path, format!("missing \"target\" ({op} needs one)"));
    }
    Ok(Inputs {
        input,
        target,
        weight: get("weight")?,
        grad_output: get("grad_output")?,
    })
}

/// The op's [`Call`] from its inputs (a loss has a target: `parse_inputs` checked) and attrs,
/// and the case's `grad_output`.
fn parse_call(op: Op, inputs: Inputs, v: Option<&Value>, path: &str) -> R<(Call, Option<Tensor>)> {
    let Inputs {
        input,
        target,
        weight,
        grad_output,
    } = inputs;
    let empty = Map::new();
    let m = match v {
        None => &empty,
        Some(v) => object(v, path)?,
    };
    let reduction = || -> R<String> {
        m.get("reduction").map_or(Ok("mean".to_string()), |r| {
            string(r, &format!("{path}.reduction")).map(str::to_string)
        })
    };
    let ignore_index = || -> R<i64> {
        m.get("ignore_index")
            .map_or(Ok(-100), |r| integer(r, &format!("{path}.ignore_index")))
    };
    match op {
        Op::LogSoftmax => {
            only_keys(m, &["dim"], path)?;
            let dim = match required(m, "dim", path)? {
                Value::Null => None,
                d => Some(integer(d, &format!("{path}.dim"))?),
            };
            Ok((Call::LogSoftmax { input, dim }, grad_output))
        }
        Op::NllLoss | Op::CrossEntropy => {
            let Some(target) = target else {
                return ferr(path, format!("missing \"target\" ({op} needs one)"));
            };
            // the checks in the order they were always made: keys, then values
            if op == Op::NllLoss {
                only_keys(m, &["reduction", "ignore_index"], path)?;
                let (reduction, ignore_index) = (reduction()?, ignore_index()?);
                return Ok((
                    Call::NllLoss {
                        input,
                        target,
                        weight,
                        reduction,
                        ignore_index,
                    },
                    grad_output,
                ));
            }
            only_keys(m, &["reduction", "ignore_index", "label_smoothing"], path)?;
            let label_smoothing = m.get("label_smoothing").map_or(Ok(0.0), |v| {
                float_value(v, &format!("{path}.label_smoothing"))
            })?;
            let (reduction, ignore_index) = (reduction()?, ignore_index()?);
            Ok((
                Call::CrossEntropy {
                    input,
                    target,
                    weight,
                    reduction,
                    ignore_index,
                    label_smoothing,
                },
                grad_output,
            ))
        }
    }
}

fn parse_expected(v: &Value, path: &str) -> R<Expected> {
    let m = object(v, path)?;
    if let Some(e) = m.get("error") {
        only_keys(m, &["error"], path)?;
        let ep = format!("{path}.error");
        let em = object(e, &ep)?;
        only_keys(em, &["kind", "type", "message"], &ep)?;
        let kind_s = string(required(em, "kind", &ep)?, &format!("{ep}.kind"))?;
        let kind = ErrorKind::parse(kind_s).map_or_else(
            || {
                ferr(
                    &format!("{ep}.kind"),
                    format!("unknown error kind \"{kind_s}\""),
                )
            },
            Ok,
        )?;
        let py_type = match em.get("type") {
            None => None,
            Some(t) => {
                let s = string(t, &format!("{ep}.type"))?;
                let known: Vec<&str> = PyType::ALL.iter().map(|t| t.name()).collect();
                let unknown = || {
                    ferr(
                        &format!("{ep}.type"),
                        format!("unknown exception type \"{s}\" ({})", known.join(", ")),
                    )
                };
                Some(PyType::parse(s).map_or_else(unknown, Ok)?)
            }
        };
        let message = em
            .get("message")
            .map_or(Ok(""), |t| string(t, &format!("{ep}.message")))?
            .to_string();
        return Ok(Expected::Error(ExpectedError {
            kind,
            py_type,
            message,
        }));
    }
    only_keys(m, &["output", "grad_input", "reference"], path)?;
    let torch = parse_values(m, path)?;
    let reference = match m.get("reference") {
        None => None,
        Some(r) => {
            let rp = format!("{path}.reference");
            let rm = object(r, &rp)?;
            only_keys(rm, &["output", "grad_input"], &rp)?;
            Some(parse_values(rm, &rp)?)
        }
    };
    Ok(Expected::Values { torch, reference })
}

fn parse_values(m: &Map<String, Value>, path: &str) -> R<Values> {
    let output = parse_tensor(required(m, "output", path)?, &format!("{path}.output"))?;
    let grad_input = m
        .get("grad_input")
        .map(|g| parse_tensor(g, &format!("{path}.grad_input")))
        .transpose()?;
    Ok(Values { output, grad_input })
}

fn parse_tolerance(v: &Value, path: &str) -> R<(Tolerance, String)> {
    let m = object(v, path)?;
    only_keys(m, &["rtol", "atol", "reason"], path)?;
    let rtol = number(required(m, "rtol", path)?, &format!("{path}.rtol"))?;
    let atol = number(required(m, "atol", path)?, &format!("{path}.atol"))?;
    if !(rtol >= 0.0 && atol >= 0.0 && rtol.is_finite() && atol.is_finite()) {
        return ferr(path, "rtol and atol must be finite and non-negative");
    }
    let reason = string(required(m, "reason", path)?, &format!("{path}.reason"))?;
    if reason.trim().is_empty() {
        return ferr(
            &format!("{path}.reason"),
            "a tolerance override must state its reason",
        );
    }
    Ok((Tolerance { rtol, atol }, reason.to_string()))
}

/// A float element: a JSON number or one of the special strings.
fn float_value(v: &Value, path: &str) -> R<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| ferr(path, "expected a number"), Ok),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => ferr(
                path,
                format!(
                    "\"{other}\" is not a number nor one of \"NaN\", \"Infinity\", \"-Infinity\""
                ),
            ),
        },
        _ => ferr(path, format!("expected a number, found {}", kind_of(v))),
    }
}

/// Parses `{"dtype", "shape", "data"}`. The shape is checked (and its element count bounded)
/// before any storage is allocated; each float must be exactly representable in its dtype.
pub fn parse_tensor(v: &Value, path: &str) -> R<Tensor> {
    let m = object(v, path)?;
    only_keys(m, &["dtype", "shape", "data"], path)?;
    let dtype_s = string(required(m, "dtype", path)?, &format!("{path}.dtype"))?;
    let dtype = DType::parse(dtype_s).map_or_else(
        || ferr(&format!("{path}.dtype"), format!("unknown dtype \"{dtype_s}\" (float16, bfloat16, float32, float64, int64, int32, uint8)")),
        Ok,
    )?;
    let shape_v = required(m, "shape", path)?;
    let Some(dims) = shape_v.as_array() else {
        return ferr(
            &format!("{path}.shape"),
            format!("expected an array, found {}", kind_of(shape_v)),
        );
    };
    if dims.len() > 64 {
        return ferr(
            &format!("{path}.shape"),
            format!("{} dimensions (at most 64)", dims.len()),
        );
    }
    let mut shape = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        let dp = format!("{path}.shape[{i}]");
        match d.as_u64() {
            Some(n) if n <= usize::MAX as u64 => shape.push(n as usize),
            _ => {
                return ferr(
                    &dp,
                    format!("a size must be a non-negative integer, found {d}"),
                );
            }
        }
    }
    let Some(numel) = checked_numel(&shape) else {
        return ferr(
            &format!("{path}.shape"),
            format!("{shape:?} has more than {MAX_ELEMENTS} elements"),
        );
    };
    let data_v = required(m, "data", path)?;
    let Some(items) = data_v.as_array() else {
        return ferr(
            &format!("{path}.data"),
            format!("expected an array, found {}", kind_of(data_v)),
        );
    };
    if items.len() != numel {
        return ferr(
            &format!("{path}.data"),
            format!(
                "shape {shape:?} needs {numel} elements, found {}",
                items.len()
            ),
        );
    }
    let dp = |i: usize| format!("{path}.data[{i}]");
    let floats = || -> R<Vec<f64>> {
        items
            .iter()
            .enumerate()
            .map(|(i, x)| float_value(x, &dp(i)))
            .collect()
    };
    let exact = |i: usize, x: f64, back: f64| -> R<()> {
        if x.to_bits() == back.to_bits() || (x.is_nan() && back.is_nan()) {
            Ok(())
        } else {
            ferr(
                &dp(i),
                format!("{x} is not exactly a {dtype} value (nearest: {back})"),
            )
        }
    };
    let ints = |lo: i64, hi: i64| -> R<Vec<i64>> {
        items
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::Number(n) => int_in(n, lo, hi).map_or_else(
                    || {
                        ferr(
                            &dp(i),
                            format!("{n} is not an integer in the {dtype} range [{lo}, {hi}]"),
                        )
                    },
                    Ok,
                ),
                other => ferr(
                    &dp(i),
                    format!("expected an integer, found {}", kind_of(other)),
                ),
            })
            .collect()
    };
    if dtype.is_float() {
        let f = floats()?;
        let t = Tensor::from_f64(dtype, shape, &f).map_or_else(|e| ferr(path, e.0), Ok)?;
        // rounding into the dtype must not have changed any value
        for (i, (&x, back)) in f.iter().zip(t.to_f64_vec()).enumerate() {
            exact(i, x, back)?;
        }
        return Ok(t);
    }
    let data = match dtype {
        DType::I64 => Data::I64(ints(i64::MIN, i64::MAX)?),
        DType::I32 => Data::I32(
            ints(i32::MIN as i64, i32::MAX as i64)?
                .into_iter()
                .map(|x| x as i32)
                .collect(),
        ),
        _ => Data::U8(ints(0, 255)?.into_iter().map(|x| x as u8).collect()),
    };
    Tensor::new(shape, data).map_or_else(|e| ferr(path, e.0), Ok)
}

fn int_in(n: &Number, lo: i64, hi: i64) -> Option<i64> {
    n.as_i64().filter(|x| (lo..=hi).contains(x))
}

/// A tensor as the golden format writes it: floats as the shortest decimal that round-trips
/// the value as a float64, non-finite values as strings, integers as integers.
pub fn tensor_to_json(t: &Tensor) -> Value {
    let data: Vec<Value> = match t.data() {
        Data::I64(v) => v.iter().map(|&x| Value::from(x)).collect(),
        Data::I32(v) => v.iter().map(|&x| Value::from(x)).collect(),
        Data::U8(v) => v.iter().map(|&x| Value::from(x)).collect(),
        _ => t.to_f64_vec().into_iter().map(float_to_json).collect(),
    };
    serde_json::json!({"dtype": t.dtype().name(), "shape": t.shape(), "data": data})
}

/// A float as golden files write it: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn float_to_json(x: f64) -> Value {
    if x.is_nan() {
        Value::from("NaN")
    } else if x.is_infinite() {
        Value::from(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tensor(v: Value) -> Result<Tensor, FormatError> {
        parse_tensor(&v, "t")
    }

    #[test]
    fn tensors_parse_exactly() {
        let t = tensor(json!({"dtype": "float16", "shape": [3], "data": [0.5, "-Infinity", -0.0]}))
            .unwrap();
        assert_eq!(t.to_f64_vec()[..2], [0.5, f64::NEG_INFINITY]);
        assert!(t.to_f64_vec()[2].is_sign_negative());
        // 0.1 is not a float16 value: a hand edit, refused.
        let e = tensor(json!({"dtype": "float16", "shape": [1], "data": [0.1]})).unwrap_err();
        assert_eq!(e.path, "t.data[0]");
        // Integers: fractional and out-of-range values are refused.
        assert!(tensor(json!({"dtype": "int64", "shape": [1], "data": [1.5]})).is_err());
        assert!(tensor(json!({"dtype": "uint8", "shape": [1], "data": [256]})).is_err());
        assert!(
            tensor(json!({"dtype": "int64", "shape": [1], "data": [9223372036854775807u64]}))
                .is_ok()
        );
        assert!(
            tensor(json!({"dtype": "int64", "shape": [1], "data": [9223372036854775808u64]}))
                .is_err()
        );
    }

    #[test]
    fn shapes_are_checked_before_allocation() {
        let e = tensor(
            json!({"dtype": "float32", "shape": [4294967296u64, 4294967296u64], "data": []}),
        )
        .unwrap_err();
        assert!(e.message.contains("more than"), "{e}");
        let e = tensor(json!({"dtype": "float32", "shape": [-1], "data": []})).unwrap_err();
        assert_eq!(e.path, "t.shape[0]");
        let e = tensor(json!({"dtype": "float32", "shape": [2], "data": [1.0]})).unwrap_err();
        assert!(e.message.contains("needs 2 elements"));
        assert!(tensor(json!({"dtype": "float32", "shape": [2], "data": [1.0, "nan"]})).is_err());
        assert!(tensor(json!({"dtype": "complex64", "shape": [], "data": [1.0]})).is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let doc = json!({"format": FORMAT_V1, "cases": [{
            "id": "a", "op": "log_softmax", "attrs": {"dim": 0},
            "inputs": {"input": {"dtype": "float32", "shape": [], "data": [1.0]}},
            "expected": {"output": {"dtype": "float32", "shape": [], "data": [0.0]}},
            "tolerence": {"rtol": 1, "atol": 1, "reason": "typo"}
        }]});
        let e = parse_document(&doc).unwrap_err();
        assert_eq!(e.case_id.as_deref(), Some("a"));
        assert!(e.message.contains("tolerence"), "{e}");
    }

    #[test]
    fn an_unknown_exception_type_is_an_error() {
        let case = |ty: &str| {
            json!({"format": FORMAT_V1, "cases": [{
                "id": "a", "op": "log_softmax", "attrs": {"dim": 0},
                "inputs": {"input": {"dtype": "int64", "shape": [1], "data": [1]}},
                "expected": {"error": {"kind": "input_dtype", "type": ty, "message": "m"}}
            }]})
        };
        let ok = parse_document(&case("NotImplementedError")).unwrap();
        let Expected::Error(e) = &ok.cases[0].expected else {
            panic!("an error case")
        };
        assert_eq!(e.py_type, Some(PyType::NotImplementedError));
        let e = parse_document(&case("TypeErorr")).unwrap_err();
        assert_eq!(e.path, "cases[0].expected.error.type");
        assert!(
            e.message.contains("unknown exception type \"TypeErorr\""),
            "{e}"
        );
    }
}
