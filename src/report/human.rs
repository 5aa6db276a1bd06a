//! The report a person reads in a terminal or a CI log: the summary first, the expectations
//! audit, then the failures grouped by behaviour (the implementation, the cause and the case
//! family: the id without its dtype suffix and matrix values), each group with its count, its
//! cases and one example's whole detail; then the group tables, the matrix, and the summary
//! once more as the last line (where a log's tail shows it).

use super::{Report, ResultRow, display_path, first, first_ids, grouped, signal_name};
use crate::judge::writer::family;
use std::fmt::Write;

/// How many of a group's cases its heading names.
const VARIANTS: usize = 8;

/// One behaviour: the implementation, the cause and the case family, with its rows.
struct Behaviour<'a> {
    implementation: &'a str,
    cause: String,
    family: &'a str,
    rows: Vec<&'a ResultRow>,
}

impl Report {
    fn behaviours(&self) -> Vec<Behaviour<'_>> {
        let mut out: Vec<Behaviour> = Vec::new();
        for r in self.failures() {
            let cause = r
                .cause
                .clone()
                .unwrap_or_else(|| first(&r.detail).to_string());
            let fam = family(&r.id);
            match out.iter_mut().find(|b| {
                b.implementation == r.implementation && b.cause == cause && b.family == fam
            }) {
                Some(b) => b.rows.push(r),
                None => out.push(Behaviour {
                    implementation: &r.implementation,
                    cause,
                    family: fam,
                    rows: vec![r],
                }),
            }
        }
        out.sort_by(|a, b| {
            b.rows.len().cmp(&a.rows.len()).then_with(|| {
                (a.implementation, &a.cause, a.family).cmp(&(b.implementation, &b.cause, b.family))
            })
        });
        out
    }

    /// The summary lines: the whole run's, and each implementation's when there are several.
    fn head(&self, out: &mut String) {
        writeln!(out, "{}", self.summary_line()).unwrap();
        if self.implementations.len() > 1 {
            for imp in &self.implementations {
                writeln!(
                    out,
                    "  {imp}: {}",
                    self.summary_of(|r| &r.implementation == imp)
                )
                .unwrap();
            }
        }
        if let Some(sig) = self.interrupted {
            writeln!(
                out,
                "interrupted by {}: the cases left are counted not_run",
                signal_name(sig)
            )
            .unwrap();
        }
        if !self.audit.is_empty() {
            writeln!(out, "\nExpectations audit:").unwrap();
            for a in &self.audit {
                writeln!(
                    out,
                    "  {} {}: {}",
                    if a.fails() { "FAIL" } else { "note" },
                    a.implementation,
                    a.detail()
                )
                .unwrap();
            }
        }
    }

    /// Each behaviour's heading (with `example`, its first case's whole detail).
    fn behaviour_groups(&self, out: &mut String, example: bool) {
        let behaviours = self.behaviours();
        if behaviours.is_empty() {
            return;
        }
        writeln!(
            out,
            "\nFailures by behaviour ({} cases, {} behaviours):",
            self.failures().count(),
            behaviours.len()
        )
        .unwrap();
        for b in &behaviours {
            let variants: Vec<&str> = b
                .rows
                .iter()
                .take(VARIANTS)
                .map(|r| &r.id[b.family.len()..])
                .collect();
            let more = if b.rows.len() > VARIANTS {
                format!(" and {} more", b.rows.len() - VARIANTS)
            } else {
                String::new()
            };
            writeln!(
                out,
                "=== {} x {}: {}  {}: {}{more}",
                b.rows.len(),
                b.implementation,
                b.cause,
                b.family,
                variants.join(" ")
            )
            .unwrap();
            let r = b.rows[0];
            if example {
                writeln!(
                    out,
                    "  e.g. {} {}/{} ({})",
                    r.status.name().to_uppercase(),
                    r.implementation,
                    r.id,
                    display_path(&r.file)
                )
                .unwrap();
                for line in r.detail.lines() {
                    writeln!(out, "      {line}").unwrap();
                }
            } else {
                writeln!(out, "  e.g. {}: {}", r.id, first(&r.detail)).unwrap();
            }
        }
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        self.head(&mut out);
        self.behaviour_groups(&mut out, true);
        writeln!(out).unwrap();
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
        for (imp, text) in &self.startup {
            writeln!(out, "Start-up output of {imp} (stderr before its first process read a request; shown once):").unwrap();
            for line in text.lines() {
                writeln!(out, "    {line}").unwrap();
            }
            writeln!(out).unwrap();
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
        #[cfg(feature = "embedded")]
        let suite = self.suite.map_or(String::new(), |d| {
            use crate::golden::embedded::{CASES, TORCH};
            format!(
                " (the built-in suite: torch {TORCH}, {CASES} cases, sha256 {})",
                &d[..12]
            )
        });
        #[cfg(not(feature = "embedded"))]
        let suite = "";
        writeln!(
            out,
            "{} results in {:.2} s{suite}",
            self.results.len(),
            self.elapsed.as_secs_f64()
        )
        .unwrap();
        writeln!(out, "{}", self.summary_line()).unwrap();
        out
    }

    /// `--summary`: the summary, the audit and the behaviours, one line of example each.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        self.head(&mut out);
        self.behaviour_groups(&mut out, false);
        let skips = grouped(
            self.results
                .iter()
                .filter(|r| r.status == crate::judge::expectations::Status::Skip),
            |r| first(&r.detail).to_string(),
        );
        if !skips.is_empty() {
            writeln!(
                out,
                "\nSkipped: {} cases, {} reasons (the full report lists them)",
                skips.iter().map(|g| g.1.len()).sum::<usize>(),
                skips.len()
            )
            .unwrap();
        }
        out
    }
}
