//! Spec case files (spec/cases/, written by people), read for consistency checks.
//!
//! golden/export.py is what turns spec cases into golden files; this module reads the same
//! files strictly and expands each case into the golden ids it must produce
//! (`<id>[/<attr>=<value>...]@<dtype>`), so that `cargo test` can tell, without torch, when a
//! spec case has no golden, a golden has no spec case, or a golden is stale.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;

const CASE_KEYS: &[&str] = &[
    "id",
    "op",
    "note",
    "tags",
    "dtypes",
    "inputs",
    "attrs",
    "matrix",
    "backward",
    "expect_error",
    "tolerance",
];
const TENSOR_KEYS: &[&str] = &[
    "dtype", "shape", "data", "gen", "seed", "scale", "mean", "low", "high", "value", "specials",
    "dim",
];
const FLOATS: &[&str] = &["float16", "bfloat16", "float32", "float64"];

/// A spec file, checked, with the golden ids it expands to.
#[derive(Debug, Clone)]
pub struct SpecFile {
    /// The spec case ids, in file order.
    pub case_ids: Vec<String>,
    /// Every golden id the exporter must write for this file.
    pub golden_ids: BTreeSet<String>,
    /// sha256 of the file's bytes, as the exporter records it in `generator.spec_sha256`.
    pub sha256: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id fragment of a matrix value, as export.py's `id_fragment` writes it.
fn fragment(v: &Value) -> Result<String, String> {
    Ok(match v {
        Value::Null => "None".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().ok_or("bad number")?;
            if f != 0.0 && !(1e-4..1e15).contains(&f.abs()) {
                return Err(format!("matrix float {f} must lie in [1e-4, 1e15)"));
            }
            // Python's repr of a float in that range: Rust's Debug gives the same digits.
            format!("{f:?}")
        }
        other => return Err(format!("matrix value {other} is not a scalar")),
    })
}

/// A spec file that cannot be used: the file, where in it (`cases[3]`,
/// `cases[3].inputs.target`), and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: std::path::PathBuf,
    pub at: Option<String>,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(at) = &self.at {
            write!(f, ": {at}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SpecError {}

/// Reads and checks a spec file. `prefix` is the id prefix its path imposes
/// (`nll_loss/weight/` for spec/cases/nll_loss/weight.json); `tags` the allowed tags.
pub fn read_spec(
    path: &Path,
    prefix: &str,
    tags: &BTreeSet<String>,
) -> Result<SpecFile, SpecError> {
    let err = |at: Option<&str>, message: String| SpecError {
        file: path.to_path_buf(),
        at: at.map(str::to_string),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| err(None, e.to_string()))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| err(None, e.to_string()))?;
    let top = doc
        .as_object()
        .ok_or_else(|| err(None, "not an object".into()))?;
    for k in top.keys() {
        if k != "cases" && k != "note" {
            return Err(err(None, format!("unknown key \"{k}\"")));
        }
    }
    let cases = top
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| err(None, "no cases array".into()))?;
    let mut out = SpecFile {
        case_ids: vec![],
        golden_ids: BTreeSet::new(),
        sha256: sha256_hex(&bytes),
    };
    for (i, c) in cases.iter().enumerate() {
        let at = format!("cases[{i}]");
        let m = c
            .as_object()
            .ok_or_else(|| err(Some(&at), "not an object".into()))?;
        for k in m.keys() {
            if !CASE_KEYS.contains(&k.as_str()) {
                return Err(err(Some(&at), format!("unknown key \"{k}\"")));
            }
        }
        let id = m
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| err(Some(&at), "no id".into()))?;
        if !id.starts_with(prefix) || id.contains('@') || !crate::golden::format::valid_id(id) {
            return Err(err(
                Some(&at),
                format!("id \"{id}\" must start with \"{prefix}\" and use [A-Za-z0-9_./=-]"),
            ));
        }
        for (name, t) in m
            .get("inputs")
            .and_then(Value::as_object)
            .ok_or_else(|| err(Some(&at), "no inputs".into()))?
        {
            for k in t
                .as_object()
                .ok_or_else(|| err(Some(&format!("{at}.inputs.{name}")), "not an object".into()))?
                .keys()
            {
                if !TENSOR_KEYS.contains(&k.as_str()) {
                    return Err(err(
                        Some(&format!("{at}.inputs.{name}")),
                        format!("unknown key \"{k}\""),
                    ));
                }
            }
        }
        for t in m
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let t = t
                .as_str()
                .ok_or_else(|| err(Some(&at), "tags must be strings".into()))?;
            if !tags.contains(t) {
                return Err(err(
                    Some(&at),
                    format!("unknown tag \"{t}\" (spec/tags.json)"),
                ));
            }
        }
        if let Some(k) = m.get("expect_error") {
            let k = k.as_str().unwrap_or("");
            if crate::error::ErrorKind::parse(k).is_none() {
                return Err(err(Some(&at), format!("unknown error kind \"{k}\"")));
            }
        }
        let dtypes: Vec<String> = match m.get("dtypes") {
            None => FLOATS.iter().map(|s| s.to_string()).collect(),
            Some(v) => v
                .as_array()
                .ok_or_else(|| err(Some(&at), "dtypes must be a list".into()))?
                .iter()
                .map(|d| {
                    d.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| err(Some(&at), "dtypes must be strings".into()))
                })
                .collect::<Result<_, _>>()?,
        };
        // matrix keys in sorted order (as export.py expands them), values in order
        let mut suffixes = vec![String::new()];
        if let Some(matrix) = m.get("matrix") {
            let matrix = matrix
                .as_object()
                .ok_or_else(|| err(Some(&at), "matrix must be an object".into()))?;
            let mut keys: Vec<&String> = matrix.keys().collect();
            keys.sort();
            for k in keys {
                let vals = &matrix[k];
                let vals = vals
                    .as_array()
                    .ok_or_else(|| err(Some(&at), format!("matrix.{k} must be a list")))?;
                let mut next = Vec::new();
                for s in &suffixes {
                    for v in vals {
                        next.push(format!(
                            "{s}/{k}={}",
                            fragment(v).map_err(|e| err(Some(&at), e))?
                        ));
                    }
                }
                suffixes = next;
            }
        }
        for d in &dtypes {
            for s in &suffixes {
                out.golden_ids.insert(format!("{id}{s}@{d}"));
            }
        }
        out.case_ids.push(id.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_match_python_repr() {
        // Python: repr(0.1) '0.1', repr(1.0) '1.0', repr(10000000000.0) '10000000000.0'
        assert_eq!(fragment(&serde_json::json!(0.1)).unwrap(), "0.1");
        assert_eq!(fragment(&serde_json::json!(1.0)).unwrap(), "1.0");
        assert_eq!(
            fragment(&serde_json::json!(10000000000.0)).unwrap(),
            "10000000000.0"
        );
        assert_eq!(fragment(&serde_json::json!(-100)).unwrap(), "-100");
        assert_eq!(fragment(&serde_json::json!(null)).unwrap(), "None");
        assert!(fragment(&serde_json::json!(1e-5)).is_err());
    }

    #[test]
    fn errors_name_the_file_and_the_place() {
        let dir = std::env::temp_dir().join(format!("nllspec-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("weight.json");
        std::fs::write(&path, r#"{"cases": [{"id": "nll_loss/weight/a", "inputs": {"input": {"shape": [2], "dtpye": "x"}}}]}"#).unwrap();
        let e = read_spec(&path, "nll_loss/weight/", &BTreeSet::new()).unwrap_err();
        assert_eq!(
            (e.at.as_deref(), e.message.as_str()),
            (Some("cases[0].inputs.input"), "unknown key \"dtpye\"")
        );
        assert_eq!(
            e.to_string(),
            format!(
                "{}: cases[0].inputs.input: unknown key \"dtpye\"",
                path.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
