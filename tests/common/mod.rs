//! Shared helpers for the integration tests: the KVM gate, booting a guest
//! with a quiet configuration, and reading framebuffer pixels.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use seraph_v::hypervisor::kvm::KvmHypervisor;
use seraph_v::vmm::{Machine, MachineConfig, RunReport};

/// Opens /dev/kvm for a test (see `KvmHypervisor::for_test`: skipped with
/// `SERAPH_V_SKIP_KVM=1`, a clear failure without KVM otherwise).
pub fn kvm_or_skip(test: &str) -> Option<KvmHypervisor> {
    KvmHypervisor::for_test(test)
}

/// Boots `kernel` with `config` and runs it to the end.
pub fn boot(
    kvm: &KvmHypervisor,
    config: MachineConfig,
    kernel: &[u8],
) -> (Machine<KvmHypervisor>, RunReport) {
    let mut machine = Machine::new(kvm, config, kernel).expect("machine builds");
    let report = machine.run().expect("run completes");
    (machine, report)
}

/// A quiet configuration that still ends hung guests after a while.
pub fn quiet() -> MachineConfig {
    MachineConfig {
        timeout: Some(std::time::Duration::from_secs(60)),
        ..MachineConfig::quiet()
    }
}

/// The framebuffer pixel at (x, y) as a 0x00RRGGBB word (BGRA8 in memory).
pub fn pixel(pixels: &[u8], stride: u32, x: u32, y: u32) -> u32 {
    let at = (y * stride + x * 4) as usize;
    u32::from_le_bytes(pixels[at..at + 4].try_into().unwrap()) & 0x00ff_ffff
}

/// Checks the test kernels' picture at a spread of points on a W x H screen.
pub fn assert_test_picture(pixels: &[u8], width: u32, height: u32) {
    use seraph_guests::expected::test_picture_pixel;
    let stride = width * 4;
    let mut points = vec![
        (0, 0),
        (255, 31),
        (10, 32),
        (100, 70),
        (200, 100),
        (255, 127),
        (256, 0),
        (0, 128),
        (width / 2, height / 2),
        (width / 2 - 32, height / 2 - 32),
        (width / 2 + 31, height / 2 + 31),
        (width / 2 + 32, height / 2),
        (width - 1, height - 1),
    ];
    points.retain(|&(x, y)| x < width && y < height);
    for (x, y) in points {
        let want = test_picture_pixel(x, y, width, height).unwrap();
        assert_eq!(
            pixel(pixels, stride, x, y),
            want,
            "pixel ({x}, {y}) of the test picture"
        );
    }
}

/// Text of captured output, lossy.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
