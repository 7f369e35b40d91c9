//! Guest faults explained on both architectures.
//!
//! - [`x86`]: the exception table, #PF and selector error codes, a page
//!   walker that says which level refused an access and why, the guest's
//!   IDT (delivery problems, which handler a halted RIP is in, the
//!   exception frame), and [`x86::explain_x86`], which turns what a VMM
//!   can read after a triple fault into one [`FaultReport`].
//! - [`aarch64`]: ESR_EL2 decoded into an exception class and a typed ISS
//!   for every class a hypervisor sees from a guest, system-register
//!   names, and the mapping of a trap onto the arch-neutral
//!   [`seraph_hypervisor::VmExit`].
//! - [`report`]: the [`FaultReport`] both halves produce, printed in the
//!   same words: fault kind, address, access, cause and level.
//!
//! Everything here is pure: guest memory is read through bounds-checked
//! `vm-memory` accesses and nothing panics on guest-controlled values.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod aarch64;
pub mod report;
pub mod x86;

pub use report::{Access, Arch, Cause, Denied, FaultReport, Level};
