//! What KVM lets a VMM see when a guest's exception ends the run, found on
//! /dev/kvm with the fault guests on a bare VM (tests/common), and
//! `explain_x86` / `explain_halted_handler` checked on exactly that state.
//!
//! Findings (Intel host, nested KVM; see docs/fault-reports.md):
//! - at KVM_EXIT_SHUTDOWN (triple fault) KVM_GET_VCPU_EVENTS reports no
//!   exception, pending or injected, even when KVM itself injected the
//!   first #GP (a refused WRMSR);
//! - RIP still points at the faulting instruction, RSP is unchanged, CR2
//!   holds the #PF address, and RFLAGS.RF (bit 16) is set;
//! - a refused MSR (`Completion::MsrWrite(false)`) is not a pending
//!   exception either before the next KVM_RUN: KVM injects the #GP inside
//!   that KVM_RUN, so only the VMM itself knows it refused the access.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::End;
use seraph_fault::x86::{X86FaultState, explain_halted_handler, explain_x86};
use seraph_fault::{Access, Cause, Level};
use seraph_guests as guests;
use seraph_hypervisor::{Completion, Vcpu, VmExit};

const RFLAGS_RF: u64 = 1 << 16;

fn shutdown(test: &str, elf: &[u8]) -> Option<(common::Bare, common::Ending)> {
    let kvm = common::kvm_or_skip(test)?;
    let mut bare = common::boot(&kvm, elf);
    let ending = common::run(&mut bare, 5);
    assert_eq!(ending.end, End::Shutdown, "{test}: the guest triple-faults");
    assert_eq!(
        ending.events.exception, None,
        "{test}: KVM keeps no exception at a triple fault"
    );
    assert_ne!(ending.regs.rflags & RFLAGS_RF, 0, "{test}: RF is set");
    Some((bare, ending))
}

fn explain(bare: &common::Bare, e: &common::Ending) -> seraph_fault::FaultReport {
    let state = X86FaultState {
        regs: &e.regs,
        sregs: &e.sregs,
        events: Some(&e.events),
        instruction: None,
    };
    explain_x86(&bare.mem, &state)
}

#[test]
fn a_page_fault_with_no_idt_is_derived_from_rip_and_cr2() {
    let Some((bare, e)) = shutdown("pf_write_shutdown", guests::FAULT_PF_WRITE) else {
        return;
    };
    assert_eq!(e.regs.rip, guests::FAULT_PF_WRITE_RIP);
    assert_eq!(e.sregs.cr2, guests::FAULT_PF_ADDRESS);
    assert_eq!(e.regs.rsp & 0xF, 0, "nothing was pushed");
    let report = explain(&bare, &e);
    assert_eq!(
        (report.mnemonic, report.access, report.cause, report.level),
        (
            "#PF",
            Some(Access::Write),
            Some(Cause::NotPresent),
            Some(Level::Pd)
        )
    );
    assert_eq!(
        report.to_string(),
        "#PF page fault at rip 0x100040: write to 0xffff800030000000 \
         (not present at PD level; error code 0x2: write, supervisor, not-present); \
         derived from the instruction at rip; #PF cannot be delivered: the IDT is empty (limit 0)"
    );
}

#[test]
fn the_old_triple_fault_guest_reads_at_the_pml4_level() {
    let Some((bare, e)) = shutdown("triple_fault_shutdown", guests::TRIPLE_FAULT) else {
        return;
    };
    let report = explain(&bare, &e);
    assert_eq!(report.address, Some(guests::expected::TRIPLE_FAULT_ADDRESS));
    assert_eq!(
        (report.access, report.level),
        (Some(Access::Read), Some(Level::Pml4))
    );
    assert!(
        report
            .to_string()
            .contains("error code 0x0: read, supervisor, not-present")
    );
}

#[test]
fn a_non_canonical_write_is_a_gp_whose_gate_is_absent() {
    let Some((bare, e)) = shutdown("gp_shutdown", guests::FAULT_GP) else {
        return;
    };
    assert_eq!(e.regs.rip, guests::FAULT_GP_RIP);
    assert_eq!(e.regs.rax, guests::FAULT_GP_ADDRESS);
    let report = explain(&bare, &e);
    assert_eq!(
        report.to_string(),
        "#GP general protection at rip 0x100080: write to 0x800000000000 \
         (non-canonical address; error code 0x0: no selector); \
         derived: the instruction at rip accesses non-canonical 0x800000000000; \
         #GP cannot be delivered: the IDT gate for vector 0x0d is not present; \
         nor can #DF: the IDT gate for vector 0x08 is not present"
    );
}

#[test]
fn a_refused_wrmsr_is_a_gp_that_kvm_never_shows_as_an_event() {
    let Some(kvm) = common::kvm_or_skip("gp_wrmsr") else {
        return;
    };
    // Step by step: the WRMSR exit, refused: no #GP is pending yet...
    let mut bare = common::boot(&kvm, guests::FAULT_GP_WRMSR);
    let index = loop {
        match bare.vcpu.run().expect("KVM_RUN") {
            VmExit::MsrWrite { index, .. } => break index,
            VmExit::Shutdown(_) => panic!("shutdown before the WRMSR exit"),
            _ => {}
        }
    };
    assert_eq!(index, guests::FAULT_GP_WRMSR_MSR);
    bare.vcpu
        .complete(Completion::MsrWrite(false))
        .expect("refuse");
    let pending = bare.vcpu.events().expect("events").exception;
    assert_eq!(
        pending, None,
        "KVM injects the #GP for a refused MSR inside the next KVM_RUN"
    );
    // ...and none is left once the CPU failed to deliver it.
    let e = common::run(&mut bare, 5);
    assert_eq!(e.end, End::Shutdown);
    assert_eq!(e.events.exception, None);
    assert_eq!(e.regs.rip, guests::FAULT_GP_RIP);
    let report = explain(&bare, &e);
    assert_eq!(
        report.to_string(),
        "#GP general protection at rip 0x100080 (error code 0x0: no selector); \
         derived: wrmsr of MSR 0xc0de0001 at rip (refused by the hypervisor); \
         #GP cannot be delivered: the IDT gate for vector 0x0d is not present; \
         nor can #DF: the IDT gate for vector 0x08 is not present"
    );
}

#[test]
fn a_page_fault_handler_that_halts_is_found_through_the_idt() {
    let Some(kvm) = common::kvm_or_skip("pf_handler") else {
        return;
    };
    let mut bare = common::boot(&kvm, guests::FAULT_PF_HANDLER);
    let e = common::run(&mut bare, 5);
    let hlt_rip = match e.end {
        End::Halted {
            rip,
            interrupts_on: true,
        } => rip,
        other => panic!("expected an idle hlt loop, got {other:?}"),
    };
    assert_eq!(e.print, guests::FAULT_PF_HANDLER_PRINT);
    assert_eq!(e.events.exception, None, "delivered: nothing pending");
    let report = explain_halted_handler(&bare.mem, &e.regs, &e.sregs).expect("in a handler");
    assert_eq!(report.pc, Some(guests::FAULT_GP_RIP), "the frame's RIP");
    assert_eq!(
        report.to_string(),
        format!(
            "#PF page fault at rip 0x100080: write to 0xffff800030000000 \
             (not present at PD level; error code 0x2: write, supervisor, not-present); \
             the guest's handler at {:#x} took it and halts at rip {hlt_rip:#x}",
            guests::FAULT_PF_HANDLER_ENTRY
        )
    );
}
