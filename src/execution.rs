//! One case under one implementation, judged: the one execution path under both drivers, the
//! command line's run ([`crate::runner`]) and `cargo test`'s libtest-mimic matrix
//! ([`crate::harness`]). An implementation runs guarded (a panic is a broken answer, never a
//! crash), its outcome is judged against the golden case, a tolerance entry may loosen the
//! comparison, and the expectations turn the verdict into the case's status.

use crate::golden::load::LoadedCase;
use crate::impls::{BUILTIN, Implementation, Outcome, Request};
pub use crate::judge::Messages;
use crate::judge::expectations::{Expectations, ExpectationsError, Status};
use crate::judge::{Verdict, judge, judge_with};
use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Once};

/// An implementation, the divergences it is known to have, and how its errors are judged.
#[derive(Clone)]
pub struct Target {
    /// What answers the requests.
    pub implementation: Arc<dyn Implementation>,
    /// Its known divergences and tolerance entries.
    pub expectations: Arc<Expectations>,
    /// How its error answers are judged.
    pub messages: Messages,
}

impl Target {
    /// An implementation judged as the contract says: errors by kind.
    pub fn new(
        implementation: impl Implementation + 'static,
        expectations: Expectations,
    ) -> Target {
        Target {
            implementation: Arc::new(implementation),
            expectations: Arc::new(expectations),
            messages: Messages::Kind,
        }
    }

    /// A built-in implementation with the expectations file shipped for it (none if there is
    /// none), as `cargo test` and `nllspec run` judge it.
    pub fn shipped(
        implementation: impl Implementation + 'static,
    ) -> Result<Target, ExpectationsError> {
        let name = implementation.name().to_string();
        let expectations = shipped_expectations(&name)?;
        Ok(Target {
            messages: Messages::for_builtin(&name),
            ..Target::new(implementation, expectations)
        })
    }
}

/// The expectations files shipped for built-in implementations, compiled in: an installed
/// binary judges them as a checkout does, whatever is (or is not) beside it at run time.
const SHIPPED: [(&str, &str); 1] = [(
    "candle-nn",
    include_str!("../spec/expectations/candle-nn.json"),
)];

/// The expectations an implementation called `name` is judged with when it is given none: the
/// file shipped for a built-in one (compiled in), else none.
pub fn shipped_expectations(name: &str) -> Result<Expectations, ExpectationsError> {
    match SHIPPED
        .iter()
        .find(|(n, _)| *n == name && BUILTIN.contains(n))
    {
        Some((n, text)) => {
            Expectations::parse(text, Path::new(&format!("spec/expectations/{n}.json")))
        }
        None => Ok(Expectations::none(name)),
    }
}

thread_local! {
    static IN_IMPLEMENTATION: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that keeps panics raised inside an implementation quiet:
/// their message becomes the case's failure detail instead of a backtrace on stderr.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_IMPLEMENTATION.with(Cell::get) {
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string panic payload)".into());
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs an implementation on a request; a panic becomes [`Outcome::Broken`], never a crash.
pub fn run_guarded(imp: &dyn Implementation, req: &Request<'_>) -> Outcome {
    run_guarded_logged(imp, req).0
}

/// [`run_guarded`], with what the implementation logged while it ran.
pub fn run_guarded_logged(
    imp: &dyn Implementation,
    req: &Request<'_>,
) -> (Outcome, Option<String>) {
    install_quiet_hook();
    IN_IMPLEMENTATION.with(|f| f.set(true));
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| imp.run_logged(req)));
    IN_IMPLEMENTATION.with(|f| f.set(false));
    r.unwrap_or_else(|_| {
        let msg = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_default();
        (
            Outcome::Broken(format!("the implementation panicked: {msg}")),
            None,
        )
    })
}

/// One case's end for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The case's status in reports.
    pub status: Status,
    /// Why (empty for a plain pass).
    pub detail: String,
    /// For a failure: what it has in common with others that failed alike (reports group by it).
    pub cause: Option<String>,
    /// The tolerance entries (`pattern (field)`) without which the case would have failed.
    pub loosened_by: Vec<String>,
}

/// Runs one case through one target and judges it.
pub fn run_case(target: &Target, loaded: &LoadedCase) -> CaseResult {
    let imp = &target.implementation;
    let id = loaded.case.id.as_str();
    let (outcome, log) = run_guarded_logged(imp.as_ref(), &Request::of(&loaded.case));
    let mut verdict = judge(&loaded.case, &outcome, target.messages);
    let mut loosened_by = Vec::new();
    if let (Verdict::Fail(_), Some((loosen, entries))) = (&verdict, target.expectations.loosen(id))
    {
        let again = judge_with(&loaded.case, &outcome, target.messages, &loosen);
        if matches!(again, Verdict::Pass | Verdict::ForwardOnly(_)) {
            verdict = again;
            loosened_by = entries.iter().map(|e| e.label()).collect();
        }
    }
    let (status, mut detail) = target.expectations.apply(id, &verdict);
    // An expected (or flaky) failure keeps its cause too: the expectations writer and the
    // reports' behaviour groups read it.
    let cause = match (&verdict, status) {
        (_, Status::Xpass) => Some("passed, but an expected failure".to_string()),
        (Verdict::Fail(f), _) => Some(f.cause()),
        _ => None,
    };
    if !loosened_by.is_empty() && status.ok() {
        let within = format!(
            "passed only within the tolerance entry {}",
            loosened_by.join(", ")
        );
        detail = if detail.is_empty() {
            within
        } else {
            format!("{detail}; {within}")
        };
    }
    if let (false, Some(note)) = (status.ok(), &loaded.case.note) {
        detail.push_str(&format!("\nnote (why this case exists): {note}"));
    }
    if let (false, Some(log)) = (status.ok(), log) {
        detail.push_str(&format!(
            "\n--- stderr while this request was pending (last {} bytes at most) ---\n{log}",
            crate::impls::external::STDERR_TAIL
        ));
    }
    CaseResult {
        status,
        detail,
        cause,
        loosened_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::load::load_all;

    /// Answers every case with PyTorch's error kind and a message of its own.
    struct OwnWords;
    impl Implementation for OwnWords {
        fn name(&self) -> &str {
            "own-words"
        }
        fn run(&self, req: &Request<'_>) -> Outcome {
            match req.call.run(req.grad_output) {
                Err(e) => Outcome::Error {
                    kind: Some(e.kind),
                    py_type: Some(e.py_type),
                    message: "said differently".into(),
                },
                Ok(o) => Outcome::Values {
                    output: o.output,
                    grad_input: o.grad_input,
                },
            }
        }
    }

    #[test]
    fn every_shipped_expectations_file_is_compiled_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/expectations");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            let shipped = SHIPPED
                .iter()
                .find(|(n, _)| *n == stem)
                .unwrap_or_else(|| panic!("{} is not in SHIPPED", path.display()));
            assert_eq!(shipped.1, std::fs::read_to_string(&path).unwrap());
            assert!(shipped_expectations(&stem).unwrap().expected_failures.len() > 10);
            files += 1;
        }
        assert_eq!(files, SHIPPED.len());
    }

    #[test]
    fn messages_are_judged_by_the_targets_policy() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/nll_loss/seed.json");
        let cases = load_all(&[golden]).unwrap();
        let loaded = cases
            .iter()
            .find(|c| matches!(c.case.expected, crate::golden::format::Expected::Error(_)))
            .unwrap();
        let kind = Target::new(OwnWords, Expectations::none("own-words"));
        assert_eq!(
            run_case(&kind, loaded).status,
            Status::Pass,
            "{}",
            loaded.case.id
        );
        let verbatim = Target {
            messages: Messages::Verbatim,
            ..kind
        };
        let r = run_case(&verbatim, loaded);
        assert_eq!(r.status, Status::Fail);
        assert!(r.detail.contains("message differs"), "{}", r.detail);
        assert_eq!(Messages::for_builtin("native"), Messages::Verbatim);
        assert_eq!(Messages::for_builtin("candle"), Messages::Kind);
    }
}
