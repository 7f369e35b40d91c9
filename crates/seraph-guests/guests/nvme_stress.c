/*
 * NVME_HOSTILE and NVME_STREAM: the Atlas disk under stress (seraph-v
 * only: the statuses are seraph-nvme's, the stream is killed by its test).
 *
 * Default build (hostile), COM1 lines "nvme-hostile: ...":
 *  1. bring-up (polled), Identify Namespace;
 *  2. bad queues: ids 0 and 200, one entry, a base beyond RAM, a base with
 *     an offset, an SQ on a missing CQ, deletes of queue 0 and of a queue
 *     that does not exist: each its own status;
 *  3. doorbells of queues that do not exist and an SQ tail past the end:
 *     ignored, I/O still works;
 *  4. bad PRPs: data beyond RAM, PRP1 and PRP2 offsets, a PRP list beyond
 *     RAM, a list entry beyond RAM;
 *  5. a queue pair of 65536 entries with 65535 reads submitted by one
 *     doorbell write, collected while reading CSTS (the controller works
 *     in bounded batches);
 *  6. a guest that never reads completions: a 2-entry CQ takes one, the
 *     rest wait, the admin queue still answers;
 *  7. "nvme-hostile: ok", exit 0 (with completions left unread).
 *
 * -DNVME_BENCH: 4 KiB random reads and sequential writes at queue depth
 * 1 (polled), NVME_BENCH_OPS of each (default 20000); prints
 * "nvme-bench: <kind> <ops> ops <tsc cycles> cycles" (compare VMMs on one
 * host by cycles per op), flushes, exit 0.
 *
 * -DNVME_STREAM: writes LBA 256 + i holding "ATLAS-STREAM-" and i in hex
 * (the rest of the block the byte i), flushes, prints
 * "nvme-stream: flushed <i>", for i = 0, 1, ... until the disk ends
 * ("nvme-stream: done", exit 0). Its test kills seraph-v mid-stream.
 */
#include "nvme_drv.h"

#define BIG 65536
#define BEYOND_RAM 0x4000000000ULL /* 256 GiB */

static __attribute__((unused)) struct sqe big_sq[BIG] __attribute__((aligned(PAGE)));
static __attribute__((unused)) struct cqe big_cq[BIG] __attribute__((aligned(PAGE)));
static __attribute__((unused)) struct sqe small_sq[16] __attribute__((aligned(PAGE)));
static __attribute__((unused)) struct cqe small_cq[2] __attribute__((aligned(PAGE)));

static u64 blocks;
static u32 lba;

static void start(void)
{
    serial_init();
    u8 dev = find_controller();
    u8 slot = dev >> 3, func = dev & 7;
    bar = read_bar(slot, func, 0);
    if (bar == 0 || bar >= (1ULL << 32)) {
        pci_write32(0, slot, func, 0x10, (u32)NVME_BAR_DEFAULT);
        pci_write32(0, slot, func, 0x14, 0);
        bar = NVME_BAR_DEFAULT;
    }
    pci_write16(0, slot, func, 0x04, pci_read16(0, slot, func, 0x04) | 0x6);
    bring_up();
    u32 s = admin_cmd(0x06, 1, (u64)ident, 0, 0);
    if (s)
        fail(1, "identify namespace", s);
    blocks = le64(ident);
    lba = 1U << ident[128 + 4 * (ident[26] & 0xF) + 2];
    s = admin_cmd(0x05, 0, (u64)io_cq, 1 | ((QUEUE_ENTRIES - 1) << 16), 1);
    if (s || (s = admin_cmd(0x01, 0, (u64)io_sq, 1 | ((QUEUE_ENTRIES - 1) << 16), 1 | (1U << 16))))
        fail(1, "queue pair 1", s);
}

static inline void expect(u32 step, const char *what, u32 got, u32 want)
{
    if (got != want) {
        serial_puts("nvme-hostile: expected ");
        serial_put_hex(want);
        serial_puts("\n");
        fail(step, what, got);
    }
}

#if defined(NVME_BENCH)
#ifndef NVME_BENCH_OPS
#define NVME_BENCH_OPS 20000
#endif
static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
    return (u64)hi << 32 | lo;
}

static void report(const char *kind, u64 cycles)
{
    serial_puts("nvme-bench: ");
    serial_puts(kind);
    serial_puts(" ");
    serial_put_dec(NVME_BENCH_OPS);
    serial_puts(" ops ");
    serial_put_dec(cycles);
    serial_puts(" cycles\n");
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    start();
    u32 per = 4096 / lba;
    u64 units = blocks / per;
    u64 x = 0x2545F4914F6CDD1DULL;
    u64 t0 = rdtsc();
    for (u32 i = 0; i < NVME_BENCH_OPS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        u32 s = rw(0x02, (x % units) * per, per, (u64)rbuf, 0);
        if (s)
            fail(2, "random read", s);
    }
    report("randread-4k", rdtsc() - t0);
    memset(wbuf, 0x5A, 4096);
    t0 = rdtsc();
    for (u32 i = 0; i < NVME_BENCH_OPS; i++) {
        u32 s = rw(0x01, ((u64)i % units) * per, per, (u64)wbuf, 0);
        if (s)
            fail(3, "sequential write", s);
    }
    u32 s = flush();
    if (s)
        fail(3, "flush", s);
    report("seqwrite-4k", rdtsc() - t0);
    serial_puts("nvme-bench: ok\n");
    pc_exit(0);
}
#elif defined(NVME_STREAM)
void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    start();
    serial_puts("nvme-stream: start\n");
    for (u64 i = 0; 256 + i < blocks; i++) {
        memset(wbuf, (int)(i & 0xFF), lba);
        memcpy(wbuf, "ATLAS-STREAM-", 13);
        for (int d = 0; d < 16; d++)
            wbuf[13 + d] = (u8)"0123456789abcdef"[(i >> (60 - 4 * d)) & 0xF];
        u32 s = rw(0x01, 256 + i, 1, (u64)wbuf, 0);
        if (s || (s = flush()))
            fail(2, "stream write and flush", s);
        serial_puts("nvme-stream: flushed ");
        serial_put_dec(i);
        serial_puts("\n");
    }
    serial_puts("nvme-stream: done\n");
    pc_exit(0);
}
#else

static u32 create_cq(u32 qid, u32 entries, u64 base)
{
    return admin_cmd(0x05, 0, base, qid | ((entries - 1) << 16), 1);
}

static u32 create_sq(u32 qid, u32 entries, u64 base, u32 cqid)
{
    return admin_cmd(0x01, 0, base, qid | ((entries - 1) << 16), 1 | (cqid << 16));
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    start();
    serial_puts("nvme-hostile: start\n");

    /* 2. Bad queues. */
    expect(2, "CQ id 0", create_cq(0, 16, (u64)small_sq), 0x101);
    expect(2, "CQ id 200", create_cq(200, 16, (u64)small_sq), 0x101);
    expect(2, "CQ of one entry", create_cq(2, 1, (u64)small_sq), 0x102);
    expect(2, "CQ beyond RAM", create_cq(2, 16, BEYOND_RAM), 0x004);
    expect(2, "CQ base with an offset", create_cq(2, 16, (u64)small_sq + 0x40), 0x013);
    expect(2, "SQ on a missing CQ", create_sq(2, 16, (u64)small_sq, 9), 0x100);
    expect(2, "delete SQ 0", admin_cmd(0x00, 0, 0, 0, 0), 0x101);
    expect(2, "delete missing CQ", admin_cmd(0x04, 0, 0, 7, 0), 0x101);
    expect(2, "delete CQ 1 under SQ 1", admin_cmd(0x04, 0, 0, 1, 0), 0x10C);
    serial_puts("nvme-hostile: bad queues refused\n");

    /* 3. Doorbells of missing queues, a tail past the end. */
    for (u16 q = 2; q < 64; q++) {
        ring((u16)(2 * q), 5);
        ring((u16)(2 * q + 1), 5);
    }
    ring(2, 1000);
    ring(3, 1000);
    expect(3, "read after bad doorbells", rw(0x02, 0, 1, (u64)rbuf, 0), 0);
    serial_puts("nvme-hostile: bad doorbells ignored\n");

    /* 4. Bad PRPs. */
    expect(4, "data beyond RAM", rw(0x02, 0, 1, BEYOND_RAM, 0), 0x004);
    expect(4, "PRP1 offset", rw(0x02, 0, 1, (u64)rbuf + 1, 0), 0x013);
    expect(4, "PRP2 offset", rw(0x02, 0, 8192 / lba, (u64)rbuf, (u64)rbuf + PAGE + 8), 0x013);
    expect(4, "PRP list beyond RAM", rw(0x02, 0, 16384 / lba, (u64)rbuf, BEYOND_RAM), 0x004);
    lists[0][0] = (u64)rbuf + PAGE;
    lists[0][1] = BEYOND_RAM;
    lists[0][2] = (u64)rbuf + 3 * PAGE;
    expect(4, "list entry beyond RAM", rw(0x02, 0, 16384 / lba, (u64)rbuf, (u64)lists[0]), 0x004);
    expect(4, "read after bad PRPs", rw(0x02, 0, 1, (u64)rbuf, 0), 0);
    serial_puts("nvme-hostile: bad PRPs refused\n");

    /* 5. 65536-entry queues, 65535 commands in one doorbell write. */
    u32 s = admin_cmd(0x05, 0, (u64)big_cq, 2 | ((BIG - 1) << 16), 1);
    if (s || (s = create_sq(2, BIG, (u64)big_sq, 2)))
        fail(5, "65536-entry queue pair", s);
    for (u32 i = 0; i < BIG - 1; i++) {
        struct sqe *c = &big_sq[i];
        zero_cmd(c, 0x02);
        c->cdw0 |= (i + 1) << 16;
        c->nsid = 1;
        c->prp1 = (u64)rbuf;
    }
    barrier();
    ring(4, BIG - 1);
    u32 seen = 0;
    for (u64 spins = 0; seen < BIG - 1; spins++) {
        volatile struct cqe *e = &big_cq[seen];
        if ((e->status & 1) == 1) {
            if (e->cid != (u16)(seen + 1) || (e->status >> 1) != 0 || e->sq_id != 2)
                fail(5, "big queue completion", (u64)e->cid << 16 | e->status);
            seen++;
            continue;
        }
        if (spins > SPIN_LIMIT / 100)
            fail(5, "big queue stalled at", seen);
        (void)reg32(0x1C); /* a polling driver's register read */
    }
    ring(5, BIG - 1);
    expect(5, "delete SQ 2", admin_cmd(0x00, 0, 0, 2, 0), 0);
    expect(5, "delete CQ 2", admin_cmd(0x04, 0, 0, 2, 0), 0);
    serial_puts("nvme-hostile: 65535 commands through 65536-entry queues\n");

    /* 6. Never reading completions. */
    s = admin_cmd(0x05, 0, (u64)small_cq, 3 | (1U << 16), 1);
    if (s || (s = create_sq(3, 16, (u64)small_sq, 3)))
        fail(6, "2-entry CQ", s);
    for (u32 i = 0; i < 8; i++) {
        struct sqe *c = &small_sq[i];
        zero_cmd(c, 0x02);
        c->cdw0 |= (0x100 + i) << 16;
        c->nsid = 1;
        c->prp1 = (u64)rbuf;
    }
    barrier();
    ring(6, 8);
    for (u64 spins = 0; (small_cq[0].status & 1) == 0; spins++)
        if (spins > SPIN_LIMIT / 100)
            fail(6, "no first completion", 0);
    for (int i = 0; i < 1000; i++)
        (void)reg32(0x1C);
    if (small_cq[1].status & 1)
        fail(6, "a full CQ was overwritten", small_cq[1].cid);
    expect(6, "admin while an I/O CQ is full", admin_cmd(0x06, 0, (u64)ident, 1, 0), 0);
    serial_puts("nvme-hostile: a full CQ holds the rest back\n");

    serial_puts("nvme-hostile: ok\n");
    pc_exit(0);
}
#endif
