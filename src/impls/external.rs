//! `exec:COMMAND`: an implementation in any language, speaking protocol 1 (spec/PROTOCOL.md).
//!
//! COMMAND runs once, through `sh -c`, and answers one JSON line on stdout for each request
//! line on stdin, in order. A late answer (past the timeout), a malformed one, one for another
//! id, or an exit fails that case with a detail that includes the tail of the process's
//! stderr; the process is then killed and started afresh for the next case, so one bad
//! answer never takes the run down.

use super::{Implementation, Outcome, Request};
use crate::error::ErrorKind;
use crate::golden::format::{attrs_to_json, inputs_to_json, parse_tensor};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How much of a process's stderr is kept for failure details.
const STDERR_TAIL: usize = 4096;
/// The longest response line read (a 2^28-element tensor needs far less than this per
/// element on average; a runaway process must not exhaust memory).
const MAX_LINE: usize = 1 << 30;

pub struct External {
    command: String,
    name: String,
    timeout: Duration,
    process: Mutex<Option<Process>>,
}

struct Process {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl External {
    pub fn new(command: &str, timeout: Duration) -> External {
        External {
            command: command.to_string(),
            name: format!("exec:{command}"),
            timeout,
            process: Mutex::new(None),
        }
    }

    fn start(&self) -> Result<Process, String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `sh -c {}`: {e}", self.command))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr_pipe = child.stderr.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                let r = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut buf);
                let msg = match r {
                    Ok(0) => break,
                    Ok(_) if !buf.ends_with(b"\n") && buf.len() >= MAX_LINE => {
                        Err(std::io::Error::other("response line longer than 1 GiB"))
                    }
                    Ok(_) => String::from_utf8(buf).map_err(|_| std::io::Error::other("response is not UTF-8")),
                    Err(e) => Err(e),
                };
                let stop = msg.is_err();
                if tx.send(msg).is_err() || stop {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.extend_from_slice(&chunk[..n]);
                let excess = s.len().saturating_sub(STDERR_TAIL);
                s.drain(..excess);
            }
        });
        Ok(Process { child, stdin, lines, stderr })
    }

    fn exchange(&self, process: &mut Process, req: &Request<'_>) -> Result<Value, String> {
        // Written by hand so that "id" comes first: adapters can route on it cheaply.
        let line = format!(
            "{{\"id\":{},\"op\":\"{}\",\"inputs\":{},\"attrs\":{}}}",
            Value::from(req.id),
            req.op.name(),
            inputs_to_json(req.inputs),
            attrs_to_json(req.attrs)
        );
        process
            .stdin
            .write_all(line.as_bytes())
            .and_then(|_| process.stdin.write_all(b"\n"))
            .and_then(|_| process.stdin.flush())
            .map_err(|e| format!("cannot send the request: {e} (has the process exited?)"))?;
        let answer = match process.lines.recv_timeout(self.timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("unreadable response: {e}")),
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("no response within {:?}", self.timeout));
            }
            Err(RecvTimeoutError::Disconnected) => {
                // stdout closes a moment before the exit is visible: wait for it (bounded), so
                // the detail says "exited" deterministically.
                let mut status = None;
                for _ in 0..100 {
                    status = process.child.try_wait().ok().flatten();
                    if status.is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Err(match status {
                    Some(s) => format!("the process exited ({s}) without answering"),
                    None => "the process closed its stdout without answering".to_string(),
                });
            }
        };
        let v: Value = serde_json::from_str(answer.trim_end())
            .map_err(|e| format!("malformed response (not JSON: {e}): {}", preview(&answer)))?;
        match v.get("id").and_then(Value::as_str) {
            Some(id) if id == req.id => Ok(v),
            Some(other) => Err(format!("response for id \"{other}\", expected \"{}\"", req.id)),
            None => Err(format!("response without a string \"id\": {}", preview(&answer))),
        }
    }
}

fn preview(s: &str) -> String {
    let t: String = s.trim_end().chars().take(200).collect();
    if t.len() < s.trim_end().len() { format!("{t}...") } else { t }
}

/// Reads a response object (already checked to be for this id).
pub fn parse_response(v: &Value) -> Result<Outcome, String> {
    let Some(m) = v.as_object() else { return Err("response is not an object".into()) };
    for k in m.keys() {
        if !["id", "output", "grad_input", "error", "unsupported"].contains(&k.as_str()) {
            return Err(format!("unknown key \"{k}\" in the response"));
        }
    }
    if let Some(reason) = m.get("unsupported") {
        return Ok(Outcome::Unsupported(reason.as_str().unwrap_or("(no reason given)").to_string()));
    }
    if let Some(e) = m.get("error") {
        let kind_s = e.get("kind").and_then(Value::as_str).ok_or("error without a string \"kind\"")?;
        let message = e.get("message").and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(match ErrorKind::parse(kind_s) {
            Some(k) => Outcome::Error { kind: Some(k), message },
            None => Outcome::Error { kind: None, message: format!("(unknown kind \"{kind_s}\") {message}") },
        });
    }
    let output = m.get("output").ok_or("response has none of output, error, unsupported")?;
    let output = parse_tensor(output, "output").map_err(|e| format!("malformed response: {e}"))?;
    let grad_input = match m.get("grad_input") {
        Some(g) => Some(parse_tensor(g, "grad_input").map_err(|e| format!("malformed response: {e}"))?),
        None => None,
    };
    Ok(Outcome::Values { output, grad_input })
}

impl Implementation for External {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self, req: &Request<'_>) -> Outcome {
        let mut slot = self.process.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            match self.start() {
                Ok(p) => *slot = Some(p),
                Err(e) => return Outcome::Broken(e),
            }
        }
        let process = slot.as_mut().expect("started above");
        let result = self.exchange(process, req).and_then(|v| parse_response(&v));
        match result {
            Ok(outcome) => outcome,
            Err(detail) => {
                // Give the process a moment to flush its last words to stderr, then restart.
                std::thread::sleep(Duration::from_millis(20));
                let tail = {
                    let s = process.stderr.lock().unwrap_or_else(|p| p.into_inner());
                    String::from_utf8_lossy(&s).trim_end().to_string()
                };
                *slot = None; // killed by Drop; the next request starts a fresh process
                if tail.is_empty() {
                    Outcome::Broken(detail)
                } else {
                    Outcome::Broken(format!("{detail}\n--- stderr (tail) ---\n{tail}"))
                }
            }
        }
    }
}
