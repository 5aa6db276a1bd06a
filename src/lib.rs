//! nllspec: a conformance suite and reference kernels for LogSoftmax, NLLLoss and
//! CrossEntropyLoss, with PyTorch 2.15 (CPU) as the specification.
//!
//! The library a framework's Rust gate uses:
//!
//! | module | concern |
//! | --- | --- |
//! | [`tensor`] | the dense tensor, dtypes, float16/bfloat16 rounding, checked shape arithmetic |
//! | [`error`] | the contract's error kinds and the error value the ops return |
//! | [`ops`] | the three ops: semantics, argument checks in PyTorch's order, forward and backward |
//! | [`golden`] | the golden file format, strict parsing, discovery |
//! | [`judge`] | comparison (assert_close, ulp), judging an outcome, expectations files |
//! | [`impls`] | the implementation trait, and the implementations under test: native, Candle, candle-nn, external |
//! | [`execution`] | one case under one implementation, judged: the path both drivers take |
//! | [`harness`] | the libtest-mimic matrix and the one-call gate for other crates |
//!
//! Built with `default-features = false` (a framework's gate), the crate is those modules and
//! the runner and reports; the `cli` feature (the default) adds the Candle implementations,
//! explain, fuzz and shrink, the embedded suite and the binary.
//!
//! The command line's own modules (`kernels`, `fuzz`, `interrupt`, `repro`, `runner`, `report`, `accuracy`, `spec`,
//! `explain`) are reachable for its binary, benchmarks and tests but hidden from the
//! documentation: they are not a stable interface.

#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(missing_docs)]

pub mod error;
pub mod execution;
pub mod golden;
pub mod harness;
pub mod impls;
pub mod judge;
pub mod ops;
pub mod tensor;

#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod accuracy;
#[cfg(feature = "explain")]
#[doc(hidden)]
pub mod explain;
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz;
#[doc(hidden)]
pub mod interrupt;
#[doc(hidden)]
pub mod kernels;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod repro;
#[doc(hidden)]
pub mod runner;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod spec;

pub use error::{Check, ErrorKind, OpError};
pub use tensor::{DType, Data, Tensor};
