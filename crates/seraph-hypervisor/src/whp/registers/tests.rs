//! Register round trips in WHP's order and layout.

use super::*;

#[test]
fn general_registers_round_trip_in_whp_order() {
    let regs = Regs {
        rax: 1,
        rbx: 2,
        rcx: 3,
        rdx: 4,
        rsi: 5,
        rdi: 0x8_0000,
        rsp: 0x9_FFF0,
        rbp: 8,
        r8: 9,
        r9: 10,
        r10: 11,
        r11: 12,
        r12: 13,
        r13: 14,
        r14: 15,
        r15: 16,
        rip: 0x10_1000,
        rflags: 0x2,
    };
    let values = regs_to_values(&regs);
    let pos = |name| REGS_NAMES.iter().position(|n| *n == name).unwrap();
    // SAFETY: reg64 wrote the Reg64 member.
    let at = |name| unsafe { values[pos(name)].Reg64 };
    assert_eq!(at(WHvX64RegisterRdi), 0x8_0000);
    assert_eq!(at(WHvX64RegisterRip), 0x10_1000);
    assert_eq!(at(WHvX64RegisterRflags), 0x2);
    assert_eq!(at(WHvX64RegisterR15), 16);
    assert_eq!(regs_from_values(&values), regs);
}

fn code64() -> Segment {
    Segment {
        base: 0,
        limit: 0xFFFF_FFFF,
        selector: 0x08,
        type_: 0xB,
        present: true,
        dpl: 0,
        db: false,
        s: true,
        l: true,
        g: true,
        avl: false,
        unusable: false,
    }
}

#[test]
fn segment_attributes_use_the_whp_bit_layout() {
    let seg = segment_to_whv(&code64());
    // SAFETY: segment_to_whv wrote Attributes.
    let attr = unsafe { seg.Anonymous.Attributes };
    // type 0xB, S, DPL 0, P, L, G = 0xA09B (the GDT's 0x00AF9B.. flags).
    assert_eq!(attr, 0xA09B);
    assert_eq!((seg.Base, seg.Limit, seg.Selector), (0, 0xFFFF_FFFF, 0x08));
    assert_eq!(segment_from_whv(&seg), code64());
    let data = Segment {
        selector: 0x10,
        type_: 0x3,
        l: false,
        db: true,
        dpl: 3,
        avl: true,
        ..code64()
    };
    // SAFETY: as above.
    let data_attr = unsafe { segment_to_whv(&data).Anonymous.Attributes };
    assert_eq!(data_attr, 0xD0F3);
    assert_eq!(segment_from_whv(&segment_to_whv(&data)), data);
}

#[test]
fn unusable_segments_are_written_not_present_and_read_back_unusable() {
    let ldt = Segment {
        unusable: true,
        present: true,
        type_: 2,
        ..Default::default()
    };
    let w = segment_to_whv(&ldt);
    // SAFETY: segment_to_whv wrote Attributes.
    assert_eq!(unsafe { w.Anonymous.Attributes } & 0x80, 0);
    let back = segment_from_whv(&w);
    assert!(back.unusable && !back.present);
    assert_eq!(back.type_, 2);
}

#[test]
fn special_registers_round_trip() {
    let sregs = SpecialRegs {
        cs: code64(),
        ds: Segment {
            selector: 0x10,
            type_: 3,
            ..code64()
        },
        tr: Segment {
            selector: 0x18,
            type_: 0xB,
            s: false,
            l: false,
            g: false,
            limit: 0x67,
            base: 0x9_F000,
            ..code64()
        },
        ldt: Segment {
            unusable: true,
            ..Default::default()
        },
        gdt: DescriptorTable {
            base: 0x500,
            limit: 0x27,
        },
        idt: DescriptorTable { base: 0, limit: 0 },
        cr0: 0x8005_0033,
        cr3: 0x1000,
        cr4: 0x620,
        efer: 0xD01,
        apic_base: 0xFEE0_0900,
        ..Default::default()
    };
    let values = sregs_to_values(&sregs);
    // SAFETY: table_value wrote the Table member for GDTR (index 8).
    let gdtr = unsafe { values[8].Table };
    assert_eq!((gdtr.Base, gdtr.Limit), (0x500, 0x27));
    assert_eq!(SREGS_NAMES[8], WHvX64RegisterGdtr);
    let back = sregs_from_values(&values);
    // Default segments have present = false, which reads back as unusable.
    let expect = SpecialRegs {
        es: Segment {
            unusable: true,
            ..Default::default()
        },
        fs: Segment {
            unusable: true,
            ..Default::default()
        },
        gs: Segment {
            unusable: true,
            ..Default::default()
        },
        ss: Segment {
            unusable: true,
            ..Default::default()
        },
        ..sregs
    };
    assert_eq!(back, expect);
}
