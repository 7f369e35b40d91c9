//! SIGTERM and SIGHUP end a run like Ctrl-C (report line, screenshot,
//! output flushed) with their own codes, and a signal-watcher thread that
//! cannot be created is a one-line error with code 71, not a panic
//! (issue #14 items 5 and 8).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use common::{TempDir, kvm_available, stderr, write_guest};

use seraph_guests::expected as want;

/// Runs the spinning guest, sends `signal` once it runs, and returns its output.
fn spin_and_signal(dir: &TempDir, signal: &str) -> std::process::Output {
    let kernel = write_guest(dir, "spin.elf", seraph_guests::SPIN);
    let mut child = Command::new(env!("CARGO_BIN_EXE_seraph-v"))
        .args([kernel.to_str().unwrap(), "--timeout", "60s"])
        .current_dir(&dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    let mut guest_out = std::io::BufReader::new(child.stdout.take().unwrap());
    guest_out.read_line(&mut first_line).unwrap();
    assert_eq!(first_line, want::SPIN_PRINT);
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_and_sighup_end_the_run_with_a_report_and_a_screenshot() {
    if !kvm_available("sigterm_sighup") {
        return;
    }
    for (signal, code, line) in [
        ("TERM", 143, "seraph-v: terminated (SIGTERM)"),
        ("HUP", 129, "seraph-v: hangup (SIGHUP)"),
        ("INT", 130, "seraph-v: interrupted (Ctrl-C)"),
    ] {
        let dir = TempDir::new();
        let out = spin_and_signal(&dir, signal);
        assert_eq!(out.status.code(), Some(code), "{signal}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim_end(), line, "{signal}");
        let bmp = std::fs::read(dir.path("seraph_framebuffer.bmp")).unwrap();
        assert_eq!(&bmp[..2], b"BM", "{signal}: screenshot");
    }
}

#[test]
fn a_thread_limit_gives_a_one_line_error_with_code_71() {
    // RLIMIT_NPROC of 1 for a user that already runs a process: the
    // signal-watcher thread cannot be created. Root ignores the limit, so
    // as root the binary runs as `nobody` (setpriv), which runs nothing.
    let dir = TempDir::new();
    let bin = env!("CARGO_BIN_EXE_seraph-v");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    let mut command = if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "prlimit",
            "--nproc=1",
            "--",
            bin,
        ]);
        c
    } else {
        let mut c = Command::new("prlimit");
        c.args(["--nproc=1", "--", bin]);
        c
    };
    let out = match command
        .args(["--no-screenshot", "--timeout", "5s"])
        .current_dir(&dir.0)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run the thread-limit harness (setpriv and prlimit, Debian package util-linux; \
             scripts/setup.sh installs it): {e}"
        ),
    };
    let err = stderr(&out);
    if err.contains("setpriv:") || err.contains("prlimit:") {
        panic!("the thread-limit harness failed to start: {err}");
    }
    assert_eq!(out.status.code(), Some(71), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("seraph-v: error: cannot start the signal-watcher thread"),
        "{err}"
    );
    assert!(dir.files().is_empty());
}
