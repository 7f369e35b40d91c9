//! The reference implementation proves the driver: the NVMe driver guest
//! (seraph_guests::NVME_DRIVER, the same ELF seraph-v boots) runs as a PVH
//! kernel on QEMU's `-device nvme` and must pass, and the image must hold
//! what it wrote. Needs qemu-system-x86_64 (a missing QEMU fails the test)
//! and /dev/kvm (SERAPH_V_SKIP_KVM=1 skips, saying so).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE_SIZE: usize = 8 << 20;

fn kvm_or_skip(test: &str) -> bool {
    if Path::new("/dev/kvm").exists() {
        return true;
    }
    if std::env::var("SERAPH_V_SKIP_KVM").as_deref() == Ok("1") {
        eprintln!("{test}: SKIPPED: no /dev/kvm and SERAPH_V_SKIP_KVM=1");
        return false;
    }
    panic!("{test} needs /dev/kvm (set SERAPH_V_SKIP_KVM=1 to skip)");
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("seraph-nvme-qemu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Boots `elf` on QEMU with `image` as an NVMe namespace; returns
/// (exit code, serial output).
fn qemu(dir: &Path, elf: &[u8], image: &Path, device_opts: &str) -> (i32, String) {
    let kernel = dir.join("guest.elf");
    std::fs::write(&kernel, elf).unwrap();
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-M",
            "pc",
            "-accel",
            "kvm",
            "-m",
            "256",
            "-nographic",
            "-no-reboot",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .arg("-drive")
        .arg(format!("file={},if=none,id=d0,format=raw", image.display()))
        .arg("-device")
        .arg(format!("nvme,drive=d0,serial=atlas{device_opts}"))
        .arg("-kernel")
        .arg(&kernel)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("qemu-system-x86_64 must be installed for this test: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("QEMU did not finish in 60 s: {}", reader.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

fn image_with_pattern(dir: &Path) -> PathBuf {
    let path = dir.join("disk.img");
    let mut bytes = vec![0u8; IMAGE_SIZE];
    bytes[..18].copy_from_slice(seraph_guests::NVME_HOST_PATTERN);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The 64 KiB the driver writes at LBA 64.
fn written_pattern() -> Vec<u8> {
    (0..64 * 1024usize)
        .map(|i| ((i / 512) * 7 + (i % 251)) as u8)
        .collect()
}

fn assert_passed(code: i32, serial: &str) {
    assert_eq!(code, 1, "isa-debug-exit (0 << 1) | 1; serial:\n{serial}");
    assert!(
        serial.contains("nvme-driver: host pattern ok\n"),
        "{serial}"
    );
    assert!(
        serial.contains("nvme-driver: out-of-range status ok\n"),
        "{serial}"
    );
    assert!(serial.ends_with(seraph_guests::NVME_DRIVER_OK), "{serial}");
}

#[test]
fn the_driver_passes_on_qemu_nvme_and_its_writes_persist_across_boots() {
    if !kvm_or_skip("the_driver_passes_on_qemu_nvme") {
        return;
    }
    let dir = Scratch::new("persist");
    let image = image_with_pattern(&dir.0);
    let (code, serial) = qemu(&dir.0, seraph_guests::NVME_DRIVER, &image, "");
    assert_passed(code, &serial);
    assert!(serial.contains("blocks of 512 bytes\n"), "{serial}");
    assert!(serial.contains("across a chained PRP list\n"), "{serial}");
    assert!(serial.contains("nvme-driver: run 1\n"), "{serial}");
    // The host sees what the guest wrote and flushed.
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(bytes.len(), IMAGE_SIZE);
    assert_eq!(
        &bytes[64 * 512..64 * 512 + 64 * 1024],
        written_pattern().as_slice()
    );
    assert!(bytes[512..].starts_with(b"ATLAS-RUN-1\n"));
    // The next boot reads the counter the first one left.
    let (code, serial) = qemu(&dir.0, seraph_guests::NVME_DRIVER, &image, "");
    assert_passed(code, &serial);
    assert!(serial.contains("nvme-driver: run 2\n"), "{serial}");
}

#[test]
fn the_msix_driver_passes_on_qemu_nvme_with_4k_blocks() {
    if !kvm_or_skip("the_msix_driver_passes_on_qemu_nvme") {
        return;
    }
    let dir = Scratch::new("msix");
    let image = image_with_pattern(&dir.0);
    let (code, serial) = qemu(
        &dir.0,
        seraph_guests::NVME_DRIVER_MSIX,
        &image,
        ",logical_block_size=4096,physical_block_size=4096",
    );
    assert_passed(code, &serial);
    assert!(serial.contains("blocks of 4096 bytes\n"), "{serial}");
    assert!(
        serial.contains("nvme-driver: msi-x vectors 0 and 1 ok\n"),
        "{serial}"
    );
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(
        &bytes[64 * 4096..64 * 4096 + 64 * 1024],
        written_pattern().as_slice()
    );
}
