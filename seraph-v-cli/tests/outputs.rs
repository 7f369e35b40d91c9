//! Output paths checked before the guest runs (issue #14 items 6, 11, 12,
//! 16): screenshot paths that are not regular files, trailing slashes and
//! bad parents, FIFOs as kernel or serial log, and outputs that would
//! overwrite the kernel or each other. Each is a one-line error with its
//! documented code, no output file and no hang; none needs KVM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    TempDir, assert_one_line_error, command, kvm_available, seraph_v, stderr, wait_bounded,
    write_guest,
};

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs seraph-v in `dir`, failing the test if it has not ended within 20 s
/// (a blocked open() would hang forever).
fn seraph_v_bounded(dir: &TempDir, args: &[&str]) -> std::process::Output {
    let mut child = command(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if wait_bounded(&mut child, Duration::from_secs(20)).is_none() {
        panic!("seraph-v {args:?} still running after 20 s (blocked?)");
    }
    child.wait_with_output().unwrap()
}

#[test]
fn screenshot_paths_that_are_not_regular_files_are_refused_before_the_run() {
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "exit.elf", seraph_guests::EXIT_STATUS);
    mkfifo(&dir.path("fifo.bmp"));
    std::os::unix::fs::symlink(dir.path("nowhere.bmp"), dir.path("dangling.bmp")).unwrap();
    std::os::unix::fs::symlink("fifo.bmp", dir.path("to-fifo.bmp")).unwrap();
    std::fs::write(dir.path("file"), b"").unwrap();
    // A private character device, so the test never risks the host's /dev/null.
    let null = dir.path("null.bmp");
    let have_null = is_root()
        && Command::new("mknod")
            .args([null.to_str().unwrap(), "c", "1", "3"])
            .status()
            .is_ok_and(|s| s.success());
    if !have_null {
        eprintln!(
            "outputs: not checking a character-device --screenshot path \
             (mknod needs root; CI runs as root)"
        );
    }
    let before = dir.files();
    let k = kernel.to_str().unwrap();
    let mut cases = vec![
        ("fifo.bmp".to_owned(), "is a FIFO"),
        ("to-fifo.bmp".to_owned(), "is a FIFO"),
        ("dangling.bmp".to_owned(), "symbolic link"),
        // Issue #14 item 11: trailing slashes and bad parents.
        ("missing/".to_owned(), "path separator"),
        ("shot.bmp/".to_owned(), "path separator"),
        ("file/".to_owned(), "path separator"),
        ("file/x.bmp".to_owned(), "not a directory"),
        ("missing/x.bmp".to_owned(), "cannot be used"),
    ];
    if have_null {
        cases.push(("null.bmp".to_owned(), "is a character device"));
    }
    for (shot, mentions) in &cases {
        let out = seraph_v_bounded(&dir, &[k, "--screenshot", shot]);
        assert_one_line_error(&dir, &out, 73, mentions, &before);
    }
    if have_null {
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::metadata(&null).unwrap();
        assert!(meta.file_type().is_char_device(), "the device was replaced");
    }
}

#[test]
fn a_screenshot_through_a_symlink_writes_the_target_and_keeps_the_link() {
    if !kvm_available("screenshot_through_symlink") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "exit.elf", seraph_guests::EXIT_STATUS);
    std::fs::create_dir(dir.path("shots")).unwrap();
    std::fs::write(dir.path("shots/real.bmp"), b"old").unwrap();
    std::os::unix::fs::symlink("shots/real.bmp", dir.path("link.bmp")).unwrap();
    let out = seraph_v(
        &dir,
        &[kernel.to_str().unwrap(), "--screenshot", "link.bmp"],
    );
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    let link = std::fs::symlink_metadata(dir.path("link.bmp")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let bmp = std::fs::read(dir.path("shots/real.bmp")).unwrap();
    assert_eq!(&bmp[..2], b"BM");
}

#[test]
fn fifos_as_kernel_or_serial_log_are_refused_without_blocking() {
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "exit.elf", seraph_guests::EXIT_STATUS);
    mkfifo(&dir.path("kernel.fifo"));
    mkfifo(&dir.path("serial.fifo"));
    let before = dir.files();
    // No writer: open() used to wait forever.
    let out = seraph_v_bounded(&dir, &["kernel.fifo"]);
    assert_one_line_error(&dir, &out, 66, "is a FIFO, not a regular file", &before);
    // No reader: the serial log's open() used to wait forever.
    let out = seraph_v_bounded(
        &dir,
        &[kernel.to_str().unwrap(), "--serial", "file:serial.fifo"],
    );
    assert_one_line_error(&dir, &out, 73, "it is a FIFO", &before);
    let out = seraph_v_bounded(&dir, &[kernel.to_str().unwrap(), "--serial", "file:."]);
    assert_one_line_error(&dir, &out, 73, "it is a directory", &before);
    // A character device (here /dev/zero) is still read, and refused for
    // what it holds.
    let out = seraph_v_bounded(&dir, &["--memory", "64M", "/dev/zero"]);
    assert_one_line_error(&dir, &out, 65, "bad magic", &before);
}

#[test]
fn outputs_that_name_the_kernel_or_each_other_are_refused() {
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "k.elf", seraph_guests::EXIT_STATUS);
    std::os::unix::fs::symlink("k.elf", dir.path("k-link.elf")).unwrap();
    std::fs::write(dir.path("o.bmp"), b"log").unwrap();
    let before = dir.files();
    let cases: &[(&[&str], &str)] = &[
        (
            &["k.elf", "--serial", "file:k.elf"],
            "--serial k.elf names the same file as the kernel",
        ),
        (&["k.elf", "--serial", "file:./k.elf"], "as the kernel"),
        (&["k.elf", "--serial", "file:k-link.elf"], "as the kernel"),
        (&["k-link.elf", "--screenshot", "k.elf"], "--screenshot"),
        (
            &["k.elf", "--serial", "file:o.bmp", "--screenshot", "o.bmp"],
            "--screenshot o.bmp names the same file as --serial o.bmp",
        ),
        (
            &[
                "k.elf",
                "--serial",
                "file:new.bmp",
                "--screenshot",
                "./new.bmp",
            ],
            "names the same file as --serial",
        ),
        (
            &[
                "k.elf",
                "--net",
                "dgram,local=127.0.0.1:1,remote=127.0.0.1:2",
                "--net-capture",
                "k.elf",
            ],
            "--net-capture k.elf names the same file as the kernel",
        ),
    ];
    for (args, mentions) in cases {
        let out = seraph_v_bounded(&dir, args);
        assert_one_line_error(&dir, &out, 73, mentions, &before);
    }
    // Nothing was truncated or replaced.
    assert_eq!(std::fs::read(&kernel).unwrap(), seraph_guests::EXIT_STATUS);
    assert_eq!(std::fs::read(dir.path("o.bmp")).unwrap(), b"log");
}
