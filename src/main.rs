//! The `nllspec` command line (contract section 3): parse (clap), call the library, exit.
//!
//! Exit status: 0 every case ended as expected, 1 some did not, 2 unusable input or usage
//! (clap's own usage errors exit 2 as well).

use clap::{Args, Parser, Subcommand};
use nllspec::golden::load::LoadError;
use nllspec::golden::load::{default_golden_dir, discover, load_file};
use nllspec::report::{CaseCounts, Exit, Format, Report};
use nllspec::runner::{RunError, RunOptions, run};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Why a command cannot do its work (exit status 2): the library's typed errors, and the
/// command line's own, as the text printed after `nllspec: `.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<RunError> for UsageError {
    /// The error and its causes, a line each (`caused by: ...`), as wasmtime's runner prints them.
    fn from(e: RunError) -> UsageError {
        UsageError(nllspec::error::causes(&e).join("\n  caused by: "))
    }
}

impl From<LoadError> for UsageError {
    fn from(e: LoadError) -> UsageError {
        UsageError(e.to_string())
    }
}

#[derive(Parser)]
#[command(
    name = "nllspec",
    about = "Conformance suite for LogSoftmax, NLLLoss and CrossEntropyLoss (PyTorch 2.15 is the specification)"
)]
#[command(arg_required_else_help = true, disable_version_flag = true)]
struct Cli {
    /// Print the version and the golden suite it ships (torch version, case count, digest)
    #[arg(short = 'V', long, action = clap::ArgAction::SetTrue)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Judge implementations over the golden suite
    Run(RunArgs),
    /// List the golden cases (ids, or counts per op, dtype and tag)
    List(ListArgs),
    /// Each implementation's ulp error against a float64 computation, as Markdown
    Accuracy(AccuracyArgs),
    /// One case: its inputs, attrs, what PyTorch did, its tags and note
    Show(ShowArgs),
    /// What PyTorch 2.15 does with a snippet, why, and the fix (offline: no Python, no torch)
    Explain(ExplainArgs),
    /// Shrink a golden case an implementation fails to a minimal one, written as a spec case
    Shrink(ShrinkArgs),
    /// Generate cases beyond the golden suite and judge an implementation on them against native
    Fuzz(FuzzArgs),
}

#[derive(Args)]
struct ShrinkArgs {
    /// The failing case's id (as `list` prints it)
    id: String,
    /// The implementation: native, candle, candle-nn, exec:COMMAND or NAME=exec:COMMAND
    #[arg(long = "impl", value_name = "SPEC")]
    imp: String,
    /// Golden file or directory (default: the golden/ shipped with nllspec)
    #[arg(long, value_name = "PATH")]
    golden: Vec<PathBuf>,
    /// Time budget for shrinking
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    time: Duration,
    /// Where spec cases go: <DIR>/<op>/shrunk_<impl>.json
    #[arg(long, value_name = "DIR", default_value = "spec/cases")]
    out: PathBuf,
    /// Per-answer limit for exec: implementations
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    timeout: Duration,
    /// Added to --timeout for a fresh exec: process's first answer
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = seconds)]
    startup_timeout: Duration,
}

#[derive(Args)]
struct FuzzArgs {
    /// The implementation: native, candle, candle-nn, exec:COMMAND or NAME=exec:COMMAND
    #[arg(long = "impl", value_name = "SPEC")]
    imp: String,
    /// The campaign's seed (printed, so that a run can be replayed; default: from the clock)
    #[arg(long)]
    seed: Option<u64>,
    /// Run for this long (60s, 2m, 1h; default 60s)
    #[arg(long, value_name = "DURATION", conflicts_with = "cases", value_parser = duration)]
    time: Option<Duration>,
    /// Run this many cases instead
    #[arg(long, value_name = "N")]
    cases: Option<usize>,
    /// Time budget for shrinking each behaviour found
    #[arg(long, value_name = "SECONDS", default_value = "20", value_parser = seconds)]
    shrink_time: Duration,
    /// Where spec cases go: <DIR>/<op>/fuzz_<impl>.json
    #[arg(long, value_name = "DIR", default_value = "spec/cases")]
    out: PathBuf,
    /// A Python with torch 2.15: confirm each minimal case against PyTorch's own answer
    #[arg(long, value_name = "PYTHON")]
    torch_python: Option<String>,
    /// Per-answer limit for exec: implementations
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    timeout: Duration,
    /// Added to --timeout for a fresh exec: process's first answer
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = seconds)]
    startup_timeout: Duration,
}

#[derive(Args)]
struct ShowArgs {
    /// The case id (as `list` prints it)
    id: String,
    /// Print the case's protocol-1 request line (pipe it into an adapter to reproduce a failure)
    #[arg(long, conflicts_with = "torch")]
    request: bool,
    /// Print a self-contained PyTorch snippet computing the expected answer from the exact inputs
    #[arg(long)]
    torch: bool,
    /// Golden file or directory (default: the golden/ shipped with nllspec)
    #[arg(long, value_name = "PATH")]
    golden: Vec<PathBuf>,
}

#[derive(Args)]
struct ExplainArgs {
    /// A file with the snippet, or - for standard input
    #[arg(value_name = "FILE", conflicts_with = "code")]
    file: Option<PathBuf>,
    /// The snippet itself
    #[arg(short = 'c', value_name = "CODE")]
    code: Option<String>,
    /// The answer as JSON (spec/EXPLAIN.md)
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Golden file or directory (default: the golden/ shipped with nllspec)
    #[arg(long, value_name = "PATH")]
    golden: Vec<PathBuf>,
    /// native (default), candle, candle-nn, exec:COMMAND (protocol 1), or NAME=exec:COMMAND
    /// (NAME is what reports and expectations files use; an unnamed exec: is called after its
    /// script or program)
    #[arg(long = "impl", value_name = "SPEC")]
    impls: Vec<String>,
    /// Only cases whose id contains TEXT (tag:NAME: the cases tagged NAME)
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Per-answer limit for exec: implementations
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds, allow_hyphen_values = true)]
    timeout: Duration,
    /// Added to --timeout for each fresh exec: process's first answer (imports, a device's start-up)
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = seconds, allow_hyphen_values = true)]
    startup_timeout: Duration,
    /// Report format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Write the report to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Known failures and tolerance entries of an implementation (spec/expectations/ format)
    #[arg(long, value_name = "FILE")]
    expectations: Vec<PathBuf>,
    /// Write (or, when FILE exists, update and judge with) the one implementation's
    /// expectations from this run, so that the next identical run exits 0
    #[arg(long, value_name = "FILE")]
    write_expectations: Option<PathBuf>,
    /// Human output: only the summary, the expectations audit and the failures by behaviour
    #[arg(long)]
    summary: bool,
    /// After the run, shrink one failing case per behaviour and write each as a spec case
    /// under spec/cases/<op>/shrunk_<impl>.json (one --impl)
    #[arg(long)]
    shrink: bool,
}

#[derive(Args)]
struct ListArgs {
    /// Golden file or directory (default: the golden/ shipped with nllspec)
    #[arg(long, value_name = "PATH")]
    golden: Vec<PathBuf>,
    /// Case counts per op, dtype, outcome and tag instead of ids
    #[arg(long)]
    counts: bool,
    /// Each id with its tags and its note (why the case exists)
    #[arg(long, conflicts_with = "counts")]
    notes: bool,
    /// Only cases whose id contains TEXT (tag:NAME: the cases tagged NAME)
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
}

#[derive(Args)]
struct AccuracyArgs {
    /// Implementations to measure (default: native and candle)
    #[arg(long = "impl", value_name = "SPEC")]
    impls: Vec<String>,
    /// Golden file or directory (default: the golden/ shipped with nllspec)
    #[arg(long, value_name = "PATH")]
    golden: Vec<PathBuf>,
    /// Per-answer limit for exec: implementations
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    timeout: Duration,
    /// Added to --timeout for a fresh exec: process's first answer
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = seconds)]
    startup_timeout: Duration,
    /// Elements per synthetic measurement
    #[arg(long, value_name = "N", default_value_t = 1 << 19, value_parser = clap::value_parser!(u64).range(1..=1 << 26))]
    elements: u64,
}

/// `60s`, `2m`, `1h` or plain seconds.
fn duration(value: &str) -> Result<Duration, String> {
    let (number, unit) = match value
        .strip_suffix('h')
        .map(|n| (n, 3600.0))
        .or_else(|| value.strip_suffix('m').map(|n| (n, 60.0)))
    {
        Some(x) => x,
        None => (value.strip_suffix('s').unwrap_or(value), 1.0),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{value}: not a duration (60s, 2m, 1h)"))?;
    seconds(&(n * unit).to_string()).map_err(|_| format!("{value}: must be between 0 and 24 hours"))
}

fn seconds(value: &str) -> Result<Duration, String> {
    let s: f64 = value
        .parse()
        .map_err(|_| format!("{value}: not a number of seconds"))?;
    if !(s > 0.0 && s <= 86_400.0) {
        return Err(format!("{value}: must be between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match (cli.version, cli.command) {
        (true, _) => version().and_then(|v| say(&v)).map(|_| Exit::Ok),
        (false, Some(Command::Run(a))) => run_command(a),
        (false, Some(Command::List(a))) => list_command(a),
        (false, Some(Command::Accuracy(a))) => accuracy_command(a),
        (false, Some(Command::Explain(a))) => explain_command(a),
        (false, Some(Command::Show(a))) => show_command(a),
        (false, Some(Command::Shrink(a))) => shrink_command(a),
        (false, Some(Command::Fuzz(a))) => fuzz_command(a),
        // `nllspec -V` alone is the only way here without a command (clap answers a bare
        // `nllspec` with its help): print the help, as for a bare command
        (false, None) => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            Ok(Exit::Unusable)
        }
    };
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            eprintln!("nllspec: {e}");
            ExitCode::from(Exit::Unusable.code())
        }
    }
}

/// Writes to stdout; a reader that went away (`nllspec list | head`) ends the output quietly.
fn say(text: &str) -> Result<(), UsageError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(UsageError(format!("cannot write to stdout: {e}"))),
        Ok(()) => Ok(()),
    }
}

fn goldens(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![default_golden_dir()]
    } else {
        paths
    }
}

/// `nllspec 0.1.0 (golden suite: torch 2.15.0, 999 cases, sha256 1a2b3c4d5e6f)`: the suite
/// compiled into this binary.
fn version() -> Result<String, UsageError> {
    use nllspec::golden::embedded::{CASES, DIGEST, TORCH};
    Ok(format!(
        "nllspec {} (golden suite: torch {TORCH}, {CASES} cases, sha256 {})\n",
        env!("CARGO_PKG_VERSION"),
        &DIGEST[..12]
    ))
}

fn run_command(a: RunArgs) -> Result<Exit, UsageError> {
    let format = match a.format {
        Format::Human if a.summary => Format::Summary,
        f => f,
    };
    let opts = RunOptions {
        golden: goldens(a.golden),
        impls: if a.impls.is_empty() {
            vec!["native".into()]
        } else {
            a.impls
        },
        filter: a.filter,
        timeout: a.timeout,
        startup_timeout: a.startup_timeout,
        expectations: a.expectations,
        write_expectations: a.write_expectations,
    };
    let quiet = !matches!(format, Format::Human | Format::Summary) && a.out.is_none();
    // A Ctrl-C or a CI job's SIGTERM ends the run with its reports, not at once.
    nllspec::interrupt::install();
    // A bar where a person watches (a terminal); a line per golden file in logs.
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::hidden();
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {wide_msg} ({elapsed}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let result = run(&opts, &mut |p| match (&bar, p) {
        (Some(b), nllspec::runner::Progress::Start { results }) => {
            b.set_length(results as u64);
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        (Some(b), nllspec::runner::Progress::Result { id }) => {
            b.set_message(id.to_string());
            b.inc(1);
        }
        (None, p) if !quiet => {
            if let Some(line) = p.line() {
                eprintln!("{line}");
            }
        }
        _ => {}
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let (report, written) = match result {
        Ok(r) => (r.report, r.written),
        Err(e) if format == Format::Json => {
            // The contract's JSON object is printed whatever the exit status: an unusable
            // input gives an empty report carrying the error.
            let text = Report {
                error: Some(nllspec::error::chain(&e)),
                ..Default::default()
            }
            .json();
            match &a.out {
                Some(path) => std::fs::write(path, &text).map_err(|w| {
                    UsageError(format!(
                        "{e}; and --out {}: cannot write: {w}",
                        path.display()
                    ))
                })?,
                None => say(&text)?,
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let text = report.render(format);
    match &a.out {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| UsageError(format!("--out {}: cannot write: {e}", path.display())))?,
        None => say(&text)?,
    }
    if a.out.is_some() && !matches!(format, Format::Human | Format::Summary) {
        eprintln!("{}", report.summary_line());
    }
    if let Some((path, w)) = written {
        eprint!("{}", w.summary(&path.display().to_string()));
    }
    if a.shrink && report.interrupted.is_none() {
        shrink_behaviours(&report, &opts)?;
    }
    Ok(report.exit())
}

/// `run --shrink`: one failing case per behaviour (the implementation, the cause, the case
/// family), shrunk by a fresh instance of the implementation, written as spec cases.
fn shrink_behaviours(report: &Report, opts: &RunOptions) -> Result<(), UsageError> {
    use nllspec::fuzz::{elements, shrink_golden, spec_out};
    let [spec] = opts.impls.as_slice() else {
        return Err(UsageError(
            "--shrink shrinks one implementation's failures: give one --impl".into(),
        ));
    };
    let (name, imp) = implementation(spec, opts.timeout, opts.startup_timeout)?;
    let mut seen = std::collections::BTreeSet::new();
    let picked: Vec<&nllspec::report::ResultRow> = report
        .results
        .iter()
        .filter(|r| !r.status.ok())
        .filter(|r| {
            seen.insert((
                r.cause.clone(),
                nllspec::judge::writer::family(&r.id).to_string(),
            ))
        })
        .collect();
    for r in picked {
        let Some(case) = load_file(&r.file)?.cases.into_iter().find(|c| c.id == r.id) else {
            continue;
        };
        match shrink_golden(imp.as_ref(), &case, Duration::from_secs(20)) {
            Ok(shrunk) => {
                let path = PathBuf::from("spec/cases")
                    .join(case.call.op().name())
                    .join(format!("shrunk_{name}.json"));
                let id = format!(
                    "{}/{}",
                    spec_out::id_prefix(&path),
                    spec_out::name_of(&case.id)
                );
                let note = format!(
                    "Shrunk by `nllspec run --shrink` from {} where {name} failed: {}",
                    case.id, shrunk.cause
                );
                spec_out::write(
                    &path,
                    &[spec_out::spec_case(
                        &id,
                        &shrunk.subject,
                        &note,
                        &["shrunk"],
                    )],
                    "Minimal cases from nllspec shrink",
                )
                .map_err(|e| UsageError(format!("{}: cannot write: {e}", path.display())))?;
                eprintln!(
                    "shrunk {} ({}): {} elements -> {}, written as {id} to {}",
                    case.id,
                    shrunk.cause,
                    elements(&nllspec::fuzz::shrink::Subject {
                        call: case.call.clone(),
                        grad_output: case.grad_output.clone()
                    }),
                    elements(&shrunk.subject),
                    path.display()
                );
            }
            Err(why) => eprintln!("not shrunk: {why}"),
        }
    }
    Ok(())
}

fn list_command(a: ListArgs) -> Result<Exit, UsageError> {
    let files = discover(&goldens(a.golden))?;
    let mut ids = Vec::new();
    let mut counts = CaseCounts::default();
    for f in &files {
        for c in load_file(f)?
            .cases
            .into_iter()
            .filter(|c| nllspec::runner::selected(c, &a.filter))
        {
            counts.add(&c);
            if a.notes {
                let tags = if c.tags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", c.tags.join(", "))
                };
                ids.push(format!(
                    "{}{tags}\n    {}",
                    c.id,
                    c.note.as_deref().unwrap_or("(no note)")
                ));
            } else {
                ids.push(c.id);
            }
        }
    }
    if ids.is_empty() && a.filter.is_some() {
        return Err(UsageError(format!(
            "--filter {:?} selects no case",
            a.filter.unwrap_or_default()
        )));
    }
    if a.counts {
        say(&counts.markdown())?;
    } else {
        say(&(ids.join("\n") + "\n"))?;
    }
    Ok(Exit::Ok)
}

fn accuracy_command(a: AccuracyArgs) -> Result<Exit, UsageError> {
    let names = if a.impls.is_empty() {
        vec!["native".to_string(), "candle".to_string()]
    } else {
        a.impls
    };
    let impls = names
        .iter()
        .map(|n| implementation(n, a.timeout, a.startup_timeout).map(|(_, imp)| imp))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&dyn nllspec::impls::Implementation> = impls.iter().map(|b| b.as_ref()).collect();
    let cases = nllspec::golden::load::load_all(&goldens(a.golden))?;
    say(&nllspec::accuracy::markdown(
        &refs,
        &cases,
        a.elements as usize,
    ))?;
    Ok(Exit::Ok)
}

fn explain_command(a: ExplainArgs) -> Result<Exit, UsageError> {
    let source = match (a.code, a.file) {
        (Some(c), _) => c,
        (None, Some(p)) if p.as_os_str() != "-" => {
            std::fs::read_to_string(&p).map_err(|e| UsageError(format!("{}: {e}", p.display())))?
        }
        _ => std::io::read_to_string(std::io::stdin())
            .map_err(|e| UsageError(format!("standard input: {e}")))?,
    };
    let answer = nllspec::explain::explain(&source);
    let text = if a.json {
        serde_json::to_string_pretty(&answer.json()).unwrap_or_default() + "\n"
    } else {
        answer.human()
    };
    say(&text)?;
    // 0 for an answer (a snippet that raises is still answered), 2 when it cannot be evaluated
    Ok(
        if matches!(answer, nllspec::explain::Answer::Unsupported(_)) {
            Exit::Unusable
        } else {
            Exit::Ok
        },
    )
}

fn show_command(a: ShowArgs) -> Result<Exit, UsageError> {
    use nllspec::golden::format::Expected;
    use nllspec::impls::protocol::attrs_to_json;
    use nllspec::tensor::fmt_shape;
    for f in discover(&goldens(a.golden))? {
        let Some(c) = load_file(&f)?.cases.into_iter().find(|c| c.id == a.id) else {
            continue;
        };
        if a.request {
            say(&nllspec::repro::request(&c))?;
            return Ok(Exit::Ok);
        }
        if a.torch {
            say(&nllspec::repro::torch_snippet(&c))?;
            return Ok(Exit::Ok);
        }
        let mut out = format!(
            "{}\n  file:     {}\n  op:       {}\n  attrs:    {}\n",
            c.id,
            f.display(),
            c.call.op().name(),
            attrs_to_json(&c.call)
        );
        let k = &c.call;
        for (name, t) in [
            ("input", Some(k.input())),
            ("target", k.target()),
            ("weight", k.weight()),
            ("grad_output", c.grad_output.as_ref()),
        ] {
            if let Some(t) = t {
                out.push_str(&format!(
                    "  {name:<9} {} {}\n",
                    t.dtype().name(),
                    fmt_shape(t.shape())
                ));
            }
        }
        match &c.expected {
            Expected::Error(e) => out.push_str(&format!(
                "  PyTorch:  {}: {} (kind {})\n",
                e.type_name(),
                e.message,
                e.kind
            )),
            Expected::Values { torch, .. } => {
                out.push_str(&format!(
                    "  PyTorch:  output {} {}",
                    torch.output.dtype().name(),
                    fmt_shape(torch.output.shape())
                ));
                if let Some(g) = &torch.grad_input {
                    out.push_str(&format!(
                        ", grad_input {} {}",
                        g.dtype().name(),
                        fmt_shape(g.shape())
                    ));
                }
                out.push('\n');
            }
        }
        if !c.tags.is_empty() {
            out.push_str(&format!("  tags:     {}\n", c.tags.join(", ")));
        }
        if let Some(n) = &c.note {
            out.push_str(&format!("  note:     {n}\n"));
        }
        say(&out)?;
        return Ok(Exit::Ok);
    }
    Err(UsageError(format!(
        "no case {:?} (nllspec list prints the ids)",
        a.id
    )))
}

/// An implementation from an `--impl` spec, with the limits given.
fn implementation(
    spec: &str,
    timeout: Duration,
    startup: Duration,
) -> Result<(String, Box<dyn nllspec::impls::Implementation>), UsageError> {
    let spec = nllspec::impls::ImplSpec::parse(spec).map_err(|e| UsageError(e.to_string()))?;
    let limits = nllspec::impls::external::Limits { timeout, startup };
    Ok((spec.name().to_string(), spec.build(limits)))
}

fn shrink_command(a: ShrinkArgs) -> Result<Exit, UsageError> {
    use nllspec::fuzz::{describe, elements, shrink::Subject, shrink_golden, spec_out};
    let (name, imp) = implementation(&a.imp, a.timeout, a.startup_timeout)?;
    let mut found = None;
    for f in discover(&goldens(a.golden))? {
        if let Some(c) = load_file(&f)?.cases.into_iter().find(|c| c.id == a.id) {
            found = Some(c);
            break;
        }
    }
    let case = found
        .ok_or_else(|| UsageError(format!("no case {:?} (nllspec list prints the ids)", a.id)))?;
    nllspec::interrupt::install();
    let shrunk = shrink_golden(imp.as_ref(), &case, a.time).map_err(UsageError)?;
    let before = elements(&Subject {
        call: case.call.clone(),
        grad_output: case.grad_output.clone(),
    });
    let op = case.call.op().name();
    let path = a.out.join(op).join(format!("shrunk_{name}.json"));
    let id = format!(
        "{}/{}",
        spec_out::id_prefix(&path),
        spec_out::name_of(&case.id)
    );
    let note = format!(
        "Shrunk by `nllspec shrink` from {} where {name} failed: {}",
        case.id, shrunk.cause
    );
    let spec = spec_out::spec_case(&id, &shrunk.subject, &note, &["shrunk"]);
    spec_out::write(
        &path,
        &[spec],
        "Minimal cases from nllspec shrink: each fails the implementation its note names",
    )
    .map_err(|e| UsageError(format!("{}: cannot write: {e}", path.display())))?;
    let mut out = format!(
        "{}: {name} fails it: {}\nshrunk in {} steps ({} tries, {:.1} s{}): {before} -> {} elements\n{}\n{}\n",
        case.id,
        shrunk.cause,
        shrunk.steps,
        shrunk.tries,
        shrunk.elapsed.as_secs_f64(),
        if shrunk.out_of_time {
            ", out of time"
        } else {
            ""
        },
        elements(&shrunk.subject),
        describe(&shrunk.subject),
        shrunk.detail
    );
    out.push_str(&format!(
        "written: {} ({id}); `python golden/export.py` turns it into a golden case with PyTorch's answer\n",
        path.display()
    ));
    say(&out)?;
    Ok(Exit::Ok)
}

fn fuzz_command(a: FuzzArgs) -> Result<Exit, UsageError> {
    use nllspec::fuzz::{Budget, Confirmed, FuzzOptions, describe, elements, fuzz, spec_out};
    let (name, imp) = implementation(&a.imp, a.timeout, a.startup_timeout)?;
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let budget = match (a.cases, a.time) {
        (Some(n), _) => Budget::Cases(n),
        (None, t) => Budget::Time(t.unwrap_or(Duration::from_secs(60))),
    };
    eprintln!("nllspec fuzz: {name}, seed {seed} (replay: --seed {seed})");
    nllspec::interrupt::install();
    let opts = FuzzOptions {
        seed,
        budget,
        shrink_budget: a.shrink_time,
        torch_python: a.torch_python,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = match budget {
            Budget::Cases(n) => indicatif::ProgressBar::new(n as u64),
            Budget::Time(_) => indicatif::ProgressBar::new_spinner(),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos} cases ({per_sec}, {elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let report = fuzz(imp.as_ref(), &opts, &mut |n| {
        if let Some(b) = &bar {
            b.set_position(n as u64);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut out = format!(
        "{} cases in {:.1} s ({:.0} cases/s judged){}; seed {seed}\n",
        report.cases,
        report.elapsed.as_secs_f64(),
        report.rate(),
        if report.interrupted {
            ", interrupted"
        } else {
            ""
        }
    );
    let mut specs: std::collections::BTreeMap<&str, Vec<serde_json::Value>> = Default::default();
    for (k, f) in report.findings.iter().enumerate() {
        let minimal = f.minimal();
        let confirmed = match &f.confirmed {
            Confirmed::NotChecked => String::new(),
            Confirmed::Yes => " (confirmed against PyTorch)".into(),
            Confirmed::No(why) => format!(" (NOT counted: {why})"),
        };
        out.push_str(&format!(
            "\n=== {} x {}: {}{confirmed}\n  first at case {} ({:.2} s); minimal case, {} elements (from {}):\n{}  {}\n",
            f.count,
            f.op,
            f.cause,
            f.first_case,
            f.first_after.as_secs_f64(),
            elements(minimal),
            elements(&f.example),
            describe(minimal),
            f.shrunk.as_ref().map_or(f.detail.as_str(), |s| s.detail.as_str()).lines().next().unwrap_or("")
        ));
        if !matches!(f.confirmed, Confirmed::No(_)) {
            let path = a.out.join(f.op).join(format!("fuzz_{name}.json"));
            let id = format!("{}/seed{seed}-{k}", spec_out::id_prefix(&path));
            let note = format!(
                "Found by `nllspec fuzz --impl {name} --seed {seed}` (case {}): {name} failed: {}",
                f.first_case, f.cause
            );
            specs.entry(f.op).or_default().push(spec_out::spec_case(
                &id,
                minimal,
                &note,
                &["fuzz"],
            ));
        }
    }
    for (op, cases) in &specs {
        let path = a.out.join(op).join(format!("fuzz_{name}.json"));
        spec_out::write(
            &path,
            cases,
            "Minimal cases from nllspec fuzz: each fails the implementation its note names",
        )
        .map_err(|e| UsageError(format!("{}: cannot write: {e}", path.display())))?;
        out.push_str(&format!(
            "\nwritten: {} ({} cases)",
            path.display(),
            cases.len()
        ));
    }
    let found = report.counted().count();
    out.push_str(&format!("\n{found} behaviours found\n"));
    say(&out)?;
    Ok(if report.interrupted {
        Exit::Interrupted(nllspec::interrupt::requested().unwrap_or(2))
    } else if found > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    })
}
