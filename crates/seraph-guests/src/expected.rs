//! What each guest is expected to do on a correct VMM: the exact serial and
//! PRINT text, exit statuses, addresses and picture that integration tests
//! check. The unit tests of this crate check these values against the built
//! ELF files (strings present, symbols at these addresses).

/// Serial line of the test kernels, written first (after the demo banner).
pub const TEST_KERNEL_SERIAL_HELLO: &str = "Seraph test kernel: hello from serial\n";

/// PRINT hypercall payload of the test kernels (one call, these exact bytes).
pub const TEST_KERNEL_PRINT_HELLO: &str = "Seraph test kernel: hello from PRINT\n";

/// Last serial line of the test kernels when every check passed (then EXIT 0).
pub const TEST_KERNEL_ALL_PASSED: &str = "Seraph test kernel: all checks passed\n";

/// Last serial line when `failures` checks failed (then EXIT 1). Note the
/// plural even for one: `"Seraph test kernel: 1 checks failed\n"`.
pub fn test_kernel_failed_line(failures: u32) -> String {
    format!("Seraph test kernel: {failures} checks failed\n")
}

/// Prefix of the serial line written for each failed check, followed by the
/// check's name (one of [`TEST_KERNEL_CHECKS`]) and `\n`. The next line is
/// `  seen: 0x<16 lowercase hex digits>\n`, the value the kernel saw.
pub const CHECK_FAILED_PREFIX: &str = "CHECK FAILED: ";

/// Extra first serial line of [`crate::DEMO_KERNEL`].
pub const DEMO_BANNER: &str = "Seraph-V demo kernel: the higher-half Seraph test kernel\n";

/// Exit status of the test kernels when every check passed.
pub const TEST_KERNEL_EXIT_PASSED: u32 = 0;

/// Exit status of the test kernels when at least one check failed.
pub const TEST_KERNEL_EXIT_FAILED: u32 = 1;

/// Every named check of the test kernels, in the order they run. Checks
/// after "memory map readable" that walk the map are skipped (not counted)
/// when the map is unreadable; all boot info checks are skipped when the
/// boot info address is not below 4 GiB.
pub const TEST_KERNEL_CHECKS: &[&str] = &[
    // PRINT of TEST_KERNEL_PRINT_HELLO returned its length.
    "PRINT returns length",
    // RDI + 280 lies below 4 GiB (reachable through the identity map).
    "boot info address",
    "boot info magic",
    "boot info version",
    // FRAMEBUFFER (0x1) and SERIAL (0x10) both set.
    "boot info flags",
    // 0xC000_0000.
    "framebuffer base",
    // 0 = BGRA8.
    "framebuffer format",
    // stride >= width * 4.
    "framebuffer stride",
    // size == width * height * 4.
    "framebuffer size",
    // 40.
    "memory map descriptor size",
    // 1.
    "memory map descriptor version",
    // memory_map_size == count * desc_size.
    "memory map size",
    // desc_size 40, 1 <= count <= 1024, map below 4 GiB.
    "memory map readable",
    // phys_start strictly increasing.
    "memory map sorted",
    // each entry starts at or after the previous entry's end.
    "memory map non-overlapping",
    // phys_start multiple of 4096.
    "memory map page-aligned",
    // entries up to the last non-MMIO (type != 11, 12) one tile [0, end).
    "memory map has no gap",
    // the entry covering 0xFEE0_0000 has type 11 (MMIO).
    "memory map covers local APIC",
    // the entry covering the boot info address (RDI) has type 0x8000_0002.
    "memory map boot info entry",
    // the entries covering kernel_main and the last byte of .bss (both
    // converted to physical) have type 0x8000_0000.
    "memory map kernel entry",
    // == physical address of the kernel's first byte (0x100000 identity,
    // 0 higher-half).
    "kernel_phys_base",
    // == virtual address of the kernel's first byte (0x100000 identity,
    // 0xFFFF_8000_0000_0000 higher-half).
    "kernel_virt_base",
    // pml4_phys == CR3 & 0x000F_FFFF_FFFF_F000.
    "pml4_phys == CR3",
    // stack_phys <= entry RSP <= stack_phys + stack_size (an RSP in the
    // physical map at 0xFFFF_8000_0000_0000 is translated first).
    "entry RSP in stack",
    // entry RSP % 16 == 0.
    "entry RSP aligned",
    // the 4 KiB .bss array reads as zero.
    "bss zeroed",
    // the .data word holds 0x5345_5241_5048_5644.
    "data loaded",
    // CPUID 0x4000_0000: EBX "Sera", ECX "ph-V", EDX 0.
    "cpuid signature",
    // CPUID 0x4000_0000: EAX >= 0x4000_0001.
    "cpuid max leaf",
    // CPUID 0x4000_0001: EAX 0xE4 (doorbell port), EBX 1 (ABI version).
    "cpuid doorbell leaf",
    // two GET_TIME results both >= 2020-01-01T00:00:00Z in ns and < 2^63.
    "GET_TIME after 2020",
    // second GET_TIME >= first.
    "GET_TIME non-decreasing",
    // PRINT(0x0000_7FFF_FFFF_0000, 16) == -14.
    "PRINT bad pointer returns -14",
    // PRINT(valid pointer, 0x10_0000) == -22.
    "PRINT length over 65536 returns -22",
    // hypercall 0x99 == -38.
    "unknown hypercall returns -38",
];

/// PRINT payload of [`crate::EXIT_STATUS`].
pub const EXIT_STATUS_PRINT: &str = "exit-status guest\n";

/// Exit status of [`crate::EXIT_STATUS`].
pub const EXIT_STATUS_CODE: u32 = 42;

/// The unmapped address [`crate::TRIPLE_FAULT`] reads (PML4 slot 0x24).
pub const TRIPLE_FAULT_ADDRESS: u64 = 0x0000_1234_0000_0000;

/// Guest RIP of the instruction that [`crate::EMULATION_FAILURE`] cannot
/// get emulated.
pub const EMULATION_FAILURE_RIP: u64 = 0x10_0005;

/// Bytes of that instruction: `pxor (%rax), %xmm0` (66 0F EF 00).
pub const EMULATION_FAILURE_INSN: [u8; 4] = [0x66, 0x0F, 0xEF, 0x00];

/// The MMIO address (RAX) of that instruction's operand: local APIC version.
pub const EMULATION_FAILURE_MMIO_ADDRESS: u64 = 0xFEE0_0030;

/// Status [`crate::EMULATION_FAILURE`] EXITs with if the instruction
/// completes after all (it should not).
pub const EMULATION_FAILURE_FALLBACK_EXIT: u32 = 3;

/// PRINT payload of [`crate::HLT_NO_IRQ`].
pub const HLT_NO_IRQ_PRINT: &str = "hlt guest\n";

/// Address of the `hlt` of [`crate::HLT_NO_IRQ`] (KVM reports the RIP after
/// it, one byte on, on a HLT exit).
pub const HLT_NO_IRQ_HLT_RIP: u64 = 0x10_0014;

/// PRINT payload of [`crate::IDLE_LOOP`].
pub const IDLE_LOOP_PRINT: &str = "idle guest\n";

/// Address of the `hlt` in the idle loop of [`crate::IDLE_LOOP`].
pub const IDLE_LOOP_HLT_RIP: u64 = 0x10_0014;

/// PRINT payload of [`crate::SPIN`].
pub const SPIN_PRINT: &str = "spin guest\n";

/// Address of the `jmp .` of [`crate::SPIN`].
pub const SPIN_RIP: u64 = 0x10_0013;

/// Number of `'x'` bytes [`crate::SERIAL_FLOOD`] writes to COM1 before EXIT 0.
pub const SERIAL_FLOOD_BYTES: usize = 100_000;

/// Red, rows 0-31 of the test picture's 256x128 block (0x00RRGGBB, i.e. a
/// little-endian BGRA8 pixel read as a u32).
pub const RED: u32 = 0x00FF_0000;
/// Green, rows 32-63 of the block.
pub const GREEN: u32 = 0x0000_FF00;
/// Blue, rows 64-95 of the block.
pub const BLUE: u32 = 0x0000_00FF;
/// White, rows 96-127 of the block.
pub const WHITE: u32 = 0x00FF_FFFF;
/// Yellow, the centred 64x64 square.
pub const YELLOW: u32 = 0x00FF_FF00;

/// Width of the test picture's banded block (top-left corner).
pub const BLOCK_WIDTH: u32 = 256;
/// Height of one band of the block.
pub const BAND_HEIGHT: u32 = 32;
/// Side of the yellow square.
pub const SQUARE_SIDE: u32 = 64;

/// The pixel the test kernels leave at (`x`, `y`) on a `width` x `height`
/// framebuffer that the VMM handed over zeroed: the banded 256x128 block at
/// the top-left corner, the 64x64 yellow square with its top-left corner at
/// (width/2 - 32, height/2 - 32) drawn over it, zero elsewhere. Pixels
/// outside the framebuffer are `None`.
pub fn test_picture_pixel(x: u32, y: u32, width: u32, height: u32) -> Option<u32> {
    if x >= width || y >= height {
        return None;
    }
    let half = SQUARE_SIDE / 2;
    if let (Some(sx), Some(sy)) = (
        (width / 2).checked_sub(half),
        (height / 2).checked_sub(half),
    ) {
        if (sx..sx.saturating_add(SQUARE_SIDE)).contains(&x)
            && (sy..sy.saturating_add(SQUARE_SIDE)).contains(&y)
        {
            return Some(YELLOW);
        }
    }
    if x >= BLOCK_WIDTH {
        return Some(0);
    }
    Some(match y / BAND_HEIGHT {
        0 => RED,
        1 => GREEN,
        2 => BLUE,
        3 => WHITE,
        _ => 0,
    })
}

/// Last line (serial and PRINT) of [`crate::TIMER_KERNEL`] when every check passed.
pub const TIMER_ALL_PASSED: &str = "timer kernel: all checks passed\n";

/// PRINT lines of [`crate::SERAPH_IDLE_KERNEL`]: start, then entering the idle loop.
pub const SERAPH_IDLE_PRINT: &str = "timer kernel: start\ntimer kernel: idle\n";

/// Vector of the LAPIC timer in the timer kernels.
pub const TIMER_VECTOR: u8 = 0x20;

/// Vector of PIT IRQ0 through the PIC in [`crate::TIMER_KERNEL`].
pub const PIC_IRQ0_VECTOR: u8 = 0x30;

/// Ticks each timer scenario of [`crate::TIMER_KERNEL`] waits for.
pub const TIMER_TICKS: u64 = 10;

/// The COM1 line [`crate::STRING_IO`] writes with one `rep outsb`.
pub const STRING_IO_LINE: &str = "string io: a line through rep outsb\n";

/// [`crate::STRING_IO`]'s EXIT status on a correct VMM: all four LSR reads
/// of its `rep insb` had THRE set.
pub const STRING_IO_EXIT: u64 = 4;
