//! The APIC timer: initial/current count and divide configuration, driven
//! by clock time (1 ns per input tick before the divider).

use crate::spec::TIMER_NS_PER_TICK;

/// A running count: `anchor_count` ticks from `anchor_ns` to the next expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    anchor_ns: u64,
    anchor_count: u64,
    /// Expirations already processed since the anchor.
    fired: u64,
}

/// Timer state; one-shot and periodic modes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timer {
    initial: u32,
    divide_config: u32,
    periodic: bool,
    run: Option<Run>,
}

/// Divide value of a divide-configuration register (bits 3, 1, 0).
pub(crate) fn divisor(config: u32) -> u64 {
    match ((config >> 1) & 4) | (config & 3) {
        7 => 1,
        code => 2 << code,
    }
}

impl Timer {
    pub(crate) fn initial(&self) -> u32 {
        self.initial
    }

    pub(crate) fn divide_config(&self) -> u32 {
        self.divide_config
    }

    fn ns_per_count(&self) -> u64 {
        divisor(self.divide_config) * TIMER_NS_PER_TICK
    }

    fn ticks_since(&self, run: &Run, now: u64) -> u64 {
        now.saturating_sub(run.anchor_ns) / self.ns_per_count()
    }

    /// The current-count register at `now`.
    pub(crate) fn current(&self, now: u64) -> u32 {
        let Some(run) = self.run else {
            return 0;
        };
        let t = self.ticks_since(&run, now);
        let count = if t < run.anchor_count {
            run.anchor_count - t
        } else if self.periodic {
            let initial = u64::from(self.initial).max(1);
            initial - (t - run.anchor_count) % initial
        } else {
            0
        };
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    fn expirations_through(&self, run: &Run, now: u64) -> u64 {
        let t = self.ticks_since(run, now);
        if t < run.anchor_count {
            0
        } else if self.periodic {
            1 + (t - run.anchor_count) / u64::from(self.initial).max(1)
        } else {
            1
        }
    }

    /// Processes expirations up to `now`; returns how many happened since the last call.
    pub(crate) fn update(&mut self, now: u64) -> u64 {
        let Some(mut run) = self.run else {
            return 0;
        };
        let total = self.expirations_through(&run, now);
        let new = total.saturating_sub(run.fired);
        run.fired = total;
        self.run = if !self.periodic && total > 0 {
            None
        } else {
            Some(run)
        };
        new
    }

    /// Clock time of the next expiry not yet processed (may be in the past).
    pub(crate) fn next_expiry_ns(&self) -> Option<u64> {
        let run = self.run?;
        let ticks = if self.periodic {
            run.fired
                .saturating_mul(u64::from(self.initial))
                .saturating_add(run.anchor_count)
        } else {
            run.anchor_count
        };
        Some(
            run.anchor_ns
                .saturating_add(ticks.saturating_mul(self.ns_per_count())),
        )
    }

    /// Writing the initial count (re)starts the timer; 0 stops it.
    pub(crate) fn set_initial(&mut self, initial: u32, now: u64) {
        self.initial = initial;
        self.run = (initial != 0).then_some(Run {
            anchor_ns: now,
            anchor_count: u64::from(initial),
            fired: 0,
        });
    }

    /// Keeps the current count, counting on from `now` under new settings.
    fn rebase(&mut self, now: u64) {
        let current = u64::from(self.current(now));
        if let Some(run) = self.run.as_mut() {
            *run = Run {
                anchor_ns: now,
                anchor_count: current.max(1),
                fired: 0,
            };
        }
    }

    /// A new divide configuration; the current count continues at the new rate.
    pub(crate) fn set_divide(&mut self, config: u32, now: u64) {
        if config != self.divide_config {
            self.rebase(now);
            self.divide_config = config;
        }
    }

    /// One-shot or periodic; a running count continues from its value.
    pub(crate) fn set_periodic(&mut self, periodic: bool, now: u64) {
        if periodic != self.periodic {
            self.rebase(now);
            self.periodic = periodic;
        }
    }
}
