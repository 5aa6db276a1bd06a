//! A whole `nllspec run`: golden files x implementations, into a [`Report`].
//!
//! Files are validated in a first pass (so that an unusable suite is reported before anything
//! runs, with exit status 2) and then loaded again one at a time for the run, so that only one
//! file's tensors are in memory at once. After the cases, each implementation's expectations
//! are audited against the whole suite ([`crate::judge::audit`]) and, when asked, written
//! anew from the run ([`crate::judge::writer`]). A SIGINT or SIGTERM ([`crate::interrupt`])
//! ends the run early with every result so far and the rest counted `not_run`.

use crate::execution::{Messages, Target, run_case, shipped_expectations};
use crate::golden::format::Case;
use crate::golden::load::{LoadError, LoadedCase, discover, for_each_case, load_file};
use crate::impls::external::Limits;
use crate::impls::{ImplSpec, ImplSpecError};
use crate::judge::audit::{Judged, audit};
use crate::judge::expectations::{Expectations, ExpectationsError, Status};
use crate::judge::writer::{Ran, Written, write};
use crate::report::{Report, ResultRow};
use crate::repro;
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
    /// `--write-expectations FILE`: the one implementation's expectations written from the
    /// run (FILE, when it exists, is also what the run judges with).
    pub write_expectations: Option<PathBuf>,
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
    /// `--write-expectations` with other than one implementation.
    WriteNeedsOne(usize),
    /// `--write-expectations FILE` cannot be written.
    Write {
        file: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // the cause follows in the chain (`source`): here only what was being done
            RunError::Load(_) => f.write_str("the golden suite cannot be used"),
            RunError::Expectations(_) => f.write_str("an expectations file cannot be used"),
            RunError::Implementation(_) => {
                f.write_str("an --impl argument names no implementation")
            }
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
            RunError::WriteNeedsOne(n) => {
                write!(
                    f,
                    "--write-expectations writes one implementation's expectations: give one --impl, not {n}"
                )
            }
            RunError::Write { file, .. } => {
                write!(f, "--write-expectations {}: cannot write", file.display())
            }
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Load(e) => Some(e),
            RunError::Expectations(e) => Some(e),
            RunError::Implementation(e) => Some(e),
            RunError::Write { error, .. } => Some(error),
            _ => None,
        }
    }
}

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
    let mut files = opts.expectations.clone();
    if let Some(w) = &opts.write_expectations {
        if specs.len() != 1 {
            return Err(RunError::WriteNeedsOne(specs.len()));
        }
        // the file being updated is what the run judges with, unless another is given
        if w.exists() && opts.expectations.is_empty() {
            files.push(w.clone());
        }
    }
    for p in &files {
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

/// What a run produced: the report, and the expectations it wrote (`--write-expectations`).
#[derive(Debug)]
pub struct RunOutput {
    pub report: Report,
    pub written: Option<(PathBuf, Written)>,
}

/// Runs the suite, telling `progress` as it goes.
pub fn run(
    opts: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunOutput, RunError> {
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
    // what a reproducing command needs: each implementation's spec, and a suite not the default
    let specs: Vec<ImplSpec> = opts
        .impls
        .iter()
        .filter_map(|s| ImplSpec::parse(s).ok())
        .collect();
    let default = crate::golden::load::default_golden_dir();
    let default_suite = opts.golden == [default.clone()];
    let golden_args: Vec<&Path> = if default_suite {
        vec![]
    } else {
        opts.golden.iter().map(PathBuf::as_path).collect()
    };
    progress(Progress::Start {
        results: selected_cases * targets.len(),
    });
    // Pass 2: run, one file at a time.
    let started = Instant::now();
    let mut report = Report::default();
    'files: for (n, f) in files.iter().enumerate() {
        if crate::interrupt::requested().is_some() {
            break;
        }
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
            for (i, t) in targets.iter().enumerate() {
                if crate::interrupt::requested().is_some() {
                    break 'files;
                }
                let result = run_case(t, &loaded);
                if let Some(fatal) = t.implementation.fatal() {
                    return Err(RunError::Fatal(fatal));
                }
                // a case cut short by the interruption was not judged
                if crate::interrupt::requested().is_some() {
                    break 'files;
                }
                let mut row = ResultRow::new(&loaded, t.implementation.name(), result);
                if let (false, Some(spec)) = (row.status.ok(), specs.get(i)) {
                    row.detail.push_str(&format!(
                        "\nreproduce: {}",
                        repro::command(&row.id, &golden_args, spec)
                    ));
                }
                report.results.push(row);
                progress(Progress::Result {
                    id: &loaded.case.id,
                });
            }
        }
    }
    report.interrupted = crate::interrupt::requested();
    #[cfg(feature = "embedded")]
    {
        report.suite = default_suite.then_some(crate::golden::embedded::DIGEST);
    }
    report.implementations = targets
        .iter()
        .map(|t| t.implementation.name().to_string())
        .collect();
    report.startup = targets
        .iter()
        .filter_map(|t| {
            t.implementation
                .startup_log()
                .map(|log| (t.implementation.name().to_string(), log))
        })
        .collect();
    // End every implementation's processes now, before the reports are written.
    let targets: Vec<(String, std::sync::Arc<Expectations>)> = targets
        .into_iter()
        .map(|t| (t.implementation.name().to_string(), t.expectations))
        .collect();
    if let Some(sig) = report.interrupted {
        count_not_run(&mut report, &files, &opts.filter, &targets, sig)?;
    }
    let ids: Vec<&str> = all_ids.iter().map(String::as_str).collect();
    let whole = opts.filter.is_none() && report.interrupted.is_none();
    for (name, expectations) in &targets {
        let judged: Vec<Judged> = report
            .results
            .iter()
            .filter(|r| &r.implementation == name && r.status != Status::NotRun)
            .map(ResultRow::judged)
            .collect();
        let findings = audit(name, expectations, &ids, &judged, whole);
        report.audit.extend(findings);
    }
    let mut written = None;
    if let (Some(path), [(name, expectations)], None) = (
        &opts.write_expectations,
        targets.as_slice(),
        report.interrupted,
    ) {
        let ran: Vec<Ran> = report.results.iter().map(ResultRow::ran).collect();
        let w = write(expectations, name, &ids, &ran);
        std::fs::write(path, w.expectations.to_json()).map_err(|error| RunError::Write {
            file: path.clone(),
            error,
        })?;
        written = Some((path.clone(), w));
    }
    report.elapsed = started.elapsed();
    Ok(RunOutput { report, written })
}

/// Adds a `not_run` row for every selected case and implementation that has no result.
fn count_not_run(
    report: &mut Report,
    files: &[PathBuf],
    filter: &Option<String>,
    targets: &[(String, std::sync::Arc<Expectations>)],
    sig: i32,
) -> Result<(), RunError> {
    let done: std::collections::HashSet<(String, String)> = report
        .results
        .iter()
        .map(|r| (r.implementation.clone(), r.id.clone()))
        .collect();
    let why = format!(
        "the run was interrupted by {}",
        crate::report::signal_name(sig)
    );
    let results = &mut report.results;
    for_each_case(files, |file, case| {
        if selected(&case, filter) {
            for (name, _) in targets {
                if !done.contains(&(name.clone(), case.id.clone())) {
                    results.push(ResultRow::not_run(&case, file, name, &why));
                }
            }
        }
    })?;
    Ok(())
}
