//! Just enough x86 decoding to tell what the instruction at RIP touches:
//! the plain MOV forms with a register-based or RIP-relative memory
//! operand, and the MSR instructions. Anything else is "not understood",
//! never a guess.

use seraph_hypervisor::Regs;

use crate::report::Access;

/// What the instruction at RIP does, as far as a fault explanation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsnEffect {
    /// A data access to `address` (before segmentation: FS/GS overrides are
    /// not applied, so those forms are not decoded).
    Memory {
        /// The effective address.
        address: u64,
        /// Read or write.
        access: Access,
        /// Operand size in bytes.
        size: u8,
    },
    /// `wrmsr` (0F 30) of ECX.
    Wrmsr {
        /// The MSR index (ECX).
        msr: u32,
    },
    /// `rdmsr` (0F 32) of ECX.
    Rdmsr {
        /// The MSR index (ECX).
        msr: u32,
    },
    /// `hlt` (F4).
    Hlt,
}

fn gpr(regs: &Regs, n: u8) -> u64 {
    match n & 0xF {
        0 => regs.rax,
        1 => regs.rcx,
        2 => regs.rdx,
        3 => regs.rbx,
        4 => regs.rsp,
        5 => regs.rbp,
        6 => regs.rsi,
        7 => regs.rdi,
        8 => regs.r8,
        9 => regs.r9,
        10 => regs.r10,
        11 => regs.r11,
        12 => regs.r12,
        13 => regs.r13,
        14 => regs.r14,
        _ => regs.r15,
    }
}

/// Decodes `bytes` (the instruction at `regs.rip`) if it is one of the
/// forms above; `None` otherwise.
pub fn decode(bytes: &[u8], regs: &Regs) -> Option<InsnEffect> {
    let mut i = 0usize;
    let mut opsize16 = false;
    // Legacy prefixes: operand size only; segment overrides end decoding.
    while let Some(&b) = bytes.get(i) {
        match b {
            0x66 => opsize16 = true,
            0x67 | 0x2E | 0x3E | 0x26 | 0x36 | 0x64 | 0x65 | 0xF0 | 0xF2 | 0xF3 => return None,
            _ => break,
        }
        i += 1;
    }
    let mut rex = 0u8;
    if let Some(&b) = bytes.get(i) {
        if b & 0xF0 == 0x40 {
            rex = b;
            i += 1;
        }
    }
    let op = *bytes.get(i)?;
    i += 1;
    match op {
        0xF4 => return Some(InsnEffect::Hlt),
        0x0F => {
            let msr = regs.rcx as u32;
            return match bytes.get(i)? {
                0x30 => Some(InsnEffect::Wrmsr { msr }),
                0x32 => Some(InsnEffect::Rdmsr { msr }),
                _ => None,
            };
        }
        _ => {}
    }
    let (access, byte_op, imm) = match op {
        0x88 => (Access::Write, true, 0),
        0x89 => (Access::Write, false, 0),
        0x8A => (Access::Read, true, 0),
        0x8B => (Access::Read, false, 0),
        0xC6 => (Access::Write, true, 1),
        0xC7 => (Access::Write, false, if opsize16 { 2 } else { 4 }),
        _ => return None,
    };
    let size = if byte_op {
        1
    } else if rex & 0x8 != 0 {
        8
    } else if opsize16 {
        2
    } else {
        4
    };
    let modrm = *bytes.get(i)?;
    i += 1;
    let md = modrm >> 6;
    let rm = (modrm & 7) | ((rex & 1) << 3);
    if md == 3 || modrm & 7 == 4 {
        return None; // register operand, or a SIB byte
    }
    let disp_len = match md {
        0 if modrm & 7 == 5 => 4,
        0 => 0,
        1 => 1,
        _ => 4,
    };
    let disp_bytes = bytes.get(i..i + disp_len)?;
    let disp: i64 = match disp_len {
        1 => i64::from(disp_bytes.first().copied()? as i8),
        4 => i64::from(i32::from_le_bytes(disp_bytes.try_into().ok()?)),
        _ => 0,
    };
    i += disp_len;
    let base = if md == 0 && modrm & 7 == 5 {
        // RIP-relative: from the end of the instruction.
        let len = i + imm;
        if bytes.len() < len {
            return None;
        }
        regs.rip.wrapping_add(len as u64)
    } else {
        gpr(regs, rm)
    };
    Some(InsnEffect::Memory {
        address: base.wrapping_add(disp as u64),
        access,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> Regs {
        Regs {
            rax: 0x1234_0000_0000,
            rbx: 0x8000_0000_0000,
            rcx: 0xDEAD_BEEF,
            r9: 0x5000,
            rip: 0x10_0000,
            ..Default::default()
        }
    }

    fn mem(address: u64, access: Access, size: u8) -> Option<InsnEffect> {
        Some(InsnEffect::Memory {
            address,
            access,
            size,
        })
    }

    #[test]
    fn mov_forms() {
        let r = regs();
        // mov (%rax),%rax: REX.W 8B /r, mod 00 rm 000.
        assert_eq!(
            decode(&[0x48, 0x8B, 0x00], &r),
            mem(0x1234_0000_0000, Access::Read, 8)
        );
        // movl $1,(%rbx): C7 /0, mod 00 rm 011, imm32.
        assert_eq!(
            decode(&[0xC7, 0x03, 1, 0, 0, 0], &r),
            mem(0x8000_0000_0000, Access::Write, 4)
        );
        // mov %al,0x10(%r9): REX.B 88 /r, mod 01 rm 001, disp8.
        assert_eq!(
            decode(&[0x41, 0x88, 0x41, 0x10], &r),
            mem(0x5010, Access::Write, 1)
        );
        // mov %ax,-8(%rbx) with 66: mod 10 rm 011, disp32 -8.
        assert_eq!(
            decode(&[0x66, 0x89, 0x83, 0xF8, 0xFF, 0xFF, 0xFF], &r),
            mem(0x7FFF_FFFF_FFF8, Access::Write, 2)
        );
        // movl $7,0x100(%rip): C7 05 disp32 imm32; 10 bytes long.
        assert_eq!(
            decode(&[0xC7, 0x05, 0, 1, 0, 0, 7, 0, 0, 0], &r),
            mem(0x10_010A, Access::Write, 4)
        );
    }

    #[test]
    fn msr_hlt_and_refusals() {
        let r = regs();
        assert_eq!(
            decode(&[0x0F, 0x30], &r),
            Some(InsnEffect::Wrmsr { msr: 0xDEAD_BEEF })
        );
        assert_eq!(
            decode(&[0x0F, 0x32], &r),
            Some(InsnEffect::Rdmsr { msr: 0xDEAD_BEEF })
        );
        assert_eq!(decode(&[0xF4], &r), Some(InsnEffect::Hlt));
        // Register operand, SIB, segment override, truncated, unknown.
        assert_eq!(decode(&[0x48, 0x89, 0xC0], &r), None);
        assert_eq!(decode(&[0x8B, 0x04, 0x24], &r), None);
        assert_eq!(decode(&[0x65, 0x8B, 0x00], &r), None);
        assert_eq!(decode(&[0x8B, 0x80, 0x00], &r), None);
        assert_eq!(decode(&[0xC7, 0x05, 0, 1, 0, 0, 7], &r), None);
        assert_eq!(decode(&[], &r), None);
        assert_eq!(decode(&[0x90], &r), None);
    }
}
