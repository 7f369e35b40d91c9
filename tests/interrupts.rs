//! Timer interrupts really delivered on /dev/kvm: the timer kernel runs a
//! real Seraph OS boot's PIT/LAPIC sequence and counts the ticks it gets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use seraph_guests::expected as want;
use seraph_v::vmm::{IdleKind, RunOutcome};

#[test]
fn pit_wait_lapic_calibration_periodic_timer_and_pic_irq0_all_work() {
    let Some(kvm) = common::kvm_or_skip("timer_kernel") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::TIMER_KERNEL);
    let serial = common::text(&report.serial);
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "serial:\n{serial}"
    );
    assert!(serial.contains(" ticks in 10 ms\n"), "{serial}");
    // IA32_APIC_BASE comes from the LAPIC model; the reserved-bit write and
    // the unknown MSR were refused with #GP and counted.
    assert!(
        serial.contains("msr: IA32_APIC_BASE 0x00000000fee00900\n"),
        "{serial}"
    );
    assert_eq!(report.stats.unhandled["msr"], 2);
    // An interrupt raised by a device *read* (a reserved LAPIC register)
    // reached a guest that then spun without exits.
    assert!(
        serial.contains("lapic: error interrupt at vector 0x41\n"),
        "{serial}"
    );
    assert_eq!(report.stats.interrupts[&0x41], 1);
    assert!(
        serial.contains("lapic: 10 periodic ticks at vector 0x20\n"),
        "{serial}"
    );
    assert!(
        serial.contains("pic: 10 PIT ticks on IRQ0 at vector 0x30\n"),
        "{serial}"
    );
    assert!(serial.ends_with(want::TIMER_ALL_PASSED), "{serial}");
    let delivered = &report.stats.interrupts;
    assert!(delivered[&want::TIMER_VECTOR] >= 2 * want::TIMER_TICKS);
    assert!(delivered[&want::PIC_IRQ0_VECTOR] >= want::TIMER_TICKS);
    // The calibration read the PIT through the read-back command many times.
    assert!(report.stats.device_exits["pit"] > 10);
    assert!(report.stats.device_exits["lapic"] >= 10, "EOIs and setup");
}

#[test]
fn a_seraph_style_idle_loop_receives_timer_interrupts_and_ends_idle() {
    let Some(kvm) = common::kvm_or_skip("seraph_idle") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::SERAPH_IDLE_KERNEL);
    assert_eq!(common::text(&report.print), want::SERAPH_IDLE_PRINT);
    let RunOutcome::Idle {
        kind, last_vector, ..
    } = report.outcome
    else {
        panic!("expected idle, got {}", report.outcome);
    };
    assert_eq!(kind, IdleKind::HltCount(100));
    assert_eq!(last_vector, Some(want::TIMER_VECTOR));
    // One HLT per tick: the idle loop was woken by the timer again and again.
    assert!(report.stats.interrupts[&want::TIMER_VECTOR] >= 90);
    assert!(
        report
            .outcome
            .to_string()
            .contains("last interrupt delivered: vector 0x20")
    );
}
