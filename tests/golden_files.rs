//! The golden files against their spec cases, and their review snapshots.
//!
//! - every spec file has a golden file, and every golden file a spec file;
//! - a golden file is current: its `generator.spec_sha256` is the spec file's hash, and its
//!   case ids are exactly those the spec expands to (a missing or stale golden is a failure,
//!   not a skip);
//! - a readable summary of each golden file is an insta snapshot, so that a regeneration is
//!   reviewed with `cargo insta review` as a diff of ids, shapes, messages and value digests;
//! - spec/COUNTS.md is what `nllspec list --counts` prints.

use nllspec::golden::format::{Call, Case, Expected};
use nllspec::golden::load::{discover, load_file};
use nllspec::spec::{read_spec, sha256_hex};
use nllspec::tensor::Tensor;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tags() -> BTreeSet<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("spec/tags.json")).unwrap()).unwrap();
    v.as_object().unwrap().keys().cloned().collect()
}

fn rel(p: &Path, base: &Path) -> String {
    p.strip_prefix(base)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

/// What is wrong between a spec tree and a golden tree: missing, stale or orphaned files, and
/// case ids that do not match their spec cases.
fn problems(spec_dir: &Path, golden_dir: &Path) -> Vec<String> {
    let specs = discover(&[spec_dir.to_path_buf()]).unwrap();
    let goldens = discover(&[golden_dir.to_path_buf()]).unwrap();
    assert!(
        !specs.is_empty() && !goldens.is_empty(),
        "no spec or golden files: refusing to pass on nothing"
    );
    let tags = tags();
    let mut problems = Vec::new();
    for spec_path in &specs {
        let r = rel(spec_path, spec_dir);
        let prefix = format!("{}/", r.trim_end_matches(".json"));
        let spec = match read_spec(spec_path, &prefix, &tags) {
            Ok(s) => s,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let golden_path = golden_dir.join(&r);
        if !golden_path.exists() {
            problems.push(format!(
                "spec/cases/{r}: no golden file (run golden/export.py)"
            ));
            continue;
        }
        let golden = load_file(&golden_path).unwrap_or_else(|e| panic!("{e}"));
        let recorded = golden
            .generator
            .get("spec_sha256")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if recorded != spec.sha256 {
            problems.push(format!(
                "golden/{r}: stale: spec/cases/{r} changed since the export (run golden/export.py)"
            ));
        }
        let ids: BTreeSet<String> = golden.cases.iter().map(|c| c.id.clone()).collect();
        for missing in spec.golden_ids.difference(&ids) {
            problems.push(format!(
                "golden/{r}: no golden case {missing} for its spec case"
            ));
        }
        for extra in ids.difference(&spec.golden_ids) {
            problems.push(format!("golden/{r}: golden case {extra} has no spec case"));
        }
    }
    for g in &goldens {
        let r = rel(g, golden_dir);
        if !spec_dir.join(&r).exists() {
            problems.push(format!("golden/{r}: no spec file spec/cases/{r}"));
        }
    }
    problems
}

#[test]
fn every_spec_file_has_a_current_golden_file() {
    let found = problems(&root().join("spec/cases"), &root().join("golden"));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn a_stale_or_mismatched_golden_is_detected() {
    // The check above must be able to fail: a tree of one spec file and its golden file,
    // broken in each way the check names.
    let tree = |name: &str,
                edit_spec: &dyn Fn(&mut Vec<u8>),
                edit_golden: &dyn Fn(&mut serde_json::Value)| {
        let d = std::env::temp_dir().join(format!(
            "nllspec-golden-check-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        for sub in ["spec/nll_loss", "golden/nll_loss"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let mut spec = std::fs::read(root().join("spec/cases/nll_loss/seed.json")).unwrap();
        edit_spec(&mut spec);
        std::fs::write(d.join("spec/nll_loss/seed.json"), spec).unwrap();
        let mut golden: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root().join("golden/nll_loss/seed.json")).unwrap(),
        )
        .unwrap();
        edit_golden(&mut golden);
        std::fs::write(d.join("golden/nll_loss/seed.json"), golden.to_string()).unwrap();
        problems(&d.join("spec"), &d.join("golden"))
    };
    assert!(
        tree("intact", &|_| {}, &|_| {}).is_empty(),
        "the copied tree is current"
    );
    let stale = tree("stale", &|s| s.push(b' '), &|_| {});
    assert!(stale.iter().any(|p| p.contains("stale")), "{stale:?}");
    let missing = tree("missing", &|_| {}, &|g| {
        g["cases"].as_array_mut().unwrap().remove(0);
    });
    assert!(
        missing
            .iter()
            .any(|p| p.contains("no golden case nll_loss/seed/")),
        "{missing:?}"
    );
}

fn digest(t: &Tensor) -> String {
    let text = serde_json::to_string(&nllspec::golden::format::tensor_to_json(t)).unwrap();
    let vals = t.to_f64_vec();
    let head: Vec<String> = vals.iter().take(3).map(|v| format!("{v:.6e}")).collect();
    let more = if vals.len() > 3 { ", ..." } else { "" };
    format!(
        "{} {:?} [{}{more}] #{}",
        t.dtype(),
        t.shape(),
        head.join(", "),
        &sha256_hex(text.as_bytes())[..12]
    )
}

fn summary(cases: &[Case]) -> String {
    let mut out = String::new();
    for c in cases {
        writeln!(out, "{}", c.id).unwrap();
        let k = &c.call;
        let mut ins = format!("  in: input {} {:?}", k.input().dtype(), k.input().shape());
        for (k, t) in [
            ("target", k.target()),
            ("weight", k.weight()),
            ("grad_output", c.grad_output.as_ref()),
        ] {
            if let Some(t) = t {
                write!(ins, ", {k} {} {:?}", t.dtype(), t.shape()).unwrap();
            }
        }
        writeln!(out, "{ins}").unwrap();
        let attrs = match &c.call {
            Call::LogSoftmax { dim, .. } => format!("dim={dim:?}"),
            Call::NllLoss {
                reduction,
                ignore_index,
                ..
            } => format!("reduction={reduction} ignore_index={ignore_index}"),
            Call::CrossEntropy {
                reduction,
                ignore_index,
                label_smoothing,
                ..
            } => {
                format!(
                    "reduction={reduction} ignore_index={ignore_index} label_smoothing={label_smoothing}"
                )
            }
        };
        writeln!(out, "  attrs: {attrs}").unwrap();
        match &c.expected {
            Expected::Error(e) => writeln!(
                out,
                "  error: {} ({}: {})",
                e.kind,
                e.type_name(),
                e.message
            )
            .unwrap(),
            Expected::Values { torch, reference } => {
                writeln!(out, "  output: {}", digest(&torch.output)).unwrap();
                if let Some(g) = &torch.grad_input {
                    writeln!(out, "  grad_input: {}", digest(g)).unwrap();
                }
                if let Some(r) = reference {
                    writeln!(out, "  reference output: {}", digest(&r.output)).unwrap();
                }
            }
        }
        if let Some((t, reason)) = &c.tolerance {
            writeln!(
                out,
                "  tolerance: rtol {} atol {} ({reason})",
                t.rtol, t.atol
            )
            .unwrap();
        }
        if !c.tags.is_empty() {
            writeln!(out, "  tags: {}", c.tags.join(", ")).unwrap();
        }
    }
    out
}

#[test]
fn golden_review_snapshots() {
    let golden_dir = root().join("golden");
    let files = discover(std::slice::from_ref(&golden_dir)).unwrap();
    assert!(!files.is_empty());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for f in files {
            let golden = load_file(&f).unwrap_or_else(|e| panic!("{e}"));
            let name = rel(&f, &golden_dir)
                .trim_end_matches(".json")
                .replace('/', "__");
            let mut text = format!("generator: {}\n\n", golden.generator);
            text.push_str(&summary(&golden.cases));
            insta::assert_snapshot!(name, text);
        }
    });
}

#[test]
fn counts_file_is_current() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args(["list", "--counts"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected = String::from_utf8(out.stdout).unwrap();
    let actual = std::fs::read_to_string(root().join("spec/COUNTS.md")).unwrap();
    assert_eq!(
        actual, expected,
        "spec/COUNTS.md is stale: cargo run -- list --counts > spec/COUNTS.md"
    );
}
