//! Building and checking the memory map handed to the kernel.
//!
//! The boot plan lists every RAM range it uses as a [`Claim`];
//! [`build_memory_map`] turns the claims into sorted, non-overlapping
//! descriptors that describe all of RAM (unclaimed pages are conventional
//! memory), followed by the framebuffer window (MMIO, write-combining), the
//! PCI window (MMIO, uncacheable) and the local APIC page (MMIO,
//! uncacheable), so the map reaches past
//! 0xFEE0_1000 as the kernel needs.

use seraph_memory::layout::{
    FRAMEBUFFER_BASE, FRAMEBUFFER_WINDOW, LAPIC_BASE, LAPIC_SIZE, PAGE_SIZE, PCI_MMIO_BASE,
    PCI_MMIO_SIZE, align_down, align_up,
};

use crate::boot_info::{ATTR_UC, ATTR_WB, ATTR_WC, MEM_CONVENTIONAL, MEM_MMIO, MemoryDescriptor};
use crate::error::MapError;

/// A RAM range the boot plan uses, and the memory type to report for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Short name, for error messages.
    pub what: &'static str,
    /// First byte (rounded down to 4 KiB).
    pub start: u64,
    /// One past the last byte (rounded up to 4 KiB).
    pub end: u64,
    /// `MEM_*` type for the descriptor.
    pub memory_type: u32,
}

fn descriptor(memory_type: u32, start: u64, end: u64, attribute: u64) -> MemoryDescriptor {
    MemoryDescriptor {
        memory_type,
        phys_start: start,
        virt_start: 0,
        page_count: (end - start) / PAGE_SIZE,
        attribute,
    }
}

/// Builds the map for `ram_size` bytes of RAM from `claims` (any order).
///
/// Claims are rounded outward to whole pages; an empty claim, one that ends
/// beyond RAM, or two that overlap after rounding is an error (a bug in the
/// plan, reported rather than panicking).
pub fn build_memory_map(
    ram_size: u64,
    claims: &[Claim],
) -> Result<Vec<MemoryDescriptor>, MapError> {
    let mut rounded = Vec::with_capacity(claims.len());
    for claim in claims {
        let start = align_down(claim.start, PAGE_SIZE);
        let end = align_up(claim.end, PAGE_SIZE);
        match end {
            Some(end) if start < end && end <= ram_size => {
                rounded.push(Claim {
                    start,
                    end,
                    ..*claim
                });
            }
            _ => {
                return Err(MapError::ClaimOutsideRam {
                    what: claim.what,
                    start: claim.start,
                    end: claim.end,
                    ram_size,
                });
            }
        }
    }
    rounded.sort_by_key(|c| c.start);
    for pair in rounded.windows(2) {
        if let [a, b] = pair {
            if b.start < a.end {
                return Err(MapError::OverlappingClaims {
                    a: a.what,
                    b: b.what,
                });
            }
        }
    }

    let mut map = Vec::with_capacity(rounded.len() * 2 + 3);
    let mut cursor = 0;
    for claim in &rounded {
        if claim.start > cursor {
            map.push(descriptor(MEM_CONVENTIONAL, cursor, claim.start, ATTR_WB));
        }
        map.push(descriptor(
            claim.memory_type,
            claim.start,
            claim.end,
            ATTR_WB,
        ));
        cursor = claim.end;
    }
    if cursor < align_down(ram_size, PAGE_SIZE) {
        map.push(descriptor(
            MEM_CONVENTIONAL,
            cursor,
            align_down(ram_size, PAGE_SIZE),
            ATTR_WB,
        ));
    }
    map.push(descriptor(
        MEM_MMIO,
        FRAMEBUFFER_BASE,
        FRAMEBUFFER_BASE + FRAMEBUFFER_WINDOW,
        ATTR_WC,
    ));
    map.push(descriptor(
        MEM_MMIO,
        PCI_MMIO_BASE,
        PCI_MMIO_BASE + PCI_MMIO_SIZE,
        ATTR_UC,
    ));
    map.push(descriptor(
        MEM_MMIO,
        LAPIC_BASE,
        LAPIC_BASE + LAPIC_SIZE,
        ATTR_UC,
    ));
    Ok(map)
}

/// Checks a map: sorted, non-overlapping, 4 KiB aligned, nonzero entries,
/// all of `[0, ram_size)` covered without holes, and the LAPIC page covered.
pub fn validate(map: &[MemoryDescriptor], ram_size: u64) -> Result<(), MapError> {
    let mut prev_end = 0u64;
    let mut covered = 0u64;
    let mut lapic = false;
    for (index, d) in map.iter().enumerate() {
        let bad = |problem| MapError::Invalid {
            index,
            phys_start: d.phys_start,
            problem,
        };
        if d.phys_start % PAGE_SIZE != 0 {
            return Err(bad("start not 4 KiB aligned"));
        }
        if d.page_count == 0 {
            return Err(bad("zero pages"));
        }
        let end = d
            .page_count
            .checked_mul(PAGE_SIZE)
            .and_then(|len| d.phys_start.checked_add(len))
            .ok_or_else(|| bad("end overflows"))?;
        if index > 0 && d.phys_start < prev_end {
            return Err(bad("overlaps or is out of order with the previous entry"));
        }
        if d.phys_start == covered {
            covered = end;
        }
        if d.phys_start <= LAPIC_BASE && end >= LAPIC_BASE + LAPIC_SIZE {
            lapic = true;
        }
        prev_end = end;
    }
    if covered < ram_size {
        return Err(MapError::RamNotCovered { covered, ram_size });
    }
    if !lapic {
        return Err(MapError::LapicNotCovered);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot_info::{MEM_KERNEL_IMAGE, MEM_RESERVED};

    const MIB: u64 = 0x10_0000;

    fn claim(what: &'static str, start: u64, end: u64, memory_type: u32) -> Claim {
        Claim {
            what,
            start,
            end,
            memory_type,
        }
    }

    #[test]
    fn gaps_become_conventional_and_mmio_follows() {
        let map = build_memory_map(
            64 * MIB,
            &[
                claim("kernel", 0x10_0123, 0x23_3001, MEM_KERNEL_IMAGE),
                claim("low", 0, 0x1000, MEM_RESERVED),
            ],
        )
        .unwrap();
        let summary: Vec<(u32, u64, u64, u64)> = map
            .iter()
            .map(|d| (d.memory_type, d.phys_start, d.page_count, d.attribute))
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, 0, 1, 8),
                (7, 0x1000, 0xFF, 8),
                (0x8000_0000, 0x10_0000, 0x134, 8),
                (7, 0x23_4000, (64 * MIB - 0x23_4000) / 0x1000, 8),
                (11, 0xC000_0000, 0x1000, 2),
                (11, 0xD000_0000, 0x1_0000, 1),
                (11, 0xFEE0_0000, 1, 1),
            ]
        );
        assert_eq!(validate(&map, 64 * MIB), Ok(()));
        assert!(map.last().unwrap().phys_end() >= 0xFEE0_1000);
    }

    #[test]
    fn bad_claims_are_errors() {
        assert_eq!(
            build_memory_map(
                64 * MIB,
                &[claim("a", 0x1000, 0x2800, 2), claim("b", 0x2400, 0x3000, 2)]
            ),
            Err(MapError::OverlappingClaims { a: "a", b: "b" })
        );
        assert!(matches!(
            build_memory_map(64 * MIB, &[claim("big", 63 * MIB, 65 * MIB, 2)]),
            Err(MapError::ClaimOutsideRam { what: "big", .. })
        ));
        assert!(matches!(
            build_memory_map(64 * MIB, &[claim("wrap", 0x1000, u64::MAX, 2)]),
            Err(MapError::ClaimOutsideRam { .. })
        ));
        assert!(matches!(
            build_memory_map(64 * MIB, &[claim("empty", 0x1000, 0x1000, 2)]),
            Err(MapError::ClaimOutsideRam { .. })
        ));
    }

    #[test]
    fn validate_finds_each_defect() {
        let good = build_memory_map(64 * MIB, &[]).unwrap();
        assert_eq!(good.len(), 4);
        assert_eq!(validate(&good, 64 * MIB), Ok(()));
        assert_eq!(
            validate(&good, 128 * MIB),
            Err(MapError::RamNotCovered {
                covered: 64 * MIB,
                ram_size: 128 * MIB
            })
        );
        assert_eq!(
            validate(&good[..3], 64 * MIB),
            Err(MapError::LapicNotCovered)
        );

        let mut hole = good.clone();
        hole[0].phys_start = 0x1000;
        hole[0].page_count -= 1;
        assert!(matches!(
            validate(&hole, 64 * MIB),
            Err(MapError::RamNotCovered { covered: 0, .. })
        ));

        let mut unaligned = good.clone();
        unaligned[1].phys_start += 1;
        assert!(matches!(
            validate(&unaligned, 64 * MIB),
            Err(MapError::Invalid { index: 1, .. })
        ));

        let mut unsorted = good.clone();
        unsorted.swap(0, 1);
        assert!(matches!(
            validate(&unsorted, 64 * MIB),
            Err(MapError::Invalid { index: 1, .. })
        ));

        let mut overflow = good.clone();
        overflow[2].page_count = u64::MAX;
        assert!(matches!(
            validate(&overflow, 64 * MIB),
            Err(MapError::Invalid { index: 2, .. })
        ));

        let mut empty = good;
        empty[1].page_count = 0;
        assert!(matches!(
            validate(&empty, 64 * MIB),
            Err(MapError::Invalid { index: 1, .. })
        ));
    }
}
