//! An NVMe controller model backed by a block image: the "Atlas disk".
//!
//! [`NvmeController`] is a PCI function (class 01/08/02, a 64-bit memory
//! BAR0 with the NVMe 1.4 registers, doorbells with CAP.DSTRD = 0, and the
//! MSI-X table and pending bits above them) serving one namespace from a
//! [`DiskImage`]. It is a pure state machine: register accesses come in
//! through [`seraph_pci::PciDevice::bar_write`]/`bar_read`, data moves
//! through a bounds-checked [`seraph_pci::GuestDma`], interrupts go out
//! through an [`seraph_irq::IrqLine`] (INTx) and an [`seraph_irq::MsiSink`]
//! (MSI-X). Commands execute when the guest rings a doorbell, a bounded
//! batch at a time. See docs/nvme.md.
//!
//! ```no_run
//! use std::sync::Arc;
//! use seraph_nvme::{DiskImage, DiskSpec, NvmeController};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let disk = DiskImage::open(&DiskSpec::parse("disk.img,lba=512")?)?;
//! let dma = seraph_pci::GuestDma::new(seraph_pci::dma::test_memory(1 << 20));
//! let nvme = NvmeController::new(
//!     disk,
//!     dma,
//!     seraph_irq::IrqLine::disconnected(),
//!     Arc::new(seraph_irq::NoMsi),
//! );
//! # let _ = nvme; Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod admin;
pub mod backend;
pub mod command;
pub mod controller;
pub mod identify;
mod io;
pub mod msix;
pub mod prp;
pub mod queue;
mod regs;
pub mod spec;

pub use backend::{DiskError, DiskImage, DiskSpec};
pub use command::{Command, Completion};
pub use controller::NvmeController;
pub use spec::Status;
