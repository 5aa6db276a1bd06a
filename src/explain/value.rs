//! The values `nllspec explain` reasons about: the Python values of the subset, and a tensor
//! with where it came from, shared by the interpreter and the advice (which import it, not
//! each other).

use crate::tensor::{DType, Tensor};

/// Where a tensor came from, as far as the warnings care.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Origin {
    Plain,
    LogSoftmax { dim: usize },
    Softmax { dim: usize },
}

#[derive(Debug, Clone)]
pub struct TensorVal {
    pub t: Tensor,
    /// Whether every value is determined by the snippet (literals, not random factories).
    pub known: bool,
    pub requires_grad: bool,
    pub origin: Origin,
    /// The variable it was last assigned to, and that assignment's line (for fixes).
    pub var: Option<(String, usize)>,
    /// The source text of the call that made it, when it was made inline (for fixes).
    pub expr: Option<String>,
}

impl TensorVal {
    pub fn new(t: Tensor, known: bool) -> TensorVal {
        TensorVal {
            t,
            known,
            requires_grad: false,
            origin: Origin::Plain,
            var: None,
            expr: None,
        }
    }
}

/// A constructed `nn` module, called later.
#[derive(Debug, Clone)]
pub enum Module {
    LogSoftmax(Option<i64>),
    Softmax(Option<i64>),
    Loss {
        cross_entropy: bool,
        weight: Option<Box<TensorVal>>,
        reduction: String,
        ignore_index: i64,
        label_smoothing: f64,
    },
}

/// A Python value of the subset.
#[derive(Debug, Clone)]
pub enum Val {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Val>),
    Tuple(Vec<Val>),
    DType(DType),
    Tensor(Box<TensorVal>),
    Size(Vec<usize>),
    Module(Module),
    /// `torch`, `torch.nn`, `torch.nn.functional`.
    Namespace(&'static str),
    /// A function of a namespace, or a builtin: `torch.tensor`, `F.nll_loss`, `print`.
    Func(String),
    Method(Box<TensorVal>, String),
}
