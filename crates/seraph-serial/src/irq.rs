//! The UART's interrupt line as the VMM sees it.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use seraph_irq::IrqLine;

#[derive(Debug, Default)]
struct IrqState {
    pending: AtomicBool,
    requests: AtomicU64,
    line: OnceLock<IrqLine>,
}

/// Records "IRQ 4 requested" each time the UART raises its interrupt; the
/// VMM takes the request and injects the interrupt. Clones share one line,
/// so the VMM can keep a handle and poll it without locking the device.
#[derive(Debug, Clone, Default)]
pub struct SerialIrq(Arc<IrqState>);

impl SerialIrq {
    /// A line with nothing requested.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if an interrupt was requested since the last call; clears it.
    pub fn take(&self) -> bool {
        self.0.pending.swap(false, Ordering::AcqRel)
    }

    /// True if an interrupt is requested and not yet taken.
    pub fn is_pending(&self) -> bool {
        self.0.pending.load(Ordering::Acquire)
    }

    /// How many times the UART has requested its interrupt in total.
    pub fn requests(&self) -> u64 {
        self.0.requests.load(Ordering::Relaxed)
    }

    /// Wires the UART's interrupt output to `line`: every request also
    /// pulses it (the 8259 latches COM1's IRQ4 as an edge). Only the first
    /// connection counts.
    pub fn connect(&self, line: IrqLine) {
        let _ = self.0.line.set(line);
    }

    fn request(&self) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0.pending.store(true, Ordering::Release);
        if let Some(line) = self.0.line.get() {
            line.pulse();
        }
    }
}

impl vm_superio::Trigger for SerialIrq {
    type E = Infallible;

    fn trigger(&self) -> Result<(), Infallible> {
        self.request();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_superio::Trigger;

    #[test]
    fn take_clears_and_clones_share() {
        let line = SerialIrq::new();
        let handle = line.clone();
        assert!(!handle.take());
        line.trigger().unwrap();
        line.trigger().unwrap();
        assert!(handle.is_pending());
        assert_eq!(handle.requests(), 2);
        assert!(handle.take());
        assert!(!line.take());
        assert!(!line.is_pending());
    }
}
