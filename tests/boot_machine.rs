//! The standard boot protocols through `seraph_vmm::Machine` (what the CLI
//! runs): PVH ELFs (64- and 32-bit class) with a command line and a module,
//! the bzImage test kernel, the bench's QEMU image unchanged, and `--boot`
//! refusing what an image cannot do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use seraph_v::boot::BootProtocol;
use seraph_v::vmm::{Machine, MachineConfig, RunOutcome, VmmError};

fn config(cmdline: &str, initrd: Option<Vec<u8>>, boot: Option<BootProtocol>) -> MachineConfig {
    MachineConfig {
        cmdline: cmdline.to_owned(),
        initrd,
        boot,
        ..common::quiet()
    }
}

#[test]
fn pvh_kernels_boot_with_command_line_and_module() {
    let Some(kvm) = common::kvm_or_skip("machine_pvh") else {
        return;
    };
    for (name, elf) in [
        ("elf64", seraph_guests::PVH_CHECK),
        ("elf32", seraph_guests::PVH_CHECK_32),
    ] {
        // PVH_CHECK also has a Seraph entry, so it boots as Seraph unless
        // PVH is asked for; the 32-bit class has only the PVH note.
        let cfg = config(
            seraph_guests::PVH_CHECK_CMDLINE,
            Some(seraph_guests::test_initrd()),
            (name == "elf64").then_some(BootProtocol::Pvh),
        );
        let (machine, report) = common::boot(&kvm, cfg, elf);
        let serial = common::text(&report.serial);
        assert_eq!(
            report.outcome,
            RunOutcome::GuestExit { status: 0 },
            "{name}: {serial}"
        );
        assert!(
            serial.ends_with(seraph_guests::PVH_CHECK_OK),
            "{name}: {serial}"
        );
        assert_eq!(machine.loaded_kernel().protocol, BootProtocol::Pvh);
        assert!(machine.boot_plan().is_none());
    }
}

#[test]
fn the_bzimage_test_kernel_boots_through_the_linux_protocol() {
    let Some(kvm) = common::kvm_or_skip("machine_bzimage") else {
        return;
    };
    let cfg = config(
        seraph_guests::LINUX_CHECK_CMDLINE,
        Some(seraph_guests::test_initrd()),
        None,
    );
    let (machine, report) = common::boot(&kvm, cfg, seraph_guests::LINUX_CHECK_BZIMAGE);
    let serial = common::text(&report.serial);
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "{serial}"
    );
    assert!(serial.ends_with(seraph_guests::LINUX_CHECK_OK), "{serial}");
    assert_eq!(machine.loaded_kernel().protocol, BootProtocol::Linux);
}

#[test]
fn the_pc_runtime_guests_boot_as_seraph_or_forced_pvh() {
    let Some(kvm) = common::kvm_or_skip("machine_forced_pvh") else {
        return;
    };
    for boot in [None, Some(BootProtocol::Pvh)] {
        let (machine, report) =
            common::boot(&kvm, config("", None, boot), seraph_guests::PC_SELFTEST);
        let serial = common::text(&report.serial);
        assert_eq!(
            report.outcome,
            RunOutcome::GuestExit { status: 0 },
            "{serial}"
        );
        assert!(serial.ends_with(seraph_guests::PC_SELFTEST_OK), "{serial}");
        let want = boot.unwrap_or(BootProtocol::Seraph);
        assert_eq!(machine.loaded_kernel().protocol, want);
    }
}

#[test]
fn boot_requests_an_image_cannot_honour_are_one_line_errors() {
    let Some(kvm) = common::kvm_or_skip("machine_boot_errors") else {
        return;
    };
    let cases: [(MachineConfig, &[u8], i32); 3] = [
        (
            config("", None, Some(BootProtocol::Linux)),
            seraph_guests::EXIT_STATUS,
            65,
        ),
        (
            config("root=/dev/x", None, None),
            seraph_guests::EXIT_STATUS,
            78,
        ),
        (
            config("", None, Some(BootProtocol::Pvh)),
            seraph_guests::EXIT_STATUS,
            65,
        ),
    ];
    for (cfg, kernel, code) in cases {
        let err = Machine::new(&kvm, cfg, kernel).expect_err("refused");
        assert_eq!(err.exit_code(), code, "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
        assert!(
            matches!(err, VmmError::Boot(_) | VmmError::BootConfig(_)),
            "{err:?}"
        );
    }
}
