//! Helpers shared by the `seraph-v` binary's integration tests: a temporary
//! directory, running the binary in it, the KVM gate, and the check for a
//! one-line error that leaves no files behind.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

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
