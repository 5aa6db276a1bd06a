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
//! - A late answer (past `--timeout`; a fresh process's first answer also gets
//!   `--startup-timeout`), a malformed one, or one for another id fails the case; the process
//!   group is killed and the next case gets a fresh process.
//! - A fresh process that never answers its first request, three times in a row, is an
//!   adapter that cannot start (an import error, a missing interpreter): the implementation
//!   turns [`Implementation::fatal`], and the run stops with that one message instead of
//!   failing every case alike.
//!
//! The stderr shown with a case is what the process wrote while that request was pending (for
//! a process's first request, since it started): never an earlier request's or process's.

use super::protocol::{not_json, parse_response, preview, request_line};
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
use std::time::Duration;

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
    lines: Receiver<std::io::Result<String>>,
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
    /// The process ended (or closed stdout) after reading it.
    Exited(Option<ExitStatus>),
    Timeout(Duration),
    /// Anything else, with its detail.
    Other(String),
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
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

    /// The exit status, waiting a moment for it: stdout closes just before the exit is visible.
    fn exit_status(&mut self) -> Option<ExitStatus> {
        for _ in 0..100 {
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
    pub fn new(name: &str, command: &str, limits: Limits) -> External {
        External {
            command: command.to_string(),
            name: name.to_string(),
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn start(&self) -> Result<Process, String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start `sh -c {}`: {e}", self.command))?;
        let (Some(stdin), Some(stdout), Some(stderr_end)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("the process's pipes were not created".into());
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
                        Err(std::io::Error::other("response line longer than 1 GiB"))
                    }
                    Ok(_) => String::from_utf8(buf)
                        .map_err(|_| std::io::Error::other("response is not UTF-8")),
                    Err(e) => Err(e),
                };
                let stop = msg.is_err();
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
        Ok(Process {
            child,
            stdin,
            lines,
            stderr,
            stderr_pipe,
            stderr_idle,
            stderr_done,
            answered: 0,
        })
    }

    /// Sends one request line and waits for its answer line.
    fn exchange(&self, process: &mut Process, line: &[u8], id: &str) -> Result<Value, NoAnswer> {
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
                    return Err(NoAnswer::Exited(process.exit_status()));
                }
                Err(e) => return Err(NoAnswer::Other(format!("cannot send the request: {e}"))),
            }
        }
        let _ = process.stdin.flush();
        let limit = if process.answered == 0 {
            self.limits.timeout + self.limits.startup
        } else {
            self.limits.timeout
        };
        let answer = match process.lines.recv_timeout(limit) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(NoAnswer::Other(format!("unreadable response: {e}"))),
            Err(RecvTimeoutError::Timeout) => return Err(NoAnswer::Timeout(limit)),
            Err(RecvTimeoutError::Disconnected) => {
                // All of the request still in the pipe: the process ended without reading it.
                if process.unread_input() == Some(line.len()) {
                    return Err(NoAnswer::NeverRead);
                }
                return Err(NoAnswer::Exited(process.exit_status()));
            }
        };
        let v: Value = serde_json::from_str(answer.trim_end())
            .map_err(|e| NoAnswer::Other(not_json(&answer, &e)))?;
        match v.get("id").and_then(Value::as_str) {
            Some(got) if got == id => Ok(v),
            Some(other) => Err(NoAnswer::Other(format!(
                "response for id \"{other}\", expected \"{id}\""
            ))),
            None => Err(NoAnswer::Other(format!(
                "response without a string \"id\": {}",
                preview(&answer)
            ))),
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
                    Err(e) => return (Outcome::Broken(e), None),
                }
            }
            let Some(process) = state.process.as_mut() else {
                continue;
            };
            let fresh = process.answered == 0;
            let mark = if fresh { 0 } else { process.stderr_mark() };
            let no_answer = match self.exchange(process, line.as_bytes(), req.id) {
                Ok(v) => {
                    process.answered += 1;
                    let log = process.stderr_since(mark);
                    state.failed_starts = 0;
                    return match parse_response(&v) {
                        Ok(outcome) => (outcome, log),
                        Err(detail) => {
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
            process.finish();
            let log = process.stderr_since(mark);
            let status = process.child.try_wait().ok().flatten();
            state.process = None;
            // A garbled answer is still an answer: only silence counts against starting up.
            let silent = !matches!(no_answer, NoAnswer::Other(_));
            let timed_out = matches!(no_answer, NoAnswer::Timeout(_));
            let detail = match no_answer {
                NoAnswer::NeverRead => "the process exited without reading the request".to_string(),
                NoAnswer::Exited(Some(s)) => format!("the process exited ({s}) without answering"),
                NoAnswer::Exited(None) => {
                    "the process closed its stdout without answering".to_string()
                }
                NoAnswer::Timeout(limit) if fresh => format!(
                    "no response within {limit:?} (a fresh process's first answer: --timeout plus --startup-timeout)"
                ),
                NoAnswer::Timeout(limit) => format!("no response within {limit:?}"),
                NoAnswer::Other(d) => d,
            };
            if fresh && silent {
                state.failed_starts += 1;
                if state.failed_starts >= FAILED_STARTS {
                    let last = match status {
                        Some(s) if !timed_out => s.to_string(),
                        _ => detail.clone(),
                    };
                    state.fatal = Some(self.unusable(&last, log.as_deref()));
                }
            } else {
                state.failed_starts = 0;
            }
            return (Outcome::Broken(detail), log);
        }
    }
}
