/*
 * AETHER_PAIR (polling) / AETHER_PAIR_IRQ (-DAETHER_IRQ=1): two guests
 * exchange Aether frames (EtherType 0x88B5) over e1000-compatible NICs.
 * The guest whose MAC ends in 00:01 sends AETHER_FRAMES numbered frames of
 * sizes 60-1514 and checks every byte of each echo; any other guest echoes
 * every frame back after checking every byte. Runs on Seraph-V's Aether
 * NIC and on QEMU's e1000 (PVH boot).
 *
 * Protocol (payload after the 14-byte header): "AETH", kind (0 hello,
 * 1 hello-ack, 2 data, 3 echo, 4 done), 0, seq (LE u32), length (LE u16),
 * then pattern bytes. The sender broadcasts hello until a hello-ack names
 * its peer, then sends each frame and waits for its echo, resending on a
 * timeout; finally it sends done.
 *
 * Lines: "aether-pair: mac <mac> sender|echo", then
 * "aether-pair: sender ok <n> frames" or "aether-pair: echo ok <n> frames"
 * (" resends <r>" if the sender resent any; IRQ variant: " irqs <k>"), exit 0. Failures:
 * "aether-pair: FAILED <what>", exit status 10-39.
 */
#include "aether_drv.h"

#ifndef AETHER_FRAMES
#define AETHER_FRAMES 1000
#endif
#ifndef AETHER_IRQ
#define AETHER_IRQ 0
#endif

#define TAG "aether-pair"
#define K_HELLO 0
#define K_HELLO_ACK 1
#define K_DATA 2
#define K_ECHO 3
#define K_DONE 4
/* Timeouts in TSC cycles (the TSC runs at 1-5 GHz). */
#define RESEND_CYCLES 200000000ULL
#define IDLE_LIMIT_CYCLES 60000000000ULL

static u8 tx[2048];
static u8 rx[2048];
static u8 peer[6];
static u32 total_resends;

static u32 frame_len(u32 seq) { return seq == 1 ? 1514 : 60 + (seq * 89) % 1455; }
static u8 pattern(u32 seq, u32 i) { return (u8)(seq * 7 + i * 13 + (i >> 8)); }

static void put_mac(const u8 *m)
{
    for (int i = 0; i < 6; i++) {
        serial_putc("0123456789abcdef"[m[i] >> 4]);
        serial_putc("0123456789abcdef"[m[i] & 15]);
        if (i < 5)
            serial_putc(':');
    }
}

/* Builds a frame of `len` bytes in tx. */
static void build(const u8 *dst, u8 kind, u32 seq, u32 len)
{
    memcpy(tx, dst, 6);
    memcpy(tx + 6, ae.mac, 6);
    tx[12] = 0x88;
    tx[13] = 0xB5;
    tx[14] = 'A';
    tx[15] = 'E';
    tx[16] = 'T';
    tx[17] = 'H';
    tx[18] = kind;
    tx[19] = 0;
    tx[20] = (u8)seq;
    tx[21] = (u8)(seq >> 8);
    tx[22] = (u8)(seq >> 16);
    tx[23] = (u8)(seq >> 24);
    tx[24] = (u8)len;
    tx[25] = (u8)(len >> 8);
    for (u32 i = 26; i < len; i++)
        tx[i] = pattern(seq, i);
}

static void send_or_fail(u32 len)
{
    if (ae_send(tx, len))
        ae_fail(TAG, 20, "transmit ring stays full");
}

/* Waits up to `cycles` for an Aether frame; returns its length or 0. */
static u32 receive(u64 cycles)
{
    u64 start = rdtsc();
    for (;;) {
        u32 n = ae_poll(rx, sizeof(rx));
        if (n == 0xFFFFFFFFU)
            ae_fail(TAG, 21, "frame without EOP");
        if (n >= 26 && rx[12] == 0x88 && rx[13] == 0xB5 && rx[14] == 'A' && rx[15] == 'E' &&
            rx[16] == 'T' && rx[17] == 'H')
            return n;
        if (rdtsc() - start > cycles)
            return 0;
        if (AETHER_IRQ && n == 0)
            ae_wait_irq();
    }
}

static u32 rx_seq(void) { return (u32)rx[20] | (u32)rx[21] << 8 | (u32)rx[22] << 16 | (u32)rx[23] << 24; }

/* Checks every byte of a received data/echo frame. */
static int frame_ok(u32 n, u8 kind, const u8 *dst, const u8 *src)
{
    u32 seq = rx_seq();
    u32 len = frame_len(seq);
    if (rx[18] != kind || n != len || ((u32)rx[24] | (u32)rx[25] << 8) != len)
        return 0;
    if (memcmp(rx, dst, 6) || memcmp(rx + 6, src, 6) || rx[19] != 0)
        return 0;
    for (u32 i = 26; i < len; i++) {
        if (rx[i] != pattern(seq, i))
            return 0;
    }
    return 1;
}

static void report(const char *what, u32 frames)
{
    serial_puts(TAG ": ");
    serial_puts(what);
    serial_puts(" ok ");
    serial_put_dec(frames);
    serial_puts(" frames");
    if (total_resends) {
        serial_puts(" resends ");
        serial_put_dec(total_resends);
    }
    if (AETHER_IRQ) {
        serial_puts(" irqs ");
        serial_put_dec(ae_irq_count);
        if (ae_irq_count == 0)
            ae_fail(TAG, 22, "no NIC interrupt arrived");
    }
    serial_puts("\n");
}

static void run_sender(void)
{
    static const u8 bcast[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    u32 tries = 0;
    for (;;) {
        build(bcast, K_HELLO, 0, 60);
        send_or_fail(60);
        u32 n = receive(RESEND_CYCLES);
        if (n && rx[18] == K_HELLO_ACK && !memcmp(rx, ae.mac, 6)) {
            memcpy(peer, rx + 6, 6);
            break;
        }
        if (++tries > 300)
            ae_fail(TAG, 23, "no echo guest answered hello");
    }
    for (u32 seq = 0; seq < AETHER_FRAMES; seq++) {
        u32 len = frame_len(seq);
        u32 resends = 0;
        build(peer, K_DATA, seq, len);
        send_or_fail(len);
        for (;;) {
            u32 n = receive(RESEND_CYCLES);
            if (n && rx[18] == K_ECHO && rx_seq() == seq) {
                if (!frame_ok(n, K_ECHO, ae.mac, peer))
                    ae_fail(TAG, 24, "echo differs from the frame sent");
                break;
            }
            if (n)
                continue; /* a late duplicate */
            if (++resends > 50)
                ae_fail(TAG, 25, "no echo after 50 resends");
            total_resends++;
            build(peer, K_DATA, seq, len);
            send_or_fail(len);
        }
    }
    for (int i = 0; i < 3; i++) {
        build(peer, K_DONE, AETHER_FRAMES, 60);
        send_or_fail(60);
    }
    report("sender", AETHER_FRAMES);
}

static void run_echo(void)
{
    u32 expected = 0;
    for (;;) {
        u32 n = receive(IDLE_LIMIT_CYCLES);
        if (n == 0)
            ae_fail(TAG, 30, "no frame for a long time");
        u8 kind = rx[18];
        if (kind == K_HELLO) {
            build(rx + 6, K_HELLO_ACK, 0, 60);
            send_or_fail(60);
        } else if (kind == K_DATA) {
            if (!frame_ok(n, K_DATA, ae.mac, rx + 6))
                ae_fail(TAG, 31, "data frame differs from its pattern");
            u32 seq = rx_seq();
            if (seq == expected)
                expected++;
            else if (seq + 1 != expected)
                ae_fail(TAG, 32, "data frame out of order");
            /* Echo: same bytes, addresses swapped, kind echo. */
            memcpy(tx, rx + 6, 6);
            memcpy(tx + 6, ae.mac, 6);
            memcpy(tx + 12, rx + 12, n - 12);
            tx[18] = K_ECHO;
            send_or_fail(n);
        } else if (kind == K_DONE) {
            if (expected != AETHER_FRAMES)
                ae_fail(TAG, 33, "done before every frame arrived");
            report("echo", expected);
            return;
        }
    }
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    ae_init(TAG);
    int sender = ae.mac[4] == 0 && ae.mac[5] == 1;
    serial_puts(TAG ": mac ");
    put_mac(ae.mac);
    serial_puts(sender ? " sender\n" : " echo\n");
    if (AETHER_IRQ)
        ae_irq_setup(TAG);
    if (sender)
        run_sender();
    else
        run_echo();
    pc_exit(0);
}
