/*
 * A small NVMe driver for the Atlas disk guests (nvme_driver.c,
 * nvme_stress.c) on the PC guest runtime: controller discovery by class
 * 01/08/02, bring-up, polled admin and I/O queues, PRP lists, MSI-X.
 * Everything is static (inline, or marked unused): each guest includes it
 * once and uses what it needs.
 */
#ifndef SERAPH_NVME_DRV_H
#define SERAPH_NVME_DRV_H

#include "pc.h"

#define NVME_BAR_DEFAULT 0xD0000000ULL
#define QUEUE_ENTRIES 256
#define ADMIN_ENTRIES 32
#define PAGE 4096
#define XFER (64 * 1024)
#define SPIN_LIMIT 200000000ULL
#define MSIX_VECTOR_BASE 0x50
#define LAPIC 0xFEE00000ULL

struct sqe {
    u32 cdw0;
    u32 nsid;
    u64 rsvd;
    u64 mptr;
    u64 prp1;
    u64 prp2;
    u32 cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
_Static_assert(sizeof(struct sqe) == 64, "64-byte SQ entries");

struct cqe {
    u32 result;
    u32 rsvd;
    u16 sq_head;
    u16 sq_id;
    u16 cid;
    u16 status; /* bit 0 phase, 8:1 SC, 11:9 SCT, 15 DNR */
};
_Static_assert(sizeof(struct cqe) == 16, "16-byte CQ entries");

struct queue {
    volatile struct sqe *sq;
    volatile struct cqe *cq;
    u16 qid, size, tail, head, phase;
};

static __attribute__((unused)) struct sqe admin_sq[ADMIN_ENTRIES] __attribute__((aligned(PAGE)));
static __attribute__((unused)) struct cqe admin_cq[ADMIN_ENTRIES] __attribute__((aligned(PAGE)));
static __attribute__((unused)) struct sqe io_sq[QUEUE_ENTRIES] __attribute__((aligned(PAGE)));
static __attribute__((unused)) struct cqe io_cq[QUEUE_ENTRIES] __attribute__((aligned(PAGE)));
static __attribute__((unused)) u8 ident[PAGE] __attribute__((aligned(PAGE)));
static __attribute__((unused)) u8 wbuf[XFER + 2 * PAGE] __attribute__((aligned(PAGE)));
static __attribute__((unused)) u8 rbuf[XFER + 2 * PAGE] __attribute__((aligned(PAGE)));
static __attribute__((unused)) u64 lists[4][PAGE / 8] __attribute__((aligned(PAGE)));

static __attribute__((unused)) u64 bar;
static __attribute__((unused)) u32 stride;
static __attribute__((unused)) u16 next_cid = 1;
static __attribute__((unused)) u32 last_result;

static inline u32 le32(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static inline u64 le64(const u8 *p) { return (u64)le32(p) | (u64)le32(p + 4) << 32; }

static inline __attribute__((noreturn)) void fail(u32 step, const char *what, u64 value)
{
    serial_puts("nvme-driver: FAILED ");
    serial_puts(what);
    serial_puts(" ");
    serial_put_hex(value);
    serial_puts("\n");
    pc_exit(step);
}

static inline u32 reg32(u32 off) { return mmio_read32(bar + off); }
static inline void wreg32(u32 off, u32 v) { mmio_write32(bar + off, v); }

static inline void ring(u16 index, u32 value) { wreg32(0x1000 + index * stride, value); }

/* Submits and polls for the completion; returns SCT << 8 | SC. */
static inline u32 run(struct queue *q, struct sqe *c)
{
    u16 cid = next_cid++;
    c->cdw0 = (c->cdw0 & 0xFF) | ((u32)cid << 16);
    q->sq[q->tail] = *c;
    q->tail = (u16)((q->tail + 1) % q->size);
    barrier();
    ring((u16)(2 * q->qid), q->tail);
    volatile struct cqe *e = &q->cq[q->head];
    u64 spins = 0;
    while ((e->status & 1) != q->phase) {
        if (++spins > SPIN_LIMIT)
            fail(90, "no completion for opcode", c->cdw0 & 0xFF);
        __asm__ volatile("pause");
    }
    barrier();
    struct cqe done = *e;
    if (done.cid != cid)
        fail(91, "completion command id", done.cid);
    if (done.sq_id != q->qid)
        fail(91, "completion SQ id", done.sq_id);
    if (done.sq_head != q->tail)
        fail(91, "completion SQ head", done.sq_head);
    q->head = (u16)(q->head + 1);
    if (q->head == q->size) {
        q->head = 0;
        q->phase ^= 1;
    }
    ring((u16)(2 * q->qid + 1), q->head);
    last_result = done.result;
    return (done.status >> 1) & 0x7FF;
}

static __attribute__((unused)) struct queue admin = {admin_sq, admin_cq, 0, ADMIN_ENTRIES, 0, 0, 1};
static __attribute__((unused)) struct queue ioq = {io_sq, io_cq, 1, QUEUE_ENTRIES, 0, 0, 1};

static inline void zero_cmd(struct sqe *c, u8 opcode)
{
    memset(c, 0, sizeof(*c));
    c->cdw0 = opcode;
}

static inline u32 admin_cmd(u8 opcode, u32 nsid, u64 prp1, u32 cdw10, u32 cdw11)
{
    struct sqe c;
    zero_cmd(&c, opcode);
    c.nsid = nsid;
    c.prp1 = prp1;
    c.cdw10 = cdw10;
    c.cdw11 = cdw11;
    return run(&admin, &c);
}

static inline u32 rw(u8 opcode, u64 slba, u32 blocks, u64 prp1, u64 prp2)
{
    struct sqe c;
    zero_cmd(&c, opcode);
    c.nsid = 1;
    c.prp1 = prp1;
    c.prp2 = prp2;
    c.cdw10 = (u32)slba;
    c.cdw11 = (u32)(slba >> 32);
    c.cdw12 = blocks - 1;
    return run(&ioq, &c);
}

static inline u32 flush(void)
{
    struct sqe c;
    zero_cmd(&c, 0x00);
    c.nsid = 1;
    return run(&ioq, &c);
}

/* PRPs for XFER bytes at buf + 0x200: PRP1 is the partial first page, the
 * first list page (at list0's last 3 slots) holds two data pages and a
 * pointer to the second list page (list1), which holds the rest. */
static inline u64 build_prps(u8 *buf, u64 *list0, u64 *list1)
{
    u64 page = (u64)buf + PAGE;
    u32 pages = (XFER - (PAGE - 0x200) + PAGE - 1) / PAGE;
    u64 *l0 = list0 + PAGE / 8 - 3;
    l0[0] = page;
    l0[1] = page + PAGE;
    l0[2] = (u64)list1;
    for (u32 i = 2; i < pages; i++)
        list1[i - 2] = page + (u64)i * PAGE;
    return (u64)l0;
}

static __attribute__((unused)) volatile u64 irqs[2];

static inline void on_msix(struct pc_frame *frame)
{
    u64 v = frame->vector - MSIX_VECTOR_BASE;
    if (v < 2)
        irqs[v]++;
    mmio_write32(LAPIC + 0xB0, 0);
}

static inline u8 find_controller(void)
{
    for (u8 slot = 0; slot < 32; slot++) {
        for (u8 func = 0; func < 8; func++) {
            u32 id = pci_read32(0, slot, func, 0);
            if ((id & 0xFFFF) == 0xFFFF) {
                if (func == 0)
                    break;
                continue;
            }
            if ((pci_read32(0, slot, func, 0x08) >> 8) == 0x010802) {
                serial_puts("nvme-driver: controller at slot ");
                serial_put_dec(slot);
                serial_puts("\n");
                return (u8)((slot << 3) | func);
            }
            if (func == 0 && !(pci_read8(0, slot, 0, 0x0E) & 0x80))
                break;
        }
    }
    fail(1, "no NVMe controller (class 01/08/02) on bus 0", 0);
}

static inline u64 read_bar(u8 slot, u8 func, u8 index)
{
    u32 lo = pci_read32(0, slot, func, (u8)(0x10 + 4 * index));
    u64 addr = lo & ~0xFULL;
    if ((lo & 0x6) == 0x4)
        addr |= (u64)pci_read32(0, slot, func, (u8)(0x14 + 4 * index)) << 32;
    return addr;
}

static inline void setup_msix(u8 slot, u8 func)
{
    u8 cap = pci_read8(0, slot, func, 0x34);
    while (cap && pci_read8(0, slot, func, cap) != 0x11)
        cap = pci_read8(0, slot, func, (u8)(cap + 1));
    if (!cap)
        fail(4, "no MSI-X capability", 0);
    u32 table = pci_read32(0, slot, func, (u8)(cap + 4));
    u64 base = read_bar(slot, func, (u8)(table & 7)) + (table & ~7U);
    for (u32 v = 0; v < 2; v++) {
        mmio_write32(base + 16 * v, 0xFEE00000U);
        mmio_write32(base + 16 * v + 4, 0);
        mmio_write32(base + 16 * v + 8, MSIX_VECTOR_BASE + v);
        mmio_write32(base + 16 * v + 12, 0);
    }
    pc_idt_install();
    /* Firmware leaves the PIC at vectors 8-15 with the timer unmasked:
     * move it out of the way and mask every line. */
    pic_remap(0x20, 0x28);
    pc_set_handler(MSIX_VECTOR_BASE, on_msix);
    pc_set_handler(MSIX_VECTOR_BASE + 1, on_msix);
    mmio_write32(LAPIC + 0xF0, mmio_read32(LAPIC + 0xF0) | 0x1FF);
    u16 ctrl = pci_read16(0, slot, func, (u8)(cap + 2));
    pci_write16(0, slot, func, (u8)(cap + 2), (u16)((ctrl & ~0x4000) | 0x8000));
    pc_sti();
    serial_puts("nvme-driver: msi-x table at ");
    serial_put_hex(base);
    serial_puts(" control ");
    serial_put_hex(pci_read16(0, slot, func, (u8)(cap + 2)));
    serial_puts("\n");
}

static inline void bring_up(void)
{
    u64 cap = mmio_read64(bar);
    if ((cap & 0xFFFF) < 255)
        fail(2, "CAP.MQES below 255", cap);
    if (!(cap & (1ULL << 37)))
        fail(2, "CAP.CSS without NVM", cap);
    stride = 4U << ((cap >> 32) & 0xF);
    if (reg32(0x14) & 1) {
        wreg32(0x14, 0);
        for (u64 i = 0; reg32(0x1C) & 1; i++)
            if (i > SPIN_LIMIT)
                fail(2, "CSTS.RDY stuck at 1", reg32(0x1C));
    }
    wreg32(0x24, (ADMIN_ENTRIES - 1) | ((ADMIN_ENTRIES - 1) << 16));
    wreg32(0x28, (u32)(u64)admin_sq);
    wreg32(0x2C, (u32)((u64)admin_sq >> 32));
    mmio_write64(bar + 0x30, (u64)admin_cq);
    if (mmio_read64(bar + 0x28) != (u64)admin_sq || reg32(0x30) != (u32)(u64)admin_cq)
        fail(2, "ASQ/ACQ read back", mmio_read64(bar + 0x28));
    wreg32(0x14, 1 | (6 << 16) | (4 << 20));
    for (u64 i = 0; !(reg32(0x1C) & 1); i++) {
        if (reg32(0x1C) & 2 || i > SPIN_LIMIT)
            fail(2, "controller did not become ready", reg32(0x1C));
    }
    serial_puts("nvme-driver: enabled, version ");
    serial_put_hex(reg32(0x08));
    serial_puts("\n");
}

#endif
