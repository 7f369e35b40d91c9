/*
 * PC_SELFTEST: the PC guest runtime's own test (pc_entry.S, pc.h, pc.ld).
 * Boots under seraph-v (Seraph protocol) and under QEMU as a PVH kernel.
 *
 *  1. COM1 line "pc-selftest: hello (seraph)" or "(pvh)";
 *  2. the boot info magic (Seraph) or hvm_start_info magic (PVH) checked;
 *     line "pc-selftest: boot info ok";
 *  3. IDT: `ud2` (#UD, vector 6, no CPU error code) and `rdmsr` of a
 *     nonexistent MSR (#GP, vector 13, CPU error code 0) must reach their C
 *     handlers, which step RIP over the instruction; line
 *     "pc-selftest: interrupt ok". (Not `int $n`: this machine's nested KVM
 *     cannot emulate software interrupts.)
 *  4. PCI: the host bridge 8086:1237 must be at slot 0 (line
 *     "pc-selftest: host bridge 8086:1237 at 00:00.0"), unless there is no
 *     PCI at all (00:00.0 reads all-ones: line "pc-selftest: no pci");
 *  5. line "pc-selftest: ok", pc_exit(0).
 * A failed step writes "pc-selftest: FAILED <step>" and exits with the
 * step number (QEMU: exit code (n << 1) | 1).
 */
#include "pc.h"

static volatile u64 seen_ud;
static volatile u64 seen_gp;

/* #UD from ud2 (0F 0B): skip it. */
static void on_ud(struct pc_frame *frame)
{
    if (frame->vector == 6 && frame->error == 0)
        seen_ud++;
    frame->rip += 2;
}

/* #GP from rdmsr (0F 32): skip it. */
static void on_gp(struct pc_frame *frame)
{
    if (frame->vector == 13 && frame->error == 0)
        seen_gp++;
    frame->rip += 2;
}

static __attribute__((noreturn)) void fail(u32 step, const char *what)
{
    serial_puts("pc-selftest: FAILED ");
    serial_puts(what);
    serial_puts("\n");
    pc_exit(step);
}

void pc_main(int protocol, unsigned long info)
{
    serial_init();
    serial_puts(protocol == PC_PROTOCOL_PVH ? "pc-selftest: hello (pvh)\n" : "pc-selftest: hello (seraph)\n");

    if (protocol == PC_PROTOCOL_PVH) {
        if (info == 0 || mmio_read32(info) != PC_PVH_START_MAGIC)
            fail(2, "hvm_start_info magic");
    } else if (protocol == PC_PROTOCOL_SERAPH) {
        if (info == 0 || mmio_read64(info) != PC_SERAPH_BOOT_MAGIC)
            fail(2, "boot info magic");
    } else {
        fail(2, "unknown protocol");
    }
    serial_puts("pc-selftest: boot info ok\n");

    pc_idt_install();
    pc_set_handler(6, on_ud);
    pc_set_handler(13, on_gp);
    __asm__ volatile("ud2" : : : "memory");
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x0BADC0DEU) : "memory");
    (void)lo;
    (void)hi;
    if (seen_ud != 1 || seen_gp != 1)
        fail(3, "interrupt");
    serial_puts("pc-selftest: interrupt ok\n");

    u32 id0 = pci_read32(0, 0, 0, 0);
    if (id0 == 0xFFFFFFFFU) {
        serial_puts("pc-selftest: no pci\n");
    } else {
        int where = pci_find(0x8086, 0x1237);
        if (where != 0)
            fail(4, "host bridge 8086:1237 at 00:00.0");
        serial_puts("pc-selftest: host bridge 8086:1237 at 00:00.0\n");
    }

    serial_puts("pc-selftest: ok\n");
    pc_exit(0);
}
