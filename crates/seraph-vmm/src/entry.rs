//! The vCPU state at the kernel's first instruction, as pure functions of
//! the boot plan's [`EntryState`]: the Seraph boot protocol's 64-bit long
//! mode (flat segments, paging on, interrupts off).

use seraph_boot::EntryState;
use seraph_hypervisor::{Regs, Segment, SpecialRegs};

// CR0, CR4 and EFER bits of the spec's entry state.
/// CR0.PE: protected mode.
pub const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
/// CR0.PG: paging.
pub const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
/// CR4.LA57: 5-level paging.
pub const CR4_LA57: u64 = 1 << 12;
const EFER_LME: u64 = 1 << 8;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// A flat 4 GiB segment: 64-bit code (`code`) or read/write data.
pub fn flat_segment(selector: u16, code: bool) -> Segment {
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: true,
        dpl: 0,
        db: !code,
        s: true,
        l: code,
        g: true,
        avl: false,
        unusable: false,
    }
}

/// The spec's long-mode entry state on top of `base` (the vCPU's reset
/// state, for the fields the spec does not set), with `apic_base` as
/// IA32_APIC_BASE.
pub fn long_mode_entry(
    entry: &EntryState,
    base: &SpecialRegs,
    apic_base: u64,
) -> (Regs, SpecialRegs) {
    let mut sregs = *base;
    sregs.apic_base = apic_base;
    let gdt = &entry.gdt;
    sregs.cs = flat_segment(gdt.code_selector, true);
    let data = flat_segment(gdt.data_selector, false);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = Segment {
        base: gdt.tss_base,
        limit: gdt.tss_limit,
        selector: gdt.tss_selector,
        type_: 0xb, // 64-bit busy TSS
        present: true,
        ..Default::default()
    };
    sregs.gdt.base = gdt.gdt_base;
    sregs.gdt.limit = gdt.gdt_limit;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = entry.cr3;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer = EFER_LME | EFER_LMA | EFER_NXE;
    let regs = Regs {
        rip: entry.rip,
        rsp: entry.rsp,
        rdi: entry.rdi,
        rflags: seraph_hypervisor::x86::RFLAGS_RESERVED,
        ..Default::default()
    };
    (regs, sregs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_memory::gdt::GdtLayout;

    #[test]
    fn entry_segments_are_flat_long_mode() {
        let cs = flat_segment(0x08, true);
        assert!(cs.l && !cs.db && cs.present && cs.s && cs.g);
        assert_eq!(cs.type_, 0xb);
        let ds = flat_segment(0x10, false);
        assert!(!ds.l && ds.db);
        assert_eq!(ds.type_, 0x3);
    }

    #[test]
    fn long_mode_entry_follows_the_spec() {
        let entry = EntryState {
            rip: 0xffff_8000_0010_0000,
            rsp: 0xa0000,
            rdi: 0x80000,
            cr3: 0x1000,
            gdt: GdtLayout {
                gdt_base: 0xb000,
                gdt_limit: 0x37,
                code_selector: 0x08,
                data_selector: 0x10,
                tss_selector: 0x28,
                tss_base: 0xc000,
                tss_limit: 0x67,
            },
        };
        let (regs, sregs) = long_mode_entry(&entry, &SpecialRegs::default(), 0xfee0_0900);
        assert_eq!(
            (regs.rip, regs.rsp, regs.rdi),
            (entry.rip, 0xa0000, 0x80000)
        );
        assert_eq!(regs.rflags, 2, "IF clear, bit 1 set");
        assert_eq!(sregs.cr3, 0x1000);
        assert_eq!(sregs.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
        assert_ne!(sregs.efer & EFER_LMA, 0);
        assert_eq!(sregs.cr4 & CR4_LA57, 0);
        assert_eq!(sregs.tr.type_, 0xb);
        assert_eq!(sregs.apic_base, 0xfee0_0900);
        assert_eq!(sregs.idt.limit, 0);
        assert_eq!(sregs.ss.selector, 0x10);
    }
}
