//! The `seraph-v` binary as a user meets it: exit codes, report lines,
//! screenshots, and one-line errors with no partial output files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    TempDir, assert_one_line_error, kvm_available, seraph_v, stderr, stdout, write_guest,
};

use seraph_guests::expected as want;

#[test]
fn demo_kernel_boots_by_default_and_leaves_a_screenshot() {
    if !kvm_available("demo_kernel_boots_by_default") {
        return;
    }
    let dir = TempDir::new();
    let out = seraph_v(&dir, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(text.contains(want::DEMO_BANNER.trim_end()));
    assert!(text.contains(want::TEST_KERNEL_SERIAL_HELLO.trim_end()));
    assert!(text.contains(want::TEST_KERNEL_PRINT_HELLO.trim_end()));
    assert!(text.contains(want::TEST_KERNEL_ALL_PASSED.trim_end()));
    assert_eq!(
        stderr(&out).trim_end(),
        "seraph-v: guest exited with status 0"
    );
    let bmp = std::fs::read(dir.path("seraph_framebuffer.bmp")).unwrap();
    assert_eq!(&bmp[..2], b"BM");
    // The demo's text screen (test_kernel.c, SERAPH_DEMO): the header band,
    // ink of the title's "S", the background, and the green "all N checks
    // passed" at the bottom.
    for (x, y, rgb) in [
        (5, 5, [0x1c, 0x2a, 0x3a]),
        (38, 18, [0xff, 0xc2, 0x4a]),
        (1000, 700, [0x10, 0x18, 0x20]),
        (38, 712, [0x60, 0xe0, 0x80]),
    ] {
        assert_eq!(
            seraph_vmm::framebuffer::decode_bmp_pixel(&bmp, x, y),
            Some(rgb),
            "demo screen pixel ({x}, {y})"
        );
    }
}

#[test]
fn both_link_styles_boot_from_files_with_png_ascii_and_stats() {
    if !kvm_available("both_link_styles_boot_from_files") {
        return;
    }
    let dir = TempDir::new();
    for (name, elf) in [
        ("identity.elf", seraph_guests::TEST_KERNEL_IDENTITY),
        ("higher-half.elf", seraph_guests::TEST_KERNEL_HIGHER_HALF),
    ] {
        let kernel = write_guest(&dir, name, elf);
        let shot = dir.path(&format!("{name}.png"));
        let out = seraph_v(
            &dir,
            &[
                kernel.to_str().unwrap(),
                "--screenshot",
                shot.to_str().unwrap(),
                "--ascii",
                "--stats",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains(want::TEST_KERNEL_ALL_PASSED.trim_end()));
        // The ASCII preview shows the bright bands as dense characters.
        assert!(stdout(&out).contains("@@@"), "ascii preview missing");
        let err = stderr(&out);
        assert!(err.contains("exits:") && err.contains("hypercall"), "{err}");
        let png = std::fs::read(&shot).unwrap();
        assert_eq!(
            seraph_vmm::framebuffer::decode_png_pixel(&png, 5, 40),
            Some([0, 255, 0])
        );
    }
}

#[test]
fn serial_can_go_to_a_file() {
    if !kvm_available("serial_to_file") {
        return;
    }
    let dir = TempDir::new();
    let log = dir.path("serial.log");
    let arg = format!("file:{}", log.display());
    let out = seraph_v(&dir, &["--serial", &arg, "--no-screenshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let serial = std::fs::read_to_string(&log).unwrap();
    assert!(serial.contains(want::TEST_KERNEL_ALL_PASSED));
    assert!(!stdout(&out).contains(want::TEST_KERNEL_SERIAL_HELLO.trim_end()));
    // PRINT output still goes to stdout.
    assert!(stdout(&out).contains(want::TEST_KERNEL_PRINT_HELLO.trim_end()));
}

#[test]
fn each_way_a_run_ends_has_its_exit_code_and_report_line() {
    if !kvm_available("run_endings_exit_codes") {
        return;
    }
    let dir = TempDir::new();
    struct Case {
        name: &'static str,
        elf: &'static [u8],
        extra: &'static [&'static str],
        code: i32,
        line: &'static str,
    }
    let case = |name, elf, extra, code, line| Case {
        name,
        elf,
        extra,
        code,
        line,
    };
    let cases = [
        case(
            "exit.elf",
            seraph_guests::EXIT_STATUS,
            &[],
            42,
            "guest exited with status 42",
        ),
        case(
            "triple.elf",
            seraph_guests::TRIPLE_FAULT,
            &[],
            81,
            "guest triple fault at rip",
        ),
        case(
            "emu.elf",
            seraph_guests::EMULATION_FAILURE,
            &[],
            82,
            "emulation failure",
        ),
        case(
            "hlt.elf",
            seraph_guests::HLT_NO_IRQ,
            &[],
            80,
            "interrupts disabled",
        ),
        case(
            "idle.elf",
            seraph_guests::IDLE_LOOP,
            &[],
            0,
            "with nothing that can wake it",
        ),
        case(
            "seraph-idle.elf",
            seraph_guests::SERAPH_IDLE_KERNEL,
            &["--idle-hlts", "5"],
            0,
            "guest idle: 5 HLTs at rip",
        ),
        case(
            "spin.elf",
            seraph_guests::SPIN,
            &["--timeout", "300ms"],
            124,
            "timeout after 0.300s",
        ),
    ];
    for Case {
        name,
        elf,
        extra,
        code,
        line,
    } in cases
    {
        let kernel = write_guest(&dir, name, elf);
        let mut args = vec![kernel.to_str().unwrap(), "--no-screenshot"];
        args.extend_from_slice(extra);
        let out = seraph_v(&dir, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{name}: {err}");
        assert!(err.starts_with("seraph-v: "), "{name}: {err}");
        assert!(err.contains(line), "{name}: `{line}` not in {err}");
    }
}

#[test]
fn ctrl_c_stops_the_guest_with_code_130() {
    if !kvm_available("ctrl_c") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "spin.elf", seraph_guests::SPIN);
    let mut child = Command::new(env!("CARGO_BIN_EXE_seraph-v"))
        .args([
            kernel.to_str().unwrap(),
            "--no-screenshot",
            "--timeout",
            "60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the guest has printed (it is running), then send SIGINT.
    let mut first_line = String::new();
    let mut guest_out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut guest_out, &mut first_line).unwrap();
    assert_eq!(first_line, want::SPIN_PRINT);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted (Ctrl-C)"));
}

#[test]
fn bad_kernels_get_one_line_errors_and_no_files() {
    let dir = TempDir::new();
    std::fs::write(dir.path("garbage.elf"), b"this is not an ELF file at all").unwrap();
    std::fs::write(dir.path("empty.elf"), b"").unwrap();
    std::fs::create_dir(dir.path("adir")).unwrap();
    let before = dir.files();
    let cases = [
        ("missing.elf", 66, "cannot read kernel"),
        ("adir", 66, "is a directory"),
        ("garbage.elf", 65, "kernel"),
        ("empty.elf", 65, "kernel"),
    ];
    for (name, code, mentions) in cases {
        let out = seraph_v(&dir, &[dir.path(name).to_str().unwrap()]);
        assert_one_line_error(&dir, &out, code, mentions, &before);
    }
}

#[test]
fn bad_options_get_one_line_errors_and_no_files() {
    let dir = TempDir::new();
    let before = dir.files();
    let cases: [(&[&str], i32, &str); 8] = [
        (&["--memory", "12X"], 2, "unknown unit"),
        (&["--memory", "513M"], 78, "2 MiB"),
        (&["--memory", "2M"], 78, "memory"),
        (&["--memory", "64G"], 78, "memory"),
        (&["--framebuffer", "5000x5000"], 78, "framebuffer"),
        (&["--framebuffer", "1024"], 2, "WIDTHxHEIGHT"),
        (&["--serial", "tcp:1"], 2, "stdio, file:PATH or none"),
        (&["--timeout", "0s"], 2, "more than 0"),
    ];
    for (args, code, mentions) in cases {
        let out = seraph_v(&dir, args);
        assert_one_line_error(&dir, &out, code, mentions, &before);
    }
    let out = seraph_v(&dir, &["--screenshot", "x.bmp", "--no-screenshot"]);
    assert_one_line_error(&dir, &out, 2, "cannot be used with", &before);
}

#[test]
fn an_unwritable_screenshot_path_fails_before_the_guest_runs() {
    let dir = TempDir::new();
    let before = dir.files();
    let out = seraph_v(&dir, &["--screenshot", "/nonexistent-dir/shot.bmp"]);
    assert_one_line_error(&dir, &out, 73, "/nonexistent-dir/shot.bmp", &before);
    std::fs::create_dir(dir.path("shots")).unwrap();
    let before = dir.files();
    let out = seraph_v(&dir, &["--screenshot", dir.path("shots").to_str().unwrap()]);
    assert_one_line_error(&dir, &out, 73, "is a directory", &before);
}

#[test]
fn help_names_the_hypercall_transport_and_exit_codes() {
    let dir = TempDir::new();
    let out = seraph_v(&dir, &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    assert!(help.contains("out 0xE4, eax"));
    assert!(help.contains("plain `vmcall` never reaches seraph-v"));
    assert!(help.contains("124 timeout"));
    assert!(Path::new(env!("CARGO_BIN_EXE_seraph-v")).exists());
}

#[test]
fn a_guest_that_never_draws_still_gets_a_full_black_screenshot() {
    if !kvm_available("black_screenshot") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "exit.elf", seraph_guests::EXIT_STATUS);
    let out = seraph_v(
        &dir,
        &[kernel.to_str().unwrap(), "--framebuffer", "640x480"],
    );
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    let bmp = std::fs::read(dir.path("seraph_framebuffer.bmp")).unwrap();
    // 54-byte header + 480 lines of 640 * 3 bytes (already a multiple of 4).
    assert_eq!(bmp.len(), 54 + 480 * 640 * 3);
    assert_eq!(&bmp[..2], b"BM");
    assert!(bmp[54..].iter().all(|&b| b == 0), "all black");
    assert_eq!(
        seraph_vmm::framebuffer::decode_bmp_pixel(&bmp, 639, 479),
        Some([0, 0, 0])
    );
    // The same for PNG.
    let shot = dir.path("exit.png");
    let out = seraph_v(
        &dir,
        &[
            kernel.to_str().unwrap(),
            "--screenshot",
            shot.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(
        seraph_vmm::framebuffer::decode_png_pixel(&png, 1023, 767),
        Some([0, 0, 0])
    );
}
