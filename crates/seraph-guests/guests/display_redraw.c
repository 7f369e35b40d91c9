/*
 * DISPLAY_REDRAW: the guest of the benchmark's display row (seraph-v-bench
 * measurement 10, issue #11). It prints "display-redraw: ready", then reads
 * a decimal frame count ended by '\n' from COM1 (sleeping in HLT between
 * bytes, woken by COM1's receive interrupt through the PIC, so waiting for
 * the bench to connect a viewer costs no exits), redraws the whole 1024x768 BGRA framebuffer
 * that many times (each frame one colour, two colours in turn), prints
 * "display-redraw: <n> frames <cycles> cycles" (TSC cycles of the redraw
 * loop) and exits 0. Runs on seraph-v; the loop's time is what a live
 * display's dirty tracking costs the guest.
 */
#include "pc.h"

#define COM1 0x3F8
#define FB 0xC0000000ULL
#define WIDTH 1024
#define HEIGHT 768

static inline u64 tsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

static void on_com1(struct pc_frame *frame)
{
    (void)frame;
    pic_eoi(4);
}

/* Sleeps until COM1 has a byte (IRQ4 wakes the HLT), then reads it. */
static u8 read_byte(void)
{
    for (;;) {
        __asm__ volatile("cli" : : : "memory");
        if (inb(COM1_LSR) & 1)
            return inb(COM1_THR); /* RBR shares the THR port */
        __asm__ volatile("sti; hlt; cli" : : : "memory");
    }
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    pc_idt_install();
    pic_remap(0x20, 0x28);
    pc_set_handler(0x24, on_com1);
    outb(COM1 + 4, 0x0B); /* DTR, RTS, OUT2 */
    outb(COM1 + 1, 0x01); /* receive data available */
    pc_lapic_lint0_extint();
    pic_unmask(4);
    serial_puts("display-redraw: ready\n");
    u64 frames = 0;
    for (;;) {
        u8 c = read_byte();
        if (c == '\n')
            break;
        if (c >= '0' && c <= '9' && frames < 1000000)
            frames = frames * 10 + (u64)(c - '0');
    }
    u64 start = tsc();
    for (u64 f = 0; f < frames; f++) {
        u64 colour = (f & 1) ? 0x00FF8000ULL : 0x000080FFULL;
        u64 two = (colour << 32) | colour;
        volatile u64 *p = (volatile u64 *)FB;
        for (u32 i = 0; i < WIDTH * HEIGHT / 2; i++)
            p[i] = two;
    }
    u64 cycles = tsc() - start;
    serial_puts("display-redraw: ");
    serial_put_dec(frames);
    serial_puts(" frames ");
    serial_put_dec(cycles);
    serial_puts(" cycles\n");
    pc_exit(0);
}
