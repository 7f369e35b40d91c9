/*
 * PCI_TESTDEV: proves Seraph-V's PCI plumbing end to end with the PCI test
 * device (seraph_pci::testdev, 5345:7e57; MachineConfig::pci_testdev).
 *
 *  1. enumerate bus 0 (a line per function found); find the test device;
 *  2. size BAR0 (write all-ones, read the mask back: 4 KiB memory) and
 *     BAR1 (16 ports);
 *  3. read the magic through BAR0 where the VMM put it; move BAR0 to
 *     0xD8000000 (decoding off while moving), read it there, and check the
 *     old address no longer decodes (reads all-ones);
 *  4. a hostile move: BAR0 over RAM (0x100000) must not decode (the VMM
 *     refuses it; RAM there stays RAM), then back to 0xD8000000;
 *  5. scratch register through the I/O BAR;
 *  6. the INTx line: IDT, PIC remapped to 0x20/0x28, the device's
 *     interrupt line register names the IRQ; raise INTx through the
 *     device, HLT with IF=1, the handler lowers it and EOIs;
 *  7. "pci-testdev: ok", exit 0. A failed step prints
 *     "pci-testdev: FAILED <what>" and exits with the step number.
 */
#include "pc.h"

#define TESTDEV_VENDOR 0x5345
#define TESTDEV_DEVICE 0x7e57
#define TESTDEV_MAGIC 0x53545644u
#define REG_MAGIC 0x0
#define REG_SCRATCH 0x4
#define REG_IRQ 0x8
#define NEW_BAR0 0xD8000000u

static volatile u32 irqs;
static u64 bar0;
static u8 irq_line;

static __attribute__((noreturn)) void fail(u32 step, const char *what)
{
    serial_puts("pci-testdev: FAILED ");
    serial_puts(what);
    serial_puts("\n");
    pc_exit(step);
}

static void on_intx(struct pc_frame *frame)
{
    (void)frame;
    irqs++;
    mmio_write32(bar0 + REG_IRQ, 0); /* lower the level before EOI */
    pic_eoi(irq_line);
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    /* 1. enumerate */
    for (u32 slot = 0; slot < 32; slot++) {
        u32 id = pci_read32(0, (u8)slot, 0, 0);
        if (id == 0xFFFFFFFFu)
            continue;
        serial_puts("pci-testdev: 00:");
        serial_put_hex(slot);
        serial_puts(".0 ");
        serial_put_hex(id);
        serial_puts("\n");
    }
    int found = pci_find(TESTDEV_VENDOR, TESTDEV_DEVICE);
    if (found < 0)
        fail(1, "test device not on bus 0");
    u8 slot = (u8)(found >> 3); /* pci_find returns (slot << 3) | function */

    /* 2. size the BARs */
    u16 cmd = pci_read16(0, slot, 0, 0x04);
    u32 orig0 = pci_read32(0, slot, 0, 0x10);
    u32 orig1 = pci_read32(0, slot, 0, 0x14);
    pci_write16(0, slot, 0, 0x04, cmd & ~3u);
    pci_write32(0, slot, 0, 0x10, 0xFFFFFFFFu);
    u32 mask0 = pci_read32(0, slot, 0, 0x10);
    pci_write32(0, slot, 0, 0x14, 0xFFFFFFFFu);
    u32 mask1 = pci_read32(0, slot, 0, 0x14);
    pci_write32(0, slot, 0, 0x10, orig0);
    pci_write32(0, slot, 0, 0x14, orig1);
    pci_write16(0, slot, 0, 0x04, cmd);
    if (mask0 != 0xFFFFF000u)
        fail(2, "BAR0 size mask");
    if (mask1 != 0xFFFFFFF1u)
        fail(2, "BAR1 size mask");
    serial_puts("pci-testdev: bars sized\n");

    /* 3. magic where the VMM put it, then move BAR0 */
    bar0 = orig0 & ~0xFu;
    if (mmio_read32(bar0 + REG_MAGIC) != TESTDEV_MAGIC)
        fail(3, "magic at the assigned BAR0");
    u64 old = bar0;
    pci_write16(0, slot, 0, 0x04, cmd & ~2u);
    pci_write32(0, slot, 0, 0x10, NEW_BAR0);
    pci_write16(0, slot, 0, 0x04, cmd);
    bar0 = NEW_BAR0;
    if (mmio_read32(bar0 + REG_MAGIC) != TESTDEV_MAGIC)
        fail(3, "magic at the moved BAR0");
    if (mmio_read32(old + REG_MAGIC) != 0xFFFFFFFFu)
        fail(3, "old BAR0 address still decodes");
    serial_puts("pci-testdev: bar moved\n");

    /* 4. BAR0 over RAM: refused; RAM stays RAM */
    volatile u32 *ram = (volatile u32 *)0x100000;
    u32 before = *ram;
    pci_write32(0, slot, 0, 0x10, 0x100000);
    if (*ram != before)
        fail(4, "a BAR over RAM changed RAM");
    pci_write32(0, slot, 0, 0x10, NEW_BAR0);
    if (mmio_read32(bar0 + REG_MAGIC) != TESTDEV_MAGIC)
        fail(4, "BAR0 back");

    /* 5. the I/O BAR */
    u16 io = (u16)(orig1 & ~3u);
    outl(io + REG_SCRATCH, 0xC0FFEE);
    if (mmio_read32(bar0 + REG_SCRATCH) != 0xC0FFEE)
        fail(5, "scratch through the I/O BAR");

    /* 6. INTx */
    irq_line = pci_read8(0, slot, 0, 0x3C);
    if (irq_line >= 16)
        fail(6, "interrupt line register");
    pc_idt_install();
    pic_remap(0x20, 0x28);
    pc_set_handler((u8)(0x20 + irq_line), on_intx);
    pc_lapic_lint0_extint();
    pic_unmask(irq_line);
    mmio_write32(bar0 + REG_IRQ, 1);
    for (int tries = 0; tries < 100 && irqs == 0; tries++)
        __asm__ volatile("sti; hlt; cli" : : : "memory");
    if (irqs != 1)
        fail(6, "INTx did not arrive once");
    serial_puts("pci-testdev: interrupt ok\n");
    serial_puts("pci-testdev: ok\n");
    pc_exit(0);
}
