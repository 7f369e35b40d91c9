//! Guests of the other boot protocols (PVH, Linux bzImage) and of what a
//! kernel's allocator does to boot memory.

/// PVH test guest (`pc_entry.S` + `pvh_check.c`, `pc.ld`), a 64-bit-class
/// ELF: boot it with PVH forced (its ELF entry is the runtime's 64-bit
/// Seraph entry), command line [`PVH_CHECK_CMDLINE`] and module
/// [`test_initrd`]. From the 32-bit PVH entry it builds its own long mode,
/// then checks the `hvm_start_info`: magic, a sorted memory map with RAM
/// from 1 MiB (line `pvh-check: ram top 0x<16 hex digits>`), the
/// framebuffer window and LAPIC page reserved (lines
/// `pvh-check: framebuffer window reserved`,
/// `pvh-check: local APIC page reserved`; `no ...` under QEMU), the command
/// line and the module's size and bytes. Ends with [`PVH_CHECK_OK`] and exit
/// 0; a failed check prints `pvh-check: FAILED ...` and exits 1-12.
pub const PVH_CHECK: &[u8] = guest_elf!("pvh_check.elf");

/// [`PVH_CHECK`] converted to a 32-bit-class ELF (`objcopy -O elf32-i386`):
/// same code, segments and PVH note, EM_386.
pub const PVH_CHECK_32: &[u8] = guest_elf!("pvh_check32.elf");

/// The command line [`PVH_CHECK`] expects.
pub const PVH_CHECK_CMDLINE: &str = "pvh-check cmdline=ok";

/// The last COM1 line of [`PVH_CHECK`] when every check passed.
pub const PVH_CHECK_OK: &str = "pvh-check: ok\n";

/// The tiny bzImage test kernel (`bzimage_head.S` + `linux_check.c`,
/// `bzimage.ld`, flattened by `objcopy -O binary`): a real setup header
/// (protocol 2.15, one setup sector, LOADED_HIGH, code32_start 1 MiB,
/// XLF_KERNEL_64, syssize and init_size from the linker) and no real-mode
/// code. Its 64-bit entry (load address + 0x200) checks CS 0x10, DS/SS
/// 0x18, the zero page (setup header copied, type_of_loader 0xFF), the E820
/// map, the command line [`LINUX_CHECK_CMDLINE`] and the initrd
/// [`test_initrd`], writes [`LINUX_CHECK_OK`] and exits 0 (a failed check:
/// `linux-check: FAILED ...`, exit 2-12). Its 32-bit entry writes
/// `linux-check: 32-bit entry` and exits 32.
pub const LINUX_CHECK_BZIMAGE: &[u8] = guest_elf!("linux_check.bzimage");

/// The command line [`LINUX_CHECK_BZIMAGE`] expects.
pub const LINUX_CHECK_CMDLINE: &str = "linux-check cmdline=ok console=ttyS0";

/// The last COM1 line of [`LINUX_CHECK_BZIMAGE`] when every check passed.
pub const LINUX_CHECK_OK: &str = "linux-check: ok\n";

/// The initrd / PVH module [`PVH_CHECK`] and [`LINUX_CHECK_BZIMAGE`] expect:
/// 0x2345 bytes, `SERAPH-MODULE-01` then byte i = i * 7 + 3 (mod 256).
pub fn test_initrd() -> Vec<u8> {
    let mut data = b"SERAPH-MODULE-01".to_vec();
    data.extend((16u32..0x2345).map(|i| (i.wrapping_mul(7).wrapping_add(3)) as u8));
    data
}

/// Behaves like Seraph OS's physical memory manager at boot (issue #12):
/// frees every page the memory map types 1, 2, 3 or 7, reserves only the
/// first 1 MiB, the boot stack, the primordial arena and (if
/// kernel_phys_base != 0) its image, keeps the boot PML4, and scribbles
/// over every free page (`rep stosq`). Then, with the TLB flushed, checks
/// the boot info and map, paging through the identity and physical maps,
/// its stack, the GDT (reloading CS and the data segments) and the TSS's
/// IST1 stack (a #UD through an IST1 gate). COM1:
/// `allocator: scribbled N pages`, then [`ALLOCATOR_OK`] and EXIT 0; a
/// failed check prints `allocator: FAILED ...` and EXITs 2-11; freed page
/// tables end in a triple fault. Identity-linked.
pub const ALLOCATOR_IDENTITY: &[u8] = guest_elf!("allocator_identity.elf");

/// [`ALLOCATOR_IDENTITY`] linked higher-half (its boot structures move
/// above its image at physical 0).
pub const ALLOCATOR_HIGHER_HALF: &[u8] = guest_elf!("allocator_higher_half.elf");

/// [`ALLOCATOR_IDENTITY`] scribbling only six qwords per free page (0,
/// 0x80, 0xA0, 0x800, 0xFF0, 0xFF8: where page tables, a GDT/TSS and the
/// boot info keep what matters), for RAM sizes above 1 GiB on an emulating
/// nested KVM.
pub const ALLOCATOR_IDENTITY_SPARSE: &[u8] = guest_elf!("allocator_identity_sparse.elf");

/// [`ALLOCATOR_HIGHER_HALF`] with the sparse scribble.
pub const ALLOCATOR_HIGHER_HALF_SPARSE: &[u8] = guest_elf!("allocator_higher_half_sparse.elf");

/// The last COM1 line of the allocator kernels when every check passed.
pub const ALLOCATOR_OK: &str = "allocator: ok\n";
