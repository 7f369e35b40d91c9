//! The arch-neutral fault report: one sentence that reads the same on x86
//! and AArch64 (fault kind, where, what access to which address, why and
//! at which page-table level, then the raw syndrome decoded).
//!
//! ```text
//! #PF page fault at rip 0x100010: write to 0x123400000000 (not present at PML4 level; error code 0x2: write, supervisor, not-present)
//! DABT data abort at pc 0x40001000: write to 0x9000000 (not present at level 2; ESR 0x93c08046: ...)
//! ```

use std::fmt;

/// The guest's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86_64 (4-level long-mode paging).
    X86_64,
    /// AArch64 (VMSAv8-64 translation tables).
    Aarch64,
}

impl Arch {
    /// What the program counter is called in reports ("rip", "pc").
    pub fn pc_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "rip",
            Arch::Aarch64 => "pc",
        }
    }
}

/// The kind of memory access that faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

impl Access {
    /// The access with the preposition that goes before its address.
    pub fn phrase(self) -> &'static str {
        match self {
            Access::Read => "read from",
            Access::Write => "write to",
            Access::Execute => "instruction fetch at",
        }
    }
}

/// A translation-table level, named as each architecture names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// x86 page-map level 4 (top).
    Pml4,
    /// x86 page-directory-pointer table.
    Pdpt,
    /// x86 page directory.
    Pd,
    /// x86 page table (bottom).
    Pt,
    /// AArch64 lookup level: -1 (FEAT_LPA2) to 3.
    Arm(i8),
}

impl Level {
    /// The x86 level for walk depth 4 (PML4) down to 1 (PT).
    pub fn x86(depth: u8) -> Option<Level> {
        match depth {
            4 => Some(Level::Pml4),
            3 => Some(Level::Pdpt),
            2 => Some(Level::Pd),
            1 => Some(Level::Pt),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Level::Pml4 => f.write_str("PML4 level"),
            Level::Pdpt => f.write_str("PDPT level"),
            Level::Pd => f.write_str("PD level"),
            Level::Pt => f.write_str("PT level"),
            Level::Arm(n) => write!(f, "level {n}"),
        }
    }
}

/// Which right an entry withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A write to a read-only mapping.
    ReadOnly,
    /// A user-mode (CPL 3 / EL0) access to a supervisor-only mapping.
    SupervisorOnly,
    /// An instruction fetch from a no-execute mapping.
    NoExecute,
    /// A supervisor instruction fetch from a user page (x86 SMEP, Arm PXN-like).
    SupervisorExecuteOfUserPage,
    /// A supervisor data access to a user page (x86 SMAP, Arm PAN).
    SupervisorAccessOfUserPage,
    /// The architecture reported a permission fault without saying which right.
    Unspecified,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denied::ReadOnly => "read-only",
            Denied::SupervisorOnly => "supervisor-only",
            Denied::NoExecute => "no-execute",
            Denied::SupervisorExecuteOfUserPage => "user page executed by the supervisor (SMEP)",
            Denied::SupervisorAccessOfUserPage => "user page accessed by the supervisor (SMAP)",
            Denied::Unspecified => "permission",
        })
    }
}

/// Why a translation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// No valid entry (x86 P = 0; Arm translation fault).
    NotPresent,
    /// The entry exists but forbids the access.
    Permission(Denied),
    /// A reserved bit is set in an entry.
    ReservedBit,
    /// Arm: the access flag is clear.
    AccessFlag,
    /// Arm: an output address is too wide.
    AddressSize,
    /// x86: the address is not canonical (a #GP or #SS, not a #PF).
    NonCanonical,
    /// A table (or CR3 / TTBR) points outside guest memory.
    TableOutsideMemory,
    /// An external abort (bus error) on the access or the walk.
    ExternalAbort,
    /// A misaligned access.
    Alignment,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::NotPresent => f.write_str("not present"),
            Cause::Permission(Denied::Unspecified) => f.write_str("permission denied"),
            Cause::Permission(d) => write!(f, "permission denied: {d}"),
            Cause::ReservedBit => f.write_str("reserved bit set"),
            Cause::AccessFlag => f.write_str("access flag clear"),
            Cause::AddressSize => f.write_str("address size fault"),
            Cause::NonCanonical => f.write_str("non-canonical address"),
            Cause::TableOutsideMemory => f.write_str("table outside guest memory"),
            Cause::ExternalAbort => f.write_str("external abort"),
            Cause::Alignment => f.write_str("misaligned"),
        }
    }
}

/// One guest fault, explained. Its [`Display`](fmt::Display) is the line a
/// VMM prints; every field is also available typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultReport {
    /// The guest's architecture.
    pub arch: Arch,
    /// The short name: `#PF`, `#GP`, `DABT`, `IABT`, ...
    pub mnemonic: &'static str,
    /// The long name: "page fault", "data abort", ...
    pub name: &'static str,
    /// Where the faulting instruction is.
    pub pc: Option<u64>,
    /// The faulting (virtual) address, when there is one.
    pub address: Option<u64>,
    /// What kind of access faulted, when known.
    pub access: Option<Access>,
    /// Why the translation failed, when known.
    pub cause: Option<Cause>,
    /// At which table level, when known.
    pub level: Option<Level>,
    /// The raw syndrome and its decoding ("error code 0x2: write, ...",
    /// "ESR 0x...: ...").
    pub syndrome: Option<String>,
    /// Further findings, each a short clause ("the IDT is empty (limit 0)").
    pub notes: Vec<String>,
}

impl FaultReport {
    /// A report with only the kind filled in.
    pub fn new(arch: Arch, mnemonic: &'static str, name: &'static str) -> Self {
        Self {
            arch,
            mnemonic,
            name,
            pc: None,
            address: None,
            access: None,
            cause: None,
            level: None,
            syndrome: None,
            notes: Vec::new(),
        }
    }
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.mnemonic, self.name)?;
        if let Some(pc) = self.pc {
            write!(f, " at {} {pc:#x}", self.arch.pc_name())?;
        }
        if let Some(address) = self.address {
            let phrase = self.access.map_or("access to", Access::phrase);
            write!(f, ": {phrase} {address:#x}")?;
        }
        let mut parts = Vec::new();
        match (self.cause, self.level) {
            (Some(cause), Some(level)) => parts.push(format!("{cause} at {level}")),
            (Some(cause), None) => parts.push(cause.to_string()),
            (None, Some(level)) => parts.push(format!("at {level}")),
            (None, None) => {}
        }
        if let Some(syndrome) = &self.syndrome {
            parts.push(syndrome.clone());
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join("; "))?;
        }
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_kind_place_access_cause_level_and_syndrome() {
        let mut r = FaultReport::new(Arch::X86_64, "#PF", "page fault");
        r.pc = Some(0x10_0010);
        r.address = Some(0x1234_0000_0000);
        r.access = Some(Access::Write);
        r.cause = Some(Cause::NotPresent);
        r.level = Some(Level::Pd);
        r.syndrome = Some("error code 0x2: write, supervisor, not-present".into());
        assert_eq!(
            r.to_string(),
            "#PF page fault at rip 0x100010: write to 0x123400000000 \
             (not present at PD level; error code 0x2: write, supervisor, not-present)"
        );
        r.notes.push("the IDT is empty (limit 0)".into());
        assert!(r.to_string().ends_with("; the IDT is empty (limit 0)"));
    }

    #[test]
    fn both_architectures_use_the_same_words() {
        let mut arm = FaultReport::new(Arch::Aarch64, "DABT", "data abort");
        arm.pc = Some(0x4000_1000);
        arm.address = Some(0x900_0000);
        arm.access = Some(Access::Read);
        arm.cause = Some(Cause::Permission(Denied::Unspecified));
        arm.level = Some(Level::Arm(3));
        assert_eq!(
            arm.to_string(),
            "DABT data abort at pc 0x40001000: read from 0x9000000 (permission denied at level 3)"
        );
        let bare = FaultReport::new(Arch::X86_64, "#DF", "double fault");
        assert_eq!(bare.to_string(), "#DF double fault");
        assert_eq!(Level::x86(3), Some(Level::Pdpt));
        assert_eq!(Level::x86(0), None);
    }
}
