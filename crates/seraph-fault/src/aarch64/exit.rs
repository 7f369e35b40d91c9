//! From an AArch64 trap (ESR_EL2, FAR_EL2, HPFAR_EL2) to what the guest did
//! ([`Arm64Exit`]), and from that, with the guest's registers, to the
//! arch-neutral [`VmExit`].
//!
//! `VmExit::MmioRead`/`MmioWrite` borrow a data buffer, so [`describe`]
//! returns an owned [`Arm64Exit`] and [`to_vm_exit`] lends the caller's
//! 8-byte buffer; after the VMM fills a read, [`mmio_read_result`] says
//! which register gets which value (sign extension and the 32-bit W form
//! applied).

use seraph_hypervisor::{DebugCause, GuestDebug, HwBreakKind, Hypercall, ShutdownReason, VmExit};

use super::esr::Syndrome;
use super::fsc::FaultStatus;
use super::iss::{SysRegIss, WfxKind};

/// PSCI 0.2+ function ids (SMC32 calling convention) that end the VM.
pub mod psci {
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u64 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u64 = 0x8400_0009;
    /// SYSTEM_RESET2, SMC32 form.
    pub const SYSTEM_RESET2_32: u64 = 0x8400_0012;
    /// SYSTEM_RESET2, SMC64 form.
    pub const SYSTEM_RESET2_64: u64 = 0xC400_0012;
}

/// The registers an exception to EL2 reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Arm64Trap {
    /// ESR_EL2: the syndrome.
    pub esr: u64,
    /// FAR_EL2: the faulting virtual address (aborts, watchpoints).
    pub far: u64,
    /// HPFAR_EL2: the faulting IPA's page, for stage-2 aborts.
    pub hpfar: u64,
}

/// The faulting intermediate physical address: HPFAR_EL2.FIPA (bits 47:4,
/// IPA bits 55:12) and the page offset from FAR_EL2.
pub fn fault_ipa(far: u64, hpfar: u64) -> u64 {
    ((hpfar >> 4) & 0x0FFF_FFFF_FFFF) << 12 | (far & 0xFFF)
}

/// An MMIO access fully described by the syndrome (ISV = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioAccess {
    /// The guest-physical (intermediate physical) address.
    pub ipa: u64,
    /// A store.
    pub write: bool,
    /// Bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// A load that sign-extends (LDRSB, LDRSH, LDRSW).
    pub sign_extend: bool,
    /// The transfer register, 0-30, or 31 for xzr/wzr.
    pub reg: u8,
    /// The register is 64-bit (Xt), else 32-bit (Wt).
    pub sf: bool,
}

/// A debug event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm64Debug {
    /// A hardware breakpoint fired at PC.
    Breakpoint,
    /// One instruction was stepped.
    SoftwareStep,
    /// A watchpoint fired on an access to `addr`.
    Watchpoint {
        /// FAR_EL2.
        addr: u64,
        /// The watchpoint's number, if the syndrome says (FEAT_Debugv8p9).
        number: Option<u8>,
    },
    /// A `brk #comment`.
    Brk(u16),
}

/// What the guest did, as far as the trap tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm64Exit {
    /// A data abort with a valid syndrome on an IPA that is not RAM.
    Mmio(MmioAccess),
    /// A data abort on an IPA that is not RAM whose instruction the
    /// syndrome does not describe (ISV = 0: a load/store pair, a
    /// writeback form, SIMD): the instruction is not decodable from the
    /// syndrome; the VMM must decode it from guest memory or refuse it.
    MmioUndecodable {
        /// The IPA.
        ipa: u64,
        /// A store, per WnR.
        write: bool,
    },
    /// `hvc #imm16`: a hypercall (x0 = number, x1-x4 = arguments) or PSCI.
    Hvc(u16),
    /// `smc #imm16`: PSCI or another firmware call.
    Smc(u16),
    /// WFI / WFE (and the timed forms): the vCPU waits.
    Wait(WfxKind),
    /// A trapped system register access or system instruction.
    SysReg(SysRegIss),
    /// A debug event.
    Debug(Arm64Debug),
    /// Anything else: a stage-2 fault on RAM, an abort on a table walk, an
    /// exception taken at EL2 itself, an undefined instruction...
    Other(Syndrome),
}

/// What the trap means; `is_ram(ipa)` says whether guest RAM backs an IPA
/// (an abort there is the hypervisor's own paging business, not MMIO).
pub fn describe(trap: &Arm64Trap, is_ram: impl Fn(u64) -> bool) -> Arm64Exit {
    let syndrome = Syndrome::decode(trap.esr);
    match syndrome {
        Syndrome::DataAbort {
            same_el: false,
            iss,
        } if !iss.s1ptw
            && !iss.cm
            && matches!(
                iss.dfsc,
                FaultStatus::Translation(_)
                    | FaultStatus::AccessFlag(_)
                    | FaultStatus::Permission(_)
            ) =>
        {
            let ipa = fault_ipa(trap.far, trap.hpfar);
            if is_ram(ipa) {
                Arm64Exit::Other(syndrome)
            } else if iss.isv {
                Arm64Exit::Mmio(MmioAccess {
                    ipa,
                    write: iss.wnr,
                    size: iss.access_size(),
                    sign_extend: iss.sse,
                    reg: iss.srt,
                    sf: iss.sf,
                })
            } else {
                Arm64Exit::MmioUndecodable {
                    ipa,
                    write: iss.wnr,
                }
            }
        }
        Syndrome::Hvc { imm16 } => Arm64Exit::Hvc(imm16),
        Syndrome::Smc { imm16 } => Arm64Exit::Smc(imm16),
        Syndrome::Wfx(w) => Arm64Exit::Wait(w.ti),
        Syndrome::SysReg(s) => Arm64Exit::SysReg(s),
        Syndrome::Breakpoint { same_el: false } => Arm64Exit::Debug(Arm64Debug::Breakpoint),
        Syndrome::SoftwareStep { same_el: false, .. } => Arm64Exit::Debug(Arm64Debug::SoftwareStep),
        Syndrome::Watchpoint {
            same_el: false,
            iss,
        } => Arm64Exit::Debug(Arm64Debug::Watchpoint {
            addr: trap.far,
            number: iss.wptv.then_some(iss.wpt),
        }),
        Syndrome::Brk { comment } => Arm64Exit::Debug(Arm64Debug::Brk(comment)),
        other => Arm64Exit::Other(other),
    }
}

fn x(regs: &[u64; 31], n: u8) -> u64 {
    regs.get(usize::from(n)).copied().unwrap_or(0) // x31 = xzr
}

/// The hypercall or PSCI request in x0-x4.
fn call(regs: &[u64; 31]) -> Option<VmExit<'static>> {
    match x(regs, 0) {
        psci::SYSTEM_OFF => Some(VmExit::Shutdown(ShutdownReason::PowerOff)),
        psci::SYSTEM_RESET | psci::SYSTEM_RESET2_32 | psci::SYSTEM_RESET2_64 => {
            Some(VmExit::Shutdown(ShutdownReason::Reset))
        }
        _ => None,
    }
}

fn debug_cause(event: &Arm64Debug, pc: u64, debug: Option<&GuestDebug>) -> DebugCause {
    let slots = debug.map(|d| d.hw).unwrap_or_default();
    match *event {
        Arm64Debug::SoftwareStep => DebugCause::SingleStep,
        Arm64Debug::Brk(_) => DebugCause::SoftwareBreakpoint,
        Arm64Debug::Breakpoint => slots
            .iter()
            .position(|s| s.is_some_and(|b| b.kind == HwBreakKind::Execute && b.addr == pc))
            .map_or(DebugCause::Unknown, |i| DebugCause::HwBreakpoint(i as u8)),
        Arm64Debug::Watchpoint {
            number: Some(n), ..
        } => DebugCause::Watchpoint(n),
        Arm64Debug::Watchpoint { addr, number: None } => slots
            .iter()
            .position(|s| {
                s.is_some_and(|b| {
                    b.kind != HwBreakKind::Execute
                        && addr >= b.addr
                        && addr - b.addr < u64::from(b.len.max(1))
                })
            })
            .map_or(DebugCause::Unknown, |i| DebugCause::Watchpoint(i as u8)),
    }
}

/// The arch-neutral exit for `exit`, given the guest's x0-x30, its PC, the
/// guest-debug configuration (to name breakpoint slots) and a buffer the
/// MMIO data lives in. `esr` is kept for [`VmExit::Unknown`].
///
/// - `Mmio` -> `MmioRead` (fill `data`, then [`mmio_read_result`]) or
///   `MmioWrite` (the low `size` bytes of the register, little-endian);
/// - `MmioUndecodable` -> `EmulationFailure` with no instruction bytes;
/// - `Hvc` -> `Hypercall` (x0 = number, x1-x4), or `Shutdown` for PSCI
///   SYSTEM_OFF / SYSTEM_RESET(2) in x0; `Smc` -> `Shutdown` for those,
///   else `Unknown` (Seraph hypercalls use HVC);
/// - `Wait` -> `Halt`; `Debug` -> `Debug`; the rest -> `Unknown { reason: esr }`.
pub fn to_vm_exit<'a>(
    exit: &Arm64Exit,
    esr: u64,
    regs: &[u64; 31],
    pc: u64,
    debug: Option<&GuestDebug>,
    buf: &'a mut [u8; 8],
) -> VmExit<'a> {
    match exit {
        Arm64Exit::Mmio(m) => {
            let size = usize::from(m.size).clamp(1, 8);
            if m.write {
                let value = x(regs, m.reg).to_le_bytes();
                buf[..size].copy_from_slice(&value[..size]);
                VmExit::MmioWrite {
                    addr: m.ipa,
                    data: &buf[..size],
                }
            } else {
                VmExit::MmioRead {
                    addr: m.ipa,
                    data: &mut buf[..size],
                }
            }
        }
        Arm64Exit::MmioUndecodable { .. } => VmExit::EmulationFailure { instruction: None },
        Arm64Exit::Hvc(_) => call(regs).unwrap_or(VmExit::Hypercall(Hypercall {
            nr: x(regs, 0),
            args: [x(regs, 1), x(regs, 2), x(regs, 3), x(regs, 4)],
        })),
        Arm64Exit::Smc(_) => call(regs).unwrap_or(VmExit::Unknown { reason: esr }),
        Arm64Exit::Wait(_) => VmExit::Halt,
        Arm64Exit::Debug(event) => VmExit::Debug {
            pc,
            cause: debug_cause(event, pc, debug),
        },
        Arm64Exit::SysReg(_) | Arm64Exit::Other(_) => VmExit::Unknown { reason: esr },
    }
}

/// After an MMIO read of `data` (1-8 bytes, little-endian): the register
/// and the value it receives, sign-extended if the load does, and
/// zero-extended from 32 bits for a W register. `None` for xzr (the value
/// is discarded) or a write access.
pub fn mmio_read_result(access: &MmioAccess, data: &[u8]) -> Option<(u8, u64)> {
    if access.write || access.reg >= 31 {
        return None;
    }
    let size = usize::from(access.size).clamp(1, 8).min(data.len());
    let mut bytes = [0u8; 8];
    bytes[..size].copy_from_slice(&data[..size]);
    let mut value = u64::from_le_bytes(bytes);
    let bits = 8 * size as u32;
    if access.sign_extend && bits < 64 {
        let shift = 64 - bits;
        value = (((value << shift) as i64) >> shift) as u64;
    }
    if !access.sf {
        value &= 0xFFFF_FFFF;
    }
    Some((access.reg, value))
}
