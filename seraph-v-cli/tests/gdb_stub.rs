//! The GDB stub with the real gdb (batch mode) against a kernel with
//! symbols: stop at the first instruction, hbreak a function, continue,
//! read registers (cr3 too) and a string, step, write a variable and RIP,
//! a watchpoint that fires, and the guest's EXIT reported to gdb.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{TempDir, kvm_available, write_guest};

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

#[test]
fn a_gdb_session_steps_patches_and_watches_the_guest() {
    if !kvm_available("gdb_session") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "gdb_target.elf", seraph_guests::GDB_TARGET);
    let port = free_port();
    let mut vm = Command::new(env!("CARGO_BIN_EXE_seraph-v"))
        .current_dir(dir.path(""))
        .args([
            kernel.to_str().unwrap(),
            "--no-screenshot",
            "--serial",
            "none",
            "--timeout",
            "120s",
            "--gdb",
            &format!("tcp:127.0.0.1:{port}"),
            "-S",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for "waiting for gdb" before gdb connects.
    let mut err = BufReader::new(vm.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim_end(),
        format!("seraph-v: waiting for gdb on tcp:127.0.0.1:{port}")
    );
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
    let mut cmd = gdb();
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
    let mut vm = Command::new(env!("CARGO_BIN_EXE_seraph-v"))
        .current_dir(dir.path(""))
        .args([
            kernel.to_str().unwrap(),
            "--no-screenshot",
            "--serial",
            "none",
            "--timeout",
            "60s",
            "--gdb",
            &format!("tcp:127.0.0.1:{port}"),
            "-S",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(vm.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
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
