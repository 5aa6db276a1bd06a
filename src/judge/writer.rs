//! `nllspec run --write-expectations FILE`: an implementation's expectations written from a
//! run, as wpt's `update-expectations` writes its metadata, so that the next identical run
//! exits 0.
//!
//! One entry per behaviour, not per case: a failing case's id is collapsed over its dtype
//! suffix and its matrix values (`.../reduction=*@*`) only where every case of the suite the
//! pattern matches ran, failed, and failed with the same cause, so that no written entry can
//! match a passing, skipped or unseen case. On update, an existing entry whose matched cases
//! all still fail keeps its reason; one that matches no case, or matched a case that now
//! passes or is skipped, is removed and listed, and the failing cases it covered get entries
//! that inherit its reason. A new entry's reason is a draft made from the failure's cause and
//! detail, for a person to edit. `flaky` entries are kept while they match a case (their
//! outcome says nothing), `tolerances` while they match a case, `min_passed` always.

use super::expectations::{Entry, Expectations, Status, wildcard};
use std::collections::{HashMap, HashSet};

/// One case's end, as the writer needs it.
#[derive(Debug, Clone, Copy)]
pub struct Ran<'a> {
    /// The case's id.
    pub id: &'a str,
    /// Its status under the expectations it was judged with.
    pub status: Status,
    /// A failure's cause (also for an expected failure).
    pub cause: Option<&'a str>,
    /// The failure's own detail (its first line drafts the reason).
    pub detail: &'a str,
}

impl Ran<'_> {
    /// The verdict failed, whatever the expectations made of it.
    fn failed(&self) -> bool {
        matches!(self.status, Status::Fail | Status::Xfail)
    }
}

/// The expectations written, and what changed.
#[derive(Debug, Clone)]
pub struct Written {
    /// The file's new content.
    pub expectations: Expectations,
    /// Entries kept as they were.
    pub kept: Vec<Entry>,
    /// Entries added.
    pub added: Vec<Entry>,
    /// Each removed entry with why.
    pub removed: Vec<(Entry, String)>,
    /// Tolerance entries (`pattern (field)`) removed because they match no case.
    pub tolerances_removed: Vec<String>,
}

impl Written {
    /// What changed, a line each, for the person who runs it.
    pub fn summary(&self, file: &str) -> String {
        let mut out = format!(
            "wrote {file}: {} entries kept, {} added, {} removed{}\n",
            self.kept.len(),
            self.added.len(),
            self.removed.len(),
            if self.added.iter().any(|e| e.reason.starts_with(DRAFT)) {
                " (edit the drafted reasons)"
            } else {
                ""
            }
        );
        for e in &self.added {
            out.push_str(&format!("  added   {}: {}\n", e.pattern, e.reason));
        }
        for (e, why) in &self.removed {
            out.push_str(&format!("  removed {}: {why}\n", e.pattern));
        }
        for t in &self.tolerances_removed {
            out.push_str(&format!(
                "  removed tolerance {t}: it matches no case of the suite\n"
            ));
        }
        out
    }
}

/// An expected failure's detail without its "expected failure (reason): " prefix.
pub fn failure_detail(detail: &str) -> &str {
    detail
        .strip_prefix("expected failure (")
        .and_then(|d| d.split_once("): ").map(|(_, rest)| rest))
        .unwrap_or(detail)
}

/// How a drafted reason begins.
pub const DRAFT: &str = "draft, to be edited:";

/// Writes `base` anew for `implementation` from a run: `suite` is every case id of the suite,
/// `ran` the cases that ran (in suite order).
pub fn write(
    base: &Expectations,
    implementation: &str,
    suite: &[&str],
    ran: &[Ran<'_>],
) -> Written {
    let by_id: HashMap<&str, &Ran> = ran
        .iter()
        .filter(|r| r.status != Status::NotRun)
        .map(|r| (r.id, r))
        .collect();
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    // the reason each failing case had under an entry that is removed
    let mut inherited: HashMap<&str, &str> = HashMap::new();
    for e in &base.expected_failures {
        let in_suite: Vec<&str> = suite
            .iter()
            .copied()
            .filter(|id| wildcard(&e.pattern, id))
            .collect();
        if in_suite.is_empty() {
            removed.push((e.clone(), "it matches no case of the suite".to_string()));
            continue;
        }
        if e.flaky {
            kept.push(e.clone());
            continue;
        }
        let matched: Vec<&Ran> = in_suite
            .iter()
            .filter_map(|id| by_id.get(id).copied())
            .collect();
        let unlike: Vec<&str> = matched
            .iter()
            .filter(|r| !r.failed())
            .map(|r| r.id)
            .collect();
        if unlike.is_empty() {
            kept.push(e.clone());
            continue;
        }
        for r in matched.iter().filter(|r| r.failed()) {
            inherited.insert(r.id, &e.reason);
        }
        let more = if unlike.len() > 3 {
            format!(" and {} more", unlike.len() - 3)
        } else {
            String::new()
        };
        removed.push((
            e.clone(),
            format!(
                "it matched cases that no longer fail: {}{more}",
                unlike[..unlike.len().min(3)].join(", ")
            ),
        ));
    }
    let covered = |id: &str, entries: &[Entry]| entries.iter().any(|e| wildcard(&e.pattern, id));
    let mut added: Vec<Entry> = Vec::new();
    for r in ran.iter().filter(|r| r.failed()) {
        if covered(r.id, &kept) || covered(r.id, &added) {
            continue;
        }
        let fits = |pattern: &str| {
            suite.iter().filter(|id| wildcard(pattern, id)).all(|id| {
                by_id
                    .get(id)
                    .is_some_and(|o| o.failed() && o.cause == r.cause)
                    && !covered(id, &kept)
                    && !covered(id, &added)
            })
        };
        let pattern = candidates(r.id)
            .into_iter()
            .find(|p| fits(p))
            .unwrap_or_else(|| r.id.to_string());
        let reasons: HashSet<Option<&&str>> = suite
            .iter()
            .filter(|id| wildcard(&pattern, id))
            .map(|id| inherited.get(id))
            .collect();
        let reason = match reasons.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(reason)] => reason.to_string(),
            _ => draft(r),
        };
        added.push(Entry {
            pattern,
            reason,
            flaky: false,
        });
    }
    let ids_match = |pattern: &str| suite.iter().any(|id| wildcard(pattern, id));
    let (tolerances, dropped): (Vec<_>, Vec<_>) = base
        .tolerances
        .iter()
        .cloned()
        .partition(|t| ids_match(&t.pattern));
    let mut all: Vec<Entry> = kept.iter().chain(&added).cloned().collect();
    all.sort_by(|a, b| a.pattern.cmp(&b.pattern));
    let expectations = Expectations {
        implementation: implementation.to_string(),
        note: base.note.clone().or_else(|| {
            Some(format!(
                "Written by `nllspec run --write-expectations` (nllspec {}); each reason says what the implementation does differently from PyTorch 2.15.",
                env!("CARGO_PKG_VERSION")
            ))
        }),
        min_passed: base.min_passed,
        expected_failures: all,
        tolerances,
        source: None,
    };
    Written {
        expectations,
        kept,
        added,
        removed,
        tolerances_removed: dropped.iter().map(|t| t.label()).collect(),
    }
}

fn draft(r: &Ran<'_>) -> String {
    let line = r.detail.lines().next().unwrap_or("");
    let line: String = if line.chars().count() > 160 {
        line.chars().take(160).collect::<String>() + "…"
    } else {
        line.to_string()
    };
    format!(
        "{DRAFT} {} (e.g. {}: {line})",
        r.cause.unwrap_or("fails"),
        r.id
    )
}

/// The patterns an id collapses to, the most general first: its dtype suffix and each matrix
/// value (a trailing `/key=value` segment) replaced by `*` in every combination, the id itself
/// last.
pub fn candidates(id: &str) -> Vec<String> {
    let (stem, dtype) = match id.rsplit_once('@') {
        Some((s, d)) => (s, Some(d)),
        None => (id, None),
    };
    let segments: Vec<&str> = stem.split('/').collect();
    let first_matrix = segments
        .iter()
        .rposition(|s| !s.contains('='))
        .map_or(0, |i| i + 1);
    let (family, matrix) = segments.split_at(first_matrix);
    // slots: the dtype first (the most common collapse), then the matrix values in order
    let slots = usize::from(dtype.is_some()) + matrix.len();
    let mut masks: Vec<u32> = (0..1u32 << slots.min(16)).collect();
    masks.sort_by(|a, b| {
        b.count_ones()
            .cmp(&a.count_ones())
            .then(a.reverse_bits().cmp(&b.reverse_bits()).reverse())
    });
    masks
        .into_iter()
        .map(|mask| {
            let wild = |slot: usize| mask >> slot & 1 == 1;
            let offset = usize::from(dtype.is_some());
            let mut p = family.join("/");
            for (i, m) in matrix.iter().enumerate() {
                let key = m.split_once('=').map_or(*m, |(k, _)| k);
                p.push_str(&if wild(offset + i) {
                    format!("/{key}=*")
                } else {
                    format!("/{m}")
                });
            }
            if let Some(d) = dtype {
                p.push('@');
                p.push_str(if wild(0) { "*" } else { d });
            }
            p
        })
        .collect()
}

/// An id without its dtype suffix and matrix values: the case family reports group by
/// (`cross_entropy/index/ignore_index` for `cross_entropy/index/ignore_index/reduction=mean@float16`).
pub fn family(id: &str) -> &str {
    let stem = id.rsplit_once('@').map_or(id, |(s, _)| s);
    let mut end = stem.len();
    while let Some(i) = stem[..end].rfind('/') {
        if stem[i + 1..end].contains('=') {
            end = i;
        } else {
            break;
        }
    }
    &stem[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran<'a>(id: &'a str, status: Status, cause: &'a str) -> Ran<'a> {
        Ran {
            id,
            status,
            cause: Some(cause),
            detail: "output: 1 of 1 elements differ",
        }
    }

    #[test]
    fn candidates_collapse_dtype_and_matrix_values() {
        let c = candidates("a/b/reduction=mean@float16");
        assert_eq!(
            c,
            [
                "a/b/reduction=*@*",
                "a/b/reduction=mean@*",
                "a/b/reduction=*@float16",
                "a/b/reduction=mean@float16"
            ]
        );
        assert_eq!(candidates("a/b"), ["a/b"]);
        assert_eq!(family("a/b/reduction=mean/w=1@float16"), "a/b");
        assert_eq!(family("a/b@float16"), "a/b");
    }

    #[test]
    fn collapses_only_where_every_matched_case_fails_alike() {
        let suite = [
            "f/r=mean@float16",
            "f/r=mean@float32",
            "f/r=sum@float16",
            "f/r=sum@float32",
            "g@float16",
            "g@float32",
        ];
        let v = "output: values differ";
        let runs = [
            ran("f/r=mean@float16", Status::Fail, v),
            ran("f/r=mean@float32", Status::Fail, v),
            ran("f/r=sum@float16", Status::Fail, v),
            ran("f/r=sum@float32", Status::Pass, ""),
            ran("g@float16", Status::Fail, v),
            ran("g@float32", Status::Fail, "grad_input: missing"),
        ];
        let w = write(&Expectations::none("x"), "x", &suite, &runs);
        let patterns: Vec<&str> = w
            .expectations
            .expected_failures
            .iter()
            .map(|e| e.pattern.as_str())
            .collect();
        // f/r=sum@float16 cannot join f/r=mean@float16 under f/r=*@float16: entries stay apart
        assert_eq!(
            patterns,
            ["f/r=mean@*", "f/r=sum@float16", "g@float16", "g@float32"]
        );
        assert!(
            w.added.iter().all(|e| e.reason.starts_with(DRAFT)),
            "{:?}",
            w.added
        );
        // no entry matches a passing case
        for e in &w.expectations.expected_failures {
            assert!(!wildcard(&e.pattern, "f/r=sum@float32"), "{}", e.pattern);
        }
    }

    #[test]
    fn an_update_keeps_reasons_and_lists_what_changed() {
        let suite = ["f@float16", "f@float32", "h@float32"];
        let base: Expectations = serde_json::from_str(
            r#"{"implementation": "x", "min_passed": 1, "expected_failures": [
                {"match": "f@*", "reason": "half precision"}, {"match": "gone", "reason": "old"},
                {"match": "h@*", "reason": "heap", "flaky": true}]}"#,
        )
        .unwrap();
        // f@float32 now passes: f@* is removed, f@float16 keeps its reason
        let runs = [
            ran("f@float16", Status::Xfail, "v"),
            ran("f@float32", Status::Xpass, "p"),
            ran("h@float32", Status::Flaky, ""),
        ];
        let w = write(&base, "x", &suite, &runs);
        let e = &w.expectations.expected_failures;
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].pattern.as_str(), e[0].reason.as_str()),
            ("f@float16", "half precision")
        );
        assert!(e[1].flaky);
        assert_eq!(w.removed.len(), 2);
        assert!(
            w.removed[0].1.contains("no longer fail: f@float32"),
            "{:?}",
            w.removed
        );
        assert_eq!(w.expectations.min_passed, Some(1));
        assert!(
            w.summary("x.json")
                .contains("removed gone: it matches no case"),
            "{}",
            w.summary("x.json")
        );
    }
}
