//! Gating a Rust implementation with nllspec: the whole of it.
//!
//! In your crate, put this in `tests/nllspec.rs` with `harness = false` in Cargo.toml
//! (`[[test]] name = "nllspec" harness = false`), add nllspec as a dev-dependency, and
//! `cargo test` runs the shipped golden suite against your implementation, one test per case
//! (`cargo test -- log_softmax/seed` filters). Here it is an example you can run:
//!
//!     cargo run --example rust_gate
//!     cargo run --example rust_gate -- --list
//!
//! The implementation (examples/gate-crate/tests/nllspec.rs: the standalone gate crate beside
//! this file runs the same code) is deliberately simple: a naive float64 log_softmax, and `unsupported` for the
//! losses. It passes every log_softmax case and skips the rest.

#[path = "gate-crate/tests/nllspec.rs"]
mod gate;

fn main() {
    gate::main();
}
