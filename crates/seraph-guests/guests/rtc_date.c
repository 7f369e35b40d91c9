/*
 * RTC_DATE: reads the date from the CMOS RTC as a PC kernel does and
 * compares it with GET_TIME (the oracle clock the RTC is backed by).
 *
 *  1. The update-in-progress flag: register A's UIP is seen set (within
 *     10 s of GET_TIME: the flag lasts 244 us a second, and a busy host may
 *     deschedule the vCPU across a few of those), then clear within 100 ms,
 *     and the seconds register has moved on by then (the update happens as
 *     UIP falls);
 *  2. BCD, 24-hour (register B 0x02): the date read after waiting for UIP
 *     clear (read twice until both agree) is within 2 s of GET_TIME;
 *  3. binary, 24-hour (0x06): the same;
 *  4. BCD, 12-hour (0x00): the same, the hour from its PM bit;
 *  5. the century byte (0x32) matches the year's century.
 * Each step writes a COM1 line; then "rtc-date: ok" and EXIT 0, or
 * "rtc-date: FAILED <what>" and EXIT with the step number.
 */
#include "pc.h"
#include "rtc_common.h"

#define GUEST "rtc-date"

struct rtc_date {
    u8 sec, min, hour, day, month, year, century;
};

static void read_raw(struct rtc_date *d)
{
    d->sec = cmos_read(0x00);
    d->min = cmos_read(0x02);
    d->hour = cmos_read(0x04);
    d->day = cmos_read(0x07);
    d->month = cmos_read(0x08);
    d->year = cmos_read(0x09);
    d->century = cmos_read(0x32);
}

/* Waits (bounded) for UIP clear, then reads until two reads agree. */
static void read_stable(struct rtc_date *d)
{
    struct rtc_date again;
    for (int tries = 0; tries < 1000; tries++) {
        for (u32 i = 0; i < 10000000 && (cmos_read(RTC_REG_A) & RTC_A_UIP); i++)
            ;
        read_raw(d);
        read_raw(&again);
        if (memcmp(d, &again, sizeof again) == 0)
            return;
    }
    rtc_fail(GUEST, 9, "no stable read");
}

static u32 from_bcd(u8 b) { return (u32)(b >> 4) * 10 + (b & 0xF); }

/* Days from 1970-01-01 (proleptic Gregorian, March-based year). */
static i64 days_from_civil(i64 y, u32 m, u32 d)
{
    if (m <= 2)
        y -= 1;
    i64 era = (y >= 0 ? y : y - 399) / 400;
    i64 yoe = y - era * 400;
    i64 mp = m > 2 ? m - 3 : m + 9;
    i64 doy = (153 * mp + 2) / 5 + d - 1;
    i64 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* A register byte as binary, in the data mode register B selects. */
static u32 dec(u8 x, int binary) { return binary ? x : from_bcd(x); }

/* The date in register B mode `b` as Unix seconds. */
static i64 to_unix(const struct rtc_date *r, u8 b, u32 step)
{
    int bin = (b & RTC_B_BINARY) != 0;
    u32 hour;
    if (b & RTC_B_24H) {
        hour = dec(r->hour, bin);
    } else {
        u32 h12 = dec(r->hour & 0x7F, bin);
        if (h12 < 1 || h12 > 12)
            rtc_fail(GUEST, step, "12-hour value out of range");
        hour = h12 % 12 + ((r->hour & 0x80) ? 12 : 0);
    }
    u32 year = dec(r->century, bin) * 100 + dec(r->year, bin);
    u32 month = dec(r->month, bin), day = dec(r->day, bin);
    u32 min = dec(r->min, bin), sec = dec(r->sec, bin);
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59)
        rtc_fail(GUEST, step, "field out of range");
    if (year < 2000 || year > 2999)
        rtc_fail(GUEST, 5, "century");
    return days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
}

static void check_mode(u8 b, u32 step, const char *name)
{
    cmos_write(RTC_REG_B, b);
    struct rtc_date r;
    read_stable(&r);
    i64 rtc = to_unix(&r, b, step);
    i64 oracle = (i64)(get_time_ns() / 1000000000ULL);
    i64 diff = rtc - oracle;
    serial_puts(GUEST ": ");
    serial_puts(name);
    serial_puts(" unix ");
    serial_put_dec((u64)rtc);
    serial_puts(" get_time ");
    serial_put_dec((u64)oracle);
    serial_puts("\n");
    if (diff > 2 || diff < -2)
        rtc_fail(GUEST, step, name);
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    serial_puts(GUEST ": hello\n");

    /* 1. UIP rises before an update and falls with it. */
    u64 start = get_time_ns();
    while (!(cmos_read(RTC_REG_A) & RTC_A_UIP)) {
        if (get_time_ns() - start > 10000000000ULL)
            rtc_fail(GUEST, 1, "UIP never set");
    }
    u64 rose = get_time_ns();
    u8 sec_before = cmos_read(0x00);
    while (cmos_read(RTC_REG_A) & RTC_A_UIP) {
        if (get_time_ns() - rose > 100000000ULL)
            rtc_fail(GUEST, 1, "UIP set for more than 100 ms");
    }
    u8 sec_after = cmos_read(0x00);
    if (sec_after == sec_before)
        rtc_fail(GUEST, 1, "no update as UIP fell");
    serial_puts(GUEST ": uip ok\n");

    check_mode(RTC_B_24H, 2, "bcd");
    check_mode(RTC_B_24H | RTC_B_BINARY, 3, "binary");
    check_mode(0, 4, "bcd 12-hour");
    cmos_write(RTC_REG_B, RTC_B_24H);

    serial_puts(GUEST ": ok\n");
    pc_exit(0);
}
