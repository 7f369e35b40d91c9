//! An AArch64 trap as a [`FaultReport`], in the same words as x86.

use super::esr::{Esr, Syndrome};
use super::exit::{Arm64Trap, fault_ipa};
use crate::report::{Access, Arch, FaultReport, Level};

/// Explains the trap the guest took at `pc`: the class, the faulting
/// address (FAR_EL2, unless FnV), the access, the fault status as cause
/// and level, the decoded ESR, and the IPA for stage-2 aborts.
pub fn explain_aarch64(trap: &Arm64Trap, pc: u64) -> FaultReport {
    let esr = Esr::decode(trap.esr);
    let s = esr.syndrome;
    let mut report = FaultReport::new(Arch::Aarch64, s.mnemonic(), s.name());
    report.pc = Some(pc);
    report.syndrome = Some(format!("ESR {:#x}: {s}", trap.esr));
    let fsc = match s {
        Syndrome::DataAbort { iss, .. } => {
            report.access = Some(if iss.wnr { Access::Write } else { Access::Read });
            report.address = (!iss.fnv).then_some(trap.far);
            Some(iss.dfsc)
        }
        Syndrome::InstructionAbort { iss, .. } => {
            report.access = Some(Access::Execute);
            report.address = (!iss.fnv).then_some(trap.far);
            Some(iss.ifsc)
        }
        Syndrome::Watchpoint { iss, .. } => {
            report.access = Some(if iss.wnr { Access::Write } else { Access::Read });
            report.address = (!iss.fnv).then_some(trap.far);
            None
        }
        _ => None,
    };
    if let Some(fsc) = fsc {
        report.cause = fsc.cause();
        report.level = fsc.level().map(Level::Arm);
        if trap.hpfar != 0 {
            report.notes.push(format!(
                "stage 2: IPA {:#x}",
                fault_ipa(trap.far, trap.hpfar)
            ));
        }
    }
    if let Syndrome::DataAbort { same_el: true, .. }
    | Syndrome::InstructionAbort { same_el: true, .. } = s
    {
        report
            .notes
            .push("taken at EL2 itself, not from the guest".into());
    }
    report
}
