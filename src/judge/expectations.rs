//! Known divergences of an implementation, each with its reason (spec/expectations/*.json).
//!
//! Strict, as wpt's and array-api-tests' expectation lists are: a case expected to fail that
//! passes is an error (`xpass`), and an entry that matches no case of the whole suite is an
//! error (a stale or misspelled entry must not hide anything; [`super::audit`] checks every
//! entry). An entry may instead mark its cases `flaky` (wpt's `known_intermittent`): any
//! outcome is accepted and counted as such.

use super::{Loosen, Verdict};
use crate::golden::format::Tolerance;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The final status of a case for one implementation (contract section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Passed.
    Pass,
    /// Failed: the run is red.
    Fail,
    /// Not covered by the implementation (`unsupported`).
    Skip,
    /// Failed, as its expectation says.
    Xfail,
    /// Passed although expected to fail: an error.
    Xpass,
    /// The output is right; the implementation cannot compute the gradient (protocol 1's
    /// `grad_input_unsupported`). Does not fail the run.
    ForwardOnly,
    /// Covered by a `flaky` entry: passed, failed or crashed, all accepted.
    Flaky,
    /// Never judged: the run was interrupted (SIGINT, SIGTERM) before this case ended.
    NotRun,
}

impl Status {
    /// The status's name in reports (`forward_only`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Xfail => "xfail",
            Status::Xpass => "xpass",
            Status::ForwardOnly => "forward_only",
            Status::Flaky => "flaky",
            Status::NotRun => "not_run",
        }
    }

    /// Every status, in the order reports count them.
    pub const ALL: [Status; 8] = [
        Status::Pass,
        Status::Fail,
        Status::Skip,
        Status::Xfail,
        Status::Xpass,
        Status::ForwardOnly,
        Status::Flaky,
        Status::NotRun,
    ];

    /// Whether the run is still green with this status (an interrupted run is judged by its
    /// interruption, not by its `not_run` cases).
    pub fn ok(self) -> bool {
        !matches!(self, Status::Fail | Status::Xpass)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
/// A known divergence: the cases it matches are expected to fail (or, `flaky`, to do anything).
pub struct Entry {
    /// A case id, or a pattern where `*` stands for any run of characters.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Why the implementation diverges from PyTorch here.
    pub reason: String,
    /// The cases' outcome is not deterministic (a heap corruption, a race): pass, fail and
    /// crash are all accepted, each counted as [`Status::Flaky`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
}

/// Which of a case's results a tolerance entry loosens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The output.
    Output,
    /// The gradient.
    GradInput,
    /// Both.
    Both,
}

/// A looser tolerance for the cases matching `pattern` (PyTorch OpInfo's `toleranceOverride`):
/// a GPU's float16 gradients are legitimately further from the truth than the CPU's.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToleranceEntry {
    #[serde(rename = "match")]
    /// A case id, or a pattern where `*` stands for any run of characters.
    pub pattern: String,
    /// Which results it loosens.
    pub field: Field,
    /// The relative tolerance at least.
    pub rtol: f64,
    /// The absolute tolerance at least.
    pub atol: f64,
    /// Why the default does not fit.
    pub reason: String,
}

impl ToleranceEntry {
    /// How reports name it: `pattern (field)`.
    pub fn label(&self) -> String {
        let field = match self.field {
            Field::Output => "output",
            Field::GradInput => "grad_input",
            Field::Both => "both",
        };
        format!("{} ({field})", self.pattern)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
/// An implementation's expectations file (spec/FORMAT.md, "Expectations files").
pub struct Expectations {
    /// The implementation's name (or its whole `exec:COMMAND`).
    pub implementation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Free text for a person.
    pub note: Option<String>,
    /// The fewest cases that must pass (or answer forward-only) on a whole-suite run: an
    /// adapter upgrade that turns answers into skips fails the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_passed: Option<usize>,
    #[serde(default)]
    /// Known divergences.
    pub expected_failures: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Looser tolerances.
    pub tolerances: Vec<ToleranceEntry>,
    /// The file it was read from.
    #[serde(skip)]
    pub source: Option<std::path::PathBuf>,
}

/// An expectations file that cannot be used: the file and what is wrong with it.
#[derive(Debug)]
pub struct ExpectationsError {
    /// The file.
    pub file: std::path::PathBuf,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with an expectations file.
#[derive(Debug)]
pub enum Problem {
    /// It cannot be read.
    Read(std::io::Error),
    /// It is not an expectations file.
    Json(serde_json::Error),
    /// An entry of `list` (`expected_failures` or `tolerances`) without a reason.
    NoReason {
        /// `expected_failures` or `tolerances`.
        list: &'static str,
        /// The entry's position.
        index: usize,
        /// The entry's pattern.
        pattern: String,
    },
    /// A tolerance entry whose rtol or atol is negative or not finite.
    BadTolerance {
        /// The entry's position.
        index: usize,
        /// The entry's pattern.
        pattern: String,
    },
}

impl std::fmt::Display for ExpectationsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.display();
        match &self.problem {
            Problem::Read(_) => write!(f, "{file}: cannot read"),
            Problem::Json(_) => write!(f, "{file}: not an expectations file (spec/FORMAT.md)"),
            Problem::NoReason {
                list,
                index,
                pattern,
            } => write!(
                f,
                "{file}: {list}[{index}] ({pattern}): a reason is required"
            ),
            Problem::BadTolerance { index, pattern } => {
                write!(
                    f,
                    "{file}: tolerances[{index}] ({pattern}): rtol and atol must be finite and non-negative"
                )
            }
        }
    }
}

impl std::error::Error for ExpectationsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            Problem::Read(e) => Some(e),
            Problem::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl Expectations {
    /// No expectations: every case is expected to pass.
    pub fn none(implementation: &str) -> Expectations {
        Expectations {
            implementation: implementation.to_string(),
            note: None,
            min_passed: None,
            expected_failures: vec![],
            tolerances: vec![],
            source: None,
        }
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Expectations, ExpectationsError> {
        let err = |problem| ExpectationsError {
            file: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(Problem::Read(e)))?;
        Expectations::parse(&text, path)
    }

    /// An expectations file's text, read from `path` (named in errors and failure messages).
    pub fn parse(text: &str, path: &Path) -> Result<Expectations, ExpectationsError> {
        let err = |problem| ExpectationsError {
            file: path.to_path_buf(),
            problem,
        };
        let mut e: Expectations = serde_json::from_str(text).map_err(|e| err(Problem::Json(e)))?;
        e.source = Some(path.to_path_buf());
        for (i, entry) in e.expected_failures.iter().enumerate() {
            if entry.reason.trim().is_empty() {
                return Err(err(Problem::NoReason {
                    list: "expected_failures",
                    index: i,
                    pattern: entry.pattern.clone(),
                }));
            }
        }
        for (i, t) in e.tolerances.iter().enumerate() {
            if t.reason.trim().is_empty() {
                return Err(err(Problem::NoReason {
                    list: "tolerances",
                    index: i,
                    pattern: t.pattern.clone(),
                }));
            }
            if !(t.rtol.is_finite() && t.atol.is_finite() && t.rtol >= 0.0 && t.atol >= 0.0) {
                return Err(err(Problem::BadTolerance {
                    index: i,
                    pattern: t.pattern.clone(),
                }));
            }
        }
        Ok(e)
    }

    /// The entry covering `id`, if any.
    pub fn find(&self, id: &str) -> Option<&Entry> {
        self.expected_failures
            .iter()
            .find(|e| wildcard(&e.pattern, id))
    }

    /// Entries that match none of `ids`.
    pub fn unmatched<'a>(&'a self, ids: &[&str]) -> Vec<&'a Entry> {
        self.expected_failures
            .iter()
            .filter(|e| !ids.iter().any(|id| wildcard(&e.pattern, id)))
            .collect()
    }

    /// Tolerance entries that match none of `ids` (a typo must not silently loosen nothing).
    pub fn unmatched_tolerances<'a>(&'a self, ids: &[&str]) -> Vec<&'a ToleranceEntry> {
        self.tolerances
            .iter()
            .filter(|e| !ids.iter().any(|id| wildcard(&e.pattern, id)))
            .collect()
    }

    /// The file's text as the writer saves it (pretty JSON, the keys in their documented order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The looser tolerances for `id` (the widest of every matching entry, per field), and the
    /// entries they come from; `None` when no entry matches.
    pub fn loosen(&self, id: &str) -> Option<(Loosen, Vec<&ToleranceEntry>)> {
        let entries: Vec<&ToleranceEntry> = self
            .tolerances
            .iter()
            .filter(|t| wildcard(&t.pattern, id))
            .collect();
        if entries.is_empty() {
            return None;
        }
        let widen = |a: Option<Tolerance>, t: &ToleranceEntry| {
            let (rtol, atol) = a.map_or((t.rtol, t.atol), |a| {
                (a.rtol.max(t.rtol), a.atol.max(t.atol))
            });
            Some(Tolerance { rtol, atol })
        };
        let mut l = Loosen::default();
        for t in &entries {
            if t.field != Field::GradInput {
                l.output = widen(l.output, t);
            }
            if t.field != Field::Output {
                l.grad_input = widen(l.grad_input, t);
            }
        }
        Some((l, entries))
    }

    /// Applies the expectations to a verdict: the final status and its detail.
    pub fn apply(&self, id: &str, verdict: &Verdict) -> (Status, String) {
        let entry = self.find(id);
        match (verdict, entry) {
            (Verdict::Pass, None) => (Status::Pass, String::new()),
            (Verdict::ForwardOnly(r), None) => (Status::ForwardOnly, format!("forward only: {r}")),
            (Verdict::Fail(f), None) => (Status::Fail, f.detail()),
            (Verdict::Unsupported(r), _) => (Status::Skip, r.clone()),
            (Verdict::Pass | Verdict::ForwardOnly(_), Some(e)) if e.flaky => (
                Status::Flaky,
                format!("flaky ({}): passed this time", e.reason),
            ),
            (Verdict::Fail(f), Some(e)) if e.flaky => (
                Status::Flaky,
                format!("flaky ({}): failed this time: {}", e.reason, f.detail()),
            ),
            (Verdict::Fail(f), Some(e)) => (
                Status::Xfail,
                format!("expected failure ({}): {}", e.reason, f.detail()),
            ),
            (Verdict::Pass | Verdict::ForwardOnly(_), Some(e)) => (
                Status::Xpass,
                format!(
                    "passed, but the expectations entry \"{}\" says it fails ({}): the audit says whether to narrow or remove it",
                    e.pattern, e.reason
                ),
            ),
        }
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("nll_loss/errors/*", "nll_loss/errors/x@float32"));
        assert!(wildcard("*@float16", "a/b@float16"));
        assert!(wildcard("a*b*c", "abc"));
        assert!(!wildcard("a*b*c", "acb"));
        assert!(!wildcard("ab*ba", "aba"));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("exact", "exact2"));
    }

    #[test]
    fn strictness() {
        let e = Expectations {
            implementation: "x".into(),
            note: None,
            min_passed: None,
            expected_failures: vec![
                Entry {
                    pattern: "a/*".into(),
                    reason: "r".into(),
                    flaky: false,
                },
                Entry {
                    pattern: "f/*".into(),
                    reason: "heap".into(),
                    flaky: true,
                },
            ],
            tolerances: vec![],
            source: None,
        };
        let bad = Verdict::Fail(super::super::Failure::Broken("bad".into()));
        assert_eq!(e.apply("a/1", &bad).0, Status::Xfail);
        assert_eq!(e.apply("a/1", &Verdict::Pass).0, Status::Xpass);
        assert_eq!(
            e.apply("a/1", &Verdict::ForwardOnly("no autograd".into()))
                .0,
            Status::Xpass
        );
        assert_eq!(e.apply("b/1", &bad).0, Status::Fail);
        assert_eq!(
            e.apply("b/1", &Verdict::ForwardOnly("no autograd".into()))
                .0,
            Status::ForwardOnly
        );
        assert_eq!(e.unmatched(&["b/1"]).len(), 2);
        assert!(!Status::Xpass.ok());
        assert!(Status::ForwardOnly.ok());
        // a flaky entry accepts every outcome, and a skip stays a skip
        assert_eq!(
            e.apply("f/1", &bad),
            (Status::Flaky, "flaky (heap): failed this time: bad".into())
        );
        assert_eq!(e.apply("f/1", &Verdict::Pass).0, Status::Flaky);
        assert_eq!(
            e.apply("f/1", &Verdict::Unsupported("no".into())).0,
            Status::Skip
        );
        assert!(Status::Flaky.ok());
        // every status once in ALL, by an exhaustive match (a new status must be added here)
        let position = |s: Status| match s {
            Status::Pass => 0,
            Status::Fail => 1,
            Status::Skip => 2,
            Status::Xfail => 3,
            Status::Xpass => 4,
            Status::ForwardOnly => 5,
            Status::Flaky => 6,
            Status::NotRun => 7,
        };
        let listed: std::collections::BTreeSet<usize> =
            Status::ALL.iter().map(|s| position(*s)).collect();
        assert_eq!(listed, (0..8).collect());
        let names: std::collections::BTreeSet<&str> =
            Status::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), 8);
    }

    #[test]
    fn tolerance_entries_widen_per_field() {
        let e: Expectations = serde_json::from_str(
            r#"{"implementation": "x", "tolerances": [
                {"match": "a/*", "field": "grad_input", "rtol": 0.1, "atol": 0.0, "reason": "r"},
                {"match": "a/b*", "field": "both", "rtol": 0.01, "atol": 0.5, "reason": "r"}]}"#,
        )
        .unwrap();
        let (l, entries) = e.loosen("a/b/c").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            l.output,
            Some(Tolerance {
                rtol: 0.01,
                atol: 0.5
            })
        );
        assert_eq!(
            l.grad_input,
            Some(Tolerance {
                rtol: 0.1,
                atol: 0.5
            })
        );
        let (l, _) = e.loosen("a/x").unwrap();
        assert_eq!(l.output, None);
        assert!(e.loosen("z").is_none());
        assert_eq!(e.unmatched_tolerances(&["a/x"]).len(), 1);
    }
}
