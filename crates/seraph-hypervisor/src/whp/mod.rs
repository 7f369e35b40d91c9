//! Windows Hypervisor Platform backend.
//!
//! [`WhpHypervisor`] implements the crate's traits on `WinHvPlatform.dll`
//! and `WinHvEmulation.dll`, resolved at run time ([`api`]). The partition
//! runs with local APIC emulation off (the VMM's own LAPIC and PIC models
//! serve, as on KVM), CPUID and MSR exits on, and exception exits for
//! guest debugging.
//!
//! - Port I/O: plain `in`/`out` are finished here from the exit context
//!   (RAX merge and RIP advance at the next `run`); string and REP forms and
//!   all MMIO go through the WHP instruction emulator ([`replay`]), which
//!   reads and writes RAM in the host mapping and hands only unbacked
//!   guest-physical addresses to the VMM.
//! - Hypercalls: an `out` to [`crate::VmConfig::hypercall_port`] is
//!   reported as [`crate::VmExit::Hypercall`]; VMCALL stays the Microsoft
//!   hypervisor's ([`config::VMCALL_REACHES_VMM`]).
//! - CPUID: the leaves of [`cpuid::cpuid_exit_leaves`] exit and are
//!   answered from the vCPU's `set_cpuid` table with the state-dependent
//!   bits filled in ([`cpuid`]); before any `set_cpuid` they are reported
//!   as [`crate::VmExit::Cpuid`].
//! - Interrupts and exceptions: queued ([`events`]) and written one at a
//!   time to `WHvRegisterPendingInterruption`; the interrupt window through
//!   `WHvX64RegisterDeliverabilityNotifications`.
//! - Kicks cancel only a running VP ([`kick`]).
//!
//! The decisions are pure functions in [`translate`], [`pending`],
//! [`events`], [`replay`], [`regions`], [`debug`], [`cpuid`],
//! [`addressing`], [`config`], [`kick`] and [`hresult`], unit-tested on
//! Linux; `partition.rs`, `vcpu.rs`, `run.rs` and `emulator.rs` make the
//! calls. None of it has been run on Windows on this project's machines:
//! see `docs/windows.md`.

pub mod addressing;
pub mod api;
pub mod config;
pub mod cpuid;
pub mod debug;
pub mod dirty;
mod emulator;
pub mod entry;
pub mod events;
pub mod hresult;
pub mod kick;
mod partition;
pub mod pending;
pub mod plan;
pub mod regions;
pub mod registers;
pub mod replay;
mod run;
pub mod translate;
mod vcpu;

use windows_sys::Win32::System::Hypervisor::{WHV_REGISTER_VALUE, WHV_RUN_VP_EXIT_CONTEXT};

pub use kick::WhpKick;
pub use partition::{WhpHypervisor, WhpVm};
pub use vcpu::WhpVcpu;

/// Size of a vCPU's I/O buffer: the most bytes one exit carries.
pub const IO_BUFFER_LEN: usize = 4096;

/// `WHV_REGISTER_VALUE` is 16-byte aligned in C; `windows-sys` declares
/// it with 8-byte alignment, so arrays handed to WHP are wrapped in this.
#[repr(C, align(16))]
struct Aligned<T>(T);

/// The exit context buffer, aligned as WHP declares it.
type ExitBuffer = Aligned<WHV_RUN_VP_EXIT_CONTEXT>;

/// A register value holding `v`.
fn reg64(v: u64) -> WHV_REGISTER_VALUE {
    let mut r = WHV_REGISTER_VALUE::default();
    r.Reg64 = v;
    r
}

/// The low 64 bits of a register value.
fn value64(v: &WHV_REGISTER_VALUE) -> u64 {
    // SAFETY: WHV_REGISTER_VALUE is a 16-byte union of plain integers and
    // structs of integers; any bit pattern is a valid u64 in its first 8 bytes.
    unsafe { v.Reg64 }
}
