//! Platform v2 on /dev/kvm: PCI enumeration, BAR sizing and moving, INTx
//! through the PIC; typed input into COM1 waking a halted guest; timer
//! deadlines that can never be delivered leave the guest idle at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use seraph_v::vmm::io::StdinOptions;
use seraph_v::vmm::{IdleKind, Machine, MachineConfig, RunOutcome};

#[test]
fn pci_test_device_is_enumerated_moved_and_interrupts() {
    let Some(kvm) = common::kvm_or_skip("pci_testdev") else {
        return;
    };
    let config = MachineConfig {
        pci_testdev: true,
        ..common::quiet()
    };
    let (_m, report) = common::boot(&kvm, config, seraph_guests::PCI_TESTDEV);
    let serial = common::text(&report.serial);
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "serial output:\n{serial}"
    );
    assert!(
        serial.contains("pci-testdev: 00:0x0000000000000000.0 0x0000000012378086"),
        "{serial}"
    );
    assert!(serial.contains("pci-testdev: bar moved"), "{serial}");
    assert!(serial.ends_with(seraph_guests::PCI_TESTDEV_OK), "{serial}");
    assert_eq!(report.stats.interrupts.get(&0x2b), Some(&1), "IRQ11 once");
    // The guest's try to put the BAR over RAM was refused, and --stats says so.
    assert!(report.stats.refused_bars >= 1, "{}", report.stats);
    assert!(report.stats.to_string().contains("PCI BAR placements"));
}

#[test]
fn without_the_device_the_pci_guest_fails_cleanly() {
    let Some(kvm) = common::kvm_or_skip("pci_testdev_absent") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::PCI_TESTDEV);
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 1 });
    assert!(common::text(&report.serial).contains("FAILED test device not on bus 0"));
}

/// CPU time the calling thread has used so far (user + system): the vCPU
/// runs on the thread that calls `Machine::run`, and other tests running
/// in parallel do not count.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the command name (which may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // utime and stime are in USER_HZ ticks: 100 per second on Linux x86_64.
    Duration::from_millis(ticks * 10)
}

#[test]
fn typed_bytes_wake_the_halted_guest_through_com1_interrupts() {
    let Some(kvm) = common::kvm_or_skip("serial_echo") else {
        return;
    };
    let mut machine = Machine::new(&kvm, common::quiet(), seraph_guests::SERIAL_ECHO).unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let input = machine
        .attach_serial_input(Box::new(reader), StdinOptions::default())
        .unwrap();
    let typist = std::thread::spawn(move || {
        // Pauses between keys: the guest sleeps in HLT meanwhile.
        for key in [b"a", b"b", b"c", b"q"] {
            std::thread::sleep(Duration::from_millis(300));
            writer.write_all(key).unwrap();
        }
        writer
    });
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let report = machine.run().unwrap();
    let wall = started.elapsed();
    let cpu = thread_cpu() - cpu_before;
    let _writer = typist.join().unwrap();
    let serial = common::text(&report.serial);
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "{serial}"
    );
    assert!(
        serial.starts_with(seraph_guests::SERIAL_ECHO_READY),
        "{serial}"
    );
    for c in ["a", "b", "c", "q"] {
        assert!(serial.contains(&format!("echo: {c}\n")), "{serial}");
    }
    assert!(serial.contains("serial-echo: bye after"), "{serial}");
    assert_eq!(input.bytes(), 4);
    assert!(report.stats.interrupts.get(&0x24).copied().unwrap_or(0) >= 4);
    // The guest waited about 1.2 s for keys; a halted guest costs ~0 % CPU
    // (a busy-waiting vCPU thread would use about as much CPU as wall time).
    assert!(wall >= Duration::from_millis(1100), "{wall:?}");
    assert!(
        cpu < wall / 3,
        "the VMM used {cpu:?} of CPU in {wall:?} while the guest waited"
    );
}

#[test]
fn a_halted_guest_with_open_input_but_masked_irq_is_idle_at_once() {
    let Some(kvm) = common::kvm_or_skip("serial_input_masked") else {
        return;
    };
    // IDLE_LOOP halts with IF=1 and never programs the PIC: typed bytes
    // could never reach it, so an open stdin does not keep the run alive.
    let mut machine = Machine::new(&kvm, common::quiet(), seraph_guests::IDLE_LOOP).unwrap();
    let (reader, _writer) = std::io::pipe().unwrap();
    machine
        .attach_serial_input(Box::new(reader), StdinOptions::default())
        .unwrap();
    let report = machine.run().unwrap();
    assert!(
        matches!(
            report.outcome,
            RunOutcome::Idle {
                kind: IdleKind::NothingCanWake,
                ..
            } | RunOutcome::Idle {
                kind: IdleKind::HltCount(_),
                ..
            }
        ),
        "{}",
        report.outcome
    );
}

fn idle_nothing_can_wake(report: &seraph_v::vmm::RunReport) -> bool {
    matches!(
        report.outcome,
        RunOutcome::Idle {
            kind: IdleKind::NothingCanWake,
            ..
        }
    )
}

#[test]
fn a_lapic_timer_with_an_illegal_vector_never_kicks_and_never_wakes() {
    let Some(kvm) = common::kvm_or_skip("undeliverable_lapic") else {
        return;
    };
    let config = MachineConfig {
        timing: true,
        ..common::quiet()
    };
    let (_m, report) = common::boot(&kvm, config, seraph_guests::UNDELIVERABLE_LAPIC_VECTOR);
    assert!(idle_nothing_can_wake(&report), "{}", report.outcome);
    let kicks = report
        .stats
        .exits
        .get(&seraph_v::hypervisor::ExitKind::Interrupted)
        .copied()
        .unwrap_or(0);
    // Before the fix every expiry kicked the vCPU (~100k in this loop).
    assert!(
        kicks < 10,
        "{kicks} kicks for a timer that delivers nothing"
    );
}

#[test]
fn a_pit_behind_an_uninitialised_pic_leaves_the_guest_idle() {
    let Some(kvm) = common::kvm_or_skip("undeliverable_pit") else {
        return;
    };
    let (_m, report) = common::boot(
        &kvm,
        common::quiet(),
        seraph_guests::UNDELIVERABLE_PIT_NO_PIC,
    );
    assert!(idle_nothing_can_wake(&report), "{}", report.outcome);
    let halts = report
        .stats
        .exits
        .get(&seraph_v::hypervisor::ExitKind::Halt)
        .copied()
        .unwrap_or(0);
    assert_eq!(
        halts, 1,
        "one HLT, then idle: no wake-ups for a timer that cannot deliver"
    );
}

#[test]
fn irq0_never_eoied_blocks_the_pit_and_the_guest_is_idle() {
    let Some(kvm) = common::kvm_or_skip("undeliverable_no_eoi") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::UNDELIVERABLE_NO_EOI);
    assert!(idle_nothing_can_wake(&report), "{}", report.outcome);
    assert!(
        report.outcome.to_string().contains("vector 0x20"),
        "{}",
        report.outcome
    );
    assert_eq!(report.stats.interrupts.get(&0x20), Some(&1));
}

#[test]
fn cr8_and_the_lapic_tpr_are_one_register() {
    let Some(kvm) = common::kvm_or_skip("cr8_tpr") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::CR8_TPR);
    let serial = common::text(&report.serial);
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "{serial}"
    );
    assert!(serial.contains("undeliverable: tpr ok"), "{serial}");
    assert!(serial.contains("timer in with cr8 0"), "{serial}");
}
