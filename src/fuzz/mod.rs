//! Beyond the golden suite: `nllspec fuzz` draws cases from the whole case space
//! ([`strategy`]), judges an implementation on each against native ([`oracle`]) exactly as a
//! golden case is judged against PyTorch, groups the disagreements by behaviour (the op and the
//! cause), shrinks one per behaviour to a minimal case ([`shrink`]), optionally confirms it
//! with real torch, and writes it as a spec case ([`spec_out`]) that golden/export.py turns
//! into a PyTorch-verified golden case. `nllspec shrink` is the shrinking step alone, for a
//! golden case that failed.

pub mod oracle;
pub mod shrink;
pub mod spec_out;
pub mod strategy;

use crate::golden::format::{Case, Expected, ExpectedError, Values, parse_tensor};
use crate::impls::Implementation;
use crate::judge::{Messages, Verdict, judge};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use shrink::{Shrunk, Subject};
use std::time::{Duration, Instant};

/// How long a fuzz campaign runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    Time(Duration),
    Cases(usize),
}

#[derive(Debug, Clone)]
pub struct FuzzOptions {
    pub seed: u64,
    pub budget: Budget,
    /// Per behaviour found.
    pub shrink_budget: Duration,
    /// A Python with torch 2.15 to confirm each minimal case with (`--torch-python`).
    pub torch_python: Option<String>,
}

/// Whether real torch confirmed a minimal case.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmed {
    /// Not asked (no `--torch-python`).
    NotChecked,
    /// The implementation fails it against PyTorch's own answer too.
    Yes,
    /// It does not (native and PyTorch disagree there): not counted.
    No(String),
}

/// One behaviour found: every case that failed with this op and cause.
#[derive(Debug, Clone)]
pub struct Finding {
    pub op: &'static str,
    pub cause: String,
    pub count: usize,
    /// The case number and the time at which it was first seen.
    pub first_case: usize,
    pub first_after: Duration,
    /// The simplest case seen, and the detail of its failure.
    pub example: Subject,
    pub detail: String,
    pub shrunk: Option<Shrunk>,
    pub confirmed: Confirmed,
}

impl Finding {
    /// The minimal case (shrunk, or the example when shrinking did not get anywhere).
    pub fn minimal(&self) -> &Subject {
        self.shrunk.as_ref().map_or(&self.example, |s| &s.subject)
    }
}

#[derive(Debug, Clone)]
pub struct FuzzReport {
    pub seed: u64,
    pub cases: usize,
    pub elapsed: Duration,
    /// Time spent drawing, running and judging the cases (shrinking and torch excluded).
    pub judging: Duration,
    pub findings: Vec<Finding>,
    /// Stopped by SIGINT or SIGTERM.
    pub interrupted: bool,
}

impl FuzzReport {
    /// Cases drawn, run and judged per second.
    pub fn rate(&self) -> f64 {
        self.cases as f64 / self.judging.as_secs_f64().max(1e-9)
    }

    /// The findings that count (not refuted by torch).
    pub fn counted(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| !matches!(f.confirmed, Confirmed::No(_)))
    }
}

/// The proptest runner a seed gives: the same seed draws the same cases.
fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(!seed).to_le_bytes());
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// The `n`th case a seed draws, `n` from 0 (for `--replay`, and tests).
pub fn draw(seed: u64, n: usize) -> Option<Subject> {
    let mut r = runner(seed);
    let plans = strategy::plans();
    let mut last = None;
    for _ in 0..=n {
        last = Some(plans.new_tree(&mut r).ok()?.current());
    }
    last.map(|p| strategy::subject(&p))
}

/// Runs a campaign against `imp`, telling `progress` the cases done so far.
pub fn fuzz(
    imp: &dyn Implementation,
    opts: &FuzzOptions,
    progress: &mut dyn FnMut(usize),
) -> FuzzReport {
    let began = Instant::now();
    let mut r = runner(opts.seed);
    let plans = strategy::plans();
    let mut findings: Vec<Finding> = Vec::new();
    let mut cases = 0;
    let mut interrupted = false;
    loop {
        let done = match opts.budget {
            Budget::Time(t) => began.elapsed() >= t,
            Budget::Cases(n) => cases >= n,
        };
        if done {
            break;
        }
        if crate::interrupt::requested().is_some() {
            interrupted = true;
            break;
        }
        let Ok(tree) = plans.new_tree(&mut r) else {
            break;
        };
        let subject = strategy::subject(&tree.current());
        let case = oracle::case(
            &format!("fuzz/{}/{cases}", opts.seed),
            subject.call.clone(),
            subject.grad_output.clone(),
        );
        if let Some(f) = oracle::disagreement(imp, &case) {
            let (op, cause) = (subject.call.op().name(), f.cause());
            match findings.iter_mut().find(|x| x.op == op && x.cause == cause) {
                Some(x) => {
                    x.count += 1;
                    if subject.complexity() < x.example.complexity() {
                        x.example = subject;
                        x.detail = f.detail();
                    }
                }
                None => findings.push(Finding {
                    op,
                    cause,
                    count: 1,
                    first_case: cases,
                    first_after: began.elapsed(),
                    example: subject,
                    detail: f.detail(),
                    shrunk: None,
                    confirmed: Confirmed::NotChecked,
                }),
            }
        }
        cases += 1;
        if cases % 256 == 0 {
            progress(cases);
        }
    }
    let judging = began.elapsed();
    for f in &mut findings {
        if crate::interrupt::requested().is_some() {
            break;
        }
        f.shrunk = shrink::shrink(imp, f.example.clone(), &f.cause, opts.shrink_budget);
        if let Some(py) = &opts.torch_python {
            f.confirmed = confirm(imp, f.minimal(), &f.cause, py);
        }
    }
    findings.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_case.cmp(&b.first_case)));
    FuzzReport {
        seed: opts.seed,
        cases,
        elapsed: began.elapsed(),
        judging,
        findings,
        interrupted,
    }
}

/// Runs `subject` under real torch (`python` with torch 2.15) through `nllspec show --torch`'s
/// snippet, and judges `imp` against PyTorch's own answer: whether it still fails, with `cause`.
pub fn confirm(
    imp: &dyn Implementation,
    subject: &Subject,
    cause: &str,
    python: &str,
) -> Confirmed {
    match torch_case(subject, python) {
        Err(why) => Confirmed::No(why),
        Ok(case) => {
            let outcome = crate::execution::run_guarded(imp, &crate::impls::Request::of(&case));
            match judge(&case, &outcome, Messages::Kind) {
                Verdict::Fail(f) if f.cause() == cause => Confirmed::Yes,
                Verdict::Fail(f) => Confirmed::No(format!("against PyTorch it fails otherwise: {}", f.cause())),
                _ => Confirmed::No("PyTorch's own answer is the implementation's: native differs from PyTorch here".into()),
            }
        }
    }
}

/// The case with PyTorch's answer as the expected one, from running its snippet.
fn torch_case(subject: &Subject, python: &str) -> Result<Case, String> {
    use std::io::Write;
    let native = oracle::case("confirm", subject.call.clone(), subject.grad_output.clone());
    let snippet = crate::repro::torch_snippet(&native);
    let mut child = std::process::Command::new(python)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(snippet.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut values: Option<Values> = None;
    for line in stdout.lines() {
        let (name, json) = line.split_once(' ').unwrap_or((line, ""));
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("torch printed {line:?}: {e}"))?;
        let t = parse_tensor(&v, name).map_err(|e| e.to_string())?;
        match (name, &mut values) {
            ("output", _) => {
                values = Some(Values {
                    output: t,
                    grad_input: None,
                })
            }
            ("grad_input", Some(v)) => v.grad_input = Some(t),
            _ => {}
        }
    }
    let expected = match (values, out.status.success()) {
        (Some(v), true) => Expected::Values {
            torch: v,
            reference: None,
        },
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("").to_string();
            // torch's message is native's, word for word, where they agree on the rejection
            match &native.expected {
                Expected::Error(e) if last == format!("{}: {}", e.type_name(), e.message) => {
                    Expected::Error(ExpectedError {
                        kind: e.kind,
                        py_type: e.py_type,
                        message: e.message.clone(),
                    })
                }
                _ => {
                    return Err(format!(
                        "PyTorch raised where native did not, or otherwise: {last}"
                    ));
                }
            }
        }
    };
    Ok(Case { expected, ..native })
}

/// Shrinks a golden case that `imp` fails: its cause against PyTorch's answer, then smaller
/// cases that `imp` still fails alike against native's.
pub fn shrink_golden(
    imp: &dyn Implementation,
    case: &Case,
    budget: Duration,
) -> Result<Shrunk, String> {
    let outcome = crate::execution::run_guarded(imp, &crate::impls::Request::of(case));
    let cause = match judge(case, &outcome, Messages::Kind) {
        Verdict::Fail(f) => f.cause(),
        v => return Err(format!("{} does not fail {}: {v:?}", imp.name(), case.id)),
    };
    let start = Subject {
        call: case.call.clone(),
        grad_output: case.grad_output.clone(),
    };
    shrink::shrink(imp, start, &cause, budget).ok_or_else(|| {
        format!(
            "{} fails {} against PyTorch's answer ({cause}) but not alike against native's",
            imp.name(),
            case.id
        )
    })
}

/// A subject for a person: the op, its attributes and every tensor with its values.
pub fn describe(s: &Subject) -> String {
    let c = &s.call;
    let mut out = format!(
        "  op:          {}\n  attrs:       {}\n",
        c.op().name(),
        crate::impls::protocol::attrs_to_json(c)
    );
    for (name, t) in [
        ("input", Some(c.input())),
        ("target", c.target()),
        ("weight", c.weight()),
        ("grad_output", s.grad_output.as_ref()),
    ] {
        if let Some(t) = t {
            let j = crate::golden::format::tensor_to_json(t);
            out.push_str(&format!(
                "  {:<12} {} {} {}\n",
                format!("{name}:"),
                t.dtype().name(),
                crate::tensor::fmt_shape(t.shape()),
                j["data"]
            ));
        }
    }
    out
}

/// How many elements a subject's tensors hold.
pub fn elements(s: &Subject) -> usize {
    [
        Some(s.call.input()),
        s.call.target(),
        s.call.weight(),
        s.grad_output.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|t| t.numel())
    .sum()
}
