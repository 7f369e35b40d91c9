//! The GDB stub with the real gdb (batch mode) against a kernel with
//! symbols: stop at the first instruction, hbreak a function, continue,
//! read registers (cr3 too) and a string, step, write a variable and RIP,
//! a watchpoint that fires, and the guest's EXIT reported to gdb.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::BufReader;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use common::{TempDir, command, first_stderr_line, kvm_available, write_guest};

/// The gdb binary; the test fails (never skips) without it.
fn gdb() -> Command {
    let found = Command::new("gdb").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "gdb is not installed: run scripts/setup.sh (Debian package gdb)"
    );
    Command::new("gdb")
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts seraph-v on `kernel` held at its first instruction (`-S`) for a
/// gdb on `port`, with serial output off and `timeout` as the bound; waits
/// for "waiting for gdb" on stderr and returns the VM and the rest of its
/// stderr.
fn spawn_gdb_target(
    dir: &TempDir,
    kernel: &Path,
    port: u16,
    timeout: &str,
) -> (Child, BufReader<ChildStderr>) {
    let gdb = format!("tcp:127.0.0.1:{port}");
    let mut vm = command(
        dir,
        &[
            kernel.to_str().unwrap(),
            "--no-screenshot",
            "--serial",
            "none",
            "--timeout",
            timeout,
            "--gdb",
            &gdb,
            "-S",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for "waiting for gdb" before a client connects.
    let (line, err) = first_stderr_line(&mut vm);
    assert_eq!(line, format!("seraph-v: waiting for gdb on {gdb}"));
    (vm, err)
}

#[test]
fn a_gdb_session_steps_patches_and_watches_the_guest() {
    if !kvm_available("gdb_session") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "gdb_target.elf", seraph_guests::GDB_TARGET);
    // gdb is checked before the VM starts: a missing gdb orphans no VM.
    let mut cmd = gdb();
    let port = free_port();
    let (mut vm, mut err) = spawn_gdb_target(&dir, &kernel, port, "120s");
    let script = [
        "set architecture i386:x86-64".to_owned(),
        format!("target remote 127.0.0.1:{port}"),
        "info registers rip".into(),
        "hbreak step_one".into(),
        "continue".into(),
        "info registers rip cr3".into(),
        "x/s &greeting".into(),
        "stepi".into(),
        "set {long}&counter = 40".into(),
        "delete".into(),
        "hbreak bad_path".into(),
        "continue".into(),
        "set $rip = good_path".into(),
        "delete".into(),
        "watch *(long *)&watched".into(),
        "continue".into(),
        "print/x *(long *)&watched".into(),
        "delete".into(),
        "continue".into(),
    ];
    cmd.args(["-batch", "-nx", kernel.to_str().unwrap()]);
    for s in &script {
        cmd.args(["-ex", s]);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = vm.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    // The first instruction of pc_entry.S's Seraph entry.
    assert!(text.contains("rip            0x"), "{text}");
    assert!(
        text.contains("Hardware assisted breakpoint 1 at 0x"),
        "{text}"
    );
    assert!(text.contains("in step_one ()"), "{text}");
    assert!(text.contains("cr3            0x"), "{text}");
    assert!(text.contains("\"hello from the gdb guest\""), "{text}");
    assert!(text.contains("in bad_path ()"), "{text}");
    assert!(text.contains("Hardware watchpoint"), "{text}");
    assert!(text.contains("New value = 4660"), "{text}");
    assert!(text.contains("$1 = 0x1234"), "{text}");
    // 40 + 3 calls' worth of +1 (the first was stopped before its add) + 100.
    assert!(text.contains("exited with code 0217"), "{text}");
    assert_eq!(status.code(), Some(143), "{rest}");
    assert!(rest.contains("guest exited with status 143"), "{rest}");
}

#[test]
fn garbage_and_a_vanishing_client_leave_the_guest_running() {
    if !kvm_available("gdb_garbage") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "gdb_target.elf", seraph_guests::GDB_TARGET);
    let port = free_port();
    let (mut vm, mut err) = spawn_gdb_target(&dir, &kernel, port, "60s");
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"\x00\xffgarbage$zz#00+$m0,ffffffffff#00$M100000,4:#")
            .unwrap();
        // Disconnect mid-packet.
    }
    // The guest was held at its first instruction; with the client gone it
    // is detached and runs on to its own EXIT (77: nobody patched it).
    let status = vm.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(status.code(), Some(77), "{rest}");
    assert!(!rest.contains("panicked"), "{rest}");
}
