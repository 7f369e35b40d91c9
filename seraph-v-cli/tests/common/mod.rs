//! Helpers shared by the `seraph-v` binary's integration tests: a temporary
//! directory, running the binary in it (to completion, or spawned and read
//! line by line), bounded waits, the KVM gate, and the check for a one-line
//! error that leaves no files behind.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A fresh empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "seraph-v-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn seraph_v(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seraph-v"))
        .args(args)
        .current_dir(&dir.0)
        .output()
        .expect("seraph-v runs")
}

/// The seraph-v binary with `args`, run in `dir` with stdin closed; the
/// caller sets stdout/stderr (or stdin) and spawns or runs it.
pub fn command(dir: &TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seraph-v"));
    cmd.args(args).current_dir(&dir.0).stdin(Stdio::null());
    cmd
}

/// Takes `child`'s piped stderr and reads its first line (without the line
/// end); returns it and the reader, for the rest.
pub fn first_stderr_line(child: &mut Child) -> (String, BufReader<ChildStderr>) {
    let mut err = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    line.truncate(line.trim_end().len());
    (line, err)
}

/// `stdout`'s lines, read on a thread, as they come.
pub fn line_receiver(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to `limit` for `child` to end; past it, kills and reaps it and
/// returns `None`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

pub fn write_guest(dir: &TempDir, name: &str, elf: &[u8]) -> PathBuf {
    let path = dir.path(name);
    std::fs::write(&path, elf).unwrap();
    path
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// KVM gate for tests that boot a guest (`KvmHypervisor::for_test`).
pub fn kvm_available(test: &str) -> bool {
    seraph_hypervisor::kvm::KvmHypervisor::for_test(test).is_some()
}

/// Asserts a failure: the exit code, exactly one stderr line naming the
/// problem, and no files left behind.
pub fn assert_one_line_error(
    dir: &TempDir,
    out: &Output,
    code: i32,
    mentions: &str,
    files_before: &[String],
) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.starts_with("seraph-v: error: "), "{err}");
    assert!(err.contains(mentions), "`{mentions}` not in: {err}");
    assert_eq!(dir.files(), files_before, "no output files on error");
}
