/*
 * A small e1000 (82540EM) driver for the Aether NIC test guests: finds
 * 8086:100E on PCI bus 0, resets it, reads the MAC through EERD (and checks
 * it against RAL0/RAH0 and the EEPROM checksum 0xBABA), sets up 32-entry
 * legacy receive and transmit rings and sends/receives frames by polling
 * descriptor status, or with INTx through the 8259 PIC. Works on Seraph-V's
 * Aether NIC and on QEMU's e1000 alike. Include after pc.h.
 */
#ifndef AETHER_DRV_H
#define AETHER_DRV_H

#include "pc.h"

#define E1000_CTRL 0x0000
#define E1000_STATUS 0x0008
#define E1000_EERD 0x0014
#define E1000_ICR 0x00C0
#define E1000_IMS 0x00D0
#define E1000_IMC 0x00D8
#define E1000_RCTL 0x0100
#define E1000_TCTL 0x0400
#define E1000_TIPG 0x0410
#define E1000_RDBAL 0x2800
#define E1000_RDBAH 0x2804
#define E1000_RDLEN 0x2808
#define E1000_RDH 0x2810
#define E1000_RDT 0x2818
#define E1000_RDTR 0x2820
#define E1000_TDBAL 0x3800
#define E1000_TDBAH 0x3804
#define E1000_TDLEN 0x3808
#define E1000_TDH 0x3810
#define E1000_TDT 0x3818
#define E1000_MTA 0x5200
#define E1000_RAL0 0x5400
#define E1000_RAH0 0x5404
#define E1000_GPRC 0x4074
#define E1000_GPTC 0x4080

#define AE_RING 32
#define AE_BUF 2048

struct ae_rx_desc {
    u64 addr;
    u16 length;
    u16 csum;
    u8 status;
    u8 errors;
    u16 special;
};

struct ae_tx_desc {
    u64 addr;
    u16 length;
    u8 cso;
    u8 cmd;
    u8 status;
    u8 css;
    u16 special;
};

static struct ae_rx_desc ae_rx_ring[AE_RING] __attribute__((aligned(128)));
static struct ae_tx_desc ae_tx_ring[AE_RING] __attribute__((aligned(128)));
static u8 ae_rx_bufs[AE_RING][AE_BUF] __attribute__((aligned(16)));
static u8 ae_tx_bufs[AE_RING][AE_BUF] __attribute__((aligned(16)));

struct ae_card {
    u64 mmio;
    u8 slot, func, irq;
    u8 mac[6];
    u32 rx_next;
    u32 tx_tail;
};

static struct ae_card ae;

static inline u32 ae_r(u32 reg) { return mmio_read32(ae.mmio + reg); }
static inline void ae_w(u32 reg, u32 v) { mmio_write32(ae.mmio + reg, v); }

static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

/* Fails with a message and an exit status. */
static __attribute__((noreturn)) void ae_fail(const char *tag, u32 status, const char *what)
{
    serial_puts(tag);
    serial_puts(": FAILED ");
    serial_puts(what);
    serial_puts("\n");
    pc_exit(status);
}

/* Reads EEPROM word `addr` through EERD (bounded poll). */
static inline int ae_eeprom_read(u32 addr, u16 *out)
{
    ae_w(E1000_EERD, (addr << 8) | 1);
    for (u32 i = 0; i < 100000; i++) {
        u32 v = ae_r(E1000_EERD);
        if (v & 0x10) {
            *out = (u16)(v >> 16);
            return 0;
        }
    }
    return -1;
}

/* Finds and brings up the card; returns 0 or a failure step (10-19). */
static inline int ae_init(const char *tag)
{
    int loc = pci_find(0x8086, 0x100E);
    if (loc < 0)
        ae_fail(tag, 10, "no 8086:100e on PCI bus 0");
    ae.slot = (u8)(loc >> 3);
    ae.func = (u8)(loc & 7);
    u32 bar0 = pci_read32(0, ae.slot, ae.func, 0x10);
    if ((bar0 & 1) || (bar0 & ~0xFU) == 0)
        ae_fail(tag, 11, "BAR0 is not an assigned memory BAR");
    ae.mmio = bar0 & ~0xFU;
    ae.irq = pci_read8(0, ae.slot, ae.func, 0x3C);
    u16 cmd = pci_read16(0, ae.slot, ae.func, 0x04);
    pci_write16(0, ae.slot, ae.func, 0x04, (u16)((cmd | 0x7) & ~0x400)); /* IO, MEM, BM; INTx on */

    ae_w(E1000_IMC, 0xFFFFFFFFU);
    ae_w(E1000_CTRL, ae_r(E1000_CTRL) | (1U << 26)); /* RST */
    u32 spins = 0;
    while ((ae_r(E1000_CTRL) & (1U << 26)) && spins < 1000000)
        spins++;
    if (spins == 1000000)
        ae_fail(tag, 12, "reset never completed");
    ae_w(E1000_IMC, 0xFFFFFFFFU);
    (void)ae_r(E1000_ICR);
    ae_w(E1000_CTRL, ae_r(E1000_CTRL) | (1U << 6)); /* SLU */

    u16 sum = 0;
    for (u32 w = 0; w < 0x40; w++) {
        u16 word;
        if (ae_eeprom_read(w, &word))
            ae_fail(tag, 13, "EERD never completed");
        if (w < 3) {
            ae.mac[2 * w] = (u8)word;
            ae.mac[2 * w + 1] = (u8)(word >> 8);
        }
        sum = (u16)(sum + word);
    }
    if (sum != 0xBABA)
        ae_fail(tag, 14, "EEPROM checksum is not 0xBABA");
    u32 ral = ae_r(E1000_RAL0), rah = ae_r(E1000_RAH0);
    if (!(rah & 0x80000000U) || ral != ((u32)ae.mac[0] | (u32)ae.mac[1] << 8 | (u32)ae.mac[2] << 16 | (u32)ae.mac[3] << 24) ||
        (rah & 0xFFFF) != ((u32)ae.mac[4] | (u32)ae.mac[5] << 8))
        ae_fail(tag, 15, "RAL0/RAH0 do not hold the EEPROM MAC");
    if (!(ae_r(E1000_STATUS) & 2))
        ae_fail(tag, 16, "link is down");

    for (u32 i = 0; i < 128; i++)
        ae_w(E1000_MTA + 4 * i, 0);

    for (u32 i = 0; i < AE_RING; i++) {
        ae_rx_ring[i].addr = (u64)ae_rx_bufs[i];
        ae_rx_ring[i].status = 0;
        ae_tx_ring[i].addr = (u64)ae_tx_bufs[i];
        ae_tx_ring[i].status = 1; /* DD: free */
        ae_tx_ring[i].cmd = 0;
    }
    ae_w(E1000_RDBAL, (u32)(u64)ae_rx_ring);
    ae_w(E1000_RDBAH, (u32)((u64)ae_rx_ring >> 32));
    ae_w(E1000_RDLEN, sizeof(ae_rx_ring));
    ae_w(E1000_RDH, 0);
    ae_w(E1000_RDT, AE_RING - 1);
    ae_w(E1000_RDTR, 0);
    ae_w(E1000_TDBAL, (u32)(u64)ae_tx_ring);
    ae_w(E1000_TDBAH, (u32)((u64)ae_tx_ring >> 32));
    ae_w(E1000_TDLEN, sizeof(ae_tx_ring));
    ae_w(E1000_TDH, 0);
    ae_w(E1000_TDT, 0);
    ae_w(E1000_TIPG, 10 | (8 << 10) | (6 << 20));
    /* EN, BAM, SECRC; 2048-byte buffers. */
    ae_w(E1000_RCTL, (1U << 1) | (1U << 15) | (1U << 26));
    /* EN, PSP, CT 0x10, COLD 0x40. */
    ae_w(E1000_TCTL, (1U << 1) | (1U << 3) | (0x10U << 4) | (0x40U << 12));
    ae.rx_next = 0;
    ae.tx_tail = 0;
    return 0;
}

/* Queues one frame; returns 0, or -1 if the ring stayed full. */
static inline int ae_send(const u8 *frame, u32 len)
{
    struct ae_tx_desc *d = &ae_tx_ring[ae.tx_tail];
    u64 start = rdtsc();
    while (!(*(volatile u8 *)&d->status & 1)) {
        if (rdtsc() - start > 2000000000ULL)
            return -1;
    }
    memcpy(ae_tx_bufs[ae.tx_tail], frame, len);
    d->length = (u16)len;
    d->cmd = 0x01 | 0x02 | 0x08; /* EOP, IFCS, RS */
    d->status = 0;
    barrier();
    ae.tx_tail = (ae.tx_tail + 1) % AE_RING;
    ae_w(E1000_TDT, ae.tx_tail);
    return 0;
}

/* Copies the next received frame into `out` (up to `cap` bytes); returns
 * its length, or 0 if none is there. Gives the descriptor back. */
static inline u32 ae_poll(u8 *out, u32 cap)
{
    struct ae_rx_desc *d = &ae_rx_ring[ae.rx_next];
    if (!(*(volatile u8 *)&d->status & 1))
        return 0;
    barrier();
    u32 len = d->length;
    u8 status = d->status;
    if (len > cap)
        len = cap;
    memcpy(out, ae_rx_bufs[ae.rx_next], len);
    d->status = 0;
    barrier();
    ae_w(E1000_RDT, ae.rx_next);
    ae.rx_next = (ae.rx_next + 1) % AE_RING;
    if (!(status & 2))
        return 0xFFFFFFFFU; /* a frame without EOP: never expected with 2 KiB buffers */
    return len;
}

/* ---- INTx through the PIC --------------------------------------------------- */

static volatile u32 ae_irq_count __attribute__((unused));
static volatile u32 ae_tick_count __attribute__((unused));

static __attribute__((unused)) void ae_on_irq(struct pc_frame *frame)
{
    (void)frame;
    (void)ae_r(E1000_ICR); /* read-to-clear: drops the line */
    ae_irq_count++;
    pic_eoi(ae.irq);
}

static __attribute__((unused)) void ae_on_tick(struct pc_frame *frame)
{
    (void)frame;
    ae_tick_count++;
    pic_eoi(0);
}

/* Routes the card's INTx (line from config 0x3C) and a 100 Hz PIT tick
 * through the PIC at vectors 0x20-0x2F; enables RXT0. */
static inline void ae_irq_setup(const char *tag)
{
    if (ae.irq == 0 || ae.irq >= 16 || ae.irq == 2)
        ae_fail(tag, 17, "no usable interrupt line in config 0x3C");
    pc_idt_install();
    pic_remap(0x20, 0x28);
    pc_set_handler((u8)(0x20 + ae.irq), ae_on_irq);
    pc_set_handler(0x20, ae_on_tick);
    pc_set_handler(0x27, ae_on_tick); /* spurious IRQ 7 */
    pc_set_handler(0x2F, ae_on_tick); /* spurious IRQ 15 */
    /* PIT channel 0, mode 2, ~100 Hz: a wake-up for timeouts. */
    outb(0x43, 0x34);
    outb(0x40, (u8)(11932 & 0xFF));
    outb(0x40, (u8)(11932 >> 8));
    pc_lapic_lint0_extint();
    pic_unmask(0);
    pic_unmask(ae.irq);
    ae_w(E1000_IMS, 1U << 7); /* RXT0 */
    /* Interrupts stay off outside ae_wait_irq: a frame that arrives while
     * the guest polls keeps its interrupt pending, and the next hlt wakes at
     * once instead of missing it and sleeping until the next tick. */
}

/* Sleeps until an interrupt (the card's or the tick): STI's one-instruction
 * shadow makes "sti; hlt" atomic, and interrupts are off again after. */
static inline void ae_wait_irq(void)
{
    __asm__ volatile("sti; hlt; cli" : : : "memory");
}

#endif
