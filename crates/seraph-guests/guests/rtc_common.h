/*
 * CMOS RTC helpers shared by the RTC test guests (rtc_date.c,
 * rtc_periodic.c). Include after pc.h.
 */
#ifndef SERAPH_RTC_COMMON_H
#define SERAPH_RTC_COMMON_H

#define RTC_INDEX 0x70
#define RTC_DATA 0x71
#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define RTC_REG_C 0x0C
#define RTC_A_UIP 0x80
#define RTC_B_PIE 0x40
#define RTC_B_BINARY 0x04
#define RTC_B_24H 0x02

/* Reads CMOS register `reg`, with the NMI-mask bit set (seraph-v ignores it). */
static inline u8 cmos_read(u8 reg)
{
    outb(RTC_INDEX, (u8)(0x80 | reg));
    return inb(RTC_DATA);
}

static inline void cmos_write(u8 reg, u8 value)
{
    outb(RTC_INDEX, (u8)(0x80 | reg));
    outb(RTC_DATA, value);
}

/* GET_TIME: nanoseconds since the Unix epoch (the oracle clock). */
static inline u64 get_time_ns(void)
{
    u64 value = SERAPH_HC_GET_TIME;
    __asm__ volatile("outl %%eax, %[port]" : "+a"(value) : [port] "i"(SERAPH_DOORBELL_PORT) : "memory");
    return value;
}

static __attribute__((noreturn)) void rtc_fail(const char *guest, u32 step, const char *what)
{
    serial_puts(guest);
    serial_puts(": FAILED ");
    serial_puts(what);
    serial_puts("\n");
    pc_exit(step);
}

#endif
