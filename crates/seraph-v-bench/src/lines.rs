//! A child process whose stdout lines arrive with the instant they were
//! read, for measurements that time what a running guest prints (wake-up
//! latency, a VM pair's exchange, a disk run's reports). Every wait has a
//! deadline; a child still running when its `LineChild` is dropped is
//! killed and reaped.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::spawn::Invocation;

/// One stdout line (without its newline) and when the bench read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// When the reader thread got the line.
    pub at: Instant,
    /// The line's text (lossy UTF-8, newline removed).
    pub text: String,
}

/// A running child with timestamped stdout lines and, optionally, a stdin pipe.
#[derive(Debug)]
pub struct LineChild {
    program: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    /// Every line received so far, in order.
    seen: Vec<Line>,
    /// When the child was spawned.
    pub started: Instant,
}

impl LineChild {
    /// Spawns `inv` with stdout piped (read line by line on a thread),
    /// stderr discarded, and stdin piped if `piped_stdin`, else /dev/null.
    pub fn spawn(inv: &Invocation, piped_stdin: bool) -> Result<Self, BenchError> {
        Self::spawn_logged(inv, piped_stdin, None)
    }

    /// As [`LineChild::spawn`], with stderr written to `stderr_log` if given.
    pub fn spawn_logged(
        inv: &Invocation,
        piped_stdin: bool,
        stderr_log: Option<&std::path::Path>,
    ) -> Result<Self, BenchError> {
        let stderr = match stderr_log {
            Some(path) => Stdio::from(std::fs::File::create(path).map_err(BenchError::io(path))?),
            None => Stdio::null(),
        };
        let mut command = Command::new(&inv.program);
        command
            .args(&inv.args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .stdin(if piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| BenchError::Child {
            program: inv.program.clone(),
            detail: format!("cannot start: {e}"),
        })?;
        let stdin = child.stdin.take();
        let (tx, lines) = channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::Builder::new()
                .name("bench-lines".into())
                .spawn(move || {
                    let mut reader = BufReader::new(stdout);
                    let mut buf = Vec::new();
                    loop {
                        buf.clear();
                        match reader.read_until(b'\n', &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                let at = Instant::now();
                                let text = String::from_utf8_lossy(&buf)
                                    .trim_end_matches(['\n', '\r'])
                                    .to_owned();
                                if tx.send(Line { at, text }).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                })
                .map_err(BenchError::io("a line-reader thread"))?;
        }
        Ok(Self {
            program: inv.program.clone(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            started,
        })
    }

    fn fail(&self, detail: String) -> BenchError {
        BenchError::Child {
            program: self.program.clone(),
            detail,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line received so far.
    pub fn seen(&self) -> &[Line] {
        &self.seen
    }

    /// Everything received so far, one line per line, for error messages.
    pub fn transcript(&self) -> String {
        let mut text = String::new();
        for line in &self.seen {
            text.push_str(&line.text);
            text.push('\n');
        }
        text
    }

    /// Waits at most `limit` for the next line that satisfies `wanted`
    /// (lines before it are kept in [`LineChild::seen`] and skipped).
    pub fn wait_line(
        &mut self,
        limit: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Line, BenchError> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line.text) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.fail(format!(
                        "the expected line did not come within {limit:?}; output so far:\n{}",
                        self.transcript()
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.fail(format!(
                        "stdout closed before the expected line; output:\n{}",
                        self.transcript()
                    )));
                }
            }
        }
    }

    /// Writes `bytes` to the child's stdin; returns the instant right
    /// before the write.
    pub fn send(&mut self, bytes: &[u8]) -> Result<Instant, BenchError> {
        let at = Instant::now();
        let result = match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(bytes).and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin is not piped")),
        };
        result.map_err(|e| self.fail(format!("writing stdin: {e}")))?;
        Ok(at)
    }

    /// Closes the child's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits at most `limit` for the child to exit; returns its exit code
    /// (`None` for a signal) and the instant the bench saw it. The rest of
    /// its output is read into [`LineChild::seen`]. Kills it after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<(Option<i32>, Instant), BenchError> {
        let end = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let at = Instant::now();
                    // The reader ends at EOF: collect what is left.
                    while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                        self.seen.push(line);
                    }
                    return Ok((status.code(), at));
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail(format!("waiting: {e}"))),
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(self.fail(format!(
                    "still running after {limit:?} (killed); output:\n{}",
                    self.transcript()
                )));
            }
            // Keep the transcript current while waiting.
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sh(script: &str) -> Invocation {
        Invocation::new(Path::new("/bin/sh"), ["-c", script])
    }

    #[test]
    fn lines_arrive_in_order_with_instants() -> Result<(), BenchError> {
        let mut child = LineChild::spawn(&sh("echo one; echo two; echo three; exit 3"), false)?;
        let two = child.wait_line(Duration::from_secs(30), |l| l == "two")?;
        assert!(two.at >= child.started);
        let (code, _) = child.wait_exit(Duration::from_secs(30))?;
        assert_eq!(code, Some(3));
        let texts: Vec<&str> = child.seen().iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert_eq!(child.transcript(), "one\ntwo\nthree\n");
        Ok(())
    }

    #[test]
    fn stdin_round_trips_through_a_child() -> Result<(), BenchError> {
        let mut child = LineChild::spawn(&sh("while read l; do echo \"got $l\"; done"), true)?;
        for word in ["a", "b"] {
            let sent = child.send(format!("{word}\n").as_bytes())?;
            let line = child.wait_line(Duration::from_secs(30), |l| l.starts_with("got"))?;
            assert_eq!(line.text, format!("got {word}"));
            assert!(line.at >= sent);
        }
        child.close_stdin();
        assert_eq!(child.wait_exit(Duration::from_secs(30))?.0, Some(0));
        Ok(())
    }

    #[test]
    fn a_missing_line_and_a_hung_child_are_errors_not_hangs() -> Result<(), BenchError> {
        let mut child = LineChild::spawn(&sh("echo only; exec sleep 30"), false)?;
        let err = child.wait_line(Duration::from_millis(300), |l| l == "never");
        assert!(err.is_err());
        assert!(child.wait_exit(Duration::from_millis(100)).is_err());
        let mut closed = LineChild::spawn(&sh("echo x"), false)?;
        assert!(
            closed
                .wait_line(Duration::from_secs(30), |l| l == "y")
                .is_err()
        );
        let mut no_stdin = LineChild::spawn(&sh("true"), false)?;
        assert!(no_stdin.send(b"x").is_err());
        Ok(())
    }
}
