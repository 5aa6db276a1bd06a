//! The libtest-mimic matrix of implementation x golden case, for `cargo test`: each trial runs
//! one case through [`crate::execution`], the path `nllspec run` takes too.
//!
//! Each trial is named `<implementation>/<case id>` (`native/nll_loss/weight/NC_positive/reduction=mean@float32`),
//! so one string runs, filters (`cargo test -- candle/nll_loss`) and keys the expectations
//! file. Trials are sorted by name. An unsupported case is an ignored trial with its reason;
//! an expected failure passes; an expected failure that passes fails, and so does an
//! expectations entry that matches no case.
//!
//! Another crate gates its own implementation with one call from a `harness = false` test:
//!
//! ```no_run
//! use nllspec::impls::{Implementation, Outcome, Request};
//!
//! struct Mine;
//! impl Implementation for Mine {
//!     fn name(&self) -> &str { "mine" }
//!     fn run(&self, req: &Request<'_>) -> Outcome {
//!         Outcome::Unsupported("not written yet".into())
//!     }
//! }
//!
//! fn main() {
//!     nllspec::harness::main(Mine, None);
//! }
//! ```

pub use crate::execution::Target;
use crate::execution::run_case;
use crate::golden::load::{LoadedCase, default_golden_dir, load_all};
use crate::impls::Implementation;
use crate::judge::expectations::{Expectations, Status};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A failing trial's message: the case, its file, the detail, and, since a new case may meet a
/// known divergence, where to record one.
fn failure_message(t: &Target, loaded: &LoadedCase, detail: &str) -> String {
    let file = t
        .expectations
        .source
        .as_ref()
        .map_or("an expectations file".into(), |p| p.display().to_string());
    format!(
        "{} ({})\n{detail}\nIf this is a known divergence of {}, not a bug, record it: add \
         {{\"match\": \"{}\", \"reason\": \"<the behaviour>\"}} to {file}'s expected_failures.",
        loaded.case.id,
        loaded.file.display(),
        t.implementation.name(),
        loaded.case.id
    )
}

/// The trials for every target over `cases`, sorted by name.
pub fn trials(targets: &[Target], cases: Arc<Vec<LoadedCase>>) -> Vec<Trial> {
    let mut out = Vec::new();
    for target in targets {
        let name = target.implementation.name().to_string();
        for i in 0..cases.len() {
            let (t, cs) = (target.clone(), Arc::clone(&cases));
            out.push(Trial::ignorable_test(
                format!("{name}/{}", cases[i].case.id),
                move || {
                    let loaded = &cs[i];
                    let r = run_case(&t, loaded);
                    if let Some(fatal) = t.implementation.fatal() {
                        return Err(Failed::from(fatal));
                    }
                    match r.status {
                        Status::Pass | Status::Xfail | Status::Flaky => Ok(Completion::Completed),
                        Status::Skip | Status::ForwardOnly | Status::NotRun => {
                            Ok(Completion::ignored_with(r.detail))
                        }
                        Status::Xpass => Err(Failed::from(format!(
                            "{} ({})\n{}",
                            loaded.case.id,
                            loaded.file.display(),
                            r.detail
                        ))),
                        Status::Fail => Err(Failed::from(failure_message(&t, loaded, &r.detail))),
                    }
                },
            ));
        }
        let (t, cs) = (target.clone(), Arc::clone(&cases));
        out.push(Trial::test(
            format!("{name}/(expectations file)"),
            move || {
                let ids: Vec<&str> = cs.iter().map(|c| c.case.id.as_str()).collect();
                let mut list: Vec<String> = t
                    .expectations
                    .unmatched(&ids)
                    .iter()
                    .map(|e| format!("  {} ({})", e.pattern, e.reason))
                    .collect();
                list.extend(
                    t.expectations
                        .unmatched_tolerances(&ids)
                        .iter()
                        .map(|e| format!("  tolerance {} ({})", e.label(), e.reason)),
                );
                if list.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "expectations that match no case (stale or misspelled):\n{}",
                        list.join("\n")
                    )
                    .into())
                }
            },
        ));
    }
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

/// Loads the golden files under `paths`; a load error or an empty suite becomes one failing
/// trial, so that `cargo test` reports it instead of passing on nothing.
pub fn load_or_fail(paths: &[PathBuf]) -> Result<Arc<Vec<LoadedCase>>, Trial> {
    match load_all(paths) {
        Ok(cases) if cases.is_empty() => Err(Trial::test("golden/(discovery)", || {
            Err("no golden cases found: refusing to pass on nothing".into())
        })),
        Ok(cases) => Ok(Arc::new(cases)),
        Err(e) => {
            let msg = e.to_string();
            Err(Trial::test("golden/(discovery)", move || Err(msg.into())))
        }
    }
}

/// The golden files a run needs. Under `cargo nextest` every test is a process of its own,
/// started with `--exact <name>`: reloading all 24 MB of goldens for each would dominate, so an
/// exact filter naming a case loads only its file (a shipped case id starts with its file's
/// path: `nll_loss/weight/...` lives in `golden/nll_loss/weight.json`).
pub fn golden_paths_for(args: &Arguments, golden_dir: &Path) -> Vec<PathBuf> {
    if let (true, Some(name)) = (args.exact, args.filter.as_deref()) {
        // name = "<implementation>/<op>/<file>/..."; implementations may contain '/'
        // (exec:...), so try every split point.
        for (i, _) in name.match_indices('/') {
            let id = &name[i + 1..];
            let mut parts = id.splitn(3, '/');
            if let (Some(op), Some(file), Some(_)) = (parts.next(), parts.next(), parts.next()) {
                let p = golden_dir.join(op).join(format!("{file}.json"));
                if p.is_file() {
                    return vec![p];
                }
            }
        }
    }
    vec![golden_dir.to_path_buf()]
}

/// Runs the shipped golden suite against `implementation` as a libtest-mimic test binary
/// (command-line filters work as with `cargo test`) and exits. `expectations` is an optional
/// known-failures file in the format of spec/expectations/.
pub fn main(implementation: impl Implementation + 'static, expectations: Option<&Path>) -> ! {
    let write_to = std::env::var_os(WRITE_EXPECTATIONS).map(PathBuf::from);
    let report_to = std::env::var_os(REPORT).map(PathBuf::from);
    if write_to.is_some() || report_to.is_some() {
        whole_suite(
            implementation,
            expectations,
            write_to.as_deref(),
            report_to.as_deref(),
        )
    }
    let exp = match expectations {
        Some(p) => Expectations::load(p).unwrap_or_else(|e| {
            eprintln!("nllspec: {e}");
            std::process::exit(2)
        }),
        None => Expectations::none(implementation.name()),
    };
    main_targets(vec![Target::new(implementation, exp)])
}

/// The environment variable that makes [`main`] write the implementation's expectations instead
/// of running the tests: `NLLSPEC_WRITE_EXPECTATIONS=FILE cargo test --test nllspec` runs
/// every case of the suite once, judged with FILE when it exists (else with the `expectations`
/// given to [`main`], else none), and writes FILE as `nllspec run --write-expectations` does
/// (spec/FORMAT.md, "Writing expectations"), listing what changed on stderr.
pub const WRITE_EXPECTATIONS: &str = "NLLSPEC_WRITE_EXPECTATIONS";

/// The environment variable that makes [`main`] write a report instead of running the tests:
/// `NLLSPEC_REPORT=FILE cargo test --test nllspec` runs every case of the suite once and writes
/// report v1 (spec/FORMAT.md, as `nllspec run --format json`), the expectations audited as
/// `nllspec run` audits them; it exits with `nllspec run`'s status. With
/// [`WRITE_EXPECTATIONS`] too, the report is of the run the file was written from.
pub const REPORT: &str = "NLLSPEC_REPORT";

/// The whole suite, once, for [`WRITE_EXPECTATIONS`] and [`REPORT`]: exits with
/// [`whole_suite_at`]'s status, or 2 and the message.
fn whole_suite(
    implementation: impl Implementation + 'static,
    expectations: Option<&Path>,
    write_to: Option<&Path>,
    report_to: Option<&Path>,
) -> ! {
    let golden = [default_golden_dir()];
    match whole_suite_at(implementation, expectations, &golden, write_to, report_to) {
        Ok(code) => std::process::exit(code.into()),
        Err(e) => {
            eprintln!("nllspec: {e}");
            std::process::exit(2)
        }
    }
}

/// Runs every case under `golden` once, judged with `write_to` when it exists (else
/// `expectations`, else none); writes `write_to`'s expectations and `report_to`'s report v1
/// where given. The exit status: the report's, or 0 when only expectations are written. An
/// expectations file that cannot be read, a suite that cannot be loaded and a file that cannot
/// be written are the error.
fn whole_suite_at(
    implementation: impl Implementation + 'static,
    expectations: Option<&Path>,
    golden: &[PathBuf],
    write_to: Option<&Path>,
    report_to: Option<&Path>,
) -> Result<u8, String> {
    use crate::judge::audit::{Judged, audit};
    use crate::judge::writer::{Ran, write};
    use crate::report::{Report, ResultRow};
    let judged_with = write_to.filter(|f| f.exists()).or(expectations);
    let base = match judged_with {
        Some(p) => Expectations::load(p).map_err(|e| e.to_string())?,
        None => Expectations::none(implementation.name()),
    };
    let cases = load_all(golden).map_err(|e| e.to_string())?;
    let target = Target::new(implementation, base.clone());
    let name = target.implementation.name().to_string();
    let started = std::time::Instant::now();
    let rows: Vec<ResultRow> = cases
        .iter()
        .map(|c| ResultRow::new(c, &name, run_case(&target, c)))
        .collect();
    let ids: Vec<&str> = cases.iter().map(|c| c.case.id.as_str()).collect();
    if let Some(file) = write_to {
        let ran: Vec<Ran> = rows.iter().map(ResultRow::ran).collect();
        let written = write(&base, &name, &ids, &ran);
        std::fs::write(file, written.expectations.to_json())
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        eprint!("{}", written.summary(&file.display().to_string()));
    }
    let Some(file) = report_to else {
        return Ok(0);
    };
    let judged: Vec<Judged> = rows.iter().map(ResultRow::judged).collect();
    let mut report = Report {
        implementations: vec![name.clone()],
        audit: audit(&name, &base, &ids, &judged, true),
        ..Report::default()
    };
    report.results = rows;
    report.elapsed = started.elapsed();
    std::fs::write(file, report.json())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    eprintln!("{}", report.summary_line());
    Ok(report.exit().code())
}

/// [`main`] for several implementations at once (each a [`Target`] with its expectations):
/// the trials of all of them over the shipped suite, as `cargo test`'s conformance matrix runs.
pub fn main_targets(targets: Vec<Target>) -> ! {
    let args = Arguments::from_args();
    let trials = match load_or_fail(&golden_paths_for(&args, &default_golden_dir())) {
        Ok(cases) => trials(&targets, cases),
        Err(trial) => vec![trial],
    };
    libtest_mimic::run(&args, trials).exit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::load::load_all;

    /// The golden file and a scratch directory for [`whole_suite_at`]'s tests.
    fn seed_and_scratch(name: &str) -> (Vec<PathBuf>, PathBuf) {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/log_softmax/seed.json");
        let dir =
            std::env::temp_dir().join(format!("nllspec-harness-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        (vec![golden], dir)
    }

    #[test]
    fn the_whole_suite_mode_rewrites_a_stale_expectations_file_and_reports() {
        let (golden, dir) = seed_and_scratch("write");
        let exp = dir.join("native.json");
        // native passes every case: an entry for one of them is stale (an xpass) and goes
        std::fs::write(
            &exp,
            r#"{"implementation": "native", "expected_failures": [
                {"match": "log_softmax/seed/unbatched_5_dim0@*", "reason": "stale"}]}"#,
        )
        .unwrap();
        let report = dir.join("report.json");
        let code = whole_suite_at(
            crate::impls::native::Native,
            None,
            &golden,
            Some(&exp),
            Some(&report),
        )
        .unwrap();
        // the report is of the run the file was written from: judged with the stale entry
        assert_eq!(code, 1, "an expected failure that passes fails the run");
        let written = std::fs::read_to_string(&exp).unwrap();
        assert!(!written.contains("stale"), "{written}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let cases = load_all(&golden).unwrap().len();
        assert_eq!(json["summary"]["total"], cases);
        assert_eq!(
            json["summary"]["xpassed"].as_u64().unwrap()
                + json["summary"]["passed"].as_u64().unwrap(),
            cases as u64
        );
        assert!(json["summary"]["xpassed"].as_u64().unwrap() >= 1);
        // the rewritten file judges the next run green
        let again = whole_suite_at(
            crate::impls::native::Native,
            Some(&exp),
            &golden,
            None,
            Some(&report),
        )
        .unwrap();
        assert_eq!(again, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_whole_suite_mode_names_an_unreadable_expectations_file() {
        let (golden, dir) = seed_and_scratch("bad");
        let exp = dir.join("broken.json");
        std::fs::write(&exp, "{not json").unwrap();
        let e = whole_suite_at(
            crate::impls::native::Native,
            Some(&exp),
            &golden,
            None,
            None,
        )
        .unwrap_err();
        assert!(e.contains("broken.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(feature = "candle")]
    #[test]
    fn a_failure_says_where_a_known_divergence_is_recorded() {
        let golden =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/nll_loss/seed.json");
        let loaded = load_all(&[golden]).unwrap().remove(0);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("spec/expectations/candle-nn.json");
        let t = Target::new(
            crate::impls::candle_nn::CandleNn,
            Expectations::load(&path).unwrap(),
        );
        let m = failure_message(&t, &loaded, "output: values differ");
        let hint = format!(
            "add {{\"match\": \"{}\", \"reason\": \"<the behaviour>\"}} to {}",
            loaded.case.id,
            path.display()
        );
        assert!(
            m.contains(&hint) && m.contains("known divergence of candle-nn"),
            "{m}"
        );
    }
}
