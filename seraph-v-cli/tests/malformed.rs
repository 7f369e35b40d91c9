//! Malformed kernels and bad command lines through the `seraph-v` binary:
//! each gets one error line naming the problem, its documented exit code,
//! and leaves no output file behind. The broken ELF files are made here,
//! from a minimal valid kernel, one defect each (docs/robustness.md has the
//! table).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TempDir, assert_one_line_error, seraph_v};

const MIB: u64 = 1 << 20;

/// One program header of [`elf`].
#[derive(Clone, Copy)]
struct Ph {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

/// An executable PT_LOAD of 16 code bytes at 1 MiB, right after the headers.
fn text() -> Ph {
    Ph {
        p_type: 1,
        flags: 5,
        offset: 64 + 56,
        vaddr: MIB,
        filesz: 16,
        memsz: 16,
    }
}

/// An ELF64 x86-64 ET_EXEC with `phs` after the header and 16 bytes of
/// `jmp .`-style filler after them.
fn elf(entry: u64, phs: &[Ph]) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[0..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little-endian
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    for ph in phs {
        let mut h = [0u8; 56];
        h[0..4].copy_from_slice(&ph.p_type.to_le_bytes());
        h[4..8].copy_from_slice(&ph.flags.to_le_bytes());
        h[8..16].copy_from_slice(&ph.offset.to_le_bytes());
        h[16..24].copy_from_slice(&ph.vaddr.to_le_bytes());
        h[24..32].copy_from_slice(&ph.vaddr.to_le_bytes());
        h[32..40].copy_from_slice(&ph.filesz.to_le_bytes());
        h[40..48].copy_from_slice(&ph.memsz.to_le_bytes());
        h[48..56].copy_from_slice(&0x1000u64.to_le_bytes());
        b.extend_from_slice(&h);
    }
    b.extend_from_slice(&[0xEB, 0xFE].repeat(8));
    b
}

fn good() -> Vec<u8> {
    elf(MIB, &[text()])
}

fn with(mut bytes: Vec<u8>, at: usize, value: &[u8]) -> Vec<u8> {
    bytes[at..at + value.len()].copy_from_slice(value);
    bytes
}

fn one(ph: Ph) -> Vec<u8> {
    elf(ph.vaddr, &[ph])
}

/// (file name, bytes, exit code, words the error line must contain)
fn corpus() -> Vec<(&'static str, Vec<u8>, i32, &'static str)> {
    let t = text();
    vec![
        ("empty.elf", vec![], 65, "empty or truncated: 0 bytes"),
        (
            "truncated-header.elf",
            good()[..40].to_vec(),
            65,
            "truncated: 40 bytes",
        ),
        (
            "not-elf.elf",
            with(good(), 0, b"MZ\x90\x00"),
            65,
            "not an ELF file",
        ),
        (
            "elf32.elf",
            with(good(), 4, &[1]),
            65,
            "not a 64-bit ELF (EI_CLASS = 1)",
        ),
        (
            "big-endian.elf",
            with(good(), 5, &[2]),
            65,
            "not little-endian",
        ),
        (
            "arm64.elf",
            with(good(), 18, &183u16.to_le_bytes()),
            65,
            "machine 183, not x86_64",
        ),
        (
            "pie.elf",
            with(good(), 16, &3u16.to_le_bytes()),
            65,
            "ET_EXEC",
        ),
        (
            "phentsize.elf",
            with(good(), 54, &32u16.to_le_bytes()),
            65,
            "e_phentsize 32",
        ),
        (
            "phnum-zero.elf",
            with(good(), 56, &0u16.to_le_bytes()),
            65,
            "e_phnum 0",
        ),
        (
            "phnum-xnum.elf",
            with(good(), 56, &0xFFFFu16.to_le_bytes()),
            65,
            "e_phnum 65535",
        ),
        (
            "phnum-past-eof.elf",
            with(good(), 56, &500u16.to_le_bytes()),
            65,
            "program header table",
        ),
        (
            "phoff-wraps.elf",
            with(good(), 32, &u64::MAX.to_le_bytes()),
            65,
            "program header table",
        ),
        (
            "segment-past-eof.elf",
            one(Ph {
                filesz: 4096,
                memsz: 4096,
                ..t
            }),
            65,
            "runs past the end",
        ),
        (
            "offset-wraps.elf",
            one(Ph {
                offset: u64::MAX - 4,
                ..t
            }),
            65,
            "runs past the end",
        ),
        (
            "filesz-over-memsz.elf",
            one(Ph { memsz: 8, ..t }),
            65,
            "exceeds p_memsz",
        ),
        (
            "address-overflows.elf",
            elf(
                MIB,
                &[
                    t,
                    Ph {
                        vaddr: u64::MAX - 0xF,
                        filesz: 0,
                        memsz: 0x100,
                        flags: 6,
                        ..t
                    },
                ],
            ),
            65,
            "overflows",
        ),
        (
            "unmapped-address.elf",
            one(Ph {
                vaddr: 0x10_0000_0000,
                ..t
            }),
            65,
            "neither identity-mapped",
        ),
        (
            "over-framebuffer.elf",
            elf(
                MIB,
                &[
                    t,
                    Ph {
                        vaddr: 0xC000_0000,
                        filesz: 0,
                        memsz: 0x1000,
                        flags: 6,
                        ..t
                    },
                ],
            ),
            65,
            "overlaps the framebuffer window or MMIO",
        ),
        (
            "over-lapic.elf",
            elf(
                MIB,
                &[
                    t,
                    Ph {
                        vaddr: 0xFEE0_0000,
                        filesz: 0,
                        memsz: 0x10,
                        flags: 6,
                        ..t
                    },
                ],
            ),
            65,
            "overlaps the framebuffer window or MMIO",
        ),
        (
            "beyond-ram.elf",
            elf(
                MIB,
                &[
                    t,
                    Ph {
                        vaddr: 600 * MIB,
                        filesz: 0,
                        memsz: 0x1000,
                        flags: 6,
                        ..t
                    },
                ],
            ),
            65,
            "ends beyond RAM",
        ),
        (
            "overlapping.elf",
            elf(
                MIB,
                &[
                    t,
                    Ph {
                        vaddr: MIB + 8,
                        filesz: 0,
                        memsz: 0x10,
                        flags: 6,
                        ..t
                    },
                ],
            ),
            65,
            "overlap in physical memory",
        ),
        (
            "entry-outside.elf",
            elf(2 * MIB, &[t]),
            65,
            "entry point 0x200000",
        ),
        (
            "entry-not-executable.elf",
            one(Ph { flags: 6, ..t }),
            65,
            "not inside an executable",
        ),
        ("no-load.elf", one(Ph { p_type: 4, ..t }), 65, "no PT_LOAD"),
        // Covering all of RAM leaves no room for the boot structures.
        (
            "fills-ram.elf",
            elf(
                MIB,
                &[
                    t,
                    Ph {
                        vaddr: 2 * MIB,
                        filesz: 0,
                        memsz: 510 * MIB,
                        flags: 6,
                        ..t
                    },
                ],
            ),
            78,
            "no room for the primordial arena",
        ),
    ]
}

#[test]
fn every_malformed_kernel_gets_a_one_line_error_and_no_files() {
    let dir = TempDir::new();
    let corpus = corpus();
    for (name, bytes, _, _) in &corpus {
        std::fs::write(dir.path(name), bytes).unwrap();
    }
    let before = dir.files();
    for (name, _, code, mentions) in &corpus {
        let out = seraph_v(&dir, &[dir.path(name).to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("kernel") || *code != 65, "{name}: {err}");
        assert_one_line_error(&dir, &out, *code, mentions, &before);
    }
}

#[test]
fn the_good_kernel_of_the_corpus_is_accepted() {
    // The defects above are the only thing wrong with those files: the base
    // kernel parses (it would spin forever, so it is stopped by --timeout).
    let dir = TempDir::new();
    std::fs::write(dir.path("good.elf"), good()).unwrap();
    if !common::kvm_available("malformed_good_kernel") {
        return;
    }
    let out = seraph_v(
        &dir,
        &[
            dir.path("good.elf").to_str().unwrap(),
            "--no-screenshot",
            "--timeout",
            "200ms",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(
        err.contains("timeout after 0.200s, guest at rip 0x10000"),
        "{err}"
    );
}

#[test]
fn unreadable_kernels_get_66() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.path("a-directory")).unwrap();
    std::os::unix::fs::symlink(dir.path("nowhere"), dir.path("dangling.elf")).unwrap();
    let before = dir.files();
    let cases = [
        (dir.path("a-directory"), "is a directory"),
        (dir.path("dangling.elf"), "No such file or directory"),
        (dir.path("missing.elf"), "cannot read kernel"),
        // Readable by name, but reading fails (the process's own memory at 0).
        ("/proc/self/mem".into(), "cannot read kernel /proc/self/mem"),
    ];
    for (path, mentions) in cases {
        let out = seraph_v(&dir, &[path.to_str().unwrap()]);
        assert_one_line_error(&dir, &out, 66, mentions, &before);
    }
    // Without read permission (root reads anyway: then this case is moot).
    let locked = dir.path("locked.elf");
    std::fs::write(&locked, good()).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_err() {
        let before = dir.files();
        let out = seraph_v(&dir, &[locked.to_str().unwrap()]);
        assert_one_line_error(&dir, &out, 66, "Permission denied", &before);
    }
}

#[test]
fn bad_sizes_geometries_paths_and_conflicts_get_one_line_errors() {
    let dir = TempDir::new();
    let before = dir.files();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--memory", "12X"], 2, "unknown unit"),
        (&["--memory", ""], 2, "expected a number"),
        (&["--memory", "-5M"], 2, "-5"),
        (&["--memory", "1.5G"], 2, "unknown unit"),
        (&["--memory", "99999999999999999999G"], 2, "too large"),
        (&["--memory", "17179869184G"], 2, "too large"),
        (&["--memory", "0"], 78, "memory"),
        (&["--memory", "2M"], 78, "memory"),
        (&["--memory", "513M"], 78, "2 MiB"),
        (&["--memory", "4G"], 78, "memory"),
        (&["--memory", "1024G"], 78, "memory"),
        (&["--framebuffer", "5000x5000"], 78, "framebuffer"),
        (&["--framebuffer", "4097x1024"], 78, "framebuffer"),
        (&["--framebuffer", "0x768"], 2, "at least 1"),
        (&["--framebuffer", "1024"], 2, "WIDTHxHEIGHT"),
        (&["--framebuffer", "99999999999x2"], 2, "not a number"),
        (&["--timeout", "0s"], 2, "more than 0"),
        (&["--timeout", "soon"], 2, "duration"),
        (&["--idle-hlts", "0"], 2, "idle-hlts"),
        (&["--serial", "tcp:1"], 2, "stdio, file:PATH or none"),
        (&["--serial", "file:"], 2, "needs a path"),
        (
            &["--screenshot", "x.bmp", "--no-screenshot"],
            2,
            "cannot be used with",
        ),
        (&["--no-such-option"], 2, "--no-such-option"),
        (&["a.elf", "b.elf"], 2, "b.elf"),
        (
            &["--screenshot", "/nonexistent-dir/shot.bmp"],
            73,
            "/nonexistent-dir/shot.bmp",
        ),
        (&["--screenshot", "/proc/shot.bmp"], 73, "/proc/shot.bmp"),
    ];
    for (args, code, mentions) in cases {
        let out = seraph_v(&dir, args);
        assert_one_line_error(&dir, &out, *code, mentions, &before);
    }
}

#[test]
fn a_memory_size_too_small_for_the_kernel_gets_78() {
    let dir = TempDir::new();
    // A 48 MiB bss at 1 MiB fits 64 MiB of RAM, but the boot structures
    // (16 MiB arena and more) do not fit beside it.
    let big = elf(
        MIB,
        &[
            text(),
            Ph {
                vaddr: 2 * MIB,
                offset: 0,
                filesz: 0,
                memsz: 48 * MIB,
                flags: 6,
                p_type: 1,
            },
        ],
    );
    std::fs::write(dir.path("big.elf"), big).unwrap();
    let before = dir.files();
    let out = seraph_v(
        &dir,
        &["--memory", "64M", dir.path("big.elf").to_str().unwrap()],
    );
    assert_one_line_error(&dir, &out, 78, "raise --memory to at least", &before);
    // A kernel file larger than guest RAM is refused before it is read.
    let huge = dir.path("huge.elf");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(65 * MIB).unwrap();
    let before = dir.files();
    let out = seraph_v(&dir, &["--memory", "64M", huge.to_str().unwrap()]);
    assert_one_line_error(&dir, &out, 65, "raise --memory", &before);
    // A device with no length (endless zeros) is refused from its first
    // bytes (and would be read only up to RAM + 1 bytes), instead of
    // exhausting host memory.
    let out = seraph_v(&dir, &["--memory", "64M", "/dev/zero"]);
    assert_one_line_error(&dir, &out, 65, "bad magic", &before);
}
