//! Hostile guests on /dev/kvm: each case is a tiny guest doing something a
//! broken kernel does, with the outcome, the report line, the exit code and
//! the counters checked, and the VMM's memory checked to stay bounded.
//! docs/robustness.md lists what each case gets.
//!
//! The tests in this file run one at a time (a lock), so the resident-set
//! measurements of one are not disturbed by another's guest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use seraph_v::hypervisor::kvm::KvmHypervisor;
use seraph_v::vmm::hypercall::{EXIT, PRINT};
use seraph_v::vmm::{MachineConfig, RunOutcome, RunReport, StopReason, exit_code};

/// Serializes the tests of this file.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resident set size of this process in bytes (Linux /proc/self/statm).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// How much the VMM may grow over a whole hostile run, guest RAM the guest
/// touched included (these guests touch well under 1 MiB; the boot plan
/// zeroes the 16 MiB arena).
const RSS_BOUND: u64 = 48 << 20;

/// Boots `kernel` with `config`, runs it to the end, drops the machine and
/// checks that the process did not grow by more than [`RSS_BOUND`] and that
/// the kept output stayed within the capture limit.
fn run_bounded(kvm: &KvmHypervisor, config: MachineConfig, kernel: &[u8]) -> RunReport {
    let limit = config.capture_limit;
    let before = rss_bytes();
    let (machine, report) = common::boot(kvm, config, kernel);
    drop(machine);
    let after = rss_bytes();
    assert!(
        after.saturating_sub(before) < RSS_BOUND,
        "VMM grew by {} KiB during the run ({})",
        after.saturating_sub(before) >> 10,
        report.outcome
    );
    assert!(report.print.len() <= limit, "PRINT capture bounded");
    assert!(report.serial.len() <= limit, "serial capture bounded");
    report
}

/// Asserts the outcome's exit code and report line prefix.
fn assert_ends(report: &RunReport, code: i32, line: &str) {
    let text = report.outcome.to_string();
    assert_eq!(report.exit_code(), code, "{text}");
    assert!(text.starts_with(line), "`{line}` does not start `{text}`");
}

fn quiet_with_timeout(ms: u64) -> MachineConfig {
    MachineConfig {
        timeout: Some(Duration::from_millis(ms)),
        ..MachineConfig::quiet()
    }
}

#[test]
fn print_with_bad_pointers_and_lengths_gets_errors_and_prints_nothing() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_print") else {
        return;
    };
    let report = run_bounded(&kvm, common::quiet(), seraph_guests::HOSTILE_PRINT);
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 0 });
    assert_ends(&report, 0, "guest exited with status 0");
    // Only the final good PRINT produced output.
    assert_eq!(common::text(&report.print), seraph_guests::HOSTILE_PRINT_OK);
    assert_eq!(report.stats.hypercalls[&PRINT], 10);
    assert_eq!(report.stats.hypercalls[&EXIT], 1);
}

#[test]
fn unknown_hypercall_numbers_return_enosys_and_the_guest_goes_on() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_hypercall") else {
        return;
    };
    let report = run_bounded(&kvm, common::quiet(), seraph_guests::HOSTILE_HYPERCALL);
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 0 });
    assert_eq!(
        common::text(&report.print),
        seraph_guests::HOSTILE_HYPERCALL_OK
    );
    for nr in [3, 0xE4, 0x7FFF_FFFF, 1 << 32, (1 << 63) + 1, u64::MAX] {
        assert_eq!(report.stats.hypercalls.get(&nr), Some(&1), "number {nr:#x}");
    }
    assert_eq!(report.stats.hypercalls[&PRINT], 1);
}

#[test]
fn unbacked_mmio_and_unknown_ports_read_all_ones_and_drop_writes_counted() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_unbacked") else {
        return;
    };
    let report = run_bounded(&kvm, common::quiet(), seraph_guests::HOSTILE_UNBACKED);
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "status = number of the read that did not see all-ones"
    );
    assert_eq!(report.stats.unhandled.get("mmio"), Some(&6));
    assert_eq!(report.stats.unhandled.get("pio"), Some(&6));
}

#[test]
fn random_values_in_every_device_register_do_not_hurt_the_vmm() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_registers") else {
        return;
    };
    let report = run_bounded(&kvm, common::quiet(), seraph_guests::HOSTILE_REGISTERS);
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 0 });
    assert_ends(&report, 0, "guest exited with status 0");
    let devices = &report.stats.device_exits;
    // An access is a device's only if it lies wholly inside the device's
    // range; one that runs past the end (a 4-byte `out` at 0x21) is
    // unhandled: reads all-ones, writes dropped. Per round and direction,
    // COM1 takes 8 byte, 7 word and 5 dword accesses, the PIT 4 + 3 + 1,
    // each PIC chip 2 + 1 + 0, port 0x61 and port 0x80 1 + 0 + 0.
    let per_round = |n: u64| Some(n * 4 * 2);
    assert_eq!(devices.get("serial").copied(), per_round(8 + 7 + 5));
    assert_eq!(devices.get("pit").copied(), per_round(4 + 3 + 1));
    assert_eq!(devices.get("pic-master").copied(), per_round(2 + 1));
    assert_eq!(devices.get("pic-slave").copied(), per_round(2 + 1));
    assert_eq!(devices.get("port61").copied(), per_round(1));
    assert_eq!(devices.get("post").copied(), per_round(1));
    // 18 ports x 3 widths = 54 accesses a round and direction, 36 handled.
    assert_eq!(
        report.stats.unhandled.get("pio").copied(),
        per_round(54 - 36)
    );
    // Every 32-bit slot of the LAPIC page, written and read.
    assert_eq!(devices.get("lapic"), Some(&(2 * 1024)));
    assert_eq!(
        report.stats.interrupts.len(),
        0,
        "IF = 0: nothing delivered"
    );
}

#[test]
fn an_interrupt_storm_is_delivered_and_the_guest_exits() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_storm") else {
        return;
    };
    let report = run_bounded(&kvm, common::quiet(), seraph_guests::HOSTILE_STORM);
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 0 });
    let at_0x20 = report.stats.interrupts.get(&0x20).copied().unwrap_or(0);
    assert!(
        at_0x20 >= seraph_guests::HOSTILE_STORM_COUNT,
        "{at_0x20} interrupts"
    );
    assert_eq!(report.stats.interrupts.len(), 1, "only vector 0x20");
}

#[test]
fn an_endless_interrupt_storm_still_honours_the_timeout() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_storm_timeout") else {
        return;
    };
    let report = run_bounded(
        &kvm,
        quiet_with_timeout(500),
        seraph_guests::HOSTILE_STORM_FOREVER,
    );
    assert!(matches!(report.outcome, RunOutcome::Timeout { .. }));
    assert_ends(
        &report,
        exit_code::TIMEOUT,
        "timeout after 0.500s, guest at rip 0x",
    );
    assert!(report.stats.interrupts.get(&0x20).copied().unwrap_or(0) > 0);
    assert!(
        report.stats.total < Duration::from_secs(5),
        "stopped promptly: {:?}",
        report.stats.total
    );
}

#[test]
fn an_endless_interrupt_storm_still_honours_a_stop_request() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_storm_stop") else {
        return;
    };
    let mut machine =
        seraph_v::vmm::Machine::new(&kvm, common::quiet(), seraph_guests::HOSTILE_STORM_FOREVER)
            .unwrap();
    let stop = machine.stop_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stop.stop(StopReason::Interrupted);
    });
    let report = machine.run().unwrap();
    stopper.join().unwrap();
    assert_eq!(report.outcome, RunOutcome::Interrupted);
    assert_eq!(report.exit_code(), exit_code::INTERRUPTED);
    assert!(report.stats.total < Duration::from_secs(5));
}

#[test]
fn print_through_garbage_page_tables_gets_efault() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_pagewalk") else {
        return;
    };
    let report = run_bounded(&kvm, common::quiet(), seraph_guests::HOSTILE_PAGEWALK);
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "status = number of the PRINT that did not get -14"
    );
    assert_eq!(
        common::text(&report.print),
        seraph_guests::HOSTILE_PAGEWALK_OK
    );
    assert_eq!(report.stats.hypercalls[&PRINT], 5);
}

#[test]
fn endless_printing_keeps_the_vmm_bounded() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_print_flood") else {
        return;
    };
    let config = MachineConfig {
        capture_limit: 4096,
        ..quiet_with_timeout(1500)
    };
    let report = run_bounded(&kvm, config, seraph_guests::HOSTILE_PRINT_FLOOD);
    assert!(matches!(report.outcome, RunOutcome::Timeout { .. }));
    assert_eq!(report.exit_code(), exit_code::TIMEOUT);
    let prints = report.stats.hypercalls[&PRINT];
    // Far more was printed than the capture keeps (and than RSS_BOUND).
    assert!(prints * 65536 > RSS_BOUND, "only {prints} PRINTs ran");
    assert_eq!(report.print.len(), 4096, "the capture keeps the last 4 KiB");
}

#[test]
fn an_endless_serial_flood_keeps_a_bounded_capture() {
    let _serial = one_at_a_time();
    let Some(kvm) = common::kvm_or_skip("hostile_serial_flood") else {
        return;
    };
    let config = MachineConfig {
        capture_limit: 1024,
        ..common::quiet()
    };
    let report = run_bounded(&kvm, config, seraph_guests::SERIAL_FLOOD);
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 0 });
    assert_eq!(report.serial, vec![b'x'; 1024]);
}
