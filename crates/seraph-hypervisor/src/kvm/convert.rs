//! Conversions between kvm-bindings structs and the backend-neutral ones.

use kvm_bindings::{kvm_cpuid_entry2, kvm_dtable, kvm_regs, kvm_segment, kvm_sregs};
use kvm_ioctls::VcpuExit;

use crate::x86::{CpuidEntry, DescriptorTable, Regs, Segment, SpecialRegs};

/// Generates both directions of a field-by-field conversion between two
/// structs with the same field names.
macro_rules! mirror_conversions {
    ($from_kvm:ident, $to_kvm:ident, $kvm:ident, $ours:ident { $($field:ident),* $(,)? }) => {
        pub(super) fn $from_kvm(r: &$kvm) -> $ours {
            $ours { $($field: r.$field),* }
        }

        pub(super) fn $to_kvm(r: &$ours) -> $kvm {
            $kvm { $($field: r.$field),* }
        }
    };
}

mirror_conversions!(
    regs_from_kvm,
    regs_to_kvm,
    kvm_regs,
    Regs {
        rax,
        rbx,
        rcx,
        rdx,
        rsi,
        rdi,
        rsp,
        rbp,
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
        rip,
        rflags,
    }
);

fn segment_from_kvm(s: &kvm_segment) -> Segment {
    Segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: s.present != 0,
        dpl: s.dpl,
        db: s.db != 0,
        s: s.s != 0,
        l: s.l != 0,
        g: s.g != 0,
        avl: s.avl != 0,
        unusable: s.unusable != 0,
    }
}

fn segment_to_kvm(s: &Segment) -> kvm_segment {
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: u8::from(s.present),
        dpl: s.dpl,
        db: u8::from(s.db),
        s: u8::from(s.s),
        l: u8::from(s.l),
        g: u8::from(s.g),
        avl: u8::from(s.avl),
        unusable: u8::from(s.unusable),
        padding: 0,
    }
}

fn dtable_from_kvm(d: &kvm_dtable) -> DescriptorTable {
    DescriptorTable {
        base: d.base,
        limit: d.limit,
    }
}

fn dtable_to_kvm(d: &DescriptorTable) -> kvm_dtable {
    kvm_dtable {
        base: d.base,
        limit: d.limit,
        padding: [0; 3],
    }
}

pub(super) fn sregs_from_kvm(s: &kvm_sregs) -> SpecialRegs {
    SpecialRegs {
        cs: segment_from_kvm(&s.cs),
        ds: segment_from_kvm(&s.ds),
        es: segment_from_kvm(&s.es),
        fs: segment_from_kvm(&s.fs),
        gs: segment_from_kvm(&s.gs),
        ss: segment_from_kvm(&s.ss),
        tr: segment_from_kvm(&s.tr),
        ldt: segment_from_kvm(&s.ldt),
        gdt: dtable_from_kvm(&s.gdt),
        idt: dtable_from_kvm(&s.idt),
        cr0: s.cr0,
        cr2: s.cr2,
        cr3: s.cr3,
        cr4: s.cr4,
        cr8: s.cr8,
        efer: s.efer,
        apic_base: s.apic_base,
    }
}

pub(super) fn sregs_into_kvm(from: &SpecialRegs, to: &mut kvm_sregs) {
    to.cs = segment_to_kvm(&from.cs);
    to.ds = segment_to_kvm(&from.ds);
    to.es = segment_to_kvm(&from.es);
    to.fs = segment_to_kvm(&from.fs);
    to.gs = segment_to_kvm(&from.gs);
    to.ss = segment_to_kvm(&from.ss);
    to.tr = segment_to_kvm(&from.tr);
    to.ldt = segment_to_kvm(&from.ldt);
    to.gdt = dtable_to_kvm(&from.gdt);
    to.idt = dtable_to_kvm(&from.idt);
    to.cr0 = from.cr0;
    to.cr2 = from.cr2;
    to.cr3 = from.cr3;
    to.cr4 = from.cr4;
    to.cr8 = from.cr8;
    to.efer = from.efer;
    to.apic_base = from.apic_base;
}

pub(super) fn cpuid_from_kvm(e: &kvm_cpuid_entry2) -> CpuidEntry {
    CpuidEntry {
        function: e.function,
        index: e.index,
        significant_index: e.flags & kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX != 0,
        eax: e.eax,
        ebx: e.ebx,
        ecx: e.ecx,
        edx: e.edx,
    }
}

pub(super) fn cpuid_to_kvm(e: &CpuidEntry) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function: e.function,
        index: e.index,
        flags: if e.significant_index {
            kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX
        } else {
            0
        },
        eax: e.eax,
        ebx: e.ebx,
        ecx: e.ecx,
        edx: e.edx,
        padding: [0; 3],
    }
}

/// The `KVM_EXIT_*` number of an exit this backend does not translate.
pub(super) fn exit_reason_number(exit: &VcpuExit<'_>) -> u32 {
    use kvm_bindings as kb;
    match exit {
        VcpuExit::Unknown => kb::KVM_EXIT_UNKNOWN,
        VcpuExit::Exception => kb::KVM_EXIT_EXCEPTION,
        VcpuExit::Hypercall(_) => kb::KVM_EXIT_HYPERCALL,
        VcpuExit::SetTpr => kb::KVM_EXIT_SET_TPR,
        VcpuExit::TprAccess => kb::KVM_EXIT_TPR_ACCESS,
        VcpuExit::Nmi => kb::KVM_EXIT_NMI,
        VcpuExit::IoapicEoi(_) => kb::KVM_EXIT_IOAPIC_EOI,
        VcpuExit::Hyperv => kb::KVM_EXIT_HYPERV,
        VcpuExit::X86Rdmsr(_) => kb::KVM_EXIT_X86_RDMSR,
        VcpuExit::X86Wrmsr(_) => kb::KVM_EXIT_X86_WRMSR,
        VcpuExit::MemoryFault { .. } => kb::KVM_EXIT_MEMORY_FAULT,
        VcpuExit::Unsupported(r) => *r,
        _ => kb::KVM_EXIT_UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_round_trip() {
        let regs = Regs {
            rax: 1,
            rdi: 0x80000,
            rsp: 0x9fff0,
            rip: 0x100000,
            rflags: 2,
            r15: u64::MAX,
            ..Default::default()
        };
        assert_eq!(regs_from_kvm(&regs_to_kvm(&regs)), regs);
    }

    #[test]
    fn special_registers_round_trip_and_keep_unmodelled_fields() {
        let mut kvm = kvm_sregs {
            interrupt_bitmap: [7, 0, 0, 0],
            ..Default::default()
        };
        let sregs = SpecialRegs {
            cs: Segment {
                selector: 0x08,
                l: true,
                present: true,
                s: true,
                type_: 0xb,
                limit: 0xffff_ffff,
                g: true,
                ..Default::default()
            },
            gdt: DescriptorTable {
                base: 0xb000,
                limit: 0x27,
            },
            cr0: 0x8000_0033,
            cr3: 0x1000,
            cr4: 0x620,
            efer: 0xd00,
            ..Default::default()
        };
        sregs_into_kvm(&sregs, &mut kvm);
        assert_eq!(kvm.interrupt_bitmap, [7, 0, 0, 0]);
        assert_eq!(sregs_from_kvm(&kvm), sregs);
    }

    #[test]
    fn cpuid_flags_map_significant_index() {
        let e = CpuidEntry {
            function: 7,
            index: 0,
            significant_index: true,
            ebx: 1 << 18,
            ..Default::default()
        };
        let k = cpuid_to_kvm(&e);
        assert_eq!(k.flags, kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
        assert_eq!(cpuid_from_kvm(&k), e);
    }
}
