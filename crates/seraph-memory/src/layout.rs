//! The guest-physical and guest-virtual layout of the Seraph boot contract.
//!
//! Values come from the boot protocol's "Guest physical memory" table.
//! Defaults are where structures go unless the kernel image occupies them.

/// A 4 KiB page.
pub const PAGE_SIZE: u64 = 0x1000;
/// A 2 MiB large page.
pub const LARGE_PAGE_SIZE: u64 = 0x20_0000;
/// A 1 GiB huge page.
pub const HUGE_PAGE_SIZE: u64 = 0x4000_0000;
/// One MiB: relocated structures are placed above this.
pub const MIB: u64 = 0x10_0000;
/// Four GiB: the end of the identity map.
pub const FOUR_GIB: u64 = 0x1_0000_0000;

/// Guest-physical base of the framebuffer window (RAM-backed, identity mapped).
pub const FRAMEBUFFER_BASE: u64 = 0xC000_0000;
/// Size of the framebuffer window: 16 MiB.
pub const FRAMEBUFFER_WINDOW: u64 = 16 * MIB;
/// The PCI memory window where the VMM places 32-bit BARs (uncached,
/// no-execute in the identity map): 0xD000_0000-0xDFFF_FFFF.
pub const PCI_MMIO_BASE: u64 = 0xD000_0000;
/// Size of the PCI memory window (256 MiB).
pub const PCI_MMIO_SIZE: u64 = 256 * MIB;
/// Start of the MMIO hole (uncached, no-execute in the identity map): 0xFE00_0000 up to 4 GiB.
pub const MMIO_HOLE_BASE: u64 = 0xFE00_0000;
/// Local APIC register page.
pub const LAPIC_BASE: u64 = 0xFEE0_0000;
/// Size of the local APIC page.
pub const LAPIC_SIZE: u64 = PAGE_SIZE;
/// I/O APIC base (if one is offered).
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;
/// Size of the I/O APIC page.
pub const IOAPIC_SIZE: u64 = PAGE_SIZE;

/// Virtual base of the direct physical map (`PML4[256]`).
pub const PHYS_MAP_BASE: u64 = 0xFFFF_8000_0000_0000;
/// Virtual base of the optional pre-mapped kernel heap (`PML4[384]`).
pub const HEAP_VIRT_BASE: u64 = 0xFFFF_C000_0000_0000;
/// PML4 slot of the physical map.
pub const PHYS_MAP_PML4_INDEX: usize = 256;
/// PML4 slot of the optional heap map.
pub const HEAP_PML4_INDEX: usize = 384;
/// PML4 slot that points back at the PML4 (recursive mapping).
pub const RECURSIVE_PML4_INDEX: usize = 510;

/// Low page kept reserved (real-mode IVT area, null-pointer page).
pub const LOW_RESERVED_SIZE: u64 = PAGE_SIZE;
/// Default PML4 address (= default page-table base).
pub const DEFAULT_PML4: u64 = 0x1000;
/// Default GDT+TSS page (after the largest page-table layout, which ends at 0xD000).
pub const DEFAULT_GDT: u64 = 0xD000;
/// Default IST1 (double-fault) stack base.
pub const DEFAULT_IST_STACK: u64 = 0xE000;
/// Size of the IST1 stack.
pub const IST_STACK_SIZE: u64 = 0x2000;
/// Default boot-info address.
pub const DEFAULT_BOOT_INFO: u64 = 0x8_0000;
/// Default memory-map address: right after the 280-byte boot info.
pub const DEFAULT_MEMORY_MAP: u64 = 0x8_0118;
/// Default initial stack base.
pub const DEFAULT_STACK: u64 = 0x9_0000;
/// Size of the initial stack.
pub const STACK_SIZE: u64 = 0x1_0000;
/// Where identity-linked kernels are normally loaded.
pub const KERNEL_LOAD: u64 = 0x10_0000;
/// Default primordial arena base.
pub const DEFAULT_ARENA: u64 = 0x0100_0000;
/// Size of the primordial arena: 16 MiB.
pub const ARENA_SIZE: u64 = 16 * MIB;
/// Default heap backing base (only with the pre-mapped heap option).
pub const DEFAULT_HEAP_BACKING: u64 = 0x0200_0000;
/// Size of the heap backing: 64 MiB (32 x 2 MiB pages).
pub const HEAP_BACKING_SIZE: u64 = 64 * MIB;

/// Largest RAM size: RAM must end at or below the framebuffer window.
pub const MAX_RAM: u64 = FRAMEBUFFER_BASE;
/// Smallest RAM size: fits the default layout up to the end of the arena
/// (32 MiB) plus 32 MiB of room. The pre-mapped heap option needs 96 MiB.
pub const MIN_RAM: u64 = 64 * MIB;
/// Default RAM size: 512 MiB.
pub const DEFAULT_RAM: u64 = 512 * MIB;

/// Rounds `value` up to a multiple of `align` (a power of two); `None` on overflow.
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Rounds `value` down to a multiple of `align` (a power of two).
pub const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// True when `[a_start, a_end)` and `[b_start, b_end)` share at least one byte.
pub const fn ranges_overlap(a_start: u64, a_end: u64, b_start: u64, b_end: u64) -> bool {
    a_start < b_end && b_start < a_end
}

#[cfg(test)]
mod tests {
    use super::*;

    const _: () = assert!(DEFAULT_ARENA + ARENA_SIZE <= MIN_RAM);

    #[test]
    fn defaults_fit_in_min_ram_and_ram_ends_below_framebuffer() {
        assert_eq!(MAX_RAM, 0xC000_0000);
        assert_eq!(DEFAULT_MEMORY_MAP, DEFAULT_BOOT_INFO + 280);
        assert_eq!(DEFAULT_HEAP_BACKING + HEAP_BACKING_SIZE, 0x0600_0000);
        assert_eq!(PHYS_MAP_BASE >> 39 & 0x1FF, PHYS_MAP_PML4_INDEX as u64);
        assert_eq!(HEAP_VIRT_BASE >> 39 & 0x1FF, HEAP_PML4_INDEX as u64);
    }

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_up(0x1001, PAGE_SIZE), Some(0x2000));
        assert_eq!(align_up(0x1000, PAGE_SIZE), Some(0x1000));
        assert_eq!(align_up(u64::MAX, PAGE_SIZE), None);
        assert_eq!(align_down(0x1FFF, PAGE_SIZE), 0x1000);
        assert!(ranges_overlap(0, 0x10, 0xF, 0x20));
        assert!(!ranges_overlap(0, 0x10, 0x10, 0x20));
    }
}
