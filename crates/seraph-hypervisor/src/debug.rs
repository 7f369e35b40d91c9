//! Guest debugging and exception state: hardware breakpoints and
//! watchpoints, single-step, and the vCPU's pending/injected events.
//!
//! The types are arch-neutral where they can be: four hardware slots
//! (x86 DR0-DR3; AArch64 has at least as many breakpoint and watchpoint
//! registers), a single-step flag, and a [`DebugCause`] that says why a
//! [`crate::VmExit::Debug`] happened.

/// What a hardware slot watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwBreakKind {
    /// Instruction execution at the address (a hardware breakpoint).
    Execute,
    /// Data writes to the address range (a write watchpoint).
    Write,
    /// Data reads or writes to the address range (an access watchpoint).
    ReadWrite,
}

/// One hardware breakpoint or watchpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwBreakpoint {
    /// Guest-virtual address (naturally aligned to `len` for watchpoints).
    pub addr: u64,
    /// What triggers it.
    pub kind: HwBreakKind,
    /// Length watched: 1, 2, 4 or 8 bytes (1 for execute breakpoints).
    pub len: u8,
}

/// Number of hardware breakpoint/watchpoint slots every backend offers.
pub const HW_SLOTS: usize = 4;

/// The guest-debug configuration of a vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestDebug {
    /// Debugging is on: debug events exit to the VMM instead of reaching the guest.
    pub enabled: bool,
    /// Stop after every instruction ([`DebugCause::SingleStep`]).
    pub single_step: bool,
    /// Software breakpoint instructions (int3 / BRK) exit to the VMM.
    pub software_breakpoints: bool,
    /// The hardware slots.
    pub hw: [Option<HwBreakpoint>; HW_SLOTS],
}

/// Why a debug exit happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugCause {
    /// One instruction was executed under single-step.
    SingleStep,
    /// Hardware execute breakpoint in slot N fired.
    HwBreakpoint(u8),
    /// Hardware watchpoint in slot N fired (the access already happened).
    Watchpoint(u8),
    /// A software breakpoint instruction (x86 int3, AArch64 BRK).
    SoftwareBreakpoint,
    /// A debug exit the backend could not attribute.
    Unknown,
}

/// Decodes x86 DR6 (and the exception vector) into a cause; `dr7` tells
/// execute slots from watchpoints (R/Wn = 00 is execute).
pub fn x86_debug_cause(exception: u32, dr6: u64, dr7: u64) -> DebugCause {
    if exception == 3 {
        return DebugCause::SoftwareBreakpoint;
    }
    for slot in 0..HW_SLOTS as u8 {
        if dr6 & (1 << slot) != 0 {
            let rw = (dr7 >> (16 + 4 * u64::from(slot))) & 0b11;
            return if rw == 0 {
                DebugCause::HwBreakpoint(slot)
            } else {
                DebugCause::Watchpoint(slot)
            };
        }
    }
    if dr6 & (1 << 14) != 0 {
        return DebugCause::SingleStep;
    }
    DebugCause::Unknown
}

/// Encodes the hardware slots as x86 DR7 (global-enable bits, R/W and LEN
/// fields); the addresses go to DR0-DR3.
pub fn x86_dr7(hw: &[Option<HwBreakpoint>; HW_SLOTS]) -> u64 {
    let mut dr7 = 0u64;
    for (slot, bp) in hw.iter().enumerate() {
        let Some(bp) = bp else { continue };
        let rw: u64 = match bp.kind {
            HwBreakKind::Execute => 0b00,
            HwBreakKind::Write => 0b01,
            HwBreakKind::ReadWrite => 0b11,
        };
        let len: u64 = match (bp.kind, bp.len) {
            (HwBreakKind::Execute, _) | (_, 1) => 0b00,
            (_, 2) => 0b01,
            (_, 8) => 0b10,
            _ => 0b11,
        };
        dr7 |= 1 << (2 * slot + 1);
        dr7 |= (rw | len << 2) << (16 + 4 * slot);
    }
    if dr7 != 0 {
        dr7 |= 1 << 9; // GE: exact data breakpoints, as debuggers set it
    }
    dr7
}

/// An exception the vCPU has pending or is delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingException {
    /// The vector (x86: 0-31).
    pub vector: u8,
    /// The error code, for vectors that push one.
    pub error_code: Option<u32>,
    /// True if delivery had started (injected), false if only pending.
    pub injected: bool,
}

/// The vCPU's event state: what it is delivering or has pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VcpuEvents {
    /// An exception pending or being injected.
    pub exception: Option<PendingException>,
    /// An external interrupt vector being injected.
    pub interrupt: Option<u8>,
    /// An NMI is pending.
    pub nmi_pending: bool,
    /// The instruction just executed blocks interrupts for one more
    /// instruction (STI / MOV SS shadow).
    pub interrupt_shadow: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr7_encodes_slots_and_dr6_decodes_them() {
        let mut hw = [None; HW_SLOTS];
        hw[0] = Some(HwBreakpoint {
            addr: 0x1000,
            kind: HwBreakKind::Execute,
            len: 1,
        });
        hw[2] = Some(HwBreakpoint {
            addr: 0x2000,
            kind: HwBreakKind::Write,
            len: 8,
        });
        hw[3] = Some(HwBreakpoint {
            addr: 0x3000,
            kind: HwBreakKind::ReadWrite,
            len: 4,
        });
        let dr7 = x86_dr7(&hw);
        // G0, G2, G3 and GE.
        assert_eq!(dr7 & 0xff, 0b1010_0010);
        assert_ne!(dr7 & (1 << 9), 0);
        // Slot 0: RW=00 LEN=00; slot 2: RW=01 LEN=10; slot 3: RW=11 LEN=11.
        assert_eq!((dr7 >> 16) & 0xf, 0b0000);
        assert_eq!((dr7 >> 24) & 0xf, 0b1001);
        assert_eq!((dr7 >> 28) & 0xf, 0b1111);
        assert_eq!(x86_debug_cause(1, 1 << 0, dr7), DebugCause::HwBreakpoint(0));
        assert_eq!(x86_debug_cause(1, 1 << 2, dr7), DebugCause::Watchpoint(2));
        assert_eq!(x86_debug_cause(1, 1 << 14, dr7), DebugCause::SingleStep);
        assert_eq!(x86_debug_cause(3, 0, dr7), DebugCause::SoftwareBreakpoint);
        assert_eq!(x86_debug_cause(1, 0, dr7), DebugCause::Unknown);
        assert_eq!(x86_dr7(&[None; HW_SLOTS]), 0);
    }
}
