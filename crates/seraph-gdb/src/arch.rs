//! The gdb architecture: x86_64 with the system registers a kernel
//! debugger needs (CR0, CR2, CR3, CR4, CR8, EFER, FS/GS base), described to
//! gdb by a target description so `info registers cr3` works.
//!
//! Register numbers (the order of the `g` packet and of the XML):
//! 0-15 rax rbx rcx rdx rsi rdi rbp rsp r8-r15, 16 rip, 17 eflags,
//! 18-23 cs ss ds es fs gs, 24-31 st0-st7, 32-39 the x87 control registers,
//! 40-55 xmm0-xmm15, 56 mxcsr, 57 fs_base, 58 gs_base, 59 cr0, 60 cr2,
//! 61 cr3, 62 cr4, 63 cr8, 64 efer. The x87 and SSE registers are reported
//! unavailable (the backend interface has no FPU state); writes to them
//! are refused.

use std::num::NonZeroUsize;

use gdbstub::arch::{Arch, RegId, Registers};

use crate::target::CpuState;

/// One register of the layout: how many bytes it has in the `g` packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    /// A general-purpose register, index 0-15 in gdb's order.
    Gpr(u8),
    /// RIP.
    Rip,
    /// RFLAGS (32 bits on the wire, as gdb's `eflags`).
    Eflags,
    /// A segment selector, index 0-5: cs ss ds es fs gs.
    Selector(u8),
    /// An x87 or SSE register, reported unavailable; the byte size.
    Unavailable(u8),
    /// FS base.
    FsBase,
    /// GS base.
    GsBase,
    /// CR0.
    Cr0,
    /// CR2.
    Cr2,
    /// CR3.
    Cr3,
    /// CR4.
    Cr4,
    /// CR8.
    Cr8,
    /// EFER.
    Efer,
}

/// Number of registers in the layout.
pub const NUM_REGS: usize = 65;

impl Reg {
    /// The register with gdb number `n`.
    pub fn from_number(n: usize) -> Option<Reg> {
        Some(match n {
            0..=15 => Reg::Gpr(n as u8),
            16 => Reg::Rip,
            17 => Reg::Eflags,
            18..=23 => Reg::Selector((n - 18) as u8),
            24..=31 => Reg::Unavailable(10),
            32..=39 => Reg::Unavailable(4),
            40..=55 => Reg::Unavailable(16),
            56 => Reg::Unavailable(4),
            57 => Reg::FsBase,
            58 => Reg::GsBase,
            59 => Reg::Cr0,
            60 => Reg::Cr2,
            61 => Reg::Cr3,
            62 => Reg::Cr4,
            63 => Reg::Cr8,
            64 => Reg::Efer,
            _ => return None,
        })
    }

    /// Size in bytes on the wire.
    pub fn size(self) -> usize {
        match self {
            Reg::Eflags | Reg::Selector(_) => 4,
            Reg::Unavailable(n) => usize::from(n),
            _ => 8,
        }
    }

    /// The value of this register in `state`; `None` if unavailable.
    pub fn get(self, state: &CpuState) -> Option<u64> {
        let r = &state.regs;
        let s = &state.sregs;
        Some(match self {
            Reg::Gpr(i) => match i {
                0 => r.rax,
                1 => r.rbx,
                2 => r.rcx,
                3 => r.rdx,
                4 => r.rsi,
                5 => r.rdi,
                6 => r.rbp,
                7 => r.rsp,
                8 => r.r8,
                9 => r.r9,
                10 => r.r10,
                11 => r.r11,
                12 => r.r12,
                13 => r.r13,
                14 => r.r14,
                _ => r.r15,
            },
            Reg::Rip => r.rip,
            Reg::Eflags => r.rflags,
            Reg::Selector(i) => u64::from(match i {
                0 => s.cs.selector,
                1 => s.ss.selector,
                2 => s.ds.selector,
                3 => s.es.selector,
                4 => s.fs.selector,
                _ => s.gs.selector,
            }),
            Reg::Unavailable(_) => return None,
            Reg::FsBase => s.fs.base,
            Reg::GsBase => s.gs.base,
            Reg::Cr0 => s.cr0,
            Reg::Cr2 => s.cr2,
            Reg::Cr3 => s.cr3,
            Reg::Cr4 => s.cr4,
            Reg::Cr8 => s.cr8,
            Reg::Efer => s.efer,
        })
    }

    /// Sets this register in `state`. Segment selectors cannot change
    /// (only the selector would, not the hidden descriptor), nor can the
    /// unavailable registers: both are errors.
    pub fn set(self, state: &mut CpuState, value: u64) -> Result<(), &'static str> {
        let r = &mut state.regs;
        let s = &mut state.sregs;
        let slot = match self {
            Reg::Gpr(i) => match i {
                0 => &mut r.rax,
                1 => &mut r.rbx,
                2 => &mut r.rcx,
                3 => &mut r.rdx,
                4 => &mut r.rsi,
                5 => &mut r.rdi,
                6 => &mut r.rbp,
                7 => &mut r.rsp,
                8 => &mut r.r8,
                9 => &mut r.r9,
                10 => &mut r.r10,
                11 => &mut r.r11,
                12 => &mut r.r12,
                13 => &mut r.r13,
                14 => &mut r.r14,
                _ => &mut r.r15,
            },
            Reg::Rip => &mut r.rip,
            Reg::Eflags => {
                // Keep RFLAGS' upper half; bit 1 is always set.
                r.rflags = (r.rflags & !0xffff_ffff) | (value & 0xffff_ffff) | 0b10;
                return Ok(());
            }
            Reg::Selector(_) => {
                return if self.get(state) == Some(value) {
                    Ok(())
                } else {
                    Err("segment selectors cannot be written")
                };
            }
            Reg::Unavailable(_) => return Err("x87/SSE registers are not available"),
            Reg::FsBase => &mut s.fs.base,
            Reg::GsBase => &mut s.gs.base,
            Reg::Cr0 => &mut s.cr0,
            Reg::Cr2 => &mut s.cr2,
            Reg::Cr3 => &mut s.cr3,
            Reg::Cr4 => &mut s.cr4,
            Reg::Cr8 => &mut s.cr8,
            Reg::Efer => &mut s.efer,
        };
        *slot = value;
        Ok(())
    }
}

/// Decodes a little-endian register value of up to 8 bytes.
pub fn le_value(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let mut v = [0u8; 8];
    v.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some(u64::from_le_bytes(v))
}

/// The register file as gdbstub sees it: the CPU state, plus (for a `G`
/// write) which registers the client sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GdbRegs {
    /// The state.
    pub state: CpuState,
}

impl Registers for GdbRegs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.state.regs.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for n in 0..NUM_REGS {
            let Some(reg) = Reg::from_number(n) else {
                continue;
            };
            match reg.get(&self.state) {
                Some(v) => {
                    for b in v.to_le_bytes().iter().take(reg.size()) {
                        write_byte(Some(*b));
                    }
                }
                None => (0..reg.size()).for_each(|_| write_byte(None)),
            }
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        let mut rest = bytes;
        for n in 0..NUM_REGS {
            let reg = Reg::from_number(n).ok_or(())?;
            if rest.len() < reg.size() {
                return Err(());
            }
            let (this, tail) = rest.split_at(reg.size());
            rest = tail;
            if let Reg::Unavailable(_) = reg {
                continue;
            }
            let value = le_value(this).ok_or(())?;
            match reg {
                // Selectors are checked against the live state by the target.
                Reg::Selector(i) => {
                    let sel = u16::try_from(value).map_err(|_| ())?;
                    let s = &mut self.state.sregs;
                    match i {
                        0 => s.cs.selector = sel,
                        1 => s.ss.selector = sel,
                        2 => s.ds.selector = sel,
                        3 => s.es.selector = sel,
                        4 => s.fs.selector = sel,
                        _ => s.gs.selector = sel,
                    }
                }
                Reg::Eflags => self.state.regs.rflags = value,
                _ => reg.set(&mut self.state, value).map_err(|_| ())?,
            }
        }
        if rest.is_empty() { Ok(()) } else { Err(()) }
    }
}

/// A register number for the `p`/`P` packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GdbRegId(pub Reg);

impl RegId for GdbRegId {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        let reg = Reg::from_number(id)?;
        Some((GdbRegId(reg), NonZeroUsize::new(reg.size())))
    }
}

/// x86_64 with system registers, for gdbstub.
#[derive(Debug)]
pub enum SeraphX86_64 {}

impl Arch for SeraphX86_64 {
    type Usize = u64;
    type Registers = GdbRegs;
    type BreakpointKind = usize;
    type RegId = GdbRegId;

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }
}

/// The target description: gdb's standard i386 core, SSE and segments
/// features (register names as gdb expects them) and a Seraph-V feature
/// with the control registers and EFER (named as QEMU names them).
pub const TARGET_XML: &str = include_str!("target.xml");

#[cfg(test)]
mod tests {
    use super::*;

    /// The XML's registers, in order: (name, bitsize).
    fn xml_regs() -> Vec<(String, usize)> {
        TARGET_XML
            .split("<reg ")
            .skip(1)
            .map(|r| {
                let attr = |name: &str| {
                    let start = r.find(&format!("{name}=\"")).map(|i| i + name.len() + 2);
                    let value = start.and_then(|s| r.get(s..)).unwrap_or("");
                    value.split('"').next().unwrap_or("").to_string()
                };
                (attr("name"), attr("bitsize").parse().unwrap_or(0))
            })
            .collect()
    }

    #[test]
    fn target_description_matches_the_register_layout() {
        let regs = xml_regs();
        assert_eq!(regs.len(), NUM_REGS);
        for (n, (name, bits)) in regs.iter().enumerate() {
            let reg = Reg::from_number(n).unwrap();
            assert_eq!(reg.size() * 8, *bits, "register {n} ({name})");
        }
        let names: Vec<&str> = regs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[16], "rip");
        assert_eq!(names[17], "eflags");
        assert_eq!(names[18..24], ["cs", "ss", "ds", "es", "fs", "gs"]);
        assert_eq!(
            names[57..],
            [
                "fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"
            ]
        );
        for feature in [
            "org.gnu.gdb.i386.core",
            "org.gnu.gdb.i386.sse",
            "org.gnu.gdb.i386.segments",
        ] {
            assert!(TARGET_XML.contains(&format!("<feature name=\"{feature}\">")));
        }
    }

    #[test]
    fn registers_round_trip_through_the_g_packet() {
        let mut regs = GdbRegs::default();
        regs.state.regs.rax = 0x1122_3344_5566_7788;
        regs.state.regs.r15 = 15;
        regs.state.regs.rip = 0xffff_ffff_8000_1000;
        regs.state.regs.rflags = 0x246;
        regs.state.sregs.cs.selector = 8;
        regs.state.sregs.gs.selector = 0x2b;
        regs.state.sregs.fs.base = 0xdead;
        regs.state.sregs.cr3 = 0x1000;
        regs.state.sregs.efer = 0xd01;
        let mut bytes = Vec::new();
        let mut unavailable = 0;
        regs.gdb_serialize(|b| match b {
            Some(b) => bytes.push(b),
            None => {
                unavailable += 1;
                bytes.push(0);
            }
        });
        assert_eq!(unavailable, 8 * 10 + 8 * 4 + 16 * 16 + 4);
        assert_eq!(bytes[..8], 0x1122_3344_5566_7788u64.to_le_bytes());
        let mut back = GdbRegs::default();
        back.gdb_deserialize(&bytes).unwrap();
        assert_eq!(back, regs);
        // Wrong sizes are refused.
        assert!(back.gdb_deserialize(&bytes[1..]).is_err());
        bytes.push(0);
        assert!(back.gdb_deserialize(&bytes).is_err());
        assert!(GdbRegId::from_raw_id(NUM_REGS).is_none());
    }

    #[test]
    fn selectors_and_x87_registers_are_not_writable() {
        let mut state = CpuState::default();
        state.sregs.cs.selector = 8;
        assert!(Reg::Selector(0).set(&mut state, 8).is_ok());
        assert!(Reg::Selector(0).set(&mut state, 0x10).is_err());
        assert!(Reg::Unavailable(10).set(&mut state, 0).is_err());
        Reg::Eflags.set(&mut state, 0x200).unwrap();
        assert_eq!(state.regs.rflags, 0x202, "bit 1 stays set");
        Reg::Cr3.set(&mut state, 0x5000).unwrap();
        assert_eq!(state.sregs.cr3, 0x5000);
        assert_eq!(le_value(&[1, 2]), Some(0x0201));
        assert_eq!(le_value(&[0; 9]), None);
        assert_eq!(le_value(&[]), None);
    }
}
