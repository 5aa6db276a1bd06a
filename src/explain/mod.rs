//! `nllspec explain`: a pasted PyTorch snippet evaluated offline on the native ops (no Python,
//! no torch), answered with what PyTorch 2.15 does, why, and the fix (spec/EXPLAIN.md).

mod advice;
mod args;
mod eval;
mod stop;
#[cfg(test)]
mod tests;
mod value;

use crate::golden::format::tensor_to_json;
use crate::tensor::{Data, Tensor, fmt_shape};
use eval::{Interp, Stop, Val};
use rustpython_parser::{Parse, ast};
use serde_json::{Value, json};

/// What a snippet does.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// It runs: the value of its last statement, and warnings.
    Ok {
        output: Shown,
        warnings: Vec<String>,
    },
    /// PyTorch raises.
    Error {
        py_type: crate::error::PyType,
        message: String,
        kind: crate::ErrorKind,
        line: usize,
        /// The call that raised, as written.
        call: String,
        explanation: String,
        fix: Option<String>,
        warnings: Vec<String>,
    },
    /// Outside the subset: what and where.
    Unsupported(String),
}

/// The value of the snippet's last statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// `known`: every input was determined (literals), so the values are PyTorch's.
    Tensor {
        tensor: Tensor,
        known: bool,
    },
    Other(String),
}

/// Evaluates `source`.
pub fn explain(source: &str) -> Answer {
    let suite = match ast::Suite::parse(source, "<snippet>") {
        Ok(s) => s,
        Err(e) => {
            let line = source[..usize::from(e.offset).min(source.len())]
                .matches('\n')
                .count()
                + 1;
            return Answer::Unsupported(format!(
                "line {line}: not Python that parses: {}",
                e.error
            ));
        }
    };
    let mut interp = Interp::new(source);
    let result = interp.run(&suite);
    let warnings = std::mem::take(&mut interp.warnings);
    match result {
        Ok(v) => Answer::Ok {
            output: shown(v),
            warnings,
        },
        Err(Stop::Unsupported(m)) => Answer::Unsupported(m),
        Err(Stop::Raise { error, line, call }) => {
            let (explanation, fix) = advice::explain(&error, &call, source);
            Answer::Error {
                py_type: error.py_type,
                message: error.message,
                kind: error.kind,
                line,
                call: call.source.clone(),
                explanation,
                fix,
                warnings,
            }
        }
    }
}

fn shown(v: Val) -> Shown {
    match v {
        Val::Tensor(t) => Shown::Tensor {
            tensor: t.t,
            known: t.known,
        },
        Val::None => Shown::Other("None".into()),
        Val::Bool(b) => Shown::Other(if b { "True" } else { "False" }.into()),
        Val::Int(i) => Shown::Other(i.to_string()),
        Val::Float(f) => Shown::Other(format!("{f:?}")),
        Val::Str(s) => Shown::Other(format!("{s:?}")),
        Val::Size(s) => Shown::Other(format!("torch.Size({s:?})")),
        Val::DType(d) => Shown::Other(format!("torch.{}", d.name())),
        Val::Module(_) => Shown::Other("a module".into()),
        Val::List(_) | Val::Tuple(_) => Shown::Other("a list".into()),
        Val::Namespace(n) => Shown::Other(format!("module {n}")),
        Val::Func(f) | Val::Method(_, f) => Shown::Other(format!("function {f}")),
    }
}

/// A tensor's values as Python would list them (nested by shape).
fn nested(t: &Tensor) -> String {
    let v: Vec<String> = match t.data() {
        Data::I64(_) | Data::I32(_) | Data::U8(_) => t
            .to_f64_vec()
            .iter()
            .map(|x| format!("{}", *x as i64))
            .collect(),
        _ => t.to_f64_vec().iter().map(|x| format!("{x:.4}")).collect(),
    };
    fn rec(v: &[String], shape: &[usize]) -> String {
        match shape {
            [] => v.first().cloned().unwrap_or_default(),
            [_] => format!("[{}]", v.join(", ")),
            [n, rest @ ..] => {
                let step = rest.iter().product::<usize>();
                let parts: Vec<String> = (0..*n)
                    .map(|i| rec(&v[i * step..(i + 1) * step], rest))
                    .collect();
                format!("[{}]", parts.join(", "))
            }
        }
    }
    rec(&v, t.shape())
}

impl Answer {
    /// For a person.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let warn = |out: &mut String, w: &[String]| {
            for x in w {
                out.push_str(&format!("warning: {x}\n"));
            }
        };
        match self {
            Answer::Ok { output, warnings } => {
                match output {
                    Shown::Tensor { tensor, known: true } => out.push_str(&format!(
                        "{} tensor of shape {}: {}\n",
                        tensor.dtype().name(),
                        fmt_shape(tensor.shape()),
                        nested(tensor)
                    )),
                    Shown::Tensor { tensor, known: false } => out.push_str(&format!(
                        "{} tensor of shape {} (values not determined: the snippet's inputs are random)\n",
                        tensor.dtype().name(),
                        fmt_shape(tensor.shape())
                    )),
                    Shown::Other(s) => out.push_str(&format!("{s}\n")),
                }
                warn(&mut out, warnings);
            }
            Answer::Error {
                py_type,
                message,
                kind,
                line,
                call,
                explanation,
                fix,
                warnings,
            } => {
                out.push_str(&format!("line {line}: {call}\n{py_type}: {message}\n(error kind: {kind})\n\nWhy: {explanation}\n"));
                if let Some(f) = fix {
                    out.push_str(&format!("\nFix:  {f}\n"));
                }
                if !warnings.is_empty() {
                    out.push('\n');
                }
                warn(&mut out, warnings);
            }
            Answer::Unsupported(m) => out.push_str(&format!("unsupported: {m}\n")),
        }
        out
    }

    /// The `--json` answer (spec/EXPLAIN.md).
    pub fn json(&self) -> Value {
        match self {
            Answer::Ok { output, warnings } => {
                let output = match output {
                    Shown::Tensor { tensor, known } => {
                        let mut t = tensor_to_json(tensor);
                        if !known && let Some(m) = t.as_object_mut() {
                            m.remove("data");
                        }
                        t
                    }
                    Shown::Other(s) => Value::from(s.clone()),
                };
                json!({"result": "ok", "output": output, "warnings": warnings})
            }
            Answer::Error {
                py_type,
                message,
                kind,
                line,
                explanation,
                fix,
                warnings,
                ..
            } => json!({
                "result": "error",
                "error": {"type": py_type.name(), "message": message, "kind": kind.name(), "line": line},
                "explanation": explanation,
                "fix": fix,
                "warnings": warnings,
            }),
            Answer::Unsupported(m) => json!({"result": "unsupported", "message": m}),
        }
    }
}
