//! Hand-built exit contexts for every exit reason: decoding and exit plans.

use windows_sys::Win32::System::Hypervisor::{
    WHV_HYPERCALL_CONTEXT, WHV_MEMORY_ACCESS_CONTEXT, WHV_REGISTER_VALUE, WHV_VP_EXCEPTION_CONTEXT,
    WHV_X64_APIC_EOI_CONTEXT, WHV_X64_CPUID_ACCESS_CONTEXT, WHV_X64_IO_PORT_ACCESS_CONTEXT,
    WHV_X64_MSR_ACCESS_CONTEXT, WHV_X64_UNSUPPORTED_FEATURE_CONTEXT, WHvRunVpExitReasonX64Rdtsc,
};

use super::*;
use crate::exit::{ShutdownReason, VmExit};
use crate::whp::plan::*;
use crate::x86::CpuidEntry;

const RIP: u64 = 0x10_0040;

/// A context with `reason`, RIP = 0x100040, RFLAGS = IF|0x2, instruction length `len`.
fn ctx(reason: i32, len: u8) -> WHV_RUN_VP_EXIT_CONTEXT {
    let mut c = WHV_RUN_VP_EXIT_CONTEXT {
        ExitReason: reason,
        ..Default::default()
    };
    c.VpContext.Rip = RIP;
    c.VpContext.Rflags = 0x202;
    c.VpContext._bitfield = len & 0xF;
    c
}

fn state(c: &WHV_RUN_VP_EXIT_CONTEXT) -> ExecState {
    exec_state(&c.VpContext)
}

fn plan(c: &WHV_RUN_VP_EXIT_CONTEXT) -> ExitPlan {
    plan_exit(&decode_exit(c), &state(c), Some(0xE4), None)
}

fn io_ctx(port: u16, info: u32, rax: u64, rcx: u64) -> WHV_RUN_VP_EXIT_CONTEXT {
    let mut c = ctx(WHvRunVpExitReasonX64IoPortAccess, 1);
    let mut io = WHV_X64_IO_PORT_ACCESS_CONTEXT {
        PortNumber: port,
        Rax: rax,
        Rcx: rcx,
        Rsi: 0x5000,
        Rdi: 0x6000,
        InstructionByteCount: 1,
        ..Default::default()
    };
    io.InstructionBytes[0] = 0xEE;
    io.AccessInfo.AsUINT32 = info;
    c.Anonymous.IoPortAccess = io;
    c
}

// AccessInfo bits: IsWrite 0, AccessSize 1-3, StringOp 4, RepPrefix 5.
const WRITE: u32 = 1;
const SIZE1: u32 = 1 << 1;
const SIZE2: u32 = 2 << 1;
const SIZE4: u32 = 4 << 1;
const STRING: u32 = 1 << 4;
const REP: u32 = 1 << 5;

#[test]
fn the_exit_context_has_the_c_layout() {
    assert_eq!(std::mem::size_of::<WHV_RUN_VP_EXIT_CONTEXT>(), 224);
    assert_eq!(std::mem::size_of::<WHV_REGISTER_VALUE>(), 16);
}

#[test]
fn execution_state_bits_decide_injection() {
    let mut c = ctx(WHvRunVpExitReasonX64Halt, 1);
    c.VpContext._bitfield = 0x52; // length 2, CR8 5
    let s = state(&c);
    assert_eq!((s.instruction_length, s.cr8, s.rip), (2, 5, RIP));
    assert!(s.can_inject_interrupt());
    c.VpContext.ExecutionState.AsUINT16 = 1 << 12; // InterruptShadow
    assert!(!state(&c).can_inject_interrupt());
    c.VpContext.ExecutionState.AsUINT16 = 1 << 6; // InterruptionPending
    assert!(!state(&c).can_inject_interrupt());
    c.VpContext.ExecutionState.AsUINT16 = 0;
    c.VpContext.Rflags = 0x2;
    assert!(!state(&c).can_inject_interrupt());
    assert!(!ExecState::RESET.can_inject_interrupt());
}

#[test]
fn out_al_is_an_io_out_with_rip_past_the_instruction() {
    let c = io_ctx(0x3F8, WRITE | SIZE1, 0x1234_5641, 0);
    assert_eq!(
        plan(&c),
        ExitPlan::PortOut {
            port: 0x3F8,
            data: [0x41, 0x56, 0x34, 0x12],
            len: 1,
            next_rip: RIP + 1,
        }
    );
}

#[test]
fn in_ax_and_in_eax_are_io_in_of_the_right_size() {
    let c = io_ctx(0x40, SIZE2, 0xAAAA_BBBB_CCCC_DDDD, 0);
    assert_eq!(
        plan(&c),
        ExitPlan::PortIn {
            port: 0x40,
            len: 2,
            rax: 0xAAAA_BBBB_CCCC_DDDD,
            next_rip: RIP + 1,
        }
    );
    let c4 = io_ctx(0xCFC, SIZE4, 0, 0);
    assert!(matches!(plan(&c4), ExitPlan::PortIn { len: 4, .. }));
}

#[test]
fn in_results_merge_into_rax_like_the_cpu() {
    let rax = 0x1122_3344_5566_7788;
    assert_eq!(merge_in_result(rax, &[0xAB]), 0x1122_3344_5566_77AB);
    assert_eq!(merge_in_result(rax, &[0xCD, 0xAB]), 0x1122_3344_5566_ABCD);
    assert_eq!(merge_in_result(rax, &[1, 2, 3, 4]), 0x0403_0201);
    assert_eq!(merge_in_result(rax, &[]), rax);
}

#[test]
fn string_and_rep_io_go_to_the_emulator() {
    let c = io_ctx(0x3F8, WRITE | SIZE1 | STRING | REP, 0, 12);
    assert_eq!(plan(&c), ExitPlan::Emulate);
    match decode_exit(&c) {
        RawExit::PortIo(io) => {
            assert!(io.string && io.rep && io.is_write);
            assert_eq!(io.element_count(), 12);
            assert_eq!(io.instruction.as_slice(), &[0xEE]);
        }
        other => panic!("decoded {other:?}"),
    }
    let single = io_ctx(0x60, SIZE1 | STRING, 0, 99);
    match decode_exit(&single) {
        RawExit::PortIo(io) => assert_eq!(io.element_count(), 1),
        other => panic!("decoded {other:?}"),
    }
}

#[test]
fn rep_counts_use_cx_ecx_or_rcx_by_address_size() {
    let rcx = 0xDEAD_BEEF_0000_0005;
    let count = |exec: u16, cs_attr: u16, prefix: Option<u8>| {
        let mut c = io_ctx(0x3F8, WRITE | SIZE1 | STRING | REP, 0, rcx);
        c.VpContext.ExecutionState.AsUINT16 = exec;
        c.VpContext.Cs.Anonymous.Attributes = cs_attr;
        if let Some(p) = prefix {
            // SAFETY: IoPortAccess is the live variant of this context.
            unsafe {
                c.Anonymous.IoPortAccess.InstructionBytes[..3].copy_from_slice(&[p, 0xF3, 0x6E]);
                c.Anonymous.IoPortAccess.InstructionByteCount = 3;
            }
        }
        match decode_exit(&c) {
            RawExit::PortIo(io) => io.element_count(),
            other => panic!("decoded {other:?}"),
        }
    };
    const LMA: u16 = 1 << 4;
    const CS_L: u16 = 1 << 13;
    const CS_D: u16 = 1 << 14;
    // 64-bit code: all of RCX; with 0x67, ECX.
    assert_eq!(count(LMA, CS_L, None), rcx);
    assert_eq!(count(LMA, CS_L, Some(0x67)), 5);
    // 32-bit protected mode: ECX, not the stale upper half of RCX.
    assert_eq!(count(0, CS_D, None), 5);
    // 16-bit code: CX.
    assert_eq!(count(0, 0, None), 5);
    let c16 = io_ctx(0x3F8, WRITE | SIZE1 | STRING | REP, 0, 0x3_0002);
    match decode_exit(&c16) {
        RawExit::PortIo(io) => assert_eq!((io.address_size, io.element_count()), (2, 2)),
        other => panic!("decoded {other:?}"),
    }
}

#[test]
fn an_out_to_the_hypercall_port_is_a_hypercall() {
    let c = io_ctx(0xE4, WRITE | SIZE4, 2, 0x44);
    let ExitPlan::PortHypercall { io, next_rip } = plan(&c) else {
        panic!("not a port hypercall");
    };
    assert_eq!(next_rip, RIP + 1);
    assert_eq!(io.rax, 2);
    assert_eq!(
        hypercall_from_port(io.rax, [0x6000, 0x5000, 0x33, 0x44]),
        Hypercall {
            nr: 2,
            args: [0x6000, 0x5000, 0x33, 0x44]
        }
    );
    assert_eq!(
        PORT_HYPERCALL_REGISTERS,
        [
            WHvX64RegisterRdi,
            WHvX64RegisterRsi,
            WHvX64RegisterRdx,
            WHvX64RegisterRcx
        ]
    );
    // An `in` from that port is ordinary port I/O.
    assert!(matches!(
        plan(&io_ctx(0xE4, SIZE4, 0, 0)),
        ExitPlan::PortIn { .. }
    ));
    // Without a hypercall port, an `out` there is ordinary too.
    let raw = decode_exit(&c);
    assert!(matches!(
        plan_exit(&raw, &state(&c), None, None),
        ExitPlan::PortOut { .. }
    ));
}

#[test]
fn a_bad_port_access_size_is_an_internal_error_not_a_panic() {
    let c = io_ctx(0x80, WRITE | (3 << 1), 0, 0);
    assert!(matches!(
        plan(&c),
        ExitPlan::Report(VmExit::InternalError { code: 2, .. })
    ));
}

fn mem_ctx(info: u32, gpa: u64) -> WHV_RUN_VP_EXIT_CONTEXT {
    let mut c = ctx(WHvRunVpExitReasonMemoryAccess, 6);
    let mut m = WHV_MEMORY_ACCESS_CONTEXT {
        InstructionByteCount: 6,
        Gpa: gpa,
        Gva: 0xFFFF_8000_FEE0_0390,
        ..Default::default()
    };
    m.InstructionBytes[..6].copy_from_slice(&[0x8B, 0x04, 0x25, 0x90, 0x03, 0xE0]);
    m.AccessInfo.AsUINT32 = info;
    c.Anonymous.MemoryAccess = m;
    c
}

#[test]
fn mmio_reads_and_writes_are_decoded_and_emulated() {
    // AccessType 0 (read), GpaUnmapped (bit 2), GvaValid (bit 3).
    let c = mem_ctx(0b1100, 0xFEE0_0390);
    assert_eq!(
        decode_exit(&c),
        RawExit::Memory(MemoryAccess {
            gpa: 0xFEE0_0390,
            gva: Some(0xFFFF_8000_FEE0_0390),
            access: MemoryAccessType::Read,
            gpa_unmapped: true,
            instruction: InstructionBytes::from_slice(&[0x8B, 0x04, 0x25, 0x90, 0x03, 0xE0]),
        })
    );
    assert_eq!(plan(&c), ExitPlan::Emulate);
    let w = mem_ctx(0b0001, 0xFEE0_00B0);
    match decode_exit(&w) {
        RawExit::Memory(m) => {
            assert_eq!(m.access, MemoryAccessType::Write);
            assert_eq!(m.gva, None);
            assert!(!m.gpa_unmapped);
        }
        other => panic!("decoded {other:?}"),
    }
    assert_eq!(plan(&w), ExitPlan::Emulate);
}

#[test]
fn an_instruction_fetch_from_mmio_is_reported_not_emulated() {
    let c = mem_ctx(0b0110, 0xC000_0000);
    let ExitPlan::Report(VmExit::InternalError { code, detail }) = plan(&c) else {
        panic!("not reported");
    };
    assert_eq!(code, 1);
    assert!(detail.contains("0xc0000000"), "{detail}");
}

#[test]
fn an_instruction_byte_count_over_fifteen_is_clamped() {
    let mut c = mem_ctx(0, 0x1000);
    // SAFETY: MemoryAccess is the variant this test wrote.
    let mut m = unsafe { c.Anonymous.MemoryAccess };
    m.InstructionByteCount = 200;
    c.Anonymous.MemoryAccess = m;
    match decode_exit(&c) {
        RawExit::Memory(m) => assert_eq!(m.instruction.len, 15),
        other => panic!("decoded {other:?}"),
    }
}

fn msr_ctx(write: bool, index: u32, rax: u64, rdx: u64) -> WHV_RUN_VP_EXIT_CONTEXT {
    let mut c = ctx(WHvRunVpExitReasonX64MsrAccess, 2);
    let mut m = WHV_X64_MSR_ACCESS_CONTEXT {
        MsrNumber: index,
        Rax: rax,
        Rdx: rdx,
        ..Default::default()
    };
    m.AccessInfo.AsUINT32 = u32::from(write);
    c.Anonymous.MsrAccess = m;
    c
}

#[test]
fn msr_reads_and_writes_become_msr_exits() {
    assert_eq!(
        plan(&msr_ctx(false, 0x1B, 0, 0)),
        ExitPlan::MsrRead {
            index: 0x1B,
            next_rip: RIP + 2
        }
    );
    // Upper halves of RAX/RDX are ignored, as WRMSR does.
    assert_eq!(
        plan(&msr_ctx(
            true,
            0x1B,
            0xDEAD_0000_FEE0_0900,
            0xBEEF_0000_0000_0001
        )),
        ExitPlan::MsrWrite {
            index: 0x1B,
            value: 0x1_FEE0_0900,
            next_rip: RIP + 2
        }
    );
}

fn cpuid_ctx(leaf: u64, sub: u64) -> WHV_RUN_VP_EXIT_CONTEXT {
    let mut c = ctx(WHvRunVpExitReasonX64Cpuid, 2);
    c.Anonymous.CpuidAccess = WHV_X64_CPUID_ACCESS_CONTEXT {
        Rax: leaf,
        Rcx: sub,
        DefaultResultRax: 0xA,
        DefaultResultRbx: 0xB,
        DefaultResultRcx: 0xC,
        DefaultResultRdx: 0xD,
        ..Default::default()
    };
    c
}

#[test]
fn cpuid_is_answered_from_the_table_or_asked() {
    let table = [
        CpuidEntry {
            function: 1,
            eax: 0x806F8,
            edx: 1 << 9,
            ..Default::default()
        },
        CpuidEntry {
            function: 7,
            index: 0,
            significant_index: true,
            ebx: 1 << 18,
            ..Default::default()
        },
    ];
    let c = cpuid_ctx(1, 0x55);
    let raw = decode_exit(&c);
    assert_eq!(
        plan_exit(&raw, &state(&c), None, Some(&table)),
        ExitPlan::CpuidAnswer {
            result: [0x806F8, 0, 0, 1 << 9],
            next_rip: RIP + 2
        }
    );
    let sub1 = cpuid_ctx(7, 1);
    assert_eq!(
        plan_exit(&decode_exit(&sub1), &state(&sub1), None, Some(&table)),
        ExitPlan::CpuidAnswer {
            result: [0; 4],
            next_rip: RIP + 2
        }
    );
    assert_eq!(
        plan(&cpuid_ctx(0x4000_0000, 0)),
        ExitPlan::CpuidAsk {
            leaf: 0x4000_0000,
            subleaf: 0,
            default: [0xA, 0xB, 0xC, 0xD],
            next_rip: RIP + 2
        }
    );
}

#[test]
fn a_native_vmcall_uses_the_spec_registers() {
    let mut c = ctx(WHvRunVpExitReasonHypercall, 3);
    c.Anonymous.Hypercall = WHV_HYPERCALL_CONTEXT {
        Rax: 0,
        Rdi: 0x8_0000,
        Rsi: 12,
        Rdx: 7,
        Rcx: 9,
        Rbx: 0xBAD,
        R8: 0xBAD,
        ..Default::default()
    };
    assert_eq!(
        plan(&c),
        ExitPlan::Hypercall {
            call: Hypercall {
                nr: 0,
                args: [0x8_0000, 12, 7, 9]
            },
            next_rip: RIP + 3
        }
    );
    // No reported length: VMCALL's 3 bytes.
    let c0 = ctx(WHvRunVpExitReasonHypercall, 0);
    assert!(matches!(plan(&c0), ExitPlan::Hypercall { next_rip, .. } if next_rip == RIP + 3));
}

#[test]
fn halt_window_and_cancel_map_directly() {
    assert_eq!(
        plan(&ctx(WHvRunVpExitReasonX64Halt, 1)),
        ExitPlan::Report(VmExit::Halt)
    );
    assert_eq!(
        plan(&ctx(WHvRunVpExitReasonX64InterruptWindow, 0)),
        ExitPlan::Report(VmExit::InterruptWindow)
    );
    assert_eq!(
        plan(&ctx(WHvRunVpExitReasonCanceled, 0)),
        ExitPlan::Report(VmExit::Interrupted)
    );
    assert_eq!(plan(&ctx(WHvRunVpExitReasonNone, 0)), ExitPlan::Resume);
}

#[test]
fn fatal_exits_map_to_shutdown_failed_entry_and_internal_error() {
    assert_eq!(
        plan(&ctx(WHvRunVpExitReasonUnrecoverableException, 0)),
        ExitPlan::Report(VmExit::Shutdown(ShutdownReason::TripleFault))
    );
    assert_eq!(
        plan(&ctx(WHvRunVpExitReasonInvalidVpRegisterValue, 0)),
        ExitPlan::Report(VmExit::FailedEntry { reason: 5 })
    );
    let mut u = ctx(WHvRunVpExitReasonUnsupportedFeature, 0);
    u.Anonymous.UnsupportedFeature = WHV_X64_UNSUPPORTED_FEATURE_CONTEXT {
        FeatureCode: 1,
        Reserved: 0,
        FeatureParameter: 0x77,
    };
    let ExitPlan::Report(VmExit::InternalError { code, detail }) = plan(&u) else {
        panic!("not reported");
    };
    assert_eq!(code, 1);
    assert!(detail.contains("0x77"), "{detail}");
}

#[test]
fn exceptions_map_to_debug_or_internal_error() {
    let mut c = ctx(WHvRunVpExitReasonException, 1);
    let mut e = WHV_VP_EXCEPTION_CONTEXT {
        ExceptionType: 3,
        InstructionByteCount: 1,
        ..Default::default()
    };
    e.InstructionBytes[0] = 0xCC;
    c.Anonymous.VpException = e;
    assert!(matches!(
        plan(&c),
        ExitPlan::DebugException(ExceptionInfo { vector: 3, .. })
    ));
    e.ExceptionType = 14;
    e.ErrorCode = 2;
    e.ExceptionParameter = 0xDEAD_B000;
    e.ExceptionInfo.AsUINT32 = 1;
    c.Anonymous.VpException = e;
    assert_eq!(
        decode_exit(&c),
        RawExit::Exception(ExceptionInfo {
            vector: 14,
            error_code: Some(2),
            parameter: 0xDEAD_B000,
            instruction: InstructionBytes::from_slice(&[0xCC]),
        })
    );
    assert!(matches!(
        plan(&c),
        ExitPlan::Report(VmExit::InternalError { code: 3, .. })
    ));
}

#[test]
fn eoi_resumes_and_unknown_reasons_are_kept() {
    let mut c = ctx(WHvRunVpExitReasonX64ApicEoi, 0);
    c.Anonymous.ApicEoi = WHV_X64_APIC_EOI_CONTEXT {
        InterruptVector: 0x20,
    };
    assert_eq!(decode_exit(&c), RawExit::ApicEoi { vector: 0x20 });
    assert_eq!(plan(&c), ExitPlan::Resume);
    assert_eq!(
        plan(&ctx(WHvRunVpExitReasonX64Rdtsc, 0)),
        ExitPlan::Report(VmExit::Unknown { reason: 0x1003 })
    );
    assert_eq!(
        plan(&ctx(-1, 0)),
        ExitPlan::Report(VmExit::Unknown {
            reason: 0xFFFF_FFFF
        })
    );
}

#[test]
fn window_registers_have_the_documented_bits() {
    // SAFETY: this helper writes the Reg64 member.
    unsafe {
        assert_eq!(deliverability_notifications(true).Reg64, 0b10);
        assert_eq!(deliverability_notifications(false).Reg64, 0);
    }
}

#[test]
fn extended_exits_follow_the_capability() {
    assert_eq!(extended_vm_exits(u64::MAX), 0b111);
    assert_eq!(extended_vm_exits(0b10_0101), 0b101);
    assert_eq!(extended_vm_exits(0b011), 0b011);
}

#[test]
fn emulator_status_is_decoded() {
    assert!(emulation_succeeded(1));
    assert!(!emulation_succeeded(0b1000));
    assert_eq!(emulator_status_text(0b1000), "memory callback failed");
    assert_eq!(emulator_status_text(0), "emulator status 0x0");
}
