//! The values `nllspec explain` reasons about: a tensor with where it came from, shared by the
//! interpreter and the advice (which import it, not each other).

use crate::tensor::Tensor;

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
        TensorVal { t, known, requires_grad: false, origin: Origin::Plain, var: None, expr: None }
    }
}

