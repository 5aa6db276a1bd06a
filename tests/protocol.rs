//! Protocol 1 as real implementations meet it: a process that exits after answering, a slow
//! start, an adapter that cannot start, forward-only answers, named implementations and
//! tolerance entries, answers that are not JSON or not in the output dtype, and reports that
//! group what failed.
//!
//! The implementation is tests/fixtures/replay_impl.py (python3, standard library only): it
//! replays the golden file's own expected values (PyTorch's), altered where a test says so.

use serde_json::{Value, json};

mod common;
use common::{answers, nllspec, python, replay, run_seed as run, seed, temp_dir, write};

/// The seed file's cases: all, those with a gradient, and those with a gradient whose id ends
/// with `suffix` (counted from the file, so that a new seed case breaks no test here).
fn seed_counts(suffix: &str) -> (u64, u64, u64) {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(seed()).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let grad: Vec<&Value> = cases
        .iter()
        .filter(|c| c["inputs"].get("grad_output").is_some())
        .collect();
    let with_suffix = grad
        .iter()
        .filter(|c| c["id"].as_str().unwrap().ends_with(suffix))
        .count();
    assert!(
        with_suffix > 0 && grad.len() < cases.len(),
        "the seed file has float32 gradients and errors"
    );
    (cases.len() as u64, grad.len() as u64, with_suffix as u64)
}

fn results_with<'a>(r: &'a Value, status: &str) -> Vec<&'a Value> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == status)
        .collect()
}

#[test]
fn a_process_that_exits_after_answering_does_not_fail_the_next_case() {
    // Every answer is PyTorch's own; each process exits 0.2 s after answering, so the next
    // request is usually written while it is still exiting.
    let d = temp_dir("exit-after");
    let imp = replay(&d, &answers(&seed(), |_, a| a), "--exit-after");
    let (code, r, stderr) = run(&["--impl", &imp]);
    assert_eq!(code, Some(0), "{r}\n{stderr}");
    assert_eq!(r["summary"]["passed"], seed_counts("").0, "{r}");
}

#[test]
fn the_stderr_shown_is_what_the_failing_request_caused() {
    // Each process answers its first request after writing "noise", reads a second one and
    // dies: the second request's failure shows its own last words, not the first one's noise.
    let script = r#"exec:read l; id=$(printf '%s' "$l" | sed 's/^{"id":"\([^"]*\)".*/\1/'); echo noise-of-the-first-$((40+2)) >&2; printf '{"id":"%s","unsupported":"first only"}\n' "$id"; read l; echo dying-on-the-$((6*7)) >&2; exit 1"#;
    let (code, r, _) = run(&["--impl", script]);
    assert_eq!(code, Some(1));
    let failed = results_with(&r, "fail");
    assert!(!failed.is_empty(), "{r}");
    for f in failed {
        let d = f["detail"].as_str().unwrap();
        assert!(
            d.contains("exited (exit status: 1) without answering")
                && d.contains("dying-on-the-42"),
            "{d}"
        );
        assert!(
            !d.contains("noise-of-the-first-42"),
            "an earlier request's stderr: {d}"
        );
    }
}

#[test]
fn the_stderr_is_shown_with_a_wrong_answer_too() {
    let d = temp_dir("stderr-wrong");
    let wrong = answers(&seed(), |case, a| {
        if case["id"] == "nll_loss/seed/fix_1x5@float64" {
            json!({"error": {"kind": "input_rank", "message": "no"}})
        } else {
            a
        }
    });
    let imp = replay(&d, &wrong, "--stderr backend-says-hello");
    let (code, r, _) = run(&["--impl", &imp]);
    assert_eq!(code, Some(1));
    let failed = results_with(&r, "fail");
    assert_eq!(failed.len(), 1, "{r}");
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("backend-says-hello"),
        "{}",
        failed[0]["detail"]
    );
}

#[test]
fn start_up_has_its_own_allowance() {
    // A second of imports, then quick answers: with --timeout 0.5 every case used to time out
    // (and each timeout restarted the slow start).
    let d = temp_dir("slow-start");
    let slow = replay(&d, &answers(&seed(), |_, a| a), "--start-delay 1");
    let (code, r, stderr) = run(&["--impl", &slow, "--timeout", "0.5"]);
    assert_eq!(code, Some(0), "{r}\n{stderr}");
    assert_eq!(r["summary"]["passed"], seed_counts("").0, "{r}");
    let script = r#"exec:sleep 1; while read l; do id=$(printf '%s' "$l" | sed 's/^{"id":"\([^"]*\)".*/\1/'); printf '{"id":"%s","unsupported":"x"}\n' "$id"; done"#;
    // without the allowance, three fresh processes never answer: the run stops
    let (code, r, stderr) = run(&[
        "--impl",
        script,
        "--timeout",
        "0.2",
        "--startup-timeout",
        "0.1",
    ]);
    assert_eq!(code, Some(2), "{r}");
    assert!(stderr.contains("no response within"), "{stderr}");
}

#[test]
fn an_adapter_that_cannot_start_stops_the_run_with_one_message() {
    let cmd = format!("exec:{} -c 'import no_such_module_for_nllspec'", python());
    let started = std::time::Instant::now();
    let (code, r, stderr) = run(&["--impl", &cmd]);
    assert_eq!(code, Some(2), "{r}");
    assert!(
        stderr.contains("import no_such_module_for_nllspec'`"),
        "names the command: {stderr}"
    );
    assert!(stderr.contains("exit status: 1"), "{stderr}");
    assert_eq!(
        stderr.matches("ModuleNotFoundError").count(),
        1,
        "one message, with the traceback: {stderr}"
    );
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("3 fresh processes in a row"),
        "{r}"
    );
    assert!(started.elapsed().as_secs() < 20);
}

#[test]
fn a_forward_only_answer_is_judged_on_its_output() {
    let d = temp_dir("forward-only");
    let fwd = answers(&seed(), |_, mut a| {
        if let Some(m) = a.as_object_mut().filter(|m| m.contains_key("grad_input")) {
            m.remove("grad_input");
            m.insert(
                "grad_input_unsupported".into(),
                "this runtime has no autograd".into(),
            );
        }
        a
    });
    let imp = replay(&d, &fwd, "");
    let (code, r, stderr) = run(&["--impl", &imp]);
    assert_eq!(code, Some(0), "{r}\n{stderr}");
    let s = &r["summary"];
    let (all, grad, _) = seed_counts("");
    assert_eq!(
        (
            s["forward_only"].as_u64(),
            s["passed"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(grad), Some(all - grad), Some(0)),
        "{r}"
    );
    let f = &results_with(&r, "forward_only")[0];
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains("this runtime has no autograd"),
        "{f}"
    );
    // human, Markdown and JUnit say so
    let golden = seed();
    for (format, needle) in [
        ("human", "forward_only"),
        ("markdown", "### Forward only"),
        ("junit", "forward only"),
    ] {
        let out = nllspec(&[
            "run", "--golden", &golden, "--impl", &imp, "--format", format,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{format}: {text}");
    }
    // a wrong output is still wrong
    let wrong = answers(&seed(), |case, a| {
        if case["id"] == "nll_loss/seed/docs_3x5@float64" {
            json!({"output": {"dtype": "float64", "shape": [], "data": [123.0]}, "grad_input_unsupported": "no autograd"})
        } else {
            a
        }
    });
    let imp = replay(&d, &wrong, "");
    let (code, r, _) = run(&["--impl", &imp]);
    assert_eq!(code, Some(1));
    assert_eq!(
        results_with(&r, "fail")[0]["cause"],
        "output: values differ",
        "{r}"
    );
}

#[test]
fn implementations_are_named_and_expectations_use_the_name() {
    let d = temp_dir("named");
    let exact = answers(&seed(), |_, a| a);
    let cmd = replay(&d, &exact, "");
    // unnamed: the script's stem, not the command line
    let (_, r, _) = run(&["--impl", &cmd]);
    assert_eq!(r["results"][0]["impl"], "replay_impl", "{r}");
    // named, with an expectations file under that name
    let named = format!("mine={cmd}");
    let exp = write(
        &d,
        "mine.json",
        r#"{"implementation": "mine", "expected_failures": [{"match": "nll_loss/seed/fix_1x5@float64", "reason": "pretend"}]}"#,
    );
    let (code, r, _) = run(&["--impl", &named, "--expectations", &exp]);
    assert_eq!(code, Some(1), "the pretended failure passes: an xpass");
    assert!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["impl"] == "mine"),
        "{r}"
    );
    assert_eq!(r["summary"]["xpassed"], 1);
    // two implementations of one name
    let (code, _, stderr) = run(&["--impl", &named, "--impl", &named]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("NAME=exec:COMMAND"), "{stderr}");
}

#[test]
fn tolerance_entries_loosen_strictly_and_are_counted() {
    let d = temp_dir("tolerances");
    // float32 gradients 1% off: far outside float32's rtol 1.3e-6, and further from the
    // float64 reference than PyTorch's
    let off = answers(&seed(), |case, mut a| {
        if case["id"].as_str().unwrap().ends_with("@float32") && a.get("grad_input").is_some() {
            for x in a["grad_input"]["data"].as_array_mut().unwrap() {
                *x = json!(((x.as_f64().unwrap() * 1.01) as f32) as f64);
            }
        }
        a
    });
    let imp = format!("gpu={}", replay(&d, &off, ""));
    let (code, r, _) = run(&["--impl", &imp]);
    let (all, _, f32_grad) = seed_counts("@float32");
    assert_eq!(
        (code, r["summary"]["failed"].as_u64()),
        (Some(1), Some(f32_grad)),
        "{r}"
    );
    let tol = |entries: &str| {
        write(
            &d,
            "gpu.json",
            &format!(
                r#"{{"implementation": "gpu", "expected_failures": [], "tolerances": [{entries}]}}"#
            ),
        )
    };
    let grad = r#"{"match": "nll_loss/seed/*@float32", "field": "grad_input", "rtol": 0.02, "atol": 1e-5, "reason": "the device's reductions round in another order"}"#;
    let (code, r, _) = run(&["--impl", &imp, "--expectations", &tol(grad)]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(
        (
            r["summary"]["passed"].as_u64(),
            r["summary"]["loosened"].as_u64()
        ),
        (Some(all), Some(f32_grad)),
        "{r}"
    );
    let loosened = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x.get("loosened_by").is_some())
        .unwrap();
    assert_eq!(
        loosened["loosened_by"][0],
        "nll_loss/seed/*@float32 (grad_input)"
    );
    // an entry for the output does not loosen the gradient
    let (code, _, _) = run(&[
        "--impl",
        &imp,
        "--expectations",
        &tol(&grad.replace("grad_input", "output")),
    ]);
    assert_eq!(code, Some(1));
    // a typo matches no case: the run fails
    let typo = format!(
        "{grad}, {}",
        grad.replace("seed/*@float32", "sede/*@float32")
    );
    let (code, r, _) = run(&["--impl", &imp, "--expectations", &tol(&typo)]);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(
        (
            r["audit"][0]["finding"].as_str(),
            r["audit"][0]["entry"].as_str()
        ),
        (
            Some("tolerance_unmatched"),
            Some("nll_loss/sede/*@float32 (grad_input)")
        ),
        "{r}"
    );
    assert_eq!(
        r["summary"]["total"].as_u64(),
        Some(all),
        "audit findings are not cases: {r}"
    );
    // an entry that no matched case needed is reported, and the run still passes
    let unneeded = format!("{grad}, {}", grad.replace("@float32", "@float64"));
    let (code, r, _) = run(&["--impl", &imp, "--expectations", &tol(&unneeded)]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(
        r["unneeded_tolerances"][0]["entry"], "nll_loss/seed/*@float64 (grad_input)",
        "{r}"
    );
}

#[test]
fn answers_that_are_not_json_or_not_in_the_dtype_say_the_fix() {
    let d = temp_dir("fixes");
    let bad = answers(&seed(), |case, a| match case["id"].as_str().unwrap() {
        "nll_loss/seed/docs_3x5@float32" => {
            json!({"output": {"dtype": "float32", "shape": [], "data": ["NaN"]}})
        }
        "nll_loss/seed/docs_3x5@float16" => {
            json!({"output": {"dtype": "float16", "shape": [], "data": [-25.50008]}})
        }
        _ => a,
    });
    let imp = replay(&d, &bad, "--bare-json");
    let (_, r, _) = run(&["--impl", &imp]);
    let detail = |id: &str| {
        let row = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap();
        row["detail"].as_str().unwrap().to_string()
    };
    let nan = detail("nll_loss/seed/docs_3x5@float32");
    assert!(
        nan.contains(r#"bare NaN is not JSON: write "NaN""#),
        "{nan}"
    );
    let f16 = detail("nll_loss/seed/docs_3x5@float16");
    assert!(
        f16.contains("-25.50008 is not exactly a float16 value")
            && f16.contains("round answers to the output dtype"),
        "{f16}"
    );
}

#[test]
fn reports_count_alike_group_failures_and_show_skips() {
    let d = temp_dir("reports");
    // gradients missing everywhere, one case unsupported, one expected failure
    let a = answers(&seed(), |case, mut a| {
        if case["id"] == "nll_loss/seed/fix_1x5@float64" {
            return json!({"unsupported": "float64 is not built in this backend"});
        }
        if let Some(m) = a.as_object_mut() {
            m.remove("grad_input");
        }
        a
    });
    let imp = format!("nograd={}", replay(&d, &a, ""));
    let exp = write(
        &d,
        "nograd.json",
        r#"{"implementation": "nograd", "expected_failures": [{"match": "nll_loss/seed/docs_3x5@float64", "reason": "known"}]}"#,
    );
    let golden = seed();
    let base = [
        "run",
        "--golden",
        golden.as_str(),
        "--impl",
        imp.as_str(),
        "--expectations",
        exp.as_str(),
    ];
    let (_, r, _) = run(&base[3..]);
    let s = &r["summary"];
    let human =
        String::from_utf8(nllspec(&[&base[..], &["--format", "human"]].concat()).stdout).unwrap();
    let last = human.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "{} passed, {} failed, {} skipped, {} xfailed, {} xpassed, 0 forward_only",
            s["passed"], s["failed"], s["skipped"], s["xfailed"], s["xpassed"]
        ),
        "{human}"
    );
    // every gradient case fails alike, but the unsupported one and the expected failure
    let missing = seed_counts("").1 - 2;
    assert_eq!(
        (
            s["failed"].as_u64(),
            s["xfailed"].as_u64(),
            s["skipped"].as_u64()
        ),
        (Some(missing), Some(1), Some(1)),
        "{r}"
    );
    // the summary first and last; the failures by behaviour (cause and case family), one
    // example's detail each; the causes' table below
    assert_eq!(human.lines().next(), Some(last), "{human}");
    let families: std::collections::BTreeSet<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == "fail")
        .map(|x| x["id"].as_str().unwrap().rsplit_once('@').unwrap().0)
        .collect();
    assert!(
        human.contains(&format!(
            "Failures by behaviour ({missing} cases, {} behaviours):",
            families.len()
        )),
        "{human}"
    );
    assert_eq!(human.matches("\n=== ").count(), families.len(), "{human}");
    assert_eq!(
        human.matches("  e.g. FAIL nograd/").count(),
        families.len(),
        "{human}"
    );
    assert_eq!(
        human.matches("grad_input: missing (the case sends").count(),
        families.len(),
        "one example each: {human}"
    );
    assert!(
        human.contains(&format!("{missing:>5}  grad_input: missing")),
        "{human}"
    );
    assert!(
        human.contains("Failures by cause:") && human.contains("Skipped, by reason:"),
        "{human}"
    );
    // --summary: the summary and the behaviours, without the examples' whole detail
    let short = String::from_utf8(nllspec(&[&base[..], &["--summary"]].concat()).stdout).unwrap();
    assert_eq!(short.lines().next(), Some(last), "{short}");
    assert_eq!(short.matches("\n=== ").count(), families.len(), "{short}");
    assert!(
        !short.contains("note (why this case exists)") && short.len() < human.len() / 2,
        "{short}"
    );
    assert!(
        human.contains("float64 is not built in this backend"),
        "{human}"
    );
    let md = String::from_utf8(nllspec(&[&base[..], &["--format", "markdown"]].concat()).stdout)
        .unwrap();
    assert!(
        md.contains(&format!("| {missing} | grad_input: missing |")),
        "{md}"
    );
    assert!(md.contains("float64 is not built in this backend"), "{md}");
}

#[test]
fn markdown_keeps_a_crash_traceback() {
    // the traceback's text is made at run time, so that the command line (which names the
    // implementation) does not contain it
    let cmd = r#"exec:read l; printf 'Traceback (most recent call last):\n  boom %s\n' $((6*7)) >&2; exit 1"#;
    let golden = seed();
    let out = nllspec(&[
        "run",
        "--golden",
        &golden,
        "--impl",
        cmd,
        "--format",
        "markdown",
        "--filter",
        "fix_1x5@float64",
    ]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("Traceback (most recent call last):\n  boom 42"),
        "{md}"
    );
}
