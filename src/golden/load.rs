//! Discovery and loading of golden files: `*.json` under a directory, recursively, in sorted
//! order; strict parsing; case ids unique across everything loaded together.

use super::format::{Case, FormatError, GoldenFile, parse_document};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Golden files above this size are refused before reading (the shipped suite's largest file
/// is about 13 MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Why a golden file or set of files cannot be used. Exit status 2 in the CLI.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// The case, when the problem is one case's.
    pub case_id: Option<String>,
    /// The field within it.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(id) = &self.case_id {
            write!(f, ": case {id}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    fn file(file: &Path, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_path_buf(),
            case_id: None,
            field: None,
            message: message.into(),
        }
    }

    fn format(file: &Path, e: FormatError) -> LoadError {
        LoadError {
            file: file.to_path_buf(),
            case_id: e.case_id,
            field: Some(e.path),
            message: e.message,
        }
    }
}

/// A case and the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    /// The golden file it came from.
    pub file: PathBuf,
    /// The case.
    pub case: Case,
}

/// Every `*.json` file under each path (a file is taken as it is), sorted, deduplicated.
/// A path that holds no golden file is an error: a typo must not pass as an empty suite.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        let meta =
            std::fs::metadata(p).map_err(|e| LoadError::file(p, format!("cannot read: {e}")))?;
        if meta.is_file() {
            files.push(p.clone());
            continue;
        }
        let before = files.len();
        walk(p, &mut files)?;
        if files.len() == before {
            return Err(LoadError::file(
                p,
                "no *.json golden files in this directory",
            ));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| LoadError::file(dir, format!("cannot list: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| LoadError::file(dir, format!("cannot list: {e}")))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| LoadError::file(&path, e.to_string()))?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and parses one golden file.
pub fn load_file(path: &Path) -> Result<GoldenFile, LoadError> {
    let meta =
        std::fs::metadata(path).map_err(|e| LoadError::file(path, format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::file(
            path,
            format!(
                "{} bytes is more than the {MAX_FILE_BYTES}-byte limit",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| LoadError::file(path, format!("cannot read: {e}")))?;
    parse_bytes(path, &bytes)
}

/// Parses golden-file bytes; `path` only names the file in errors.
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<GoldenFile, LoadError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| LoadError::file(path, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    if text.trim().is_empty() {
        return Err(LoadError::file(path, "empty file"));
    }
    let doc: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| LoadError::file(path, format!("not valid JSON: {e}")))?;
    parse_document(&doc).map_err(|e| LoadError::format(path, e))
}

/// Loads every file, checking that case ids are unique across all of them.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<LoadedCase>, LoadError> {
    let mut out = Vec::new();
    for_each_case(&discover(paths)?, |file, case| {
        out.push(LoadedCase {
            file: file.to_path_buf(),
            case,
        })
    })?;
    Ok(out)
}

/// Hands `f` every case of `files`, in order, one file in memory at a time, checking that case
/// ids are unique across all of them (the one place that check is made).
pub fn for_each_case(files: &[PathBuf], mut f: impl FnMut(&Path, Case)) -> Result<(), LoadError> {
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        for case in load_file(file)?.cases {
            if let Some(first) = seen.get(&case.id) {
                return Err(LoadError {
                    file: file.clone(),
                    case_id: Some(case.id.clone()),
                    field: Some("id".into()),
                    message: format!("duplicate case id (first in {})", first.display()),
                });
            }
            seen.insert(case.id.clone(), file.clone());
            f(file, case);
        }
    }
    Ok(())
}

/// The golden suite `--golden` defaults to: always the suite compiled into this binary (the one
/// `--version` names). It is read from the checkout's golden/ when this binary runs beside the
/// repository it was built from and those files are still exactly the ones embedded (reports
/// then name golden/'s files), else from the embedded copy (written out once to a cache
/// directory, [`super::embedded`]). `NLLSPEC_GOLDEN=embedded` forces the latter.
#[cfg(feature = "embedded")]
pub fn default_golden_dir() -> PathBuf {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let forced = std::env::var_os("NLLSPEC_GOLDEN").is_some_and(|v| v == "embedded");
    if checkout.is_dir()
        && !forced
        && super::embedded::unchanged_since_build(&checkout, super::embedded::STAMPS)
    {
        return checkout;
    }
    // An unwritable cache leaves the checkout's path, whose absence the loader reports.
    super::embedded::directory().unwrap_or(checkout)
}

/// The golden suite `--golden` defaults to, built without the `embedded` feature (a
/// framework's gate): the golden/ of the nllspec package it was built from.
#[cfg(not(feature = "embedded"))]
pub fn default_golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}
