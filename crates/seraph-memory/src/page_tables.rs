//! The boot page tables: identity map of 0-4 GiB, the direct physical map,
//! the optional pre-mapped heap and the recursive slot.
//!
//! Tables, relative to [`PageTableLayout::base`] (base 0x1000 gives the boot
//! protocol's table of addresses):
//!
//! | offset | table |
//! |---|---|
//! | +0x0000 | PML4 |
//! | +0x1000 | PDPT for PML4\[0\] (entries 0-3 point at PD0-PD3) |
//! | +0x2000..+0x5000 | PD0-PD3: 2 MiB pages identity-mapping 0-4 GiB |
//! | +0x6000 | PDPT for PML4\[256\] (physical map at `0xFFFF_8000_0000_0000`) |
//! | +0x7000 | PD for the first GiB of the physical map |
//! | +0x8000 | PDPT for PML4\[384\] (heap; zero unless the heap is mapped) |
//! | +0x9000 | PD for the heap: 32 x 2 MiB backed by `backing_phys` |
//! | +0xA000, +0xB000 | PDs for the 2nd and 3rd GiB of the physical map, only when RAM exceeds 1 GiB / 2 GiB |
//!
//! The heap tables' pages are always reserved (and zero when unused) so the
//! layout is the same with and without the option.
//!
//! Entry bits written (Intel SDM vol. 3, 4.5):
//! - non-leaf entries: [`P`] | [`RW`] (0x3);
//! - 2 MiB leaves: [`P`] | [`RW`] | [`PS`] (0x83);
//! - identity leaves inside the framebuffer window `0xC000_0000-0xC0FF_FFFF`:
//!   add [`PWT`] (write-through, PAT index 1 with the reset PAT) and [`NX`];
//! - identity leaves in the MMIO hole `0xFE00_0000-0xFFFF_FFFF` (IOAPIC,
//!   LAPIC) and the PCI window `0xD000_0000-0xDFFF_FFFF` (BARs): add
//!   [`PCD`] | [`PWT`] (uncacheable, PAT index 3) and [`NX`];
//! - PML4\[510\] (recursive): PML4 address | [`P`] | [`RW`] | [`NX`].
//!
//! No entry sets U/S, A, D or G. The physical map covers RAM rounded up to
//! 2 MiB and is executable (higher-half kernels run from it).

use vm_memory::GuestMemoryMmap;

use crate::error::MemoryError;
use crate::layout::{
    FOUR_GIB, FRAMEBUFFER_BASE, FRAMEBUFFER_WINDOW, HEAP_BACKING_SIZE, HEAP_PML4_INDEX,
    HUGE_PAGE_SIZE, LARGE_PAGE_SIZE, MMIO_HOLE_BASE, PAGE_SIZE, PCI_MMIO_BASE, PCI_MMIO_SIZE,
    PHYS_MAP_PML4_INDEX, RECURSIVE_PML4_INDEX,
};

/// Present.
pub const P: u64 = 1 << 0;
/// Writable.
pub const RW: u64 = 1 << 1;
/// Page-level write-through.
pub const PWT: u64 = 1 << 3;
/// Page-level cache disable.
pub const PCD: u64 = 1 << 4;
/// Page size: the entry maps a 2 MiB (PD) or 1 GiB (PDPT) page.
pub const PS: u64 = 1 << 7;
/// No-execute (needs EFER.NXE).
pub const NX: u64 = 1 << 63;
/// Physical-address bits 51:12 of an entry.
pub const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// Offset of the PDPT for PML4\[0\].
const IDENTITY_PDPT: u64 = 0x1000;
/// Offset of PD0 (PD1-PD3 follow).
const IDENTITY_PD0: u64 = 0x2000;
/// Offset of the physical map's PDPT.
const PHYS_PDPT: u64 = 0x6000;
/// Offset of the physical map's first PD.
const PHYS_PD0: u64 = 0x7000;
/// Offset of the heap PDPT.
const HEAP_PDPT: u64 = 0x8000;
/// Offset of the heap PD.
const HEAP_PD: u64 = 0x9000;
/// Offset of the physical map's second PD (RAM above 1 GiB).
const PHYS_PD_EXTRA: u64 = 0xA000;
/// Number of 2 MiB pages in the heap map.
const HEAP_PAGES: u64 = HEAP_BACKING_SIZE / LARGE_PAGE_SIZE;

/// The pre-mapped heap option: PML4\[384\] maps 64 MiB at
/// `0xFFFF_C000_0000_0000` onto `backing_phys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapMapping {
    /// Guest-physical base of the 64 MiB backing (2 MiB aligned).
    pub backing_phys: u64,
}

/// Where the boot page tables go and what they map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageTableLayout {
    /// Guest-physical base of the tables (4 KiB aligned); the PML4 is here.
    pub base: u64,
    /// Guest RAM size; the physical map covers it rounded up to 2 MiB.
    pub ram_size: u64,
    /// The optional pre-mapped heap (off by default).
    pub heap: Option<HeapMapping>,
}

impl PageTableLayout {
    /// The default layout at `base` for `ram_size` bytes of RAM, without a heap map.
    pub fn new(base: u64, ram_size: u64) -> Self {
        Self {
            base,
            ram_size,
            heap: None,
        }
    }

    /// Guest-physical address of the PML4 (the value for CR3).
    pub fn pml4(&self) -> u64 {
        self.base
    }

    /// Number of 1 GiB page directories the physical map needs (at least 1).
    pub fn phys_map_pds(&self) -> u64 {
        self.ram_size.div_ceil(HUGE_PAGE_SIZE).max(1)
    }

    /// Bytes the tables occupy from `base`: 0xA000 for RAM up to 1 GiB,
    /// plus one page for each further GiB of RAM.
    pub fn size(&self) -> u64 {
        PHYS_PD_EXTRA.saturating_add((self.phys_map_pds() - 1).saturating_mul(PAGE_SIZE))
    }

    /// Offset from `base` of the physical map's PD for GiB `gib`.
    fn phys_pd_offset(gib: u64) -> u64 {
        if gib == 0 {
            PHYS_PD0
        } else {
            PHYS_PD_EXTRA + (gib - 1) * PAGE_SIZE
        }
    }

    /// Builds the table bytes (`size()` bytes, to be placed at `base`).
    pub fn build(&self) -> Result<Vec<u8>, MemoryError> {
        self.check()?;
        let size = usize::try_from(self.size()).map_err(|_| self.out_of_ram())?;
        let mut bytes = vec![0u8; size];
        let base = self.base;
        let mut put = |offset: u64, index: u64, value: u64| {
            // Offsets and indices below are bounded by `size()` by construction.
            let at = (offset + index * 8) as usize;
            if let Some(slot) = bytes.get_mut(at..at + 8) {
                slot.copy_from_slice(&value.to_le_bytes());
            }
        };

        // PML4.
        put(0, 0, (base + IDENTITY_PDPT) | P | RW);
        put(0, PHYS_MAP_PML4_INDEX as u64, (base + PHYS_PDPT) | P | RW);
        put(0, RECURSIVE_PML4_INDEX as u64, base | P | RW | NX);

        // Identity map of 0-4 GiB: PDPT[0..4] -> PD0..PD3 of 2 MiB pages.
        for pd in 0..4 {
            put(
                IDENTITY_PDPT,
                pd,
                (base + IDENTITY_PD0 + pd * PAGE_SIZE) | P | RW,
            );
        }
        for page in 0..FOUR_GIB / LARGE_PAGE_SIZE {
            let phys = page * LARGE_PAGE_SIZE;
            put(IDENTITY_PD0, page, phys | identity_leaf_flags(phys));
        }

        // Physical map: all of RAM rounded up to 2 MiB.
        let pages = self.ram_size.div_ceil(LARGE_PAGE_SIZE);
        for gib in 0..self.phys_map_pds() {
            put(PHYS_PDPT, gib, (base + Self::phys_pd_offset(gib)) | P | RW);
        }
        for page in 0..pages {
            let pd = Self::phys_pd_offset(page / 512);
            put(pd, page % 512, (page * LARGE_PAGE_SIZE) | P | RW | PS);
        }

        // Optional heap map.
        if let Some(heap) = self.heap {
            put(0, HEAP_PML4_INDEX as u64, (base + HEAP_PDPT) | P | RW);
            put(HEAP_PDPT, 0, (base + HEAP_PD) | P | RW);
            for page in 0..HEAP_PAGES {
                put(
                    HEAP_PD,
                    page,
                    (heap.backing_phys + page * LARGE_PAGE_SIZE) | P | RW | PS,
                );
            }
        }
        Ok(bytes)
    }

    fn out_of_ram(&self) -> MemoryError {
        MemoryError::OutOfRam {
            what: "page tables",
            addr: self.base,
            len: self.size(),
            ram_size: self.ram_size,
        }
    }

    fn check(&self) -> Result<(), MemoryError> {
        if self.base % PAGE_SIZE != 0 {
            return Err(MemoryError::Misaligned {
                what: "page tables",
                addr: self.base,
                align: PAGE_SIZE,
            });
        }
        // RAM must stay below the framebuffer so that at most 3 PDs are needed
        // and all tables are reachable through the identity map.
        let end = self.base.checked_add(self.size());
        if self.ram_size > FRAMEBUFFER_BASE || end.is_none_or(|end| end > self.ram_size) {
            return Err(self.out_of_ram());
        }
        if let Some(heap) = self.heap {
            if heap.backing_phys % LARGE_PAGE_SIZE != 0 {
                return Err(MemoryError::Misaligned {
                    what: "heap backing",
                    addr: heap.backing_phys,
                    align: LARGE_PAGE_SIZE,
                });
            }
            let end = heap.backing_phys.checked_add(HEAP_BACKING_SIZE);
            if end.is_none_or(|end| end > self.ram_size) {
                return Err(MemoryError::OutOfRam {
                    what: "heap backing",
                    addr: heap.backing_phys,
                    len: HEAP_BACKING_SIZE,
                    ram_size: self.ram_size,
                });
            }
        }
        Ok(())
    }
}

/// Flags of the identity-map leaf for the 2 MiB page at `phys`.
fn identity_leaf_flags(phys: u64) -> u64 {
    let leaf = P | RW | PS;
    if phys >= MMIO_HOLE_BASE || (PCI_MMIO_BASE..PCI_MMIO_BASE + PCI_MMIO_SIZE).contains(&phys) {
        leaf | PCD | PWT | NX
    } else if (FRAMEBUFFER_BASE..FRAMEBUFFER_BASE + FRAMEBUFFER_WINDOW).contains(&phys) {
        leaf | PWT | NX
    } else {
        leaf
    }
}

/// Writes the page tables described by `layout` into guest memory
/// (all `layout.size()` bytes, unused entries zero).
pub fn write_page_tables(
    mem: &GuestMemoryMmap,
    layout: &PageTableLayout,
) -> Result<(), MemoryError> {
    let bytes = layout.build()?;
    crate::guest_ram::write_guest(mem, "page tables", &bytes, layout.base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_ram::create_guest_memory;
    use crate::layout::{DEFAULT_HEAP_BACKING, MIB};
    use vm_memory::{Bytes, GuestAddress};

    fn entry(mem: &GuestMemoryMmap, addr: u64) -> u64 {
        mem.read_obj::<u64>(GuestAddress(addr)).unwrap()
    }

    #[test]
    fn default_layout_matches_spec_addresses_bit_exactly() {
        let mem = create_guest_memory(512 * MIB).unwrap();
        let layout = PageTableLayout::new(0x1000, 512 * MIB);
        assert_eq!(layout.size(), 0xA000);
        assert_eq!(layout.pml4(), 0x1000);
        write_page_tables(&mem, &layout).unwrap();

        // PML4 at 0x1000.
        assert_eq!(entry(&mem, 0x1000), 0x2000 | 0x3);
        assert_eq!(entry(&mem, 0x1000 + 256 * 8), 0x7000 | 0x3);
        assert_eq!(
            entry(&mem, 0x1000 + 384 * 8),
            0,
            "heap not mapped by default"
        );
        assert_eq!(entry(&mem, 0x1000 + 510 * 8), 0x8000_0000_0000_1003);
        assert_eq!(entry(&mem, 0x1000 + 511 * 8), 0);
        // PDPT at 0x2000 -> PD0..PD3 at 0x3000..0x6000.
        assert_eq!(entry(&mem, 0x2000), 0x3003);
        assert_eq!(entry(&mem, 0x2000 + 3 * 8), 0x6003);
        assert_eq!(entry(&mem, 0x2000 + 4 * 8), 0);
        // PD0.
        assert_eq!(entry(&mem, 0x3000), 0x83);
        assert_eq!(entry(&mem, 0x3008), 0x20_0000 | 0x83);
        // PD3 covers 3-4 GiB: framebuffer at 0xC000_0000 is PD3[0].
        assert_eq!(entry(&mem, 0x6000), 0x8000_0000_C000_008B);
        assert_eq!(entry(&mem, 0x6000 + 7 * 8), 0x8000_0000_C0E0_008B);
        assert_eq!(entry(&mem, 0x6000 + 8 * 8), 0xC100_0083, "past the window");
        // 0xFEE0_0000 (LAPIC): index (0xFEE0_0000 - 0xC000_0000) / 2 MiB = 503.
        assert_eq!(entry(&mem, 0x6000 + 503 * 8), 0x8000_0000_FEE0_009B);
        assert_eq!(entry(&mem, 0x6000 + 496 * 8), 0x8000_0000_FE00_009B);
        assert_eq!(entry(&mem, 0x6000 + 495 * 8), 0xFDE0_0083);
        // Physical map: PDPT at 0x7000 -> PD at 0x8000 with 256 entries.
        assert_eq!(entry(&mem, 0x7000), 0x8003);
        assert_eq!(entry(&mem, 0x7008), 0);
        assert_eq!(entry(&mem, 0x8000), 0x83);
        assert_eq!(entry(&mem, 0x8000 + 255 * 8), 0x1FE0_0083);
        assert_eq!(entry(&mem, 0x8000 + 256 * 8), 0);
        // Heap tables reserved but empty.
        assert_eq!(entry(&mem, 0x9000), 0);
        assert_eq!(entry(&mem, 0xA000), 0);
    }

    #[test]
    fn heap_option_maps_32_large_pages() {
        let mem = create_guest_memory(512 * MIB).unwrap();
        let layout = PageTableLayout {
            heap: Some(HeapMapping {
                backing_phys: DEFAULT_HEAP_BACKING,
            }),
            ..PageTableLayout::new(0x1000, 512 * MIB)
        };
        write_page_tables(&mem, &layout).unwrap();
        assert_eq!(entry(&mem, 0x1000 + 384 * 8), 0x9003);
        assert_eq!(entry(&mem, 0x9000), 0xA003);
        assert_eq!(entry(&mem, 0xA000), 0x0200_0083);
        assert_eq!(entry(&mem, 0xA000 + 31 * 8), 0x05E0_0083);
        assert_eq!(entry(&mem, 0xA000 + 32 * 8), 0);
    }

    #[test]
    fn large_ram_puts_extra_pds_after_heap_tables() {
        let ram = 2050 * MIB; // just over 2 GiB: 3 PDs
        let layout = PageTableLayout::new(0x1000, ram);
        assert_eq!(layout.size(), 0xC000);
        let bytes = layout.build().unwrap();
        let at = |off: usize| u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap());
        assert_eq!(at(0x6000), 0x8003);
        assert_eq!(at(0x6008), 0xB003);
        assert_eq!(at(0x6010), 0xC003);
        assert_eq!(at(0x6018), 0);
        assert_eq!(at(0x7000 + 511 * 8), 0x3FE0_0083);
        assert_eq!(at(0xA000), 0x4000_0083);
        assert_eq!(at(0xB000), 0x8000_0083);
        assert_eq!(at(0xB008), 0);
    }

    #[test]
    fn bad_layouts_are_errors() {
        let misaligned = PageTableLayout::new(0x1800, 512 * MIB);
        assert!(matches!(
            misaligned.build(),
            Err(MemoryError::Misaligned { .. })
        ));
        let past_ram = PageTableLayout::new(512 * MIB - 0x1000, 512 * MIB);
        assert!(matches!(
            past_ram.build(),
            Err(MemoryError::OutOfRam { .. })
        ));
        let overflow = PageTableLayout::new(0xFFFF_FFFF_FFFF_F000, 512 * MIB);
        assert!(matches!(
            overflow.build(),
            Err(MemoryError::OutOfRam { .. })
        ));
        let heap_out = PageTableLayout {
            heap: Some(HeapMapping {
                backing_phys: 500 * MIB,
            }),
            ..PageTableLayout::new(0x1000, 512 * MIB)
        };
        assert!(matches!(
            heap_out.build(),
            Err(MemoryError::OutOfRam { .. })
        ));
        let heap_misaligned = PageTableLayout {
            heap: Some(HeapMapping {
                backing_phys: 0x0200_1000,
            }),
            ..PageTableLayout::new(0x1000, 512 * MIB)
        };
        assert!(matches!(
            heap_misaligned.build(),
            Err(MemoryError::Misaligned { .. })
        ));
    }
}
