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

const BUGS: [&str; 7] = [
    "mean-ignores-weights",
    "ignored-in-denominator",
    "no-bounds-check",
    "implicit-dim-last",
    "smoothing-over-c-minus-1",
    "grad-sign",
    "all-ignored-zero",
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

fn gate(bug: Option<&str>) -> Result<(String, Option<i32>), Failed> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/numpy_impl.py");
    let mut imp = format!("exec:{} {script}", python());
    if let Some(b) = bug {
        imp.push_str(&format!(" --bug {b}"));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args(["run", "--impl", &imp, "--format", "json"])
        .output()
        .map_err(|e| format!("cannot run nllspec: {e}"))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((report["summary"].to_string(), out.status.code()))
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
                let (summary, code) = gate(None)?;
                if code != Some(0) {
                    return Err(format!("exit {code:?}, expected 0: {summary}").into());
                }
                Ok(())
            })
            .with_ignored_flag(!have),
        );
        for bug in BUGS {
            trials.push(
                Trial::test(format!("numpy_gate/bug={bug}_is_caught"), move || {
                    let (summary, code) = gate(Some(bug))?;
                    if code != Some(1) {
                        return Err(format!(
                            "exit {code:?}, expected 1 (the suite missed the bug): {summary}"
                        )
                        .into());
                    }
                    Ok(())
                })
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
        let out = Command::new(env!("CARGO_BIN_EXE_nllspec"))
            .args(["run", "--impl", &imp, "--format", "json"])
            .output()
            .map_err(|e| format!("cannot run nllspec: {e}"))?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "no JSON report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        let s = &report["summary"];
        if out.status.code() != Some(0) || s["passed"] != s["total"] {
            return Err(format!(
                "exit {:?}, expected 0 with every case passed: {s}",
                out.status.code()
            )
            .into());
        }
        Ok(())
    })
    .with_ignored_flag(!have)
}
