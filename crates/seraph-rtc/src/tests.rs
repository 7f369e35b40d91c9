//! Unit tests: fixed dates on a [`FakeClock`], interrupts through a
//! recording sink.

use std::sync::Arc;

use seraph_bus::BusDevice;
use seraph_clock::FakeClock;
use seraph_irq::IrqLine;
use seraph_irq::testing::RecordingSink;

use super::*;
use crate::calendar::days_from_civil;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// 2026-12-01 13:02:41.250 UTC (a Tuesday).
fn fixed_unix_ns() -> u64 {
    let secs = days_from_civil(2026, 12, 1) * 86_400 + 13 * 3600 + 2 * 60 + 41;
    secs as u64 * S + 250 * MS
}

struct Bench {
    clock: FakeClock,
    sink: Arc<RecordingSink>,
    rtc: Rtc<FakeClock>,
}

fn bench_at(unix_ns: u64) -> Bench {
    let clock = FakeClock::new();
    clock.set(5 * S); // the monotonic clock need not start at 0
    let sink = Arc::new(RecordingSink::default());
    let rtc = Rtc::new(
        clock.clone(),
        RtcConfig {
            unix_time_ns: unix_ns,
            ram_bytes: 512 << 20,
        },
        IrqLine::new(sink.clone(), RTC_IRQ),
    );
    Bench { clock, sink, rtc }
}

fn bench() -> Bench {
    bench_at(fixed_unix_ns())
}

impl Bench {
    /// Through the ports, as a guest does (with the NMI-mask bit set, ignored).
    fn read(&mut self, reg: u8) -> u8 {
        self.rtc.write(0, &[reg | 0x80]);
        let mut b = [0u8];
        self.rtc.read(1, &mut b);
        b[0]
    }
    fn write(&mut self, reg: u8, value: u8) {
        self.rtc.write(0, &[reg]);
        self.rtc.write(1, &[value]);
    }
    fn time(&mut self) -> [u8; 8] {
        [0x32, 9, 8, 7, 6, 4, 2, 0].map(|r| self.read(r))
    }
    fn line(&self) -> bool {
        self.sink.level(RTC_IRQ)
    }
}

#[test]
fn reads_a_fixed_date_in_bcd_24_hour_mode_by_default() {
    let mut b = bench();
    // century, year, month, day, weekday (Tuesday = 3), hour, minute, second.
    assert_eq!(b.time(), [0x20, 0x26, 0x12, 0x01, 0x03, 0x13, 0x02, 0x41]);
    assert_eq!(b.read(REG_A), 0x26);
    assert_eq!(b.read(REG_B), 0x02);
    assert_eq!(b.read(REG_D), 0x80);
    let mut port70 = [0u8];
    b.rtc.read(0, &mut port70);
    assert_eq!(port70, [0xFF]);
}

#[test]
fn binary_mode_and_12_hour_pm_bit() {
    let mut b = bench();
    b.write(REG_B, B_24H | B_BINARY);
    assert_eq!(b.time(), [20, 26, 12, 1, 3, 13, 2, 41]);
    b.write(REG_B, B_BINARY); // 12-hour, binary: 1 PM
    assert_eq!(b.read(HOURS), 0x81);
    b.write(REG_B, 0); // 12-hour, BCD
    assert_eq!(b.read(HOURS), 0x81);
    // Midnight and noon.
    b.write(REG_B, B_SET | B_24H);
    b.write(HOURS, 0x00);
    b.write(REG_B, B_SET);
    assert_eq!(b.read(HOURS), 0x12, "12 AM");
    b.write(HOURS, 0x92); // 12 PM written in 12-hour form
    b.write(REG_B, B_SET | B_24H);
    assert_eq!(b.read(HOURS), 0x12, "noon");
    b.write(REG_B, B_SET);
    b.write(HOURS, 0x87); // 7 PM
    b.write(REG_B, B_24H);
    assert_eq!(b.read(HOURS), 0x19);
}

#[test]
fn the_clock_ticks_once_a_second_with_uip_244_us_before_each_update() {
    let mut b = bench();
    // Created at .250 s into second 41: the update to 42 is 750 ms away.
    let update = 750 * MS;
    b.clock.advance(update - 245_000);
    assert_eq!(b.read(REG_A) & A_UIP, 0, "245 us before: no UIP");
    assert_eq!(b.read(SECONDS), 0x41);
    b.clock.advance(1_000);
    assert_eq!(b.read(REG_A) & A_UIP, A_UIP, "244 us before: UIP");
    b.clock.advance(243_999);
    assert_eq!(b.read(REG_A) & A_UIP, A_UIP, "1 ns before: UIP");
    assert_eq!(b.read(SECONDS), 0x41);
    b.clock.advance(1);
    assert_eq!(b.read(REG_A) & A_UIP, 0, "after the update");
    assert_eq!(b.read(SECONDS), 0x42);
    // Twenty minutes later: minutes carry.
    b.clock.advance(20 * 60 * S);
    assert_eq!(b.time(), [0x20, 0x26, 0x12, 0x01, 0x03, 0x13, 0x22, 0x42]);
    // Eleven hours later: the day and the weekday carry.
    b.clock.advance(11 * 3600 * S);
    assert_eq!(b.time(), [0x20, 0x26, 0x12, 0x02, 0x04, 0x00, 0x22, 0x42]);
    // UF is set by each update, AF by the (zeroed) alarm at midnight;
    // reading C clears them.
    assert_eq!(b.read(REG_C), C_UF | C_PF | C_AF);
    assert_eq!(b.read(REG_C), 0);
}

#[test]
fn set_stops_updates_and_the_guest_sets_the_time_field_by_field() {
    let mut b = bench();
    b.write(REG_B, B_SET | B_UIE | B_24H);
    assert_eq!(b.read(REG_B) & B_UIE, 0, "SET clears UIE");
    b.clock.advance(3 * S);
    assert_eq!(b.read(SECONDS), 0x41, "frozen while SET");
    assert_eq!(b.read(REG_A) & A_UIP, 0);
    // Month before day must not normalize (31 February) midway.
    b.write(DAY_OF_MONTH, 0x31);
    b.write(MONTH, 0x02);
    b.write(DAY_OF_MONTH, 0x28);
    b.write(YEAR, 0x99);
    b.write(0x32, 0x20);
    b.write(HOURS, 0x23);
    b.write(MINUTES, 0x59);
    b.write(SECONDS, 0x59);
    b.write(REG_B, B_24H);
    // The divider kept running: the next update is at the next whole second.
    b.clock.advance(S);
    assert_eq!(b.time()[..4], [0x20, 0x99, 0x03, 0x01]);
    assert_eq!(b.read(HOURS), 0x00);
}

#[test]
fn a_divider_reset_holds_the_clock_and_releasing_it_updates_500_ms_later() {
    let mut b = bench();
    b.write(REG_A, 0x66); // reset
    b.clock.advance(10 * S);
    assert_eq!(b.read(SECONDS), 0x41);
    b.write(REG_A, 0x26);
    b.clock.advance(500 * MS - 1);
    assert_eq!(b.read(SECONDS), 0x41);
    b.clock.advance(1);
    assert_eq!(b.read(SECONDS), 0x42);
}

#[test]
fn periodic_interrupts_come_at_the_rate_register_a_selects() {
    for (rs, per_second) in [
        (3u8, 8192u64),
        (6, 1024),
        (1, 256),
        (2, 128),
        (15, 2),
        (0xF, 2),
    ] {
        let mut b = bench();
        b.write(REG_A, 0x20 | rs);
        b.write(REG_B, B_24H | B_PIE);
        let start = b.clock.now_ns();
        let mut taken = 0u64;
        while let Some(deadline) = b.rtc.next_deadline_ns() {
            if deadline > start + S {
                break;
            }
            b.clock.set(deadline);
            b.rtc.on_deadline(deadline);
            assert!(b.line(), "rs {rs}: IRQ8 raised at the deadline");
            assert!(
                b.rtc.next_deadline_ns().is_none(),
                "no deadline while unread"
            );
            assert_eq!(b.read(REG_C) & (C_IRQF | C_PF), C_IRQF | C_PF);
            assert!(!b.line(), "reading C lowers the line");
            taken += 1;
        }
        assert!(
            taken == per_second || taken + 1 == per_second,
            "rs {rs}: {taken} interrupts in 1 s"
        );
    }
    // Rate 0: no periodic interrupt, and none without PIE.
    let mut b = bench();
    b.write(REG_A, 0x20);
    b.write(REG_B, B_24H | B_PIE);
    assert_eq!(b.rtc.next_deadline_ns(), None);
    b.write(REG_A, 0x26);
    b.write(REG_B, B_24H);
    assert_eq!(b.rtc.next_deadline_ns(), None);
    // PF is still set without PIE, and enabling PIE then raises the line.
    b.clock.advance(2 * MS);
    b.write(REG_B, B_24H | B_PIE);
    assert!(b.line());
}

#[test]
fn the_alarm_fires_at_its_time_and_dont_care_values_match_everything() {
    let mut b = bench();
    b.write(SECONDS_ALARM, 0x45);
    b.write(MINUTES_ALARM, 0x02);
    b.write(HOURS_ALARM, 0x13);
    b.write(REG_B, B_24H | B_AIE);
    let mut fired_at = None;
    for _ in 0..10 {
        let deadline = b.rtc.next_deadline_ns().unwrap();
        b.clock.set(deadline);
        b.rtc.on_deadline(deadline);
        if b.line() {
            fired_at = Some(b.read(SECONDS));
            assert_eq!(b.read(REG_C), C_IRQF | C_AF | C_UF | C_PF);
            break;
        }
    }
    assert_eq!(fired_at, Some(0x45));
    // Hours and minutes "don't care": every minute at second 0x10.
    b.write(MINUTES_ALARM, 0xC0);
    b.write(HOURS_ALARM, 0xFF);
    b.write(SECONDS_ALARM, 0x10);
    b.clock.advance(60 * S);
    assert_eq!(
        b.read(REG_C) & C_AF,
        C_AF,
        "passed second 0x10 within the minute"
    );
    // An alarm that can never match (minute 0x77) never fires.
    b.write(MINUTES_ALARM, 0x77);
    b.clock.advance(2 * 86_400 * S);
    assert_eq!(b.read(REG_C) & C_AF, 0);
}

#[test]
fn update_ended_interrupts_once_a_second() {
    let mut b = bench();
    b.write(REG_B, B_24H | B_UIE);
    let first = b.rtc.next_deadline_ns().unwrap();
    assert_eq!(first, 5 * S + 750 * MS);
    b.clock.set(first);
    b.rtc.on_deadline(first);
    assert!(b.line());
    assert_eq!(b.read(REG_C) & (C_IRQF | C_UF), C_IRQF | C_UF);
    assert_eq!(b.rtc.next_deadline_ns(), Some(first + S));
    assert_eq!(b.sink.rising_edges(RTC_IRQ), 1);
}

#[test]
fn cmos_memory_bytes_and_nvram() {
    let mut b = bench();
    assert_eq!((b.read(0x15), b.read(0x16)), (0x80, 0x02)); // 640 KiB
    assert_eq!((b.read(0x17), b.read(0x18)), (0xFF, 0xFF));
    assert_eq!((b.read(0x30), b.read(0x31)), (0xFF, 0xFF));
    assert_eq!((b.read(0x34), b.read(0x35)), (0x00, 0x1F)); // 7936 x 64 KiB
    assert_eq!(b.read(0x14), cmos::EQUIPMENT);
    for reg in 0x0E..0x80u8 {
        if usize::from(reg) == CENTURY {
            continue;
        }
        b.write(reg, reg ^ 0x5A);
        assert_eq!(b.read(reg), reg ^ 0x5A, "NVRAM {reg:#x}");
    }
    // Register D is read-only, C cannot be written.
    b.write(REG_D, 0);
    assert_eq!(b.read(REG_D), 0x80);
    b.write(REG_C, 0xFF);
    assert_eq!(b.read(REG_C) & C_IRQF, 0);
}

#[test]
fn garbage_never_panics() {
    let mut b = bench_at(u64::MAX);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let [op, reg, value, step, width, ..] = x.to_le_bytes();
        match op % 4 {
            0 => b.write(reg, value),
            1 => {
                let _ = b.read(reg);
            }
            2 => {
                let mut buf = vec![0u8; usize::from(width % 5)];
                b.rtc.read(u64::from(step % 4), &mut buf);
                b.rtc.write(u64::from(width % 4), &buf);
            }
            _ => {
                b.clock.advance(u64::from(step) << (value % 40));
                if let Some(d) = b.rtc.next_deadline_ns() {
                    b.rtc.on_deadline(d);
                }
            }
        }
    }
    b.clock.set(u64::MAX);
    let _ = b.time();
    let _ = b.rtc.next_deadline_ns();
    let _ = bench_at(0).time();
}
