//! Reproducing a case outside the harness (issue 26): `nllspec show ID --torch` run under torch
//! 2.15 gives every golden case's answer, and `nllspec show ID --request` piped into an adapter
//! gives the answer the run judged. Trials that need torch (.venv, or NLLSPEC_TORCH_PYTHON) or
//! NumPy (NLLSPEC_PYTHON) are reported ignored, with a line saying why, where they are absent.

use libtest_mimic::{Arguments, Failed, Trial};
use nllspec::golden::format::Expected;
use nllspec::golden::load::load_all;
use nllspec::impls::Outcome;
use nllspec::impls::protocol::parse_response;
use nllspec::judge::{Messages, Verdict, judge};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn has(py: &str, module: &str) -> bool {
    Command::new(py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every golden case's snippet, run in one torch process, judged against the golden file.
fn torch_snippets_reproduce_every_case(py: &str) -> Result<(), Failed> {
    let cases = load_all(&[Path::new(ROOT).join("golden")]).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("nllspec-repro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let snippets: Vec<serde_json::Value> =
        cases.iter().map(|c| serde_json::json!({"id": c.case.id, "code": nllspec::repro::torch_snippet(&c.case)})).collect();
    let (input, output) = (dir.join("snippets.json"), dir.join("answers.jsonl"));
    std::fs::write(
        &input,
        serde_json::to_string(&snippets).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let run = Command::new(py)
        .arg(format!("{ROOT}/tests/fixtures/exec_snippets.py"))
        .args([&input, &output])
        .output()
        .map_err(|e| e.to_string())?;
    if !run.status.success() {
        return Err(format!(
            "the snippets' runner failed: {}",
            String::from_utf8_lossy(&run.stderr)
        )
        .into());
    }
    let answers = std::fs::read_to_string(&output).map_err(|e| e.to_string())?;
    let cpu_dependent = nllspec::judge::expectations::Expectations::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/expectations/torch.json"),
    )
    .map_err(|e| e.to_string())?;
    let mut wrong = Vec::new();
    for (line, c) in answers.lines().zip(&cases) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let verdict = match (&c.case.expected, v.get("error")) {
            (Expected::Error(e), Some(got)) => {
                let same = got["type"] == e.type_name() && got["message"] == e.message.as_str();
                if same {
                    Verdict::Pass
                } else {
                    Verdict::Unsupported(format!(
                        "raised {got}, expected {}: {}",
                        e.type_name(),
                        e.message
                    ))
                }
            }
            (_, Some(got)) => Verdict::Unsupported(format!("raised {got}")),
            (_, None) => {
                let mut response = serde_json::json!({"id": c.case.id, "output": v["output"]});
                if let Some(g) = v.get("grad_input") {
                    response["grad_input"] = g.clone();
                }
                let outcome =
                    parse_response(&response).unwrap_or_else(|e| Outcome::Broken(e.to_string()));
                judge(&c.case, &outcome, Messages::Verbatim)
            }
        };
        // a result that depends on the CPU PyTorch runs on is accepted where torch.json says so
        let machine_dependent = cpu_dependent.find(&c.case.id).is_some_and(|e| e.flaky);
        if verdict != Verdict::Pass && !machine_dependent {
            wrong.push(format!("{}: {verdict:?}", c.case.id));
        }
    }
    if answers.lines().count() != cases.len() {
        return Err(format!(
            "{} answers for {} cases",
            answers.lines().count(),
            cases.len()
        )
        .into());
    }
    if !wrong.is_empty() {
        return Err(format!(
            "{} of {} snippets differ from the golden answer:\n{}",
            wrong.len(),
            cases.len(),
            wrong.join("\n")
        )
        .into());
    }
    Ok(())
}

fn nllspec(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args(args)
        .output()
        .expect("nllspec runs")
}

/// The request `show --request` prints, piped into the NumPy example (with a planted bug), is
/// answered as in the run: the same verdict, and the detail's reproduce line is that command.
fn request_into_the_numpy_example(py: &str) -> Result<(), Failed> {
    let script = format!("{ROOT}/examples/numpy_impl.py");
    let command = format!("{py} {script} --bug grad-sign");
    let id = "log_softmax/seed/batch_3x5_dim1@float32";
    let run = nllspec(&[
        "run",
        "--impl",
        &format!("numpy=exec:{command}"),
        "--filter",
        id,
        "--format",
        "json",
    ]);
    let report: serde_json::Value =
        serde_json::from_slice(&run.stdout).map_err(|e| e.to_string())?;
    let row = &report["results"][0];
    let detail = row["detail"].as_str().unwrap_or_default();
    let want = format!("reproduce: nllspec show {id} --request | {command}");
    if row["status"] != "fail" || !detail.ends_with(&want) {
        return Err(
            format!("the run's result: {row}\nexpected a failure ending with: {want}").into(),
        );
    }
    let request = nllspec(&["show", id, "--request"]).stdout;
    let mut child = Command::new(py)
        .args([&script, "--bug", "grad-sign"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(&request)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let response: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let cases = load_all(&[PathBuf::from(format!(
        "{ROOT}/golden/log_softmax/seed.json"
    ))])
    .map_err(|e| e.to_string())?;
    let case = &cases
        .iter()
        .find(|c| c.case.id == id)
        .ok_or("no such case")?
        .case;
    let outcome = parse_response(&response).map_err(|e| e.to_string())?;
    match judge(case, &outcome, Messages::Kind) {
        Verdict::Fail(f)
            if Some(f.cause().as_str()) == row["cause"].as_str()
                && detail.starts_with(&f.detail()) =>
        {
            Ok(())
        }
        other => Err(format!("piped: {other:?}; the run: {row}").into()),
    }
}

/// `nllspec fuzz` with a fixed seed: nothing in native (its own oracle), divergences in
/// candle-nn (so that "nothing" is not a fuzzer that cannot fail), written as spec cases the
/// exporter accepts, and the same seed draws the same campaign.
fn fuzz_native_and_candle_nn() -> Result<(), Failed> {
    let dir = std::env::temp_dir().join(format!("nllspec-fuzz-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out_dir = dir.display().to_string();
    let fuzz = |imp: &str| {
        nllspec(&[
            "fuzz", "--impl", imp, "--cases", "3000", "--seed", "7", "--out", &out_dir,
        ])
    };
    let native = fuzz("native");
    let text = String::from_utf8_lossy(&native.stdout).to_string();
    if native.status.code() != Some(0)
        || !text.contains("3000 cases in")
        || !text.contains("0 behaviours found")
    {
        return Err(format!("native: exit {:?}\n{text}", native.status.code()).into());
    }
    let a = fuzz("candle-nn");
    let first = String::from_utf8_lossy(&a.stdout).to_string();
    if a.status.code() != Some(1) || !first.contains("=== ") {
        return Err(format!("candle-nn: exit {:?}\n{first}", a.status.code()).into());
    }
    // the same seed, the same behaviours, counts and minimal cases (timings aside)
    let again = String::from_utf8_lossy(&fuzz("candle-nn").stdout).to_string();
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.contains(" s)") && !l.contains("cases in"))
            .map(String::from)
            .collect()
    };
    if strip(&first) != strip(&again) {
        return Err(format!("seed 7 drew another campaign:\n{first}\n---\n{again}").into());
    }
    let written = dir.join("log_softmax/fuzz_candle-nn.json");
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&written).map_err(|e| format!("{}: {e}", written.display()))?,
    )
    .map_err(|e| e.to_string())?;
    let case = &doc["cases"][0];
    let id = case["id"].as_str().unwrap_or("");
    if !id.starts_with("log_softmax/fuzz_candle-nn/seed7-")
        || case["inputs"]["input"]["dtype"] != "case"
        || case["tags"][0] != "fuzz"
    {
        return Err(format!("not a spec case export.py takes: {case}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let torch = std::env::var("NLLSPEC_TORCH_PYTHON")
        .unwrap_or_else(|_| format!("{ROOT}/.venv/bin/python"));
    let numpy = std::env::var("NLLSPEC_PYTHON").unwrap_or_else(|_| "python3".into());
    let (have_torch, have_numpy) = (has(&torch, "torch"), has(&numpy, "numpy"));
    if !have_torch {
        eprintln!(
            "repro: no torch in {torch}: show --torch trial ignored (python3 -m venv .venv && .venv/bin/pip install -r golden/requirements.txt)"
        );
    }
    if !have_numpy {
        eprintln!("repro: no numpy in {numpy}: show --request trial ignored (set NLLSPEC_PYTHON)");
    }
    let trials = vec![
        Trial::test(
            "fuzz/native_finds_nothing_and_candle_nn_divergences",
            fuzz_native_and_candle_nn,
        ),
        Trial::test("repro/show_torch_reproduces_every_golden_case", move || {
            torch_snippets_reproduce_every_case(&torch)
        })
        .with_ignored_flag(!have_torch),
        Trial::test(
            "repro/show_request_piped_into_an_adapter_answers_as_in_the_run",
            move || request_into_the_numpy_example(&numpy),
        )
        .with_ignored_flag(!have_numpy),
    ];
    libtest_mimic::run(&args, trials).exit()
}
