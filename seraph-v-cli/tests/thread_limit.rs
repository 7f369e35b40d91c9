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
    // With a limit just above the threads seraph-v starts itself, KVM's
    // own worker thread (started at the first KVM_RUN) does not fit. How
    // many threads that is depends on the run (no output thread while
    // writes do not block, ...), so the limit walks up from 1: below, the
    // run fails cleanly with 71 (its own thread); at the step that leaves
    // no room for KVM's worker, KVM_RUN fails with EAGAIN and seraph-v must
    // report 83 in bounded time instead of spinning; above, the guest runs.
    let mut seen = Vec::new();
    for nproc in 1..=8 {
        let script = format!(
            "mount --bind {node} /dev/kvm && exec timeout 60 prlimit --nproc={nproc} -- \
             setpriv --reuid=nobody --regid=nogroup --clear-groups {bin} {kernel} \
             --no-screenshot --serial none",
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
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !err.contains("unshare:") && !err.contains("mount:") && !err.contains("setpriv:"),
            "the test harness failed: {err}"
        );
        let code = out.status.code();
        assert!(
            matches!(code, Some(71 | 83 | 42)),
            "nproc {nproc}: unexpected end {code:?} (124 would be the old endless retry): {err}"
        );
        seen.push((nproc, code, err));
        if code == Some(42) {
            break;
        }
    }
    let eagain = seen.iter().find(|(_, code, _)| *code == Some(83));
    let Some((_, _, err)) = eagain else {
        panic!("no thread limit made KVM_RUN fail with EAGAIN: {seen:?}");
    };
    assert!(
        err.contains("hypervisor failure: KVM_RUN failed: Resource temporarily unavailable"),
        "{err}"
    );
}
