//! One 8254 counter: modes 0-5, access modes, latches, gate.
//!
//! Time model: a count written at clock time `t0` starts counting at once;
//! tick `k` (k >= 1) of the 1.193182 MHz input happens at the first
//! nanosecond `t` with `floor((t - t0) * F / 1e9) >= k`. After `k` ticks a
//! counter loaded with `N` holds `N - k` (modes 0, 1, 4, 5), so in mode 0
//! OUT rises exactly when the count reaches 0, `N` ticks after the write.
//! (A real 8254 spends one extra clock loading the count; software cannot
//! see that difference except as one 838 ns tick.)

use crate::spec::{NS_PER_SEC, PIT_FREQUENCY_HZ, STATUS_NULL_COUNT, STATUS_OUT};

/// Whole ticks of the PIT input clock between two clock times.
pub(crate) fn ticks_between(from_ns: u64, to_ns: u64) -> u64 {
    let ns = u128::from(to_ns.saturating_sub(from_ns));
    // ns * F / 1e9 < ns, so this always fits in a u64.
    u64::try_from(ns * u128::from(PIT_FREQUENCY_HZ) / NS_PER_SEC).unwrap_or(u64::MAX)
}

/// Nanoseconds after a start until tick `ticks` has happened (rounded up).
pub(crate) fn ns_for_ticks(ticks: u64) -> u64 {
    let f = u128::from(PIT_FREQUENCY_HZ);
    let scaled = u128::from(ticks) * NS_PER_SEC;
    u64::try_from(scaled.div_ceil(f)).unwrap_or(u64::MAX)
}

/// Read/write access mode from control-word bits 5-4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Low byte only.
    Lo,
    /// High byte only.
    Hi,
    /// Low byte then high byte, with a flip-flop.
    LoHi,
}

impl Access {
    fn from_bits(bits: u8) -> Option<Self> {
        match bits & 3 {
            1 => Some(Self::Lo),
            2 => Some(Self::Hi),
            3 => Some(Self::LoHi),
            _ => None,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Self::Lo => 1,
            Self::Hi => 2,
            Self::LoHi => 3,
        }
    }
}

/// Where the counting element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// No count loaded (after a control word, or mode 0 between the two bytes).
    Idle,
    /// Count written; modes 1 and 5 wait for a rising gate edge.
    Waiting,
    /// Counting: elapsed ticks = `offset + ticks_between(origin_ns, now)`.
    Counting { origin_ns: u64, offset: u64 },
    /// Gate low: counting stopped after `ticks` ticks.
    Paused { ticks: u64 },
}

/// A count that software latched, being read out byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latched {
    value: u16,
    high_next: bool,
}

/// One counter of the 8254.
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    /// Mode 0-5 (6 and 7 are folded into 2 and 3).
    mode: u8,
    /// Mode bits as written, for the status byte.
    mode_bits: u8,
    access: Access,
    bcd: bool,
    /// Count as written (raw register value, BCD-encoded if `bcd`).
    reload: u16,
    /// Low byte written in lo/hi access, waiting for the high byte.
    pending_low: Option<u8>,
    read_high_next: bool,
    latched_count: Option<Latched>,
    latched_status: Option<u8>,
    null_count: bool,
    gate: bool,
    run: Run,
    /// Rising OUT edges already reported since the counter (re)started.
    edges_taken: u64,
}

impl Channel {
    /// A counter as after power-up: mode 0, lo/hi, binary, nothing loaded.
    pub(crate) fn new(gate: bool) -> Self {
        Self {
            mode: 0,
            mode_bits: 0,
            access: Access::LoHi,
            bcd: false,
            reload: 0,
            pending_low: None,
            read_high_next: false,
            latched_count: None,
            latched_status: None,
            null_count: true,
            gate,
            run: Run::Idle,
            edges_taken: 0,
        }
    }

    /// The counter's modulus: 65536 in binary, 10000 in BCD.
    fn modulus(&self) -> u64 {
        if self.bcd { 10_000 } else { 65_536 }
    }

    /// The initial count as a number of ticks, 1..=modulus (0 means the maximum).
    fn initial(&self) -> u64 {
        let raw = if self.bcd {
            let n = self.reload;
            let digit = |shift: u16| u64::from((n >> shift) & 0xF);
            (digit(12) * 1000 + digit(8) * 100 + digit(4) * 10 + digit(0)) % 10_000
        } else {
            u64::from(self.reload)
        };
        if raw == 0 { self.modulus() } else { raw }
    }

    /// Period length for modes 2 and 3 (a count of 1 is illegal there; treated as 2).
    fn period(&self) -> u64 {
        self.initial().max(2)
    }

    /// Ticks counted since the count was loaded, if it is loaded.
    fn elapsed(&self, now: u64) -> Option<u64> {
        match self.run {
            Run::Idle | Run::Waiting => None,
            Run::Counting { origin_ns, offset } => {
                Some(offset.saturating_add(ticks_between(origin_ns, now)))
            }
            Run::Paused { ticks } => Some(ticks),
        }
    }

    /// The OUT pin at clock time `now`.
    pub(crate) fn out(&self, now: u64) -> bool {
        let k = self.elapsed(now);
        match self.mode {
            0 => k.is_some_and(|k| k >= self.initial()),
            1 => k.is_none_or(|k| k >= self.initial()),
            2 => !self.gate || k.is_none_or(|k| k % self.period() != self.period() - 1),
            3 => {
                let n = self.period();
                !self.gate || k.is_none_or(|k| k % n < n.div_ceil(2))
            }
            // Modes 4 and 5: a one-tick low strobe when the count reaches 0.
            _ => k.is_none_or(|k| k != self.initial()),
        }
    }

    /// The binary value of the counting element at `now`.
    fn count_value(&self, now: u64) -> u64 {
        let m = self.modulus();
        let n = self.initial();
        let Some(k) = self.elapsed(now) else {
            return n % m;
        };
        match self.mode {
            2 => {
                let p = self.period();
                (p - k % p) % m
            }
            3 => {
                let p = self.period();
                let even = p & !1;
                let high = p.div_ceil(2);
                let phase = k % p;
                let step = if phase < high { phase } else { phase - high };
                even.saturating_sub(2 * step) % m
            }
            // Modes 0, 1, 4, 5 count down and wrap without reloading.
            _ => (n + m - k % m) % m,
        }
    }

    /// The count register value as software reads it (BCD-encoded if `bcd`).
    pub(crate) fn count(&self, now: u64) -> u16 {
        let v = self.count_value(now);
        let encoded = if self.bcd {
            let d = |div: u64| (v / div) % 10;
            (d(1000) << 12) | (d(100) << 8) | (d(10) << 4) | d(1)
        } else {
            v
        };
        u16::try_from(encoded & 0xFFFF).unwrap_or(0)
    }

    /// The status byte of the read-back command.
    pub(crate) fn status(&self, now: u64) -> u8 {
        let mut s = (self.access.bits() << 4) | (self.mode_bits << 1);
        if self.bcd {
            s |= 1;
        }
        if self.out(now) {
            s |= STATUS_OUT;
        }
        if self.null_count {
            s |= STATUS_NULL_COUNT;
        }
        s
    }

    /// A control word with access bits != 0 for this counter.
    pub(crate) fn program(&mut self, control: u8) {
        let Some(access) = Access::from_bits(control >> 4) else {
            return;
        };
        self.mode_bits = (control >> 1) & 7;
        self.mode = match self.mode_bits {
            6 => 2,
            7 => 3,
            m => m,
        };
        self.access = access;
        self.bcd = control & 1 != 0;
        self.pending_low = None;
        self.read_high_next = false;
        self.latched_count = None;
        self.latched_status = None;
        self.null_count = true;
        self.run = Run::Idle;
        self.edges_taken = 0;
    }

    /// Counter latch command (or the count part of read-back).
    pub(crate) fn latch_count(&mut self, now: u64) {
        if self.latched_count.is_none() {
            self.latched_count = Some(Latched {
                value: self.count(now),
                high_next: false,
            });
        }
    }

    /// Status part of the read-back command.
    pub(crate) fn latch_status(&mut self, now: u64) {
        if self.latched_status.is_none() {
            self.latched_status = Some(self.status(now));
        }
    }

    /// A byte written to the counter's data port.
    pub(crate) fn write_data(&mut self, value: u8, now: u64) {
        match self.access {
            Access::Lo => self.load(u16::from(value), now),
            Access::Hi => self.load(u16::from(value) << 8, now),
            Access::LoHi => match self.pending_low.take() {
                None => {
                    self.pending_low = Some(value);
                    if self.mode == 0 {
                        // Writing the first byte stops a mode 0 count, OUT low.
                        self.run = Run::Idle;
                    }
                }
                Some(low) => self.load(u16::from(low) | (u16::from(value) << 8), now),
            },
        }
    }

    /// A complete new count: load it (modes 1 and 5 wait for a gate edge).
    fn load(&mut self, reload: u16, now: u64) {
        self.reload = reload;
        self.edges_taken = 0;
        if matches!(self.mode, 1 | 5) {
            self.null_count = true;
            self.run = Run::Waiting;
            return;
        }
        self.null_count = false;
        self.run = if self.gate {
            Run::Counting {
                origin_ns: now,
                offset: 0,
            }
        } else {
            Run::Paused { ticks: 0 }
        };
    }

    /// A byte read from the counter's data port.
    pub(crate) fn read_data(&mut self, now: u64) -> u8 {
        if let Some(status) = self.latched_status.take() {
            return status;
        }
        if let Some(latched) = self.latched_count {
            let [lo, hi] = latched.value.to_le_bytes();
            return match self.access {
                Access::Lo => {
                    self.latched_count = None;
                    lo
                }
                Access::Hi => {
                    self.latched_count = None;
                    hi
                }
                Access::LoHi if !latched.high_next => {
                    self.latched_count = Some(Latched {
                        high_next: true,
                        ..latched
                    });
                    lo
                }
                Access::LoHi => {
                    self.latched_count = None;
                    hi
                }
            };
        }
        let [lo, hi] = self.count(now).to_le_bytes();
        match self.access {
            Access::Lo => lo,
            Access::Hi => hi,
            Access::LoHi => {
                self.read_high_next = !self.read_high_next;
                if self.read_high_next { lo } else { hi }
            }
        }
    }

    /// The gate input level.
    pub(crate) fn gate(&self) -> bool {
        self.gate
    }

    /// Changes the gate input (only channel 2's gate is wired to software).
    pub(crate) fn set_gate(&mut self, level: bool, now: u64) {
        if level == self.gate {
            return;
        }
        self.gate = level;
        if level {
            match (self.mode, self.run) {
                (1 | 5, Run::Waiting | Run::Counting { .. }) | (2 | 3, Run::Paused { .. }) => {
                    // Trigger (1, 5) or reload (2, 3) on the rising edge.
                    self.null_count = false;
                    self.edges_taken = 0;
                    self.run = Run::Counting {
                        origin_ns: now,
                        offset: 0,
                    };
                }
                (_, Run::Paused { ticks }) => {
                    self.run = Run::Counting {
                        origin_ns: now,
                        offset: ticks,
                    };
                }
                _ => {}
            }
        } else if matches!(self.mode, 0 | 2 | 3 | 4) {
            if let Some(ticks) = self.elapsed(now) {
                self.run = Run::Paused { ticks };
            }
        }
    }

    /// Tick (since the count was loaded) of the `j`-th rising OUT edge, j >= 1.
    fn edge_tick(&self, j: u64) -> Option<u64> {
        match self.mode {
            0 | 1 => (j == 1).then(|| self.initial()),
            2 | 3 => j.checked_mul(self.period()),
            _ => (j == 1).then(|| self.initial() + 1),
        }
    }

    /// Rising OUT edges in ticks 1..=k since the count was loaded.
    fn edges_through(&self, k: u64) -> u64 {
        match self.mode {
            2 | 3 => k / self.period(),
            _ => self.edge_tick(1).map_or(0, |t| u64::from(k >= t)),
        }
    }

    /// Rising OUT edges since the last call (counter running with gate high).
    pub(crate) fn take_edges(&mut self, now: u64) -> u64 {
        let Run::Counting { .. } = self.run else {
            return 0;
        };
        let Some(k) = self.elapsed(now) else {
            return 0;
        };
        let total = self.edges_through(k);
        let new = total.saturating_sub(self.edges_taken);
        self.edges_taken = total;
        new
    }

    /// Clock time of the next rising OUT edge not yet taken (may be in the past).
    pub(crate) fn next_edge_ns(&self) -> Option<u64> {
        let Run::Counting { origin_ns, offset } = self.run else {
            return None;
        };
        let tick = self.edge_tick(self.edges_taken.checked_add(1)?)?;
        Some(origin_ns.saturating_add(ns_for_ticks(tick.saturating_sub(offset))))
    }
}
