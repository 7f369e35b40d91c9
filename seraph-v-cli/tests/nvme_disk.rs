//! `--disk`: the Atlas NVMe disk through the seraph-v binary. Data written
//! and flushed by one run is read by the next and found by the host; a
//! read-only disk refuses writes; MSI-X with 4 KiB blocks; bad images are
//! one-line errors; a second writer is refused; SIGKILL in the middle of a
//! write stream loses no flushed write; a hostile guest ends cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{
    TempDir, command, kvm_available, line_receiver, seraph_v, stderr, stdout, write_guest,
};

const IMAGE_SIZE: usize = 8 << 20;

fn image(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.path(name);
    let mut bytes = vec![0u8; IMAGE_SIZE];
    bytes[..18].copy_from_slice(seraph_guests::NVME_HOST_PATTERN);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn disk_arg(path: &Path, opts: &str) -> String {
    format!("{}{opts}", path.display())
}

/// Runs `elf` with `img` as its disk (`opts` appended to the path, e.g.
/// `,readonly`) and the `extra` arguments, without a screenshot.
fn run_disk(dir: &TempDir, img: &Path, opts: &str, elf: &Path, extra: &[&str]) -> Output {
    let disk = disk_arg(img, opts);
    let mut args = vec!["--no-screenshot"];
    args.extend_from_slice(extra);
    args.extend(["--disk", &disk, elf.to_str().unwrap()]);
    seraph_v(dir, &args)
}

/// The 64 KiB the driver guest writes at LBA 64.
fn written_pattern() -> Vec<u8> {
    (0..64 * 1024usize)
        .map(|i| ((i / 512) * 7 + (i % 251)) as u8)
        .collect()
}

fn assert_ok(out: &Output, ok_line: &str) -> String {
    let text = stdout(out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr: {}",
        stderr(out)
    );
    assert!(text.ends_with(ok_line), "{text}");
    assert_eq!(
        stderr(out).trim_end(),
        "seraph-v: guest exited with status 0"
    );
    text
}

#[test]
fn flushed_data_reaches_the_next_run_and_the_host() {
    if !kvm_available("flushed_data_reaches_the_next_run") {
        return;
    }
    let dir = TempDir::new();
    let img = image(&dir, "disk.img");
    let guest = write_guest(&dir, "nvme.elf", seraph_guests::NVME_DRIVER);
    let first = assert_ok(
        &run_disk(&dir, &img, "", &guest, &[]),
        seraph_guests::NVME_DRIVER_OK,
    );
    assert!(first.contains("nvme-driver: host pattern ok\n"), "{first}");
    assert!(first.contains("blocks of 512 bytes\n"), "{first}");
    assert!(first.contains("across a chained PRP list\n"), "{first}");
    assert!(
        first.contains("nvme-driver: out-of-range status ok\n"),
        "{first}"
    );
    assert!(first.contains("nvme-driver: run 1\n"), "{first}");
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(bytes.len(), IMAGE_SIZE, "the image never grows");
    assert_eq!(
        &bytes[64 * 512..64 * 512 + 64 * 1024],
        written_pattern().as_slice()
    );
    assert!(bytes[512..].starts_with(b"ATLAS-RUN-1\n"));
    let second = assert_ok(
        &run_disk(&dir, &img, "", &guest, &[]),
        seraph_guests::NVME_DRIVER_OK,
    );
    assert!(second.contains("nvme-driver: run 2\n"), "{second}");
    assert!(std::fs::read(&img).unwrap()[512..].starts_with(b"ATLAS-RUN-2\n"));
}

#[test]
fn a_readonly_disk_is_write_protected_and_untouched() {
    if !kvm_available("a_readonly_disk_is_write_protected") {
        return;
    }
    let dir = TempDir::new();
    let img = image(&dir, "ro.img");
    let before = std::fs::read(&img).unwrap();
    let guest = write_guest(&dir, "ro.elf", seraph_guests::NVME_DRIVER_READONLY);
    let out = run_disk(&dir, &img, ",readonly", &guest, &[]);
    let text = assert_ok(&out, seraph_guests::NVME_DRIVER_OK);
    assert!(
        text.contains("nvme-driver: read-only status ok\n"),
        "{text}"
    );
    assert!(
        std::fs::read(&img).unwrap() == before,
        "a read-only image is never written"
    );
}

#[test]
fn msix_vectors_with_4k_blocks() {
    if !kvm_available("msix_vectors_with_4k_blocks") {
        return;
    }
    let dir = TempDir::new();
    let img = image(&dir, "4k.img");
    let guest = write_guest(&dir, "msix.elf", seraph_guests::NVME_DRIVER_MSIX);
    let out = run_disk(&dir, &img, ",lba=4096", &guest, &[]);
    let text = assert_ok(&out, seraph_guests::NVME_DRIVER_OK);
    assert!(text.contains("blocks of 4096 bytes\n"), "{text}");
    assert!(
        text.contains("nvme-driver: msi-x vectors 0 and 1 ok\n"),
        "{text}"
    );
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(
        &bytes[64 * 4096..64 * 4096 + 64 * 1024],
        written_pattern().as_slice()
    );
}

#[test]
fn bad_disks_are_clear_errors() {
    let dir = TempDir::new();
    let guest = write_guest(&dir, "nvme.elf", seraph_guests::NVME_DRIVER);
    let g = guest.to_str().unwrap();
    let missing = dir.path("missing.img");
    let out = seraph_v(
        &dir,
        &["--no-screenshot", "--disk", missing.to_str().unwrap(), g],
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!missing.exists(), "never created");
    let odd = dir.path("odd.img");
    std::fs::write(&odd, vec![0u8; 4096 + 512]).unwrap();
    let out = seraph_v(
        &dir,
        &["--no-screenshot", "--disk", &disk_arg(&odd, ",lba=4096"), g],
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a non-zero multiple of the 4096-byte LBA size"));
    let out = seraph_v(&dir, &["--disk", &disk_arg(&odd, ",lba=1024"), g]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown --disk option `lba=1024`"),
        "{}",
        stderr(&out)
    );
}

/// Spawns the write-stream guest; returns the child and a line reader.
fn start_stream(
    dir: &TempDir,
    img: &Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let guest = write_guest(dir, "stream.elf", seraph_guests::NVME_STREAM);
    let disk = disk_arg(img, "");
    let mut child = command(
        dir,
        &[
            "--no-screenshot",
            "--timeout",
            "60s",
            "--disk",
            &disk,
            guest.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let lines = line_receiver(child.stdout.take().unwrap());
    (child, lines)
}

#[test]
fn sigkill_mid_stream_loses_no_flushed_write_and_a_second_writer_is_refused() {
    if !kvm_available("sigkill_mid_stream") {
        return;
    }
    let dir = TempDir::new();
    let img = image(&dir, "stream.img");
    let (mut child, lines) = start_stream(&dir, &img);
    let mut flushed = Vec::new();
    let mut second_checked = false;
    while flushed.len() < 200 {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the stream keeps printing");
        if let Some(i) = line.strip_prefix("nvme-stream: flushed ") {
            flushed.push(i.parse::<u64>().unwrap());
        }
        if !second_checked && !flushed.is_empty() {
            // While the first holds the image, a second writer is refused.
            let guest = write_guest(&dir, "nvme.elf", seraph_guests::NVME_DRIVER);
            let out = run_disk(&dir, &img, "", &guest, &[]);
            assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
            assert!(
                stderr(&out).contains("in use by another process"),
                "{}",
                stderr(&out)
            );
            second_checked = true;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // Lines already printed before the kill count too.
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
        if let Some(i) = line.strip_prefix("nvme-stream: flushed ") {
            flushed.push(i.parse::<u64>().unwrap());
        }
    }
    assert_eq!(flushed, (0..flushed.len() as u64).collect::<Vec<_>>());
    let bytes = std::fs::read(&img).unwrap();
    for &i in &flushed {
        let block = &bytes[(256 + i as usize) * 512..][..512];
        let head = format!("ATLAS-STREAM-{i:016x}");
        assert_eq!(
            &block[..29],
            head.as_bytes(),
            "flushed write {i} is in the image"
        );
        assert!(
            block[29..].iter().all(|b| *b == i as u8),
            "block {i} complete"
        );
    }
    // The lock went with the process: the image opens again.
    let guest = write_guest(&dir, "nvme.elf", seraph_guests::NVME_DRIVER);
    let out = run_disk(&dir, &img, "", &guest, &[]);
    assert_ok(&out, seraph_guests::NVME_DRIVER_OK);
}

#[test]
fn a_hostile_guest_gets_statuses_and_the_run_ends_cleanly() {
    if !kvm_available("a_hostile_nvme_guest") {
        return;
    }
    let dir = TempDir::new();
    let img = image(&dir, "hostile.img");
    let guest = write_guest(&dir, "hostile.elf", seraph_guests::NVME_HOSTILE);
    let out = run_disk(&dir, &img, "", &guest, &["--timeout", "60s"]);
    let text = assert_ok(&out, seraph_guests::NVME_HOSTILE_OK);
    for line in [
        "nvme-hostile: bad queues refused\n",
        "nvme-hostile: bad doorbells ignored\n",
        "nvme-hostile: bad PRPs refused\n",
        "nvme-hostile: 65535 commands through 65536-entry queues\n",
        "nvme-hostile: a full CQ holds the rest back\n",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}
