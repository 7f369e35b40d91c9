//! ESR_EL2: EC \[31:26\], IL \[25\], ISS \[24:0\] (bits 63:32 are ISS2 and RES0
//! for the classes here). [`Syndrome::decode`] gives the exception class
//! and a typed ISS; [`Syndrome::encode`] builds the ESR back.

use std::fmt;

use super::iss::{
    DataAbortIss, InstructionAbortIss, SoftwareStepIss, SysRegIss, WatchpointIss, WfxIss,
};
use super::sysreg;

/// Exception class codes (ESR_EL2.EC).
pub mod ec {
    /// Unknown reason (an UNDEFINED instruction, say).
    pub const UNKNOWN: u8 = 0x00;
    /// Trapped WFI/WFE.
    pub const WFX: u8 = 0x01;
    /// HVC from AArch64.
    pub const HVC64: u8 = 0x16;
    /// SMC from AArch64.
    pub const SMC64: u8 = 0x17;
    /// Trapped MSR, MRS or system instruction from AArch64.
    pub const SYS64: u8 = 0x18;
    /// Instruction abort from a lower EL.
    pub const IABT_LOW: u8 = 0x20;
    /// Instruction abort from the same EL.
    pub const IABT_CUR: u8 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGN: u8 = 0x22;
    /// Data abort from a lower EL.
    pub const DABT_LOW: u8 = 0x24;
    /// Data abort from the same EL.
    pub const DABT_CUR: u8 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGN: u8 = 0x26;
    /// SError.
    pub const SERROR: u8 = 0x2F;
    /// Breakpoint from a lower EL.
    pub const BREAKPT_LOW: u8 = 0x30;
    /// Breakpoint from the same EL.
    pub const BREAKPT_CUR: u8 = 0x31;
    /// Software step from a lower EL.
    pub const SOFTSTP_LOW: u8 = 0x32;
    /// Software step from the same EL.
    pub const SOFTSTP_CUR: u8 = 0x33;
    /// Watchpoint from a lower EL.
    pub const WATCHPT_LOW: u8 = 0x34;
    /// Watchpoint from the same EL.
    pub const WATCHPT_CUR: u8 = 0x35;
    /// BRK from AArch64.
    pub const BRK64: u8 = 0x3C;
}

/// ESR_EL2 decoded: the class with its typed ISS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syndrome {
    /// EC 0x00: unknown reason (e.g. an UNDEFINED instruction).
    Unknown,
    /// EC 0x01: trapped WFI/WFE/WFIT/WFET.
    Wfx(WfxIss),
    /// EC 0x16: HVC, with its immediate.
    Hvc {
        /// ISS\[15:0\], the `imm16` of `hvc #imm`.
        imm16: u16,
    },
    /// EC 0x17: SMC, with its immediate.
    Smc {
        /// ISS\[15:0\], the `imm16` of `smc #imm`.
        imm16: u16,
    },
    /// EC 0x18: trapped MSR, MRS or system instruction.
    SysReg(SysRegIss),
    /// EC 0x20 / 0x21: instruction abort.
    InstructionAbort {
        /// EC 0x21: taken from EL2 itself, not from the guest.
        same_el: bool,
        /// The ISS.
        iss: InstructionAbortIss,
    },
    /// EC 0x24 / 0x25: data abort.
    DataAbort {
        /// EC 0x25: taken from EL2 itself, not from the guest.
        same_el: bool,
        /// The ISS.
        iss: DataAbortIss,
    },
    /// EC 0x30 / 0x31: hardware breakpoint (ISS\[5:0\] = 0x22).
    Breakpoint {
        /// EC 0x31: from the same EL.
        same_el: bool,
    },
    /// EC 0x32 / 0x33: software step.
    SoftwareStep {
        /// EC 0x33: from the same EL.
        same_el: bool,
        /// The ISS.
        iss: SoftwareStepIss,
    },
    /// EC 0x34 / 0x35: watchpoint.
    Watchpoint {
        /// EC 0x35: from the same EL.
        same_el: bool,
        /// The ISS.
        iss: WatchpointIss,
    },
    /// EC 0x3C: BRK, with its comment.
    Brk {
        /// ISS\[15:0\], the `imm16` of `brk #imm`.
        comment: u16,
    },
    /// Any other class, its ISS raw.
    Other {
        /// The exception class.
        ec: u8,
        /// ISS\[24:0\].
        iss: u32,
    },
}

/// ESR_EL2 split into its fields, with the typed syndrome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Esr {
    /// The exception class.
    pub ec: u8,
    /// IL: the trapped instruction is 32-bit (always 1 for AArch64 traps).
    pub il: bool,
    /// The typed syndrome.
    pub syndrome: Syndrome,
}

impl Syndrome {
    /// Decodes the class and ISS of `esr` (IL and bits 63:32 are ignored).
    pub fn decode(esr: u64) -> Self {
        let ec = ((esr >> 26) & 0x3F) as u8;
        let iss = (esr & 0x01FF_FFFF) as u32;
        let imm16 = (iss & 0xFFFF) as u16;
        match ec {
            ec::UNKNOWN if iss == 0 => Syndrome::Unknown,
            ec::WFX if WfxIss::decode(iss).encode() == iss => Syndrome::Wfx(WfxIss::decode(iss)),
            ec::HVC64 if iss >> 16 == 0 => Syndrome::Hvc { imm16 },
            ec::SMC64 if iss >> 16 == 0 => Syndrome::Smc { imm16 },
            ec::SYS64 if iss >> 22 == 0 => Syndrome::SysReg(SysRegIss::decode(iss)),
            ec::IABT_LOW | ec::IABT_CUR if InstructionAbortIss::decode(iss).encode() == iss => {
                Syndrome::InstructionAbort {
                    same_el: ec == ec::IABT_CUR,
                    iss: InstructionAbortIss::decode(iss),
                }
            }
            ec::DABT_LOW | ec::DABT_CUR => Syndrome::DataAbort {
                same_el: ec == ec::DABT_CUR,
                iss: DataAbortIss::decode(iss),
            },
            ec::BREAKPT_LOW | ec::BREAKPT_CUR if iss == 0x22 => Syndrome::Breakpoint {
                same_el: ec == ec::BREAKPT_CUR,
            },
            ec::SOFTSTP_LOW | ec::SOFTSTP_CUR if SoftwareStepIss::decode(iss).encode() == iss => {
                Syndrome::SoftwareStep {
                    same_el: ec == ec::SOFTSTP_CUR,
                    iss: SoftwareStepIss::decode(iss),
                }
            }
            ec::WATCHPT_LOW | ec::WATCHPT_CUR if WatchpointIss::decode(iss).encode() == iss => {
                Syndrome::Watchpoint {
                    same_el: ec == ec::WATCHPT_CUR,
                    iss: WatchpointIss::decode(iss),
                }
            }
            ec::BRK64 if iss >> 16 == 0 => Syndrome::Brk { comment: imm16 },
            // A class above with bits its typed ISS does not hold stays raw,
            // so that encode(decode(esr)) keeps every ISS bit.
            _ => Syndrome::Other { ec, iss },
        }
    }

    /// The exception class.
    pub fn ec(&self) -> u8 {
        match self {
            Syndrome::Unknown => ec::UNKNOWN,
            Syndrome::Wfx(_) => ec::WFX,
            Syndrome::Hvc { .. } => ec::HVC64,
            Syndrome::Smc { .. } => ec::SMC64,
            Syndrome::SysReg(_) => ec::SYS64,
            Syndrome::InstructionAbort { same_el, .. } => {
                if *same_el {
                    ec::IABT_CUR
                } else {
                    ec::IABT_LOW
                }
            }
            Syndrome::DataAbort { same_el, .. } => {
                if *same_el {
                    ec::DABT_CUR
                } else {
                    ec::DABT_LOW
                }
            }
            Syndrome::Breakpoint { same_el } => {
                if *same_el {
                    ec::BREAKPT_CUR
                } else {
                    ec::BREAKPT_LOW
                }
            }
            Syndrome::SoftwareStep { same_el, .. } => {
                if *same_el {
                    ec::SOFTSTP_CUR
                } else {
                    ec::SOFTSTP_LOW
                }
            }
            Syndrome::Watchpoint { same_el, .. } => {
                if *same_el {
                    ec::WATCHPT_CUR
                } else {
                    ec::WATCHPT_LOW
                }
            }
            Syndrome::Brk { .. } => ec::BRK64,
            Syndrome::Other { ec, .. } => ec & 0x3F,
        }
    }

    /// ISS\[24:0\].
    pub fn iss(&self) -> u32 {
        match self {
            Syndrome::Unknown => 0,
            Syndrome::Wfx(w) => w.encode(),
            Syndrome::Hvc { imm16 } | Syndrome::Smc { imm16 } => u32::from(*imm16),
            Syndrome::SysReg(s) => s.encode(),
            Syndrome::InstructionAbort { iss, .. } => iss.encode(),
            Syndrome::DataAbort { iss, .. } => iss.encode(),
            Syndrome::Breakpoint { .. } => 0x22,
            Syndrome::SoftwareStep { iss, .. } => iss.encode(),
            Syndrome::Watchpoint { iss, .. } => iss.encode(),
            Syndrome::Brk { comment } => u32::from(*comment),
            Syndrome::Other { iss, .. } => iss & 0x01FF_FFFF,
        }
    }

    /// ESR_EL2 for this syndrome, with IL = 1 (a 32-bit instruction).
    pub fn encode(&self) -> u64 {
        u64::from(self.ec()) << 26 | 1 << 25 | u64::from(self.iss())
    }

    /// The class's short name, as Linux and the Arm ARM abbreviate it.
    pub fn mnemonic(&self) -> &'static str {
        match self.ec() {
            ec::UNKNOWN => "UNKNOWN",
            ec::WFX => "WFx",
            ec::HVC64 => "HVC",
            ec::SMC64 => "SMC",
            ec::SYS64 => "SYS64",
            ec::IABT_LOW | ec::IABT_CUR => "IABT",
            ec::PC_ALIGN => "PC_ALIGN",
            ec::DABT_LOW | ec::DABT_CUR => "DABT",
            ec::SP_ALIGN => "SP_ALIGN",
            ec::SERROR => "SERROR",
            ec::BREAKPT_LOW | ec::BREAKPT_CUR => "BREAKPT",
            ec::SOFTSTP_LOW | ec::SOFTSTP_CUR => "SOFTSTP",
            ec::WATCHPT_LOW | ec::WATCHPT_CUR => "WATCHPT",
            ec::BRK64 => "BRK",
            _ => "EC",
        }
    }

    /// The class's long name.
    pub fn name(&self) -> &'static str {
        match self.ec() {
            ec::UNKNOWN => "unknown reason",
            ec::WFX => "trapped WFI/WFE",
            ec::HVC64 => "hypervisor call",
            ec::SMC64 => "secure monitor call",
            ec::SYS64 => "trapped system register access",
            ec::IABT_LOW | ec::IABT_CUR => "instruction abort",
            ec::PC_ALIGN => "PC alignment fault",
            ec::DABT_LOW | ec::DABT_CUR => "data abort",
            ec::SP_ALIGN => "SP alignment fault",
            ec::SERROR => "SError interrupt",
            ec::BREAKPT_LOW | ec::BREAKPT_CUR => "breakpoint",
            ec::SOFTSTP_LOW | ec::SOFTSTP_CUR => "software step",
            ec::WATCHPT_LOW | ec::WATCHPT_CUR => "watchpoint",
            ec::BRK64 => "BRK instruction",
            _ => "other exception class",
        }
    }
}

impl Esr {
    /// Decodes ESR_EL2.
    pub fn decode(esr: u64) -> Self {
        Self {
            ec: ((esr >> 26) & 0x3F) as u8,
            il: esr & (1 << 25) != 0,
            syndrome: Syndrome::decode(esr),
        }
    }
}

fn reg(n: u8, wide: bool) -> String {
    match (n, wide) {
        (31, true) => "xzr".into(),
        (31, false) => "wzr".into(),
        (n, true) => format!("x{n}"),
        (n, false) => format!("w{n}"),
    }
}

impl fmt::Display for Syndrome {
    /// The decoded fields, e.g. "DFSC translation fault, level 2, write,
    /// 4 bytes from w3".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Syndrome::Unknown => f.write_str("unknown reason"),
            Syndrome::Wfx(w) => write!(f, "{:?}", w.ti),
            Syndrome::Hvc { imm16 } => write!(f, "hvc #{imm16:#x}"),
            Syndrome::Smc { imm16 } => write!(f, "smc #{imm16:#x}"),
            Syndrome::SysReg(s) => {
                let name = sysreg::describe(s);
                if s.read {
                    write!(f, "mrs {}, {name}", reg(s.rt, true))
                } else {
                    write!(f, "msr {name}, {}", reg(s.rt, true))
                }
            }
            Syndrome::InstructionAbort { iss, .. } => {
                write!(f, "IFSC {}", iss.ifsc)?;
                if iss.s1ptw {
                    f.write_str(", on a stage-1 table walk")?;
                }
                Ok(())
            }
            Syndrome::DataAbort { iss, .. } => {
                write!(
                    f,
                    "DFSC {}, {}",
                    iss.dfsc,
                    if iss.wnr { "write" } else { "read" }
                )?;
                if iss.isv {
                    let sign = if iss.sse { " sign-extended" } else { "" };
                    let dir = if iss.wnr { "from" } else { "into" };
                    write!(
                        f,
                        ", {} bytes{sign} {dir} {}",
                        iss.access_size(),
                        reg(iss.srt, iss.sf)
                    )?;
                } else {
                    f.write_str(", no instruction syndrome (ISV = 0)")?;
                }
                if iss.s1ptw {
                    f.write_str(", on a stage-1 table walk")?;
                }
                if iss.fnv {
                    f.write_str(", FAR not valid")?;
                }
                Ok(())
            }
            Syndrome::Breakpoint { .. } => f.write_str("hardware breakpoint"),
            Syndrome::SoftwareStep { iss, .. } => {
                f.write_str("single step")?;
                if iss.isv && iss.ex {
                    f.write_str(" of a load-exclusive")?;
                }
                Ok(())
            }
            Syndrome::Watchpoint { iss, .. } => {
                write!(
                    f,
                    "watchpoint on a {}",
                    if iss.wnr { "write" } else { "read" }
                )?;
                if iss.wptv {
                    write!(f, " (watchpoint {})", iss.wpt)?;
                }
                Ok(())
            }
            Syndrome::Brk { comment } => write!(f, "brk #{comment:#x}"),
            Syndrome::Other { ec, iss } => write!(f, "EC {ec:#04x}, ISS {iss:#x}"),
        }
    }
}
