//! PCI for Seraph-V device models.
//!
//! - [`PciDevice`]: what a PCI function implements: its [`ConfigSpace`] and
//!   accesses to its BARs.
//! - [`ConfigSpace`]: a type-0 header with the BAR sizing protocol (write
//!   all-ones, read back the size mask), 32/64-bit memory and I/O BARs, the
//!   command register, interrupt pin/line and a capability list.
//! - [`dma::GuestDma`]: bounds-checked device access to guest memory.
//! - [`host::PciHost`]: configuration mechanism #1 at ports 0xCF8-0xCFF,
//!   listing devices on bus 0, reporting BAR moves to the VMM.
//!
//! Nothing here knows about KVM or WHP; a VMM maps BARs onto its bus.

#![forbid(unsafe_code)]

pub mod config;
pub mod dma;
pub mod dword;
pub mod host;
pub mod testdev;

pub use config::{BarKind, BarSpec, ConfigSpace, PciIds};
pub use dma::{DmaError, GuestDma};
pub use host::{BarChange, PciHost};

/// A PCI function as the host bridge and the VMM see it.
pub trait PciDevice: Send {
    /// The function's configuration space.
    fn config(&self) -> &ConfigSpace;
    /// The function's configuration space, for writes.
    fn config_mut(&mut self) -> &mut ConfigSpace;
    /// Called after the guest wrote `data` at `offset` of configuration
    /// space (the write is already applied): devices react to their
    /// capabilities here (MSI/MSI-X enable) or to the command register.
    fn config_written(&mut self, _offset: u16, _data: &[u8]) {}
    /// A read of `data.len()` bytes at `offset` inside BAR `bar`.
    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8]);
    /// A write of `data` at `offset` inside BAR `bar`.
    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8]);
    /// When the device next needs [`PciDevice::on_deadline`] (machine-clock
    /// ns), if ever: delayed interrupts, timers.
    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }
    /// Called at or after the time [`PciDevice::next_deadline_ns`] named.
    fn on_deadline(&mut self, _now_ns: u64) {}
}

/// The PCI command register bits a device model obeys.
pub mod command {
    /// Respond to I/O-space BAR accesses.
    pub const IO_SPACE: u16 = 1 << 0;
    /// Respond to memory-space BAR accesses.
    pub const MEMORY_SPACE: u16 = 1 << 1;
    /// May master the bus (DMA, MSI writes).
    pub const BUS_MASTER: u16 = 1 << 2;
    /// INTx is disabled.
    pub const INTX_DISABLE: u16 = 1 << 10;
}
