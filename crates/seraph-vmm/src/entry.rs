//! The vCPU state at the kernel's first instruction, as pure functions:
//! [`entry_registers`] for any protocol's [`CpuEntry`]: 64-bit long mode
//! (the Seraph protocol, Linux's 64-bit entry) or 32-bit protected mode with
//! paging off (PVH, Linux's 32-bit entry).

use seraph_boot::cpu::{CpuEntry, ENTRY_RFLAGS};
use seraph_hypervisor::{Regs, Segment, SpecialRegs};

// Control-register bits the guest-memory reader and the tests look at.
/// CR0.PG: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.LA57: 5-level paging.
pub const CR4_LA57: u64 = 1 << 12;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;

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

/// A flat 4 GiB segment for a given code width: 64-bit code (`long`),
/// 32-bit code, or read/write data.
fn flat(selector: u16, code: bool, long: bool) -> Segment {
    Segment {
        l: code && long,
        db: !(code && long),
        ..flat_segment(selector, code)
    }
}

/// The registers for `entry` on top of `base` (the vCPU's reset state),
/// with `apic_base` as IA32_APIC_BASE: flat segments from the entry's GDT
/// (64-bit or 32-bit code), a busy TSS, no IDT, IF = 0, and the control
/// registers and general registers the protocol defines.
pub fn entry_registers(
    entry: &CpuEntry,
    base: &SpecialRegs,
    apic_base: u64,
) -> (Regs, SpecialRegs) {
    let mut sregs = *base;
    sregs.apic_base = apic_base;
    let gdt = entry.gdt();
    sregs.cs = flat(gdt.code_selector, true, entry.code_is_64bit());
    let data = flat(gdt.data_selector, false, false);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = Segment {
        base: gdt.tss_base,
        limit: gdt.tss_limit,
        selector: gdt.tss_selector,
        type_: 0xb, // busy TSS (32- or 64-bit)
        present: true,
        ..Default::default()
    };
    sregs.gdt.base = gdt.gdt_base;
    sregs.gdt.limit = gdt.gdt_limit;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    let mut regs = Regs {
        rflags: ENTRY_RFLAGS,
        ..Default::default()
    };
    match entry {
        CpuEntry::Long64(e) => {
            (sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer) =
                (e.cr0.bits(), e.cr3, e.cr4.bits(), e.efer.bits());
            (regs.rip, regs.rsp, regs.rdi, regs.rsi) = (e.rip, e.rsp, e.rdi, e.rsi);
        }
        CpuEntry::Protected32(e) => {
            (sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer) = (e.cr0.bits(), 0, 0, 0);
            regs.rip = u64::from(e.eip);
            regs.rbx = u64::from(e.ebx);
            regs.rsi = u64::from(e.esi);
            regs.rsp = u64::from(e.esp);
        }
    }
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
        use seraph_boot::cpu::{
            LONG_MODE_CR0, LONG_MODE_CR4, LONG_MODE_EFER, LongModeEntry, PROTECTED_MODE_CR0,
            ProtectedModeEntry,
        };
        let gdt = GdtLayout {
            gdt_base: 0xb000,
            gdt_limit: 0x37,
            code_selector: 0x08,
            data_selector: 0x10,
            tss_selector: 0x28,
            tss_base: 0xc000,
            tss_limit: 0x67,
        };
        let entry = CpuEntry::Long64(LongModeEntry {
            rip: 0xffff_8000_0010_0000,
            rsp: 0xa0000,
            rdi: 0x80000,
            rsi: 0,
            cr0: LONG_MODE_CR0,
            cr3: 0x1000,
            cr4: LONG_MODE_CR4,
            efer: LONG_MODE_EFER,
            gdt,
        });
        let (regs, sregs) = entry_registers(&entry, &SpecialRegs::default(), 0xfee0_0900);
        assert_eq!(
            (regs.rip, regs.rsp, regs.rdi),
            (0xffff_8000_0010_0000, 0xa0000, 0x80000)
        );
        assert_eq!(regs.rflags, 2, "IF clear, bit 1 set");
        assert_eq!(sregs.cr3, 0x1000);
        let pe = 1; // CR0.PE
        assert_eq!(sregs.cr0 & (pe | CR0_PG), pe | CR0_PG);
        assert_ne!(sregs.efer & EFER_LMA, 0);
        assert_eq!(sregs.cr4 & CR4_LA57, 0);
        assert!(sregs.cs.l && !sregs.cs.db);
        assert_eq!(sregs.tr.type_, 0xb);
        assert_eq!(sregs.apic_base, 0xfee0_0900);
        assert_eq!(sregs.idt.limit, 0);
        assert_eq!(sregs.ss.selector, 0x10);

        let entry = CpuEntry::Protected32(ProtectedModeEntry {
            eip: 0x10_0000,
            ebx: 0xe000,
            esi: 0,
            esp: 0,
            cr0: PROTECTED_MODE_CR0,
            gdt,
        });
        let (regs, sregs) = entry_registers(&entry, &SpecialRegs::default(), 0xfee0_0900);
        assert_eq!((regs.rip, regs.rbx), (0x10_0000, 0xe000));
        assert_eq!((sregs.cr0 & CR0_PG, sregs.cr3, sregs.efer), (0, 0, 0));
        assert!(!sregs.cs.l && sregs.cs.db, "32-bit code");
    }
}
