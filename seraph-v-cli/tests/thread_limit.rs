//! Issue #14 item 1: under a thread limit KVM cannot start the worker
//! thread it needs at the first KVM_RUN, and KVM_RUN fails with EAGAIN
//! again and again. Seraph-V used to retry forever at 100 % CPU (and blame
//! `--timeout`); it now gives up after about a second of retries and
//! reports a hypervisor failure (83).
//!
//! The limit (RLIMIT_NPROC) does not apply to root, so the test runs
//! seraph-v as `nobody` in a mount namespace of its own where a private
//! copy of the /dev/kvm node (same device numbers, open to everyone) is
//! bound over /dev/kvm: the host's /dev/kvm is not touched. Needs root
//! (CI runs as root) and util-linux (unshare, setpriv, prlimit).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use common::{TempDir, kvm_available, write_guest};

#[test]
fn eagain_from_kvm_run_is_a_hypervisor_failure_not_a_spin() {
    if !kvm_available("kvm_run_eagain") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    assert!(
        root,
        "this test needs root (to run seraph-v as `nobody` under RLIMIT_NPROC in a mount \
         namespace); CI runs as root"
    );
    let dir = TempDir::new();
    // Everything `nobody` needs must be readable by it.
    let kernel = write_guest(&dir, "exit.elf", seraph_guests::EXIT_STATUS);
    let bin = dir.path("seraph-v");
    std::fs::copy(env!("CARGO_BIN_EXE_seraph-v"), &bin).unwrap();
    let kvm = std::fs::metadata("/dev/kvm").unwrap();
    assert!(kvm.file_type().is_char_device());
    let node = dir.path("kvm");
    let status = Command::new("mknod")
        .args(["-m", "666", node.to_str().unwrap(), "c"])
        .arg((kvm.rdev() >> 8 & 0xfff).to_string())
        .arg((kvm.rdev() & 0xff).to_string())
        .status()
        .expect("mknod (coreutils)");
    assert!(status.success());
    std::process::Command::new("chmod")
        .args(["-R", "a+rX", dir.path("").to_str().unwrap()])
        .status()
        .unwrap();
    // main thread, signal watcher, output thread: the limit leaves no room
    // for the thread KVM starts at the first KVM_RUN.
    let script = format!(
        "mount --bind {node} /dev/kvm && exec prlimit --nproc=3 -- setpriv --reuid=nobody \
         --regid=nogroup --clear-groups {bin} {kernel} --no-screenshot --serial none",
        node = node.display(),
        bin = bin.display(),
        kernel = kernel.display(),
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(dir.path(""))
        .stdin(Stdio::null())
        .output()
        .expect("unshare (util-linux; scripts/setup.sh installs it)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("unshare:") && !err.contains("mount:") && !err.contains("setpriv:"),
        "the test harness failed: {err}"
    );
    assert_eq!(out.status.code(), Some(83), "{err}");
    assert!(
        err.contains("hypervisor failure: KVM_RUN failed: Resource temporarily unavailable"),
        "{err}"
    );
}
