/*
 * RTC_PERIODIC: takes the RTC's periodic interrupt (IRQ8, through the slave
 * 8259, vectors remapped to 0x20/0x28) and counts it.
 *
 *  1. at 1024 Hz (register A 0x26): after a first interrupt, 64 more, each
 *     acknowledged by reading register C (PF and IRQF must be set) and
 *     EOIed; they must take at least 55 ms of GET_TIME (64 / 1024 s =
 *     62.5 ms) and at most 5 s;
 *  2. at 8 Hz (0x2D): after two interrupts (the first may still be a
 *     1024 Hz one), 4 more in at least 450 ms (500 ms nominal);
 *  3. PIE off: no interrupt for 50 ms.
 * Then "rtc-periodic: ok" and EXIT 0, or "rtc-periodic: FAILED <what>" and
 * EXIT with the step number.
 */
#include "pc.h"
#include "rtc_common.h"

#define GUEST "rtc-periodic"
#define RTC_VECTOR 0x28

static volatile u64 ticks;
static volatile u64 bad_flags;

static void on_rtc(struct pc_frame *frame)
{
    (void)frame;
    u8 c = cmos_read(RTC_REG_C);
    if ((c & 0xC0) != 0xC0)
        bad_flags++;
    ticks++;
    pic_eoi(8);
}

/* Sleeps in HLT until `count` more ticks arrived; returns the GET_TIME ns it took. */
static u64 take(u64 count, u32 step)
{
    u64 start = get_time_ns();
    u64 until = ticks + count;
    while (ticks < until) {
        __asm__ volatile("sti; hlt; cli" : : : "memory");
        if (get_time_ns() - start > 5000000000ULL)
            rtc_fail(GUEST, step, "interrupts too slow or missing");
    }
    return get_time_ns() - start;
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    serial_puts(GUEST ": hello\n");
    pc_idt_install();
    pc_set_handler(RTC_VECTOR, on_rtc);
    pic_remap(0x20, 0x28);
    pc_lapic_lint0_extint();
    pic_unmask(8);

    cmos_write(RTC_REG_A, 0x26);
    (void)cmos_read(RTC_REG_C);
    cmos_write(RTC_REG_B, (u8)(cmos_read(RTC_REG_B) | RTC_B_PIE));
    (void)take(1, 1); /* from a tick, not from an arbitrary phase */
    u64 took = take(64, 1);
    if (took < 55000000ULL)
        rtc_fail(GUEST, 1, "1024 Hz interrupts came too fast");
    serial_puts(GUEST ": 64 at 1024 Hz in ");
    serial_put_dec(took / 1000);
    serial_puts(" us\n");

    cmos_write(RTC_REG_A, 0x2D);
    /* The first may be a 1024 Hz tick still latched; the second is an 8 Hz one. */
    (void)take(1, 2);
    (void)take(1, 2);
    took = take(4, 2);
    if (took < 450000000ULL)
        rtc_fail(GUEST, 2, "8 Hz interrupts came too fast");
    serial_puts(GUEST ": 4 at 8 Hz in ");
    serial_put_dec(took / 1000);
    serial_puts(" us\n");
    if (bad_flags != 0)
        rtc_fail(GUEST, 2, "register C without PF and IRQF");

    cmos_write(RTC_REG_B, (u8)(cmos_read(RTC_REG_B) & ~RTC_B_PIE));
    (void)cmos_read(RTC_REG_C);
    u64 before = ticks;
    u64 start = get_time_ns();
    __asm__ volatile("sti" : : : "memory");
    while (get_time_ns() - start < 50000000ULL)
        ;
    __asm__ volatile("cli" : : : "memory");
    if (ticks != before)
        rtc_fail(GUEST, 3, "interrupt with PIE off");

    serial_puts(GUEST ": ok\n");
    pc_exit(0);
}
