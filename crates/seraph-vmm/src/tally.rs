//! The run loop's counters: plain arrays indexed by exit kind, device
//! position and vector, so counting an exit costs an increment and no
//! lookup. Turned into the named [`RunStats`] once, at the end of a run.

use std::collections::BTreeMap;
use std::time::Duration;

use seraph_bus::{Bus, DeviceIndex};
use seraph_hypervisor::ExitKind;

use crate::devices::BusKind;
use crate::stats::RunStats;

/// How many distinct hypercall numbers are counted one by one; calls with
/// further numbers are counted together as "other". A guest choosing a new
/// RAX for every call must not grow the VMM's memory (or `--stats`).
pub(crate) const HYPERCALL_NUMBERS_KEPT: usize = 64;

/// Hot-path counters for one run.
#[derive(Debug)]
pub(crate) struct Tally {
    exits: [u64; ExitKind::ALL.len()],
    pio: Vec<u64>,
    mmio: Vec<u64>,
    unhandled_pio: u64,
    unhandled_mmio: u64,
    unhandled_msr: u64,
    interrupts: [u64; 256],
    hypercalls: BTreeMap<u64, u64>,
    other_hypercalls: u64,
    pub(crate) in_guest: Duration,
    pub(crate) halted: Duration,
}

impl Tally {
    /// Counters for buses holding `pio_devices` and `mmio_devices` devices.
    pub(crate) fn new(pio_devices: usize, mmio_devices: usize) -> Self {
        Self {
            exits: [0; ExitKind::ALL.len()],
            pio: vec![0; pio_devices],
            mmio: vec![0; mmio_devices],
            unhandled_pio: 0,
            unhandled_mmio: 0,
            unhandled_msr: 0,
            interrupts: [0; 256],
            hypercalls: BTreeMap::new(),
            other_hypercalls: 0,
            in_guest: Duration::ZERO,
            halted: Duration::ZERO,
        }
    }

    pub(crate) fn exit(&mut self, kind: ExitKind) {
        self.exits[kind.index()] += 1;
    }

    /// Counts an access answered by `device`, or unanswered (`None`).
    pub(crate) fn access(&mut self, bus: BusKind, device: Option<DeviceIndex>) {
        let (counts, unhandled) = match bus {
            BusKind::Pio => (&mut self.pio, &mut self.unhandled_pio),
            BusKind::Mmio => (&mut self.mmio, &mut self.unhandled_mmio),
        };
        match device.and_then(|d| counts.get_mut(d.0)) {
            Some(n) => *n += 1,
            None => *unhandled += 1,
        }
    }

    pub(crate) fn unhandled_msr(&mut self) {
        self.unhandled_msr += 1;
    }

    pub(crate) fn interrupt(&mut self, vector: u8) {
        self.interrupts[usize::from(vector)] += 1;
    }

    /// Counts a hypercall: by number for the first
    /// [`HYPERCALL_NUMBERS_KEPT`] distinct numbers, then as "other".
    pub(crate) fn hypercall(&mut self, nr: u64) {
        if let Some(n) = self.hypercalls.get_mut(&nr) {
            *n += 1;
        } else if self.hypercalls.len() < HYPERCALL_NUMBERS_KEPT {
            self.hypercalls.insert(nr, 1);
        } else {
            self.other_hypercalls += 1;
        }
    }

    /// The named statistics, with device names taken from the buses.
    pub(crate) fn into_stats(self, pio: &Bus, mmio: &Bus, total: Duration) -> RunStats {
        let mut stats = RunStats {
            total,
            in_guest: self.in_guest,
            halted: self.halted,
            hypercalls: self.hypercalls,
            other_hypercalls: self.other_hypercalls,
            ..RunStats::default()
        };
        for kind in ExitKind::ALL {
            let n = self.exits[kind.index()];
            if n > 0 {
                stats.exits.insert(kind, n);
            }
        }
        for (bus, counts) in [(pio, &self.pio), (mmio, &self.mmio)] {
            for (i, &n) in counts.iter().enumerate() {
                if let (true, Some(name)) = (n > 0, bus.name(DeviceIndex(i))) {
                    *stats.device_exits.entry(name.to_owned()).or_default() += n;
                }
            }
        }
        for (name, n) in [
            ("pio", self.unhandled_pio),
            ("mmio", self.unhandled_mmio),
            ("msr", self.unhandled_msr),
        ] {
            if n > 0 {
                stats.unhandled.insert(name, n);
            }
        }
        for (vector, &n) in self.interrupts.iter().enumerate() {
            if n > 0 {
                stats.interrupts.insert(vector as u8, n);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_bus::BusDevice;
    use std::sync::{Arc, Mutex};

    struct Nothing;
    impl BusDevice for Nothing {
        fn read(&mut self, _: u64, _: &mut [u8]) {}
        fn write(&mut self, _: u64, _: &[u8]) {}
    }

    #[test]
    fn counts_become_named_statistics() {
        let mut pio = Bus::new();
        pio.insert("serial", 0x3f8, 8, Arc::new(Mutex::new(Nothing)))
            .unwrap();
        let mmio = Bus::new();
        let mut t = Tally::new(pio.len(), mmio.len());
        t.exit(ExitKind::IoOut);
        t.exit(ExitKind::IoOut);
        t.access(BusKind::Pio, pio.device_index(0x3f8));
        t.access(BusKind::Pio, None);
        t.access(BusKind::Mmio, Some(DeviceIndex(7))); // not on the bus: unhandled
        t.unhandled_msr();
        t.interrupt(0x20);
        t.hypercall(0);
        let stats = t.into_stats(&pio, &mmio, Duration::from_millis(1));
        assert_eq!(stats.exits[&ExitKind::IoOut], 2);
        assert_eq!(stats.exits.len(), 1);
        assert_eq!(stats.device_exits["serial"], 1);
        assert_eq!(stats.unhandled["pio"], 1);
        assert_eq!(stats.unhandled["mmio"], 1);
        assert_eq!(stats.unhandled["msr"], 1);
        assert_eq!(stats.interrupts[&0x20], 1);
        assert_eq!(stats.hypercalls[&0], 1);
        assert_eq!(stats.total, Duration::from_millis(1));
    }

    #[test]
    fn distinct_hypercall_numbers_are_bounded() {
        // Issue #14 item 4: a new RAX on every call grew the map without end.
        let mut t = Tally::new(0, 0);
        t.hypercall(0);
        for nr in 1000..101_000u64 {
            t.hypercall(nr);
        }
        t.hypercall(0); // a number already counted keeps its own line
        t.hypercall(1000);
        let stats = t.into_stats(&Bus::new(), &Bus::new(), Duration::ZERO);
        assert_eq!(stats.hypercalls.len(), HYPERCALL_NUMBERS_KEPT);
        assert_eq!(stats.hypercalls[&0], 2);
        assert_eq!(stats.hypercalls[&1000], 2);
        assert_eq!(
            stats.other_hypercalls,
            100_000 - (HYPERCALL_NUMBERS_KEPT as u64 - 1)
        );
        let text = stats.to_string();
        assert!(text.lines().count() < 2 * HYPERCALL_NUMBERS_KEPT, "{text}");
        assert!(text.contains("other numbers"), "{text}");
    }
}
