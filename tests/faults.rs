//! Guest faults in the run report (issue #13): a #PF with no IDT, a #GP
//! with an absent gate, and a #PF handler that HLT-loops each end with a
//! report naming the fault, its error code decoded and the failing address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use seraph_v::vmm::RunOutcome;

#[test]
fn a_page_fault_with_no_idt_is_named_in_the_report() {
    let Some(kvm) = common::kvm_or_skip("report_pf_no_idt") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::FAULT_PF_WRITE);
    assert!(matches!(report.outcome, RunOutcome::TripleFault { .. }));
    let fault = report.fault.expect("the fault is explained").to_string();
    assert!(
        fault.starts_with(
            "#PF page fault at rip 0x100040: write to 0xffff800030000000 \
             (not present at PD level; error code 0x2: write, supervisor, not-present)"
        ),
        "{fault}"
    );
}

#[test]
fn a_general_protection_fault_is_named_in_the_report() {
    let Some(kvm) = common::kvm_or_skip("report_gp") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::FAULT_GP);
    assert!(matches!(report.outcome, RunOutcome::TripleFault { .. }));
    let fault = report.fault.expect("the fault is explained");
    assert_eq!(fault.mnemonic, "#GP");
    assert_eq!(fault.pc, Some(seraph_guests::FAULT_GP_RIP));
    let line = fault.to_string();
    assert!(line.contains("0x800000000000"), "{line}");
}

#[test]
fn a_page_fault_handler_that_halts_is_named_in_the_idle_report() {
    let Some(kvm) = common::kvm_or_skip("report_pf_handler") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::FAULT_PF_HANDLER);
    assert!(
        matches!(report.outcome, RunOutcome::Idle { .. }),
        "{}",
        report.outcome
    );
    let fault = report.fault.expect("the handler's exception is explained");
    assert_eq!(fault.mnemonic, "#PF");
    let line = fault.to_string();
    assert!(line.contains("0xffff800030000000"), "{line}");
    assert!(line.contains("write"), "{line}");
}

#[test]
fn a_guest_that_exits_has_no_fault() {
    let Some(kvm) = common::kvm_or_skip("report_no_fault") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::EXIT_STATUS);
    assert!(report.fault.is_none());
}
