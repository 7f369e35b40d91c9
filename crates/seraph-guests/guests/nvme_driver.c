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
#include "nvme_drv.h"

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
