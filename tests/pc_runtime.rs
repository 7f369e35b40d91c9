//! The PC guest runtime (crates/seraph-guests/guests/pc_entry.S, pc.h,
//! pc.ld) booted through the Seraph protocol on /dev/kvm: its entry, COM1
//! output, IDT stubs, PCI scan and `pc_exit` all work under Seraph-V.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use seraph_v::vmm::RunOutcome;

#[test]
fn pc_selftest_boots_through_the_seraph_protocol_and_exits_0() {
    let Some(kvm) = common::kvm_or_skip("pc_selftest_boots") else {
        return;
    };
    let (_machine, report) = common::boot(&kvm, common::quiet(), seraph_guests::PC_SELFTEST);
    let serial = common::text(&report.serial);
    assert!(
        serial.starts_with("pc-selftest: hello (seraph)\npc-selftest: boot info ok\n"),
        "serial: {serial}"
    );
    assert!(
        serial.contains("pc-selftest: interrupt ok\n"),
        "serial: {serial}"
    );
    // Without PCI the scan sees all-ones; with PCI it must find the i440FX host bridge.
    assert!(
        serial.contains("pc-selftest: no pci\n")
            || serial.contains("pc-selftest: host bridge 8086:1237 at 00:00.0\n"),
        "serial: {serial}"
    );
    assert!(
        serial.ends_with(seraph_guests::PC_SELFTEST_OK),
        "serial: {serial}"
    );
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 0 });
}
