/*
 * AETHER_HOSTILE: a hostile driver for Seraph-V's Aether NIC (not meant for
 * QEMU: it relies on the model stopping broken rings). After each abuse the
 * card is reset and brought up again through the normal driver path:
 *
 *  1. transmit ring base outside RAM, doorbell: TDH must stay 0;
 *  2. TDT past the end of a 32-entry ring: TDH stays 0;
 *  3. a buffer address outside RAM: TDH stays 0, nothing sent;
 *  4. five 4000-byte descriptors without EOP (a 20 000-byte frame): the
 *     ring stops at the descriptor that crossed 16 KiB (TDH = 4);
 *  5. receive ring base outside RAM while the peer keeps sending: no
 *     descriptor is written, RDH stays 0, and MPC (missed packets) moves;
 *  6. RDH past the end of the ring: the same;
 *  7. a clean bring-up receives a peer frame and sends one 60-byte Aether
 *     frame (kind 9) to broadcast.
 *
 * Lines: "aether-hostile: step <n> ok" per step, then "aether-hostile: ok",
 * exit 0; a failed check prints "aether-hostile: FAILED <what>" and exits
 * with 50 + step.
 */
#include "aether_drv.h"

#define TAG "aether-hostile"
#define E1000_MPC 0x4010
#define WAIT_CYCLES 3000000000ULL

static u8 frame[2048];

static void step_ok(u32 n)
{
    serial_puts(TAG ": step ");
    serial_put_dec(n);
    serial_puts(" ok\n");
}

static void check(int ok, u32 step, const char *what)
{
    if (!ok)
        ae_fail(TAG, 50 + step, what);
}

/* Link and STATUS still answer: the device is alive after the abuse. */
static void alive(u32 step) { check((ae_r(E1000_STATUS) & 2) != 0, step, "STATUS lost the link"); }

static void spin(u64 cycles)
{
    u64 start = rdtsc();
    while (rdtsc() - start < cycles)
        __asm__ volatile("pause");
}

/* Fills descriptor `i` with a buffer, a length and command bits. */
static void tx_desc(u32 i, u64 addr, u16 len, u8 cmd)
{
    ae_tx_ring[i].addr = addr;
    ae_tx_ring[i].length = len;
    ae_tx_ring[i].cmd = cmd;
    ae_tx_ring[i].status = 0;
}

/* Waits for the peer's frames with a broken receive ring: MPC must move. */
static void rx_broken(u32 step)
{
    u32 missed = 0;
    u64 start = rdtsc();
    while (missed == 0 && rdtsc() - start < 4 * WAIT_CYCLES)
        missed += ae_r(E1000_MPC);
    check(missed > 0, step, "MPC never counted a missed frame");
    for (u32 i = 0; i < AE_RING; i++)
        check(!(*(volatile u8 *)&ae_rx_ring[i].status & 1), step, "a descriptor was written");
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();

    ae_init(TAG);
    ae_w(E1000_TDBAH, 0xFFFF);
    tx_desc(0, (u64)ae_tx_bufs[0], 60, 0x09);
    ae_w(E1000_TDT, 1);
    check(ae_r(E1000_TDH) == 0, 1, "TDH moved on a ring outside RAM");
    alive(1);
    step_ok(1);

    ae_init(TAG);
    tx_desc(0, (u64)ae_tx_bufs[0], 60, 0x09);
    ae_w(E1000_TDT, 200);
    check(ae_r(E1000_TDH) == 0, 2, "TDH moved with TDT past the ring");
    alive(2);
    step_ok(2);

    ae_init(TAG);
    tx_desc(0, 0xFFFFFFFF00000000ULL, 1000, 0x09);
    ae_w(E1000_TDT, 1);
    check(ae_r(E1000_TDH) == 0, 3, "TDH moved past a buffer outside RAM");
    check(!(*(volatile u8 *)&ae_tx_ring[0].status & 1), 3, "DD written for a buffer outside RAM");
    alive(3);
    step_ok(3);

    ae_init(TAG);
    for (u32 i = 0; i < 5; i++)
        tx_desc(i, (u64)ae_tx_bufs[0], 4000, 0x08);
    ae_w(E1000_TDT, 5);
    check(ae_r(E1000_TDH) == 4, 4, "the ring did not stop at the 16 KiB limit");
    alive(4);
    step_ok(4);

    ae_init(TAG);
    (void)ae_r(E1000_MPC);
    ae_w(E1000_RDBAH, 0xFFFF);
    rx_broken(5);
    check(ae_r(E1000_RDH) == 0, 5, "RDH moved on a ring outside RAM");
    alive(5);
    step_ok(5);

    ae_init(TAG);
    (void)ae_r(E1000_MPC);
    ae_w(E1000_RDH, 100);
    rx_broken(6);
    alive(6);
    step_ok(6);

    ae_init(TAG);
    u32 n = 0;
    u64 start = rdtsc();
    while (n == 0 && rdtsc() - start < 4 * WAIT_CYCLES)
        n = ae_poll(frame, sizeof(frame));
    check(n != 0 && n != 0xFFFFFFFFU, 7, "no frame from the peer after a clean bring-up");
    memset(frame, 0, 60);
    memset(frame, 0xFF, 6);
    memcpy(frame + 6, ae.mac, 6);
    frame[12] = 0x88;
    frame[13] = 0xB5;
    memcpy(frame + 14, "AETH", 4);
    frame[18] = 9;
    check(ae_send(frame, 60) == 0, 7, "transmit ring stays full");
    spin(WAIT_CYCLES / 100);
    check(ae_r(E1000_TDH) == 1, 7, "the clean frame was not sent");
    step_ok(7);
    serial_puts(TAG ": ok\n");
    pc_exit(0);
}
