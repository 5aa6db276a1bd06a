//! The `nllspec` command line (contract section 3): parse, call the library, exit.

use nllspec::golden::load::{default_golden_dir, discover, load_file};
use nllspec::report::Format;
use nllspec::runner::{RunOptions, UsageError, run};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage:
  nllspec run [--golden PATH]... [--impl NAME]... [--filter TEXT] [--timeout SECONDS]
              [--startup-timeout SECONDS] [--format human|json|junit|markdown] [--out FILE]
              [--expectations FILE]...
  nllspec list [--golden PATH]... [--counts]
  nllspec accuracy [--impl NAME]... [--golden PATH]... [--elements N]

  --golden PATH         golden file or directory (default: the golden/ shipped with nllspec)
  --impl NAME           native (default), candle, candle-nn, exec:COMMAND (protocol 1), or
                        NAME=exec:COMMAND (NAME is what reports and expectations files use;
                        an unnamed exec: is called after its script or program)
  --filter TEXT         only cases whose id contains TEXT
  --timeout SECONDS     per-case limit for exec: implementations (default 30)
  --startup-timeout SECONDS
                        added to --timeout for each fresh exec: process's first answer
                        (imports, device start-up; default 120)
  --format FORMAT       human (default), json (report v1), junit, markdown
  --out FILE            write the report to FILE instead of stdout
  --expectations FILE   known failures of an implementation (spec/expectations/ format)
  --counts              list: case counts per op, dtype and tag instead of ids

accuracy prints, as Markdown, each implementation's ulp error against a float64 computation
(default: native and candle), and PyTorch's against the goldens' float64 references.

exit status: 0 every case ended as expected, 1 some did not, 2 unusable input or usage";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match real_main(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("nllspec: {e}");
            ExitCode::from(2)
        }
    }
}

struct Parsed {
    golden: Vec<PathBuf>,
    impls: Vec<String>,
    filter: Option<String>,
    timeout: Duration,
    startup_timeout: Duration,
    format: Format,
    out: Option<PathBuf>,
    expectations: Vec<PathBuf>,
    counts: bool,
    elements: usize,
}

fn parse(args: &[String], command: &str) -> Result<Parsed, UsageError> {
    let mut p = Parsed {
        golden: vec![],
        impls: vec![],
        filter: None,
        timeout: Duration::from_secs(30),
        startup_timeout: Duration::from_secs(120),
        format: Format::Human,
        out: None,
        expectations: vec![],
        counts: false,
        elements: 1 << 19,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (flag.as_str(), None),
        };
        const KNOWN: &[&str] = &[
            "--golden", "--impl", "--filter", "--timeout", "--startup-timeout", "--format", "--out", "--expectations", "--counts", "--elements", "--help",
            "-h",
        ];
        if !KNOWN.contains(&name) {
            return Err(UsageError(format!("unknown argument \"{flag}\" for {command}\n{USAGE}")));
        }
        let takes_value = !matches!(name, "--counts" | "--help" | "-h");
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it.next().cloned().ok_or_else(|| UsageError(format!("{name} needs a value\n{USAGE}")))?,
            }
        } else {
            String::new()
        };
        match (command, name) {
            (_, "--golden") => p.golden.push(PathBuf::from(value)),
            ("run" | "accuracy", "--impl") => p.impls.push(value),
            ("run", "--filter") => p.filter = Some(value),
            ("run", "--timeout") => p.timeout = seconds("--timeout", &value)?,
            ("run", "--startup-timeout") => p.startup_timeout = seconds("--startup-timeout", &value)?,
            ("run", "--format") => {
                p.format = Format::parse(&value)
                    .ok_or_else(|| UsageError(format!("--format {value}: expected human, json, junit or markdown")))?
            }
            ("run", "--out") => p.out = Some(PathBuf::from(value)),
            ("run", "--expectations") => p.expectations.push(PathBuf::from(value)),
            ("list", "--counts") => p.counts = true,
            ("accuracy", "--elements") => {
                p.elements = value
                    .parse()
                    .ok()
                    .filter(|&n| (1..=1 << 26).contains(&n))
                    .ok_or_else(|| UsageError(format!("--elements {value}: a count from 1 to 2^26")))?
            }
            (_, "--help" | "-h") => return Err(UsageError(USAGE.to_string())),
            _ => return Err(UsageError(format!("unknown argument \"{flag}\" for {command}\n{USAGE}"))),
        }
    }
    if p.golden.is_empty() {
        p.golden.push(default_golden_dir());
    }
    if p.impls.is_empty() {
        p.impls.push("native".into());
    }
    Ok(p)
}

fn seconds(flag: &str, value: &str) -> Result<Duration, UsageError> {
    let s: f64 = value.parse().map_err(|_| UsageError(format!("{flag} {value}: not a number of seconds")))?;
    if !(s > 0.0 && s <= 86_400.0) {
        return Err(UsageError(format!("{flag} {value}: must be between 0 and 86400 seconds")));
    }
    Ok(Duration::from_secs_f64(s))
}

fn real_main(args: &[String]) -> Result<u8, UsageError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(UsageError(USAGE.to_string()));
    };
    match command.as_str() {
        "run" => {
            let p = parse(rest, "run")?;
            let opts = RunOptions {
                golden: p.golden,
                impls: p.impls,
                filter: p.filter,
                timeout: p.timeout,
                startup_timeout: p.startup_timeout,
                expectations: p.expectations,
            };
            let quiet = p.format != Format::Human && p.out.is_none();
            let report = match run(&opts, &mut |line| {
                if !quiet {
                    eprintln!("{line}");
                }
            }) {
                Ok(r) => r,
                Err(e) if p.format == Format::Json => {
                    // The contract's JSON object is printed whatever the exit status: an
                    // unusable input gives an empty report carrying the error.
                    let text = nllspec::report::Report { error: Some(e.to_string()), ..Default::default() }.json();
                    match &p.out {
                        Some(path) => {
                            let _ = std::fs::write(path, &text);
                        }
                        None => print!("{text}"),
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let text = report.render(p.format);
            match &p.out {
                Some(path) => std::fs::write(path, &text)
                    .map_err(|e| UsageError(format!("--out {}: cannot write: {e}", path.display())))?,
                None => print!("{text}"),
            }
            if p.out.is_some() && p.format != Format::Human {
                eprint!("{}", report.human().lines().last().map(|l| format!("{l}\n")).unwrap_or_default());
            }
            Ok(report.exit_code() as u8)
        }
        "list" => {
            let p = parse(rest, "list")?;
            let files = discover(&p.golden)?;
            let mut ids = Vec::new();
            let mut counts: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
            for f in &files {
                for c in load_file(f)?.cases {
                    *counts.entry(("op", c.op.name().to_string())).or_default() += 1;
                    *counts.entry(("dtype", c.inputs.input.dtype().name().to_string())).or_default() += 1;
                    let outcome = if matches!(c.expected, nllspec::golden::format::Expected::Error(_)) { "error" } else { "values" };
                    *counts.entry(("expected", outcome.to_string())).or_default() += 1;
                    if c.inputs.grad_output.is_some() {
                        *counts.entry(("expected", "grad_input".to_string())).or_default() += 1;
                    }
                    for t in &c.tags {
                        *counts.entry(("tag", t.clone())).or_default() += 1;
                    }
                    ids.push(c.id);
                }
            }
            if p.counts {
                print!("{}", nllspec::report::counts_markdown(ids.len(), &counts));
            } else {
                for id in ids {
                    println!("{id}");
                }
            }
            Ok(0)
        }
        "accuracy" => {
            let mut p = parse(rest, "accuracy")?;
            if p.impls == ["native"] && !rest.iter().any(|a| a.starts_with("--impl")) {
                p.impls.push("candle".into());
            }
            let impls = p
                .impls
                .iter()
                .map(|n| nllspec::impls::by_name(n, p.timeout).ok_or_else(|| UsageError(format!("unknown implementation \"{n}\""))))
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&dyn nllspec::impls::Implementation> = impls.iter().map(|b| b.as_ref()).collect();
            let cases = nllspec::golden::load::load_all(&p.golden)?;
            print!("{}", nllspec::accuracy::markdown(&refs, &cases, p.elements));
            Ok(0)
        }
        "--help" | "-h" | "help" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => Err(UsageError(format!("unknown command \"{other}\"\n{USAGE}"))),
    }
}
