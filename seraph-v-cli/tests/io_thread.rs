//! Platform v2 through the binary: stdin reaches the guest's COM1, a stalled
//! stdout reader never stops the run, and a serial log that cannot be
//! written is reported with 73.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, kvm_available, stderr, stdout, write_guest};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seraph-v"))
}

#[test]
fn stdin_is_typed_into_com1_and_the_guest_echoes_it() {
    if !kvm_available("stdin_is_typed_into_com1") {
        return;
    }
    let dir = TempDir::new();
    let guest = write_guest(&dir, "echo.elf", seraph_guests::SERIAL_ECHO);
    let mut child = binary()
        .current_dir(dir.path(""))
        .args([
            guest.to_str().unwrap(),
            "--no-screenshot",
            "--timeout",
            "60s",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for key in [b"h", b"i", b"q"] {
        std::thread::sleep(Duration::from_millis(200));
        stdin.write_all(key).unwrap();
        stdin.flush().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}\n{text}", stderr(&out));
    assert!(text.contains("echo: h\necho: i\necho: q\n"), "{text}");
    assert!(text.contains("serial-echo: bye after"), "{text}");
}

#[test]
fn a_reader_that_never_reads_does_not_stop_the_timeout() {
    if !kvm_available("stalled_stdout_reader") {
        return;
    }
    let dir = TempDir::new();
    let guest = write_guest(&dir, "flood.elf", seraph_guests::SERIAL_FOREVER);
    // stdout is a pipe nobody reads: before the I/O thread, the vCPU thread
    // blocked in write() once the pipe was full and --timeout never fired.
    let mut child = binary()
        .current_dir(dir.path(""))
        .args([
            guest.to_str().unwrap(),
            "--no-screenshot",
            "--timeout",
            "2s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let Some(status) = status else {
        let _ = child.kill();
        panic!("seraph-v still running 60 s after a 2 s timeout with stdout unread");
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(124), "{err}");
    assert!(err.contains("timeout after 2.000s"), "{err}");
}

#[test]
fn a_serial_log_on_a_full_device_is_reported_with_73() {
    if !kvm_available("serial_log_dev_full") {
        return;
    }
    let dir = TempDir::new();
    let guest = write_guest(&dir, "exit.elf", seraph_guests::TEST_KERNEL_IDENTITY);
    let out = binary()
        .current_dir(dir.path(""))
        .args([
            guest.to_str().unwrap(),
            "--no-screenshot",
            "--serial",
            "file:/dev/full",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(73), "{err}");
    assert!(err.contains("serial log could not be written"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
}
