//! Clocks for Seraph-V device models.
//!
//! Device models never read the host time themselves: they are given a
//! [`Clock`] so that tests can drive them with a [`FakeClock`] and never
//! sleep. [`HostClock`] is the monotonic clock a real VM uses, and
//! [`OracleClock`] is the wall clock the GET_TIME hypercall reports.
//!
//! Times are `u64` nanoseconds. A monotonic clock counts from its own
//! creation (0 = when the clock was made), so it does not wrap for 584 years.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A monotonic time source, in nanoseconds since the clock's own origin.
pub trait Clock: Send + Sync {
    /// The current time in nanoseconds since this clock's origin; never decreases.
    fn now_ns(&self) -> u64;
}

/// The host's monotonic clock (`CLOCK_MONOTONIC`), counting from its creation.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    origin: Instant,
}

impl HostClock {
    /// A clock whose time 0 is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// The host instant that corresponds to `ns` on this clock (for sleeping until a deadline).
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.origin + std::time::Duration::from_nanos(ns)
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now_ns(&self) -> u64 {
        // u64 nanoseconds cover 584 years; saturate rather than wrap beyond that.
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to: clones share one time, so a test
/// keeps one clone and hands another to the device under test.
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    now: Arc<AtomicU64>,
}

impl FakeClock {
    /// A fake clock at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `ns` nanoseconds (saturating).
    pub fn advance(&self, ns: u64) {
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ns))
            });
    }

    /// Sets the time to `ns`, if that is not earlier than now (time never goes back).
    pub fn set(&self, ns: u64) {
        self.now.fetch_max(ns, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}

/// The wall clock behind the GET_TIME hypercall.
///
/// Epoch: the Unix epoch (1970-01-01T00:00:00 UTC), read from the host's
/// realtime clock, with nanosecond resolution as the host provides it. Within
/// one VM the value never decreases, even if the host clock is stepped back:
/// a guest that measures intervals with GET_TIME never sees negative time.
#[derive(Debug, Default)]
pub struct OracleClock {
    last: AtomicU64,
}

impl OracleClock {
    /// A new oracle clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Nanoseconds since the Unix epoch, never less than a value returned before.
    pub fn unix_time_ns(&self) -> u64 {
        let host = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let prev = self.last.fetch_max(host, Ordering::SeqCst);
        host.max(prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told_and_is_shared_by_clones() {
        let clock = FakeClock::new();
        let device_view = clock.clone();
        assert_eq!(device_view.now_ns(), 0);
        clock.advance(1_500);
        assert_eq!(device_view.now_ns(), 1_500);
        clock.set(1_000); // earlier: ignored
        assert_eq!(device_view.now_ns(), 1_500);
        clock.set(4_000);
        assert_eq!(device_view.now_ns(), 4_000);
        clock.advance(u64::MAX);
        assert_eq!(device_view.now_ns(), u64::MAX);
    }

    #[test]
    fn host_clock_is_monotonic() {
        let clock = HostClock::new();
        let a = clock.now_ns();
        let b = clock.now_ns();
        assert!(b >= a);
        assert!(clock.instant_at(5) >= clock.instant_at(0));
    }

    #[test]
    fn oracle_clock_is_after_2020_and_never_goes_back() {
        let oracle = OracleClock::new();
        let a = oracle.unix_time_ns();
        // 2020-01-01 in ns since the epoch.
        assert!(a > 1_577_836_800 * NANOS_PER_SEC);
        oracle.last.store(u64::MAX - 1, Ordering::SeqCst); // pretend the host stepped back
        assert_eq!(oracle.unix_time_ns(), u64::MAX - 1);
    }
}
