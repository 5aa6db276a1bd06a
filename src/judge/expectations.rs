//! Known divergences of an implementation, each with its reason (spec/expectations/*.json).
//!
//! As in wasmtime's wast runner, expectations are strict: a case expected to fail that passes
//! is an error (`xpass`), and an entry that matches no case is an error (a stale or misspelled
//! entry must not hide anything).

use super::Verdict;
use serde::Deserialize;
use std::path::Path;

/// The final status of a case for one implementation (contract section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// Failed, as its expectation says.
    Xfail,
    /// Passed although expected to fail: an error.
    Xpass,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Xfail => "xfail",
            Status::Xpass => "xpass",
        }
    }

    /// Whether the run is still green with this status.
    pub fn ok(self) -> bool {
        matches!(self, Status::Pass | Status::Skip | Status::Xfail)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// A case id, or a pattern where `*` stands for any run of characters.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Why the implementation diverges from PyTorch here.
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    pub implementation: String,
    #[serde(default)]
    pub note: Option<String>,
    pub expected_failures: Vec<Entry>,
}

impl Expectations {
    pub fn none(implementation: &str) -> Expectations {
        Expectations { implementation: implementation.to_string(), note: None, expected_failures: vec![] }
    }

    pub fn load(path: &Path) -> Result<Expectations, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let e: Expectations = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, entry) in e.expected_failures.iter().enumerate() {
            if entry.reason.trim().is_empty() {
                return Err(format!("{}: expected_failures[{i}] ({}): a reason is required", path.display(), entry.pattern));
            }
        }
        Ok(e)
    }

    /// The entry covering `id`, if any.
    pub fn find(&self, id: &str) -> Option<&Entry> {
        self.expected_failures.iter().find(|e| wildcard(&e.pattern, id))
    }

    /// Entries that match none of `ids`.
    pub fn unmatched<'a>(&'a self, ids: &[&str]) -> Vec<&'a Entry> {
        self.expected_failures.iter().filter(|e| !ids.iter().any(|id| wildcard(&e.pattern, id))).collect()
    }

    /// Applies the expectations to a verdict: the final status and its detail.
    pub fn apply(&self, id: &str, verdict: &Verdict) -> (Status, String) {
        let entry = self.find(id);
        match (verdict, entry) {
            (Verdict::Pass(_), None) => (Status::Pass, String::new()),
            (Verdict::Fail(d), None) => (Status::Fail, d.clone()),
            (Verdict::Skip(r), _) => (Status::Skip, r.clone()),
            (Verdict::Fail(d), Some(e)) => (Status::Xfail, format!("expected failure ({}): {d}", e.reason)),
            (Verdict::Pass(_), Some(e)) => (
                Status::Xpass,
                format!("passed, but the expectations file says it fails (\"{}\": {}); remove the entry", e.pattern, e.reason),
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
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
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
            expected_failures: vec![Entry { pattern: "a/*".into(), reason: "r".into() }],
        };
        assert_eq!(e.apply("a/1", &Verdict::Fail("bad".into())).0, Status::Xfail);
        assert_eq!(e.apply("a/1", &Verdict::Pass(None)).0, Status::Xpass);
        assert_eq!(e.apply("b/1", &Verdict::Fail("bad".into())).0, Status::Fail);
        assert_eq!(e.unmatched(&["b/1"]).len(), 1);
        assert!(!Status::Xpass.ok());
    }
}
