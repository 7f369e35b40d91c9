/*
 * SERIAL_ECHO: typed input, interrupt-driven. COM1 with the receive
 * interrupt enabled (IER bit 0, MCR OUT2), IRQ4 unmasked at the PIC
 * (vectors 0x20/0x28); the guest sleeps in HLT with IF=1 and is woken by
 * COM1 receive interrupts. It echoes every byte it reads as "echo: <c>"
 * lines, counts wake-ups, and on 'q' prints "serial-echo: bye after N
 * interrupts" and exits 0. Line "serial-echo: ready" means "type now".
 */
#include "pc.h"

#define COM1 0x3F8

static volatile u32 interrupts;
static volatile int done;

static void on_com1(struct pc_frame *frame)
{
    (void)frame;
    interrupts++;
    while (inb(COM1 + 5) & 1) {
        u8 c = inb(COM1);
        serial_puts("echo: ");
        if (c >= 0x20 && c < 0x7F)
            serial_putc((char)c);
        else
            serial_put_hex(c);
        serial_puts("\n");
        if (c == 'q')
            done = 1;
    }
    pic_eoi(4);
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
    serial_puts("serial-echo: ready\n");
    while (!done)
        __asm__ volatile("sti; hlt; cli" : : : "memory");
    serial_puts("serial-echo: bye after ");
    serial_put_dec(interrupts);
    serial_puts(" interrupts\n");
    pc_exit(0);
}
