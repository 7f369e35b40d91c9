//! A 4-level x86_64 page walker over guest memory, and reads through it.
//!
//! The VMM uses it to read hypercall buffers and the instruction bytes at RIP.
//! The tables are guest data: every entry is read with a bounds-checked
//! guest-memory access, the walk has at most four steps, and nothing panics
//! on garbage. Access rights (U/S, R/W, NX) are not checked: the VMM reads on
//! the guest kernel's behalf.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::WalkError;
use crate::layout::PAGE_SIZE;
use crate::page_tables::{ADDR_MASK, P, PS};

/// Physical-address bits of a 1 GiB page entry.
pub const HUGE_ADDR_MASK: u64 = 0x000F_FFFF_C000_0000;
/// Physical-address bits of a 2 MiB page entry.
pub const LARGE_ADDR_MASK: u64 = 0x000F_FFFF_FFE0_0000;

/// True when bits 63:47 of `virt` are all equal (48-bit canonical form).
pub fn is_canonical(virt: u64) -> bool {
    let top = virt >> 47;
    top == 0 || top == 0x1_FFFF
}

/// Translates guest-virtual `virt` to guest-physical through the tables at
/// `cr3` (PCID and flag bits of CR3 are ignored). Handles 4 KiB, 2 MiB and
/// 1 GiB pages.
pub fn translate(mem: &GuestMemoryMmap, cr3: u64, virt: u64) -> Result<u64, WalkError> {
    if !is_canonical(virt) {
        return Err(WalkError::NonCanonical { virt });
    }
    let mut table = cr3 & ADDR_MASK;
    for level in (1..=4u8).rev() {
        let shift = 12 + 9 * u32::from(level - 1);
        let index = (virt >> shift) & 0x1FF;
        let entry_addr = table | (index * 8);
        let entry: u64 =
            mem.read_obj(GuestAddress(entry_addr))
                .map_err(|_| WalkError::TableOutsideMemory {
                    virt,
                    level,
                    entry_addr,
                })?;
        if entry & P == 0 {
            return Err(WalkError::NotPresent { virt, level });
        }
        if entry & PS != 0 {
            match level {
                3 => return Ok((entry & HUGE_ADDR_MASK) | (virt & 0x3FFF_FFFF)),
                2 => return Ok((entry & LARGE_ADDR_MASK) | (virt & 0x1F_FFFF)),
                4 => return Err(WalkError::ReservedBit { virt }),
                // In a PT, bit 7 is PAT, not a page size.
                _ => {}
            }
        }
        if level == 1 {
            return Ok((entry & ADDR_MASK) | (virt & 0xFFF));
        }
        table = entry & ADDR_MASK;
    }
    // The loop always returns at level 1.
    Err(WalkError::NotPresent { virt, level: 1 })
}

/// Reads `buf.len()` bytes at guest-virtual `virt`, translating each 4 KiB
/// page separately (the buffer may cross pages that map anywhere). Fails
/// without partial results if any page is unmapped or maps outside guest
/// memory (e.g. onto MMIO).
pub fn read_virt(
    mem: &GuestMemoryMmap,
    cr3: u64,
    virt: u64,
    buf: &mut [u8],
) -> Result<(), WalkError> {
    let len = buf.len() as u64;
    if len == 0 {
        return Ok(());
    }
    if virt.checked_add(len - 1).is_none() {
        return Err(WalkError::Overflow { virt, len });
    }
    let mut done = 0usize;
    while done < buf.len() {
        let cur = virt + done as u64;
        let in_page = (PAGE_SIZE - (cur & (PAGE_SIZE - 1))) as usize;
        let chunk = in_page.min(buf.len() - done);
        let phys = translate(mem, cr3, cur)?;
        let Some(dst) = buf.get_mut(done..done + chunk) else {
            return Err(WalkError::Overflow { virt, len });
        };
        mem.read_slice(dst, GuestAddress(phys))
            .map_err(|_| WalkError::PhysOutsideMemory { virt: cur, phys })?;
        done += chunk;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_ram::create_guest_memory;
    use crate::layout::{MIB, PHYS_MAP_BASE};
    use crate::page_tables::{PageTableLayout, write_page_tables};

    fn booted() -> GuestMemoryMmap {
        let mem = create_guest_memory(512 * MIB).unwrap();
        write_page_tables(&mem, &PageTableLayout::new(0x1000, 512 * MIB)).unwrap();
        mem
    }

    /// Virtual address that reaches `table` entries through PML4[510].
    fn recursive(p4: u64, p3: u64, p2: u64, p1: u64) -> u64 {
        0xFFFF_0000_0000_0000 | (p4 << 39) | (p3 << 30) | (p2 << 21) | (p1 << 12)
    }

    #[test]
    fn identity_and_physical_map() {
        let mem = booted();
        assert_eq!(translate(&mem, 0x1000, 0x12_3456), Ok(0x12_3456));
        assert_eq!(translate(&mem, 0x1000, 0xC000_0010), Ok(0xC000_0010));
        assert_eq!(translate(&mem, 0x1000, 0xFEE0_0030), Ok(0xFEE0_0030));
        assert_eq!(
            translate(&mem, 0x1000, PHYS_MAP_BASE + 0x1FF_FFFF),
            Ok(0x1FF_FFFF)
        );
        // Beyond 512 MiB the physical map stops.
        assert_eq!(
            translate(&mem, 0x1000, PHYS_MAP_BASE + 512 * MIB),
            Err(WalkError::NotPresent {
                virt: PHYS_MAP_BASE + 512 * MIB,
                level: 2
            })
        );
        assert_eq!(
            translate(&mem, 0x1000, 0x1_0000_0000),
            Err(WalkError::NotPresent {
                virt: 0x1_0000_0000,
                level: 3
            })
        );
        // PCID bits in CR3 are ignored.
        assert_eq!(translate(&mem, 0x1005, 0x4000), Ok(0x4000));
    }

    #[test]
    fn recursive_slot_reaches_the_tables() {
        let mem = booted();
        // PML4 itself: 510/510/510/510.
        assert_eq!(
            translate(&mem, 0x1000, recursive(510, 510, 510, 510)),
            Ok(0x1000)
        );
        // The identity PD0 (0x3000): 510/510/0/0 -> PML4[0] -> PDPT -> PDPT[0] = PD0.
        assert_eq!(
            translate(&mem, 0x1000, recursive(510, 510, 0, 0)),
            Ok(0x3000)
        );
        let mut entry = [0u8; 8];
        read_virt(&mem, 0x1000, recursive(510, 510, 0, 0) + 8, &mut entry).unwrap();
        assert_eq!(u64::from_le_bytes(entry), 0x20_0083);
    }

    #[test]
    fn reads_cross_pages_and_refuse_mmio() {
        let mem = booted();
        mem.write_slice(b"hello, world", GuestAddress(0x20_0FFA))
            .unwrap();
        let mut buf = [0u8; 12];
        read_virt(&mem, 0x1000, PHYS_MAP_BASE + 0x20_0FFA, &mut buf).unwrap();
        assert_eq!(&buf, b"hello, world");
        let mut buf = [0u8; 4];
        assert_eq!(
            read_virt(&mem, 0x1000, 0xFEE0_0000, &mut buf),
            Err(WalkError::PhysOutsideMemory {
                virt: 0xFEE0_0000,
                phys: 0xFEE0_0000
            })
        );
        // A read running off the end of RAM fails (RAM ends at 512 MiB).
        let mut big = vec![0u8; 0x2000];
        assert!(matches!(
            read_virt(&mem, 0x1000, 512 * MIB - 0x1000, &mut big),
            Err(WalkError::PhysOutsideMemory {
                phys: 0x2000_0000,
                ..
            })
        ));
        assert_eq!(
            read_virt(&mem, 0x1000, u64::MAX - 1, &mut buf),
            Err(WalkError::Overflow {
                virt: u64::MAX - 1,
                len: 4
            })
        );
        assert_eq!(read_virt(&mem, 0x1000, 0x8000_0000_0000, &mut []), Ok(()));
    }

    #[test]
    fn non_canonical_and_garbage_tables() {
        let mem = booted();
        assert_eq!(
            translate(&mem, 0x1000, 0x8000_0000_0000),
            Err(WalkError::NonCanonical {
                virt: 0x8000_0000_0000
            })
        );
        // CR3 outside guest memory.
        assert!(matches!(
            translate(&mem, 0x7_0000_0000, 0),
            Err(WalkError::TableOutsideMemory {
                level: 4,
                entry_addr: 0x7_0000_0000,
                ..
            })
        ));
        // A table whose entries point far outside memory.
        let garbage = 0x10_0000u64;
        mem.write_obj(0x000F_FFFF_FFFF_F003u64, GuestAddress(garbage))
            .unwrap();
        assert!(matches!(
            translate(&mem, garbage, 0x1234),
            Err(WalkError::TableOutsideMemory { level: 3, .. })
        ));
        // PS in a PML4 entry is reserved.
        mem.write_obj(0x83u64, GuestAddress(garbage)).unwrap();
        assert_eq!(
            translate(&mem, garbage, 0),
            Err(WalkError::ReservedBit { virt: 0 })
        );
        // Pseudo-random tables: every outcome is Ok or Err, never a panic.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut page = vec![0u8; 0x4000];
        for b in page.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        mem.write_slice(&page, GuestAddress(garbage)).unwrap();
        for i in 0..2000u64 {
            let virt = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let _ = translate(&mem, garbage, virt);
            let mut buf = [0u8; 32];
            let _ = read_virt(&mem, garbage, virt, &mut buf);
        }
    }

    #[test]
    fn four_kib_and_one_gib_pages() {
        let mem = booted();
        // Hand-built tables at 0x40_0000: PML4 -> PDPT with a 1 GiB page at
        // index 1 and a PD -> PT at index 0.
        let (pml4, pdpt, pd, pt) = (0x40_0000u64, 0x40_1000u64, 0x40_2000u64, 0x40_3000u64);
        mem.write_obj(pdpt | 3, GuestAddress(pml4)).unwrap();
        mem.write_obj(pd | 3, GuestAddress(pdpt)).unwrap();
        mem.write_obj(0x4000_0000u64 | 0x83, GuestAddress(pdpt + 8))
            .unwrap();
        mem.write_obj(pt | 3, GuestAddress(pd)).unwrap();
        // PT entry 5 -> 0x77_7000, with bit 7 (PAT) set: not a page size here.
        mem.write_obj(0x77_7000u64 | 0x83, GuestAddress(pt + 5 * 8))
            .unwrap();
        assert_eq!(translate(&mem, pml4, 0x5ABC), Ok(0x77_7ABC));
        assert_eq!(translate(&mem, pml4, 0x4123_4567), Ok(0x4123_4567));
        assert_eq!(
            translate(&mem, pml4, 0x6000),
            Err(WalkError::NotPresent {
                virt: 0x6000,
                level: 1
            })
        );
    }
}
