//! Reports of a run: human (terminal), json (report v1), junit (CI systems), markdown (a
//! README or a pull-request comment). All four are rendered from the same [`Report`].

mod human;

use crate::execution::CaseResult;
use crate::golden::format::{Case, Expected};
use crate::golden::load::LoadedCase;
use crate::judge::audit::{Finding, Problem};
use crate::judge::expectations::Status;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

/// One case for one implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub id: String,
    pub implementation: String,
    pub status: Status,
    pub detail: String,
    /// For a failure (also an expected one): what it shares with others that failed alike.
    pub cause: Option<String>,
    /// The tolerance entries without which the case would have failed.
    pub loosened_by: Vec<String>,
    pub op: String,
    pub dtype: String,
    pub file: PathBuf,
}

impl ResultRow {
    pub fn new(loaded: &LoadedCase, implementation: &str, result: CaseResult) -> ResultRow {
        ResultRow {
            id: loaded.case.id.clone(),
            implementation: implementation.to_string(),
            status: result.status,
            detail: result.detail,
            cause: result.cause,
            loosened_by: result.loosened_by,
            op: loaded.case.call.op().name().to_string(),
            dtype: loaded.case.call.input().dtype().name().to_string(),
            file: loaded.file.clone(),
        }
    }

    /// The row as the expectations writer reads it (its detail without an expected failure's
    /// prefix).
    pub fn ran(&self) -> crate::judge::writer::Ran<'_> {
        crate::judge::writer::Ran {
            id: &self.id,
            status: self.status,
            cause: self.cause.as_deref(),
            detail: crate::judge::writer::failure_detail(&self.detail),
        }
    }

    /// The row as the expectations audit reads it.
    pub fn judged(&self) -> crate::judge::audit::Judged<'_> {
        crate::judge::audit::Judged {
            id: &self.id,
            status: self.status,
            loosened_by: &self.loosened_by,
        }
    }

    /// A case the run never judged (it was interrupted).
    pub fn not_run(
        loaded: &Case,
        file: &std::path::Path,
        implementation: &str,
        why: &str,
    ) -> ResultRow {
        ResultRow {
            id: loaded.id.clone(),
            implementation: implementation.to_string(),
            status: Status::NotRun,
            detail: why.to_string(),
            cause: None,
            loosened_by: vec![],
            op: loaded.call.op().name().to_string(),
            dtype: loaded.call.input().dtype().name().to_string(),
            file: file.to_path_buf(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub implementations: Vec<String>,
    /// One row per case and implementation: the summary's totals count these only.
    pub results: Vec<ResultRow>,
    /// The expectations audit (every implementation's), apart from the cases.
    pub audit: Vec<Finding>,
    /// What each implementation's first process wrote to stderr before it read its first
    /// request (interpreter and library banners), shown once instead of with every failure.
    pub startup: Vec<(String, String)>,
    /// The built-in suite's sha256 (the one `nllspec --version` names), when the run used it
    /// (no `--golden`).
    pub suite: Option<&'static str>,
    /// The signal that interrupted the run (SIGINT 2, SIGTERM 15): the cases left are
    /// `not_run`, the exit status 128 + the signal.
    pub interrupted: Option<i32>,
    pub elapsed: Duration,
    /// Why the run could not start or go on (exit status 2); the JSON report carries it.
    pub error: Option<String>,
}

/// A group's key (a cause, a reason) and its rows.
type Groups<'a> = Vec<(String, Vec<&'a ResultRow>)>;

/// Rows that share a cause (or a skip reason), most frequent first, then by cause.
fn grouped<'a>(
    rows: impl Iterator<Item = &'a ResultRow>,
    key: impl Fn(&ResultRow) -> String,
) -> Groups<'a> {
    let mut groups: BTreeMap<String, Vec<&ResultRow>> = BTreeMap::new();
    for r in rows {
        groups.entry(key(r)).or_default().push(r);
    }
    let mut v: Vec<_> = groups.into_iter().collect();
    v.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The first few ids of a group, for its heading.
fn first_ids(rows: &[&ResultRow], n: usize) -> String {
    let mut s: Vec<String> = rows
        .iter()
        .take(n)
        .map(|r| format!("{}/{}", r.implementation, r.id))
        .collect();
    if rows.len() > n {
        s.push("...".into());
    }
    s.join(", ")
}

/// A report's format (`--format`; `summary` is the human report's `--summary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    Human,
    /// The human report's summary, audit and failure groups only (`--summary`).
    Summary,
    Json,
    Junit,
    Markdown,
}

impl Report {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Human => self.human(),
            Format::Summary => self.summary(),
            Format::Json => self.json(),
            Format::Junit => self.junit(),
            Format::Markdown => self.markdown(),
        }
    }

    /// The summary's counts, as the JSON report has them (each status counted once).
    pub fn summary_line(&self) -> String {
        self.summary_of(|_| true)
    }

    /// The counts of the rows `keep` selects (one implementation's, say).
    fn summary_of(&self, keep: impl Fn(&ResultRow) -> bool) -> String {
        let count = |s: Status| {
            self.results
                .iter()
                .filter(|r| r.status == s && keep(r))
                .count()
        };
        let mut line = format!(
            "{} passed, {} failed, {} skipped, {} xfailed, {} xpassed, {} forward_only",
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Skip),
            count(Status::Xfail),
            count(Status::Xpass),
            count(Status::ForwardOnly)
        );
        for (status, word) in [(Status::Flaky, "flaky"), (Status::NotRun, "not_run")] {
            if count(status) > 0 {
                write!(line, ", {} {word}", count(status)).unwrap();
            }
        }
        let loosened = self
            .results
            .iter()
            .filter(|r| keep(r) && r.status.ok() && !r.loosened_by.is_empty())
            .count();
        if loosened > 0 {
            write!(line, " ({loosened} only within a tolerance entry)").unwrap();
        }
        line
    }

    /// Cases that passed (or answered forward-only) only within a tolerance entry.
    pub fn loosened(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.status.ok() && !r.loosened_by.is_empty())
            .count()
    }

    /// Audit findings that fail the run.
    pub fn audit_failed(&self) -> usize {
        self.audit.iter().filter(|f| f.fails()).count()
    }

    fn failure_groups(&self) -> Groups<'_> {
        grouped(self.failures(), |r| {
            r.cause
                .clone()
                .unwrap_or_else(|| first(&r.detail).to_string())
        })
    }

    fn groups_of(&self, status: Status) -> Groups<'_> {
        grouped(self.results.iter().filter(|r| r.status == status), |r| {
            first(&r.detail).to_string()
        })
    }

    fn loosened_groups(&self) -> Groups<'_> {
        grouped(
            self.results
                .iter()
                .filter(|r| r.status.ok() && !r.loosened_by.is_empty()),
            |r| r.loosened_by.join(", "),
        )
    }

    /// The grouped sections both human and Markdown output show.
    /// (title, what the groups are keyed by, the groups).
    fn sections(&self) -> [(&'static str, &'static str, Groups<'_>); 5] {
        [
            ("Failures by cause", "cause", self.failure_groups()),
            (
                "Flaky (any outcome accepted)",
                "entry",
                self.groups_of(Status::Flaky),
            ),
            (
                "Forward only (output right, no gradient)",
                "reason",
                self.groups_of(Status::ForwardOnly),
            ),
            (
                "Passed only within a tolerance entry",
                "entries",
                self.loosened_groups(),
            ),
            ("Skipped, by reason", "reason", self.groups_of(Status::Skip)),
        ]
    }

    /// Rows op x dtype, columns implementations; cells "passed/total" with xfail and skip noted.
    pub fn matrix(&self) -> (Vec<String>, Vec<(String, Vec<String>)>) {
        let mut cells: BTreeMap<(String, String), BTreeMap<String, BTreeMap<Status, usize>>> =
            BTreeMap::new();
        for r in &self.results {
            let c = cells
                .entry((r.op.clone(), r.dtype.clone()))
                .or_default()
                .entry(r.implementation.clone())
                .or_default();
            *c.entry(r.status).or_default() += 1;
        }
        let rows = cells
            .into_iter()
            .map(|((op, dtype), per_impl)| {
                let cols = self
                    .implementations
                    .iter()
                    .map(|i| {
                        let c = per_impl.get(i).cloned().unwrap_or_default();
                        let n = |s: Status| c.get(&s).copied().unwrap_or(0);
                        let total: usize = c.values().sum();
                        let mut s = format!("{}/{total}", n(Status::Pass));
                        for (status, word) in [
                            (Status::Xfail, "xfail"),
                            (Status::ForwardOnly, "fwd-only"),
                            (Status::Skip, "skip"),
                            (Status::Flaky, "flaky"),
                            (Status::NotRun, "not run"),
                        ] {
                            if n(status) > 0 {
                                write!(s, " ({} {word})", n(status)).unwrap();
                            }
                        }
                        let bad = n(Status::Fail) + n(Status::Xpass);
                        if bad > 0 {
                            write!(s, " ({bad} FAIL)").unwrap();
                        }
                        s
                    })
                    .collect();
                (format!("{op} {dtype}"), cols)
            })
            .collect();
        (self.implementations.clone(), rows)
    }

    fn failures(&self) -> impl Iterator<Item = &ResultRow> {
        self.results.iter().filter(|r| !r.status.ok())
    }

    pub fn json(&self) -> String {
        let results: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| {
                let mut v = serde_json::json!({
                    "id": r.id, "impl": r.implementation, "status": r.status.name(), "detail": r.detail,
                    "file": display_path(&r.file),
                });
                if let Some(c) = &r.cause {
                    v["cause"] = c.clone().into();
                }
                if !r.loosened_by.is_empty() {
                    v["loosened_by"] = r.loosened_by.clone().into();
                }
                v
            })
            .collect();
        let audit: Vec<serde_json::Value> = self
            .audit
            .iter()
            .map(|f| {
                serde_json::json!({
                    "impl": f.implementation, "entry": f.entry, "reason": f.reason, "finding": f.kind(),
                    "fails": f.fails(), "detail": f.detail(), "cases": f.cases(),
                })
            })
            .collect();
        let unneeded: Vec<serde_json::Value> = self
            .audit
            .iter()
            .filter(|f| f.problem == Problem::ToleranceUnneeded)
            .map(|f| serde_json::json!({"impl": f.implementation, "entry": f.entry, "reason": f.reason}))
            .collect();
        let mut doc = serde_json::json!({
            "format": "nllspec-report-v1",
            "summary": {
                "total": self.results.len(),
                "passed": self.count(Status::Pass),
                "failed": self.count(Status::Fail),
                "skipped": self.count(Status::Skip),
                "xfailed": self.count(Status::Xfail),
                "xpassed": self.count(Status::Xpass),
                "forward_only": self.count(Status::ForwardOnly),
                "flaky": self.count(Status::Flaky),
                "not_run": self.count(Status::NotRun),
                "loosened": self.loosened(),
                "audit_failed": self.audit_failed(),
            },
            "results": results,
            "audit": audit,
            "unneeded_tolerances": unneeded,
        });
        if let Some(m) = doc.as_object_mut() {
            if let Some(e) = &self.error {
                m.insert("error".into(), e.clone().into());
            }
            if let Some(sig) = self.interrupted {
                m.insert("interrupted".into(), signal_name(sig).into());
            }
            #[cfg(feature = "embedded")]
            if let Some(digest) = self.suite {
                use crate::golden::embedded::{CASES, TORCH};
                m.insert(
                    "suite".into(),
                    serde_json::json!({"torch": TORCH, "cases": CASES, "sha256": digest}),
                );
            }
            if !self.startup.is_empty() {
                let s: serde_json::Map<String, serde_json::Value> = self
                    .startup
                    .iter()
                    .map(|(i, t)| (i.clone(), t.clone().into()))
                    .collect();
                m.insert("startup_stderr".into(), s.into());
            }
        }
        serde_json::to_string_pretty(&doc).expect("a JSON value serialises") + "\n"
    }

    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failures = self.failures().count() + self.audit_failed();
        let skipped = |r: &&&ResultRow| {
            matches!(
                r.status,
                Status::Skip | Status::Xfail | Status::ForwardOnly | Status::NotRun
            )
        };
        writeln!(
            out,
            "<testsuites name=\"nllspec\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\" time=\"{:.3}\">",
            self.results.len() + self.audit_failed(),
            self.results.iter().filter(|r| skipped(&r)).count(),
            self.elapsed.as_secs_f64()
        )
        .unwrap();
        for imp in &self.implementations {
            let rows: Vec<&ResultRow> = self
                .results
                .iter()
                .filter(|r| &r.implementation == imp)
                .collect();
            let f = rows.iter().filter(|r| !r.status.ok()).count();
            let s = rows.iter().filter(skipped).count();
            writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\">",
                xml(imp),
                rows.len()
            )
            .unwrap();
            for r in rows {
                let class = format!("{imp}.{}", r.op);
                let file = format!(" file=\"{}\"", xml(&display_path(&r.file)));
                write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\"{file}",
                    xml(&class),
                    xml(&r.id)
                )
                .unwrap();
                match r.status {
                    Status::Pass if r.loosened_by.is_empty() => out.push_str("/>\n"),
                    Status::Pass | Status::Flaky => {
                        writeln!(
                            out,
                            ">\n      <system-out>{}</system-out>\n    </testcase>",
                            xml(&r.detail)
                        )
                        .unwrap();
                    }
                    Status::Skip | Status::Xfail | Status::ForwardOnly | Status::NotRun => {
                        let what = match r.status {
                            Status::Skip => "skipped",
                            Status::Xfail => "expected failure",
                            Status::NotRun => "not run",
                            _ => "forward only (output right, gradient not computed)",
                        };
                        writeln!(
                            out,
                            ">\n      <skipped message=\"{}: {}\"/>\n    </testcase>",
                            what,
                            xml(first(&r.detail))
                        )
                        .unwrap();
                    }
                    Status::Fail | Status::Xpass => {
                        writeln!(
                            out,
                            ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                            xml(first(&r.detail)),
                            r.status.name(),
                            xml(&r.detail)
                        )
                        .unwrap();
                    }
                }
            }
            out.push_str("  </testsuite>\n");
            let findings: Vec<&Finding> = self
                .audit
                .iter()
                .filter(|a| &a.implementation == imp && a.fails())
                .collect();
            if !findings.is_empty() {
                writeln!(
                    out,
                    "  <testsuite name=\"{} expectations audit\" tests=\"{n}\" failures=\"{n}\">",
                    xml(imp),
                    n = findings.len()
                )
                .unwrap();
                for a in findings {
                    let name = a.entry.clone().unwrap_or_else(|| "(implementation)".into());
                    writeln!(
                        out,
                        "    <testcase classname=\"{}.audit\" name=\"{}\">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml(imp),
                        xml(&name),
                        xml(&a.detail()),
                        a.kind(),
                        xml(&a.detail())
                    )
                    .unwrap();
                }
                out.push_str("  </testsuite>\n");
            }
        }
        out.push_str("</testsuites>\n");
        out
    }

    pub fn markdown(&self) -> String {
        let (cols, rows) = self.matrix();
        let names: Vec<&str> = cols.iter().map(String::as_str).collect();
        let mut out = markdown_header(&["op dtype"], &names);
        for (name, vals) in &rows {
            write!(out, "| {name} |").unwrap();
            for v in vals {
                write!(out, " {v} |").unwrap();
            }
            writeln!(out).unwrap();
        }
        writeln!(out, "\n{}", self.summary_line()).unwrap();
        if let Some(sig) = self.interrupted {
            writeln!(
                out,
                "\n**Interrupted by {}**: the cases left are counted `not_run`.",
                signal_name(sig)
            )
            .unwrap();
        }
        if !self.audit.is_empty() {
            writeln!(
                out,
                "\n### Expectations audit\n\n| impl | | finding |\n| --- | --- | --- |"
            )
            .unwrap();
            for a in &self.audit {
                writeln!(
                    out,
                    "| {} | {} | {} |",
                    a.implementation,
                    if a.fails() { "FAIL" } else { "note" },
                    cell(&a.detail())
                )
                .unwrap();
            }
        }
        let sections = self.sections();
        for (title, key, groups) in sections.iter().filter(|(_, _, g)| !g.is_empty()) {
            writeln!(
                out,
                "\n### {title}\n\n| cases | {key} | first |\n| --- | --- | --- |"
            )
            .unwrap();
            for (what, rows) in groups {
                writeln!(
                    out,
                    "| {} | {} | {} |",
                    rows.len(),
                    cell(what),
                    cell(&first_ids(rows, 3))
                )
                .unwrap();
            }
        }
        // Every failing case with its whole detail (a crash's traceback included), by cause.
        for (cause, rows) in &sections[0].2 {
            writeln!(
                out,
                "\n<details><summary>{} x {}</summary>\n",
                rows.len(),
                html(cause)
            )
            .unwrap();
            for r in rows {
                writeln!(
                    out,
                    "`{}/{}`\n\n~~~~text\n{}\n~~~~\n",
                    r.implementation,
                    r.id,
                    r.detail.replace("~~~~", "~ ~ ~ ~")
                )
                .unwrap();
            }
            writeln!(out, "</details>").unwrap();
        }
        for (imp, text) in &self.startup {
            writeln!(out, "\n<details><summary>{} start-up output (stderr before its first request)</summary>\n\n~~~~text\n{}\n~~~~\n</details>", html(imp), text.replace("~~~~", "~ ~ ~ ~")).unwrap();
        }
        out
    }
}

/// How a command ends (contract section 3): the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every case ended as expected (or the command did what it was asked).
    Ok,
    /// 1: a case did not end as expected, the audit failed, or `fuzz` found something.
    Failed,
    /// 2: the input was unusable, or an implementation could not start.
    Unusable,
    /// 128 + the signal: interrupted by SIGINT (130) or SIGTERM (143).
    Interrupted(i32),
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Unusable => 2,
            Exit::Interrupted(sig) => u8::try_from(128 + sig).unwrap_or(1),
        }
    }
}

/// A signal's name as people know it.
pub fn signal_name(sig: i32) -> String {
    match sig {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// Text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Text for inline HTML (a `<summary>`).
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The first two lines of a Markdown table: `columns` then one column per name.
pub(crate) fn markdown_header(columns: &[&str], names: &[&str]) -> String {
    let all: Vec<&str> = columns.iter().chain(names).copied().collect();
    format!("| {} |\n|{}\n", all.join(" | "), " --- |".repeat(all.len()))
}

/// A path relative to the working directory when it lies below it (shorter in reports).
pub(crate) fn display_path(p: &std::path::Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|d| p.strip_prefix(d).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}

fn first(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry at all are replaced.
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The suite's size per op, dtype, outcome and tag (`nllspec list --counts`, spec/COUNTS.md).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CaseCounts {
    total: usize,
    counts: BTreeMap<(&'static str, String), usize>,
}

impl CaseCounts {
    /// Counts `case` once in each group it belongs to.
    pub fn add(&mut self, case: &Case) {
        self.total += 1;
        let mut one = |group: &'static str, name: &str| {
            *self.counts.entry((group, name.to_string())).or_default() += 1
        };
        one("op", case.call.op().name());
        one("dtype", case.call.input().dtype().name());
        one(
            "expected",
            if matches!(case.expected, Expected::Error(_)) {
                "error"
            } else {
                "values"
            },
        );
        if case.grad_output.is_some() {
            one("expected", "grad_input");
        }
        for t in &case.tags {
            one("tag", t);
        }
    }

    /// The counts as Markdown tables.
    pub fn markdown(&self) -> String {
        let total = self.total;
        let mut out = format!(
            "# Golden case counts\n\nGenerated by `cargo run -- list --counts > spec/COUNTS.md` from golden/; a test keeps it current.\n\n{total} cases.\n"
        );
        for group in ["op", "dtype", "expected", "tag"] {
            writeln!(out, "\n| {group} | cases |\n| --- | --- |").unwrap();
            for ((g, name), n) in &self.counts {
                if *g == group {
                    writeln!(out, "| {name} | {n} |").unwrap();
                }
            }
        }
        out
    }
}

impl Report {
    /// The run's exit status (contract section 3): ok when every case ended as expected and
    /// the audit found nothing that fails.
    pub fn exit(&self) -> Exit {
        match self.interrupted {
            Some(sig) => Exit::Interrupted(sig),
            None if self.results.iter().all(|r| r.status.ok()) && self.audit_failed() == 0 => {
                Exit::Ok
            }
            None => Exit::Failed,
        }
    }

    pub fn count(&self, s: Status) -> usize {
        self.results.iter().filter(|r| r.status == s).count()
    }
}
