//! The vCPU state a kernel is entered with, for every boot protocol: what
//! the VMM loads into the registers before the first run.
//!
//! [`CpuEntry::Long64`] (Seraph protocol, Linux 64-bit entry) and
//! [`CpuEntry::Protected32`] (PVH, Linux 32-bit entry) carry every value the
//! VMM needs: control registers as [`Cr0`] / [`Cr4`] / [`Efer`] bit sets,
//! the GDT in guest memory and the selectors to load, and the general
//! registers the protocol defines. Segments are flat (base 0, limit 4 GiB,
//! granularity 4 KiB); the code segment is 64-bit (L = 1) in long mode and
//! 32-bit (D = 1) in protected mode; TR is a busy TSS (type 11).

use seraph_memory::gdt::GdtLayout;

bitflags::bitflags! {
    /// CR0 bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Cr0: u64 {
        /// Protected mode.
        const PE = 1 << 0;
        /// Monitor coprocessor.
        const MP = 1 << 1;
        /// Extension type (always 1 on modern CPUs).
        const ET = 1 << 4;
        /// Native x87 error reporting.
        const NE = 1 << 5;
        /// Supervisor writes honour read-only pages.
        const WP = 1 << 16;
        /// Paging.
        const PG = 1 << 31;
    }
}

bitflags::bitflags! {
    /// CR4 bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Cr4: u64 {
        /// Physical address extension (required for long mode).
        const PAE = 1 << 5;
        /// FXSAVE/FXRSTOR and SSE enabled.
        const OSFXSR = 1 << 9;
        /// Unmasked SSE exceptions are #XM.
        const OSXMMEXCPT = 1 << 10;
    }
}

bitflags::bitflags! {
    /// IA32_EFER (MSR 0xC000_0080) bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Efer: u64 {
        /// Long mode enable.
        const LME = 1 << 8;
        /// Long mode active.
        const LMA = 1 << 10;
        /// No-execute page bit enabled.
        const NXE = 1 << 11;
    }
}

/// RFLAGS at entry: only the always-one bit 1 (IF = 0).
pub const ENTRY_RFLAGS: u64 = 0x2;

/// Control registers for a 64-bit entry with the VMM's 4-level page tables
/// (which use the NX bit, hence EFER.NXE), and SSE usable.
pub const LONG_MODE_CR0: Cr0 = Cr0::PE
    .union(Cr0::MP)
    .union(Cr0::ET)
    .union(Cr0::NE)
    .union(Cr0::WP)
    .union(Cr0::PG);
/// CR4 for a 64-bit entry.
pub const LONG_MODE_CR4: Cr4 = Cr4::PAE.union(Cr4::OSFXSR).union(Cr4::OSXMMEXCPT);
/// EFER for a 64-bit entry.
pub const LONG_MODE_EFER: Efer = Efer::LME.union(Efer::LMA).union(Efer::NXE);
/// CR0 for a 32-bit protected-mode entry with paging off.
pub const PROTECTED_MODE_CR0: Cr0 = Cr0::PE.union(Cr0::ET);

/// A 64-bit long-mode entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongModeEntry {
    /// RIP: the entry point (virtual).
    pub rip: u64,
    /// RSP: top of the initial stack, 16-byte aligned.
    pub rsp: u64,
    /// RDI (Seraph: the boot info).
    pub rdi: u64,
    /// RSI (Linux: the zero page, `struct boot_params`).
    pub rsi: u64,
    /// CR0.
    pub cr0: Cr0,
    /// CR3: the PML4.
    pub cr3: u64,
    /// CR4.
    pub cr4: Cr4,
    /// EFER (LME and LMA set).
    pub efer: Efer,
    /// GDTR, selectors (CS 64-bit code, DS/ES/SS/FS/GS data) and TR.
    pub gdt: GdtLayout,
}

/// A 32-bit protected-mode entry with paging off (PVH, Linux 32-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectedModeEntry {
    /// EIP: the 32-bit entry point (physical).
    pub eip: u32,
    /// EBX (PVH: the `hvm_start_info` address).
    pub ebx: u32,
    /// ESI (Linux: the zero page).
    pub esi: u32,
    /// ESP (0 where the protocol gives no stack).
    pub esp: u32,
    /// CR0 (PE set, PG clear).
    pub cr0: Cr0,
    /// GDTR, selectors (CS 32-bit code, DS/ES/SS/FS/GS data) and TR.
    pub gdt: GdtLayout,
}

/// How the vCPU starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuEntry {
    /// 64-bit long mode, paging on.
    Long64(LongModeEntry),
    /// 32-bit protected mode, paging off; CR3 = CR4 = EFER = 0.
    Protected32(ProtectedModeEntry),
}

impl CpuEntry {
    /// The instruction pointer at entry.
    pub fn ip(&self) -> u64 {
        match self {
            CpuEntry::Long64(e) => e.rip,
            CpuEntry::Protected32(e) => u64::from(e.eip),
        }
    }

    /// The GDT layout and selectors.
    pub fn gdt(&self) -> &GdtLayout {
        match self {
            CpuEntry::Long64(e) => &e.gdt,
            CpuEntry::Protected32(e) => &e.gdt,
        }
    }

    /// True for a 64-bit code segment (L = 1), false for 32-bit (D = 1).
    pub fn code_is_64bit(&self) -> bool {
        matches!(self, CpuEntry::Long64(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_register_values_match_the_architecture() {
        assert_eq!(LONG_MODE_CR0.bits(), 0x8001_0033);
        assert_eq!(LONG_MODE_CR4.bits(), 0x620);
        assert_eq!(LONG_MODE_EFER.bits(), 0xD00);
        assert_eq!(PROTECTED_MODE_CR0.bits(), 0x11);
        assert!(!PROTECTED_MODE_CR0.contains(Cr0::PG));
    }
}
