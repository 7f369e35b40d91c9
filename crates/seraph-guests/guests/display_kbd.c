/*
 * DISPLAY_KBD: a guest for the live display test. It paints the screen in
 * four quadrants (red, green, blue, white on a 1024x768 BGRA framebuffer),
 * prints "display-kbd: ready", and takes PS/2 keyboard interrupts (IRQ1
 * through the PIC, translated scan code set 1). Each make code is printed
 * as "display-kbd: key 0xNN" and paints a 64x64 yellow square at the
 * screen's centre; Escape (0x01) exits with status 0.
 */
#include "pc.h"

#define FB 0xC0000000ULL
#define WIDTH 1024
#define HEIGHT 768

static volatile int done;

static void fill(u32 x0, u32 y0, u32 w, u32 h, u32 colour)
{
    u64 two = ((u64)colour << 32) | colour;
    for (u32 y = y0; y < y0 + h; y++) {
        volatile u64 *row = (volatile u64 *)(FB + ((u64)y * WIDTH + x0) * 4);
        for (u32 x = 0; x < w / 2; x++)
            row[x] = two;
    }
}

static void kbd_wait_write(void)
{
    for (int i = 0; i < 100000 && (inb(0x64) & 2); i++) {
    }
}

static void on_key(struct pc_frame *frame)
{
    (void)frame;
    while (inb(0x64) & 1) {
        u8 code = inb(0x60);
        if (code & 0x80)
            continue; /* a break code */
        serial_puts("display-kbd: key ");
        serial_put_hex(code);
        serial_puts("\n");
        fill(WIDTH / 2 - 32, HEIGHT / 2 - 32, 64, 64, 0x00FFFF00);
        if (code == 0x01)
            done = 1;
    }
    pic_eoi(1);
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    fill(0, 0, WIDTH / 2, HEIGHT / 2, 0x00FF0000);
    fill(WIDTH / 2, 0, WIDTH / 2, HEIGHT / 2, 0x0000FF00);
    fill(0, HEIGHT / 2, WIDTH / 2, HEIGHT / 2, 0x000000FF);
    fill(WIDTH / 2, HEIGHT / 2, WIDTH / 2, HEIGHT / 2, 0x00FFFFFF);
    pc_idt_install();
    pic_remap(0x20, 0x28);
    pc_set_handler(0x21, on_key);
    /* Controller: IRQ1 on, mouse off, translation on; keyboard scanning on. */
    kbd_wait_write();
    outb(0x64, 0x60);
    kbd_wait_write();
    outb(0x60, 0x61);
    kbd_wait_write();
    outb(0x60, 0xF4);
    while (inb(0x64) & 1)
        (void)inb(0x60); /* the ACK */
    pc_lapic_lint0_extint();
    pic_unmask(1);
    serial_puts("display-kbd: ready\n");
    while (!done)
        __asm__ volatile("sti; hlt; cli" : : : "memory");
    serial_puts("display-kbd: bye\n");
    pc_exit(0);
}
