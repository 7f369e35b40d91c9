//! The RTC's calendar: date and time fields, stepping them by seconds, the
//! proleptic Gregorian day count, and BCD / 12-hour encodings.

/// Seconds in a day.
pub(crate) const SECS_PER_DAY: i64 = 86_400;

/// The clock's date and time, each field in binary as the chip counts it.
/// Fields may hold garbage a guest wrote (minute 200); every function here
/// accepts that without panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    /// 0-59.
    pub sec: u8,
    /// 0-59.
    pub min: u8,
    /// 0-23.
    pub hour: u8,
    /// Day of week, 1-7, 1 = Sunday.
    pub dow: u8,
    /// Day of month, 1-31.
    pub day: u8,
    /// 1-12.
    pub month: u8,
    /// Year within the century, 0-99.
    pub year: u8,
    /// Century, 19, 20, ... (CMOS byte 0x32).
    pub century: u8,
}

/// Days from 1970-01-01 to `year`-`month`-`day` (proleptic Gregorian; month
/// 1-12, day 1-31; the day may run past its month and is then counted on).
pub(crate) fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    // Count from March so the leap day is the last day of a "year".
    let (y, m) = if month <= 2 {
        (year - 1, i64::from(month) + 9)
    } else {
        (year, i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719 468 days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The date (year, month 1-12, day 1-31) `days` days after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day of week, 1 = Sunday ... 7 = Saturday, of day number `days` (1970-01-01 was a Thursday).
pub(crate) fn day_of_week(days: i64) -> u8 {
    ((days + 4).rem_euclid(7) + 1) as u8
}

impl Fields {
    /// The fields for `unix_secs` seconds after 1970-01-01 00:00:00.
    pub(crate) fn from_unix(unix_secs: i64) -> Self {
        let days = unix_secs.div_euclid(SECS_PER_DAY);
        let tod = unix_secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Self {
            sec: (tod % 60) as u8,
            min: (tod / 60 % 60) as u8,
            hour: (tod / 3600) as u8,
            dow: day_of_week(days),
            day,
            month,
            year: year.rem_euclid(100) as u8,
            century: year.div_euclid(100).clamp(0, 255) as u8,
        }
    }

    /// Brings garbage into range the way a carry would: each field past its
    /// range restarts at its lowest value (day and month 0 count as 1).
    pub(crate) fn normalized(self) -> Self {
        let wrap = |v: u8, max: u8, low: u8| if v > max || v < low { low } else { v };
        let month = wrap(self.month, 12, 1);
        let year = wrap(self.year, 99, 0);
        let full_year = i64::from(self.century) * 100 + i64::from(year);
        Self {
            sec: wrap(self.sec, 59, 0),
            min: wrap(self.min, 59, 0),
            hour: wrap(self.hour, 23, 0),
            dow: wrap(self.dow, 7, 1),
            day: wrap(self.day, days_in_month(full_year, month), 1),
            month,
            year,
            century: self.century,
        }
    }

    /// Seconds after 1970-01-01 00:00:00 (for normalized fields).
    pub(crate) fn to_unix(self) -> i64 {
        let year = i64::from(self.century) * 100 + i64::from(self.year);
        days_from_civil(year, self.month, self.day) * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.min) * 60
            + i64::from(self.sec)
    }

    /// The fields `secs` seconds later, carrying into minutes, hours, days,
    /// months, years and the century; the day of week steps with each day
    /// crossed (from whatever the guest set it to).
    pub(crate) fn advanced(self, secs: u64) -> Self {
        let start = self.normalized();
        let from = start.to_unix();
        let to = from.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX / 2));
        // Keep within years 0..25599, where the century byte holds.
        let to = to.clamp(
            days_from_civil(0, 1, 1) * SECS_PER_DAY,
            days_from_civil(25_599, 12, 31) * SECS_PER_DAY,
        );
        let mut next = Self::from_unix(to);
        let days_crossed = to.div_euclid(SECS_PER_DAY) - from.div_euclid(SECS_PER_DAY);
        next.dow = ((i64::from(start.dow) - 1 + days_crossed).rem_euclid(7) + 1) as u8;
        next
    }

    /// Seconds since midnight (for normalized fields).
    pub(crate) fn time_of_day(self) -> i64 {
        i64::from(self.hour) * 3600 + i64::from(self.min) * 60 + i64::from(self.sec)
    }
}

/// Days in `month` (1-12) of `year`; 31 for a month out of range.
pub(crate) fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// `value` (0-99) as BCD.
pub(crate) fn to_bcd(value: u8) -> u8 {
    ((value / 10 % 10) << 4) | (value % 10)
}

/// A BCD byte as binary; nibbles above 9 count as their value (0x7A = 80).
pub(crate) fn from_bcd(byte: u8) -> u8 {
    (byte >> 4) * 10 + (byte & 0x0F)
}

/// The register byte for a time field in the current data mode.
pub(crate) fn encode(value: u8, binary: bool) -> u8 {
    if binary { value } else { to_bcd(value) }
}

/// A register byte written in the current data mode, as binary.
pub(crate) fn decode(byte: u8, binary: bool) -> u8 {
    if binary { byte } else { from_bcd(byte) }
}

/// The hours register byte for `hour` (0-23): 24-hour, or 12-hour with
/// bit 7 set for PM (12 AM is midnight, 12 PM noon).
pub(crate) fn encode_hour(hour: u8, binary: bool, hours_24: bool) -> u8 {
    if hours_24 {
        return encode(hour, binary);
    }
    let pm = hour >= 12;
    let h12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    encode(h12, binary) | if pm { 0x80 } else { 0 }
}

/// An hours register byte as 0-23.
pub(crate) fn decode_hour(byte: u8, binary: bool, hours_24: bool) -> u8 {
    if hours_24 {
        return decode(byte, binary);
    }
    let h12 = decode(byte & 0x7F, binary);
    let pm = byte & 0x80 != 0;
    (h12 % 12).saturating_add(if pm { 12 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip_and_know_leap_years() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(
            civil_from_days(days_from_civil(1900, 2, 28) + 1),
            (1900, 3, 1)
        );
        assert_eq!(
            civil_from_days(days_from_civil(2100, 2, 28) + 1),
            (2100, 3, 1)
        );
        assert_eq!(
            civil_from_days(days_from_civil(2024, 2, 28) + 1),
            (2024, 2, 29)
        );
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // 2026-12-01 is a Tuesday (3).
        assert_eq!(day_of_week(days_from_civil(2026, 12, 1)), 3);
        assert_eq!(day_of_week(0), 5); // Thursday
    }

    #[test]
    fn fields_step_across_midnight_year_and_century() {
        let f = Fields::from_unix(days_from_civil(2099, 12, 31) * SECS_PER_DAY + 86_399);
        assert_eq!(
            (f.century, f.year, f.month, f.day, f.hour),
            (20, 99, 12, 31, 23)
        );
        let g = f.advanced(1);
        assert_eq!(
            (g.century, g.year, g.month, g.day, g.hour, g.min, g.sec),
            (21, 0, 1, 1, 0, 0, 0)
        );
        assert_eq!(g.dow, day_of_week(days_from_civil(2100, 1, 1)));
        // A day of week the guest set steps on from its own value.
        let h = Fields { dow: 1, ..f }.advanced(2 * 86_400);
        assert_eq!(h.dow, 3);
    }

    #[test]
    fn encodings() {
        assert_eq!(to_bcd(59), 0x59);
        assert_eq!(from_bcd(0x59), 59);
        assert_eq!(from_bcd(0xFF), 165);
        assert_eq!(encode_hour(0, false, false), 0x12);
        assert_eq!(encode_hour(12, false, false), 0x92);
        assert_eq!(encode_hour(13, false, false), 0x81);
        assert_eq!(encode_hour(23, true, false), 0x8B);
        assert_eq!(encode_hour(23, false, true), 0x23);
        for hour in 0..24 {
            for binary in [false, true] {
                for h24 in [false, true] {
                    assert_eq!(
                        decode_hour(encode_hour(hour, binary, h24), binary, h24),
                        hour
                    );
                }
            }
        }
        // Garbage normalizes without panicking.
        let junk = Fields {
            sec: 255,
            min: 200,
            hour: 99,
            dow: 0,
            day: 0,
            month: 13,
            year: 250,
            century: 255,
        };
        let _ = junk.advanced(u64::MAX);
        let _ = junk.normalized().to_unix();
    }
}
