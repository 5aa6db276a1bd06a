//! The native implementation: this crate's [`crate::ops`].

use super::{Implementation, Outcome, Request};

/// nllspec's own ops ([`crate::ops`]).
pub struct Native;

impl Implementation for Native {
    fn name(&self) -> &str {
        "native"
    }

    fn run(&self, req: &Request<'_>) -> Outcome {
        match req.call.run(req.grad_output) {
            Ok(o) => Outcome::Values {
                output: o.output,
                grad_input: o.grad_input,
            },
            Err(e) => Outcome::Error {
                kind: Some(e.kind),
                py_type: Some(e.py_type),
                message: e.message,
            },
        }
    }
}
