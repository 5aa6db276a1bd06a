//! The gate has teeth: examples/numpy_impl.py passes the shipped suite through protocol 1,
//! and each of its planted bugs (`--bug NAME`) makes the suite fail. And PyTorch itself, through
//! adapters/torch_impl.py, passes the whole suite on CPU (the specification judged by itself),
//! where the golden exporter's venv (.venv, or NLLSPEC_TORCH_PYTHON) has torch.
//!
//! Needs Python with NumPy: `NLLSPEC_PYTHON` names the interpreter (default `python3`). Where
//! NumPy is missing the trials are reported as ignored, with that reason, unless
//! `NLLSPEC_REQUIRE_NUMPY=1` (set by .ci/run), which turns the absence into a failure.

use libtest_mimic::{Arguments, Failed, Trial};
use std::process::Command;

/// Each planted bug (examples/numpy_impl.py's BUGS), the causes its failures may have, and a
/// case family that must be among them: the bug is caught by its own cases, and nothing else
/// fails.
const BUGS: [(&str, &[&str], &str); 7] = [
    (
        "mean-ignores-weights",
        &["output: values differ"],
        "nll_loss/weight/",
    ),
    (
        "ignored-in-denominator",
        &["output: values differ"],
        "nll_loss/ignore_index/",
    ),
    (
        "no-bounds-check",
        &[
            "expected error kind target_out_of_bounds, got values",
            "the process exited (exit status: N) without answering",
        ],
        "nll_loss/errors/target_out_of_bounds",
    ),
    (
        "implicit-dim-last",
        &["output: values differ"],
        "log_softmax/dims/",
    ),
    (
        "smoothing-over-c-minus-1",
        &[
            "output: values differ",
            "the process exited (exit status: N) without answering",
        ],
        "cross_entropy/label_smoothing/",
    ),
    (
        "grad-sign",
        &["grad_input: values differ"],
        "log_softmax/seed/",
    ),
    (
        "all-ignored-zero",
        &["output: values differ"],
        "nll_loss/ignore_index/all_ignored",
    ),
];

fn python() -> String {
    std::env::var("NLLSPEC_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn numpy_available(py: &str) -> bool {
    Command::new(py)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The `exec:` spec of the NumPy example, with a planted bug.
fn numpy_impl(bug: Option<&str>) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/numpy_impl.py");
    let mut imp = format!("numpy=exec:{} {script}", python());
    if let Some(b) = bug {
        imp.push_str(&format!(" --bug {b}"));
    }
    imp
}

fn nllspec(args: &[&str]) -> Result<std::process::Output, Failed> {
    Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run nllspec: {e}").into())
}

/// The gate's JSON report and exit status.
fn gate(bug: Option<&str>) -> Result<(serde_json::Value, Option<i32>), Failed> {
    let out = nllspec(&["run", "--impl", &numpy_impl(bug), "--format", "json"])?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((report, out.status.code()))
}

/// The failing results' ids and causes.
fn failures(report: &serde_json::Value) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["status"] == "fail")
                .map(|r| {
                    (
                        r["id"].as_str().unwrap_or("").to_string(),
                        r["cause"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn caught(bug: &str, causes: &[&str], family: &str) -> Result<(), Failed> {
    let (report, code) = gate(Some(bug))?;
    let failed = failures(&report);
    if code != Some(1) || !failed.iter().any(|(id, _)| id.starts_with(family)) {
        return Err(format!(
            "exit {code:?}: no {family}* case fails (the suite missed the bug): {}",
            report["summary"]
        )
        .into());
    }
    let other: Vec<&(String, String)> = failed
        .iter()
        .filter(|(_, c)| !causes.contains(&c.as_str()))
        .collect();
    if !other.is_empty() {
        return Err(format!("failures the bug does not explain: {other:?}").into());
    }
    Ok(())
}

/// `nllspec fuzz` with a fixed seed finds the bug within 3000 cases, as one of the causes its
/// golden failures have.
fn fuzz_finds(bug: Option<&str>, causes: &[&str]) -> Result<(), Failed> {
    let dir = std::env::temp_dir().join(format!(
        "nllspec-fuzz-{}-{}",
        std::process::id(),
        bug.unwrap_or("none")
    ));
    let out = nllspec(&[
        "fuzz",
        "--impl",
        &numpy_impl(bug),
        "--cases",
        "3000",
        "--seed",
        "1",
        "--out",
        &dir.display().to_string(),
    ])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    match bug {
        None if out.status.code() == Some(0) && text.contains("0 behaviours found") => Ok(()),
        None => Err(format!(
            "the correct implementation: exit {:?}\n{text}",
            out.status.code()
        )
        .into()),
        Some(_)
            if out.status.code() == Some(1)
                && causes.iter().any(|c| text.contains(&format!(": {c}\n"))) =>
        {
            let written = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
            if written == 0 {
                return Err(format!("no spec case written under {}\n{text}", dir.display()).into());
            }
            Ok(())
        }
        Some(_) => Err(format!(
            "exit {:?}, expected 1 with one of {causes:?}\n{text}",
            out.status.code()
        )
        .into()),
    }
}

/// `nllspec shrink` on the bug's first failing golden case of `family` ends with a handful of
/// elements, written as a spec case.
fn shrinks(bug: &str, family: &str) -> Result<(), Failed> {
    let (report, _) = gate(Some(bug))?;
    let (id, _) = failures(&report)
        .into_iter()
        .find(|(id, _)| id.starts_with(family))
        .ok_or("no failing case to shrink")?;
    let dir = std::env::temp_dir().join(format!("nllspec-shrink-{}-{bug}", std::process::id()));
    let out = nllspec(&[
        "shrink",
        &id,
        "--impl",
        &numpy_impl(Some(bug)),
        "--out",
        &dir.display().to_string(),
        "--time",
        "30",
    ])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let after = text
        .split(" -> ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| {
            format!(
                "exit {:?}: {text}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    if after > 8 {
        return Err(
            format!("{id} shrank to {after} elements, more than a handful:\n{text}").into(),
        );
    }
    if !text.contains("written: ") {
        return Err(format!("no spec case written:\n{text}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let py = python();
    let have = numpy_available(&py);
    let required = std::env::var("NLLSPEC_REQUIRE_NUMPY").is_ok_and(|v| v == "1");
    let mut trials = Vec::new();
    if !have && required {
        trials.push(Trial::test("numpy_gate/(python with numpy)", move || {
            Err(format!("NLLSPEC_REQUIRE_NUMPY=1 but `{py} -c 'import numpy'` fails").into())
        }));
    } else {
        trials.push(
            Trial::test("numpy_gate/correct_implementation_passes", || {
                let (report, code) = gate(None)?;
                if code != Some(0) {
                    return Err(format!("exit {code:?}, expected 0: {}", report["summary"]).into());
                }
                Ok(())
            })
            .with_ignored_flag(!have),
        );
        trials.push(
            Trial::test("fuzz/correct_implementation_finds_nothing", || {
                fuzz_finds(None, &[])
            })
            .with_ignored_flag(!have),
        );
        for (bug, causes, family) in BUGS {
            trials.push(
                Trial::test(format!("numpy_gate/bug={bug}_is_caught"), move || {
                    caught(bug, causes, family)
                })
                .with_ignored_flag(!have),
            );
            trials.push(
                Trial::test(format!("fuzz/bug={bug}_is_found"), move || {
                    fuzz_finds(Some(bug), causes)
                })
                .with_ignored_flag(!have),
            );
            trials.push(
                Trial::test(
                    format!("shrink/bug={bug}_shrinks_to_a_handful"),
                    move || shrinks(bug, family),
                )
                .with_ignored_flag(!have),
            );
        }
        if !have {
            eprintln!(
                "numpy_gate: `{py} -c 'import numpy'` fails: trials ignored (set NLLSPEC_PYTHON, or run .ci/run)"
            );
        }
    }
    trials.push(torch_trial());
    libtest_mimic::run(&args, trials).exit()
}

fn torch_trial() -> Trial {
    let root = env!("CARGO_MANIFEST_DIR");
    let py = std::env::var("NLLSPEC_TORCH_PYTHON")
        .unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
    let have = Command::new(&py)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!(
            "torch_adapter: no torch in {py}: trial ignored (python3 -m venv .venv && .venv/bin/pip install -r golden/requirements.txt)"
        );
    }
    Trial::test("torch_adapter/cpu_passes_the_whole_suite", move || {
        let imp = format!("torch=exec:{py} {root}/adapters/torch_impl.py");
        // its only entries: results that depend on the CPU (flaky, each with its reason)
        let exp = format!("{root}/adapters/expectations/torch.json");
        let out = Command::new(env!("CARGO_BIN_EXE_nllspec"))
            .args(["run", "--impl", &imp, "--expectations", &exp, "--format", "json"])
            .output()
            .map_err(|e| format!("cannot run nllspec: {e}"))?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "no JSON report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        let s = &report["summary"];
        let accepted = s["passed"].as_u64().unwrap_or(0) + s["flaky"].as_u64().unwrap_or(0);
        if out.status.code() != Some(0) || Some(accepted) != s["total"].as_u64() {
            return Err(format!(
                "exit {:?}, expected 0 with every case passed (or one of torch.json's machine-dependent ones): {s}",
                out.status.code()
            )
            .into());
        }
        Ok(())
    })
    .with_ignored_flag(!have)
}
