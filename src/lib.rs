//! nllspec: a conformance suite and reference kernels for LogSoftmax, NLLLoss and
//! CrossEntropyLoss, with PyTorch 2.15 (CPU) as the specification.
//!
//! | module | concern |
//! | --- | --- |
//! | [`tensor`] | the dense tensor, dtypes, float16/bfloat16 rounding, checked shape arithmetic |
//! | [`error`] | the contract's error kinds and the error value the ops return |
//! | [`ops`] | the three ops: semantics, argument checks in PyTorch's order, forward and backward |
//! | [`kernels`] | the numeric kernels behind the ops |
//! | [`golden`] | the golden file format, strict parsing, discovery |
//! | [`judge`] | comparison (assert_close, ulp), judging an outcome, expectations files |
//! | [`impls`] | the implementations under test: native, Candle, candle-nn, external |
//! | [`harness`] | the libtest-mimic matrix (implementation x case) and the one-call gate for other crates |
//! | [`runner`] | a whole `nllspec run`: files x implementations into a report |
//! | [`report`] | human, json, junit and markdown reports |
//! | [`accuracy`] | the accuracy report: ulp error against a higher-precision computation |
//! | [`spec`] | spec case files: strict reading and the golden ids they expand to |

#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod accuracy;
pub mod error;
pub mod explain;
pub mod golden;
pub mod harness;
pub mod impls;
pub mod judge;
pub mod kernels;
pub mod ops;
pub mod report;
pub mod runner;
pub mod spec;
pub mod tensor;

pub use error::{ErrorKind, OpError};
pub use tensor::{DType, Data, Tensor};
