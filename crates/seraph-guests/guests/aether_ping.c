/*
 * AETHER_PING: answers ARP and ICMP echo for the IPv4 address
 * 10.99.0.2 (AETHER_PING_IP) on an e1000-compatible NIC, polling. Writes
 * "aether-ping: mac <mac> ip 10.99.0.2", then one line per answer
 * ("aether-ping: arp reply", "aether-ping: echo reply <n>"), and after
 * AETHER_PING_REPLIES echo replies "aether-ping: ok" and exits 0. Frames
 * with a bad IPv4 header or ICMP checksum are ignored. Fails (exit 40)
 * after a long time without a frame.
 */
#include "aether_drv.h"

#ifndef AETHER_PING_REPLIES
#define AETHER_PING_REPLIES 3
#endif

#define TAG "aether-ping"
#define IDLE_LIMIT_CYCLES 300000000000ULL

static const u8 my_ip[4] = {10, 99, 0, 2};
static u8 rx[2048];
static u8 tx[2048];

static u16 be16(const u8 *p) { return (u16)((u16)p[0] << 8 | p[1]); }

/* Internet checksum of `len` bytes (big-endian words). */
static u16 inet_sum(const u8 *p, u32 len)
{
    u32 sum = 0;
    for (u32 i = 0; i + 1 < len; i += 2)
        sum += be16(p + i);
    if (len & 1)
        sum += (u32)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (u16)~sum;
}

static void send_or_fail(u32 len)
{
    if (len < 60) {
        memset(tx + len, 0, 60 - len);
        len = 60;
    }
    if (ae_send(tx, len))
        ae_fail(TAG, 41, "transmit ring stays full");
}

static void answer_arp(u32 n)
{
    const u8 *a = rx + 14;
    if (n < 42 || be16(a) != 1 || be16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 || be16(a + 6) != 1)
        return;
    if (memcmp(a + 24, my_ip, 4))
        return;
    memcpy(tx, a + 8, 6); /* to the requester */
    memcpy(tx + 6, ae.mac, 6);
    tx[12] = 0x08;
    tx[13] = 0x06;
    u8 *r = tx + 14;
    memcpy(r, a, 6); /* htype, ptype, hlen, plen */
    r[6] = 0;
    r[7] = 2; /* reply */
    memcpy(r + 8, ae.mac, 6);
    memcpy(r + 14, my_ip, 4);
    memcpy(r + 18, a + 8, 10); /* requester's MAC and IP */
    send_or_fail(42);
    serial_puts(TAG ": arp reply\n");
}

static int answer_icmp(u32 n)
{
    const u8 *ip = rx + 14;
    if (n < 34 || (ip[0] >> 4) != 4)
        return 0;
    u32 ihl = (u32)(ip[0] & 0xF) * 4;
    u32 total = be16(ip + 2);
    if (ihl < 20 || total < ihl + 8 || 14 + total > n || ip[9] != 1 || memcmp(ip + 16, my_ip, 4))
        return 0;
    if (inet_sum(ip, ihl) != 0)
        return 0;
    const u8 *icmp = ip + ihl;
    u32 icmp_len = total - ihl;
    if (icmp[0] != 8 || inet_sum(icmp, icmp_len) != 0)
        return 0;
    memcpy(tx, rx + 6, 6);
    memcpy(tx + 6, ae.mac, 6);
    tx[12] = 0x08;
    tx[13] = 0x00;
    u8 *rip = tx + 14;
    memcpy(rip, ip, ihl);
    memcpy(rip + 12, my_ip, 4);
    memcpy(rip + 16, ip + 12, 4);
    rip[8] = 64; /* TTL */
    rip[10] = 0;
    rip[11] = 0;
    u16 hs = inet_sum(rip, ihl);
    rip[10] = (u8)(hs >> 8);
    rip[11] = (u8)hs;
    u8 *ricmp = rip + ihl;
    memcpy(ricmp, icmp, icmp_len);
    ricmp[0] = 0; /* echo reply */
    ricmp[2] = 0;
    ricmp[3] = 0;
    u16 cs = inet_sum(ricmp, icmp_len);
    ricmp[2] = (u8)(cs >> 8);
    ricmp[3] = (u8)cs;
    send_or_fail(14 + total);
    return 1;
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    ae_init(TAG);
    serial_puts(TAG ": ip 10.99.0.2\n");
    u32 replies = 0;
    u64 last = rdtsc();
    while (replies < AETHER_PING_REPLIES) {
        u32 n = ae_poll(rx, sizeof(rx));
        if (n == 0 || n == 0xFFFFFFFFU) {
            if (rdtsc() - last > IDLE_LIMIT_CYCLES)
                ae_fail(TAG, 40, "no frame for a long time");
            __asm__ volatile("pause");
            continue;
        }
        last = rdtsc();
        if (n < 14)
            continue;
        u16 type = be16(rx + 12);
        if (type == 0x0806) {
            answer_arp(n);
        } else if (type == 0x0800 && answer_icmp(n)) {
            replies++;
            serial_puts(TAG ": echo reply ");
            serial_put_dec(replies);
            serial_puts("\n");
        }
    }
    serial_puts(TAG ": ok\n");
    pc_exit(0);
}
