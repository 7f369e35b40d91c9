//! A GDB remote-protocol server for debugging Seraph-V guests, built on
//! [gdbstub](https://docs.rs/gdbstub/0.7).
//!
//! The server drives an abstract [`DebugTarget`] (one vCPU) from its own
//! thread; the VMM implements the trait over a channel to its vCPU thread.
//! It offers gdb the x86_64 registers plus CR0/CR2/CR3/CR4/CR8, EFER and
//! FS/GS base (a custom target description), guest-virtual memory, four
//! hardware slots shared by `hbreak`, `break` (placed in a hardware slot:
//! int3 is not usable on every host) and `watch`/`awatch`, single-step,
//! continue, Ctrl-C, detach and kill, and tells gdb when the guest exits
//! (`W`) or dies (`X`).
//!
//! A VMM runs it on its own thread; [`port::debug_port`] provides the
//! channel between that thread and the vCPU loop:
//!
//! ```no_run
//! # fn demo(target: &mut dyn seraph_gdb::DebugTarget) -> Result<(), Box<dyn std::error::Error>> {
//! let server = seraph_gdb::GdbServer::listen(seraph_gdb::parse_gdb_addr("tcp::1234")?)?;
//! eprintln!("{}", seraph_gdb::waiting_message(server.local_addr()));
//! loop {
//!     match server.serve_one(target)? {
//!         seraph_gdb::SessionEnd::Exited(_)
//!         | seraph_gdb::SessionEnd::Terminated(_)
//!         | seraph_gdb::SessionEnd::Killed => break,
//!         // Detached, or the client went away: the guest runs on; wait for the next gdb.
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod adapter;
mod addr;
pub mod arch;
mod framer;
pub mod port;
mod server;
mod target;

pub use addr::{AddrError, DEFAULT_GDB_ADDR, parse_gdb_addr, waiting_message};
pub use server::{GdbError, GdbServer, SessionEnd, serve};
pub use target::{
    CpuState, DebugError, DebugResult, DebugTarget, ResumeMode, SLOTS, StopEvent, TerminateReason,
};
