//! AArch64 traps: ESR_EL2 decoded into an exception class and a typed ISS
//! ([`esr`], [`iss`], [`fsc`]), system-register names ([`sysreg`]), the
//! mapping onto the arch-neutral `VmExit` ([`exit`]) and the fault report
//! ([`report`]). Pure code: it compiles and is tested on any host.

pub mod esr;
pub mod exit;
pub mod fsc;
pub mod iss;
pub mod report;
pub mod sysreg;

#[cfg(test)]
mod tests;

pub use esr::{Esr, Syndrome};
pub use exit::{
    Arm64Debug, Arm64Exit, Arm64Trap, MmioAccess, describe, fault_ipa, mmio_read_result, to_vm_exit,
};
pub use fsc::FaultStatus;
pub use iss::{
    DataAbortIss, InstructionAbortIss, SoftwareStepIss, SysRegIss, WatchpointIss, WfxIss, WfxKind,
};
pub use report::explain_aarch64;
