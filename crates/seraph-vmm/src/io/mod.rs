//! I/O off the vCPU thread.
//!
//! Output (COM1 and PRINT to stdout or a file) is queued by the devices
//! and written by one I/O thread, so a full pipe or a slow terminal never
//! stalls the guest: when the bounded queue is full, output is dropped and
//! counted instead. Input (stdin into COM1) is read by its own thread and
//! pushed into the device, which raises its interrupt line.

pub mod input;
pub mod output;

pub use input::{InputEvent, InputHandle, StdinOptions, spawn_serial_input};
pub use output::{OutputQueue, OutputStats, QueueWriter, Sink, SinkFailure, SinkId};
