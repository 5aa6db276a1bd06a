//! What the command-line tests share: running the built binary, and where the checkout is.
//! (Each test binary compiles this module and uses part of it.)
#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `nllspec` binary this test build made.
pub fn nllspec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args(args)
        .output()
        .expect("nllspec runs")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped nll_loss seed cases, a small real golden file: values with a gradient in every
/// float dtype, and errors.
pub fn seed() -> String {
    root()
        .join("golden/nll_loss/seed.json")
        .display()
        .to_string()
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nllspec-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

pub fn python() -> String {
    std::env::var("NLLSPEC_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The answers the replaying implementation gives: `f` maps each golden case to its response
/// (without "id"); the default is PyTorch's own values or error kind.
pub fn answers(golden: &str, f: impl Fn(&Value, Value) -> Value) -> Value {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
    let mut out = serde_json::Map::new();
    for case in doc["cases"].as_array().unwrap() {
        let e = &case["expected"];
        let exact = match e.get("error") {
            Some(err) => json!({"error": {"kind": err["kind"], "message": err["message"]}}),
            None => {
                let mut r = json!({"output": e["output"]});
                if let Some(g) = e.get("grad_input") {
                    r["grad_input"] = g.clone();
                }
                r
            }
        };
        out.insert(case["id"].as_str().unwrap().to_string(), f(case, exact));
    }
    Value::Object(out)
}

/// `exec:` command replaying `answers`, with the fixture's extra flags.
pub fn replay(dir: &Path, answers: &Value, flags: &str) -> String {
    let file = write(dir, "answers.json", &answers.to_string());
    let script = root().join("tests/fixtures/replay_impl.py");
    format!("exec:{} {} {file} {flags}", python(), script.display())
}

/// `nllspec run --golden <the seed file> ARGS --format json`: exit status, report, stderr.
pub fn run_seed(args: &[&str]) -> (Option<i32>, Value, String) {
    let golden = seed();
    let mut all = vec!["run", "--golden", golden.as_str()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = nllspec(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let r = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), r, stderr)
}
