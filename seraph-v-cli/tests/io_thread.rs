//! Platform v2 through the binary: stdin reaches the guest's COM1, a stalled
//! stdout reader never stops the run, and a serial log that cannot be
//! written is reported with 73.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{TempDir, command, kvm_available, stderr, stdout, wait_bounded, write_guest};

#[test]
fn stdin_is_typed_into_com1_and_the_guest_echoes_it() {
    if !kvm_available("stdin_is_typed_into_com1") {
        return;
    }
    let dir = TempDir::new();
    let guest = write_guest(&dir, "echo.elf", seraph_guests::SERIAL_ECHO);
    let mut child = command(
        &dir,
        &[
            guest.to_str().unwrap(),
            "--no-screenshot",
            "--timeout",
            "60s",
        ],
    )
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
    let mut child = command(
        &dir,
        &[
            guest.to_str().unwrap(),
            "--no-screenshot",
            "--timeout",
            "2s",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let Some(status) = wait_bounded(&mut child, Duration::from_secs(60)) else {
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
    let out = command(
        &dir,
        &[
            guest.to_str().unwrap(),
            "--no-screenshot",
            "--serial",
            "file:/dev/full",
        ],
    )
    .output()
    .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(73), "{err}");
    assert!(err.contains("serial log could not be written"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
}
