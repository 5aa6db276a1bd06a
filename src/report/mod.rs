//! Reports of a run: human (terminal), json (report v1), junit (CI systems), markdown (a
//! README or a pull-request comment). All four are rendered from the same [`Report`].

use crate::execution::CaseResult;
use crate::golden::format::{Case, Expected};
use crate::golden::load::LoadedCase;
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
    /// For a failure: what it shares with others that failed alike.
    pub cause: Option<String>,
    /// The tolerance entries without which the case would have failed.
    pub loosened_by: Vec<String>,
    /// Empty for rows that are not cases (a stale expectation).
    pub op: String,
    pub dtype: String,
    pub file: Option<PathBuf>,
}

impl ResultRow {
    pub fn new(case: &LoadedCase, implementation: &str, result: CaseResult) -> ResultRow {
        ResultRow {
            id: case.case.id.clone(),
            implementation: implementation.to_string(),
            status: result.status,
            detail: result.detail,
            cause: result.cause,
            loosened_by: result.loosened_by,
            op: case.case.call.op().name().to_string(),
            dtype: case.case.call.input().dtype().name().to_string(),
            file: Some(case.file.clone()),
        }
    }

    pub fn expectation(implementation: &str, pattern: &str, detail: String) -> ResultRow {
        ResultRow {
            id: format!("(expectations) {pattern}"),
            implementation: implementation.to_string(),
            status: Status::Fail,
            detail,
            cause: Some("an expectations entry matches no case".into()),
            loosened_by: vec![],
            op: String::new(),
            dtype: String::new(),
            file: None,
        }
    }
}

/// A tolerance entry that matched cases none of which needed it: reported, not a failure (a
/// GPU's reductions are not always deterministic, so a run may not need what another did).
#[derive(Debug, Clone, PartialEq)]
pub struct Unneeded {
    pub implementation: String,
    /// `pattern (field)`.
    pub entry: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub implementations: Vec<String>,
    pub results: Vec<ResultRow>,
    pub unneeded: Vec<Unneeded>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Junit,
    Markdown,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "human" => Some(Format::Human),
            "json" => Some(Format::Json),
            "junit" => Some(Format::Junit),
            "markdown" => Some(Format::Markdown),
            _ => None,
        }
    }
}

impl Report {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Human => self.human(),
            Format::Json => self.json(),
            Format::Junit => self.junit(),
            Format::Markdown => self.markdown(),
        }
    }

    /// The summary's counts, as the JSON report has them (each status counted once).
    fn summary_line(&self) -> String {
        let mut line = format!(
            "{} passed, {} failed, {} skipped, {} xfailed, {} xpassed, {} forward_only",
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip),
            self.count(Status::Xfail),
            self.count(Status::Xpass),
            self.count(Status::ForwardOnly)
        );
        if self.loosened() > 0 {
            write!(line, " ({} only within a tolerance entry)", self.loosened()).unwrap();
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
    fn sections(&self) -> [(&'static str, &'static str, Groups<'_>); 4] {
        [
            ("Failures by cause", "cause", self.failure_groups()),
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
        let mut cells: BTreeMap<(String, String), BTreeMap<String, [usize; 6]>> = BTreeMap::new();
        for r in self.results.iter().filter(|r| !r.op.is_empty()) {
            let c = cells
                .entry((r.op.clone(), r.dtype.clone()))
                .or_default()
                .entry(r.implementation.clone())
                .or_default();
            c[r.status as usize] += 1;
        }
        let rows = cells
            .into_iter()
            .map(|((op, dtype), per_impl)| {
                let cols = self
                    .implementations
                    .iter()
                    .map(|i| {
                        let c = per_impl.get(i).copied().unwrap_or_default();
                        let total: usize = c.iter().sum();
                        let mut s = format!("{}/{total}", c[Status::Pass as usize]);
                        if c[Status::Xfail as usize] > 0 {
                            write!(s, " ({} xfail)", c[Status::Xfail as usize]).unwrap();
                        }
                        if c[Status::ForwardOnly as usize] > 0 {
                            write!(s, " ({} fwd-only)", c[Status::ForwardOnly as usize]).unwrap();
                        }
                        if c[Status::Skip as usize] > 0 {
                            write!(s, " ({} skip)", c[Status::Skip as usize]).unwrap();
                        }
                        let bad = c[Status::Fail as usize] + c[Status::Xpass as usize];
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

    pub fn human(&self) -> String {
        let mut out = String::new();
        for (cause, rows) in &self.failure_groups() {
            writeln!(out, "=== {} x {cause}", rows.len()).unwrap();
            for r in rows {
                let file = r
                    .file
                    .as_ref()
                    .map(|f| format!(" ({})", display_path(f)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{} {}/{}{file}",
                    r.status.name().to_uppercase(),
                    r.implementation,
                    r.id
                )
                .unwrap();
                for line in r.detail.lines() {
                    writeln!(out, "    {line}").unwrap();
                }
            }
            writeln!(out).unwrap();
        }
        for (title, _, groups) in self.sections().iter().filter(|(_, _, g)| !g.is_empty()) {
            writeln!(out, "{title}:").unwrap();
            for (what, rows) in groups {
                writeln!(
                    out,
                    "  {:>5}  {what}  (e.g. {})",
                    rows.len(),
                    first_ids(rows, 3)
                )
                .unwrap();
            }
            writeln!(out).unwrap();
        }
        for u in &self.unneeded {
            writeln!(
                out,
                "note: {}: tolerance entry {} was not needed by any case it matches ({})",
                u.implementation, u.entry, u.reason
            )
            .unwrap();
        }
        let (cols, rows) = self.matrix();
        let w0 = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(10);
        let widths: Vec<usize> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                rows.iter()
                    .map(|(_, v)| v[i].len())
                    .max()
                    .unwrap_or(0)
                    .max(c.len())
            })
            .collect();
        writeln!(out).unwrap();
        write!(out, "{:w0$}", "op dtype").unwrap();
        for (c, w) in cols.iter().zip(&widths) {
            write!(out, "  {c:>w$}").unwrap();
        }
        writeln!(out).unwrap();
        for (name, vals) in &rows {
            write!(out, "{name:w0$}").unwrap();
            for (v, w) in vals.iter().zip(&widths) {
                write!(out, "  {v:>w$}").unwrap();
            }
            writeln!(out).unwrap();
        }
        writeln!(out).unwrap();
        writeln!(
            out,
            "{} results in {:.2} s",
            self.results.len(),
            self.elapsed.as_secs_f64()
        )
        .unwrap();
        writeln!(out, "{}", self.summary_line()).unwrap();
        out
    }

    pub fn json(&self) -> String {
        let results: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| {
                let mut v = serde_json::json!({
                    "id": r.id, "impl": r.implementation, "status": r.status.name(), "detail": r.detail,
                    "file": r.file.as_ref().map(|f| display_path(f)),
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
                "loosened": self.loosened(),
            },
            "results": results,
            "unneeded_tolerances": self.unneeded.iter().map(|u| serde_json::json!({
                "impl": u.implementation, "entry": u.entry, "reason": u.reason,
            })).collect::<Vec<_>>(),
        });
        if let (Some(e), Some(m)) = (&self.error, doc.as_object_mut()) {
            m.insert("error".into(), e.clone().into());
        }
        serde_json::to_string_pretty(&doc).expect("a JSON value serialises") + "\n"
    }

    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failures = self.failures().count();
        writeln!(
            out,
            "<testsuites name=\"nllspec\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\" time=\"{:.3}\">",
            self.results.len(),
            self.count(Status::Skip) + self.count(Status::Xfail) + self.count(Status::ForwardOnly),
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
            let s = rows
                .iter()
                .filter(|r| matches!(r.status, Status::Skip | Status::Xfail | Status::ForwardOnly))
                .count();
            writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\">",
                xml(imp),
                rows.len()
            )
            .unwrap();
            for r in rows {
                let class = if r.op.is_empty() {
                    format!("{imp}.expectations")
                } else {
                    format!("{imp}.{}", r.op)
                };
                let file = r
                    .file
                    .as_ref()
                    .map(|f| format!(" file=\"{}\"", xml(&display_path(f))))
                    .unwrap_or_default();
                write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\"{file}",
                    xml(&class),
                    xml(&r.id)
                )
                .unwrap();
                match r.status {
                    Status::Pass if r.loosened_by.is_empty() => out.push_str("/>\n"),
                    Status::Pass => {
                        writeln!(
                            out,
                            ">\n      <system-out>{}</system-out>\n    </testcase>",
                            xml(&r.detail)
                        )
                        .unwrap();
                    }
                    Status::Skip | Status::Xfail | Status::ForwardOnly => {
                        let what = match r.status {
                            Status::Skip => "skipped",
                            Status::Xfail => "expected failure",
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
        for u in &self.unneeded {
            writeln!(
                out,
                "\nnote: {}: tolerance entry `{}` was not needed by any case it matches ({})",
                u.implementation, u.entry, u.reason
            )
            .unwrap();
        }
        out
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
    /// 0 when every case ended as expected, 1 otherwise (contract section 3).
    pub fn exit_code(&self) -> i32 {
        if self.results.iter().all(|r| r.status.ok()) {
            0
        } else {
            1
        }
    }

    pub fn count(&self, s: Status) -> usize {
        self.results.iter().filter(|r| r.status == s).count()
    }
}
