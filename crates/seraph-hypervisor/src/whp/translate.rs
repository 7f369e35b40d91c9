//! Pure WHP translation: exit contexts to an owned [`RawExit`], register
//! structs to and from `WHV_REGISTER_VALUE` arrays, CPUID tables, and the
//! register writes that finish an exit.
//!
//! Nothing here calls into `winhvplatform.dll`, so all of it is unit-tested
//! on Linux with hand-built `WHV_RUN_VP_EXIT_CONTEXT`s. The only `unsafe` is
//! reading `windows-sys` unions, every variant of which is plain data for
//! which every bit pattern is valid.

#![allow(non_upper_case_globals)] // the WHV exit-reason constants are matched on

use windows_sys::Win32::System::Hypervisor::{
    WHV_HYPERCALL_CONTEXT, WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHV_RUN_VP_EXIT_CONTEXT,
    WHV_VP_EXIT_CONTEXT, WHV_X64_SEGMENT_REGISTER, WHV_X64_TABLE_REGISTER,
    WHvRunVpExitReasonCanceled, WHvRunVpExitReasonException, WHvRunVpExitReasonHypercall,
    WHvRunVpExitReasonInvalidVpRegisterValue, WHvRunVpExitReasonMemoryAccess,
    WHvRunVpExitReasonNone, WHvRunVpExitReasonUnrecoverableException,
    WHvRunVpExitReasonUnsupportedFeature, WHvRunVpExitReasonX64ApicEoi, WHvRunVpExitReasonX64Cpuid,
    WHvRunVpExitReasonX64Halt, WHvRunVpExitReasonX64InterruptWindow,
    WHvRunVpExitReasonX64IoPortAccess, WHvRunVpExitReasonX64MsrAccess, WHvX64RegisterApicBase,
    WHvX64RegisterCr0, WHvX64RegisterCr2, WHvX64RegisterCr3, WHvX64RegisterCr4, WHvX64RegisterCr8,
    WHvX64RegisterCs, WHvX64RegisterDs, WHvX64RegisterEfer, WHvX64RegisterEs, WHvX64RegisterFs,
    WHvX64RegisterGdtr, WHvX64RegisterGs, WHvX64RegisterIdtr, WHvX64RegisterLdtr, WHvX64RegisterR8,
    WHvX64RegisterR9, WHvX64RegisterR10, WHvX64RegisterR11, WHvX64RegisterR12, WHvX64RegisterR13,
    WHvX64RegisterR14, WHvX64RegisterR15, WHvX64RegisterRax, WHvX64RegisterRbp, WHvX64RegisterRbx,
    WHvX64RegisterRcx, WHvX64RegisterRdi, WHvX64RegisterRdx, WHvX64RegisterRflags,
    WHvX64RegisterRip, WHvX64RegisterRsi, WHvX64RegisterRsp, WHvX64RegisterSs, WHvX64RegisterTr,
};

use crate::exit::{Hypercall, InstructionBytes, ShutdownReason, VmExit};
use crate::x86::{CpuidEntry, DescriptorTable, RFLAGS_IF, Regs, Segment, SpecialRegs};

/// The execution state every exit context carries (`WHV_VP_EXIT_CONTEXT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecState {
    /// RIP at the exit (the instruction that caused it).
    pub rip: u64,
    /// RFLAGS at the exit.
    pub rflags: u64,
    /// Length of the intercepted instruction (0 when not reported).
    pub instruction_length: u8,
    /// An interruption (event) is already pending injection.
    pub interruption_pending: bool,
    /// The guest is in an interrupt shadow (after STI or MOV SS).
    pub interrupt_shadow: bool,
    /// CR8 (TPR bits 7:4) at the exit.
    pub cr8: u8,
}

impl ExecState {
    /// The state of a vCPU that has not run yet: RFLAGS = 0x2 (IF clear).
    pub const RESET: ExecState = ExecState {
        rip: 0xFFF0,
        rflags: crate::x86::RFLAGS_RESERVED,
        instruction_length: 0,
        interruption_pending: false,
        interrupt_shadow: false,
        cr8: 0,
    };

    /// True if an external interrupt can be injected now: IF = 1, no
    /// interrupt shadow, nothing already pending.
    pub fn can_inject_interrupt(&self) -> bool {
        self.rflags & RFLAGS_IF != 0 && !self.interrupt_shadow && !self.interruption_pending
    }

    /// RIP after the intercepted instruction (`fallback` when WHP did not
    /// report a length).
    pub fn next_rip(&self, fallback: u8) -> u64 {
        let len = if self.instruction_length == 0 {
            fallback
        } else {
            self.instruction_length
        };
        self.rip.wrapping_add(u64::from(len))
    }
}

/// Reads the execution state out of a `WHV_VP_EXIT_CONTEXT`.
pub fn exec_state(vp: &WHV_VP_EXIT_CONTEXT) -> ExecState {
    // SAFETY: WHV_X64_VP_EXECUTION_STATE is a union of a u16 bitfield struct
    // and a u16; every bit pattern is a valid u16.
    let bits = unsafe { vp.ExecutionState.AsUINT16 };
    ExecState {
        rip: vp.Rip,
        rflags: vp.Rflags,
        instruction_length: vp._bitfield & 0x0F,
        interruption_pending: bits & (1 << 6) != 0,
        interrupt_shadow: bits & (1 << 12) != 0,
        cr8: vp._bitfield >> 4,
    }
}

/// A port access (`WHV_X64_IO_PORT_ACCESS_CONTEXT`), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortIo {
    /// Port number.
    pub port: u16,
    /// Element size: 1, 2 or 4 bytes.
    pub size: u8,
    /// `out`/`outs` (true) or `in`/`ins`.
    pub is_write: bool,
    /// `ins`/`outs`.
    pub string: bool,
    /// REP prefix present.
    pub rep: bool,
    /// RAX at the exit.
    pub rax: u64,
    /// RCX at the exit (the repeat count for REP string I/O is its low
    /// `address_size` bytes).
    pub rcx: u64,
    /// The instruction's address size in bytes (2, 4 or 8), from the code
    /// segment, EFER.LMA and any 0x67 prefix.
    pub address_size: u8,
    /// RSI at the exit.
    pub rsi: u64,
    /// RDI at the exit.
    pub rdi: u64,
    /// The instruction, as WHP fetched it.
    pub instruction: InstructionBytes,
}

impl PortIo {
    /// The bytes an `out` writes: the low `size` bytes of RAX.
    pub fn out_data(&self) -> ([u8; 4], usize) {
        let bytes = (self.rax as u32).to_le_bytes();
        (bytes, usize::from(self.size.min(4)))
    }

    /// How many elements a string access moves (1 without REP): CX, ECX or
    /// RCX by the address size.
    pub fn element_count(&self) -> u64 {
        if self.rep {
            super::addressing::repeat_count(self.rcx, self.address_size)
        } else {
            1
        }
    }
}

/// How a memory access touched guest-physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryAccessType {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Execute,
}

/// A memory-access exit (`WHV_MEMORY_ACCESS_CONTEXT`), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryAccess {
    /// Guest-physical address.
    pub gpa: u64,
    /// Guest-virtual address, if WHP reported one.
    pub gva: Option<u64>,
    /// Read, write or fetch.
    pub access: MemoryAccessType,
    /// The GPA is not mapped at all (as opposed to mapped without the right permission).
    pub gpa_unmapped: bool,
    /// The instruction, as WHP fetched it.
    pub instruction: InstructionBytes,
}

/// A guest exception WHP reported (only with an exception exit bitmap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionInfo {
    /// Exception vector.
    pub vector: u8,
    /// The error code, if the exception pushes one.
    pub error_code: Option<u32>,
    /// Exception parameter (CR2 for a page fault).
    pub parameter: u64,
    /// The faulting instruction.
    pub instruction: InstructionBytes,
}

/// An exit context, decoded into owned data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawExit {
    /// No exit reason (should not happen; the run is retried).
    None,
    /// Port I/O.
    PortIo(PortIo),
    /// Access to unmapped or protected guest-physical memory.
    Memory(MemoryAccess),
    /// RDMSR (`is_write = false`) or WRMSR of `value` (EDX:EAX).
    Msr {
        /// MSR number (ECX).
        index: u32,
        /// WRMSR.
        is_write: bool,
        /// EDX:EAX (meaningful for WRMSR).
        value: u64,
    },
    /// CPUID.
    Cpuid {
        /// EAX at the CPUID.
        leaf: u32,
        /// ECX at the CPUID.
        subleaf: u32,
        /// What WHP would answer: EAX, EBX, ECX, EDX.
        default: [u32; 4],
    },
    /// VMCALL/VMMCALL, with the spec's register convention applied.
    Hypercall(Hypercall),
    /// HLT.
    Halt,
    /// The interrupt window requested through the deliverability notifications opened.
    InterruptWindow,
    /// `WHvCancelRunVirtualProcessor` stopped the run.
    Canceled,
    /// A guest exception (only with an exception exit bitmap).
    Exception(ExceptionInfo),
    /// The guest hit an exception it cannot take (triple fault).
    UnrecoverableException,
    /// The VP's register state is invalid for entry.
    InvalidVpRegisterValue,
    /// The guest used a feature WHP does not support.
    UnsupportedFeature {
        /// `WHV_X64_UNSUPPORTED_FEATURE_CODE`.
        code: i32,
        /// Feature parameter.
        parameter: u64,
    },
    /// An EOI write (only with the WHP local APIC, which this backend does not use).
    ApicEoi {
        /// The vector.
        vector: u32,
    },
    /// Any other exit reason.
    Other {
        /// The raw `WHV_RUN_VP_EXIT_REASON`.
        reason: i32,
    },
}

fn instruction_bytes(count: u8, bytes: &[u8; 16]) -> InstructionBytes {
    let n = usize::from(count).min(15);
    InstructionBytes::from_slice(&bytes[..n])
}

/// Decodes an exit context. Never panics, whatever the context holds.
pub fn decode_exit(ctx: &WHV_RUN_VP_EXIT_CONTEXT) -> RawExit {
    match ctx.ExitReason {
        WHvRunVpExitReasonNone => RawExit::None,
        WHvRunVpExitReasonX64IoPortAccess => {
            // SAFETY: the exit reason says IoPortAccess is the live variant;
            // it is plain data (integers and segment structs).
            let io = unsafe { ctx.Anonymous.IoPortAccess };
            // SAFETY: a union of a u32 bitfield struct and a u32.
            let info = unsafe { io.AccessInfo.AsUINT32 };
            let size = ((info >> 1) & 0x7) as u8;
            let instruction = instruction_bytes(io.InstructionByteCount, &io.InstructionBytes);
            // SAFETY: unions of a u16 bitfield struct and a u16.
            let (exec, cs) = unsafe {
                (
                    ctx.VpContext.ExecutionState.AsUINT16,
                    ctx.VpContext.Cs.Anonymous.Attributes,
                )
            };
            let address_size = super::addressing::address_size(
                instruction.as_slice(),
                exec & (1 << 4) != 0,
                cs & (1 << 13) != 0,
                cs & (1 << 14) != 0,
            );
            RawExit::PortIo(PortIo {
                port: io.PortNumber,
                size,
                is_write: info & 1 != 0,
                string: info & (1 << 4) != 0,
                rep: info & (1 << 5) != 0,
                rax: io.Rax,
                rcx: io.Rcx,
                rsi: io.Rsi,
                rdi: io.Rdi,
                address_size,
                instruction,
            })
        }
        WHvRunVpExitReasonMemoryAccess => {
            // SAFETY: MemoryAccess is the live variant; plain data.
            let mem = unsafe { ctx.Anonymous.MemoryAccess };
            // SAFETY: a union of a u32 bitfield struct and a u32.
            let info = unsafe { mem.AccessInfo.AsUINT32 };
            let access = match info & 0x3 {
                0 => MemoryAccessType::Read,
                1 => MemoryAccessType::Write,
                _ => MemoryAccessType::Execute,
            };
            RawExit::Memory(MemoryAccess {
                gpa: mem.Gpa,
                gva: (info & (1 << 3) != 0).then_some(mem.Gva),
                access,
                gpa_unmapped: info & (1 << 2) != 0,
                instruction: instruction_bytes(mem.InstructionByteCount, &mem.InstructionBytes),
            })
        }
        WHvRunVpExitReasonX64MsrAccess => {
            // SAFETY: MsrAccess is the live variant; plain data.
            let msr = unsafe { ctx.Anonymous.MsrAccess };
            // SAFETY: a union of a u32 bitfield struct and a u32.
            let info = unsafe { msr.AccessInfo.AsUINT32 };
            RawExit::Msr {
                index: msr.MsrNumber,
                is_write: info & 1 != 0,
                value: (msr.Rdx << 32) | (msr.Rax & 0xFFFF_FFFF),
            }
        }
        WHvRunVpExitReasonX64Cpuid => {
            // SAFETY: CpuidAccess is the live variant; plain data.
            let c = unsafe { ctx.Anonymous.CpuidAccess };
            RawExit::Cpuid {
                leaf: c.Rax as u32,
                subleaf: c.Rcx as u32,
                default: [
                    c.DefaultResultRax as u32,
                    c.DefaultResultRbx as u32,
                    c.DefaultResultRcx as u32,
                    c.DefaultResultRdx as u32,
                ],
            }
        }
        WHvRunVpExitReasonHypercall => {
            // SAFETY: Hypercall is the live variant; plain data.
            let h = unsafe { ctx.Anonymous.Hypercall };
            RawExit::Hypercall(hypercall_from_context(&h))
        }
        WHvRunVpExitReasonX64Halt => RawExit::Halt,
        WHvRunVpExitReasonX64InterruptWindow => RawExit::InterruptWindow,
        WHvRunVpExitReasonCanceled => RawExit::Canceled,
        WHvRunVpExitReasonException => {
            // SAFETY: VpException is the live variant; plain data.
            let e = unsafe { ctx.Anonymous.VpException };
            // SAFETY: a union of a u32 bitfield struct and a u32.
            let info = unsafe { e.ExceptionInfo.AsUINT32 };
            RawExit::Exception(ExceptionInfo {
                vector: e.ExceptionType,
                error_code: (info & 1 != 0).then_some(e.ErrorCode),
                parameter: e.ExceptionParameter,
                instruction: instruction_bytes(e.InstructionByteCount, &e.InstructionBytes),
            })
        }
        WHvRunVpExitReasonUnrecoverableException => RawExit::UnrecoverableException,
        WHvRunVpExitReasonInvalidVpRegisterValue => RawExit::InvalidVpRegisterValue,
        WHvRunVpExitReasonUnsupportedFeature => {
            // SAFETY: UnsupportedFeature is the live variant; plain data.
            let u = unsafe { ctx.Anonymous.UnsupportedFeature };
            RawExit::UnsupportedFeature {
                code: u.FeatureCode,
                parameter: u.FeatureParameter,
            }
        }
        WHvRunVpExitReasonX64ApicEoi => {
            // SAFETY: ApicEoi is the live variant; plain data.
            let eoi = unsafe { ctx.Anonymous.ApicEoi };
            RawExit::ApicEoi {
                vector: eoi.InterruptVector,
            }
        }
        reason => RawExit::Other { reason },
    }
}

/// The spec's hypercall convention (RAX = number; RDI, RSI, RDX, RCX) read
/// out of a native VMCALL exit.
pub fn hypercall_from_context(h: &WHV_HYPERCALL_CONTEXT) -> Hypercall {
    Hypercall {
        nr: h.Rax,
        args: [h.Rdi, h.Rsi, h.Rdx, h.Rcx],
    }
}

/// The registers read after an `out` to the hypercall port, in the order
/// [`hypercall_from_port`] takes them. The exit context carries RCX, RSI
/// and RDI too, but WHP documents them for string I/O only; they are read
/// with RDX in the one register call the exit needs anyway.
pub const PORT_HYPERCALL_REGISTERS: [WHV_REGISTER_NAME; 4] = [
    WHvX64RegisterRdi,
    WHvX64RegisterRsi,
    WHvX64RegisterRdx,
    WHvX64RegisterRcx,
];

/// The same convention for the port transport (`out` to the hypercall
/// port): RAX (the `out` data) from the exit context, the arguments
/// RDI, RSI, RDX, RCX read as [`PORT_HYPERCALL_REGISTERS`].
pub fn hypercall_from_port(rax: u64, args: [u64; 4]) -> Hypercall {
    Hypercall { nr: rax, args }
}

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
                    result: lookup_cpuid(table, leaf, subleaf).unwrap_or([0; 4]),
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

/// Finds the CPUID entry for `leaf`/`subleaf` (`subleaf` only matters for
/// entries with `significant_index`).
pub fn lookup_cpuid(table: &[CpuidEntry], leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
    table
        .iter()
        .find(|e| e.function == leaf && (!e.significant_index || e.index == subleaf))
        .map(|e| [e.eax, e.ebx, e.ecx, e.edx])
}

/// The CPUID leaves the partition is told to exit on, so that each vCPU
/// answers them from its `set_cpuid` table: all standard leaves up to 0x20,
/// the hypervisor range 0x4000_0000-0x4000_0010 and the extended leaves up to
/// 0x8000_0021. WHP fixes the list before `WHvSetupPartition`; other
/// leaves get WHP's own answers.
pub fn cpuid_exit_leaves() -> Vec<u32> {
    (0..=0x20u32)
        .chain(0x4000_0000..=0x4000_0010)
        .chain(0x8000_0000..=0x8000_0021)
        .collect()
}

/// Subleaf counts queried for leaves whose answer depends on ECX.
const SUBLEAVES: &[(u32, u32)] = &[
    (0x4, 8),
    (0x7, 3),
    (0xB, 4),
    (0xD, 20),
    (0xF, 2),
    (0x10, 4),
    (0x12, 4),
    (0x14, 2),
    (0x17, 4),
    (0x18, 4),
    (0x1D, 2),
    (0x1F, 6),
    (0x8000_001D, 5),
];

/// The (leaf, subleaf, significant_index) triples `supported_cpuid`
/// queries, given the maximum basic and extended leaves that leaf 0 and
/// leaf 0x8000_0000 report (capped at 0x20 and 0x8000_0021).
pub fn cpuid_query_plan(max_basic: u32, max_extended: u32) -> Vec<(u32, u32, bool)> {
    let basic = 0..=max_basic.min(0x20);
    let extended = if max_extended >= 0x8000_0000 {
        0x8000_0000..=max_extended.min(0x8000_0021)
    } else {
        0x8000_0000..=0x8000_0000
    };
    let mut plan = Vec::new();
    for leaf in basic.chain(extended) {
        match SUBLEAVES.iter().find(|(l, _)| *l == leaf) {
            Some(&(_, count)) => plan.extend((0..count).map(|sub| (leaf, sub, true))),
            None => plan.push((leaf, 0, false)),
        }
    }
    plan
}

/// Register names for [`Regs`], in the order of [`regs_to_values`].
pub const REGS_NAMES: [WHV_REGISTER_NAME; 18] = [
    WHvX64RegisterRax,
    WHvX64RegisterRbx,
    WHvX64RegisterRcx,
    WHvX64RegisterRdx,
    WHvX64RegisterRsi,
    WHvX64RegisterRdi,
    WHvX64RegisterRsp,
    WHvX64RegisterRbp,
    WHvX64RegisterR8,
    WHvX64RegisterR9,
    WHvX64RegisterR10,
    WHvX64RegisterR11,
    WHvX64RegisterR12,
    WHvX64RegisterR13,
    WHvX64RegisterR14,
    WHvX64RegisterR15,
    WHvX64RegisterRip,
    WHvX64RegisterRflags,
];

fn reg64(v: u64) -> WHV_REGISTER_VALUE {
    let mut r = WHV_REGISTER_VALUE::default();
    r.Reg64 = v;
    r
}

fn get64(v: &WHV_REGISTER_VALUE) -> u64 {
    // SAFETY: WHV_REGISTER_VALUE is a 16-byte union of plain integers and
    // structs of integers; any bit pattern is a valid u64 in its first 8 bytes.
    unsafe { v.Reg64 }
}

/// [`Regs`] as values for [`REGS_NAMES`].
pub fn regs_to_values(r: &Regs) -> [WHV_REGISTER_VALUE; 18] {
    [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15, r.rip, r.rflags,
    ]
    .map(reg64)
}

/// [`Regs`] from values read for [`REGS_NAMES`].
pub fn regs_from_values(v: &[WHV_REGISTER_VALUE; 18]) -> Regs {
    let g: [u64; 18] = std::array::from_fn(|i| get64(&v[i]));
    Regs {
        rax: g[0],
        rbx: g[1],
        rcx: g[2],
        rdx: g[3],
        rsi: g[4],
        rdi: g[5],
        rsp: g[6],
        rbp: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: g[16],
        rflags: g[17],
    }
}

/// Register names for [`SpecialRegs`], in the order of [`sregs_to_values`].
pub const SREGS_NAMES: [WHV_REGISTER_NAME; 17] = [
    WHvX64RegisterCs,
    WHvX64RegisterDs,
    WHvX64RegisterEs,
    WHvX64RegisterFs,
    WHvX64RegisterGs,
    WHvX64RegisterSs,
    WHvX64RegisterTr,
    WHvX64RegisterLdtr,
    WHvX64RegisterGdtr,
    WHvX64RegisterIdtr,
    WHvX64RegisterCr0,
    WHvX64RegisterCr2,
    WHvX64RegisterCr3,
    WHvX64RegisterCr4,
    WHvX64RegisterCr8,
    WHvX64RegisterEfer,
    WHvX64RegisterApicBase,
];

/// A [`Segment`] as WHP's segment register. WHP has no "unusable" bit: an
/// unusable segment is written as not present.
pub fn segment_to_whv(s: &Segment) -> WHV_X64_SEGMENT_REGISTER {
    let present = s.present && !s.unusable;
    let attributes = u16::from(s.type_ & 0xF)
        | u16::from(s.s) << 4
        | u16::from(s.dpl & 0x3) << 5
        | u16::from(present) << 7
        | u16::from(s.avl) << 12
        | u16::from(s.l) << 13
        | u16::from(s.db) << 14
        | u16::from(s.g) << 15;
    let mut seg = WHV_X64_SEGMENT_REGISTER {
        Base: s.base,
        Limit: s.limit,
        Selector: s.selector,
        ..Default::default()
    };
    seg.Anonymous.Attributes = attributes;
    seg
}

/// A WHP segment register as a [`Segment`] (not present reads back as unusable).
pub fn segment_from_whv(seg: &WHV_X64_SEGMENT_REGISTER) -> Segment {
    // SAFETY: a union of a u16 bitfield struct and a u16.
    let a = unsafe { seg.Anonymous.Attributes };
    let present = a & (1 << 7) != 0;
    Segment {
        base: seg.Base,
        limit: seg.Limit,
        selector: seg.Selector,
        type_: (a & 0xF) as u8,
        s: a & (1 << 4) != 0,
        dpl: ((a >> 5) & 0x3) as u8,
        present,
        avl: a & (1 << 12) != 0,
        l: a & (1 << 13) != 0,
        db: a & (1 << 14) != 0,
        g: a & (1 << 15) != 0,
        unusable: !present,
    }
}

fn seg_value(s: &Segment) -> WHV_REGISTER_VALUE {
    let mut r = WHV_REGISTER_VALUE::default();
    r.Segment = segment_to_whv(s);
    r
}

fn table_value(t: &DescriptorTable) -> WHV_REGISTER_VALUE {
    let mut r = WHV_REGISTER_VALUE::default();
    r.Table = WHV_X64_TABLE_REGISTER {
        Pad: [0; 3],
        Limit: t.limit,
        Base: t.base,
    };
    r
}

fn seg_of(v: &WHV_REGISTER_VALUE) -> Segment {
    // SAFETY: plain-data union; any bit pattern is a valid segment register.
    segment_from_whv(&unsafe { v.Segment })
}

fn table_of(v: &WHV_REGISTER_VALUE) -> DescriptorTable {
    // SAFETY: plain-data union; any bit pattern is a valid table register.
    let t = unsafe { v.Table };
    DescriptorTable {
        base: t.Base,
        limit: t.Limit,
    }
}

/// [`SpecialRegs`] as values for [`SREGS_NAMES`].
pub fn sregs_to_values(s: &SpecialRegs) -> [WHV_REGISTER_VALUE; 17] {
    [
        seg_value(&s.cs),
        seg_value(&s.ds),
        seg_value(&s.es),
        seg_value(&s.fs),
        seg_value(&s.gs),
        seg_value(&s.ss),
        seg_value(&s.tr),
        seg_value(&s.ldt),
        table_value(&s.gdt),
        table_value(&s.idt),
        reg64(s.cr0),
        reg64(s.cr2),
        reg64(s.cr3),
        reg64(s.cr4),
        reg64(s.cr8),
        reg64(s.efer),
        reg64(s.apic_base),
    ]
}

/// [`SpecialRegs`] from values read for [`SREGS_NAMES`].
pub fn sregs_from_values(v: &[WHV_REGISTER_VALUE; 17]) -> SpecialRegs {
    SpecialRegs {
        cs: seg_of(&v[0]),
        ds: seg_of(&v[1]),
        es: seg_of(&v[2]),
        fs: seg_of(&v[3]),
        gs: seg_of(&v[4]),
        ss: seg_of(&v[5]),
        tr: seg_of(&v[6]),
        ldt: seg_of(&v[7]),
        gdt: table_of(&v[8]),
        idt: table_of(&v[9]),
        cr0: get64(&v[10]),
        cr2: get64(&v[11]),
        cr3: get64(&v[12]),
        cr4: get64(&v[13]),
        cr8: get64(&v[14]),
        efer: get64(&v[15]),
        apic_base: get64(&v[16]),
    }
}

/// `WHvX64RegisterDeliverabilityNotifications` asking (or not) for an
/// interrupt-window exit.
pub fn deliverability_notifications(interrupt_window: bool) -> WHV_REGISTER_VALUE {
    // InterruptNotification is bit 1 (bit 0 is the NMI notification).
    reg64(u64::from(interrupt_window) << 1)
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

/// WHP's mapping granularity.
pub const PAGE_SIZE: u64 = 4096;

/// Checks a region before `WHvMapGpaRange`: page-aligned guest address,
/// host address and size, no wrap-around, no overlap with `existing`.
pub fn check_region(
    guest_addr: u64,
    size: u64,
    host_addr: usize,
    existing: &[crate::MemoryRegion],
) -> Result<(), String> {
    if size == 0 || size % PAGE_SIZE != 0 {
        return Err(format!(
            "region size {size:#x} is not a non-zero multiple of 4 KiB"
        ));
    }
    if guest_addr % PAGE_SIZE != 0 || (host_addr as u64) % PAGE_SIZE != 0 {
        return Err(format!(
            "region at guest {guest_addr:#x} / host {host_addr:#x} is not 4 KiB aligned"
        ));
    }
    let end = guest_addr
        .checked_add(size)
        .ok_or_else(|| format!("region at {guest_addr:#x} + {size:#x} wraps around"))?;
    for r in existing {
        let r_end = r.guest_addr.saturating_add(r.size);
        if guest_addr < r_end && r.guest_addr < end {
            return Err(format!(
                "region {guest_addr:#x}..{end:#x} overlaps slot {} at {:#x}..{r_end:#x}",
                r.slot, r.guest_addr
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
