//! A shrunk or generated case written as a spec case (spec/FORMAT.md, "Spec case files"), so
//! that `golden/export.py` turns it into a golden case with PyTorch's own answer: every tensor
//! literal, its dtype explicit, the gradient included.

use super::oracle;
use super::shrink::Subject;
use crate::golden::format::{Expected, tensor_to_json};
use crate::ops::Call;
use crate::tensor::Tensor;
use serde_json::{Map, Value, json};
use std::path::Path;

fn literal(t: &Tensor, dtype: &str) -> Value {
    let j = tensor_to_json(t);
    json!({"dtype": dtype, "shape": j["shape"], "data": j["data"]})
}

/// The spec case for `subject`, with id `id` (which must start with its file's path under
/// spec/cases) and `note` saying where it came from.
pub fn spec_case(id: &str, subject: &Subject, note: &str, tags: &[&str]) -> Value {
    let c = &subject.call;
    let mut inputs = Map::new();
    inputs.insert("input".into(), literal(c.input(), "case"));
    if let Some(t) = c.target() {
        inputs.insert("target".into(), literal(t, t.dtype().name()));
    }
    if let Some(w) = c.weight() {
        inputs.insert("weight".into(), literal(w, w.dtype().name()));
    }
    if let Some(g) = &subject.grad_output {
        inputs.insert("grad_output".into(), literal(g, g.dtype().name()));
    }
    let attrs = match c {
        Call::LogSoftmax { dim, .. } => json!({"dim": dim}),
        Call::NllLoss {
            reduction,
            ignore_index,
            ..
        } => json!({"reduction": reduction, "ignore_index": ignore_index}),
        Call::CrossEntropy {
            reduction,
            ignore_index,
            label_smoothing,
            ..
        } => {
            json!({"reduction": reduction, "ignore_index": ignore_index, "label_smoothing": label_smoothing})
        }
    };
    let mut case = json!({
        "id": id,
        "op": c.op().name(),
        "note": note,
        "tags": tags,
        "dtypes": [c.input().dtype().name()],
        "inputs": inputs,
        "attrs": attrs,
    });
    if subject.grad_output.is_some() {
        case["backward"] = true.into();
    }
    if let Expected::Error(e) =
        oracle::case(id, subject.call.clone(), subject.grad_output.clone()).expected
    {
        case["expect_error"] = e.kind.name().into();
    }
    case
}

/// Adds (or replaces, by id) `cases` in the spec file at `path`, creating it if need be.
pub fn write(path: &Path, cases: &[Value], file_note: &str) -> std::io::Result<()> {
    let mut doc: Value = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(std::io::Error::other)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            json!({"note": file_note, "cases": []})
        }
        Err(e) => return Err(e),
    };
    let list = doc
        .get_mut("cases")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| std::io::Error::other("no \"cases\" list"))?;
    for case in cases {
        list.retain(|c| c["id"] != case["id"]);
        list.push(case.clone());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        path,
        serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)? + "\n",
    )
}

/// A spec file's id prefix: `<op dir>/<file stem>` (`nll_loss/shrunk_numpy` for
/// `.../nll_loss/shrunk_numpy.json`), as golden/export.py requires of a file under spec/cases.
pub fn id_prefix(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    match path.parent().and_then(Path::file_name) {
        Some(dir) => format!("{}/{stem}", dir.to_string_lossy()),
        None => stem,
    }
}

/// A spec-id-safe name for a golden id (`a/b/reduction=mean@float16` → `a.b.reduction-mean.float16`).
pub fn name_of(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            '/' | '@' => '.',
            '=' => '-',
            c if c.is_ascii_alphanumeric() || "_.-".contains(c) => c,
            _ => '_',
        })
        .collect()
}
