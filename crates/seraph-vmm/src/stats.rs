//! Run statistics: exits by kind and by device, interrupts by vector, and
//! where the time went (in the guest, i.e. inside `run`, versus in the VMM).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use seraph_hypervisor::ExitKind;

/// Counters collected during a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Exits by kind.
    pub exits: BTreeMap<ExitKind, u64>,
    /// Port-I/O and MMIO exits by the device that answered them.
    pub device_exits: BTreeMap<String, u64>,
    /// Accesses no device answered (reads get all-ones, writes are dropped), by bus.
    pub unhandled: BTreeMap<&'static str, u64>,
    /// Interrupts injected, by vector.
    pub interrupts: BTreeMap<u8, u64>,
    /// Hypercalls by number, for the first 64 distinct numbers of a run.
    pub hypercalls: BTreeMap<u64, u64>,
    /// Hypercalls with numbers beyond those counted in [`Self::hypercalls`].
    pub other_hypercalls: u64,
    /// Time spent inside the hypervisor's run call (guest time plus the
    /// hypervisor's own work); measured only with [`crate::MachineConfig::timing`].
    pub in_guest: Duration,
    /// Time the VMM spent waiting for a timer while the guest was halted.
    pub halted: Duration,
    /// Wall time of the whole run.
    pub total: Duration,
    /// PCI BAR placements the platform refused (over RAM, the LAPIC,
    /// another device), since the machine was built.
    pub refused_bars: u64,
    /// MSI messages dropped (outside the x86 window, an unsupported
    /// delivery mode), since the machine was built.
    pub dropped_msi: u64,
    /// Interrupt line changes on inputs the machine does not have.
    pub ignored_lines: u64,
}

impl RunStats {
    /// All exits counted.
    pub fn total_exits(&self) -> u64 {
        self.exits.values().sum()
    }

    /// Time spent in the VMM's own code (total minus time in the guest and halted).
    pub fn in_vmm(&self) -> Duration {
        self.total
            .saturating_sub(self.in_guest)
            .saturating_sub(self.halted)
    }
}

impl fmt::Display for RunStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "exits: {} total", self.total_exits())?;
        for (kind, n) in &self.exits {
            writeln!(f, "  {:<18} {n}", kind.name())?;
        }
        if !self.device_exits.is_empty() {
            writeln!(f, "device accesses:")?;
            for (dev, n) in &self.device_exits {
                writeln!(f, "  {dev:<18} {n}")?;
            }
        }
        for (bus, n) in &self.unhandled {
            writeln!(f, "unhandled {bus} accesses: {n}")?;
        }
        if !self.hypercalls.is_empty() || self.other_hypercalls > 0 {
            writeln!(f, "hypercalls:")?;
            for (nr, n) in &self.hypercalls {
                writeln!(f, "  {:<18} {n}", crate::hypercall::name(*nr))?;
            }
            if self.other_hypercalls > 0 {
                writeln!(f, "  {:<18} {}", "other numbers", self.other_hypercalls)?;
            }
        }
        if self.refused_bars + self.dropped_msi + self.ignored_lines > 0 {
            writeln!(
                f,
                "refused: {} PCI BAR placements, {} MSI messages, {} line changes",
                self.refused_bars, self.dropped_msi, self.ignored_lines
            )?;
        }
        writeln!(f, "interrupts delivered:")?;
        if self.interrupts.is_empty() {
            writeln!(f, "  none")?;
        }
        for (vector, n) in &self.interrupts {
            writeln!(f, "  vector {vector:#04x}        {n}")?;
        }
        let total = self.total.as_secs_f64();
        let share = |d: Duration| {
            if total > 0.0 {
                100.0 * d.as_secs_f64() / total
            } else {
                0.0
            }
        };
        writeln!(
            f,
            "time: {:.3}s total, {:.3}s in guest ({:.1}%), {:.3}s halted ({:.1}%), {:.3}s in VMM ({:.1}%)",
            total,
            self.in_guest.as_secs_f64(),
            share(self.in_guest),
            self.halted.as_secs_f64(),
            share(self.halted),
            self.in_vmm().as_secs_f64(),
            share(self.in_vmm())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_prints() {
        let mut s = RunStats::default();
        s.exits.insert(ExitKind::IoOut, 2);
        s.exits.insert(ExitKind::Halt, 1);
        s.device_exits.insert("serial".into(), 1);
        s.interrupts.insert(0x20, 1);
        s.unhandled.insert("pio", 1);
        s.total = Duration::from_millis(10);
        s.in_guest = Duration::from_millis(6);
        s.halted = Duration::from_millis(1);
        assert_eq!(s.total_exits(), 3);
        assert_eq!(s.in_vmm(), Duration::from_millis(3));
        let text = s.to_string();
        assert!(text.contains("io-out             2"));
        assert!(text.contains("vector 0x20        1"));
        assert!(text.contains("unhandled pio accesses: 1"));
        assert!(text.contains("0.006s in guest (60.0%)"));
        assert!(text.contains("0.001s halted (10.0%)"));
    }
}
