//! Implementations under test, behind one trait.
//!
//! An implementation sees a [`Request`]: the case's id, op, inputs and attrs, never its
//! expectations. It answers with an [`Outcome`]. `native` is this crate's ops; `candle` a
//! reference composed of Candle tensor ops; `candle-nn` candle-nn's own functions as they
//! are; `exec:COMMAND` any program speaking protocol 1 (spec/PROTOCOL.md). Another Rust crate
//! implements [`Implementation`] and runs the suite with [`crate::harness`].

pub mod candle;
pub mod candle_nn;
pub mod external;
pub mod native;

use crate::error::ErrorKind;
use crate::golden::format::{Attrs, Case, Inputs, Op};
use crate::tensor::Tensor;

/// What an implementation is asked: the case without its expectations.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub id: &'a str,
    pub op: Op,
    pub inputs: &'a Inputs,
    pub attrs: &'a Attrs,
}

impl<'a> Request<'a> {
    pub fn of(case: &'a Case) -> Request<'a> {
        Request { id: &case.id, op: case.op, inputs: &case.inputs, attrs: &case.attrs }
    }
}

/// An implementation's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The op's result; `grad_input` is required when the request carried a `grad_output`.
    Values { output: Tensor, grad_input: Option<Tensor> },
    /// A rejection. `kind: None` is an error outside the contract's list (say, a library's
    /// own error that nllspec cannot classify): it never matches an expected rejection.
    Error { kind: Option<ErrorKind>, message: String },
    /// The implementation does not cover this case (counted as skipped), with the reason.
    Unsupported(String),
    /// The implementation misbehaved (crashed, hung, answered garbage): always a failure.
    Broken(String),
}

/// An implementation of the three ops that nllspec can judge.
pub trait Implementation: Send + Sync {
    /// The name used in test names (`native/nll_loss/...`) and expectations files.
    fn name(&self) -> &str;
    fn run(&self, request: &Request<'_>) -> Outcome;
    /// Whether error messages must equal PyTorch's verbatim (only the native implementation
    /// promises that; everyone else is judged on the error kind).
    fn exact_messages(&self) -> bool {
        false
    }
}

/// The built-in implementation called `name`, or an `exec:COMMAND` external one.
pub fn by_name(name: &str, timeout: std::time::Duration) -> Option<Box<dyn Implementation>> {
    match name {
        "native" => Some(Box::new(native::Native)),
        "candle" => Some(Box::new(candle::CandleReference)),
        "candle-nn" => Some(Box::new(candle_nn::CandleNn)),
        _ => name
            .strip_prefix("exec:")
            .filter(|c| !c.trim().is_empty())
            .map(|c| Box::new(external::External::new(c, timeout)) as Box<dyn Implementation>),
    }
}

pub const BUILTIN: [&str; 3] = ["native", "candle", "candle-nn"];
