//! Hypervisor backends for Seraph-V.
//!
//! Three traits describe what a VMM needs from a hypervisor: a
//! [`Hypervisor`] makes VMs, a [`Vm`] maps guest memory and makes vCPUs, and
//! a [`Vcpu`] holds register state and runs until a [`VmExit`]. The exit
//! model is arch-neutral: port I/O is x86-only, while MMIO, halt, hypercall,
//! shutdown and debug exits also describe AArch64 (see
//! `docs/architecture.md` and the exit-mapping table in the spec).
//!
//! Nothing here knows about devices or boot protocols: a backend reports
//! what the guest did, and the VMM decides what it means.
//!
//! Backends: [`kvm`] on Linux; `whp` (Windows Hypervisor Platform) on
//! Windows, or on any OS with the `whp-check` feature for type-checking.

pub mod debug;
pub mod exit;
pub mod x86;

#[cfg(target_os = "linux")]
pub mod kvm;

#[cfg(any(windows, feature = "whp-check"))]
pub mod whp;

use std::sync::Arc;

pub use debug::{DebugCause, GuestDebug, HwBreakKind, HwBreakpoint, PendingException, VcpuEvents};
pub use exit::{Completion, ExitKind, Hypercall, InstructionBytes, ShutdownReason, VmExit};
pub use x86::{CpuidEntry, DescriptorTable, Regs, Segment, SpecialRegs};

/// Errors from a hypervisor backend.
#[derive(Debug, thiserror::Error)]
pub enum HypervisorError {
    /// The hypervisor cannot be used on this host (device missing, no permission, feature off).
    #[error("{0}")]
    Unavailable(String),
    /// A backend call failed.
    #[error("{call} failed: {source}")]
    Call {
        /// The backend operation (an ioctl or API function name).
        call: &'static str,
        /// The OS error behind it.
        source: std::io::Error,
    },
    /// The request is valid but this backend cannot do it.
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
    /// A request the caller got wrong (bad region, unknown slot, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, HypervisorError>;

/// How a VM is created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmConfig {
    /// A port whose `out` the backend reports as [`VmExit::Hypercall`]
    /// (registers read with the spec's convention: RAX = number, arguments
    /// in RDI, RSI, RDX, RCX). The documented transport on every backend:
    /// KVM keeps VMCALL to itself, and WHP applies the Hyper-V hypercall ABI
    /// to it.
    pub hypercall_port: Option<u16>,
    /// MSRs whose reads and writes the VMM answers ([`VmExit::MsrRead`] /
    /// [`VmExit::MsrWrite`]), e.g. IA32_APIC_BASE for a VMM-side local APIC.
    /// Where the backend can, accesses to MSRs it does not know exit too.
    pub vmm_msrs: Vec<u32>,
}

/// A range of host memory to show the guest as guest-physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Backend slot number, unique per VM.
    pub slot: u32,
    /// First guest-physical address.
    pub guest_addr: u64,
    /// Length in bytes (a multiple of the host page size).
    pub size: u64,
    /// Host virtual address of the backing memory.
    pub host_addr: *mut u8,
}

/// A hypervisor: makes VMs.
pub trait Hypervisor {
    /// The VM type of this backend.
    type Vm: Vm;
    /// A short name for reports ("kvm", "whp").
    fn name(&self) -> &'static str;
    /// Creates an empty VM.
    fn create_vm(&self, config: &VmConfig) -> Result<Self::Vm>;
    /// True if a guest's VMCALL/VMMCALL reaches the VMM as
    /// [`VmExit::Hypercall`] with the Seraph registers intact; false where
    /// the hypervisor answers it itself (KVM) or applies its own ABI to it
    /// (WHP), so guests need [`VmConfig::hypercall_port`].
    fn hypercall_instruction_exits(&self) -> bool;
    /// True if hardware data breakpoints (write/access watchpoints through
    /// [`Vcpu::set_guest_debug`]) fire on this host. Execute breakpoints and
    /// single-step always work; a host that emulates guest code instead of
    /// running it may check no data breakpoints, and a debugger then
    /// watches by single-stepping.
    fn data_breakpoints(&self) -> bool {
        true
    }
    /// The CPUID leaves the host and hypervisor can offer a guest, before the VMM filters them.
    fn supported_cpuid(&self) -> Result<Vec<CpuidEntry>>;
}

/// Which pages of a memory slot the guest wrote since the last look.
pub trait DirtyLog: Send + Sync {
    /// A bitmap of the slot's 4 KiB pages written since the last call (bit
    /// N of word N / 64 = page N), and clears it.
    fn take(&self) -> Result<Vec<u64>>;
}

/// A virtual machine: guest memory and vCPUs.
pub trait Vm {
    /// The vCPU type of this backend.
    type Vcpu: Vcpu;
    /// Starts tracking guest writes to memory slot `slot` (already mapped)
    /// and returns a handle that reads and clears the dirty bitmap from any
    /// thread (KVM_GET_DIRTY_LOG; WHvQueryGpaRangeDirtyBitmap).
    fn enable_dirty_log(&mut self, slot: u32) -> Result<Arc<dyn DirtyLog>>;
    /// Maps host memory into the guest-physical address space.
    ///
    /// # Safety
    /// `region.host_addr..+region.size` must be mapped, writable memory that
    /// stays valid, and is not unmapped or remapped, for as long as the VM
    /// exists: the guest reads and writes it at any time.
    unsafe fn map_memory(&mut self, region: MemoryRegion) -> Result<()>;
    /// Creates vCPU number `id`.
    fn create_vcpu(&mut self, id: u32) -> Result<Self::Vcpu>;
}

/// Stops a running vCPU from another thread (or a timer), so the VMM gets control.
pub trait VcpuKick: Send + Sync {
    /// Makes the vCPU's current or next `run` return [`VmExit::Interrupted`] soon.
    fn kick(&self);
}

/// A virtual CPU. `Send`: a VMM may build it on one thread and run it on
/// another (its own vCPU thread); it is used by one thread at a time, and
/// other threads reach it only through its [`VcpuKick`].
pub trait Vcpu: Send {
    /// General-purpose registers, RIP and RFLAGS.
    fn regs(&self) -> Result<Regs>;
    /// Sets general-purpose registers, RIP and RFLAGS.
    fn set_regs(&mut self, regs: &Regs) -> Result<()>;
    /// Segment, control and descriptor-table registers.
    fn special_regs(&self) -> Result<SpecialRegs>;
    /// Sets segment, control and descriptor-table registers.
    fn set_special_regs(&mut self, sregs: &SpecialRegs) -> Result<()>;
    /// Sets what CPUID reports to this vCPU.
    fn set_cpuid(&mut self, entries: &[CpuidEntry]) -> Result<()>;
    /// Runs the guest until it exits to the VMM.
    fn run(&mut self) -> Result<VmExit<'_>>;
    /// Finishes an exit that needs an answer (hypercall result, MSR value, CPUID result).
    fn complete(&mut self, completion: Completion) -> Result<()>;
    /// Queues external interrupt `vector` for delivery at the next entry; only
    /// valid when [`Vcpu::can_inject_interrupt`] is true.
    fn inject_interrupt(&mut self, vector: u8) -> Result<()>;
    /// True if the guest can take an external interrupt right now (IF = 1, no interrupt shadow).
    fn can_inject_interrupt(&self) -> bool;
    /// Asks for (or stops asking for) a [`VmExit::InterruptWindow`] once the guest can take an interrupt.
    fn request_interrupt_window(&mut self, wanted: bool);
    /// A handle that stops this vCPU's `run` from elsewhere.
    fn kicker(&self) -> Arc<dyn VcpuKick>;
    /// CR8 (the task priority, TPR bits 7:4) as the guest left it at the last exit.
    fn cr8(&mut self) -> Result<u8> {
        Ok((self.special_regs()?.cr8 & 0xf) as u8)
    }
    /// Sets CR8 for the next entry (the VMM keeps it equal to its LAPIC's TPR bits 7:4).
    fn set_cr8(&mut self, cr8: u8) -> Result<()> {
        let mut sregs = self.special_regs()?;
        sregs.cr8 = u64::from(cr8 & 0xf);
        self.set_special_regs(&sregs)
    }
    /// Sets hardware breakpoints/watchpoints and single-step; debug events
    /// then end `run` with [`VmExit::Debug`].
    fn set_guest_debug(&mut self, debug: &GuestDebug) -> Result<()>;
    /// The exception and interrupt the vCPU is delivering or has pending.
    fn events(&self) -> Result<VcpuEvents>;
    /// Translates guest-virtual `addr` through the vCPU's current paging
    /// state; `None` if it is not mapped.
    fn translate(&self, addr: u64) -> Result<Option<u64>>;
}
