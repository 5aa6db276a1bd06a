//! `exec:COMMAND`: an implementation in any language, speaking protocol 1 (spec/PROTOCOL.md).
//!
//! COMMAND runs through `sh -c`, in a process group of its own, and answers one JSON line on
//! stdout for each request line on stdin, in order. What can go wrong, and whom it is charged
//! to:
//!
//! - The process exited between requests (a CUDA adapter answers and exits after a device-side
//!   assert, so that it is restarted clean). That is noticed before the next request is sent
//!   (the exit is visible), or after it (the write fails, or stdout closes while the request
//!   still lies unread in the pipe): the request goes to a fresh process and nothing is
//!   charged. Only a process that read its request and then died without answering fails it.
//! - A late answer (past `--timeout`; a fresh process's first answer also gets a start-up
//!   allowance: `--startup-timeout` until a process of this implementation has answered, then
//!   one learned from the start-ups seen, so that a run of hangs does not cost the whole
//!   allowance each), a malformed one, or one for another id fails the case; the process
//!   group is killed and the next case gets a fresh process.
//! - A process whose stdout ends (mid-line or not) and which then exits has crashed: one
//!   cause, naming its exit status or signal.
//! - A fresh process that never reads or answers its first request, three times in a row, is an
//!   adapter that cannot start (an import error, a missing interpreter): the implementation
//!   turns [`Implementation::fatal`], and the run stops with that one message instead of
//!   failing every case alike.
//!
//! The stderr shown with a case is what the process wrote while that request was pending (for
//! a process's first request, since it read it): never an earlier request's or process's.
//! What a process wrote before it read its first request is its start-up output, kept once
//! ([`Implementation::startup_log`]).

use super::protocol::{Malformed, not_json, parse_response, preview, request_line};
use super::{Implementation, Outcome, Request};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much of a process's stderr is kept (and shown at most) for one case.
pub const STDERR_TAIL: usize = 4096;
/// The longest response line read (a 2^28-element tensor needs far less than this per
/// element on average; a runaway process must not exhaust memory).
const MAX_LINE: usize = 1 << 30;
/// Fresh processes in a row that never answer before the implementation is declared unusable.
pub const FAILED_STARTS: u32 = 3;

/// How long an external implementation may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Per answer.
    pub timeout: Duration,
    /// Added to the timeout for a fresh process's first answer (interpreter start-up, imports,
    /// a device's initialisation).
    pub startup: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(30),
            startup: Duration::from_secs(120),
        }
    }
}

/// An `exec:COMMAND` implementation: a process speaking protocol 1.
pub struct External {
    command: String,
    name: String,
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    process: Option<Process>,
    /// Fresh processes in a row that ended without answering their first request.
    failed_starts: u32,
    fatal: Option<String>,
    /// How long each fresh process took to give its first answer.
    startups: Vec<Duration>,
    /// The first process's start-up output (stderr before it read a request).
    startup_log: Option<String>,
}

/// The start-up allowance a fresh process's first answer gets beyond `--timeout`, and why.
fn startup_allowance(limits: Limits, seen: &[Duration]) -> (Duration, String) {
    match seen.iter().max() {
        None => (
            limits.startup,
            "--startup-timeout: no process of this implementation has answered yet".into(),
        ),
        Some(slowest) => {
            let learned = (*slowest * 2 + Duration::from_secs(1)).min(limits.startup);
            let why = format!(
                "learned: twice the slowest of the {} start-ups seen ({slowest:.1?}) plus 1s, at most --startup-timeout",
                seen.len()
            );
            (learned, why)
        }
    }
}

/// What the stdout reader hands over.
enum Received {
    Line(String),
    /// Stdout ended in the middle of a line: these bytes, without a newline.
    Cut(Vec<u8>),
    Error(std::io::Error),
}

/// stderr's tail and how many bytes were ever written, so that a request can ask for what was
/// written since it was sent.
#[derive(Default)]
struct StderrLog {
    tail: Vec<u8>,
    total: u64,
}

struct Process {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Received>,
    started: Instant,
    /// Where the process's request output begins on stderr: what came before is its start-up
    /// output (set once it is seen reading its first request).
    read_mark: Option<u64>,
    /// That start-up output (its last [`STDERR_TAIL`] bytes), when there was some.
    startup_text: Option<String>,
    /// How much stderr there was when the first request was last seen unread.
    unread_total: u64,
    stderr: Arc<Mutex<StderrLog>>,
    /// The read end of stderr, shared with its reader thread (kept open while the process is).
    stderr_pipe: Arc<File>,
    /// Set by the reader while it holds no bytes it has read but not yet logged.
    stderr_idle: Arc<AtomicBool>,
    /// Receives once the stderr reader has seen end of file.
    stderr_done: Receiver<()>,
    answered: u64,
}

/// Why an exchange produced no answer.
enum NoAnswer {
    /// The process exited without reading the request: not the request's fault.
    NeverRead,
    /// The process ended (or closed stdout) after reading it; with what it had begun to write.
    Exited(Option<ExitStatus>, Option<Vec<u8>>),
    /// No answer within this limit (and why the limit is what it is).
    Timeout(Duration, String),
    /// The run is being interrupted.
    Interrupted,
    /// The request could not be sent.
    Send(std::io::Error),
    /// The answer could not be read (not UTF-8, too long).
    Unreadable(std::io::Error),
    /// An answer that breaks the protocol.
    Malformed(Malformed),
    /// An answer for another request.
    WrongId { got: String, expected: String },
    /// An answer without a string id.
    NoId(String),
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::NeverRead => f.write_str("the process exited without reading the request"),
            NoAnswer::Exited(status, cut) => {
                match status {
                    Some(s) if s.code().is_none() => {
                        write!(f, "the process crashed ({s}) without answering")?
                    }
                    Some(s) => write!(f, "the process exited ({s}) without answering")?,
                    None => f.write_str("the process closed its stdout without answering")?,
                }
                match cut {
                    Some(cut) => write!(
                        f,
                        "\nits stdout ended in the middle of a line, {} bytes: {}",
                        cut.len(),
                        preview(&String::from_utf8_lossy(cut))
                    ),
                    None => Ok(()),
                }
            }
            NoAnswer::Timeout(limit, why) => write!(f, "no response within {limit:.1?}: {why}"),
            NoAnswer::Interrupted => f.write_str("the run was interrupted"),
            NoAnswer::Send(e) => write!(f, "cannot send the request: {e}"),
            NoAnswer::Unreadable(e) => write!(f, "unreadable response: {e}"),
            NoAnswer::Malformed(m) => m.fmt(f),
            NoAnswer::WrongId { got, expected } => {
                write!(f, "response for id \"{got}\", expected \"{expected}\"")
            }
            NoAnswer::NoId(line) => write!(f, "response without a string \"id\": {line}"),
        }
    }
}

/// Why a process could not be started.
#[derive(Debug)]
pub enum StartError {
    /// `sh -c COMMAND` could not be spawned.
    Spawn {
        /// The command.
        command: String,
        /// Why.
        error: std::io::Error,
    },
    /// The child's stdin, stdout or stderr pipe was not there.
    NoPipes,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Spawn { command, error } => {
                write!(f, "cannot start `sh -c {command}`: {error}")
            }
            StartError::NoPipes => f.write_str("the process's pipes were not created"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Spawn { error, .. } => Some(error),
            StartError::NoPipes => None,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
        if let Ok(pid) = i32::try_from(self.child.id()) {
            crate::interrupt::unregister(pid);
        }
    }
}

impl Process {
    /// Kills the whole process group: a `sh -c` wrapper's children (the interpreter, its
    /// workers) must not outlive it holding the pipes open.
    fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: kill(2) takes plain integers and touches no memory of ours; the group
                // id is our child's pid (spawned with process_group(0)) and has not been reaped
                // (try_wait above saw it running), so it cannot name another process group.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = self.child.kill();
        }
    }

    /// How many bytes of stderr were written so far. What the process wrote before its last
    /// answer may still be in the pipe, or in the reader's hands, when the answer arrives: this
    /// waits (bounded) until the pipe is empty and the reader idle, so that none of it is taken
    /// for the next request's.
    fn stderr_mark(&self) -> u64 {
        for _ in 0..200 {
            if unread(self.stderr_pipe.as_raw_fd()) == Some(0)
                && self.stderr_idle.load(Ordering::SeqCst)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// What was written to stderr since `mark` (its last [`STDERR_TAIL`] bytes), or `None`.
    fn stderr_since(&self, mark: u64) -> Option<String> {
        let log = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let new = usize::try_from(log.total - mark.min(log.total)).unwrap_or(usize::MAX);
        let kept = new.min(log.tail.len());
        let text = String::from_utf8_lossy(&log.tail[log.tail.len() - kept..])
            .trim_end()
            .to_string();
        match (text.is_empty(), kept < new) {
            (true, _) => None,
            (false, true) => Some(format!("...{text}")),
            (false, false) => Some(text),
        }
    }

    /// Ends the process and waits (bounded) until its stderr is read to the end, so that its
    /// last words are in the log.
    fn finish(&mut self) {
        self.kill();
        let _ = self.child.wait();
        let _ = self.stderr_done.recv_timeout(Duration::from_millis(500));
    }

    /// Bytes written to the process's stdin that it has not read.
    fn unread_input(&self) -> Option<usize> {
        unread(self.stdin.as_raw_fd())
    }

    /// For a fresh process that has not yet been seen reading its first request (of `len`
    /// bytes): whether it has now, marking there the end of its start-up output. Returns
    /// whether it is still being watched.
    fn watch_read(&mut self, len: usize) -> bool {
        if self.answered > 0 || self.read_mark.is_some() {
            return false;
        }
        if self.unread_input().is_some_and(|n| n < len) {
            // What was on stderr when the request was last seen unread came before the read.
            let mark = self.unread_total;
            self.read_mark = Some(mark);
            self.startup_text = self.stderr_before(mark);
            return false;
        }
        self.unread_total = self.stderr.lock().unwrap_or_else(|p| p.into_inner()).total;
        true
    }

    /// What was written to stderr before byte `mark` (the last [`STDERR_TAIL`] bytes kept).
    fn stderr_before(&self, mark: u64) -> Option<String> {
        let log = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let after = usize::try_from(log.total - mark.min(log.total)).unwrap_or(usize::MAX);
        let kept = log.tail.len().checked_sub(after)?;
        let text = String::from_utf8_lossy(&log.tail[..kept])
            .trim_end()
            .to_string();
        (!text.is_empty()).then_some(text)
    }

    /// The exit status, waiting a moment for it: stdout closes just before the exit is visible
    /// (an abort that dumps core takes longer).
    fn exit_status(&mut self) -> Option<ExitStatus> {
        for _ in 0..400 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

/// Bytes in a pipe not yet read, through either end's descriptor, which must be open.
fn unread(fd: RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at `n`, alive and
    // aligned for the call's duration; the callers pass a descriptor they own and keep open.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut libc::c_int) };
    (r == 0).then(|| usize::try_from(n).unwrap_or(0))
}

impl External {
    /// An implementation called `name`, run as `sh -c command`, within `limits`.
    pub fn new(name: &str, command: &str, limits: Limits) -> External {
        External {
            command: command.to_string(),
            name: name.to_string(),
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn start(&self) -> Result<Process, StartError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|error| StartError::Spawn {
                command: self.command.clone(),
                error,
            })?;
        let (Some(stdin), Some(stdout), Some(stderr_end)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(StartError::NoPipes);
        };
        let stderr_pipe = Arc::new(File::from(OwnedFd::from(stderr_end)));
        let stderr_idle = Arc::new(AtomicBool::new(true));
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                let r = (&mut reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf);
                let msg = match r {
                    Ok(0) => break,
                    Ok(_) if !buf.ends_with(b"\n") && buf.len() >= MAX_LINE => {
                        Received::Error(std::io::Error::other("response line longer than 1 GiB"))
                    }
                    // end of file in the middle of a line: the writer died mid-answer
                    Ok(_) if !buf.ends_with(b"\n") => Received::Cut(buf),
                    Ok(_) => match String::from_utf8(buf) {
                        Ok(line) => Received::Line(line),
                        Err(_) => Received::Error(std::io::Error::other("response is not UTF-8")),
                    },
                    Err(e) => Received::Error(e),
                };
                let stop = !matches!(msg, Received::Line(_));
                if tx.send(msg).is_err() || stop {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(StderrLog::default()));
        let sink = Arc::clone(&stderr);
        let (done_tx, stderr_done) = channel();
        let (pipe, idle) = (Arc::clone(&stderr_pipe), Arc::clone(&stderr_idle));
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                // Wait for bytes without taking them, and only then leave idle: so bytes are
                // never out of the pipe while the reader still counts as idle.
                let mut fds = libc::pollfd {
                    fd: pipe.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: poll reads and writes the one pollfd the pointer points at, alive and
                // aligned for the call; the descriptor is the pipe this thread holds open.
                let ready = unsafe { libc::poll(&mut fds, 1, -1) };
                if ready < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                idle.store(false, Ordering::SeqCst);
                let r = (&*pipe).read(&mut chunk);
                let n = match r {
                    Ok(n) if n > 0 => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                    _ => break,
                };
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.tail.extend_from_slice(&chunk[..n]);
                s.total += n as u64;
                let excess = s.tail.len().saturating_sub(STDERR_TAIL);
                s.tail.drain(..excess);
                drop(s);
                idle.store(true, Ordering::SeqCst);
            }
            idle.store(true, Ordering::SeqCst);
            let _ = done_tx.send(());
        });
        if let Ok(pid) = i32::try_from(child.id()) {
            crate::interrupt::register(pid);
        }
        let started = Instant::now();
        Ok(Process {
            child,
            stdin,
            lines,
            started,
            read_mark: None,
            startup_text: None,
            unread_total: 0,
            stderr,
            stderr_pipe,
            stderr_idle,
            stderr_done,
            answered: 0,
        })
    }

    /// Sends one request line and waits for its answer line, for at most `limit`.
    fn exchange(
        &self,
        process: &mut Process,
        line: &[u8],
        id: &str,
        limit: (Duration, String),
    ) -> Result<Value, NoAnswer> {
        let mut sent = 0;
        while sent < line.len() {
            match process.stdin.write(&line[sent..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && sent == 0 => {
                    return Err(NoAnswer::NeverRead);
                }
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Err(NoAnswer::Exited(process.exit_status(), None));
                }
                Err(e) => return Err(NoAnswer::Send(e)),
            }
        }
        let _ = process.stdin.flush();
        let deadline = Instant::now() + limit.0;
        let answer = loop {
            if crate::interrupt::requested().is_some() {
                return Err(NoAnswer::Interrupted);
            }
            let watching = process.watch_read(line.len());
            let now = Instant::now();
            if now >= deadline {
                return Err(NoAnswer::Timeout(limit.0, limit.1));
            }
            let slice = Duration::from_millis(if watching { 2 } else { 50 });
            let received = process.lines.recv_timeout(slice.min(deadline - now));
            if !matches!(received, Err(RecvTimeoutError::Timeout)) {
                process.watch_read(line.len());
            }
            match received {
                Ok(Received::Line(line)) => break line,
                Ok(Received::Cut(bytes)) => {
                    return Err(NoAnswer::Exited(process.exit_status(), Some(bytes)));
                }
                Ok(Received::Error(e)) => {
                    return Err(NoAnswer::Unreadable(e));
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    // All of the request still in the pipe: the process ended without reading it.
                    if process.unread_input() == Some(line.len()) {
                        return Err(NoAnswer::NeverRead);
                    }
                    return Err(NoAnswer::Exited(process.exit_status(), None));
                }
            }
        };
        let v: Value = serde_json::from_str(answer.trim_end())
            .map_err(|e| NoAnswer::Malformed(not_json(&answer, e)))?;
        match v.get("id").and_then(Value::as_str) {
            Some(got) if got == id => Ok(v),
            Some(other) => Err(NoAnswer::WrongId {
                got: other.to_string(),
                expected: id.to_string(),
            }),
            None => Err(NoAnswer::NoId(preview(&answer))),
        }
    }

    fn unusable(&self, status: &str, stderr: Option<&str>) -> String {
        let mut m = format!(
            "implementation {} (`sh -c {}`) cannot start: {FAILED_STARTS} fresh processes in a row ended without answering \
             their first request (last: {status})",
            self.name, self.command
        );
        match stderr {
            Some(s) => m.push_str(&format!("; its stderr:\n{s}")),
            None => m.push_str("; it wrote nothing to stderr"),
        }
        m
    }
}

impl Implementation for External {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self, req: &Request<'_>) -> Outcome {
        self.run_logged(req).0
    }

    fn fatal(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fatal
            .clone()
    }

    fn startup_log(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .startup_log
            .clone()
    }

    fn run_logged(&self, req: &Request<'_>) -> (Outcome, Option<String>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = &state.fatal {
            return (Outcome::Broken(f.clone()), None);
        }
        let line = request_line(req);
        loop {
            // A process that exited after its last answer is replaced before it is sent anything.
            if state
                .process
                .as_mut()
                .is_some_and(|p| p.child.try_wait().ok().flatten().is_some())
            {
                state.process = None;
            }
            if state.process.is_none() {
                match self.start() {
                    Ok(p) => state.process = Some(p),
                    Err(e) => return (Outcome::Broken(e.to_string()), None),
                }
            }
            let allowance = startup_allowance(self.limits, &state.startups);
            let (result, fresh, mark, startup_text, took, read) = {
                let Some(process) = state.process.as_mut() else {
                    continue;
                };
                let fresh = process.answered == 0;
                let limit = if fresh {
                    let (extra, why) = allowance;
                    let t = self.limits.timeout;
                    (
                        t + extra,
                        format!(
                            "--timeout {t:.1?} plus a start-up allowance of {extra:.1?} ({why})"
                        ),
                    )
                } else {
                    (
                        self.limits.timeout,
                        format!("--timeout {:.1?}", self.limits.timeout),
                    )
                };
                let mark = if fresh { 0 } else { process.stderr_mark() };
                let result = self.exchange(process, line.as_bytes(), req.id, limit);
                // a fresh process's own output begins where it read the request
                let mark = if fresh {
                    process.read_mark.unwrap_or(0)
                } else {
                    mark
                };
                let read = process.read_mark.is_some();
                (
                    result,
                    fresh,
                    mark,
                    process.startup_text.take(),
                    process.started.elapsed(),
                    read,
                )
            };
            if state.startup_log.is_none() {
                state.startup_log = startup_text;
            }
            let no_answer = match result {
                Ok(v) => {
                    if fresh {
                        state.startups.push(took);
                    }
                    state.failed_starts = 0;
                    let log = state.process.as_mut().and_then(|p| {
                        p.answered += 1;
                        p.stderr_since(mark)
                    });
                    return match parse_response(&v) {
                        Ok(outcome) => (outcome, log),
                        Err(malformed) => {
                            let detail = malformed.to_string();
                            state.process = None; // it may be out of step: the next case gets a fresh one
                            (Outcome::Broken(detail), log)
                        }
                    };
                }
                // Died after its last answer, before reading this request: ask a fresh process.
                Err(NoAnswer::NeverRead) if !fresh => {
                    state.process = None;
                    continue;
                }
                Err(e) => e,
            };
            let Some(mut process) = state.process.take() else {
                continue;
            };
            process.finish();
            let log = process.stderr_since(mark);
            let status = process.child.try_wait().ok().flatten();
            drop(process);
            if matches!(no_answer, NoAnswer::Interrupted) {
                return (Outcome::Broken("the run was interrupted".into()), log);
            }
            // A garbled answer is still an answer: only silence counts against starting up.
            let silent = matches!(
                no_answer,
                NoAnswer::NeverRead | NoAnswer::Exited(..) | NoAnswer::Timeout(..)
            );
            let timed_out = matches!(no_answer, NoAnswer::Timeout(..));
            // the exit status may only be visible now that the process was finished
            let no_answer = match no_answer {
                NoAnswer::Exited(None, cut) => NoAnswer::Exited(status, cut),
                other => other,
            };
            let detail = no_answer.to_string();
            // A process that read its request started: the case, not the start-up, choked it.
            if fresh && silent && !read {
                state.failed_starts += 1;
                if state.failed_starts >= FAILED_STARTS {
                    let last = match status {
                        Some(s) if !timed_out => s.to_string(),
                        _ => detail.clone(),
                    };
                    // a process that never read a request: all it wrote is the story
                    state.fatal = Some(self.unusable(&last, log.as_deref()));
                }
            } else {
                state.failed_starts = 0;
            }
            return (Outcome::Broken(detail), log);
        }
    }
}
