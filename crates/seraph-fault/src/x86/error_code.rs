//! x86 exception error codes, decoded: the #PF bits (Intel SDM vol. 3A
//! 4.7) and the selector format of #TS, #NP, #SS, #GP and #DF (6.13).

use std::fmt;

use super::exceptions::vector;
use crate::report::Access;

/// A #PF error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageFaultError {
    /// Bit 0, P: a protection violation (1) rather than a not-present page (0).
    pub present: bool,
    /// Bit 1, W/R: the access was a write.
    pub write: bool,
    /// Bit 2, U/S: the access was made in user mode (CPL 3).
    pub user: bool,
    /// Bit 3, RSVD: a reserved bit was set in a paging-structure entry.
    pub reserved_bit: bool,
    /// Bit 4, I/D: the access was an instruction fetch.
    pub instruction_fetch: bool,
    /// Bit 5, PK: a protection-key violation.
    pub protection_key: bool,
    /// Bit 6, SS: a shadow-stack access.
    pub shadow_stack: bool,
    /// Bit 15, SGX: an SGX access-control violation.
    pub sgx: bool,
}

impl PageFaultError {
    /// Decodes the low 32 bits of a #PF error code (other bits are ignored).
    pub fn decode(code: u32) -> Self {
        let bit = |n: u32| code & (1 << n) != 0;
        Self {
            present: bit(0),
            write: bit(1),
            user: bit(2),
            reserved_bit: bit(3),
            instruction_fetch: bit(4),
            protection_key: bit(5),
            shadow_stack: bit(6),
            sgx: bit(15),
        }
    }

    /// The error code with these bits.
    pub fn encode(&self) -> u32 {
        u32::from(self.present)
            | u32::from(self.write) << 1
            | u32::from(self.user) << 2
            | u32::from(self.reserved_bit) << 3
            | u32::from(self.instruction_fetch) << 4
            | u32::from(self.protection_key) << 5
            | u32::from(self.shadow_stack) << 6
            | u32::from(self.sgx) << 15
    }

    /// The access kind the code describes.
    pub fn access(&self) -> Access {
        if self.instruction_fetch {
            Access::Execute
        } else if self.write {
            Access::Write
        } else {
            Access::Read
        }
    }
}

impl fmt::Display for PageFaultError {
    /// "write, supervisor, not-present" (and any further bits that are set).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match self.access() {
            Access::Execute => "instruction-fetch",
            Access::Write => "write",
            Access::Read => "read",
        };
        let mode = if self.user { "user" } else { "supervisor" };
        let why = if self.present {
            "protection"
        } else {
            "not-present"
        };
        write!(f, "{access}, {mode}, {why}")?;
        for (set, name) in [
            (self.reserved_bit, "reserved-bit"),
            (self.protection_key, "protection-key"),
            (self.shadow_stack, "shadow-stack"),
            (self.sgx, "sgx"),
        ] {
            if set {
                write!(f, ", {name}")?;
            }
        }
        Ok(())
    }
}

/// The descriptor table a selector error code refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorTable {
    /// The global descriptor table.
    Gdt,
    /// The interrupt descriptor table (the index is a vector).
    Idt,
    /// The local descriptor table.
    Ldt,
}

/// A selector error code (#TS, #NP, #SS, #GP, #DF carry this format; #DF's is always 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorError {
    /// Bit 0, EXT: the exception happened while delivering an external event.
    pub external: bool,
    /// Bits 1-2, IDT / TI: which table `index` is in.
    pub table: SelectorTable,
    /// Bits 3-15: the descriptor index (a vector when the table is the IDT).
    pub index: u16,
}

impl SelectorError {
    /// Decodes a selector error code (bits above 15 are ignored).
    pub fn decode(code: u32) -> Self {
        let table = if code & 0b10 != 0 {
            SelectorTable::Idt
        } else if code & 0b100 != 0 {
            SelectorTable::Ldt
        } else {
            SelectorTable::Gdt
        };
        Self {
            external: code & 1 != 0,
            table,
            index: ((code >> 3) & 0x1FFF) as u16,
        }
    }

    /// The error code (for the IDT, bit 2 is left clear).
    pub fn encode(&self) -> u32 {
        let table = match self.table {
            SelectorTable::Gdt => 0,
            SelectorTable::Idt => 0b10,
            SelectorTable::Ldt => 0b100,
        };
        u32::from(self.external) | table | (u32::from(self.index & 0x1FFF) << 3)
    }
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.table {
            SelectorTable::Idt => write!(f, "IDT vector {:#04x}", self.index)?,
            SelectorTable::Gdt => write!(f, "GDT index {}", self.index)?,
            SelectorTable::Ldt => write!(f, "LDT index {}", self.index)?,
        }
        if self.external {
            f.write_str(", external event")?;
        }
        Ok(())
    }
}

/// An error code decoded for its vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// #PF.
    PageFault(PageFaultError),
    /// A selector-format error code that is zero: no selector involved
    /// (e.g. #GP(0) for a non-canonical address or a bad MSR).
    Zero,
    /// A selector-format error code naming a descriptor.
    Selector(SelectorError),
    /// #CP: the control-protection reason (1 near-ret, 2 far-ret/iret, 3 endbranch, 4 rstorssp, 5 setssbsy).
    ControlProtection(u32),
    /// Any other vector's code, raw.
    Raw(u32),
}

impl ErrorCode {
    /// Decodes `code` as the error code of exception `vector`.
    pub fn decode(vector: u8, code: u32) -> Self {
        match vector {
            vector::PF => ErrorCode::PageFault(PageFaultError::decode(code)),
            vector::DF | vector::TS | vector::NP | vector::SS | vector::GP | 17 => {
                if code & 0xFFFF == 0 {
                    ErrorCode::Zero
                } else {
                    ErrorCode::Selector(SelectorError::decode(code))
                }
            }
            vector::CP => ErrorCode::ControlProtection(code & 0x7FFF),
            _ => ErrorCode::Raw(code),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::PageFault(pf) => pf.fmt(f),
            ErrorCode::Zero => f.write_str("no selector"),
            ErrorCode::Selector(s) => s.fmt(f),
            ErrorCode::ControlProtection(reason) => {
                let what = match reason {
                    1 => "near return",
                    2 => "far return or iret",
                    3 => "missing endbranch",
                    4 => "rstorssp",
                    5 => "setssbsy",
                    _ => "unknown reason",
                };
                write!(f, "{what}")
            }
            ErrorCode::Raw(code) => write!(f, "raw {code:#x}"),
        }
    }
}

/// "error code 0x2: write, supervisor, not-present".
pub fn describe(vector: u8, code: u32) -> String {
    format!("error code {code:#x}: {}", ErrorCode::decode(vector, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fault_bits() {
        let pf = PageFaultError::decode(0x2);
        assert!(pf.write && !pf.present && !pf.user);
        assert_eq!(pf.to_string(), "write, supervisor, not-present");
        assert_eq!(pf.access(), Access::Write);
        // P | U | I/D: a user fetch from a no-execute page.
        let pf = PageFaultError::decode(0x15);
        assert_eq!(pf.access(), Access::Execute);
        assert_eq!(pf.to_string(), "instruction-fetch, user, protection");
        // RSVD | PK | SS | SGX.
        let pf = PageFaultError::decode(0x8069);
        assert_eq!(
            pf.to_string(),
            "read, supervisor, protection, reserved-bit, protection-key, shadow-stack, sgx"
        );
        for code in [0u32, 1, 0x7F, 0x8000, 0x807F] {
            assert_eq!(PageFaultError::decode(code).encode(), code);
        }
        assert_eq!(
            describe(14, 2),
            "error code 0x2: write, supervisor, not-present"
        );
    }

    #[test]
    fn selector_codes() {
        // IDT vector 0x0e (0x0e << 3 | IDT bit): the #PF gate was bad.
        let s = SelectorError::decode(0x72);
        assert_eq!(s.table, SelectorTable::Idt);
        assert_eq!(s.index, 14);
        assert!(!s.external);
        assert_eq!(s.to_string(), "IDT vector 0x0e");
        // GDT index 2, external.
        let s = SelectorError::decode(0x11);
        assert_eq!(
            (s.table, s.index, s.external),
            (SelectorTable::Gdt, 2, true)
        );
        assert_eq!(s.to_string(), "GDT index 2, external event");
        // LDT index 1.
        assert_eq!(SelectorError::decode(0xC).table, SelectorTable::Ldt);
        for code in [0x72u32, 0x11, 0xC, 0xFFF9] {
            assert_eq!(SelectorError::decode(code).encode(), code);
        }
        assert_eq!(ErrorCode::decode(13, 0), ErrorCode::Zero);
        assert_eq!(describe(13, 0), "error code 0x0: no selector");
        assert_eq!(describe(11, 0x18), "error code 0x18: GDT index 3");
        assert_eq!(describe(21, 3), "error code 0x3: missing endbranch");
        assert_eq!(describe(29, 0x7b), "error code 0x7b: raw 0x7b");
    }
}
