//! An MC146818-compatible CMOS real-time clock backed by the oracle clock.
