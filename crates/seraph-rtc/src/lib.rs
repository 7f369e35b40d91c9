//! An MC146818-compatible CMOS real-time clock backed by the oracle clock.
//!
//! The PC's RTC at ports 0x70 (index; bit 7, the NMI mask, is ignored) and
//! 0x71 (data), as a pure device model: time comes from a monotonic
//! [`Clock`] and a wall-clock start value given at construction (the VMM
//! passes the oracle clock's Unix time; tests pass fixed dates), interrupts
//! go out through an [`IrqLine`] (IRQ8 on a PC). Nothing here blocks,
//! spawns or panics on what a guest writes.
//!
//! What it models:
//! - seconds to year and the century (CMOS 0x32), in BCD or binary and in
//!   24- or 12-hour form (bit 7 of the hours = PM), as register B selects;
//! - the update cycle once per second, with the update-in-progress flag
//!   (register A bit 7) set for the 244 us before each update; register B's
//!   SET bit stops updates (and clears UIE) so the guest can set the time;
//!   register A's divider bits: 010 runs the clock, a reset (11x) holds it,
//!   and releasing the reset puts the first update 500 ms later;
//! - the periodic interrupt at the rate register A's RS bits select
//!   (8192 Hz to 2 Hz), the alarm (with "don't care" values 0xC0-0xFF) and
//!   the update-ended interrupt; register C (IRQF, PF, AF, UF) is cleared by
//!   reading it, which lowers the line. The flags are set whether or not
//!   their interrupt is enabled, as on the chip;
//! - the 128 bytes of CMOS memory, with the memory-size, equipment and
//!   checksum bytes a PC's firmware leaves ([`cmos`]); the rest is writable.
//!
//! Time is evaluated lazily at each access; [`Rtc::next_deadline_ns`] says
//! when the next interrupt is due (none while the line is already raised
//! and unread, or no interrupt is enabled), and [`Rtc::on_deadline`] brings
//! the device up to a time, so the VMM can sleep until then.

#![forbid(unsafe_code)]

mod calendar;
pub mod cmos;

use seraph_bus::BusDevice;
use seraph_clock::Clock;
use seraph_irq::IrqLine;

use crate::calendar::{Fields, SECS_PER_DAY, decode, decode_hour, encode, encode_hour};
use crate::cmos::{CENTURY, CMOS_SIZE};

/// The first of the RTC's two ports (index; 0x71 is data).
pub const RTC_PORT_BASE: u16 = 0x70;
/// The number of ports.
pub const RTC_PORT_LEN: u64 = 2;
/// The ISA interrupt line of the RTC on a PC (slave PIC input 0).
pub const RTC_IRQ: u32 = 8;
/// How long before each update the update-in-progress flag is set.
pub const UIP_LEAD_NS: u64 = 244_000;

const NS_PER_SEC: i128 = 1_000_000_000;
/// The time base the divider chain counts: 32.768 kHz.
const TIME_BASE_HZ: i128 = 32_768;

// Register numbers.
const SECONDS: u8 = 0x00;
const SECONDS_ALARM: u8 = 0x01;
const MINUTES: u8 = 0x02;
const MINUTES_ALARM: u8 = 0x03;
const HOURS: u8 = 0x04;
const HOURS_ALARM: u8 = 0x05;
const DAY_OF_WEEK: u8 = 0x06;
const DAY_OF_MONTH: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const REG_A: u8 = 0x0A;
const REG_B: u8 = 0x0B;
const REG_C: u8 = 0x0C;
const REG_D: u8 = 0x0D;

// Register A.
const A_UIP: u8 = 0x80;
const A_DIVIDER_SHIFT: u8 = 4;
const DIVIDER_RUN: u8 = 0b010;
// Register B.
const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;
// Register C.
const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
/// Register D: valid RAM and time (the battery is fine).
const D_VRT: u8 = 0x80;

/// What an RTC starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcConfig {
    /// Wall time at creation, nanoseconds since the Unix epoch (UTC); the
    /// VMM passes the oracle clock's `unix_time_ns()`.
    pub unix_time_ns: u64,
    /// Guest RAM in bytes, for the CMOS memory-size bytes.
    pub ram_bytes: u64,
}

/// The MC146818 model, on monotonic clock `C`.
#[derive(Debug)]
pub struct Rtc<C: Clock> {
    clock: C,
    irq: IrqLine,
    index: u8,
    cmos: [u8; CMOS_SIZE],
    fields: Fields,
    reg_a: u8,
    reg_b: u8,
    /// PF, AF, UF as set since register C was last read.
    flags: u8,
    line_high: bool,
    /// Whether the divider chain runs (register A's divider bits are 010).
    running: bool,
    /// Clock time (ns) at which a second of the divider chain began; the
    /// updates happen at `origin + n s`, the periodic ticks at
    /// `origin + m x period`.
    origin: i128,
    /// Updates `1..=updates_done` after `origin` are accounted for.
    updates_done: i128,
    /// Periodic ticks `1..=ticks_done` after `origin` are accounted for.
    ticks_done: i128,
}

impl<C: Clock> Rtc<C> {
    /// An RTC showing `config.unix_time_ns` now (UTC), in the state a PC's
    /// firmware leaves it: register A 0x26 (running, 1024 Hz periodic
    /// rate), B 0x02 (24-hour BCD, no interrupts), the CMOS memory bytes
    /// filled for `config.ram_bytes`.
    pub fn new(clock: C, config: RtcConfig, irq: IrqLine) -> Self {
        let now = i128::from(clock.now_ns());
        let unix = i128::from(config.unix_time_ns);
        let mut cmos = [0u8; CMOS_SIZE];
        cmos::fill_firmware_bytes(&mut cmos, config.ram_bytes);
        let secs = i64::try_from(unix / NS_PER_SEC).unwrap_or(i64::MAX);
        let mut rtc = Self {
            clock,
            irq,
            index: 0,
            cmos,
            fields: Fields::from_unix(secs),
            reg_a: 0x26,
            reg_b: B_24H,
            flags: 0,
            line_high: false,
            running: true,
            origin: now - unix % NS_PER_SEC,
            updates_done: 0,
            ticks_done: 0,
        };
        rtc.ticks_done = rtc.ticks_due(now);
        rtc
    }

    fn now(&self) -> i128 {
        i128::from(self.clock.now_ns())
    }

    /// log2 of the periodic interval in 1/32768 s, if a rate is selected.
    fn period_exponent(&self) -> Option<u32> {
        match self.reg_a & 0x0F {
            0 => None,
            1 => Some(7),
            2 => Some(8),
            rs => Some(u32::from(rs) - 1),
        }
    }

    /// Periodic ticks in `(origin, now]`.
    fn ticks_due(&self, now: i128) -> i128 {
        match self.period_exponent() {
            Some(e) => ((now - self.origin) * TIME_BASE_HZ).div_euclid(NS_PER_SEC << e),
            None => 0,
        }
    }

    /// Clock time of periodic tick `m` (rounded up to the nanosecond).
    fn tick_time(&self, m: i128, e: u32) -> i128 {
        self.origin + (m * (NS_PER_SEC << e) + TIME_BASE_HZ - 1).div_euclid(TIME_BASE_HZ)
    }

    /// Updates in `(origin, now]`.
    fn updates_due(&self, now: i128) -> i128 {
        (now - self.origin).div_euclid(NS_PER_SEC)
    }

    fn binary(&self) -> bool {
        self.reg_b & B_BINARY != 0
    }

    fn hours_24(&self) -> bool {
        self.reg_b & B_24H != 0
    }

    /// Brings the clock, the flags and the line up to `now`.
    fn sync(&mut self, now: i128) {
        if self.running {
            let ticks = self.ticks_due(now);
            if ticks > self.ticks_done {
                self.ticks_done = ticks;
                self.flags |= C_PF;
            }
            let updates = self.updates_due(now);
            if updates > self.updates_done {
                let passed = updates - self.updates_done;
                self.updates_done = updates;
                if self.reg_b & B_SET == 0 {
                    self.apply_updates(u64::try_from(passed).unwrap_or(u64::MAX));
                }
            }
        }
        self.drive_line();
    }

    /// `count` update cycles: the time moves on, UF is set, and AF if the
    /// alarm matched at any of them.
    fn apply_updates(&mut self, count: u64) {
        let start = self.fields.normalized();
        let tod = start.time_of_day();
        // A day's worth of seconds covers every time the alarm can match.
        let checked = count.min(SECS_PER_DAY as u64) as i64;
        if (1..=checked).any(|i| self.alarm_matches((tod + i) % SECS_PER_DAY)) {
            self.flags |= C_AF;
        }
        self.fields = start.advanced(count);
        self.flags |= C_UF;
    }

    /// True if the alarm registers match time of day `tod` (seconds since
    /// midnight) as the chip compares them: byte for byte in the current
    /// mode, any value 0xC0-0xFF matching everything.
    fn alarm_matches(&self, tod: i64) -> bool {
        let (binary, h24) = (self.binary(), self.hours_24());
        let hour = (tod / 3600) as u8;
        let min = (tod / 60 % 60) as u8;
        let sec = (tod % 60) as u8;
        [
            (SECONDS_ALARM, encode(sec, binary)),
            (MINUTES_ALARM, encode(min, binary)),
            (HOURS_ALARM, encode_hour(hour, binary, h24)),
        ]
        .iter()
        .all(|&(reg, now)| {
            let alarm = self.cmos[usize::from(reg)];
            alarm >= 0xC0 || alarm == now
        })
    }

    /// IRQF: a flag whose interrupt is enabled (PF/PIE, AF/AIE, UF/UIE
    /// share their bit positions).
    fn irqf(&self) -> bool {
        self.flags & self.reg_b & (C_PF | C_AF | C_UF) != 0
    }

    fn drive_line(&mut self) {
        let high = self.irqf();
        if high != self.line_high {
            self.line_high = high;
            self.irq.set_level(high);
        }
    }

    /// True while an update is less than [`UIP_LEAD_NS`] away.
    fn update_in_progress(&self, now: i128) -> bool {
        if !self.running || self.reg_b & B_SET != 0 {
            return false;
        }
        let next = self.origin + (self.updates_done + 1) * NS_PER_SEC;
        next - now <= i128::from(UIP_LEAD_NS)
    }

    /// Reads CMOS register `reg` (0-127) as the guest sees it now.
    pub fn read_register(&mut self, reg: u8) -> u8 {
        let now = self.now();
        self.sync(now);
        let (binary, h24) = (self.binary(), self.hours_24());
        let f = self.fields;
        match reg & 0x7F {
            SECONDS => encode(f.sec, binary),
            MINUTES => encode(f.min, binary),
            HOURS => encode_hour(f.hour, binary, h24),
            DAY_OF_WEEK => encode(f.dow, binary),
            DAY_OF_MONTH => encode(f.day, binary),
            MONTH => encode(f.month, binary),
            YEAR => encode(f.year, binary),
            REG_A => {
                self.reg_a
                    | if self.update_in_progress(now) {
                        A_UIP
                    } else {
                        0
                    }
            }
            REG_B => self.reg_b,
            REG_C => {
                let value = self.flags | if self.irqf() { C_IRQF } else { 0 };
                self.flags = 0;
                self.drive_line();
                value
            }
            REG_D => D_VRT,
            r if usize::from(r) == CENTURY => encode(f.century, binary),
            r => self.cmos[usize::from(r)],
        }
    }

    /// Writes CMOS register `reg` (0-127).
    pub fn write_register(&mut self, reg: u8, value: u8) {
        let now = self.now();
        self.sync(now);
        let (binary, h24) = (self.binary(), self.hours_24());
        let f = &mut self.fields;
        match reg & 0x7F {
            SECONDS => f.sec = decode(value, binary),
            MINUTES => f.min = decode(value, binary),
            HOURS => f.hour = decode_hour(value, binary, h24),
            DAY_OF_WEEK => f.dow = decode(value, binary),
            DAY_OF_MONTH => f.day = decode(value, binary),
            MONTH => f.month = decode(value, binary),
            YEAR => f.year = decode(value, binary),
            REG_A => self.write_a(value, now),
            REG_B => {
                // Setting SET clears UIE.
                self.reg_b = if value & B_SET != 0 {
                    value & !B_UIE
                } else {
                    value
                };
            }
            REG_C | REG_D => {}
            r if usize::from(r) == CENTURY => f.century = decode(value, binary),
            r => self.cmos[usize::from(r)] = value,
        }
        self.drive_line();
    }

    fn write_a(&mut self, value: u8, now: i128) {
        let old_rate = self.reg_a & 0x0F;
        self.reg_a = value & !A_UIP;
        let divider = (value >> A_DIVIDER_SHIFT) & 0b111;
        let was_running = self.running;
        self.running = divider == DIVIDER_RUN;
        if self.running && !was_running {
            // Out of reset (or another time base): the first update comes
            // half a second later.
            self.origin = now + NS_PER_SEC / 2 - NS_PER_SEC;
            self.updates_done = 0;
        }
        if (self.running && !was_running) || self.reg_a & 0x0F != old_rate {
            // A new rate (or a restarted chain) ticks from now on.
            self.ticks_done = self.ticks_due(now);
        }
    }

    /// Clock time (ns) of the next event that would raise the interrupt
    /// line: a periodic tick with PIE, an update with UIE or AIE. `None`
    /// when none is enabled, the clock is stopped, or the line is already
    /// raised (nothing changes until the guest reads register C).
    pub fn next_deadline_ns(&self) -> Option<u64> {
        if !self.running || self.line_high {
            return None;
        }
        let mut next: Option<i128> = None;
        let mut consider = |t: i128| next = Some(next.map_or(t, |n: i128| n.min(t)));
        if self.reg_b & B_PIE != 0 {
            if let Some(e) = self.period_exponent() {
                consider(self.tick_time(self.ticks_done + 1, e));
            }
        }
        if self.reg_b & (B_UIE | B_AIE) != 0 && self.reg_b & B_SET == 0 {
            consider(self.origin + (self.updates_done + 1) * NS_PER_SEC);
        }
        next.map(|t| u64::try_from(t.max(0)).unwrap_or(u64::MAX))
    }

    /// Brings the device up to clock time `now_ns` (at or after a
    /// deadline): flags are set and the line raised for what came due.
    pub fn on_deadline(&mut self, now_ns: u64) {
        self.sync(i128::from(now_ns));
    }

    /// Whether the interrupt line is raised (IRQF).
    pub fn irq_raised(&self) -> bool {
        self.line_high
    }
}

impl<C: Clock> BusDevice for Rtc<C> {
    /// Offset 0 is port 0x70 (reads as 0xFF: the index is write-only),
    /// offset 1 port 0x71, the selected register.
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        for (port, byte) in (offset..).zip(data.iter_mut()) {
            *byte = match port {
                1 => self.read_register(self.index),
                _ => 0xFF,
            };
        }
    }

    /// Offset 0 selects a register (bit 7, the NMI mask, ignored), offset 1
    /// writes it.
    fn write(&mut self, offset: u64, data: &[u8]) {
        for (port, &byte) in (offset..).zip(data) {
            match port {
                0 => self.index = byte & 0x7F,
                1 => self.write_register(self.index, byte),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
