//! What the vCPU does with a decoded exit ([`plan_exit`]), and the small
//! register encodings and partition settings that go with it. Pure, and
//! tested with the exit decoding in `translate/tests.rs`.

#![allow(non_upper_case_globals)] // the WHV exit-reason constants are matched on

use windows_sys::Win32::System::Hypervisor::{
    WHV_REGISTER_VALUE, WHvRunVpExitReasonInvalidVpRegisterValue,
};

use super::translate::{ExceptionInfo, ExecState, MemoryAccessType, PortIo, RawExit};
use crate::exit::{Hypercall, ShutdownReason, VmExit};
use crate::x86::CpuidEntry;

/// Length of VMCALL/VMMCALL (0F 01 C1 / 0F 01 D9), used if WHP reports none.
pub const VMCALL_LEN: u8 = 3;

/// What the vCPU does with a decoded exit.
#[derive(Debug, PartialEq, Eq)]
pub enum ExitPlan {
    /// Report this exit as it is.
    Report(VmExit<'static>),
    /// Re-enter the guest without reporting anything.
    Resume,
    /// A plain `out`: report `VmExit::IoOut`, then move RIP to `next_rip`.
    PortOut {
        /// Port number.
        port: u16,
        /// The bytes (the low `len` of RAX).
        data: [u8; 4],
        /// 1, 2 or 4.
        len: usize,
        /// RIP after the `out`.
        next_rip: u64,
    },
    /// A plain `in`: report `VmExit::IoIn`, then merge the answer into RAX
    /// and move RIP to `next_rip`.
    PortIn {
        /// Port number.
        port: u16,
        /// 1, 2 or 4.
        len: usize,
        /// RAX at the exit.
        rax: u64,
        /// RIP after the `in`.
        next_rip: u64,
    },
    /// An `out` to the hypercall port: fetch RDX, report `VmExit::Hypercall`.
    PortHypercall {
        /// The access (RAX, RCX, RSI, RDI).
        io: PortIo,
        /// RIP after the `out`.
        next_rip: u64,
    },
    /// A native VMCALL: report it; completion writes RAX and moves RIP.
    Hypercall {
        /// The call.
        call: Hypercall,
        /// RIP after the VMCALL.
        next_rip: u64,
    },
    /// RDMSR: report `VmExit::MsrRead`.
    MsrRead {
        /// MSR number.
        index: u32,
        /// RIP after the RDMSR.
        next_rip: u64,
    },
    /// WRMSR: report `VmExit::MsrWrite`.
    MsrWrite {
        /// MSR number.
        index: u32,
        /// The value.
        value: u64,
        /// RIP after the WRMSR.
        next_rip: u64,
    },
    /// CPUID answered from the vCPU's table, without a report.
    CpuidAnswer {
        /// EAX, EBX, ECX, EDX.
        result: [u32; 4],
        /// RIP after the CPUID.
        next_rip: u64,
    },
    /// CPUID with no table set: report `VmExit::Cpuid`; WHP's default
    /// answer stands unless the VMM completes it.
    CpuidAsk {
        /// Leaf.
        leaf: u32,
        /// Subleaf.
        subleaf: u32,
        /// WHP's answer.
        default: [u32; 4],
        /// RIP after the CPUID.
        next_rip: u64,
    },
    /// String port I/O or MMIO: run the instruction emulator.
    Emulate,
    /// #DB or #BP through the exception exit bitmap: decide it with the
    /// vCPU's debug state (`super::debug::decode_debug_exception`).
    DebugException(ExceptionInfo),
}

/// Decides what to do with an exit. `cpuid_table` is the vCPU's table from
/// `set_cpuid` (`None` if never set).
pub fn plan_exit(
    raw: &RawExit,
    state: &ExecState,
    hypercall_port: Option<u16>,
    cpuid_table: Option<&[CpuidEntry]>,
) -> ExitPlan {
    match *raw {
        RawExit::None | RawExit::ApicEoi { .. } => ExitPlan::Resume,
        RawExit::PortIo(io) => {
            if io.string {
                return ExitPlan::Emulate;
            }
            // IN/OUT are 1 (in al, dx) or 2 bytes long; 1 is the safe guess
            // when WHP reports nothing (it always reports a length here).
            let next_rip = state.next_rip(1);
            if io.is_write && hypercall_port == Some(io.port) {
                return ExitPlan::PortHypercall { io, next_rip };
            }
            let len = usize::from(io.size);
            if !matches!(len, 1 | 2 | 4) {
                return ExitPlan::Report(VmExit::InternalError {
                    code: 2,
                    detail: format!("WHP port access of size {len} to port {:#x}", io.port),
                });
            }
            if io.is_write {
                let (data, len) = io.out_data();
                ExitPlan::PortOut {
                    port: io.port,
                    data,
                    len,
                    next_rip,
                }
            } else {
                ExitPlan::PortIn {
                    port: io.port,
                    len,
                    rax: io.rax,
                    next_rip,
                }
            }
        }
        RawExit::Memory(mem) => match mem.access {
            MemoryAccessType::Execute => ExitPlan::Report(VmExit::InternalError {
                code: 1,
                detail: format!(
                    "guest fetched an instruction from unbacked guest-physical address {:#x} (RIP {:#x})",
                    mem.gpa, state.rip
                ),
            }),
            _ => ExitPlan::Emulate,
        },
        RawExit::Msr {
            index,
            is_write,
            value,
        } => {
            let next_rip = state.next_rip(2);
            if is_write {
                ExitPlan::MsrWrite {
                    index,
                    value,
                    next_rip,
                }
            } else {
                ExitPlan::MsrRead { index, next_rip }
            }
        }
        RawExit::Cpuid {
            leaf,
            subleaf,
            default,
        } => {
            let next_rip = state.next_rip(2);
            match cpuid_table {
                Some(table) => ExitPlan::CpuidAnswer {
                    result: super::cpuid::lookup_cpuid(table, leaf, subleaf).unwrap_or([0; 4]),
                    next_rip,
                },
                None => ExitPlan::CpuidAsk {
                    leaf,
                    subleaf,
                    default,
                    next_rip,
                },
            }
        }
        RawExit::Hypercall(call) => ExitPlan::Hypercall {
            call,
            next_rip: state.next_rip(VMCALL_LEN),
        },
        RawExit::Halt => ExitPlan::Report(VmExit::Halt),
        RawExit::InterruptWindow => ExitPlan::Report(VmExit::InterruptWindow),
        RawExit::Canceled => ExitPlan::Report(VmExit::Interrupted),
        RawExit::Exception(e) => match e.vector {
            1 | 3 => ExitPlan::DebugException(e),
            v => ExitPlan::Report(VmExit::InternalError {
                code: 3,
                detail: format!(
                    "guest exception {v} (error code {:?}, parameter {:#x}) at RIP {:#x}, instruction {}",
                    e.error_code, e.parameter, state.rip, e.instruction
                ),
            }),
        },
        RawExit::UnrecoverableException => {
            ExitPlan::Report(VmExit::Shutdown(ShutdownReason::TripleFault))
        }
        RawExit::InvalidVpRegisterValue => ExitPlan::Report(VmExit::FailedEntry {
            reason: WHvRunVpExitReasonInvalidVpRegisterValue as u64,
        }),
        RawExit::UnsupportedFeature { code, parameter } => {
            ExitPlan::Report(VmExit::InternalError {
                code: code as u32,
                detail: format!(
                    "WHP: unsupported feature {code} (parameter {parameter:#x}) at RIP {:#x}",
                    state.rip
                ),
            })
        }
        RawExit::Other { reason } => ExitPlan::Report(VmExit::Unknown {
            reason: reason as u32 as u64,
        }),
    }
}

/// The value of RAX after an `in` of `data` (1, 2 or 4 bytes): AL and AX
/// keep the upper bits, a 32-bit `in` zero-extends into RAX.
pub fn merge_in_result(rax: u64, data: &[u8]) -> u64 {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    let v = u64::from(u32::from_le_bytes(b));
    match n {
        1 => (rax & !0xFF) | (v & 0xFF),
        2 => (rax & !0xFFFF) | (v & 0xFFFF),
        4 => v,
        _ => rax,
    }
}

/// `WHvX64RegisterDeliverabilityNotifications` asking (or not) for an
/// interrupt-window exit.
pub fn deliverability_notifications(interrupt_window: bool) -> WHV_REGISTER_VALUE {
    // InterruptNotification is bit 1 (bit 0 is the NMI notification).
    super::reg64(u64::from(interrupt_window) << 1)
}

/// `WHV_EXTENDED_VM_EXITS` bits this backend turns on, each where
/// `available` (from `WHvCapabilityCodeExtendedVmExits`) offers it: CPUID
/// (bit 0), MSR (bit 1) and exception (bit 2, for guest debugging; no
/// vector exits until the exception bitmap asks) exits. Not hypercall
/// exits (bit 5): VMCALL is not a Seraph transport on WHP
/// (`super::config::VMCALL_REACHES_VMM`).
pub fn extended_vm_exits(available: u64) -> u64 {
    let wanted = 1 | (1 << 1) | (1 << 2);
    wanted & available
}

/// `WHV_EMULATOR_STATUS` bit 0: the emulator finished the instruction.
pub fn emulation_succeeded(status: u32) -> bool {
    status & 1 != 0
}

/// A short description of a failed `WHV_EMULATOR_STATUS`.
pub fn emulator_status_text(status: u32) -> String {
    const BITS: [&str; 10] = [
        "success",
        "internal emulation failure",
        "I/O port callback failed",
        "memory callback failed",
        "GVA translation failed",
        "GVA translation gave an unaligned GPA",
        "get-registers callback failed",
        "set-registers callback failed",
        "interrupt caused intercept",
        "guest cannot be faulted",
    ];
    let parts: Vec<&str> = BITS
        .iter()
        .enumerate()
        .filter(|(i, _)| status & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect();
    if parts.is_empty() {
        format!("emulator status {status:#x}")
    } else {
        parts.join(", ")
    }
}
