//! Rejections: the contract's closed list of error kinds, and the error value the ops return.
//!
//! Implementations are judged on `kind` alone (as test262 judges `negative.type`); the native
//! implementation also reproduces PyTorch's Python exception type and message verbatim, so that
//! a user who reads an nllspec error reads what torch would have printed.

use std::fmt;

/// Contract section 2. Closed: an unknown kind in a file or a response is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// A loss on a 0-d input.
    InputRank,
    /// `input.size(0) != target.size(0)` for a batched input.
    BatchSizeMismatch,
    /// The target's shape does not fit the input's.
    TargetShape,
    /// A target outside `[0, C)` that is not `ignore_index`.
    TargetOutOfBounds,
    /// A target of a dtype the op does not take.
    TargetDtype,
    /// A weight that is not 1-D with C elements.
    WeightShape,
    /// A weight whose dtype differs from the input's.
    DtypeMismatch,
    /// A non-float input with work to do.
    InputDtype,
    /// A reduction other than `none`, `mean` and `sum`.
    InvalidReduction,
    /// A dim outside `[-ndim, ndim)`.
    DimOutOfRange,
    /// Any other rejected argument (a label_smoothing above 1, say).
    InvalidArgument,
}

impl ErrorKind {
    /// Every kind, in the contract's order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::InputRank,
        ErrorKind::BatchSizeMismatch,
        ErrorKind::TargetShape,
        ErrorKind::TargetOutOfBounds,
        ErrorKind::TargetDtype,
        ErrorKind::WeightShape,
        ErrorKind::DtypeMismatch,
        ErrorKind::InputDtype,
        ErrorKind::InvalidReduction,
        ErrorKind::DimOutOfRange,
        ErrorKind::InvalidArgument,
    ];

    /// The kind's name in golden files and protocol 1 (`target_out_of_bounds`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InputRank => "input_rank",
            ErrorKind::BatchSizeMismatch => "batch_size_mismatch",
            ErrorKind::TargetShape => "target_shape",
            ErrorKind::TargetOutOfBounds => "target_out_of_bounds",
            ErrorKind::TargetDtype => "target_dtype",
            ErrorKind::WeightShape => "weight_shape",
            ErrorKind::DtypeMismatch => "dtype_mismatch",
            ErrorKind::InputDtype => "input_dtype",
            ErrorKind::InvalidReduction => "invalid_reduction",
            ErrorKind::DimOutOfRange => "dim_out_of_range",
            ErrorKind::InvalidArgument => "invalid_argument",
        }
    }

    /// The kind called `s`.
    pub fn parse(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error and its causes on one line, for a report: `error: cause: cause`.
pub fn chain(e: &dyn std::error::Error) -> String {
    causes(e).join(": ")
}

/// An error and each of its causes ([`std::error::Error::source`]), outermost first.
pub fn causes(e: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out
}

/// The Python exception class PyTorch raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyType {
    /// Python's `ValueError`.
    ValueError,
    /// Python's `RuntimeError`.
    RuntimeError,
    /// Python's `IndexError`.
    IndexError,
    /// Python's `NotImplementedError`.
    NotImplementedError,
}

impl PyType {
    /// Every exception type PyTorch raises for the three ops.
    pub const ALL: [PyType; 4] = [
        PyType::ValueError,
        PyType::RuntimeError,
        PyType::IndexError,
        PyType::NotImplementedError,
    ];

    /// The exception type called `s`.
    pub fn parse(s: &str) -> Option<PyType> {
        PyType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The exception's Python name.
    pub fn name(self) -> &'static str {
        match self {
            PyType::ValueError => "ValueError",
            PyType::RuntimeError => "RuntimeError",
            PyType::IndexError => "IndexError",
            PyType::NotImplementedError => "NotImplementedError",
        }
    }
}

impl std::fmt::Display for PyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An op's rejection of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct OpError {
    /// What the contract judges.
    pub kind: ErrorKind,
    /// The exception PyTorch raises.
    pub py_type: PyType,
    /// PyTorch's message, word for word.
    pub message: String,
    /// Which check rejected the call, with the values it compared: what a reader of the
    /// rejection (`nllspec explain`) goes by, so that the message's wording is free to change.
    pub check: Check,
}

/// The check behind a rejection, where one within a kind needs telling apart, with its facts.
/// [`Check::Other`] is every check whose kind and the call's own values say enough.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Check {
    /// An unbatched `(C,)` input with a 1-d target of `size` entries (PyTorch wants 1).
    UnbatchedTargetSize {
        /// The target's number of elements.
        size: usize,
    },
    /// An index target of more than one dimension for an `(N, C)` or `(C,)` input.
    MultiTarget {
        /// The target's rank.
        target_ndim: usize,
    },
    /// A target of the input's shape (class probabilities) that is not of a float dtype.
    ProbabilityTargetDtype {
        /// The target's dtype.
        dtype: crate::DType,
    },
    /// `label_smoothing` outside what PyTorch accepts (above 1).
    LabelSmoothingRange {
        /// The value given.
        value: f64,
    },
    /// A reduction that is not `none`, `mean` or `sum`.
    Reduction {
        /// The string given.
        given: String,
    },
    /// A class index that is neither a class nor `ignore_index` (the first one met).
    TargetOutOfBounds {
        /// The index.
        target: i64,
    },
    /// The truth of a many-element tensor was asked for (a loss module built with tensors:
    /// `nn.CrossEntropyLoss(out, y)` binds them to `weight` and `size_average`).
    TensorTruth,
    /// `F.one_hot` of a tensor that is not int64.
    OneHotDtype,
    /// Any other check: its kind says which.
    Other,
}

impl OpError {
    /// A rejection by a check of no [`Check`] of its own ([`Check::Other`]).
    pub fn new(kind: ErrorKind, py_type: PyType, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            py_type,
            message: message.into(),
            check: Check::Other,
        }
    }

    /// The same rejection, naming the check and its facts.
    pub fn with_check(mut self, check: Check) -> OpError {
        self.check = check;
        self
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}: {})",
            self.kind,
            self.py_type.name(),
            self.message
        )
    }
}

impl std::error::Error for OpError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, by an exhaustive match: a kind added to the enum must be added here (the
    /// match does not compile otherwise), and then the test fails unless it is in `ALL` too.
    fn position(k: ErrorKind) -> usize {
        match k {
            ErrorKind::InputRank => 0,
            ErrorKind::BatchSizeMismatch => 1,
            ErrorKind::TargetShape => 2,
            ErrorKind::TargetOutOfBounds => 3,
            ErrorKind::TargetDtype => 4,
            ErrorKind::WeightShape => 5,
            ErrorKind::DtypeMismatch => 6,
            ErrorKind::InputDtype => 7,
            ErrorKind::InvalidReduction => 8,
            ErrorKind::DimOutOfRange => 9,
            ErrorKind::InvalidArgument => 10,
        }
    }
    const KINDS: usize = 11;

    #[test]
    fn kind_names_round_trip() {
        let listed: std::collections::BTreeSet<usize> =
            ErrorKind::ALL.iter().map(|k| position(*k)).collect();
        assert_eq!(
            listed,
            (0..KINDS).collect(),
            "ErrorKind::ALL lists every kind once"
        );
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(k.name()), Some(k));
        }
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), KINDS, "names are distinct");
        assert_eq!(ErrorKind::parse("TargetOutOfBounds"), None);
    }
}
