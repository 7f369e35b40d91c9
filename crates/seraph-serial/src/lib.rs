//! The COM1 16550 UART of Seraph-V.
//!
//! Register behaviour comes from `vm_superio::Serial`; this crate adds what
//! the VMM needs around it:
//!
//! - [`Serial`] is a [`seraph_bus::BusDevice`] over the UART's 8 ports
//!   (put it on the port-I/O bus at [`COM1_BASE`], [`COM1_LEN`] ports).
//! - Output goes to a [`SerialOutput`] (stdout, a file, capture only, or
//!   nowhere), buffered to a line (no system call per byte), and a bounded
//!   ring of the most recent output is kept for tests ([`Serial::captured`]).
//!   A sink that fails (closed stdout, full disk) loses output, never the
//!   guest: failures are counted.
//! - Interrupt requests (IRQ 4) are recorded in a [`SerialIrq`] that the VMM
//!   polls with [`Serial::take_irq`] or from a cloned handle.

#![forbid(unsafe_code)]

mod capture;
mod device;
mod error;
mod irq;
mod output;

pub use capture::CaptureRing;
pub use device::{COM1_BASE, COM1_IRQ, COM1_LEN, DEFAULT_CAPTURE_LIMIT, Serial};
pub use error::SerialError;
pub use irq::SerialIrq;
pub use output::{SINK_BUFFER_LIMIT, SerialOutput};
