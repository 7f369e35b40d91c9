//! Sinks that record what devices push, for device tests.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{LineSink, MsiMessage, MsiSink};

/// Records line levels, pulse counts and MSI messages.
#[derive(Debug, Default)]
pub struct RecordingSink {
    state: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    levels: HashMap<u32, bool>,
    pulses: HashMap<u32, u64>,
    rising_edges: HashMap<u32, u64>,
    messages: Vec<MsiMessage>,
}

impl RecordingSink {
    fn with<T>(&self, f: impl FnOnce(&mut Recorded) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The current level of `line` (low if never driven).
    pub fn level(&self, line: u32) -> bool {
        self.with(|r| r.levels.get(&line).copied().unwrap_or(false))
    }

    /// How many times `line` was pulsed.
    pub fn pulses(&self, line: u32) -> u64 {
        self.with(|r| r.pulses.get(&line).copied().unwrap_or(0))
    }

    /// How many times `line` went from low to high through `set_level`.
    pub fn rising_edges(&self, line: u32) -> u64 {
        self.with(|r| r.rising_edges.get(&line).copied().unwrap_or(0))
    }

    /// The MSI messages signalled so far, oldest first.
    pub fn messages(&self) -> Vec<MsiMessage> {
        self.with(|r| r.messages.clone())
    }

    /// Forgets recorded pulses, edges and messages (levels stay).
    pub fn clear_events(&self) {
        self.with(|r| {
            r.pulses.clear();
            r.rising_edges.clear();
            r.messages.clear();
        });
    }
}

impl LineSink for RecordingSink {
    fn set_level(&self, line: u32, high: bool) {
        self.with(|r| {
            let was = r.levels.insert(line, high).unwrap_or(false);
            if high && !was {
                *r.rising_edges.entry(line).or_default() += 1;
            }
        });
    }

    fn pulse(&self, line: u32) {
        self.with(|r| *r.pulses.entry(line).or_default() += 1);
    }
}

impl MsiSink for RecordingSink {
    fn signal(&self, message: MsiMessage) {
        self.with(|r| r.messages.push(message));
    }
}
