//! Booting the Seraph test kernels end to end on /dev/kvm: both link styles,
//! the demo kernel, and non-default memory and framebuffer sizes. Each test
//! checks what the guest did: serial text, PRINT text, the exit status, the
//! framebuffer pixels, and the exits the VMM counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use seraph_guests::expected as want;
use seraph_v::hypervisor::ExitKind;
use seraph_v::vmm::{MachineConfig, RunOutcome};

fn assert_kernel_passed(report: &seraph_v::vmm::RunReport) {
    let serial = common::text(&report.serial);
    assert!(
        serial.contains(want::TEST_KERNEL_SERIAL_HELLO),
        "serial: {serial}"
    );
    assert!(
        serial.ends_with(want::TEST_KERNEL_ALL_PASSED),
        "the kernel's checks failed; serial output:\n{serial}"
    );
    assert_eq!(common::text(&report.print), want::TEST_KERNEL_PRINT_HELLO);
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 0 });
    assert_eq!(report.exit_code(), 0);
    // PRINT hello, 2 x GET_TIME, 3 bad calls, EXIT: all through the doorbell.
    assert!(report.stats.exits[&ExitKind::Hypercall] >= 7);
    assert!(report.stats.device_exits["serial"] > 40);
}

#[test]
fn identity_linked_test_kernel_boots_and_passes_its_checks() {
    let Some(kvm) = common::kvm_or_skip("identity_linked_test_kernel_boots") else {
        return;
    };
    let (machine, report) =
        common::boot(&kvm, common::quiet(), seraph_guests::TEST_KERNEL_IDENTITY);
    assert_kernel_passed(&report);
    let plan = machine
        .boot_plan()
        .expect("a Seraph kernel has a boot plan");
    assert_eq!(plan.page_tables.pml4(), 0x1000, "default page-table place");
    common::assert_test_picture(&machine.framebuffer().unwrap(), 1024, 768);
}

#[test]
fn higher_half_test_kernel_boots_with_relocated_boot_structures() {
    let Some(kvm) = common::kvm_or_skip("higher_half_test_kernel_boots") else {
        return;
    };
    let (machine, report) = common::boot(
        &kvm,
        common::quiet(),
        seraph_guests::TEST_KERNEL_HIGHER_HALF,
    );
    assert_kernel_passed(&report);
    // The kernel's bytes sit at physical 0 upward, so the page tables had to move.
    assert_ne!(
        machine
            .boot_plan()
            .expect("a Seraph kernel has a boot plan")
            .page_tables
            .pml4(),
        0x1000
    );
    common::assert_test_picture(&machine.framebuffer().unwrap(), 1024, 768);
}

#[test]
fn demo_kernel_boots_with_its_banner() {
    let Some(kvm) = common::kvm_or_skip("demo_kernel_boots") else {
        return;
    };
    let (machine, report) = common::boot(&kvm, common::quiet(), seraph_guests::DEMO_KERNEL);
    assert!(common::text(&report.serial).starts_with(want::DEMO_BANNER));
    assert_kernel_passed(&report);
    // Not the test picture: a text screen (test_kernel.c, SERAPH_DEMO). The
    // header band, ink of the title's "S", the background, and the green
    // "all N checks passed" at the bottom.
    let pixels = machine.framebuffer().unwrap();
    for (x, y, want) in [
        (5, 5, 0x001c_2a3a),
        (38, 18, 0x00ff_c24a),
        (1000, 700, 0x0010_1820),
        (38, 712, 0x0060_e080),
    ] {
        assert_eq!(
            common::pixel(&pixels, 1024 * 4, x, y),
            want,
            "demo screen pixel ({x}, {y})"
        );
    }
}

#[test]
fn boot_info_follows_memory_and_framebuffer_options() {
    let Some(kvm) = common::kvm_or_skip("boot_info_follows_options") else {
        return;
    };
    let config = MachineConfig {
        memory_size: 128 << 20,
        framebuffer_width: 640,
        framebuffer_height: 480,
        ..common::quiet()
    };
    let (machine, report) = common::boot(&kvm, config, seraph_guests::TEST_KERNEL_HIGHER_HALF);
    assert_kernel_passed(&report);
    common::assert_test_picture(&machine.framebuffer().unwrap(), 640, 480);
}

#[test]
fn pre_mapped_heap_option_still_boots() {
    let Some(kvm) = common::kvm_or_skip("pre_mapped_heap_option") else {
        return;
    };
    let config = MachineConfig {
        map_heap: true,
        ..common::quiet()
    };
    let (_machine, report) = common::boot(&kvm, config, seraph_guests::TEST_KERNEL_IDENTITY);
    assert_kernel_passed(&report);
}
