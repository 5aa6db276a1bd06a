//! The command line as users meet it: exit codes, unusable inputs, reports, and external
//! implementations that misbehave.

use serde_json::Value;
use std::process::{Command, Output};

mod common;
use common::{nllspec, seed as small_golden, temp_dir, write};

/// How many shipped cases have an id starting with `prefix`: counts follow the golden files,
/// so that adding a case breaks no test.
fn shipped_cases(prefix: &str) -> usize {
    let out = nllspec(&["list"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|id| id.starts_with(prefix))
        .count()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn native_passes_the_shipped_suite_with_exit_0() {
    let out = nllspec(&["run", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert_eq!(r["format"], "nllspec-report-v1");
    let s = &r["summary"];
    assert!(s["total"].as_u64().unwrap() >= 400);
    assert_eq!(s["passed"], s["total"]);
    assert_eq!(s["failed"], 0);
}

#[test]
fn usage_errors_exit_2_and_say_why() {
    for (args, needle) in [
        (vec!["run", "--impl", "bogus"], "unknown implementation"),
        (vec!["run", "--format", "xml"], "'xml'"),
        (
            vec!["run", "--golden", "/nonexistent/golden"],
            "/nonexistent/golden",
        ),
        (vec!["run", "--timeout", "-1"], "--timeout"),
        (vec!["run", "--frobnicate"], "unexpected argument"),
        (
            vec!["run", "--filter", "no-such-case-id"],
            "selects no case",
        ),
        (vec!["launch"], "unrecognized subcommand"),
        (vec![], "Usage"),
    ] {
        let out = nllspec(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn an_error_prints_its_chain_of_causes() {
    // as wasmtime's runner does: what was being done, then each cause on a line of its own
    let out = nllspec(&["run", "--expectations", "/nonexistent/mine.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "nllspec: an expectations file cannot be used\n  caused by: /nonexistent/mine.json: cannot read\n  caused by: No such file"
        ),
        "{err}"
    );
    // the JSON report carries the same chain on one line
    let out = nllspec(&[
        "run",
        "--expectations",
        "/nonexistent/mine.json",
        "--format",
        "json",
    ]);
    let r = report(&out);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("cannot read: No such file"),
        "{r}"
    );
}

#[test]
fn help_and_version_go_to_stdout_with_exit_0() {
    // every subcommand clap knows, so that a new one cannot miss its help
    let top = String::from_utf8(nllspec(&["--help"]).stdout).unwrap();
    let commands: Vec<&str> = top
        .split("Commands:")
        .nth(1)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .take_while(|w| !w.ends_with(':'))
        .filter(|w| *w != "help")
        .collect();
    assert_eq!(
        commands,
        [
            "run", "list", "accuracy", "show", "explain", "shrink", "fuzz"
        ],
        "{top}"
    );
    let mut all = vec![vec!["--help"]];
    all.extend(commands.iter().map(|c| vec![*c, "--help"]));
    for args in all {
        let out = nllspec(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: nllspec"),
            "{args:?}"
        );
    }
    let help = String::from_utf8(nllspec(&["run", "--help"]).stdout).unwrap();
    assert!(
        help.contains("tag:NAME") && help.contains("--impl <SPEC>"),
        "{help}"
    );
    assert!(
        help.contains("--startup-timeout") && help.contains("NAME=exec:COMMAND"),
        "{help}"
    );
    // the version names the suite it ships
    let v = String::from_utf8(nllspec(&["--version"]).stdout).unwrap();
    let n = shipped_cases("");
    assert!(
        v.starts_with("nllspec ")
            && v.contains("torch 2.15.0")
            && v.contains(&format!("{n} cases")),
        "{v}"
    );
}

#[test]
fn the_embedded_suite_runs_from_any_directory() {
    // As an installed binary: no checkout, another working directory; the suite compiled into
    // the binary is written to the cache once and judged from there.
    let d = temp_dir("embedded");
    let out = Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args(["run", "--format", "json"])
        .current_dir(&d)
        .env("NLLSPEC_GOLDEN", "embedded")
        .env("NLLSPEC_CACHE", d.join("cache"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert_eq!(
        r["summary"]["total"].as_u64(),
        Some(shipped_cases("") as u64)
    );
    assert!(
        r["results"][0]["file"]
            .as_str()
            .unwrap()
            .starts_with("cache/golden-"),
        "{}",
        r["results"][0]
    );
}

#[test]
fn a_mistyped_flag_gets_a_suggestion() {
    let out = nllspec(&["run", "--fromat", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a similar argument exists: '--format'"));
}

#[test]
fn a_closed_pipe_ends_list_quietly() {
    // As `nllspec list | head -1`, with the reader gone before the first write (the ids fit
    // in a pipe's buffer, so closing after a line would never make a write fail).
    let mut child = Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .arg("list")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn a_filter_that_selects_nothing_fails_before_any_progress() {
    let out = nllspec(&["run", "--filter", "no-such-case-id"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("selects no case") && !err.contains("golden/"),
        "no progress lines: {err}"
    );
}

#[test]
fn json_report_is_printed_even_for_unusable_input() {
    let out = nllspec(&["run", "--golden", "/nonexistent/golden", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let r = report(&out);
    assert_eq!(r["format"], "nllspec-report-v1");
    assert_eq!(r["summary"]["total"], 0);
    assert!(r["error"].as_str().unwrap().contains("/nonexistent/golden"));
}

#[test]
fn an_empty_golden_directory_is_an_error() {
    let d = temp_dir("empty");
    let out = nllspec(&["run", "--golden", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no *.json"));
}

#[test]
fn filter_selects_by_id_and_reports_are_well_formed() {
    let out = nllspec(&["run", "--filter", "nll_loss/seed/", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(0));
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.starts_with("<?xml"));
    let n = shipped_cases("nll_loss/seed/");
    assert!(n > 0);
    assert_eq!(xml.matches("<testcase ").count(), n);
    let md = nllspec(&["run", "--filter", "nll_loss/seed/", "--format", "markdown"]);
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains("| nll_loss float32 |"), "{md}");
}

#[test]
fn out_writes_the_report_to_a_file() {
    let d = temp_dir("out");
    let f = d.join("report.json");
    let out = nllspec(&[
        "run",
        "--filter",
        "log_softmax/seed/",
        "--format",
        "json",
        "--out",
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
    assert_eq!(
        r["summary"]["total"].as_u64(),
        Some(shipped_cases("log_softmax/seed/") as u64)
    );
}

fn run_exec(cmd: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let golden = small_golden();
    let imp = format!("exec:{cmd}");
    let mut args = vec![
        "run",
        "--golden",
        golden.as_str(),
        "--impl",
        imp.as_str(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = nllspec(&args);
    (out.status.code(), report(&out))
}

fn assert_all_failed(code: Option<i32>, r: &Value, needle: &str) {
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["summary"]["failed"], r["summary"]["total"], "{r}");
    let detail = r["results"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(needle),
        "detail {detail:?} lacks {needle:?}"
    );
}

#[test]
fn an_implementation_that_prints_garbage_fails_every_case() {
    let (code, r) = run_exec("while read l; do echo 'this is not json'; done", &[]);
    assert_all_failed(code, &r, "malformed response");
}

#[test]
fn an_implementation_that_stops_answering_times_out() {
    // Answers its first request, then hangs: every other case times out, and the process
    // restarted after each timeout answers the next.
    let script = r#"read l; id=$(printf '%s' "$l" | sed 's/^{"id":"\([^"]*\)".*/\1/'); printf '{"id":"%s","unsupported":"first only"}\n' "$id"; sleep 600"#;
    let (code, r) = run_exec(script, &["--timeout", "0.2"]);
    assert_eq!(code, Some(1), "{r}");
    let results = r["results"].as_array().unwrap();
    let failed: Vec<&Value> = results.iter().filter(|x| x["status"] == "fail").collect();
    assert_eq!(failed.len(), 7, "{r}");
    assert!(
        failed.iter().all(|f| f["detail"]
            .as_str()
            .unwrap()
            .starts_with("no response within 200.0ms: --timeout 200.0ms")),
        "{r}"
    );
}

#[test]
fn an_answer_for_another_id_fails() {
    let (code, r) = run_exec(
        r#"while read l; do echo '{"id": "someone/else", "unsupported": "x"}'; done"#,
        &[],
    );
    assert_all_failed(code, &r, "someone/else");
}

#[test]
fn a_crash_midway_is_one_failure_and_the_run_goes_on() {
    // Answers one request, writes to stderr and exits; the harness restarts it for each case.
    let script = r#"read l; id=$(printf '%s' "$l" | sed 's/^{"id":"\([^"]*\)".*/\1/'); printf '{"id":"%s","unsupported":"first only"}\n' "$id"; read l; echo 'dying now' >&2; exit 1"#;
    let (code, r) = run_exec(script, &[]);
    assert_eq!(code, Some(1));
    let results = r["results"].as_array().unwrap();
    let skipped = results.iter().filter(|x| x["status"] == "skip").count();
    let failed: Vec<&Value> = results.iter().filter(|x| x["status"] == "fail").collect();
    // odd requests are answered by a fresh process, even ones find it dying
    assert!(skipped >= 7 && failed.len() >= 7, "{r}");
    assert!(
        failed[0]["detail"].as_str().unwrap().contains("dying now"),
        "stderr kept: {}",
        failed[0]["detail"]
    );
}

#[test]
fn an_adapter_that_answers_unsupported_to_everything_fails() {
    // every case a skip: a gate that tests nothing is not green
    let (code, r) = run_exec(
        r#"while read l; do id=$(printf '%s' "$l" | sed 's/^{"id":"\([^"]*\)".*/\1/'); printf '{"id":"%s","unsupported":"not yet"}\n' "$id"; done"#,
        &[],
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["summary"]["skipped"], r["summary"]["total"]);
    assert_eq!(r["summary"]["audit_failed"], 1, "{r}");
    assert_eq!(r["audit"][0]["finding"], "nothing_passed", "{r}");
    assert!(
        r["audit"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no case passed"),
        "{r}"
    );
}

#[test]
fn malformed_golden_files_exit_2_naming_file_case_and_field() {
    let d = temp_dir("malformed");
    let case = |extra: &str, input: &str| {
        format!(
            r#"{{"format": "nllspec-golden-v1", "cases": [{{"id": "t/x@float32", "op": "log_softmax", "attrs": {{"dim": 0}},
            "inputs": {{"input": {input}}}, "expected": {{"output": {{"dtype": "float32", "shape": [1], "data": [0.0]}}}}{extra}}}]}}"#
        )
    };
    let ok_input = r#"{"dtype": "float32", "shape": [1], "data": [1.0]}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.json", vec![], "empty file"),
        (
            "truncated.json",
            br#"{"format": "nllspec-golden-v1", "cases": [{"id""#.to_vec(),
            "not valid JSON",
        ),
        (
            "latin1.json",
            b"{\"format\": \"nllspec-golden-v1\xe9\"}".to_vec(),
            "not UTF-8",
        ),
        (
            "deep.json",
            ("[".repeat(100_000) + &"]".repeat(100_000)).into_bytes(),
            "not valid JSON",
        ),
        (
            "version.json",
            br#"{"format": "nllspec-golden-v9", "cases": []}"#.to_vec(),
            "unknown format",
        ),
        (
            "typo.json",
            case(
                r#", "tolerence": {"rtol": 1, "atol": 1, "reason": "x"}"#,
                ok_input,
            )
            .into_bytes(),
            "tolerence",
        ),
        (
            "op.json",
            case("", ok_input)
                .replace("log_softmax", "softmax")
                .into_bytes(),
            "unknown op",
        ),
        (
            "dtype.json",
            case("", r#"{"dtype": "float8", "shape": [1], "data": [1.0]}"#).into_bytes(),
            "unknown dtype",
        ),
        (
            "negshape.json",
            case("", r#"{"dtype": "float32", "shape": [-1], "data": []}"#).into_bytes(),
            "shape[0]",
        ),
        (
            "hugeshape.json",
            case(
                "",
                r#"{"dtype": "float32", "shape": [1000000, 1000000, 1000000], "data": []}"#,
            )
            .into_bytes(),
            "more than",
        ),
        (
            "count.json",
            case("", r#"{"dtype": "float32", "shape": [2], "data": [1.0]}"#).into_bytes(),
            "needs 2 elements",
        ),
        (
            "fraction.json",
            case("", r#"{"dtype": "int64", "shape": [1], "data": [1.5]}"#).into_bytes(),
            "integer",
        ),
        (
            "range.json",
            case("", r#"{"dtype": "uint8", "shape": [1], "data": [300]}"#).into_bytes(),
            "uint8 range",
        ),
        (
            "special.json",
            case("", r#"{"dtype": "float32", "shape": [1], "data": ["nan"]}"#).into_bytes(),
            "\"nan\"",
        ),
    ];
    for (name, bytes, needle) in cases {
        let p = d.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let out = nllspec(&["run", "--golden", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // A field inside a case is named with the case id.
    let p = write(
        &d,
        "count2.json",
        &case("", r#"{"dtype": "float32", "shape": [2], "data": [1.0]}"#),
    );
    let err = String::from_utf8_lossy(&nllspec(&["run", "--golden", &p]).stderr).to_string();
    assert!(
        err.contains("t/x@float32") && err.contains("cases[0].inputs.input.data"),
        "{err}"
    );
}

#[test]
fn duplicate_ids_across_files_exit_2() {
    let d = temp_dir("dup");
    let seed = std::fs::read_to_string(small_golden()).unwrap();
    write(&d, "a.json", &seed);
    write(&d, "b.json", &seed);
    let out = nllspec(&["run", "--golden", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("duplicate case id"));
}

#[test]
fn stale_and_passing_expectations_fail_the_run() {
    let d = temp_dir("expect");
    // native passes everything: declaring a failure is an xpass, and a pattern matching
    // nothing is stale; both make the run fail.
    let exp = write(
        &d,
        "native.json",
        r#"{"implementation": "native", "expected_failures": [
            {"match": "nll_loss/seed/docs_3x5@float32", "reason": "pretend"},
            {"match": "no/such/case*", "reason": "typo"}]}"#,
    );
    let out = nllspec(&[
        "run",
        "--golden",
        &small_golden(),
        "--expectations",
        &exp,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out);
    assert_eq!(r["summary"]["xpassed"], 1);
    // the stale entry is an audit finding, not a case: the totals count cases only
    let cases = nllspec(&["list", "--golden", &small_golden()])
        .stdout
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    assert_eq!(r["summary"]["total"].as_u64(), Some(cases as u64), "{r}");
    assert!(
        !r["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"].as_str().unwrap().contains("no/such/case")),
        "{r}"
    );
    let findings: Vec<(&str, &str)> = r["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["finding"].as_str().unwrap(), f["entry"].as_str().unwrap()))
        .collect();
    assert_eq!(
        findings,
        [
            ("matches_passing", "nll_loss/seed/docs_3x5@float32"),
            ("unmatched", "no/such/case*")
        ],
        "{r}"
    );
    assert!(
        r["audit"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("none that fails: remove it"),
        "{r}"
    );
}

#[test]
fn notes_reach_people_and_tags_filter() {
    let out = nllspec(&["show", "nll_loss/seed/unbatched_5_onehot_target@float32"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text.contains("note:") && text.contains("one-hot") && text.contains("For 1D input"),
        "{text}"
    );
    assert_eq!(nllspec(&["show", "no/such/case"]).status.code(), Some(2));
    // tag: filters select by tag, in list and run alike
    let list =
        String::from_utf8(nllspec(&["list", "--filter", "tag:seed-question"]).stdout).unwrap();
    assert!(
        list.lines().count() > 0 && list.lines().all(|id| id.contains("/seed/")),
        "{list}"
    );
    let notes =
        String::from_utf8(nllspec(&["list", "--notes", "--filter", "tag:seed-question"]).stdout)
            .unwrap();
    assert!(
        notes.contains("[seed-question") && notes.contains("    The asker's call"),
        "{notes}"
    );
    let r = report(&nllspec(&[
        "run",
        "--filter",
        "tag:seed-question",
        "--format",
        "json",
    ]));
    assert_eq!(
        r["summary"]["total"].as_u64(),
        Some(list.lines().count() as u64)
    );
    // a failing case's detail carries its note
    let cmd = r#"exec:while read l; do id=$(printf '%s' "$l" | sed 's/^{"id":"\([^"]*\)".*/\1/'); printf '{"id":"%s","error":{"kind":"input_rank","message":"no"}}\n' "$id"; done"#;
    let r = report(&nllspec(&[
        "run",
        "--filter",
        "unbatched_5_onehot_target",
        "--impl",
        cmd,
        "--format",
        "json",
    ]));
    let detail = r["results"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("note (why this case exists): The asker's call"),
        "{detail}"
    );
}

#[test]
fn explain_answers_on_stdin_with_c_and_as_json() {
    use std::io::Write;
    let snippet = "import torch\nimport torch.nn as nn\nloss = nn.NLLLoss()\nloss(torch.randn(5), torch.tensor([1, 0, 0]))\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_nllspec"))
        .args(["explain", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(snippet.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text.contains(
            "ValueError: For 1D input, 1D target must have size 1, but got target size: 3"
        ) && text.contains("Fix:"),
        "{text}"
    );
    let j: Value =
        serde_json::from_slice(&nllspec(&["explain", "--json", "-c", snippet]).stdout).unwrap();
    assert_eq!(
        (j["result"].as_str(), j["error"]["kind"].as_str()),
        (Some("error"), Some("target_shape")),
        "{j}"
    );
    let out = nllspec(&[
        "explain",
        "--json",
        "-c",
        "import torch\nwhile True:\n    pass\n",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["result"], "unsupported");
}
