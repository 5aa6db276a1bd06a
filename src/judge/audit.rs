//! The audit of an implementation's expectations against a run: entries that match nothing,
//! entries that also cover passing cases, entries that only cover skips, tolerance entries no
//! case needed, and a gate that tested nothing.
//!
//! Its findings are not case results: reports show them in a section of their own and the
//! summary's totals count cases only. Entries are checked against every case of the suite,
//! whatever `--filter` selected (a misspelt id must not pass unnoticed under a filter); what
//! depends on outcomes (passing or skipped matches, the floor) only against the cases that ran.

use super::expectations::{Expectations, Status, wildcard};

/// One case's end, as the audit needs it.
#[derive(Debug, Clone, Copy)]
pub struct Judged<'a> {
    /// The case's id.
    pub id: &'a str,
    /// Its status.
    pub status: Status,
    /// The tolerance entries (`pattern (field)`) the case needed.
    pub loosened_by: &'a [String],
}

/// What the audit found about one entry, or about the implementation as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An expected failure that matches no case of the suite (stale or misspelt).
    Unmatched,
    /// A tolerance entry that matches no case of the suite.
    ToleranceUnmatched,
    /// An expected failure that matched passing cases (they are `xpass`): `failing` cases
    /// still fail under it, so it needs narrowing; with none, removing.
    MatchesPassing {
        /// The passing cases it matched.
        passing: Vec<String>,
        /// How many failing cases it matched besides.
        failing: usize,
    },
    /// An expected failure whose every case was skipped: unneeded, not a failure.
    OnlySkipped {
        /// How many.
        skipped: usize,
    },
    /// A tolerance entry whose cases all passed without it: unneeded, not a failure (a GPU's
    /// reductions are not always deterministic, so a run may not need what another did).
    ToleranceUnneeded,
    /// No case passed (nor answered forward-only): a gate that tests nothing.
    NothingPassed {
        /// How many cases ran.
        ran: usize,
    },
    /// Fewer cases passed than the expectations file's `min_passed`.
    BelowFloor {
        /// The floor.
        min_passed: usize,
        /// How many passed.
        passed: usize,
    },
}

/// A finding: the implementation, the entry it is about (`None`: the implementation as a
/// whole) with its reason, and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Whose expectations.
    pub implementation: String,
    /// The entry's pattern (a tolerance entry's `pattern (field)`).
    pub entry: Option<String>,
    /// The entry's reason.
    pub reason: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

impl Finding {
    /// Whether the finding fails the run.
    pub fn fails(&self) -> bool {
        !matches!(
            self.problem,
            Problem::OnlySkipped { .. } | Problem::ToleranceUnneeded
        )
    }

    /// A short name for the problem (the JSON report's `finding`).
    pub fn kind(&self) -> &'static str {
        match self.problem {
            Problem::Unmatched => "unmatched",
            Problem::ToleranceUnmatched => "tolerance_unmatched",
            Problem::MatchesPassing { .. } => "matches_passing",
            Problem::OnlySkipped { .. } => "only_skipped",
            Problem::ToleranceUnneeded => "tolerance_unneeded",
            Problem::NothingPassed { .. } => "nothing_passed",
            Problem::BelowFloor { .. } => "below_floor",
        }
    }

    /// The ids the finding is about (the passing cases an entry matched).
    pub fn cases(&self) -> &[String] {
        match &self.problem {
            Problem::MatchesPassing { passing, .. } => passing,
            _ => &[],
        }
    }

    /// What it means and what to do, for a person.
    pub fn detail(&self) -> String {
        let entry = self.entry.as_deref().unwrap_or("");
        let reason = self
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        match &self.problem {
            Problem::Unmatched => format!(
                "expected failure \"{entry}\"{reason} matches no case of the suite (stale or misspelt): remove or correct it"
            ),
            Problem::ToleranceUnmatched => format!(
                "tolerance entry {entry}{reason} matches no case of the suite (stale or misspelt): remove or correct it"
            ),
            Problem::MatchesPassing {
                passing,
                failing: 0,
            } => format!(
                "expected failure \"{entry}\"{reason} matched {} passing case(s) and none that fails: remove it ({})",
                passing.len(),
                list(passing)
            ),
            Problem::MatchesPassing { passing, failing } => format!(
                "expected failure \"{entry}\"{reason} matched {} passing case(s) beside {failing} failing: narrow it so that it leaves out {} (--write-expectations does)",
                passing.len(),
                list(passing)
            ),
            Problem::OnlySkipped { skipped } => {
                format!(
                    "expected failure \"{entry}\"{reason} matched only skipped cases ({skipped}): it is not needed"
                )
            }
            Problem::ToleranceUnneeded => {
                format!("tolerance entry {entry}{reason} was not needed by any case it matches")
            }
            Problem::NothingPassed { ran } => format!(
                "no case passed ({ran} ran): a gate that tests nothing is not green (an adapter answering \"unsupported\" to everything, say)"
            ),
            Problem::BelowFloor { min_passed, passed } => {
                format!(
                    "{passed} case(s) passed, fewer than the expectations file's min_passed {min_passed}"
                )
            }
        }
    }
}

fn list(ids: &[String]) -> String {
    let mut s: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
    if ids.len() > 5 {
        s.push("...");
    }
    s.join(", ")
}

/// Audits `expectations` for `implementation`: `suite` is every case id of the suite,
/// `judged` the cases that ran, `whole` whether every case ran (no filter, no interruption).
pub fn audit(
    implementation: &str,
    expectations: &Expectations,
    suite: &[&str],
    judged: &[Judged<'_>],
    whole: bool,
) -> Vec<Finding> {
    let finding = |entry: Option<String>, reason: Option<&str>, problem| Finding {
        implementation: implementation.to_string(),
        entry,
        reason: reason.map(str::to_string),
        problem,
    };
    let mut out = Vec::new();
    for e in &expectations.expected_failures {
        let in_suite = suite.iter().filter(|id| wildcard(&e.pattern, id)).count();
        if in_suite == 0 {
            out.push(finding(
                Some(e.pattern.clone()),
                Some(&e.reason),
                Problem::Unmatched,
            ));
            continue;
        }
        let ran: Vec<&Judged> = judged
            .iter()
            .filter(|j| wildcard(&e.pattern, j.id))
            .collect();
        let passing: Vec<String> = ran
            .iter()
            .filter(|j| j.status == Status::Xpass)
            .map(|j| j.id.to_string())
            .collect();
        if !passing.is_empty() {
            let failing = ran.iter().filter(|j| j.status == Status::Xfail).count();
            out.push(finding(
                Some(e.pattern.clone()),
                Some(&e.reason),
                Problem::MatchesPassing { passing, failing },
            ));
        } else if ran.len() == in_suite && ran.iter().all(|j| j.status == Status::Skip) {
            out.push(finding(
                Some(e.pattern.clone()),
                Some(&e.reason),
                Problem::OnlySkipped { skipped: ran.len() },
            ));
        }
    }
    for t in &expectations.tolerances {
        let label = t.label();
        if !suite.iter().any(|id| wildcard(&t.pattern, id)) {
            out.push(finding(
                Some(label),
                Some(&t.reason),
                Problem::ToleranceUnmatched,
            ));
            continue;
        }
        let matched = judged.iter().any(|j| wildcard(&t.pattern, j.id));
        if matched && !judged.iter().any(|j| j.loosened_by.contains(&label)) {
            out.push(finding(
                Some(label),
                Some(&t.reason),
                Problem::ToleranceUnneeded,
            ));
        }
    }
    let passed = judged
        .iter()
        .filter(|j| matches!(j.status, Status::Pass | Status::ForwardOnly))
        .count();
    let ran = judged.iter().filter(|j| j.status != Status::NotRun).count();
    if ran > 0 && passed == 0 {
        out.push(finding(None, None, Problem::NothingPassed { ran }));
    }
    if let (true, Some(min_passed)) = (whole, expectations.min_passed)
        && passed < min_passed
    {
        out.push(finding(
            None,
            None,
            Problem::BelowFloor { min_passed, passed },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(json: &str) -> Expectations {
        serde_json::from_str(json).unwrap()
    }

    fn j(id: &str, status: Status) -> Judged<'_> {
        Judged {
            id,
            status,
            loosened_by: &[],
        }
    }

    #[test]
    fn every_kind_of_finding() {
        let e = exp(
            r#"{"implementation": "x", "min_passed": 3, "expected_failures": [
                {"match": "a/*", "reason": "broad"}, {"match": "b/1", "reason": "typo"},
                {"match": "s/*", "reason": "skips"}, {"match": "q/*", "reason": "gone"}],
                "tolerances": [{"match": "t/*", "field": "both", "rtol": 1, "atol": 1, "reason": "r"}]}"#,
        );
        let suite = ["a/1", "a/2", "s/1", "t/1", "q/1", "p/1"];
        let judged = [
            j("a/1", Status::Xfail),
            j("a/2", Status::Xpass),
            j("s/1", Status::Skip),
            j("t/1", Status::Pass),
            j("p/1", Status::Pass),
        ];
        let f = audit("x", &e, &suite, &judged, true);
        let kinds: Vec<&str> = f.iter().map(Finding::kind).collect();
        // q/* matches a case that did not run (as under a filter): no finding
        assert_eq!(
            kinds,
            [
                "matches_passing",
                "unmatched",
                "only_skipped",
                "tolerance_unneeded",
                "below_floor"
            ],
            "{f:?}"
        );
        assert!(
            f[0].detail()
                .contains("narrow it so that it leaves out a/2"),
            "{}",
            f[0].detail()
        );
        assert_eq!(f[0].cases(), ["a/2"]);
        assert!(f[0].fails() && f[1].fails() && !f[2].fails() && !f[3].fails() && f[4].fails());
        // under a filter the floor is not judged, but an unmatched entry still is
        let f = audit("x", &e, &suite, &judged[..1], false);
        assert_eq!(
            f.iter().map(Finding::kind).collect::<Vec<_>>(),
            ["unmatched", "nothing_passed"],
            "{f:?}"
        );
    }

    #[test]
    fn an_entry_matching_only_passing_cases_says_remove() {
        let e = exp(
            r#"{"implementation": "x", "expected_failures": [{"match": "a/*", "reason": "r"}]}"#,
        );
        let f = audit("x", &e, &["a/1"], &[j("a/1", Status::Xpass)], true);
        assert!(
            f[0].detail().contains("none that fails: remove it"),
            "{}",
            f[0].detail()
        );
    }
}
