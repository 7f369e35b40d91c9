//! Typed ISS (instruction-specific syndrome, ESR_ELx\[24:0\]) for the
//! exception classes a hypervisor sees from a guest. Field positions are
//! the Arm ARM's (D24.2.40 ESR_EL2). Every type has `decode(iss)` and
//! `encode()`, with `decode(encode(x)) == x` for every field value in range.

use super::fsc::FaultStatus;

fn bit(v: u32, n: u32) -> bool {
    v & (1 << n) != 0
}

fn field(v: u32, lo: u32, width: u32) -> u32 {
    (v >> lo) & ((1 << width) - 1)
}

fn put(value: u32, lo: u32, width: u32) -> u32 {
    (value & ((1 << width) - 1)) << lo
}

/// Data abort ISS (EC 0x24 / 0x25).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataAbortIss {
    /// \[24\] ISV: bits 23:14 (SAS..AR) hold a valid instruction syndrome.
    pub isv: bool,
    /// \[23:22\] SAS: access size, 1 << SAS bytes.
    pub sas: u8,
    /// \[21\] SSE: the load sign-extends.
    pub sse: bool,
    /// \[20:16\] SRT: the transfer register, x0-x30 (31 = xzr).
    pub srt: u8,
    /// \[15\] SF: the register is 64-bit (else 32-bit, a W register).
    pub sf: bool,
    /// \[14\] AR: acquire/release semantics.
    pub ar: bool,
    /// \[13\] VNCR: the fault came from a VNCR_EL2 access (FEAT_NV2).
    pub vncr: bool,
    /// \[12:11\] SET / LST: synchronous error type, or load/store type.
    pub set: u8,
    /// \[10\] FnV: FAR is not valid.
    pub fnv: bool,
    /// \[9\] EA: external abort type (implementation defined).
    pub ea: bool,
    /// \[8\] CM: a cache maintenance or address translation instruction.
    pub cm: bool,
    /// \[7\] S1PTW: a stage-2 fault on a stage-1 table walk.
    pub s1ptw: bool,
    /// \[6\] WnR: the access was a write.
    pub wnr: bool,
    /// \[5:0\] DFSC.
    pub dfsc: FaultStatus,
}

impl DataAbortIss {
    /// Decodes a data-abort ISS.
    pub fn decode(iss: u32) -> Self {
        Self {
            isv: bit(iss, 24),
            sas: field(iss, 22, 2) as u8,
            sse: bit(iss, 21),
            srt: field(iss, 16, 5) as u8,
            sf: bit(iss, 15),
            ar: bit(iss, 14),
            vncr: bit(iss, 13),
            set: field(iss, 11, 2) as u8,
            fnv: bit(iss, 10),
            ea: bit(iss, 9),
            cm: bit(iss, 8),
            s1ptw: bit(iss, 7),
            wnr: bit(iss, 6),
            dfsc: FaultStatus::decode(field(iss, 0, 6) as u8),
        }
    }

    /// The ISS.
    pub fn encode(&self) -> u32 {
        put(u32::from(self.isv), 24, 1)
            | put(u32::from(self.sas), 22, 2)
            | put(u32::from(self.sse), 21, 1)
            | put(u32::from(self.srt), 16, 5)
            | put(u32::from(self.sf), 15, 1)
            | put(u32::from(self.ar), 14, 1)
            | put(u32::from(self.vncr), 13, 1)
            | put(u32::from(self.set), 11, 2)
            | put(u32::from(self.fnv), 10, 1)
            | put(u32::from(self.ea), 9, 1)
            | put(u32::from(self.cm), 8, 1)
            | put(u32::from(self.s1ptw), 7, 1)
            | put(u32::from(self.wnr), 6, 1)
            | u32::from(self.dfsc.encode())
    }

    /// Access size in bytes (1, 2, 4, 8), meaningful when `isv`.
    pub fn access_size(&self) -> u8 {
        1 << (self.sas & 3)
    }
}

/// Instruction abort ISS (EC 0x20 / 0x21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionAbortIss {
    /// \[12:11\] SET: synchronous error type.
    pub set: u8,
    /// \[10\] FnV: FAR is not valid.
    pub fnv: bool,
    /// \[9\] EA: external abort type.
    pub ea: bool,
    /// \[7\] S1PTW: a stage-2 fault on a stage-1 table walk.
    pub s1ptw: bool,
    /// \[5:0\] IFSC.
    pub ifsc: FaultStatus,
}

impl InstructionAbortIss {
    /// Decodes an instruction-abort ISS.
    pub fn decode(iss: u32) -> Self {
        Self {
            set: field(iss, 11, 2) as u8,
            fnv: bit(iss, 10),
            ea: bit(iss, 9),
            s1ptw: bit(iss, 7),
            ifsc: FaultStatus::decode(field(iss, 0, 6) as u8),
        }
    }

    /// The ISS.
    pub fn encode(&self) -> u32 {
        put(u32::from(self.set), 11, 2)
            | put(u32::from(self.fnv), 10, 1)
            | put(u32::from(self.ea), 9, 1)
            | put(u32::from(self.s1ptw), 7, 1)
            | u32::from(self.ifsc.encode())
    }
}

/// Which wait instruction trapped (WFx ISS TI, \[1:0\]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WfxKind {
    /// 0b00 WFI.
    Wfi,
    /// 0b01 WFE.
    Wfe,
    /// 0b10 WFIT (FEAT_WFxT).
    Wfit,
    /// 0b11 WFET (FEAT_WFxT).
    Wfet,
}

/// Trapped WFI/WFE ISS (EC 0x01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WfxIss {
    /// \[24\] CV: `cond` is valid (AArch32 only).
    pub cv: bool,
    /// \[23:20\] COND (AArch32 only).
    pub cond: u8,
    /// \[9:5\] RN: the timeout register of WFIT/WFET.
    pub rn: u8,
    /// \[2\] RV: `rn` is valid.
    pub rv: bool,
    /// \[1:0\] TI.
    pub ti: WfxKind,
}

impl WfxIss {
    /// Decodes a WFx ISS.
    pub fn decode(iss: u32) -> Self {
        Self {
            cv: bit(iss, 24),
            cond: field(iss, 20, 4) as u8,
            rn: field(iss, 5, 5) as u8,
            rv: bit(iss, 2),
            ti: match field(iss, 0, 2) {
                0 => WfxKind::Wfi,
                1 => WfxKind::Wfe,
                2 => WfxKind::Wfit,
                _ => WfxKind::Wfet,
            },
        }
    }

    /// The ISS.
    pub fn encode(&self) -> u32 {
        let ti = match self.ti {
            WfxKind::Wfi => 0,
            WfxKind::Wfe => 1,
            WfxKind::Wfit => 2,
            WfxKind::Wfet => 3,
        };
        put(u32::from(self.cv), 24, 1)
            | put(u32::from(self.cond), 20, 4)
            | put(u32::from(self.rn), 5, 5)
            | put(u32::from(self.rv), 2, 1)
            | ti
    }
}

/// Trapped MSR, MRS or system instruction ISS (EC 0x18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysRegIss {
    /// \[21:20\] Op0.
    pub op0: u8,
    /// \[19:17\] Op2.
    pub op2: u8,
    /// \[16:14\] Op1.
    pub op1: u8,
    /// \[13:10\] CRn.
    pub crn: u8,
    /// \[9:5\] Rt.
    pub rt: u8,
    /// \[4:1\] CRm.
    pub crm: u8,
    /// \[0\] Direction: true for a read (MRS, SYSL), false for a write (MSR, SYS).
    pub read: bool,
}

impl SysRegIss {
    /// Decodes a system-register ISS.
    pub fn decode(iss: u32) -> Self {
        Self {
            op0: field(iss, 20, 2) as u8,
            op2: field(iss, 17, 3) as u8,
            op1: field(iss, 14, 3) as u8,
            crn: field(iss, 10, 4) as u8,
            rt: field(iss, 5, 5) as u8,
            crm: field(iss, 1, 4) as u8,
            read: bit(iss, 0),
        }
    }

    /// The ISS.
    pub fn encode(&self) -> u32 {
        put(u32::from(self.op0), 20, 2)
            | put(u32::from(self.op2), 17, 3)
            | put(u32::from(self.op1), 14, 3)
            | put(u32::from(self.crn), 10, 4)
            | put(u32::from(self.rt), 5, 5)
            | put(u32::from(self.crm), 1, 4)
            | u32::from(self.read)
    }

    /// The register's encoding as (Op0, Op1, CRn, CRm, Op2).
    pub fn encoding(&self) -> (u8, u8, u8, u8, u8) {
        (self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

/// Software step ISS (EC 0x32 / 0x33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftwareStepIss {
    /// \[24\] ISV: `ex` is valid.
    pub isv: bool,
    /// \[6\] EX: the stepped instruction was a load-exclusive.
    pub ex: bool,
    /// \[5:0\] IFSC (0x22, debug).
    pub ifsc: FaultStatus,
}

impl SoftwareStepIss {
    /// Decodes a software-step ISS.
    pub fn decode(iss: u32) -> Self {
        Self {
            isv: bit(iss, 24),
            ex: bit(iss, 6),
            ifsc: FaultStatus::decode(field(iss, 0, 6) as u8),
        }
    }

    /// The ISS.
    pub fn encode(&self) -> u32 {
        put(u32::from(self.isv), 24, 1)
            | put(u32::from(self.ex), 6, 1)
            | u32::from(self.ifsc.encode())
    }
}

/// Watchpoint ISS (EC 0x34 / 0x35).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchpointIss {
    /// \[23:18\] WPT: the watchpoint number, when `wptv` (FEAT_Debugv8p9).
    pub wpt: u8,
    /// \[17\] WPTV: `wpt` is valid.
    pub wptv: bool,
    /// \[10\] FnV: FAR is not valid.
    pub fnv: bool,
    /// \[8\] CM: a cache maintenance instruction.
    pub cm: bool,
    /// \[6\] WnR: a write.
    pub wnr: bool,
    /// \[5:0\] DFSC (0x22, debug).
    pub dfsc: FaultStatus,
}

impl WatchpointIss {
    /// Decodes a watchpoint ISS.
    pub fn decode(iss: u32) -> Self {
        Self {
            wpt: field(iss, 18, 6) as u8,
            wptv: bit(iss, 17),
            fnv: bit(iss, 10),
            cm: bit(iss, 8),
            wnr: bit(iss, 6),
            dfsc: FaultStatus::decode(field(iss, 0, 6) as u8),
        }
    }

    /// The ISS.
    pub fn encode(&self) -> u32 {
        put(u32::from(self.wpt), 18, 6)
            | put(u32::from(self.wptv), 17, 1)
            | put(u32::from(self.fnv), 10, 1)
            | put(u32::from(self.cm), 8, 1)
            | put(u32::from(self.wnr), 6, 1)
            | u32::from(self.dfsc.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_abort_fields_sit_where_the_arm_arm_puts_them() {
        // ISV=1 [24], SAS=0b10 (word) [23:22], SSE=0, SRT=3 [20:16], SF=0,
        // AR=0, WnR=1 [6], DFSC=0b000110 (translation fault, level 2).
        let iss = 1 << 24 | 0b10 << 22 | 3 << 16 | 1 << 6 | 0x06;
        let d = DataAbortIss::decode(iss);
        assert!(d.isv && d.wnr && !d.sse && !d.sf);
        assert_eq!((d.sas, d.srt, d.access_size()), (2, 3, 4));
        assert_eq!(d.dfsc, FaultStatus::Translation(2));
        assert_eq!(d.encode(), iss);
        // SSE [21], SF [15], AR [14], FnV [10], EA [9], CM [8], S1PTW [7].
        let d =
            DataAbortIss::decode(1 << 21 | 1 << 15 | 1 << 14 | 1 << 10 | 1 << 9 | 1 << 8 | 1 << 7);
        assert!(d.sse && d.sf && d.ar && d.fnv && d.ea && d.cm && d.s1ptw && !d.isv);
    }

    #[test]
    fn sysreg_wfx_step_and_watchpoint_fields() {
        // MRS x2, CNTVCT_EL0: Op0=3 [21:20], Op2=2 [19:17], Op1=3 [16:14],
        // CRn=14 [13:10], Rt=2 [9:5], CRm=0 [4:1], Direction=1 (read) [0].
        let iss = 3 << 20 | 2 << 17 | 3 << 14 | 14 << 10 | 2 << 5 | 1;
        let s = SysRegIss::decode(iss);
        assert_eq!(s.encoding(), (3, 3, 14, 0, 2));
        assert_eq!((s.rt, s.read), (2, true));
        assert_eq!(s.encode(), iss);
        // WFE: TI=0b01; WFIT with RV [2] and RN=5 [9:5].
        assert_eq!(WfxIss::decode(1).ti, WfxKind::Wfe);
        let w = WfxIss::decode(5 << 5 | 1 << 2 | 2);
        assert_eq!((w.ti, w.rv, w.rn), (WfxKind::Wfit, true, 5));
        // Software step: ISV [24], EX [6], IFSC 0x22.
        let st = SoftwareStepIss::decode(1 << 24 | 1 << 6 | 0x22);
        assert!(st.isv && st.ex);
        assert_eq!(st.ifsc, FaultStatus::Debug);
        // Watchpoint 3 (WPT [23:18], WPTV [17]), a write (WnR [6]), DFSC 0x22.
        let wp = WatchpointIss::decode(3 << 18 | 1 << 17 | 1 << 6 | 0x22);
        assert_eq!((wp.wpt, wp.wptv, wp.wnr), (3, true, true));
        // Instruction abort: S1PTW [7], IFSC 0b001101 (permission, level 1).
        let ia = InstructionAbortIss::decode(1 << 7 | 0x0D);
        assert!(ia.s1ptw);
        assert_eq!(ia.ifsc, FaultStatus::Permission(1));
    }
}
