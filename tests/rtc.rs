//! The CMOS RTC (crates/seraph-rtc) wired into the machine at ports
//! 0x70/0x71 and IRQ8: a guest reads the date in BCD, binary and 12-hour
//! modes and compares it with GET_TIME; another takes periodic interrupts
//! through the slave 8259 (issue #12).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use seraph_v::vmm::{MachineConfig, RunOutcome};

#[test]
fn the_rtc_date_agrees_with_get_time_in_every_mode() {
    let Some(kvm) = common::kvm_or_skip("rtc_date") else {
        return;
    };
    let (_machine, report) = common::boot(&kvm, common::quiet(), seraph_guests::RTC_DATE);
    let serial = common::text(&report.serial);
    assert!(serial.contains("rtc-date: uip ok\n"), "serial: {serial}");
    assert!(
        serial.ends_with(seraph_guests::RTC_DATE_OK),
        "serial: {serial}"
    );
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "serial: {serial}"
    );
    assert!(report.stats.device_exits.get("rtc").copied().unwrap_or(0) > 20);
}

#[test]
fn periodic_rtc_interrupts_arrive_on_irq8() {
    let Some(kvm) = common::kvm_or_skip("rtc_periodic") else {
        return;
    };
    let (_machine, report) = common::boot(&kvm, common::quiet(), seraph_guests::RTC_PERIODIC);
    let serial = common::text(&report.serial);
    assert!(
        serial.ends_with(seraph_guests::RTC_PERIODIC_OK),
        "serial: {serial}"
    );
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "serial: {serial}"
    );
    // 1 + 64 + 2 + 4 interrupts at vector 0x28 (slave base 0x28 + 0).
    assert_eq!(report.stats.interrupts.get(&0x28), Some(&71));
}

#[test]
fn without_the_rtc_its_ports_are_unhandled() {
    let Some(kvm) = common::kvm_or_skip("rtc_off") else {
        return;
    };
    let config = MachineConfig {
        rtc: false,
        ..common::quiet()
    };
    let (_machine, report) = common::boot(&kvm, config, seraph_guests::RTC_DATE);
    // Unanswered reads are all-ones: UIP never falls, step 1 fails.
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 1 });
    assert!(report.stats.unhandled.get("pio").copied().unwrap_or(0) > 0);
}
