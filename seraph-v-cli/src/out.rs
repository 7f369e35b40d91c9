//! Writing to stdout and stderr without ever panicking: a closed pipe
//! (`seraph-v --ascii | head -c 10`), a full device (`2>/dev/full`) or any
//! other write error is ignored, so the screenshot is still written and the
//! exit code still says how the run ended. (Rust ignores SIGPIPE, so a
//! closed pipe is an EPIPE error here, not a signal.)

use std::io::Write;

/// Writes `text` to stdout and flushes it; errors are ignored.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes `text` to stderr in one call (stderr is unbuffered); errors are ignored.
pub fn stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes `seraph-v: <line>\n` to stderr in one call; errors are ignored.
pub fn report(line: &str) {
    stderr(&format!("seraph-v: {line}\n"));
}
