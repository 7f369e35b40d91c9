//! Write errors on stdout and stderr never panic and never change the exit
//! code (issue #14 item 7): a closed pipe (`--ascii | head -c 10`), a full
//! device (`--help >/dev/full`, errors with stderr on /dev/full). The
//! screenshot is still written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::process::{Command, Stdio};

use common::{TempDir, kvm_available, stderr, write_guest};

fn full() -> File {
    File::options().write(true).open("/dev/full").unwrap()
}

#[test]
fn help_and_errors_on_a_full_device_keep_their_codes() {
    let dir = TempDir::new();
    let bin = env!("CARGO_BIN_EXE_seraph-v");
    let out = Command::new(bin)
        .arg("--help")
        .stdout(full())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no panic message");
    let cases: [(&[&str], i32); 3] = [
        (&["missing.elf"], 66),
        (&["--memory", "12X"], 2),
        (&["--screenshot", "/nonexistent-dir/x.bmp"], 73),
    ];
    for (args, code) in cases {
        let out = Command::new(bin)
            .args(args)
            .current_dir(&dir.0)
            .stdout(Stdio::piped())
            .stderr(full())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

#[test]
fn closed_stdout_and_stderr_pipes_keep_the_exit_code_and_the_screenshot() {
    if !kvm_available("closed_pipes") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "k.elf", seraph_guests::TEST_KERNEL_IDENTITY);
    for closed in ["stdout", "stderr"] {
        let shot = dir.path(&format!("{closed}.bmp"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_seraph-v"))
            .args([
                kernel.to_str().unwrap(),
                "--ascii",
                "--stats",
                "--screenshot",
                shot.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away at once, like `| head -c 0`.
        let (mut keep, gone) = if closed == "stdout" {
            (
                Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read>,
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read>,
            )
        } else {
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read>,
                Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read>,
            )
        };
        drop(gone);
        let mut kept = String::new();
        std::io::Read::read_to_string(&mut keep, &mut kept).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{closed} closed: {kept}");
        assert!(!kept.contains("panicked"), "{kept}");
        let bmp = std::fs::read(&shot).unwrap();
        assert_eq!(&bmp[..2], b"BM");
    }
}
