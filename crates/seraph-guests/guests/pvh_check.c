/*
 * PVH_CHECK: a PVH guest (PC runtime: pc_entry.S builds its own long mode
 * from the 32-bit PVH entry) that checks the hvm_start_info it was given.
 * Built as a 64-bit-class ELF (pvh_check.elf) and, converted by objcopy, a
 * 32-bit-class ELF (pvh_check32.elf). Boot it with PVH forced (its ELF entry
 * is the 64-bit Seraph entry) with the command line PVH_CHECK_CMDLINE and
 * the module from seraph_guests::pvh_check_module().
 *
 * COM1 lines: "pvh-check: hello", "pvh-check: ram top 0x..." (end of the
 * memory-map entry that starts at 1 MiB), "pvh-check: framebuffer window
 * reserved" and "pvh-check: local APIC page reserved" (or "no ..." lines:
 * QEMU's map has neither), then "pvh-check: ok" and exit 0. A failed check
 * writes "pvh-check: FAILED <what> seen 0x..." and exits with the check's
 * number (2-12). Booted through the Seraph
 * protocol instead, it exits 1.
 */
#include "pc.h"

#define EXPECTED_CMDLINE "pvh-check cmdline=ok"
#define MODULE_MAGIC "SERAPH-MODULE-01"
#define MODULE_SIZE 0x2345u

struct hvm_start_info {
    u32 magic, version, flags, nr_modules;
    u64 modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    u32 memmap_entries, reserved;
};
struct hvm_modlist_entry {
    u64 paddr, size, cmdline_paddr, reserved;
};
struct hvm_memmap_entry {
    u64 addr, size;
    u32 type, reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info");
_Static_assert(sizeof(struct hvm_memmap_entry) == 24, "memmap entry");

static __attribute__((noreturn)) void fail(u32 step, const char *what, u64 seen)
{
    serial_puts("pvh-check: FAILED ");
    serial_puts(what);
    serial_puts(" seen ");
    serial_put_hex(seen);
    serial_puts("\n");
    pc_exit(step);
}

void pc_main(int protocol, unsigned long info)
{
    serial_init();
    serial_puts("pvh-check: hello\n");
    if (protocol != PC_PROTOCOL_PVH)
        fail(1, "entered through the PVH entry", (u64)protocol);

    const struct hvm_start_info *si = (const struct hvm_start_info *)info;
    if (info == 0 || info >= 0x100000000ULL)
        fail(2, "start info address", info);
    if (si->magic != PC_PVH_START_MAGIC)
        fail(3, "start info magic", si->magic);
    if (si->version < 1)
        fail(4, "start info version", si->version);

    /* Memory map: sorted, non-overlapping, RAM from 1 MiB, framebuffer and LAPIC reserved. */
    const struct hvm_memmap_entry *map = (const struct hvm_memmap_entry *)si->memmap_paddr;
    u32 n = si->memmap_entries;
    if (si->memmap_paddr == 0 || n < 3 || n > 128)
        fail(5, "memory map present", n);
    u64 ram_top = 0, prev_end = 0;
    int fb = 0, lapic = 0;
    for (u32 i = 0; i < n; i++) {
        if (map[i].addr < prev_end)
            fail(6, "memory map sorted and non-overlapping", map[i].addr);
        prev_end = map[i].addr + map[i].size;
        if (map[i].type == 1 && map[i].addr == 0x100000)
            ram_top = prev_end;
        if (map[i].type == 2 && map[i].addr <= 0xC0000000ULL && prev_end >= 0xC1000000ULL)
            fb = 1;
        if (map[i].type == 2 && map[i].addr <= 0xFEE00000ULL && prev_end >= 0xFEE01000ULL)
            lapic = 1;
    }
    if (ram_top <= 0x100000)
        fail(7, "RAM entry at 1 MiB", ram_top);
    serial_puts("pvh-check: ram top ");
    serial_put_hex(ram_top);
    serial_puts("\n");
    /* Seraph-V reserves both windows; QEMU's map has neither: report, do not fail. */
    serial_puts(fb ? "pvh-check: framebuffer window reserved\n" : "pvh-check: no framebuffer window\n");
    serial_puts(lapic ? "pvh-check: local APIC page reserved\n" : "pvh-check: no local APIC entry\n");

    /* Command line. */
    const char *cmdline = (const char *)si->cmdline_paddr;
    if (si->cmdline_paddr == 0 || memcmp(cmdline, EXPECTED_CMDLINE, sizeof(EXPECTED_CMDLINE)) != 0)
        fail(10, "command line", si->cmdline_paddr);

    /* One module: the magic, then byte i = i * 7 + 3. */
    if (si->nr_modules != 1 || si->modlist_paddr == 0)
        fail(11, "one module", si->nr_modules);
    const struct hvm_modlist_entry *mod = (const struct hvm_modlist_entry *)si->modlist_paddr;
    const u8 *data = (const u8 *)mod->paddr;
    if (mod->size != MODULE_SIZE || mod->paddr < 0x100000 || mod->paddr + mod->size > ram_top)
        fail(12, "module size and place", mod->size);
    if (memcmp(data, MODULE_MAGIC, 16) != 0)
        fail(12, "module magic", mod->paddr);
    for (u32 i = 16; i < MODULE_SIZE; i++) {
        if (data[i] != (u8)(i * 7 + 3))
            fail(12, "module contents", i);
    }

    serial_puts("pvh-check: ok\n");
    pc_exit(0);
}
