//! Devices whose interrupts are driven by time (timers, delayed
//! interrupts): the VMM asks when each is next due, sleeps or kicks until
//! then, and calls it back so it can push its interrupt line.

use std::sync::{Arc, Mutex};

use seraph_clock::Clock;
use seraph_irq::IrqLine;
use seraph_pci::PciDevice;
use seraph_pit::Pit;

use super::lock;

/// A device with time-driven interrupts.
pub trait TimedDevice: Send {
    /// Machine-clock time (ns) when the device next raises an interrupt by
    /// itself, if ever (in the past if one is due).
    fn next_deadline_ns(&self) -> Option<u64>;
    /// Brings the device up to `now_ns`; it pushes its lines as needed.
    fn on_deadline(&mut self, now_ns: u64);
    /// The controller input its timed interrupts arrive on, to tell whether
    /// they can reach the CPU at all; `None` if its deadlines are work the
    /// device must do whatever its interrupt can reach (a PCI device's
    /// leftover batch, a delayed interrupt that may go by MSI).
    fn line(&self) -> Option<u32>;
}

/// PIT channel 0 driving its IRQ0 line with OUT0's rising edges.
pub(crate) struct PitTimer<C: Clock> {
    pub(crate) pit: Arc<Mutex<Pit<C>>>,
    pub(crate) line: IrqLine,
}

impl<C: Clock + 'static> TimedDevice for PitTimer<C> {
    fn next_deadline_ns(&self) -> Option<u64> {
        lock(&self.pit).next_deadline_ns()
    }

    fn on_deadline(&mut self, _now_ns: u64) {
        // An edge-triggered 8259 coalesces edges it has not acknowledged.
        if lock(&self.pit).take_irq0_edges() > 0 {
            self.line.pulse();
        }
    }

    fn line(&self) -> Option<u32> {
        Some(self.line.line())
    }
}

/// A PCI device's own deadlines (delayed interrupts, leftover work). They
/// are never judged by the INTx line: a device using MSI-X with IRQ11
/// masked still has work due.
pub(crate) struct PciTimer {
    pub(crate) device: Arc<Mutex<dyn PciDevice>>,
}

impl TimedDevice for PciTimer {
    fn next_deadline_ns(&self) -> Option<u64> {
        lock(&self.device).next_deadline_ns()
    }

    fn on_deadline(&mut self, now_ns: u64) {
        lock(&self.device).on_deadline(now_ns);
    }

    fn line(&self) -> Option<u32> {
        None
    }
}
