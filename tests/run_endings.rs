//! Every way a run can end, each provoked by a tiny guest on /dev/kvm, with
//! the outcome, the report line and the process exit code checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use seraph_guests::expected as want;
use seraph_v::hypervisor::ExitKind;
use seraph_v::vmm::{IdleKind, MachineConfig, RunOutcome, StopReason, exit_code};

#[test]
fn exit_hypercall_status_becomes_the_exit_code() {
    let Some(kvm) = common::kvm_or_skip("exit_status") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::EXIT_STATUS);
    assert_eq!(report.outcome, RunOutcome::GuestExit { status: 42 });
    assert_eq!(report.exit_code(), 42);
    assert_eq!(common::text(&report.print), want::EXIT_STATUS_PRINT);
    assert_eq!(report.outcome.to_string(), "guest exited with status 42");
}

#[test]
fn triple_fault_is_reported_with_registers() {
    let Some(kvm) = common::kvm_or_skip("triple_fault") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::TRIPLE_FAULT);
    let RunOutcome::TripleFault { cpu } = &report.outcome else {
        panic!("expected a triple fault, got {}", report.outcome);
    };
    let cpu = cpu.as_ref().expect("registers captured");
    assert_eq!(cpu.sregs.idt.limit, 0, "the guest's empty IDT");
    assert_eq!(report.exit_code(), exit_code::TRIPLE_FAULT);
    assert!(
        report
            .outcome
            .to_string()
            .starts_with("guest triple fault at rip 0x")
    );
}

#[test]
fn emulation_failure_reports_rip_and_instruction_bytes() {
    let Some(kvm) = common::kvm_or_skip("emulation_failure") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::EMULATION_FAILURE);
    let RunOutcome::EmulationFailure { rip, instruction } = &report.outcome else {
        panic!("expected an emulation failure, got {}", report.outcome);
    };
    assert_eq!(*rip, want::EMULATION_FAILURE_RIP);
    let bytes = instruction.expect("instruction bytes");
    assert_eq!(&bytes.as_slice()[..4], &want::EMULATION_FAILURE_INSN);
    assert_eq!(report.exit_code(), exit_code::EMULATION_FAILURE);
    assert!(report.outcome.to_string().contains("(bytes: 66 0f ef 00"));
}

#[test]
fn hlt_with_interrupts_disabled_ends_the_run() {
    let Some(kvm) = common::kvm_or_skip("hlt_no_irq") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::HLT_NO_IRQ);
    assert_eq!(
        report.outcome,
        RunOutcome::DeadHalt {
            rip: want::HLT_NO_IRQ_HLT_RIP + 1
        }
    );
    assert_eq!(report.exit_code(), exit_code::DEAD_HALT);
    assert_eq!(common::text(&report.print), want::HLT_NO_IRQ_PRINT);
}

#[test]
fn an_idle_loop_with_nothing_to_wake_it_ends_at_once() {
    let Some(kvm) = common::kvm_or_skip("idle_loop") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::IDLE_LOOP);
    // No timer is armed and nothing is pending: the first HLT can never be
    // woken, so the run ends there without waiting for 100 of them.
    assert_eq!(
        report.outcome,
        RunOutcome::Idle {
            kind: IdleKind::NothingCanWake,
            rip: want::IDLE_LOOP_HLT_RIP + 1,
            last_vector: None,
        }
    );
    assert_eq!(report.stats.exits[&ExitKind::Halt], 1);
    assert_eq!(report.exit_code(), exit_code::IDLE);
    assert_eq!(common::text(&report.print), want::IDLE_LOOP_PRINT);
    assert!(
        report
            .outcome
            .to_string()
            .contains("with nothing that can wake it")
    );
}

#[test]
fn idle_hlt_count_is_configurable() {
    let Some(kvm) = common::kvm_or_skip("idle_hlt_count") else {
        return;
    };
    // The Seraph-style idle loop is woken by its periodic timer again and
    // again, so only the HLT count can end it.
    for hlts in [3, 7] {
        let config = MachineConfig {
            idle_hlts: hlts,
            ..common::quiet()
        };
        let (_m, report) = common::boot(&kvm, config, seraph_guests::SERAPH_IDLE_KERNEL);
        let RunOutcome::Idle {
            kind, last_vector, ..
        } = report.outcome
        else {
            panic!("expected idle, got {}", report.outcome);
        };
        assert_eq!(kind, IdleKind::HltCount(hlts));
        assert_eq!(last_vector, Some(want::TIMER_VECTOR));
        assert!(
            report
                .outcome
                .to_string()
                .contains(&format!("{hlts} HLTs at rip"))
        );
    }
}

#[test]
fn timeout_stops_a_guest_that_never_exits() {
    let Some(kvm) = common::kvm_or_skip("timeout") else {
        return;
    };
    let config = MachineConfig {
        timeout: Some(Duration::from_millis(300)),
        ..MachineConfig::quiet()
    };
    let (_m, report) = common::boot(&kvm, config, seraph_guests::SPIN);
    let RunOutcome::Timeout { after, rip } = report.outcome else {
        panic!("expected a timeout, got {}", report.outcome);
    };
    assert_eq!(after, Duration::from_millis(300));
    assert_eq!(rip, Some(want::SPIN_RIP));
    assert_eq!(report.exit_code(), exit_code::TIMEOUT);
    assert_eq!(common::text(&report.print), want::SPIN_PRINT);
}

#[test]
fn stop_handle_interrupts_a_running_guest() {
    let Some(kvm) = common::kvm_or_skip("stop_handle") else {
        return;
    };
    let mut machine =
        seraph_v::vmm::Machine::new(&kvm, common::quiet(), seraph_guests::SPIN).unwrap();
    let stop = machine.stop_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        stop.stop(StopReason::Interrupted);
    });
    let report = machine.run().unwrap();
    stopper.join().unwrap();
    assert_eq!(report.outcome, RunOutcome::Interrupted);
    assert_eq!(report.exit_code(), exit_code::INTERRUPTED);
}
