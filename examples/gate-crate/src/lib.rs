//! Stands for a framework's own crate: its ops would be here. The gate against nllspec is a
//! test (tests/nllspec.rs), so nllspec is only a dev-dependency.
