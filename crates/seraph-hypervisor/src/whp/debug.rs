//! Guest debugging on WHP, as pure functions: the debug-register and
//! exception-exit settings for a [`GuestDebug`], the decoding of a #DB/#BP
//! exception exit into a [`DebugCause`], the vCPU event registers as
//! [`VcpuEvents`], and a `WHvTranslateGva` result.
//!
//! How it maps (see `docs/windows.md`): hardware slots go to DR0-DR3 and
//! DR7 through `WHvSetVirtualProcessorRegisters`; single-step sets
//! RFLAGS.TF before each entry; #DB (vector 1) and #BP (vector 3) exit
//! through the partition's exception exit bitmap
//! (`WHvPartitionPropertyCodeExceptionExitBitmap`, which needs the
//! `ExceptionExit` extended exit). The bitmap is per partition, so a vCPU
//! that is not being debugged hands such an exception back to the guest.

use windows_sys::Win32::System::Hypervisor::{
    WHV_REGISTER_NAME, WHvRegisterInterruptState, WHvRegisterPendingEvent,
    WHvRegisterPendingInterruption, WHvTranslateGvaResultSuccess, WHvX64PendingEventException,
    WHvX64PendingEventExtInt, WHvX64PendingException, WHvX64PendingInterrupt, WHvX64PendingNmi,
    WHvX64RegisterDr0, WHvX64RegisterDr1, WHvX64RegisterDr2, WHvX64RegisterDr3, WHvX64RegisterDr7,
};

use super::translate::ExceptionInfo;
use crate::debug::{self, DebugCause, GuestDebug, PendingException, VcpuEvents};

/// x86 #DB.
pub const DB_VECTOR: u8 = 1;
/// x86 #BP.
pub const BP_VECTOR: u8 = 3;
/// RFLAGS.TF: trap after the next instruction.
pub const RFLAGS_TF: u64 = 1 << 8;
/// RFLAGS.RF: suppress instruction breakpoints for one instruction.
pub const RFLAGS_RF: u64 = 1 << 16;
/// DR6 with no condition recorded (its architectural reset value).
pub const DR6_CLEAR: u64 = 0xFFFF_0FF0;

/// The registers a [`GuestDebug`] sets, in the order of [`debug_register_values`].
pub const DEBUG_REGISTER_NAMES: [WHV_REGISTER_NAME; 5] = [
    WHvX64RegisterDr0,
    WHvX64RegisterDr1,
    WHvX64RegisterDr2,
    WHvX64RegisterDr3,
    WHvX64RegisterDr7,
];

/// DR0-DR3 and DR7 for `cfg` (all zero when debugging is off or no slot is set).
pub fn debug_register_values(cfg: &GuestDebug) -> [u64; 5] {
    let mut v = [0u64; 5];
    if !cfg.enabled {
        return v;
    }
    for (slot, bp) in cfg.hw.iter().enumerate() {
        if let (Some(bp), Some(dst)) = (bp, v.get_mut(slot)) {
            *dst = bp.addr;
        }
    }
    v[4] = debug::x86_dr7(&cfg.hw);
    v
}

/// The exception vectors `cfg` needs to exit on, as an exception exit
/// bitmap (bit N = vector N): #DB for single-step and hardware slots,
/// #BP for software breakpoints.
pub fn exception_exit_bitmap(cfg: &GuestDebug) -> u64 {
    if !cfg.enabled {
        return 0;
    }
    let mut bits = 0;
    if cfg.single_step || cfg.hw.iter().any(Option::is_some) {
        bits |= 1 << DB_VECTOR;
    }
    if cfg.software_breakpoints {
        bits |= 1 << BP_VECTOR;
    }
    bits
}

/// The partition's bitmap: the union of every vCPU's request.
pub fn partition_exception_bitmap(per_vcpu: &[(u32, u64)]) -> u64 {
    per_vcpu.iter().fold(0, |acc, (_, bits)| acc | bits)
}

/// RFLAGS to enter with: TF set while single-stepping, cleared when the
/// backend had set it and stepping stopped; RF set to step over the
/// execute breakpoint the last exit reported.
pub fn entry_rflags(rflags: u64, single_step: bool, tf_owned: bool, resume_flag: bool) -> u64 {
    let mut r = rflags;
    if single_step {
        r |= RFLAGS_TF;
    } else if tf_owned {
        r &= !RFLAGS_TF;
    }
    if resume_flag {
        r |= RFLAGS_RF;
    }
    r
}

/// What to do with a #DB or #BP exception exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugOutcome {
    /// Report `VmExit::Debug`.
    Report {
        /// Guest RIP: the int3 for a software breakpoint, the breakpoint
        /// address for an execute breakpoint, the next instruction after a step.
        pc: u64,
        /// What fired.
        cause: DebugCause,
    },
    /// The exception belongs to the guest (this vCPU does not debug that
    /// vector): deliver it as the `WHvRegisterPendingInterruption` value.
    Reinject(u64),
}

/// Decides a #DB/#BP exception exit. `dr6` is the DR6 read after the exit
/// (#DB only), `instruction_length` the exit's instruction length.
pub fn decode_debug_exception(
    e: &ExceptionInfo,
    rip: u64,
    dr6: u64,
    instruction_length: u8,
    cfg: &GuestDebug,
) -> DebugOutcome {
    let wanted = exception_exit_bitmap(cfg) & (1u64 << (e.vector & 63)) != 0;
    if !wanted {
        return DebugOutcome::Reinject(reinjection(e, instruction_length));
    }
    let dr7 = debug_register_values(cfg)[4];
    // The hypervisor may report the DR6 condition bits in the exception
    // parameter as well as in the register: take both.
    let bits = if e.vector == DB_VECTOR {
        dr6 | (e.parameter & 0x400F)
    } else {
        0
    };
    let mut cause = debug::x86_debug_cause(u32::from(e.vector), bits, dr7);
    if cause == DebugCause::Unknown && cfg.single_step && e.vector == DB_VECTOR {
        cause = DebugCause::SingleStep;
    }
    DebugOutcome::Report { pc: rip, cause }
}

/// `WHvRegisterPendingInterruption` bits that give an intercepted #DB/#BP
/// back to the guest: #DB as a hardware exception, #BP as a software
/// exception with the int3's length (RIP stays on the int3).
fn reinjection(e: &ExceptionInfo, instruction_length: u8) -> u64 {
    const SOFTWARE_EXCEPTION: u64 = 6;
    let mut bits = 1u64 | (u64::from(e.vector) << 16);
    if e.vector == BP_VECTOR {
        let len = u64::from(instruction_length.clamp(1, 15));
        bits |= (SOFTWARE_EXCEPTION << 1) | (len << 5);
    } else {
        bits |= (WHvX64PendingException as u64 & 0x7) << 1;
    }
    bits
}

/// The registers [`events_from_registers`] decodes, in its argument order.
pub const EVENT_REGISTER_NAMES: [WHV_REGISTER_NAME; 3] = [
    WHvRegisterPendingInterruption,
    WHvRegisterInterruptState,
    WHvRegisterPendingEvent,
];

/// Decodes `WHvRegisterPendingInterruption`, `WHvRegisterInterruptState`
/// and the low 64 bits of `WHvRegisterPendingEvent` into [`VcpuEvents`].
pub fn events_from_registers(interruption: u64, interrupt_state: u64, event: u64) -> VcpuEvents {
    let mut ev = VcpuEvents {
        interrupt_shadow: interrupt_state & 1 != 0,
        ..VcpuEvents::default()
    };
    if interruption & 1 != 0 {
        let kind = ((interruption >> 1) & 0x7) as i32;
        let vector = ((interruption >> 16) & 0xFF) as u8;
        let error_code = (interruption & (1 << 4) != 0).then_some((interruption >> 32) as u32);
        match kind {
            k if k == WHvX64PendingInterrupt => ev.interrupt = Some(vector),
            k if k == WHvX64PendingNmi => ev.nmi_pending = true,
            _ => {
                ev.exception = Some(PendingException {
                    vector,
                    error_code,
                    injected: true,
                });
            }
        }
    }
    if event & 1 != 0 {
        let kind = ((event >> 1) & 0x7) as i32;
        let vector = ((event >> 16) & 0xFF) as u8;
        if kind == WHvX64PendingEventException && ev.exception.is_none() {
            ev.exception = Some(PendingException {
                vector,
                error_code: (event & (1 << 8) != 0).then_some((event >> 32) as u32),
                injected: false,
            });
        } else if kind == WHvX64PendingEventExtInt && ev.interrupt.is_none() {
            // The external-interrupt event keeps its vector in bits 8-15.
            ev.interrupt = Some(((event >> 8) & 0xFF) as u8);
        }
    }
    ev
}

/// The guest-physical address of a `WHvTranslateGva` result, if it succeeded.
pub fn translation(result_code: i32, gpa: u64) -> Option<u64> {
    (result_code == WHvTranslateGvaResultSuccess).then_some(gpa)
}

#[cfg(test)]
mod tests;
