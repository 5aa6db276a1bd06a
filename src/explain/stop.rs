//! Why evaluation stops: PyTorch raises (with what the advice needs), or the snippet leaves
//! the Python subset.

use super::advice::SnippetCall;
use crate::error::OpError;

/// Why evaluation stopped.
#[derive(Debug)]
pub enum Stop {
    /// PyTorch raises: the error, and what advice needs to explain it.
    Raise {
        error: OpError,
        line: usize,
        call: Box<SnippetCall>,
    },
    Unsupported(String),
}

pub(crate) type R<T> = Result<T, Stop>;

pub(crate) fn unsupported<T>(line: usize, what: impl Into<String>) -> R<T> {
    Err(Stop::Unsupported(format!(
        "line {line}: {} is outside the Python subset nllspec explain evaluates",
        what.into()
    )))
}
