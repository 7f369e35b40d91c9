//! Command-line values that make no sense or cost needless work (issue #14
//! items 14 and 15): suggestions that are themselves valid, sub-millisecond
//! timeouts refused, exact byte counts for huge framebuffers, a 2 GiB file
//! of zeros refused from its first bytes, and a bounded `--ascii` preview.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{
    TempDir, assert_one_line_error, kvm_available, seraph_v, stderr, stdout, write_guest,
};

#[test]
fn suggestions_are_valid_and_nonsense_is_a_usage_error() {
    let dir = TempDir::new();
    let before = dir.files();
    let cases: &[(&[&str], i32, &str)] = &[
        // 3074 MiB (rounding up) is over the 3G limit: suggest 3072.
        (&["--memory", "3073M"], 78, "use e.g. --memory 3072M"),
        (&["--memory", "513M"], 78, "use e.g. --memory 514M"),
        (&["--memory", "1M"], 78, "use e.g. --memory"),
        (&["--memory", "4097M"], 78, "use e.g. --memory 3072M"),
        (
            &["--memory", "18446744073709551615"],
            78,
            "use e.g. --memory 3072M",
        ),
        (&["--timeout", "1us"], 2, "at least 1ms"),
        (&["--timeout", "0.0000000001"], 2, "at least 1ms"),
        (&["--timeout", "1.0005s"], 2, "resolution of 1 ms"),
        (
            &["--framebuffer", "4294967295x4294967295"],
            78,
            "needs 73786976260478468100 bytes",
        ),
        (
            &["--framebuffer", "99999x99999"],
            78,
            "needs 39999200004 bytes",
        ),
    ];
    for (args, code, mentions) in cases {
        let out = seraph_v(&dir, args);
        assert_one_line_error(&dir, &out, *code, mentions, &before);
        assert!(!stderr(&out).contains("3074"), "{}", stderr(&out));
    }
}

#[test]
fn a_2_gib_file_of_zeros_is_refused_from_its_first_bytes() {
    let dir = TempDir::new();
    let zeros = dir.path("zeros.elf");
    let file = std::fs::File::create(&zeros).unwrap();
    file.set_len(2 << 30).unwrap(); // sparse: costs no disk
    drop(file);
    let before = dir.files();
    // Under a 1 GiB address-space limit, reading the whole file cannot
    // even be attempted: the old code died allocating the buffer.
    let out = match Command::new("prlimit")
        .arg(format!("--as={}", 1u64 << 30))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_seraph-v"))
        .args(["--memory", "3G", zeros.to_str().unwrap()])
        .current_dir(&dir.0)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("prlimit (util-linux) is not installed: run scripts/setup.sh")
        }
        Err(e) => panic!("cannot run prlimit: {e}"),
    };
    assert_one_line_error(&dir, &out, 65, "not an ELF file (bad magic)", &before);
}

#[test]
fn the_ascii_preview_of_a_very_tall_framebuffer_is_bounded() {
    if !kvm_available("tall_ascii_preview") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "exit.elf", seraph_guests::EXIT_STATUS);
    let out = seraph_v(
        &dir,
        &[
            kernel.to_str().unwrap(),
            "--framebuffer",
            "1x4194304",
            "--ascii",
            "--no-screenshot",
        ],
    );
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    let lines = stdout(&out).lines().count();
    assert!(lines <= 70, "{lines} lines of preview");
    assert!(lines >= 64, "{lines} lines of preview");
}
