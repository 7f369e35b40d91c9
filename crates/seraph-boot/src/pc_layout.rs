//! Guest memory for the PVH and Linux boot protocols: where the loader
//! puts its structures (all below 640 KiB, like a PC's firmware), the GDT
//! it enters with, the E820-style memory map and where the initrd goes.
//!
//! | range | what |
//! |---|---|
//! | 0x0_1000-0x0_CFFF | page tables (Linux 64-bit entry only): the Seraph layout, identity map of 4 GiB |
//! | 0x0_D000 | GDT (null, null, code 0x10, data 0x18, TSS 0x20), TSS at +0x80 |
//! | 0x0_E000 | `hvm_start_info` + memory map (PVH) / zero page `boot_params` (Linux) |
//! | 0x0_F000 | PVH module list |
//! | 0x2_0000-0x2_FFFF | command line (NUL-terminated) |
//! | 0x9_0000-0x9_FFFF | stack (Linux 64-bit RSP = 0xA_0000) |
//! | 1 MiB up | the kernel |
//! | top of RAM, down | the initrd / PVH module, page-aligned |
//!
//! The memory map: RAM 0-0x9_FFFF, reserved 0xA_0000-0xF_FFFF, RAM 1 MiB to
//! the end of RAM, reserved for the 16 MiB framebuffer window at
//! 0xC000_0000 and the local APIC page at 0xFEE0_0000.

use seraph_memory::MemoryError;
use seraph_memory::gdt::{GdtLayout, tss_descriptor};
use seraph_memory::layout::{
    FRAMEBUFFER_BASE, FRAMEBUFFER_WINDOW, LAPIC_BASE, LAPIC_SIZE, MIB, PAGE_SIZE, align_down,
    align_up,
};
use seraph_memory::write_guest;
use vm_memory::GuestMemoryMmap;

use crate::protocol_error::LoadError;

/// Page-table base for the Linux 64-bit entry.
pub const PAGE_TABLES: u64 = 0x1000;
/// The boot GDT (and TSS at +[`TSS_OFFSET`]).
pub const BOOT_GDT: u64 = 0xD000;
/// TSS offset in the GDT page.
pub const TSS_OFFSET: u64 = 0x80;
/// `hvm_start_info` (PVH) or the zero page (Linux).
pub const BOOT_PARAMS: u64 = 0xE000;
/// PVH memory map, right after the 56-byte `hvm_start_info`.
pub const PVH_MEMMAP: u64 = BOOT_PARAMS + 0x40;
/// How many PVH memory-map entries fit in the page.
pub const PVH_MEMMAP_CAPACITY: usize = ((PAGE_SIZE - 0x40) / 24) as usize;
/// PVH module list.
pub const PVH_MODLIST: u64 = 0xF000;
/// The command line.
pub const CMDLINE: u64 = 0x2_0000;
/// Room for the command line, NUL included.
pub const CMDLINE_MAX: usize = 0x1_0000;
/// Bottom of the boot stack.
pub const STACK_BASE: u64 = 0x9_0000;
/// Top of the boot stack (initial RSP of the Linux 64-bit entry).
pub const STACK_TOP: u64 = 0xA_0000;
/// End of low RAM (the legacy VGA/BIOS hole follows).
pub const LOW_RAM_END: u64 = 0xA_0000;
/// Where kernels may start: the loader's own structures are all below.
pub const KERNEL_MIN: u64 = MIB;

/// 64-bit ring-0 code (L = 1).
pub const CODE64: u64 = 0x00AF_9B00_0000_FFFF;
/// 32-bit ring-0 code (D = 1).
pub const CODE32: u64 = 0x00CF_9B00_0000_FFFF;
/// Flat ring-0 data.
pub const DATA: u64 = 0x00CF_9300_0000_FFFF;
/// CS: the Linux boot protocol's `__BOOT_CS`.
pub const BOOT_CS: u16 = 0x10;
/// DS/ES/SS: `__BOOT_DS`.
pub const BOOT_DS: u16 = 0x18;
/// TR.
pub const BOOT_TR: u16 = 0x20;
/// GDT bytes: five 8-byte slots, the TSS descriptor taking two.
pub const BOOT_GDT_SIZE: u64 = 0x30;

/// E820 / PVH memory type: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 / PVH memory type: reserved.
pub const E820_RESERVED: u32 = 2;

/// One memory-map range, E820 style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Range {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// `E820_RAM` or `E820_RESERVED`.
    pub kind: u32,
}

/// The memory map a PVH or Linux kernel gets for `ram_size` bytes of RAM.
pub fn e820_map(ram_size: u64) -> Vec<E820Range> {
    let range = |addr, end: u64, kind| E820Range {
        addr,
        size: end - addr,
        kind,
    };
    vec![
        range(0, LOW_RAM_END, E820_RAM),
        range(LOW_RAM_END, MIB, E820_RESERVED),
        range(MIB, ram_size.max(MIB), E820_RAM),
        range(
            FRAMEBUFFER_BASE,
            FRAMEBUFFER_BASE + FRAMEBUFFER_WINDOW,
            E820_RESERVED,
        ),
        range(LAPIC_BASE, LAPIC_BASE + LAPIC_SIZE, E820_RESERVED),
    ]
}

/// Writes the boot GDT and an empty TSS at [`BOOT_GDT`]: code at 0x10
/// (64-bit if `long_mode`, else 32-bit), data at 0x18, TSS at 0x20.
pub fn write_boot_gdt(mem: &GuestMemoryMmap, long_mode: bool) -> Result<GdtLayout, MemoryError> {
    let tss_base = BOOT_GDT + TSS_OFFSET;
    let tss_limit = 103u32;
    let mut gdt = [0u8; BOOT_GDT_SIZE as usize];
    let code = if long_mode { CODE64 } else { CODE32 };
    gdt[0x10..0x18].copy_from_slice(&code.to_le_bytes());
    gdt[0x18..0x20].copy_from_slice(&DATA.to_le_bytes());
    gdt[0x20..0x30].copy_from_slice(&tss_descriptor(tss_base, tss_limit));
    write_guest(mem, "boot GDT", &gdt, BOOT_GDT)?;
    // TSS: all zero but the I/O map base (104: no bitmap); fresh memory is zero.
    write_guest(mem, "boot TSS", &104u16.to_le_bytes(), tss_base + 102)?;
    Ok(GdtLayout {
        gdt_base: BOOT_GDT,
        gdt_limit: (BOOT_GDT_SIZE - 1) as u16,
        code_selector: BOOT_CS,
        data_selector: BOOT_DS,
        tss_selector: BOOT_TR,
        tss_base,
        tss_limit,
    })
}

/// Writes `cmdline` NUL-terminated at [`CMDLINE`]; at most `max` bytes
/// with the NUL, no NUL inside.
pub fn write_cmdline(mem: &GuestMemoryMmap, cmdline: &str, max: usize) -> Result<(), LoadError> {
    let max = max.min(CMDLINE_MAX);
    if cmdline.len() >= max || cmdline.as_bytes().contains(&0) {
        return Err(LoadError::Cmdline {
            len: cmdline.len(),
            max: max.saturating_sub(1),
        });
    }
    let mut bytes = Vec::with_capacity(cmdline.len() + 1);
    bytes.extend_from_slice(cmdline.as_bytes());
    bytes.push(0);
    write_guest(mem, "command line", &bytes, CMDLINE)?;
    Ok(())
}

/// Where an initrd of `size` bytes goes: page-aligned, as high as possible
/// with its end at or below `limit`, above `kernel_end`.
pub fn place_initrd(size: u64, kernel_end: u64, limit: u64) -> Result<u64, LoadError> {
    let fail = || LoadError::InitrdDoesNotFit {
        size,
        kernel_end,
        limit,
    };
    let base = limit
        .checked_sub(size)
        .map(|b| align_down(b, PAGE_SIZE))
        .ok_or_else(fail)?;
    let floor = align_up(kernel_end, PAGE_SIZE).ok_or_else(fail)?;
    if base < floor {
        return Err(fail());
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_memory::create_guest_memory;
    use vm_memory::{Bytes, GuestAddress};

    #[test]
    fn gdt_has_linux_boot_selectors_and_a_tss() {
        let mem = create_guest_memory(64 * MIB).unwrap();
        let layout = write_boot_gdt(&mem, true).unwrap();
        assert_eq!((layout.code_selector, layout.data_selector), (0x10, 0x18));
        assert_eq!((layout.tss_selector, layout.tss_base), (0x20, 0xD080));
        assert_eq!(layout.gdt_limit, 0x2F);
        let mut gdt = [0u8; 0x30];
        mem.read_slice(&mut gdt, GuestAddress(0xD000)).unwrap();
        assert_eq!(gdt[..0x10], [0; 16]);
        assert_eq!(gdt[0x10..0x18], 0x00AF_9B00_0000_FFFFu64.to_le_bytes());
        assert_eq!(gdt[0x18..0x20], 0x00CF_9300_0000_FFFFu64.to_le_bytes());
        // TSS descriptor: limit 103, base 0xD080, type 9, present.
        assert_eq!(gdt[0x20..0x28], [103, 0, 0x80, 0xD0, 0, 0x89, 0, 0]);
        assert_eq!(
            mem.read_obj::<u16>(GuestAddress(0xD080 + 102)).unwrap(),
            104
        );
        write_boot_gdt(&mem, false).unwrap();
        assert_eq!(
            mem.read_obj::<u64>(GuestAddress(0xD010)).unwrap(),
            0x00CF_9B00_0000_FFFF
        );
    }

    #[test]
    fn e820_map_is_sorted_and_reserves_the_holes() {
        let map = e820_map(512 * MIB);
        assert_eq!(
            map.iter()
                .map(|r| (r.addr, r.size, r.kind))
                .collect::<Vec<_>>(),
            vec![
                (0, 0xA_0000, 1),
                (0xA_0000, 0x6_0000, 2),
                (0x10_0000, 512 * MIB - 0x10_0000, 1),
                (0xC000_0000, 0x100_0000, 2),
                (0xFEE0_0000, 0x1000, 2),
            ]
        );
    }

    #[test]
    fn cmdline_limits_and_initrd_placement() {
        let mem = create_guest_memory(64 * MIB).unwrap();
        write_cmdline(&mem, "console=ttyS0", 2048).unwrap();
        let mut buf = [0xFFu8; 14];
        mem.read_slice(&mut buf, GuestAddress(CMDLINE)).unwrap();
        assert_eq!(&buf, b"console=ttyS0\0");
        assert!(matches!(
            write_cmdline(&mem, &"x".repeat(2048), 2048),
            Err(LoadError::Cmdline {
                len: 2048,
                max: 2047
            })
        ));
        assert!(write_cmdline(&mem, "a\0b", 2048).is_err());
        assert_eq!(
            place_initrd(0x1800, 0x20_0000, 64 * MIB).ok(),
            Some(64 * MIB - 0x2000)
        );
        assert!(place_initrd(64 * MIB, 0x20_0000, 64 * MIB).is_err());
        assert!(place_initrd(0x1000, 64 * MIB - 0x800, 64 * MIB).is_err());
    }
}
