//! Interrupt outputs for Seraph-V device models.
//!
//! A device gets its interrupt outputs at construction and pushes changes
//! into them; it never asks who listens. An [`IrqLine`] is a wire into an
//! interrupt controller input (a PIC pin, an IOAPIC pin): level-triggered
//! devices call [`IrqLine::set_level`], edge-triggered ones
//! [`IrqLine::pulse`]. An [`MsiSink`] takes message-signalled interrupts
//! (an address/data pair, as PCI MSI and MSI-X write them).
//!
//! The receiving side implements [`LineSink`] (and [`MsiSink`]): the VMM's
//! interrupt router, or [`testing::RecordingSink`] in device tests. Nothing
//! here knows about KVM, WHP or any particular controller.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

pub mod testing;

/// The receiving end of interrupt lines: an interrupt controller layer.
///
/// Calls may come from any thread (a vCPU thread during an MMIO write, the
/// I/O thread when a packet arrives); implementations must wake whoever
/// delivers interrupts when a line changes.
pub trait LineSink: Send + Sync {
    /// Drives input `line` high (`true`) or low.
    fn set_level(&self, line: u32, high: bool);
    /// Signals one edge on input `line` (a rising edge; the line is low after).
    fn pulse(&self, line: u32);
}

/// One interrupt output of a device, wired to one controller input.
#[derive(Clone)]
pub struct IrqLine {
    sink: Arc<dyn LineSink>,
    line: u32,
}

impl fmt::Debug for IrqLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqLine").field("line", &self.line).finish()
    }
}

impl IrqLine {
    /// A line into input `line` of `sink`.
    pub fn new(sink: Arc<dyn LineSink>, line: u32) -> Self {
        Self { sink, line }
    }

    /// A line wired to nothing: changes are dropped (a device with its
    /// interrupt not connected).
    pub fn disconnected() -> Self {
        Self::new(Arc::new(Disconnected), u32::MAX)
    }

    /// The controller input this line drives.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// Drives the line high or low (level-triggered devices).
    pub fn set_level(&self, high: bool) {
        self.sink.set_level(self.line, high);
    }

    /// Drives the line high.
    pub fn raise(&self) {
        self.set_level(true);
    }

    /// Drives the line low.
    pub fn lower(&self) {
        self.set_level(false);
    }

    /// Signals one edge (edge-triggered devices).
    pub fn pulse(&self) {
        self.sink.pulse(self.line);
    }
}

/// A sink that drops everything (for [`IrqLine::disconnected`]).
struct Disconnected;

impl LineSink for Disconnected {
    fn set_level(&self, _line: u32, _high: bool) {}
    fn pulse(&self, _line: u32) {}
}

/// A message-signalled interrupt: what a PCI device writes to deliver it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsiMessage {
    /// The message address (on x86, 0xFEEx_xxxx: destination APIC id in bits 19:12).
    pub address: u64,
    /// The message data (on x86: vector in bits 7:0, delivery mode in 10:8, trigger in 15).
    pub data: u32,
}

/// The x86 MSI address window (SDM 11.11.1).
pub const X86_MSI_ADDRESS_BASE: u64 = 0xFEE0_0000;

impl MsiMessage {
    /// True if the address lies in the x86 MSI window 0xFEE0_0000-0xFEEF_FFFF.
    pub fn is_x86_window(&self) -> bool {
        self.address & !0xF_FFFF == X86_MSI_ADDRESS_BASE
    }

    /// The vector an x86 message delivers (data bits 7:0).
    pub fn vector(&self) -> u8 {
        (self.data & 0xff) as u8
    }

    /// The x86 delivery mode (data bits 10:8; 0 = fixed, 1 = lowest priority, 4 = NMI).
    pub fn delivery_mode(&self) -> u8 {
        ((self.data >> 8) & 0x7) as u8
    }

    /// The destination APIC id of an x86 message (address bits 19:12).
    pub fn destination(&self) -> u8 {
        ((self.address >> 12) & 0xff) as u8
    }
}

/// The receiving end of message-signalled interrupts.
pub trait MsiSink: Send + Sync {
    /// Delivers `message` (as if the device wrote it to memory).
    fn signal(&self, message: MsiMessage);
}

/// A sink for messages that go nowhere (no MSI controller on this machine).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMsi;

impl MsiSink for NoMsi {
    fn signal(&self, _message: MsiMessage) {}
}

#[cfg(test)]
mod tests {
    use super::testing::RecordingSink;
    use super::*;

    #[test]
    fn lines_push_levels_and_pulses_to_their_sink() {
        let sink = Arc::new(RecordingSink::default());
        let line = IrqLine::new(sink.clone(), 4);
        assert!(!sink.level(4));
        line.raise();
        assert!(sink.level(4));
        line.lower();
        assert!(!sink.level(4));
        line.pulse();
        line.pulse();
        assert_eq!(sink.pulses(4), 2);
        assert_eq!(sink.pulses(3), 0);
        assert_eq!(line.line(), 4);
    }

    #[test]
    fn a_disconnected_line_drops_changes() {
        let line = IrqLine::disconnected();
        line.raise();
        line.pulse();
        assert_eq!(line.line(), u32::MAX);
    }

    #[test]
    fn x86_msi_fields_decode() {
        let m = MsiMessage {
            address: 0xFEE0_3000,
            data: 0x4031,
        };
        assert!(m.is_x86_window());
        assert_eq!(m.vector(), 0x31);
        assert_eq!(m.destination(), 3);
        assert_eq!(m.delivery_mode(), 0);
        assert!(
            !MsiMessage {
                address: 0xFED0_0000,
                data: 0
            }
            .is_x86_window()
        );
    }
}
