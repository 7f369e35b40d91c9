//! The GDT and the 64-bit TSS the kernel runs with.
//!
//! The Seraph kernel never loads its own GDT and its IDT gates use selector
//! 0x08, so the GDT lives in guest memory:
//!
//! | selector | descriptor |
//! |---|---|
//! | 0x00 | null |
//! | 0x08 | 64-bit ring-0 code: P, DPL 0, S, type 0xB (execute/read, accessed), L, G ([`CODE_DESCRIPTOR`]) |
//! | 0x10 | ring-0 data: P, DPL 0, S, type 0x3 (read/write, accessed), D/B, G ([`DATA_DESCRIPTOR`]) |
//! | 0x18 | 16-byte 64-bit TSS descriptor, type 0x9 (available), P, DPL 0, limit 103 |
//!
//! The accessed bits are preset so the CPU never writes the GDT when it loads
//! a segment. The TSS (104 bytes) has IST1 = the given stack top, all other
//! stack pointers zero and the I/O map base at 104 (no I/O permission bitmap).

use vm_memory::GuestMemoryMmap;

use crate::error::MemoryError;
use crate::layout::ranges_overlap;

/// 64-bit ring-0 code descriptor (base 0, limit 0xFFFFF, access 0x9B, flags G|L).
pub const CODE_DESCRIPTOR: u64 = 0x00AF_9B00_0000_FFFF;
/// Ring-0 data descriptor (base 0, limit 0xFFFFF, access 0x93, flags G|D/B).
pub const DATA_DESCRIPTOR: u64 = 0x00CF_9300_0000_FFFF;
/// Code segment selector.
pub const CODE_SELECTOR: u16 = 0x08;
/// Data segment selector.
pub const DATA_SELECTOR: u16 = 0x10;
/// TSS selector.
pub const TSS_SELECTOR: u16 = 0x18;
/// Bytes of the GDT: null, code, data and a 16-byte TSS descriptor.
pub const GDT_SIZE: u64 = 40;
/// Bytes of the 64-bit TSS.
pub const TSS_SIZE: u64 = 104;
/// Type of an available 64-bit TSS in its descriptor (busy is 0xB).
pub const TSS_TYPE_AVAILABLE: u8 = 0x9;
/// Offset of IST1 inside the TSS.
const TSS_IST1: usize = 36;
/// Offset of the I/O map base inside the TSS.
const TSS_IOMAP_BASE: usize = 102;

/// Where the GDT and TSS were written and the selectors to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GdtLayout {
    /// Guest-physical (= identity-mapped virtual) address of the GDT, for GDTR.base.
    pub gdt_base: u64,
    /// GDTR.limit: size in bytes minus one (39).
    pub gdt_limit: u16,
    /// CS selector (0x08).
    pub code_selector: u16,
    /// DS/ES/SS/FS/GS selector (0x10).
    pub data_selector: u16,
    /// TR selector (0x18).
    pub tss_selector: u16,
    /// Base of the TSS, for TR.base.
    pub tss_base: u64,
    /// TR.limit (103).
    pub tss_limit: u32,
}

/// The 16-byte TSS descriptor for a TSS at `base` with limit `limit`.
pub fn tss_descriptor(base: u64, limit: u32) -> [u8; 16] {
    let limit = u64::from(limit);
    let low = (limit & 0xFFFF)
        | ((base & 0xFF_FFFF) << 16)
        | (u64::from(0x80 | TSS_TYPE_AVAILABLE) << 40)
        | (((limit >> 16) & 0xF) << 48)
        | (((base >> 24) & 0xFF) << 56);
    let high = base >> 32;
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&low.to_le_bytes());
    out[8..].copy_from_slice(&high.to_le_bytes());
    out
}

/// Writes the GDT at `gdt_addr` and the TSS at `tss_addr` (IST1 =
/// `ist1_stack_top`) and returns what the VMM loads into GDTR, CS, DS and TR.
pub fn write_gdt_and_tss(
    mem: &GuestMemoryMmap,
    gdt_addr: u64,
    tss_addr: u64,
    ist1_stack_top: u64,
) -> Result<GdtLayout, MemoryError> {
    if gdt_addr % 8 != 0 {
        return Err(MemoryError::Misaligned {
            what: "GDT",
            addr: gdt_addr,
            align: 8,
        });
    }
    if tss_addr % 8 != 0 {
        return Err(MemoryError::Misaligned {
            what: "TSS",
            addr: tss_addr,
            align: 8,
        });
    }
    let gdt_end = gdt_addr.checked_add(GDT_SIZE);
    let tss_end = tss_addr.checked_add(TSS_SIZE);
    let (Some(gdt_end), Some(tss_end)) = (gdt_end, tss_end) else {
        return Err(MemoryError::Overlap {
            what: "GDT/TSS address overflow",
            a: gdt_addr,
            b: tss_addr,
        });
    };
    if ranges_overlap(gdt_addr, gdt_end, tss_addr, tss_end) {
        return Err(MemoryError::Overlap {
            what: "GDT and TSS",
            a: gdt_addr,
            b: tss_addr,
        });
    }

    let mut gdt = [0u8; GDT_SIZE as usize];
    gdt[8..16].copy_from_slice(&CODE_DESCRIPTOR.to_le_bytes());
    gdt[16..24].copy_from_slice(&DATA_DESCRIPTOR.to_le_bytes());
    gdt[24..40].copy_from_slice(&tss_descriptor(tss_addr, (TSS_SIZE - 1) as u32));

    let mut tss = [0u8; TSS_SIZE as usize];
    tss[TSS_IST1..TSS_IST1 + 8].copy_from_slice(&ist1_stack_top.to_le_bytes());
    tss[TSS_IOMAP_BASE..TSS_IOMAP_BASE + 2].copy_from_slice(&(TSS_SIZE as u16).to_le_bytes());

    crate::guest_ram::write_guest(mem, "GDT", &gdt, gdt_addr)?;
    crate::guest_ram::write_guest(mem, "TSS", &tss, tss_addr)?;

    Ok(GdtLayout {
        gdt_base: gdt_addr,
        gdt_limit: (GDT_SIZE - 1) as u16,
        code_selector: CODE_SELECTOR,
        data_selector: DATA_SELECTOR,
        tss_selector: TSS_SELECTOR,
        tss_base: tss_addr,
        tss_limit: (TSS_SIZE - 1) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_ram::create_guest_memory;
    use crate::layout::MIB;
    use vm_memory::{Bytes, GuestAddress};

    #[test]
    fn descriptors_are_byte_exact() {
        let mem = create_guest_memory(64 * MIB).unwrap();
        let layout = write_gdt_and_tss(&mem, 0xD000, 0xD080, 0x10000).unwrap();
        assert_eq!(
            layout,
            GdtLayout {
                gdt_base: 0xD000,
                gdt_limit: 39,
                code_selector: 0x08,
                data_selector: 0x10,
                tss_selector: 0x18,
                tss_base: 0xD080,
                tss_limit: 103,
            }
        );
        let mut gdt = [0u8; 40];
        mem.read_slice(&mut gdt, GuestAddress(0xD000)).unwrap();
        assert_eq!(gdt[0..8], [0; 8]);
        assert_eq!(gdt[8..16], [0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9B, 0xAF, 0x00]);
        assert_eq!(
            gdt[16..24],
            [0xFF, 0xFF, 0x00, 0x00, 0x00, 0x93, 0xCF, 0x00]
        );
        // TSS: limit 0x67, base 0xD080, type 0x89, base high zero.
        assert_eq!(
            gdt[24..32],
            [0x67, 0x00, 0x80, 0xD0, 0x00, 0x89, 0x00, 0x00]
        );
        assert_eq!(gdt[32..40], [0; 8]);

        let mut tss = [0u8; 104];
        mem.read_slice(&mut tss, GuestAddress(0xD080)).unwrap();
        assert_eq!(tss[36..44], 0x10000u64.to_le_bytes());
        assert_eq!(tss[102..104], [104, 0]);
        assert!(tss[..36].iter().chain(&tss[44..102]).all(|&b| b == 0));
    }

    #[test]
    fn tss_descriptor_splits_a_high_base() {
        let d = tss_descriptor(0x1234_5678_9ABC_DEF0, 103);
        assert_eq!(
            d,
            [
                0x67, 0x00, 0xF0, 0xDE, 0xBC, 0x89, 0x00, 0x9A, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn bad_addresses_are_errors() {
        let mem = create_guest_memory(64 * MIB).unwrap();
        assert!(matches!(
            write_gdt_and_tss(&mem, 0xD004, 0xD080, 0),
            Err(MemoryError::Misaligned { .. })
        ));
        assert!(matches!(
            write_gdt_and_tss(&mem, 0xD000, 0xD020, 0),
            Err(MemoryError::Overlap { .. })
        ));
        assert!(matches!(
            write_gdt_and_tss(&mem, 64 * MIB, 0xD080, 0),
            Err(MemoryError::GuestWrite { .. })
        ));
        assert!(matches!(
            write_gdt_and_tss(&mem, 0xD000, u64::MAX - 7, 0),
            Err(MemoryError::Overlap { .. })
        ));
    }
}
