//! A whole `nllspec run`: golden files x implementations, into a [`Report`].
//!
//! Files are validated in a first pass (so that an unusable suite is reported before anything
//! runs, with exit status 2) and then loaded again one at a time for the run, so that only one
//! file's tensors are in memory at once.

use crate::execution::{Messages, Target, run_case, shipped_expectations};
use crate::golden::format::Case;
use crate::golden::load::{LoadError, LoadedCase, discover, for_each_case, load_file};
use crate::impls::external::Limits;
use crate::impls::{ImplSpec, ImplSpecError};
use crate::judge::expectations::{Expectations, ExpectationsError};
use crate::report::{Report, ResultRow, Unneeded};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub golden: Vec<PathBuf>,
    pub impls: Vec<String>,
    pub filter: Option<String>,
    pub timeout: Duration,
    /// Added to `timeout` for the first answer of each fresh `exec:` process.
    pub startup_timeout: Duration,
    /// Extra expectations files; each names the implementation it applies to.
    pub expectations: Vec<PathBuf>,
}

/// Why a run cannot start, or cannot go on (exit status 2).
#[derive(Debug)]
pub enum RunError {
    /// A golden file cannot be read or is malformed, or two cases share an id.
    Load(LoadError),
    /// An expectations file cannot be used.
    Expectations(ExpectationsError),
    /// An `--impl` argument names no implementation.
    Implementation(ImplSpecError),
    /// Two `--impl` arguments give the same name.
    SameName(String),
    /// An `--expectations` file is for none of the implementations run.
    ExpectationsForNone {
        file: PathBuf,
        implementation: String,
        names: Vec<String>,
    },
    /// The golden paths hold no case.
    NoCases,
    /// `--filter` selects no case.
    FilterSelectsNothing(String),
    /// An implementation cannot be run at all ([`crate::impls::Implementation::fatal`]).
    Fatal(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Load(e) => e.fmt(f),
            RunError::Expectations(e) => e.fmt(f),
            RunError::Implementation(e) => e.fmt(f),
            RunError::SameName(name) => {
                write!(
                    f,
                    "two implementations are called \"{name}\": name them apart with --impl NAME=exec:COMMAND"
                )
            }
            RunError::ExpectationsForNone {
                file,
                implementation,
                names,
            } => write!(
                f,
                "{}: expectations for \"{implementation}\", which is not among the implementations run ({})",
                file.display(),
                names.join(", ")
            ),
            RunError::NoCases => f.write_str("no golden cases found"),
            RunError::FilterSelectsNothing(filter) => {
                write!(f, "--filter {filter:?} selects no case")
            }
            RunError::Fatal(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for RunError {}

impl From<LoadError> for RunError {
    fn from(e: LoadError) -> RunError {
        RunError::Load(e)
    }
}

impl From<ExpectationsError> for RunError {
    fn from(e: ExpectationsError) -> RunError {
        RunError::Expectations(e)
    }
}

/// The targets named in `opts`, with their expectations.
pub fn targets(opts: &RunOptions) -> Result<Vec<Target>, RunError> {
    let specs = opts
        .impls
        .iter()
        .map(|s| ImplSpec::parse(s).map_err(RunError::Implementation))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, a) in specs.iter().enumerate() {
        if specs[..i].iter().any(|b| b.name() == a.name()) {
            return Err(RunError::SameName(a.name().to_string()));
        }
    }
    let mut extra: Vec<Option<Expectations>> = specs.iter().map(|_| None).collect();
    for p in &opts.expectations {
        let e = Expectations::load(p)?;
        let Some(i) = specs.iter().position(|s| s.answers_to(&e.implementation)) else {
            return Err(RunError::ExpectationsForNone {
                file: p.clone(),
                implementation: e.implementation,
                names: specs.iter().map(|s| s.name().to_string()).collect(),
            });
        };
        extra[i] = Some(e);
    }
    let limits = Limits {
        timeout: opts.timeout,
        startup: opts.startup_timeout,
    };
    let mut out = Vec::new();
    for (spec, extra) in specs.iter().zip(extra) {
        let name = spec.name();
        let exp = match extra {
            Some(e) => e,
            None => shipped_expectations(name)?,
        };
        // an exec: implementation's name is never a built-in's (ImplSpec refuses it)
        let messages = Messages::for_builtin(name);
        out.push(Target {
            implementation: spec.build(limits).into(),
            expectations: exp.into(),
            messages,
        });
    }
    Ok(out)
}

/// `--filter TEXT`: the cases whose id contains TEXT; `tag:NAME`, the cases tagged NAME.
pub fn selected(case: &Case, filter: &Option<String>) -> bool {
    filter
        .as_ref()
        .is_none_or(|f| match f.strip_prefix("tag:") {
            Some(tag) => case.tags.iter().any(|t| t == tag),
            None => case.id.contains(f.as_str()),
        })
}

/// What a run reports as it goes, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The suite is valid; this many (case, implementation) results will come.
    Start { results: usize },
    /// A golden file begins: its 1-based index, the file count, its path, its selected cases.
    File {
        index: usize,
        files: usize,
        path: &'a Path,
        cases: usize,
    },
    /// One case was judged for one implementation.
    Result { id: &'a str },
}

impl Progress<'_> {
    /// The line a log shows for it, if any (one per golden file).
    pub fn line(&self) -> Option<String> {
        match self {
            Progress::File {
                index,
                files,
                path,
                cases,
            } => Some(format!(
                "[{index}/{files}] {} ({cases} cases)",
                crate::report::display_path(path)
            )),
            _ => None,
        }
    }
}

/// Runs the suite, telling `progress` as it goes.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Report, RunError> {
    let targets = targets(opts)?;
    let files = discover(&opts.golden)?;
    // Pass 1: every file parses, ids are unique (the loader's checks).
    let mut all_ids: Vec<String> = Vec::new();
    let mut selected_cases = 0usize;
    for_each_case(&files, |_, case| {
        if selected(&case, &opts.filter) {
            selected_cases += 1;
        }
        all_ids.push(case.id);
    })?;
    if all_ids.is_empty() {
        return Err(RunError::NoCases);
    }
    if selected_cases == 0 {
        return Err(RunError::FilterSelectsNothing(
            opts.filter.clone().unwrap_or_default(),
        ));
    }
    progress(Progress::Start {
        results: selected_cases * targets.len(),
    });
    // Pass 2: run, one file at a time.
    let started = Instant::now();
    let mut report = Report::default();
    for (n, f) in files.iter().enumerate() {
        let golden = load_file(f)?;
        let cases: Vec<_> = golden
            .cases
            .into_iter()
            .filter(|c| selected(c, &opts.filter))
            .collect();
        progress(Progress::File {
            index: n + 1,
            files: files.len(),
            path: f,
            cases: cases.len(),
        });
        for case in cases {
            let loaded = LoadedCase {
                file: f.clone(),
                case,
            };
            for t in &targets {
                let result = run_case(t, &loaded);
                if let Some(fatal) = t.implementation.fatal() {
                    return Err(RunError::Fatal(fatal));
                }
                report
                    .results
                    .push(ResultRow::new(&loaded, t.implementation.name(), result));
                progress(Progress::Result {
                    id: &loaded.case.id,
                });
            }
        }
    }
    // Stale expectations are judged only on a whole-suite run: a filter legitimately hides cases.
    if opts.filter.is_none() {
        let ids: Vec<&str> = all_ids.iter().map(String::as_str).collect();
        for t in &targets {
            for e in t.expectations.unmatched(&ids) {
                report.results.push(ResultRow::expectation(
                    t.implementation.name(),
                    &e.pattern,
                    format!(
                        "expectation matches no case (stale or misspelled): {}",
                        e.reason
                    ),
                ));
            }
            for e in t.expectations.unmatched_tolerances(&ids) {
                report.results.push(ResultRow::expectation(
                    t.implementation.name(),
                    &e.label(),
                    format!(
                        "tolerance entry matches no case (stale or misspelled): {}",
                        e.reason
                    ),
                ));
            }
        }
    }
    // A tolerance entry whose cases all passed without it is worth knowing, not a failure.
    for t in &targets {
        let name = t.implementation.name();
        let ran: Vec<&ResultRow> = report
            .results
            .iter()
            .filter(|r| r.implementation == name && r.file.is_some())
            .collect();
        for e in &t.expectations.tolerances {
            let label = e.label();
            let matched = ran
                .iter()
                .any(|r| crate::judge::expectations::wildcard(&e.pattern, &r.id));
            if matched && !ran.iter().any(|r| r.loosened_by.contains(&label)) {
                report.unneeded.push(Unneeded {
                    implementation: name.to_string(),
                    entry: label,
                    reason: e.reason.clone(),
                });
            }
        }
    }
    report.elapsed = started.elapsed();
    report.implementations = targets
        .iter()
        .map(|t| t.implementation.name().to_string())
        .collect();
    Ok(report)
}
