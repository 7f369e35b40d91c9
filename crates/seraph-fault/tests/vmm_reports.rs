//! The fault guests on Seraph-V's own VMM (`seraph_vmm::Machine`), and
//! `explain_x86` on exactly what its run report keeps: the registers of a
//! triple fault (no event state) and guest memory. This is the call the
//! VMM makes for `RunOutcome::TripleFault` (see docs/fault-reports.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use seraph_fault::x86::{X86FaultState, explain_x86};
use seraph_fault::{Access, Cause, FaultReport, Level};
use seraph_guests as guests;
use seraph_hypervisor::kvm::KvmHypervisor;
use seraph_vmm::{Machine, MachineConfig, RunOutcome};

/// Boots `elf` on the VMM; for a triple fault, the explained report.
fn run(test: &str, elf: &[u8]) -> Option<(RunOutcome, Option<FaultReport>)> {
    let kvm = KvmHypervisor::for_test(test)?;
    let config = MachineConfig {
        timeout: Some(std::time::Duration::from_secs(60)),
        ..MachineConfig::quiet()
    };
    let mut machine = Machine::new(&kvm, config, elf).expect("machine builds");
    let report = machine.run().expect("run completes");
    let explained = match &report.outcome {
        RunOutcome::TripleFault { cpu: Some(cpu) } => Some(explain_x86(
            machine.memory(),
            &X86FaultState {
                regs: &cpu.regs,
                sregs: &cpu.sregs,
                events: None,
                instruction: None,
            },
        )),
        _ => None,
    };
    Some((report.outcome, explained))
}

#[test]
fn a_page_fault_without_an_idt_is_explained_from_the_triple_fault_report() {
    let Some((outcome, report)) = run("vmm_pf_write", guests::FAULT_PF_WRITE) else {
        return;
    };
    let report = report.unwrap_or_else(|| panic!("expected a triple fault, got {outcome}"));
    assert_eq!(report.pc, Some(guests::FAULT_PF_WRITE_RIP));
    assert_eq!(report.address, Some(guests::FAULT_PF_ADDRESS));
    assert_eq!(
        (report.access, report.cause, report.level),
        (
            Some(Access::Write),
            Some(Cause::NotPresent),
            Some(Level::Pd)
        )
    );
    assert!(
        report.to_string().starts_with(
            "#PF page fault at rip 0x100040: write to 0xffff800030000000 \
             (not present at PD level; error code 0x2: write, supervisor, not-present)"
        ),
        "{report}"
    );
}

#[test]
fn a_general_protection_fault_is_explained_with_its_missing_gate() {
    for (test, elf, words) in [
        (
            "vmm_gp",
            guests::FAULT_GP,
            "#GP general protection at rip 0x100080: write to 0x800000000000 (non-canonical address",
        ),
        (
            "vmm_gp_wrmsr",
            guests::FAULT_GP_WRMSR,
            "#GP general protection at rip 0x100080 (error code 0x0: no selector); \
             derived: wrmsr of MSR 0xc0de0001",
        ),
    ] {
        let Some((outcome, report)) = run(test, elf) else {
            return;
        };
        let text = report
            .unwrap_or_else(|| panic!("{test}: expected a triple fault, got {outcome}"))
            .to_string();
        assert!(text.starts_with(words), "{test}: {text}");
        assert!(
            text.contains("#GP cannot be delivered: the IDT gate for vector 0x0d is not present"),
            "{test}: {text}"
        );
    }
}

#[test]
fn a_page_fault_handler_that_halts_ends_the_run_idle_inside_the_handler() {
    let Some((outcome, _)) = run("vmm_pf_handler", guests::FAULT_PF_HANDLER) else {
        return;
    };
    // The run report keeps only RIP for an idle run: enough to see that the
    // guest idles inside its #PF handler, not enough to read the IDT and
    // the frame (explain_halted_handler needs the registers; see
    // tests/kvm_observations.rs and docs/fault-reports.md).
    let RunOutcome::Idle { rip, .. } = outcome else {
        panic!("expected an idle run, got {outcome}");
    };
    let entry = guests::FAULT_PF_HANDLER_ENTRY;
    assert!(
        (entry..entry + 0x40).contains(&rip),
        "idle at {rip:#x}, in the handler at {entry:#x}"
    );
}
