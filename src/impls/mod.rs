//! Implementations under test, behind one trait.
//!
//! An implementation sees a [`Request`]: the case's id, its [`Call`] (the op with exactly its
//! inputs and attributes) and `grad_output`, never its expectations. It answers with an [`Outcome`]. `native` is this crate's ops; `candle` a
//! reference composed of Candle tensor ops; `candle-nn` candle-nn's own functions as they
//! are; `exec:COMMAND` any program speaking protocol 1 (spec/PROTOCOL.md). Another Rust crate
//! implements [`Implementation`] and runs the suite with [`crate::harness`].

#[cfg(feature = "candle")]
pub mod candle;
#[cfg(feature = "candle")]
mod candle_bridge;
#[cfg(feature = "candle")]
pub mod candle_nn;
pub mod external;
pub mod native;
pub mod protocol;

use crate::error::ErrorKind;
use crate::golden::format::Case;
use crate::ops::Call;
use crate::tensor::Tensor;

/// What an implementation is asked: the case without its expectations.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The case's id.
    pub id: &'a str,
    /// The op with exactly its inputs and attributes.
    pub call: &'a Call,
    /// For a backward case, the gradient of the output: the answer then carries `grad_input`.
    pub grad_output: Option<&'a Tensor>,
}

impl<'a> Request<'a> {
    /// The request a case makes.
    pub fn of(case: &'a Case) -> Request<'a> {
        Request {
            id: &case.id,
            call: &case.call,
            grad_output: case.grad_output.as_ref(),
        }
    }
}

/// An implementation's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The op's result; `grad_input` is required when the request carried a `grad_output`.
    Values {
        /// The op's result.
        output: Tensor,
        /// The gradient with respect to the input.
        grad_input: Option<Tensor>,
    },
    /// A rejection. `kind: None` is an error outside the contract's list (say, a library's
    /// own error that nllspec cannot classify): it never matches an expected rejection.
    /// `py_type` is the Python exception PyTorch would raise, where the implementation knows it
    /// (native does): only implementations whose messages are judged verbatim need it.
    Error {
        /// The contract's kind, if the error has one.
        kind: Option<ErrorKind>,
        /// The Python exception type, where known.
        py_type: Option<crate::error::PyType>,
        /// The message, in the implementation's words.
        message: String,
    },
    /// The op's result without a gradient, which the implementation cannot compute (it has no
    /// autograd, say), with the reason. The output is judged as ever; a right one is reported
    /// as `forward_only`, never as a pass, and does not fail the run.
    ForwardOnly {
        /// The op's result.
        output: Tensor,
        /// Why there is no gradient.
        reason: String,
    },
    /// The implementation does not cover this case (counted as skipped), with the reason.
    Unsupported(String),
    /// The implementation misbehaved (crashed, hung, answered garbage): always a failure.
    Broken(String),
}

impl Outcome {
    /// A rejection of `kind` in the implementation's own words (no Python exception type).
    pub fn error(kind: Option<ErrorKind>, message: impl Into<String>) -> Outcome {
        Outcome::Error {
            kind,
            py_type: None,
            message: message.into(),
        }
    }
}

/// An implementation of the three ops that nllspec can judge.
pub trait Implementation: Send + Sync {
    /// The name used in test names (`native/nll_loss/...`) and expectations files.
    fn name(&self) -> &str;
    /// Answers one request.
    fn run(&self, request: &Request<'_>) -> Outcome;
    /// [`Implementation::run`] and what the implementation logged while it ran (an external
    /// process's stderr), shown with the case when it fails.
    fn run_logged(&self, request: &Request<'_>) -> (Outcome, Option<String>) {
        (self.run(request), None)
    }
    /// Set once the implementation cannot be run at all (a process that never starts): the
    /// run stops with exit status 2 and this message instead of failing every case alike.
    fn fatal(&self) -> Option<String> {
        None
    }
    /// What the implementation wrote while it started, before it read its first request (an
    /// interpreter's or a library's banner): reports show it once instead of with every case
    /// that was a fresh process's first.
    fn startup_log(&self) -> Option<String> {
        None
    }
}

/// An `--impl` argument: a built-in name, `exec:COMMAND`, or `NAME=exec:COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImplSpec {
    /// One of [`BUILTIN`].
    Builtin(&'static str),
    /// A program speaking protocol 1.
    Exec {
        /// What reports and expectations files call it.
        name: String,
        /// The command, run through `sh -c`.
        command: String,
    },
}

/// Why an `--impl` argument names no implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImplSpecError {
    /// Neither a built-in name nor `exec:COMMAND`.
    Unknown(String),
    /// `NAME=exec:COMMAND` with a name that cannot be used.
    BadName {
        /// The whole argument.
        spec: String,
        /// The name in it.
        name: String,
    },
}

impl std::fmt::Display for ImplSpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImplSpecError::Unknown(s) => {
                write!(
                    f,
                    "unknown implementation \"{s}\" (native, candle, candle-nn, exec:COMMAND or NAME=exec:COMMAND)"
                )
            }
            ImplSpecError::BadName { spec, name } => {
                write!(
                    f,
                    "--impl {spec}: \"{name}\" is not a usable name (letters, digits, '_', '-', '.'; not a built-in's)"
                )
            }
        }
    }
}

impl std::error::Error for ImplSpecError {}

impl ImplSpec {
    /// Parses an `--impl` argument.
    pub fn parse(s: &str) -> Result<ImplSpec, ImplSpecError> {
        if let Some(b) = BUILTIN.iter().find(|b| **b == s) {
            return Ok(ImplSpec::Builtin(b));
        }
        let (name, rest) = match s.split_once('=') {
            Some((n, r)) if r.starts_with("exec:") && !n.contains(':') => (Some(n), r),
            _ => (None, s),
        };
        let Some(command) = rest.strip_prefix("exec:").filter(|c| !c.trim().is_empty()) else {
            return Err(ImplSpecError::Unknown(s.to_string()));
        };
        let name = match name {
            Some(n) if valid_name(n) && !BUILTIN.contains(&n) => n.to_string(),
            Some(n) => {
                return Err(ImplSpecError::BadName {
                    spec: s.to_string(),
                    name: n.to_string(),
                });
            }
            None => short_name(command),
        };
        Ok(ImplSpec::Exec {
            name,
            command: command.to_string(),
        })
    }

    /// The name reports, test names and expectations files use.
    pub fn name(&self) -> &str {
        match self {
            ImplSpec::Builtin(n) => n,
            ImplSpec::Exec { name, .. } => name,
        }
    }

    /// Names an expectations file may give this implementation: its name, or (as before names
    /// existed) the whole `exec:COMMAND`.
    pub fn answers_to(&self, implementation: &str) -> bool {
        match self {
            ImplSpec::Builtin(n) => *n == implementation,
            ImplSpec::Exec { name, command } => {
                name == implementation
                    || implementation.strip_prefix("exec:") == Some(command.as_str())
            }
        }
    }

    /// The implementation, with `limits` for an external one.
    pub fn build(&self, limits: external::Limits) -> Box<dyn Implementation> {
        match self {
            #[cfg(feature = "candle")]
            ImplSpec::Builtin("candle") => Box::new(candle::CandleReference),
            #[cfg(feature = "candle")]
            ImplSpec::Builtin("candle-nn") => Box::new(candle_nn::CandleNn),
            ImplSpec::Builtin(_) => Box::new(native::Native),
            ImplSpec::Exec { name, command } => {
                Box::new(external::External::new(name, command, limits))
            }
        }
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// Programs that run a script named by a later argument: the script names the implementation.
const INTERPRETERS: [&str; 12] = [
    "python", "python3", "node", "sh", "bash", "ruby", "perl", "julia", "Rscript", "java", "uv",
    "env",
];

/// A short name for an unnamed `exec:` command: the script's file stem when an interpreter
/// runs one (`python3 /home/me/adapters/ort_impl.py --x` is `ort_impl`), else the program's
/// (`/opt/bin/my-gate --fast` is `my-gate`). `VAR=value` assignments before the program (or
/// after `env`) are skipped; later words are the program's own and never looked at.
pub fn short_name(command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let assignment = |w: &str| {
        w.split_once('=').is_some_and(|(name, _)| {
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let stem = |w: &str| -> String {
        let base = w
            .trim_matches(|c| c == '"' || c == '\'')
            .rsplit('/')
            .next()
            .unwrap_or(w);
        let stem = base.split_once('.').map_or(base, |(s, _)| s);
        stem.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_-.".contains(*c))
            .collect()
    };
    let mut name = String::new();
    for w in &words {
        if assignment(w) {
            continue;
        }
        let s = stem(w);
        let interpreter = INTERPRETERS.iter().any(|i| {
            s == *i
                || (s.starts_with(i)
                    && s[i.len()..].chars().all(|c| c.is_ascii_digit() || c == '.'))
        });
        if interpreter || w.starts_with('-') {
            if name.is_empty() {
                name = s;
            }
            continue;
        }
        name = s;
        break;
    }
    if !valid_name(&name) || BUILTIN.contains(&name.as_str()) {
        format!("exec-{}", name.chars().take(40).collect::<String>())
            .trim_end_matches('-')
            .to_string()
    } else {
        name
    }
}

/// The built-in implementations this build has (`candle` and `candle-nn` with the `candle`
/// feature).
#[cfg(feature = "candle")]
pub const BUILTIN: &[&str] = &["native", "candle", "candle-nn"];
/// The built-in implementations this build has (`candle` and `candle-nn` with the `candle`
/// feature).
#[cfg(not(feature = "candle"))]
pub const BUILTIN: &[&str] = &["native"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_skip_leading_assignments_only() {
        assert_eq!(
            short_name("FOO=1 python3 /a/b/ort_impl.py --x=1"),
            "ort_impl"
        );
        assert_eq!(
            short_name("env CUDA_VISIBLE_DEVICES=0 python adapters/torch_impl.py"),
            "torch_impl"
        );
        assert_eq!(short_name("/opt/bin/my-gate --fast"), "my-gate");
        assert_eq!(short_name("python3 -u run.py"), "run");
    }
}
