/*
 * Helpers shared by the C guest kernels: integer types, port I/O, CPUID,
 * the hypercall doorbell and COM1 output. Everything is `static inline` so
 * each kernel only keeps what it uses (-Wunused-function stays quiet).
 */
#ifndef SERAPH_KERNEL_LIB_H
#define SERAPH_KERNEL_LIB_H

#include "seraph_abi.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

/* ---- port I/O, CPU registers, hypercalls ------------------------------ */

static inline void outb(u16 port, u8 value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline u8 inb(u16 port)
{
    u8 value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline u64 read_cr3(void)
{
    u64 value;
    __asm__ volatile("mov %%cr3, %0" : "=r"(value));
    return value;
}

static inline void cpuid(u32 leaf, u32 *eax, u32 *ebx, u32 *ecx, u32 *edx)
{
    u32 a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "0"(leaf), "2"(0));
    *eax = a;
    *ebx = b;
    *ecx = c;
    *edx = d;
}

/* RAX = nr, RDI/RSI/RDX/RCX = arguments, `out 0xE4, eax`, result in RAX. */
static inline i64 hypercall(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
    i64 ret;
    __asm__ volatile("outl %%eax, %[port]"
                     : "=a"(ret)
                     : "0"(nr), "D"(a0), "S"(a1), "d"(a2), "c"(a3),
                       [port] "i"(SERAPH_DOORBELL_PORT)
                     : "memory");
    return ret;
}

static inline i64 hc_print(const void *bytes, u64 len)
{
    return hypercall(SERAPH_HC_PRINT, (u64)bytes, len, 0, 0);
}

static inline u64 str_len(const char *s)
{
    u64 n = 0;
    while (s[n] != '\0')
        n++;
    return n;
}

/* ---- COM1 ------------------------------------------------------------- */

static inline void serial_init(void)
{
    outb(COM1_IER, 0x00);
    outb(COM1_LCR, 0x80); /* DLAB on */
    outb(COM1_DLL, 0x01); /* divisor 1: 115200 baud */
    outb(COM1_DLM, 0x00);
    outb(COM1_LCR, 0x03); /* 8N1, DLAB off */
    outb(COM1_FCR, 0xC7); /* FIFOs on and cleared */
    outb(COM1_MCR, 0x0B); /* DTR, RTS, OUT2 */
}

static inline void serial_putc(char c)
{
    for (u32 i = 0; i < COM1_POLL_LIMIT; i++) {
        if (inb(COM1_LSR) & COM1_LSR_THRE)
            break;
    }
    outb(COM1_THR, (u8)c);
}

static inline void serial_puts(const char *s)
{
    while (*s != '\0')
        serial_putc(*s++);
}

static inline void serial_put_dec(u64 value)
{
    char buf[21];
    int i = 20;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0 && i > 0);
    serial_puts(&buf[i]);
}

static inline void serial_put_hex(u64 value)
{
    serial_puts("0x");
    for (int shift = 60; shift >= 0; shift -= 4) {
        u32 nibble = (u32)((value >> shift) & 0xF);
        serial_putc((char)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10));
    }
}

#endif
