/*
 * UNDELIVERABLE_*: timer deadlines whose interrupts can never reach the
 * CPU must neither kick the vCPU nor keep a halted guest awake (issue #14
 * item 3), and CR8 must be the LAPIC's TPR (item 9). One source, built
 * once per VARIANT:
 *
 *  1 LAPIC periodic timer with an illegal vector (5): 2M loop iterations
 *    (no kicks expected), then `sti; hlt` -> idle, nothing can wake it.
 *  2 PIT channel 0 periodic, PIC never initialised: `sti; hlt` -> idle.
 *  3 PIC initialised, IRQ0 unmasked, PIT periodic; the handler never EOIs:
 *    after the first tick, `sti; hlt` -> idle, last vector 0x20.
 *  4 CR8 = 15 blocks a LAPIC timer at vector 0x20; the LAPIC TPR reads
 *    0xF0; writing TPR 0 through MMIO makes CR8 read 0 and lets the timer
 *    in; then EXIT 0 from the handler. Failures exit with a step number.
 */
#include "pc.h"

#ifndef VARIANT
#error "VARIANT must be defined"
#endif

#define LAPIC PC_LAPIC_BASE
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xB0
#define LAPIC_SVR 0xF0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3E0

static volatile u32 ticks;

static __attribute__((noreturn, unused)) void fail(u32 step, const char *what)
{
    serial_puts("undeliverable: FAILED ");
    serial_puts(what);
    serial_puts("\n");
    pc_exit(step);
}

static __attribute__((unused)) void lapic_periodic(u8 vector)
{
    mmio_write32(LAPIC + LAPIC_SVR, 0x1FF); /* software enable, spurious 0xFF */
    mmio_write32(LAPIC + LAPIC_TIMER_DIV, 0x3); /* divide by 16 */
    mmio_write32(LAPIC + LAPIC_LVT_TIMER, (1u << 17) | vector);
    mmio_write32(LAPIC + LAPIC_TIMER_INIT, 100000);
}

static __attribute__((unused)) void pit_periodic(void)
{
    outb(0x43, 0x34); /* channel 0, lo/hi, mode 2 */
    outb(0x40, 0x00);
    outb(0x40, 0x10); /* 4096 counts: ~290 Hz */
}

static __attribute__((unused)) void tick_no_eoi(struct pc_frame *frame)
{
    (void)frame;
    ticks++;
}

static __attribute__((unused)) void tick_exit(struct pc_frame *frame)
{
    (void)frame;
    u64 cr8;
    __asm__ volatile("mov %%cr8, %0" : "=r"(cr8));
    serial_puts("undeliverable: timer in with cr8 ");
    serial_put_dec(cr8);
    serial_puts("\n");
    mmio_write32(LAPIC + LAPIC_EOI, 0);
    pc_exit(0);
}

static __attribute__((noreturn, unused)) void idle(void)
{
    serial_puts("undeliverable: halting\n");
    for (;;)
        __asm__ volatile("sti; hlt" : : : "memory");
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    pc_idt_install();
#if VARIANT == 1
    lapic_periodic(5);
    for (volatile u32 i = 0; i < 2000000; i++) {
    }
    idle();
#elif VARIANT == 2
    pit_periodic();
    idle();
#elif VARIANT == 3
    pic_remap(0x20, 0x28);
    pc_lapic_lint0_extint();
    pc_set_handler(0x20, tick_no_eoi);
    pic_unmask(0);
    pit_periodic();
    while (ticks == 0)
        __asm__ volatile("sti; hlt; cli" : : : "memory");
    idle();
#elif VARIANT == 4
    pc_set_handler(0x20, tick_exit);
    u64 cr8 = 15;
    __asm__ volatile("mov %0, %%cr8" : : "r"(cr8));
    lapic_periodic(0x20);
    __asm__ volatile("sti" : : : "memory");
    for (volatile u32 i = 0; i < 20000; i++) {
    }
    __asm__ volatile("cli" : : : "memory");
    if (mmio_read32(LAPIC + LAPIC_TPR) != 0xF0)
        fail(1, "LAPIC TPR does not follow CR8");
    mmio_write32(LAPIC + LAPIC_TPR, 0);
    __asm__ volatile("mov %%cr8, %0" : "=r"(cr8));
    if (cr8 != 0)
        fail(2, "CR8 does not follow the LAPIC TPR");
    serial_puts("undeliverable: tpr ok\n");
    for (;;)
        __asm__ volatile("sti; hlt" : : : "memory");
#endif
}
