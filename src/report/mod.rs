//! Reports of a run: human (terminal), json (report v1), junit (CI systems), markdown (a
//! README or a pull-request comment). All four are rendered from the same [`Report`].

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
    /// Empty for rows that are not cases (a stale expectation).
    pub op: String,
    pub dtype: String,
    pub file: Option<PathBuf>,
}

impl ResultRow {
    pub fn new(case: &LoadedCase, implementation: &str, status: Status, detail: String) -> ResultRow {
        ResultRow {
            id: case.case.id.clone(),
            implementation: implementation.to_string(),
            status,
            detail,
            op: case.case.op.name().to_string(),
            dtype: case.case.inputs.input.dtype().name().to_string(),
            file: Some(case.file.clone()),
        }
    }

    pub fn expectation(implementation: &str, pattern: &str, detail: String) -> ResultRow {
        ResultRow {
            id: format!("(expectations) {pattern}"),
            implementation: implementation.to_string(),
            status: Status::Fail,
            detail,
            op: String::new(),
            dtype: String::new(),
            file: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub implementations: Vec<String>,
    pub results: Vec<ResultRow>,
    pub elapsed: Duration,
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

    fn summary_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.count(Status::Pass) + self.count(Status::Xfail),
            self.count(Status::Fail) + self.count(Status::Xpass),
            self.count(Status::Skip)
        )
    }

    /// Rows op x dtype, columns implementations; cells "passed/total" with xfail and skip noted.
    pub fn matrix(&self) -> (Vec<String>, Vec<(String, Vec<String>)>) {
        let mut cells: BTreeMap<(String, String), BTreeMap<String, [usize; 5]>> = BTreeMap::new();
        for r in self.results.iter().filter(|r| !r.op.is_empty()) {
            let c = cells.entry((r.op.clone(), r.dtype.clone())).or_default().entry(r.implementation.clone()).or_default();
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
        for r in self.failures() {
            let file = r.file.as_ref().map(|f| format!(" ({})", display_path(f))).unwrap_or_default();
            writeln!(out, "{} {}/{}{file}", r.status.name().to_uppercase(), r.implementation, r.id).unwrap();
            for line in r.detail.lines() {
                writeln!(out, "    {line}").unwrap();
            }
        }
        let (cols, rows) = self.matrix();
        let w0 = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(10);
        let widths: Vec<usize> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| rows.iter().map(|(_, v)| v[i].len()).max().unwrap_or(0).max(c.len()))
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
            "{} xfailed, {} xpassed; {} results in {:.2} s",
            self.count(Status::Xfail),
            self.count(Status::Xpass),
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
                serde_json::json!({
                    "id": r.id, "impl": r.implementation, "status": r.status.name(), "detail": r.detail,
                    "file": r.file.as_ref().map(|f| display_path(f)),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "format": "nllspec-report-v1",
            "summary": {
                "total": self.results.len(),
                "passed": self.count(Status::Pass),
                "failed": self.count(Status::Fail),
                "skipped": self.count(Status::Skip),
                "xfailed": self.count(Status::Xfail),
                "xpassed": self.count(Status::Xpass),
            },
            "results": results,
        });
        serde_json::to_string_pretty(&doc).expect("a JSON value serialises") + "\n"
    }

    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failures = self.failures().count();
        writeln!(
            out,
            "<testsuites name=\"nllspec\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\" time=\"{:.3}\">",
            self.results.len(),
            self.count(Status::Skip),
            self.elapsed.as_secs_f64()
        )
        .unwrap();
        for imp in &self.implementations {
            let rows: Vec<&ResultRow> = self.results.iter().filter(|r| &r.implementation == imp).collect();
            let f = rows.iter().filter(|r| !r.status.ok()).count();
            let s = rows.iter().filter(|r| r.status == Status::Skip).count();
            writeln!(out, "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\">", xml(imp), rows.len()).unwrap();
            for r in rows {
                let class = if r.op.is_empty() { format!("{imp}.expectations") } else { format!("{imp}.{}", r.op) };
                let file = r.file.as_ref().map(|f| format!(" file=\"{}\"", xml(&display_path(f)))).unwrap_or_default();
                write!(out, "    <testcase classname=\"{}\" name=\"{}\"{file}", xml(&class), xml(&r.id)).unwrap();
                match r.status {
                    Status::Pass => out.push_str("/>\n"),
                    Status::Skip | Status::Xfail => {
                        let what = if r.status == Status::Skip { "skipped" } else { "expected failure" };
                        writeln!(out, ">\n      <skipped message=\"{}: {}\"/>\n    </testcase>", what, xml(first(&r.detail))).unwrap();
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
        let fails: Vec<&ResultRow> = self.failures().collect();
        if !fails.is_empty() {
            writeln!(out, "\n<details><summary>{} failing</summary>\n", fails.len()).unwrap();
            for r in fails {
                writeln!(out, "- `{}/{}`: {}", r.implementation, r.id, first(&r.detail).replace('|', "\\|")).unwrap();
            }
            writeln!(out, "\n</details>").unwrap();
        }
        out
    }
}

/// The first two lines of a Markdown table: `columns` then one column per name.
pub fn markdown_header(columns: &[&str], names: &[&str]) -> String {
    let all: Vec<&str> = columns.iter().chain(names).copied().collect();
    format!("| {} |\n|{}\n", all.join(" | "), " --- |".repeat(all.len()))
}

/// A path relative to the working directory when it lies below it (shorter in reports).
pub fn display_path(p: &std::path::Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|d| p.strip_prefix(d).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}

fn first(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry at all are replaced.
pub fn xml(s: &str) -> String {
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

/// The suite's size per op, dtype, outcome and tag, as a Markdown table (spec/COUNTS.md).
pub fn counts_markdown(total: usize, counts: &BTreeMap<(&'static str, String), usize>) -> String {
    let mut out = format!(
        "# Golden case counts\n\nGenerated by `cargo run -- list --counts > spec/COUNTS.md` from golden/; a test keeps it current.\n\n{total} cases.\n"
    );
    for group in ["op", "dtype", "expected", "tag"] {
        writeln!(out, "\n| {group} | cases |\n| --- | --- |").unwrap();
        for ((g, name), n) in counts {
            if *g == group {
                writeln!(out, "| {name} | {n} |").unwrap();
            }
        }
    }
    out
}
