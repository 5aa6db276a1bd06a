//! What comes after a verdict (issue 25): expectations the tool writes and updates, flaky
//! entries, the audit of expectations against the whole suite, a gate that cannot be green on
//! nothing, hangs that cost the timeout and not the start-up allowance, one cause for a crash,
//! interrupted runs that keep their results, and human reports grouped by behaviour.
//!
//! The implementation under test is tests/fixtures/replay_impl.py replaying PyTorch's own
//! answers from the golden file, altered where a test says so.

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{answers, nllspec, replay, run_seed as run, seed, temp_dir, write};

fn with_status<'a>(r: &'a Value, status: &str) -> Vec<&'a str> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == status)
        .map(|x| x["id"].as_str().unwrap())
        .collect()
}

/// PyTorch's answer with its output scaled by `by` (a wrong value of the right dtype: the
/// golden values are exactly representable, and doubling keeps them so; none is 0).
fn scaled(mut a: Value, by: f64) -> Value {
    if let Some(data) = a["output"]["data"].as_array_mut() {
        for x in data {
            if let Some(v) = x.as_f64() {
                *x = json!(v * by);
            }
        }
    }
    a
}

fn patterns(file: &str) -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    doc["expected_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["match"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn written_expectations_make_the_next_run_green_and_follow_a_change() {
    let d = temp_dir("write");
    // every dtype of docs_3x5 wrong alike (one behaviour), fix_1x5@float64 rejected
    let wrong = |docs_f64_right: bool| {
        answers(&seed(), move |case, a| {
            let id = case["id"].as_str().unwrap();
            match id {
                "nll_loss/seed/docs_3x5@float64" if docs_f64_right => a,
                _ if id.starts_with("nll_loss/seed/docs_3x5@") => scaled(a, 2.0),
                "nll_loss/seed/fix_1x5@float64" => {
                    json!({"error": {"kind": "input_rank", "message": "no"}})
                }
                _ => a,
            }
        })
    };
    let imp = format!("fw={}", replay(&d, &wrong(false), ""));
    let file = d.join("fw.json").display().to_string();
    let (code, r, stderr) = run(&["--impl", &imp, "--write-expectations", &file]);
    assert_eq!(code, Some(1), "judged without expectations: {r}");
    assert!(
        stderr.contains(&format!(
            "wrote {file}: 0 entries kept, 2 added, 0 removed (edit the drafted reasons)"
        )),
        "{stderr}"
    );
    let written = patterns(&file);
    assert_eq!(
        written.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["nll_loss/seed/docs_3x5@*", "nll_loss/seed/fix_1x5@float64"]
    );
    assert!(
        written[0].1.starts_with(
            "draft, to be edited: output: values differ (e.g. nll_loss/seed/docs_3x5@"
        ),
        "{}",
        written[0].1
    );
    assert!(
        written[1]
            .1
            .contains("expected values, got error kind input_rank"),
        "{}",
        written[1].1
    );
    // the next identical run exits 0, judged with the written file
    let (code, r, _) = run(&["--impl", &imp, "--expectations", &file]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(
        with_status(&r, "xfail").len(),
        5,
        "4 docs_3x5 dtypes and fix_1x5@float64: {r}"
    );
    // a person edits a reason; then the framework fixes float64: the entry also matches a
    // passing case, the audit says to narrow it, and an update keeps the edited reason
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(&written[0].1, "doubles the loss");
    std::fs::write(&file, text).unwrap();
    let imp = format!("fw={}", replay(&d, &wrong(true), ""));
    let (code, r, _) = run(&["--impl", &imp, "--expectations", &file]);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["audit"][0]["finding"], "matches_passing", "{r}");
    assert_eq!(
        r["audit"][0]["cases"],
        json!(["nll_loss/seed/docs_3x5@float64"]),
        "{r}"
    );
    assert!(
        r["audit"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("beside 3 failing: narrow it"),
        "{r}"
    );
    let (_, _, stderr) = run(&["--impl", &imp, "--write-expectations", &file]);
    assert!(
        stderr.contains("1 entries kept, 3 added, 1 removed"),
        "{stderr}"
    );
    assert!(stderr.contains("removed nll_loss/seed/docs_3x5@*: it matched cases that no longer fail: nll_loss/seed/docs_3x5@float64"), "{stderr}");
    let updated = patterns(&file);
    let docs: Vec<&(String, String)> = updated
        .iter()
        .filter(|p| p.0.starts_with("nll_loss/seed/docs_3x5@"))
        .collect();
    assert_eq!(docs.len(), 3, "{updated:?}");
    assert!(
        docs.iter()
            .all(|p| p.1 == "doubles the loss" && !p.0.ends_with("float64")),
        "{updated:?}"
    );
    let (code, r, _) = run(&["--impl", &imp, "--write-expectations", &file]);
    assert_eq!(code, Some(0), "{r}");
}

#[test]
fn a_flaky_entry_accepts_a_crash_or_a_pass_and_is_counted() {
    let d = temp_dir("flaky");
    let id = "nll_loss/seed/fix_1x5@float64";
    // aborts on that request half of the time, at random, as Paddle's heap corruption does
    let imp = format!(
        "fw={}",
        replay(
            &d,
            &answers(&seed(), |_, a| a),
            &format!("--flaky-crash {id}")
        )
    );
    let exp = write(
        &d,
        "fw.json",
        &format!(
            r#"{{"implementation": "fw", "expected_failures": [{{"match": "{id}", "reason": "heap corruption", "flaky": true}}]}}"#
        ),
    );
    // a crash, at random, or a pass: both accepted (three runs in a row exit 0)
    for _ in 0..3 {
        let (code, r, _) = run(&["--impl", &imp, "--expectations", &exp]);
        assert_eq!(code, Some(0), "{r}");
        assert_eq!(
            (r["summary"]["flaky"].as_u64(), with_status(&r, "flaky")),
            (Some(1), vec![id]),
            "{r}"
        );
    }
    // deterministically: a wrong answer is accepted as well, and says so
    let wrong = answers(
        &seed(),
        |case, a| if case["id"] == id { scaled(a, 2.0) } else { a },
    );
    let wrong_imp = format!("fw={}", replay(&d, &wrong, ""));
    let (code, r, _) = run(&["--impl", &wrong_imp, "--expectations", &exp]);
    assert_eq!(code, Some(0), "{r}");
    let detail = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("flaky (heap corruption): failed this time: output:"),
        "{detail}"
    );
    // every report format shows it
    let golden = seed();
    for (format, needle) in [
        ("human", "1 flaky"),
        ("markdown", "### Flaky"),
        ("junit", "flaky (heap corruption)"),
    ] {
        let out = nllspec(&[
            "run",
            "--golden",
            &golden,
            "--impl",
            &imp,
            "--expectations",
            &exp,
            "--format",
            format,
        ]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(needle),
            "{format}"
        );
    }
    // strict all the same: a flaky entry that matches no case fails the run
    let stale = write(
        &d,
        "stale.json",
        r#"{"implementation": "fw", "expected_failures": [{"match": "no/such@*", "reason": "r", "flaky": true}]}"#,
    );
    let (code, r, _) = run(&[
        "--impl",
        &imp,
        "--expectations",
        &stale,
        "--filter",
        "docs_3x5",
    ]);
    assert_eq!(
        (code, r["audit"][0]["finding"].as_str()),
        (Some(1), Some("unmatched")),
        "{r}"
    );
}

#[test]
fn the_audit_checks_every_entry_against_the_whole_suite() {
    let d = temp_dir("audit");
    let skipping = answers(&seed(), |case, a| {
        if case["id"]
            .as_str()
            .unwrap()
            .starts_with("nll_loss/seed/docs_3x5@")
        {
            json!({"unsupported": "no float kernels"})
        } else {
            a
        }
    });
    let imp = format!("fw={}", replay(&d, &skipping, ""));
    // a misspelt id under a filter that does not select it: still an error
    let exp = write(
        &d,
        "typo.json",
        r#"{"implementation": "fw", "expected_failures": [{"match": "nll_loss/seed/fix_1x6@float64", "reason": "typo"}]}"#,
    );
    let (code, r, _) = run(&[
        "--impl",
        &imp,
        "--expectations",
        &exp,
        "--filter",
        "docs_3x100",
    ]);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(
        (
            r["audit"][0]["finding"].as_str(),
            r["audit"][0]["entry"].as_str()
        ),
        (Some("unmatched"), Some("nll_loss/seed/fix_1x6@float64")),
        "{r}"
    );
    // an entry matching only skipped cases is reported as unneeded; the run passes
    let exp = write(
        &d,
        "skips.json",
        r#"{"implementation": "fw", "expected_failures": [{"match": "nll_loss/seed/docs_3x5@*", "reason": "half"}]}"#,
    );
    let (code, r, _) = run(&["--impl", &imp, "--expectations", &exp]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(
        (
            r["audit"][0]["finding"].as_str(),
            r["audit"][0]["fails"].as_bool()
        ),
        (Some("only_skipped"), Some(false)),
        "{r}"
    );
    assert!(
        r["audit"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("matched only skipped cases (4): it is not needed"),
        "{r}"
    );
    let cases = String::from_utf8(nllspec(&["list", "--golden", &seed()]).stdout)
        .unwrap()
        .lines()
        .count();
    assert_eq!(r["summary"]["total"].as_u64(), Some(cases as u64), "{r}");
    // a floor: an adapter upgrade that turns answers into skips fails the gate
    let floor = write(
        &d,
        "floor.json",
        &format!(r#"{{"implementation": "fw", "min_passed": {}}}"#, cases),
    );
    let (code, r, _) = run(&["--impl", &imp, "--expectations", &floor]);
    assert_eq!(
        (code, r["audit"][0]["finding"].as_str()),
        (Some(1), Some("below_floor")),
        "{r}"
    );
    assert!(
        r["audit"][0]["detail"].as_str().unwrap().contains(&format!(
            "{} case(s) passed, fewer than the expectations file's min_passed {cases}",
            cases - 4
        )),
        "{r}"
    );
    // ... judged on whole-suite runs only
    let (code, r, _) = run(&[
        "--impl",
        &imp,
        "--expectations",
        &floor,
        "--filter",
        "docs_3x100",
    ]);
    assert_eq!(code, Some(0), "{r}");
}

#[test]
fn consecutive_hangs_cost_the_timeout_not_the_whole_startup_allowance() {
    // The first process starts in 0.2 s, answers one case and hangs; every later process reads
    // its first request and hangs. Each fresh process used to wait --timeout plus the whole
    // --startup-timeout (4 x 20.3 s here); now the start-up allowance is learned from the
    // start-ups seen (about 1.4 s).
    let d = temp_dir("hangs");
    let marker = d.join("started").display().to_string();
    let script = format!(
        r#"exec:if [ -e {marker} ]; then read l; sleep 600; fi; touch {marker}; sleep 0.2; read l; id=$(printf '%s' "$l" | sed 's/^{{"id":"\([^"]*\)".*/\1/'); printf '{{"id":"%s","unsupported":"first only"}}\n' "$id"; read l; sleep 600"#
    );
    let started = Instant::now();
    let (code, r, stderr) = run(&[
        "--impl",
        &script,
        "--filter",
        "docs_3x100",
        "--timeout",
        "0.3",
        "--startup-timeout",
        "20",
    ]);
    let took = started.elapsed();
    assert_eq!(code, Some(1), "not a start-up failure: {r}\n{stderr}");
    let failed: Vec<&Value> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 3, "{r}");
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("no response within 300.0ms: --timeout 300.0ms"),
        "{r}"
    );
    for f in &failed[1..] {
        let detail = f["detail"].as_str().unwrap();
        assert!(
            detail.contains("start-up allowance")
                && detail.contains("learned: twice the slowest of the 1 start-ups seen"),
            "{detail}"
        );
    }
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_crash_is_one_cause_naming_its_signal() {
    // One process dies with half an answer written, the other with none: one cause.
    let half = r#"exec:read l; printf '{"id": "x", "outp'; echo 'free(): invalid pointer' >&2; kill -ABRT $$"#;
    let none = r#"exec:read l; echo 'free(): invalid pointer' >&2; kill -ABRT $$"#;
    let (_, a, _) = run(&["--impl", half, "--filter", "fix_1x5@float64"]);
    let (_, b, _) = run(&["--impl", none, "--filter", "fix_1x5@float64"]);
    let (a, b) = (&a["results"][0], &b["results"][0]);
    assert_eq!(a["cause"], b["cause"], "{a}\n{b}");
    assert!(a["cause"].as_str().unwrap().contains("SIGABRT"), "{a}");
    let detail = a["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the process crashed (signal: 6 (SIGABRT)"),
        "{detail}"
    );
    assert!(
        detail.contains("its stdout ended in the middle of a line, 17 bytes"),
        "{detail}"
    );
    assert!(detail.contains("free(): invalid pointer"), "{detail}");
}

/// Starts a run with a slow implementation, sends `signal` once some cases are done, and
/// returns its exit status, the report file's text and the implementation's pid.
fn interrupted(signal: &str, format: &str) -> (Option<i32>, String, String) {
    let d = temp_dir(&format!("signal-{signal}"));
    let pid_file = d.join("pid").display().to_string();
    let imp = replay(
        &d,
        &answers(&seed(), |_, a| a),
        &format!(
            "--answer-delay 0.2 --pid-file {pid_file} --answered-file {}",
            d.join("answered").display()
        ),
    );
    let out = d.join("report").display().to_string();
    let golden = seed();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args([
            "run", "--golden", &golden, "--impl", &imp, "--format", format, "--out", &out,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // once two answers are in (however slowly the interpreter started), with a dozen to go
    let began = Instant::now();
    while std::fs::read_to_string(d.join("answered")).map_or(0, |s| s.lines().count()) < 2 {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the implementation never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    (code, std::fs::read_to_string(&out).unwrap_or_default(), pid)
}

#[test]
fn an_interrupted_run_writes_its_reports_and_ends_its_implementations() {
    let cases = String::from_utf8(nllspec(&["list", "--golden", &seed()]).stdout)
        .unwrap()
        .lines()
        .count() as u64;
    let (code, text, pid) = interrupted("INT", "json");
    assert_eq!(code, Some(130));
    let r: Value = serde_json::from_str(&text).unwrap();
    let s = &r["summary"];
    assert_eq!(r["interrupted"], "SIGINT", "{r}");
    assert!(
        s["passed"].as_u64().unwrap() > 0 && s["not_run"].as_u64().unwrap() > 0,
        "{r}"
    );
    assert_eq!(
        s["total"].as_u64(),
        Some(cases),
        "every case is counted: {r}"
    );
    assert_eq!(
        s["passed"].as_u64().unwrap() + s["not_run"].as_u64().unwrap(),
        cases,
        "{r}"
    );
    // the implementation's process is gone (or a zombie no init has reaped yet)
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    assert!(
        matches!(state, None | Some(Some('Z' | 'X'))),
        "process {pid} outlived the run: {stat}"
    );
    let (code, junit, _) = interrupted("TERM", "junit");
    assert_eq!(code, Some(143));
    assert!(
        junit.contains("<skipped message=\"not run: the run was interrupted by SIGTERM\"/>"),
        "{junit}"
    );
}

#[test]
fn start_up_output_is_shown_once_and_failures_by_behaviour() {
    // each process writes a banner at start-up, answers one case wrongly and exits: every
    // failure is a fresh process's first case
    let d = temp_dir("banner");
    let wrong = answers(&seed(), |case, a| {
        if case["id"]
            .as_str()
            .unwrap()
            .starts_with("nll_loss/seed/docs_3x5@")
        {
            scaled(a, 2.0)
        } else {
            a
        }
    });
    let imp = format!(
        "fw={}",
        replay(
            &d,
            &wrong,
            "--exit-after --banner tf-banner-says-hello --start-delay 0.1"
        )
    );
    let golden = seed();
    let human =
        String::from_utf8(nllspec(&["run", "--golden", &golden, "--impl", &imp]).stdout).unwrap();
    assert_eq!(human.matches("TF-BANNER-SAYS-HELLO").count(), 1, "{human}");
    assert!(human.contains("Start-up output of fw"), "{human}");
    assert!(human.contains("=== 4 x fw: output: values differ  nll_loss/seed/docs_3x5: @float16 @bfloat16 @float32 @float64"), "{human}");
    let (_, r, _) = run(&["--impl", &imp]);
    assert!(
        !r["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["detail"].as_str().unwrap().contains("TF-BANNER")),
        "{r}"
    );
    assert!(
        r["startup_stderr"]["fw"]
            .as_str()
            .unwrap()
            .contains("TF-BANNER-SAYS-HELLO"),
        "{r}"
    );
}
