//! Register structs to and from `WHV_REGISTER_VALUE` arrays: [`Regs`]
//! (general-purpose registers, RIP, RFLAGS) and [`SpecialRegs`] (segments,
//! descriptor tables, control registers, EFER, APIC base).
//!
//! The only `unsafe` is reading `windows-sys` unions, every variant of
//! which is plain data for which every bit pattern is valid.

use windows_sys::Win32::System::Hypervisor::{
    WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHV_X64_SEGMENT_REGISTER, WHV_X64_TABLE_REGISTER,
    WHvX64RegisterApicBase, WHvX64RegisterCr0, WHvX64RegisterCr2, WHvX64RegisterCr3,
    WHvX64RegisterCr4, WHvX64RegisterCr8, WHvX64RegisterCs, WHvX64RegisterDs, WHvX64RegisterEfer,
    WHvX64RegisterEs, WHvX64RegisterFs, WHvX64RegisterGdtr, WHvX64RegisterGs, WHvX64RegisterIdtr,
    WHvX64RegisterLdtr, WHvX64RegisterR8, WHvX64RegisterR9, WHvX64RegisterR10, WHvX64RegisterR11,
    WHvX64RegisterR12, WHvX64RegisterR13, WHvX64RegisterR14, WHvX64RegisterR15, WHvX64RegisterRax,
    WHvX64RegisterRbp, WHvX64RegisterRbx, WHvX64RegisterRcx, WHvX64RegisterRdi, WHvX64RegisterRdx,
    WHvX64RegisterRflags, WHvX64RegisterRip, WHvX64RegisterRsi, WHvX64RegisterRsp,
    WHvX64RegisterSs, WHvX64RegisterTr,
};

use super::{reg64, value64 as get64};
use crate::x86::{DescriptorTable, Regs, Segment, SpecialRegs};

/// Register names for [`Regs`], in the order of [`regs_to_values`].
pub const REGS_NAMES: [WHV_REGISTER_NAME; 18] = [
    WHvX64RegisterRax,
    WHvX64RegisterRbx,
    WHvX64RegisterRcx,
    WHvX64RegisterRdx,
    WHvX64RegisterRsi,
    WHvX64RegisterRdi,
    WHvX64RegisterRsp,
    WHvX64RegisterRbp,
    WHvX64RegisterR8,
    WHvX64RegisterR9,
    WHvX64RegisterR10,
    WHvX64RegisterR11,
    WHvX64RegisterR12,
    WHvX64RegisterR13,
    WHvX64RegisterR14,
    WHvX64RegisterR15,
    WHvX64RegisterRip,
    WHvX64RegisterRflags,
];

/// [`Regs`] as values for [`REGS_NAMES`].
pub fn regs_to_values(r: &Regs) -> [WHV_REGISTER_VALUE; 18] {
    [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15, r.rip, r.rflags,
    ]
    .map(reg64)
}

/// [`Regs`] from values read for [`REGS_NAMES`].
pub fn regs_from_values(v: &[WHV_REGISTER_VALUE; 18]) -> Regs {
    let g: [u64; 18] = std::array::from_fn(|i| get64(&v[i]));
    Regs {
        rax: g[0],
        rbx: g[1],
        rcx: g[2],
        rdx: g[3],
        rsi: g[4],
        rdi: g[5],
        rsp: g[6],
        rbp: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: g[16],
        rflags: g[17],
    }
}

/// Register names for [`SpecialRegs`], in the order of [`sregs_to_values`].
pub const SREGS_NAMES: [WHV_REGISTER_NAME; 17] = [
    WHvX64RegisterCs,
    WHvX64RegisterDs,
    WHvX64RegisterEs,
    WHvX64RegisterFs,
    WHvX64RegisterGs,
    WHvX64RegisterSs,
    WHvX64RegisterTr,
    WHvX64RegisterLdtr,
    WHvX64RegisterGdtr,
    WHvX64RegisterIdtr,
    WHvX64RegisterCr0,
    WHvX64RegisterCr2,
    WHvX64RegisterCr3,
    WHvX64RegisterCr4,
    WHvX64RegisterCr8,
    WHvX64RegisterEfer,
    WHvX64RegisterApicBase,
];

/// A [`Segment`] as WHP's segment register. WHP has no "unusable" bit: an
/// unusable segment is written as not present.
pub fn segment_to_whv(s: &Segment) -> WHV_X64_SEGMENT_REGISTER {
    let present = s.present && !s.unusable;
    let attributes = u16::from(s.type_ & 0xF)
        | u16::from(s.s) << 4
        | u16::from(s.dpl & 0x3) << 5
        | u16::from(present) << 7
        | u16::from(s.avl) << 12
        | u16::from(s.l) << 13
        | u16::from(s.db) << 14
        | u16::from(s.g) << 15;
    let mut seg = WHV_X64_SEGMENT_REGISTER {
        Base: s.base,
        Limit: s.limit,
        Selector: s.selector,
        ..Default::default()
    };
    seg.Anonymous.Attributes = attributes;
    seg
}

/// A WHP segment register as a [`Segment`] (not present reads back as unusable).
pub fn segment_from_whv(seg: &WHV_X64_SEGMENT_REGISTER) -> Segment {
    // SAFETY: a union of a u16 bitfield struct and a u16.
    let a = unsafe { seg.Anonymous.Attributes };
    let present = a & (1 << 7) != 0;
    Segment {
        base: seg.Base,
        limit: seg.Limit,
        selector: seg.Selector,
        type_: (a & 0xF) as u8,
        s: a & (1 << 4) != 0,
        dpl: ((a >> 5) & 0x3) as u8,
        present,
        avl: a & (1 << 12) != 0,
        l: a & (1 << 13) != 0,
        db: a & (1 << 14) != 0,
        g: a & (1 << 15) != 0,
        unusable: !present,
    }
}

fn seg_value(s: &Segment) -> WHV_REGISTER_VALUE {
    let mut r = WHV_REGISTER_VALUE::default();
    r.Segment = segment_to_whv(s);
    r
}

fn table_value(t: &DescriptorTable) -> WHV_REGISTER_VALUE {
    let mut r = WHV_REGISTER_VALUE::default();
    r.Table = WHV_X64_TABLE_REGISTER {
        Pad: [0; 3],
        Limit: t.limit,
        Base: t.base,
    };
    r
}

fn seg_of(v: &WHV_REGISTER_VALUE) -> Segment {
    // SAFETY: plain-data union; any bit pattern is a valid segment register.
    segment_from_whv(&unsafe { v.Segment })
}

fn table_of(v: &WHV_REGISTER_VALUE) -> DescriptorTable {
    // SAFETY: plain-data union; any bit pattern is a valid table register.
    let t = unsafe { v.Table };
    DescriptorTable {
        base: t.Base,
        limit: t.Limit,
    }
}

/// [`SpecialRegs`] as values for [`SREGS_NAMES`].
pub fn sregs_to_values(s: &SpecialRegs) -> [WHV_REGISTER_VALUE; 17] {
    [
        seg_value(&s.cs),
        seg_value(&s.ds),
        seg_value(&s.es),
        seg_value(&s.fs),
        seg_value(&s.gs),
        seg_value(&s.ss),
        seg_value(&s.tr),
        seg_value(&s.ldt),
        table_value(&s.gdt),
        table_value(&s.idt),
        reg64(s.cr0),
        reg64(s.cr2),
        reg64(s.cr3),
        reg64(s.cr4),
        reg64(s.cr8),
        reg64(s.efer),
        reg64(s.apic_base),
    ]
}

/// [`SpecialRegs`] from values read for [`SREGS_NAMES`].
pub fn sregs_from_values(v: &[WHV_REGISTER_VALUE; 17]) -> SpecialRegs {
    SpecialRegs {
        cs: seg_of(&v[0]),
        ds: seg_of(&v[1]),
        es: seg_of(&v[2]),
        fs: seg_of(&v[3]),
        gs: seg_of(&v[4]),
        ss: seg_of(&v[5]),
        tr: seg_of(&v[6]),
        ldt: seg_of(&v[7]),
        gdt: table_of(&v[8]),
        idt: table_of(&v[9]),
        cr0: get64(&v[10]),
        cr2: get64(&v[11]),
        cr3: get64(&v[12]),
        cr4: get64(&v[13]),
        cr8: get64(&v[14]),
        efer: get64(&v[15]),
        apic_base: get64(&v[16]),
    }
}

#[cfg(test)]
mod tests;
