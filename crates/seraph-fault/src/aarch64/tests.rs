//! Syndromes worked out by hand from the Arm ARM field definitions (each
//! test says which fields it sets), and round-trip properties.

use proptest::prelude::*;
use seraph_hypervisor::{
    DebugCause, GuestDebug, HwBreakKind, HwBreakpoint, Hypercall, ShutdownReason, VmExit,
};

use super::*;
use crate::report::{Access, Cause, Denied, Level};

/// x0-x30 with xN = `0x1000 + N`, and the given overrides.
fn regs(set: &[(usize, u64)]) -> [u64; 31] {
    let mut x: [u64; 31] = std::array::from_fn(|n| 0x1000 + n as u64);
    for &(n, v) in set {
        x[n] = v;
    }
    x
}

fn not_ram(_: u64) -> bool {
    false
}

/// `str w1, [x0]` to an unbacked IPA: EC 0x24 \[31:26\], IL \[25\], ISV \[24\],
/// SAS 0b10 (word) \[23:22\], SRT 1 \[20:16\], SF 0, WnR \[6\], DFSC 0b000110
/// (translation fault, level 2).
const STR_W1: u64 = 0x9381_0046;

#[test]
fn a_word_store_with_a_syndrome_is_an_mmio_write_of_w1() {
    let trap = Arm64Trap {
        esr: STR_W1,
        far: 0x0900_0004,
        hpfar: (0x0900_0000 >> 12) << 4,
    };
    assert_eq!(fault_ipa(trap.far, trap.hpfar), 0x0900_0004);
    let exit = describe(&trap, not_ram);
    assert_eq!(
        exit,
        Arm64Exit::Mmio(MmioAccess {
            ipa: 0x0900_0004,
            write: true,
            size: 4,
            sign_extend: false,
            reg: 1,
            sf: false
        })
    );
    let x = regs(&[(1, 0xAABB_CCDD_1122_3344)]);
    let mut buf = [0u8; 8];
    let vm = to_vm_exit(&exit, trap.esr, &x, 0x4008_0000, None, &mut buf);
    assert_eq!(
        vm,
        VmExit::MmioWrite {
            addr: 0x0900_0004,
            data: &[0x44, 0x33, 0x22, 0x11]
        }
    );
    // The report, in the x86 words.
    assert_eq!(
        explain_aarch64(&trap, 0x4008_0000).to_string(),
        "DABT data abort at pc 0x40080000: write to 0x9000004 (not present at level 2; \
         ESR 0x93810046: DFSC translation fault, level 2, write, 4 bytes from w1); \
         stage 2: IPA 0x9000004"
    );
    // The same IPA backed by RAM is not MMIO.
    assert!(matches!(describe(&trap, |_| true), Arm64Exit::Other(_)));
}

#[test]
fn a_sign_extending_halfword_load_fills_x2() {
    // `ldrsh x2, [x0]`: ISV [24], SAS 0b01 [23:22], SSE [21], SRT 2
    // [20:16], SF [15], WnR 0, DFSC 0b000111 (translation, level 3).
    let trap = Arm64Trap {
        esr: 0x9362_8007,
        far: 0x0A00_0002,
        hpfar: (0x0A00_0000 >> 12) << 4,
    };
    let exit = describe(&trap, not_ram);
    let Arm64Exit::Mmio(access) = exit else {
        panic!("expected MMIO, got {exit:?}");
    };
    assert_eq!(
        (access.size, access.sign_extend, access.reg, access.sf),
        (2, true, 2, true)
    );
    let mut buf = [0u8; 8];
    match to_vm_exit(&exit, trap.esr, &regs(&[]), 0, None, &mut buf) {
        VmExit::MmioRead { addr, data } => {
            assert_eq!((addr, data.len()), (0x0A00_0002, 2));
            data.copy_from_slice(&[0xFE, 0xFF]);
        }
        other => panic!("expected an MMIO read, got {other:?}"),
    }
    assert_eq!(
        mmio_read_result(&access, &buf[..2]),
        Some((2, 0xFFFF_FFFF_FFFF_FFFE))
    );
    // As `ldrsh w2`: SF = 0, the result is zero-extended from 32 bits.
    let w = MmioAccess {
        sf: false,
        ..access
    };
    assert_eq!(mmio_read_result(&w, &[0xFE, 0xFF]), Some((2, 0xFFFF_FFFE)));
    // Into wzr: discarded. A write has no result.
    assert_eq!(
        mmio_read_result(&MmioAccess { reg: 31, ..access }, &[1, 2]),
        None
    );
    assert_eq!(
        mmio_read_result(
            &MmioAccess {
                write: true,
                ..access
            },
            &[1, 2]
        ),
        None
    );
}

#[test]
fn without_a_syndrome_the_instruction_is_not_decodable() {
    // ISV = 0, WnR [6], DFSC 0b000110: e.g. `stp x0, x1, [x2]`.
    let trap = Arm64Trap {
        esr: 0x9200_0046,
        far: 0x0900_0010,
        hpfar: (0x0900_0000 >> 12) << 4,
    };
    let exit = describe(&trap, not_ram);
    assert_eq!(
        exit,
        Arm64Exit::MmioUndecodable {
            ipa: 0x0900_0010,
            write: true
        }
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        to_vm_exit(&exit, trap.esr, &regs(&[]), 0, None, &mut buf),
        VmExit::EmulationFailure { instruction: None }
    );
    assert!(
        explain_aarch64(&trap, 0)
            .to_string()
            .contains("no instruction syndrome (ISV = 0)")
    );
}

#[test]
fn hvc_smc_and_psci() {
    let mut buf = [0u8; 8];
    // `hvc #0`: EC 0x16, IL, imm16 0.
    let hvc = Arm64Trap {
        esr: 0x5A00_0000,
        ..Default::default()
    };
    let exit = describe(&hvc, not_ram);
    assert_eq!(exit, Arm64Exit::Hvc(0));
    let x = regs(&[(0, 0), (1, 0x8_0000), (2, 12)]);
    assert_eq!(
        to_vm_exit(&exit, hvc.esr, &x, 0, None, &mut buf),
        VmExit::Hypercall(Hypercall {
            nr: 0,
            args: [0x8_0000, 12, 0x1003, 0x1004]
        })
    );
    let off = regs(&[(0, exit::psci::SYSTEM_OFF)]);
    assert_eq!(
        to_vm_exit(&exit, hvc.esr, &off, 0, None, &mut buf),
        VmExit::Shutdown(ShutdownReason::PowerOff)
    );
    // `smc #0`: EC 0x17. PSCI SYSTEM_RESET, then a non-PSCI call.
    let smc = Arm64Trap {
        esr: 0x5E00_0000,
        ..Default::default()
    };
    let exit = describe(&smc, not_ram);
    assert_eq!(exit, Arm64Exit::Smc(0));
    let reset = regs(&[(0, exit::psci::SYSTEM_RESET)]);
    assert_eq!(
        to_vm_exit(&exit, smc.esr, &reset, 0, None, &mut buf),
        VmExit::Shutdown(ShutdownReason::Reset)
    );
    assert_eq!(
        to_vm_exit(&exit, smc.esr, &regs(&[(0, 7)]), 0, None, &mut buf),
        VmExit::Unknown {
            reason: 0x5E00_0000
        }
    );
    // `hvc #0x4711`.
    assert_eq!(
        Syndrome::decode(0x5A00_4711),
        Syndrome::Hvc { imm16: 0x4711 }
    );
}

#[test]
fn wfi_sysregs_and_debug() {
    let mut buf = [0u8; 8];
    let x = regs(&[]);
    // WFI: EC 0x01, TI 0b00. WFE: TI 0b01.
    for esr in [0x0600_0000u64, 0x0600_0001] {
        let exit = describe(
            &Arm64Trap {
                esr,
                ..Default::default()
            },
            not_ram,
        );
        assert!(matches!(exit, Arm64Exit::Wait(_)));
        assert_eq!(to_vm_exit(&exit, esr, &x, 0, None, &mut buf), VmExit::Halt);
    }
    // `mrs x2, CNTVCT_EL0`: EC 0x18, Op0 3, Op2 2, Op1 3, CRn 14, Rt 2, CRm 0, read.
    let esr = 0x6234_F841;
    let exit = describe(
        &Arm64Trap {
            esr,
            ..Default::default()
        },
        not_ram,
    );
    let Arm64Exit::SysReg(s) = exit else {
        panic!("expected a system register trap, got {exit:?}");
    };
    assert_eq!(sysreg::describe(&s), "CNTVCT_EL0");
    assert_eq!(Syndrome::decode(esr).to_string(), "mrs x2, CNTVCT_EL0");
    assert_eq!(
        to_vm_exit(&exit, esr, &x, 0, None, &mut buf),
        VmExit::Unknown { reason: esr }
    );
    // `msr SCTLR_EL1, x0`: Op0 3, Op1 0, CRn 1, CRm 0, Op2 0, Rt 0, write.
    assert_eq!(
        Syndrome::decode(0x6230_0400).to_string(),
        "msr SCTLR_EL1, x0"
    );

    let pc = 0x4000_1000;
    let mut dbg = GuestDebug {
        enabled: true,
        ..Default::default()
    };
    dbg.hw[1] = Some(HwBreakpoint {
        addr: pc,
        kind: HwBreakKind::Execute,
        len: 1,
    });
    dbg.hw[2] = Some(HwBreakpoint {
        addr: 0x5000,
        kind: HwBreakKind::Write,
        len: 8,
    });
    let cause = |esr: u64, far: u64, debug: Option<&GuestDebug>| {
        let trap = Arm64Trap { esr, far, hpfar: 0 };
        let exit = describe(&trap, not_ram);
        let mut buf = [0u8; 8];
        match to_vm_exit(&exit, esr, &x, pc, debug, &mut buf) {
            VmExit::Debug { pc: at, cause } if at == pc => cause,
            other => panic!("expected a debug exit, got {other:?}"),
        }
    };
    // Breakpoint, lower EL: EC 0x30, ISS 0x22.
    assert_eq!(
        cause(0xC200_0022, 0, Some(&dbg)),
        DebugCause::HwBreakpoint(1)
    );
    assert_eq!(cause(0xC200_0022, 0, None), DebugCause::Unknown);
    // Software step, lower EL: EC 0x32, ISS 0x22.
    assert_eq!(cause(0xCA00_0022, 0, None), DebugCause::SingleStep);
    // Watchpoint, lower EL: EC 0x34, WnR [6], DFSC 0x22; FAR in slot 2's range.
    assert_eq!(
        cause(0xD200_0062, 0x5006, Some(&dbg)),
        DebugCause::Watchpoint(2)
    );
    // With WPTV [17] and WPT 3 [23:18] the syndrome names the watchpoint.
    assert_eq!(
        cause(0xD200_0062 | 3 << 18 | 1 << 17, 0, None),
        DebugCause::Watchpoint(3)
    );
    // `brk #0x3e8`: EC 0x3C, comment 0x3e8.
    assert_eq!(cause(0xF200_03E8, 0, None), DebugCause::SoftwareBreakpoint);
}

#[test]
fn instruction_aborts_and_other_classes_report_in_the_same_words() {
    // Instruction abort, lower EL: EC 0x20, IFSC 0b001111 (permission, level 3).
    let trap = Arm64Trap {
        esr: 0x8200_000F,
        far: 0xFFFF_0000_0010_0000,
        hpfar: 0,
    };
    let r = explain_aarch64(&trap, 0xFFFF_0000_0010_0000);
    assert_eq!(r.access, Some(Access::Execute));
    assert_eq!(r.cause, Some(Cause::Permission(Denied::Unspecified)));
    assert_eq!(r.level, Some(Level::Arm(3)));
    assert_eq!(
        r.to_string(),
        "IABT instruction abort at pc 0xffff000000100000: instruction fetch at 0xffff000000100000 \
         (permission denied at level 3; ESR 0x8200000f: IFSC permission fault, level 3)"
    );
    // A data abort at EL2 itself (EC 0x25) is not a guest MMIO access.
    let el2 = Arm64Trap {
        esr: 0x9781_0046,
        far: 0x1000,
        hpfar: 0x10,
    };
    assert!(matches!(describe(&el2, not_ram), Arm64Exit::Other(_)));
    assert!(
        explain_aarch64(&el2, 0)
            .to_string()
            .contains("taken at EL2 itself")
    );
    // Unknown reason (EC 0x00) and an SError (EC 0x2F).
    assert_eq!(
        explain_aarch64(
            &Arm64Trap {
                esr: 0x0200_0000,
                ..Default::default()
            },
            0x80
        )
        .to_string(),
        "UNKNOWN unknown reason at pc 0x80 (ESR 0x2000000: unknown reason)"
    );
    assert_eq!(Syndrome::decode(0xBE00_0000).mnemonic(), "SERROR");
}

prop_compose! {
    fn fsc()(code in 0u8..64) -> FaultStatus {
        FaultStatus::decode(code)
    }
}

prop_compose! {
    fn data_abort()(
        isv: bool, sas in 0u8..4, sse: bool, srt in 0u8..32, sf: bool, ar: bool, vncr: bool,
        set in 0u8..4, fnv: bool, ea: bool, cm: bool, s1ptw: bool, wnr: bool, dfsc in fsc(),
    ) -> DataAbortIss {
        DataAbortIss { isv, sas, sse, srt, sf, ar, vncr, set, fnv, ea, cm, s1ptw, wnr, dfsc }
    }
}

prop_compose! {
    fn sysreg()(
        op0 in 0u8..4, op1 in 0u8..8, crn in 0u8..16, crm in 0u8..16, op2 in 0u8..8,
        rt in 0u8..32, read: bool,
    ) -> SysRegIss {
        SysRegIss { op0, op1, crn, crm, op2, rt, read }
    }
}

prop_compose! {
    fn wfx()(cv: bool, cond in 0u8..16, rn in 0u8..32, rv: bool, ti in 0u32..4) -> WfxIss {
        WfxIss { cv, cond, rn, rv, ti: WfxIss::decode(ti).ti }
    }
}

proptest! {
    #[test]
    fn typed_iss_round_trips(
        d in data_abort(),
        s in sysreg(),
        w in wfx(),
        set in 0u8..4, fnv: bool, ea: bool, s1ptw: bool, ifsc in fsc(),
        wpt in 0u8..64, wptv: bool, cm: bool, wnr: bool, dfsc in fsc(),
        isv: bool, ex: bool,
    ) {
        prop_assert_eq!(DataAbortIss::decode(d.encode()), d);
        prop_assert_eq!(SysRegIss::decode(s.encode()), s);
        prop_assert_eq!(WfxIss::decode(w.encode()), w);
        let ia = InstructionAbortIss { set, fnv, ea, s1ptw, ifsc };
        prop_assert_eq!(InstructionAbortIss::decode(ia.encode()), ia);
        let wp = WatchpointIss { wpt, wptv, fnv, cm, wnr, dfsc };
        prop_assert_eq!(WatchpointIss::decode(wp.encode()), wp);
        let st = SoftwareStepIss { isv, ex, ifsc };
        prop_assert_eq!(SoftwareStepIss::decode(st.encode()), st);
        for syndrome in [
            Syndrome::DataAbort { same_el: ea, iss: d },
            Syndrome::SysReg(s),
            Syndrome::Wfx(w),
            Syndrome::InstructionAbort { same_el: cm, iss: ia },
            Syndrome::Watchpoint { same_el: wnr, iss: wp },
            Syndrome::SoftwareStep { same_el: fnv, iss: st },
        ] {
            prop_assert_eq!(Syndrome::decode(syndrome.encode()), syndrome);
        }
    }

    #[test]
    fn every_esr_decodes_and_encodes_back(iss in 0u32..(1 << 25), ec in 0u8..64) {
        let esr = u64::from(ec) << 26 | 1 << 25 | u64::from(iss);
        let s = Syndrome::decode(esr);
        prop_assert_eq!(s.encode(), esr);
        prop_assert_eq!(Syndrome::decode(s.encode()), s);
    }

    #[test]
    fn any_trap_is_described_mapped_and_reported_without_a_panic(
        esr: u64, far: u64, hpfar: u64, pc: u64, x0: u64,
    ) {
        let trap = Arm64Trap { esr, far, hpfar };
        let exit = describe(&trap, |ipa| ipa < 0x4000_0000);
        let x = regs(&[(0, x0)]);
        let mut buf = [0u8; 8];
        let vm = to_vm_exit(&exit, esr, &x, pc, None, &mut buf);
        let len = match vm {
            VmExit::MmioRead { data, .. } => Some(data.len()),
            VmExit::MmioWrite { data, .. } => Some(data.len()),
            _ => None,
        };
        prop_assert!(len.is_none_or(|n| (1..=8).contains(&n)));
        let text = explain_aarch64(&trap, pc).to_string();
        let want = format!("ESR {esr:#x}");
        prop_assert!(text.contains(&want));
    }
}
