/*
 * NVME_DRIVER: a small NVMe driver (the Atlas disk test, issue #16) on the
 * PC guest runtime. Boots under seraph-v and as a PVH kernel under QEMU
 * with `-device nvme`: the same ELF proves the driver on the reference
 * implementation and then tests seraph-v's controller.
 *
 * Steps (one COM1 line each, "nvme-driver: ..."):
 *  1. find the controller by class 01/08/02 on bus 0, map BAR0 (firmware's
 *     address if below 4 GiB, else NVME_BAR_DEFAULT), enable memory and
 *     bus mastering;
 *  2. reset, admin queues (ASQ written as two 32-bit halves, ACQ as one
 *     64-bit write, as Seraph OS's driver does), enable, wait for RDY;
 *  3. Identify controller, namespace 1 and the active namespace list;
 *  4. Set Features (number of queues), I/O CQ 1 and SQ 1 of 256 entries;
 *  5. LBA 0 must begin with "ATLAS-HOST-PATTERN" (written by the host);
 *  6. 64 KiB written at LBA 64 from a buffer at page offset 0x200, through
 *     a PRP list whose first page holds two entries and chains to a second
 *     list page; Flush; read back through another PRP list and compared;
 *  7. a read one block past the end and one straddling the end must fail
 *     with LBA Out of Range;
 *  8. LBA 1 holds "ATLAS-RUN-" + a counter: read, incremented, written,
 *     flushed ("nvme-driver: run N") so a next boot sees N + 1;
 *  NVME_READONLY: instead of 6 and 8, writes must fail with Namespace is
 *     Write Protected, and Identify Namespace must report it;
 *  NVME_MSIX: MSI-X enabled before the controller; the admin CQ on vector
 *     0 (IDT vector 0x50) and I/O CQ 1 on vector 1 (0x51); both must have
 *     interrupted by the end (QEMU 7.2 answers a write to a read-only
 *     drive with Write Fault and no NSATTR bit: NVME_READONLY is for
 *     seraph-v only);
 *  9. "nvme-driver: ok", exit 0 (QEMU isa-debug-exit: exit code 1).
 * A failure writes "nvme-driver: FAILED <what> ..." and exits with its
 * step number.
 */
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

static struct sqe admin_sq[ADMIN_ENTRIES] __attribute__((aligned(PAGE)));
static struct cqe admin_cq[ADMIN_ENTRIES] __attribute__((aligned(PAGE)));
static struct sqe io_sq[QUEUE_ENTRIES] __attribute__((aligned(PAGE)));
static struct cqe io_cq[QUEUE_ENTRIES] __attribute__((aligned(PAGE)));
static u8 ident[PAGE] __attribute__((aligned(PAGE)));
static u8 wbuf[XFER + 2 * PAGE] __attribute__((aligned(PAGE)));
static u8 rbuf[XFER + 2 * PAGE] __attribute__((aligned(PAGE)));
#ifndef NVME_READONLY
static u64 lists[4][PAGE / 8] __attribute__((aligned(PAGE)));
#endif

static u64 bar;
static u32 stride;
static u16 next_cid = 1;
static u32 last_result;

static u32 le32(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static u64 le64(const u8 *p) { return (u64)le32(p) | (u64)le32(p + 4) << 32; }

static __attribute__((noreturn)) void fail(u32 step, const char *what, u64 value)
{
    serial_puts("nvme-driver: FAILED ");
    serial_puts(what);
    serial_puts(" ");
    serial_put_hex(value);
    serial_puts("\n");
    pc_exit(step);
}

static u32 reg32(u32 off) { return mmio_read32(bar + off); }
static void wreg32(u32 off, u32 v) { mmio_write32(bar + off, v); }

static void ring(u16 index, u32 value) { wreg32(0x1000 + index * stride, value); }

/* Submits and polls for the completion; returns SCT << 8 | SC. */
static u32 run(struct queue *q, struct sqe *c)
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

static struct queue admin = {admin_sq, admin_cq, 0, ADMIN_ENTRIES, 0, 0, 1};
static struct queue ioq = {io_sq, io_cq, 1, QUEUE_ENTRIES, 0, 0, 1};

static void zero_cmd(struct sqe *c, u8 opcode)
{
    memset(c, 0, sizeof(*c));
    c->cdw0 = opcode;
}

static u32 admin_cmd(u8 opcode, u32 nsid, u64 prp1, u32 cdw10, u32 cdw11)
{
    struct sqe c;
    zero_cmd(&c, opcode);
    c.nsid = nsid;
    c.prp1 = prp1;
    c.cdw10 = cdw10;
    c.cdw11 = cdw11;
    return run(&admin, &c);
}

static u32 rw(u8 opcode, u64 slba, u32 blocks, u64 prp1, u64 prp2)
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

#ifndef NVME_READONLY
static u32 flush(void)
{
    struct sqe c;
    zero_cmd(&c, 0x00);
    c.nsid = 1;
    return run(&ioq, &c);
}
#endif

/* PRPs for XFER bytes at buf + 0x200: PRP1 is the partial first page, the
 * first list page (at list0's last 3 slots) holds two data pages and a
 * pointer to the second list page (list1), which holds the rest. */
#ifndef NVME_READONLY
static u64 build_prps(u8 *buf, u64 *list0, u64 *list1)
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
#endif

#ifdef NVME_MSIX
static volatile u64 irqs[2];

static void on_msix(struct pc_frame *frame)
{
    u64 v = frame->vector - MSIX_VECTOR_BASE;
    if (v < 2)
        irqs[v]++;
    mmio_write32(LAPIC + 0xB0, 0);
}
#endif

static u8 find_controller(void)
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

static u64 read_bar(u8 slot, u8 func, u8 index)
{
    u32 lo = pci_read32(0, slot, func, (u8)(0x10 + 4 * index));
    u64 addr = lo & ~0xFULL;
    if ((lo & 0x6) == 0x4)
        addr |= (u64)pci_read32(0, slot, func, (u8)(0x14 + 4 * index)) << 32;
    return addr;
}

#ifdef NVME_MSIX
static void setup_msix(u8 slot, u8 func)
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
#endif

static void bring_up(void)
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

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    serial_puts("nvme-driver: start\n");
    u8 dev = find_controller();
    u8 slot = dev >> 3, func = dev & 7;
    bar = read_bar(slot, func, 0);
    if (bar == 0 || bar >= (1ULL << 32)) {
        pci_write32(0, slot, func, 0x10, (u32)NVME_BAR_DEFAULT);
        pci_write32(0, slot, func, 0x14, 0);
        bar = NVME_BAR_DEFAULT;
    }
    u16 command = pci_read16(0, slot, func, 0x04) | 0x6;
#ifdef NVME_MSIX
    command |= 0x400; /* INTx off: MSI-X only */
#endif
    pci_write16(0, slot, func, 0x04, command);

#ifdef NVME_MSIX
    /* Before CC.EN, as Linux does: QEMU binds the admin CQ's vector when
     * the controller is enabled. */
    setup_msix(slot, func);
#endif
    bring_up();

    /* 3. Identify. */
    u32 s = admin_cmd(0x06, 0, (u64)ident, 1, 0);
    if (s)
        fail(3, "identify controller", s);
    if (ident[512] != 0x66 || ident[513] != 0x44 || le32(ident + 516) < 1)
        fail(3, "identify controller fields", le32(ident + 512));
    s = admin_cmd(0x06, 1, (u64)ident, 0, 0);
    if (s)
        fail(3, "identify namespace", s);
    u64 blocks = le64(ident);
    u32 lba = 1U << ident[128 + 4 * (ident[26] & 0xF) + 2];
    u8 nsattr = ident[99];
    if (blocks < 256 || (lba != 512 && lba != 4096))
        fail(3, "namespace geometry", blocks);
    s = admin_cmd(0x06, 0, (u64)ident, 2, 0);
    if (s || le32(ident) != 1)
        fail(3, "active namespace list", s ? s : le32(ident));
    serial_puts("nvme-driver: identify ok, namespace 1 has ");
    serial_put_dec(blocks);
    serial_puts(" blocks of ");
    serial_put_dec(lba);
    serial_puts(" bytes\n");

    /* 4. Queues. */
    s = admin_cmd(0x09, 0, 0, 0x07, 0);
    if (s)
        fail(4, "set features: number of queues", s);
#ifdef NVME_MSIX
    u32 cq_flags = 1 | 2 | (1U << 16); /* contiguous, interrupts, vector 1 */
#else
    u32 cq_flags = 1; /* contiguous, polled */
#endif
    s = admin_cmd(0x05, 0, (u64)io_cq, 1 | ((QUEUE_ENTRIES - 1) << 16), cq_flags);
    if (s)
        fail(4, "create I/O CQ", s);
    s = admin_cmd(0x01, 0, (u64)io_sq, 1 | ((QUEUE_ENTRIES - 1) << 16), 1 | (1U << 16));
    if (s)
        fail(4, "create I/O SQ", s);
    serial_puts("nvme-driver: queue pair 1 of 256 entries\n");

    /* 5. The host's pattern. */
    s = rw(0x02, 0, 1, (u64)rbuf, 0);
    if (s || memcmp(rbuf, "ATLAS-HOST-PATTERN", 18) != 0)
        fail(5, "host pattern at LBA 0", s ? s : rbuf[0]);
    serial_puts("nvme-driver: host pattern ok\n");

#ifndef NVME_READONLY
    u32 nblocks = XFER / lba;
    /* 6. Write across a chained PRP list, flush, read back. */
    if (nsattr & 1)
        fail(6, "namespace unexpectedly write protected", nsattr);
    for (u32 i = 0; i < XFER; i++)
        wbuf[0x200 + i] = (u8)((i / 512) * 7 + (i % 251));
    u64 wlist = build_prps(wbuf, lists[0], lists[1]);
    s = rw(0x01, 64, nblocks, (u64)wbuf + 0x200, wlist);
    if (s)
        fail(6, "write through a chained PRP list", s);
    s = flush();
    if (s)
        fail(6, "flush", s);
    memset(rbuf, 0, sizeof(rbuf));
    u64 rlist = build_prps(rbuf, lists[2], lists[3]);
    s = rw(0x02, 64, nblocks, (u64)rbuf + 0x200, rlist);
    if (s)
        fail(6, "read through a chained PRP list", s);
    if (memcmp(rbuf + 0x200, wbuf + 0x200, XFER) != 0)
        fail(6, "data read back differs", 0);
    serial_puts("nvme-driver: wrote, flushed and read back 64 KiB across a chained PRP list\n");
#else
    s = rw(0x01, 64, 1, (u64)wbuf, 0);
    serial_puts("nvme-driver: read-only write status ");
    serial_put_hex(s);
    serial_puts(" nsattr ");
    serial_put_hex(nsattr);
    serial_puts("\n");
    if (!(nsattr & 1))
        fail(6, "namespace not reported write protected", nsattr);
    if (s != 0x20)
        fail(6, "write to a read-only namespace", s);
    serial_puts("nvme-driver: read-only status ok\n");
#endif

    /* 7. Out of range. */
    s = rw(0x02, blocks, 1, (u64)rbuf, 0);
    if (s != 0x80)
        fail(7, "read past the end", s);
    s = rw(0x02, blocks - 1, 2, (u64)rbuf, (u64)rbuf + PAGE);
    if (s != 0x80)
        fail(7, "read straddling the end", s);
    serial_puts("nvme-driver: out-of-range status ok\n");

#ifndef NVME_READONLY
    /* 8. The run counter at LBA 1. */
    s = rw(0x02, 1, 1, (u64)rbuf, 0);
    if (s)
        fail(8, "read LBA 1", s);
    u64 runs = 0;
    if (memcmp(rbuf, "ATLAS-RUN-", 10) == 0)
        for (u32 i = 10; i < 30 && rbuf[i] >= '0' && rbuf[i] <= '9'; i++)
            runs = runs * 10 + (rbuf[i] - '0');
    runs++;
    memset(wbuf, 0, lba);
    memcpy(wbuf, "ATLAS-RUN-", 10);
    char digits[20];
    int n = 0;
    for (u64 v = runs; v && n < 20; v /= 10)
        digits[n++] = (char)('0' + v % 10);
    for (int i = 0; i < n; i++)
        wbuf[10 + i] = (u8)digits[n - 1 - i];
    wbuf[10 + n] = '\n';
    if ((s = rw(0x01, 1, 1, (u64)wbuf, 0)) || (s = flush()))
        fail(8, "write and flush LBA 1", s);
    serial_puts("nvme-driver: run ");
    serial_put_dec(runs);
    serial_puts("\n");
#endif

#ifdef NVME_MSIX
    for (u64 i = 0; (irqs[0] == 0 || irqs[1] == 0) && i < SPIN_LIMIT / 20; i++)
        __asm__ volatile("pause");
    if (irqs[0] == 0 || irqs[1] == 0)
        fail(9, "MSI-X interrupts (admin, I/O)", irqs[0] << 32 | irqs[1]);
    pc_cli();
    serial_puts("nvme-driver: msi-x vectors 0 and 1 ok\n");
#endif
    /* Normal shutdown. */
    wreg32(0x14, reg32(0x14) | (1 << 14));
    for (u64 i = 0; (reg32(0x1C) & 0xC) != 0x8; i++)
        if (i > SPIN_LIMIT / 1000)
            fail(9, "shutdown did not complete", reg32(0x1C));
    serial_puts("nvme-driver: ok\n");
    pc_exit(0);
}
