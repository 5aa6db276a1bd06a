//! Golden files: the format (contract section 1) and their discovery and loading.

#[cfg(feature = "embedded")]
pub mod embedded;
pub mod format;
pub mod load;
