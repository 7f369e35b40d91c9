/*
 * LINUX_CHECK: the tiny bzImage test kernel's 64-bit part (entered at
 * startup_64 in bzimage_head.S with RSI = boot_params). It checks what the
 * Linux boot protocol promises: the zero page holds the image's setup
 * header with type_of_loader set, the command line LINUX_CHECK_CMDLINE, the
 * initrd (seraph_guests::test_initrd()), an E820 map with RAM from 1 MiB and
 * the framebuffer and LAPIC windows reserved, and CS = __BOOT_CS (0x10),
 * DS = SS = __BOOT_DS (0x18).
 *
 * COM1 lines: "linux-check: hello (64-bit entry)", "linux-check: ram top
 * 0x...", "linux-check: ok"; then exit 0 (EXIT hypercall, isa-debug-exit).
 * A failed check writes "linux-check: FAILED <what> seen 0x..." and exits
 * with the check's number (2-12).
 */
#include "pc.h"

#define EXPECTED_CMDLINE "linux-check cmdline=ok console=ttyS0"
#define MODULE_MAGIC "SERAPH-MODULE-01"
#define MODULE_SIZE 0x2345u

extern char __bz_init_size[];

void linux_main(const u8 *bp);

static __attribute__((noreturn)) void fail(u32 step, const char *what, u64 seen)
{
    serial_puts("linux-check: FAILED ");
    serial_puts(what);
    serial_puts(" seen ");
    serial_put_hex(seen);
    serial_puts("\n");
    pc_exit(step);
}

static u8 bp8(const u8 *bp, u32 off) { return bp[off]; }
static u16 bp16(const u8 *bp, u32 off) { return *(const u16 *)(bp + off); }
static u32 bp32(const u8 *bp, u32 off) { return *(const u32 *)(bp + off); }
static u64 bp64(const u8 *bp, u32 off) { return *(const u64 *)(bp + off); }

void linux_main(const u8 *bp)
{
    serial_init();
    serial_puts("linux-check: hello (64-bit entry)\n");

    u16 cs, ds, ss;
    __asm__ volatile("mov %%cs, %0; mov %%ds, %1; mov %%ss, %2" : "=r"(cs), "=r"(ds), "=r"(ss));
    if (cs != 0x10)
        fail(2, "CS is __BOOT_CS", cs);
    if (ds != 0x18 || ss != 0x18)
        fail(3, "DS and SS are __BOOT_DS", ((u64)ss << 16) | ds);

    if ((u64)bp == 0 || (u64)bp >= 0x100000000ULL)
        fail(4, "boot_params address", (u64)bp);
    if (bp32(bp, 0x202) != 0x53726448)
        fail(5, "setup header copied (HdrS)", bp32(bp, 0x202));
    if (bp16(bp, 0x1FE) != 0xAA55 || bp16(bp, 0x206) != 0x020F)
        fail(5, "setup header copied (boot_flag, version)", bp16(bp, 0x206));
    if (bp8(bp, 0x210) != 0xFF)
        fail(6, "type_of_loader", bp8(bp, 0x210));
    if (!(bp8(bp, 0x211) & 1) || bp32(bp, 0x214) != 0x100000)
        fail(6, "loadflags and code32_start", bp32(bp, 0x214));
    if (bp32(bp, 0x260) != (u32)(u64)__bz_init_size || bp16(bp, 0x236) != 1)
        fail(6, "init_size and xloadflags", bp32(bp, 0x260));

    /* E820 map: count at 0x1E8, 20-byte entries at 0x2D0. */
    u8 n = bp8(bp, 0x1E8);
    if (n < 3 || n > 128)
        fail(7, "e820 entries", n);
    u64 ram_top = 0, prev_end = 0;
    int fb = 0, lapic = 0;
    for (u32 i = 0; i < n; i++) {
        u32 e = 0x2D0 + 20 * i;
        u64 addr = bp64(bp, e), size = bp64(bp, e + 8);
        u32 type = bp32(bp, e + 16);
        if (addr < prev_end)
            fail(8, "e820 sorted and non-overlapping", addr);
        prev_end = addr + size;
        if (type == 1 && addr == 0x100000)
            ram_top = prev_end;
        if (type == 2 && addr <= 0xC0000000ULL && prev_end >= 0xC1000000ULL)
            fb = 1;
        if (type == 2 && addr <= 0xFEE00000ULL && prev_end >= 0xFEE01000ULL)
            lapic = 1;
    }
    if (ram_top <= 0x100000 || !fb || !lapic)
        fail(9, "e820 RAM at 1 MiB, framebuffer and LAPIC reserved", ram_top | (u64)fb << 62 | (u64)lapic << 63);
    serial_puts("linux-check: ram top ");
    serial_put_hex(ram_top);
    serial_puts("\n");

    u32 cmdline = bp32(bp, 0x228);
    if (cmdline == 0 || memcmp((const void *)(u64)cmdline, EXPECTED_CMDLINE, sizeof(EXPECTED_CMDLINE)) != 0)
        fail(10, "command line", cmdline);

    u32 initrd = bp32(bp, 0x218), initrd_size = bp32(bp, 0x21C);
    if (initrd_size != MODULE_SIZE || initrd < 0x100000 || (u64)initrd + initrd_size > ram_top)
        fail(11, "initrd size and place", ((u64)initrd << 32) | initrd_size);
    const u8 *data = (const u8 *)(u64)initrd;
    if (memcmp(data, MODULE_MAGIC, 16) != 0)
        fail(12, "initrd magic", initrd);
    for (u32 i = 16; i < MODULE_SIZE; i++) {
        if (data[i] != (u8)(i * 7 + 3))
            fail(12, "initrd contents", i);
    }

    serial_puts("linux-check: ok\n");
    pc_exit(0);
}
