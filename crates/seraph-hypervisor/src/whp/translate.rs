//! Pure WHP translation: exit contexts to an owned [`RawExit`]. What the
//! vCPU does with each is [`super::plan::plan_exit`]; register conversions
//! are in `registers.rs`, CPUID tables in `cpuid.rs`, region checks in
//! `regions.rs`.
//!
//! Nothing here calls into `winhvplatform.dll`, so all of it is unit-tested
//! on Linux with hand-built `WHV_RUN_VP_EXIT_CONTEXT`s. The only `unsafe` is
//! reading `windows-sys` unions, every variant of which is plain data for
//! which every bit pattern is valid.

#![allow(non_upper_case_globals)] // the WHV exit-reason constants are matched on

use windows_sys::Win32::System::Hypervisor::{
    WHV_HYPERCALL_CONTEXT, WHV_REGISTER_NAME, WHV_RUN_VP_EXIT_CONTEXT, WHV_VP_EXIT_CONTEXT,
    WHvRunVpExitReasonCanceled, WHvRunVpExitReasonException, WHvRunVpExitReasonHypercall,
    WHvRunVpExitReasonInvalidVpRegisterValue, WHvRunVpExitReasonMemoryAccess,
    WHvRunVpExitReasonNone, WHvRunVpExitReasonUnrecoverableException,
    WHvRunVpExitReasonUnsupportedFeature, WHvRunVpExitReasonX64ApicEoi, WHvRunVpExitReasonX64Cpuid,
    WHvRunVpExitReasonX64Halt, WHvRunVpExitReasonX64InterruptWindow,
    WHvRunVpExitReasonX64IoPortAccess, WHvRunVpExitReasonX64MsrAccess, WHvX64RegisterRcx,
    WHvX64RegisterRdi, WHvX64RegisterRdx, WHvX64RegisterRsi,
};

use crate::exit::{Hypercall, InstructionBytes};
use crate::x86::RFLAGS_IF;

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

#[cfg(test)]
mod tests;
