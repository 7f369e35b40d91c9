//! The abstract debug target the server drives: the VMM implements
//! [`DebugTarget`] over a channel to its vCPU thread.

use std::time::Duration;

use seraph_hypervisor::debug::HW_SLOTS;
use seraph_hypervisor::{DebugCause, GuestDebug, HwBreakKind, Regs, SpecialRegs};

/// The register state gdb sees: the backend's own structs, so the VMM
/// converts nothing (segment selectors, FS/GS base, CR0-CR4, CR8 and EFER
/// are read from [`SpecialRegs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuState {
    /// General-purpose registers, RIP and RFLAGS.
    pub regs: Regs,
    /// Segment, control and descriptor-table registers.
    pub sregs: SpecialRegs,
}

/// How [`DebugTarget::resume`] lets the guest go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeMode {
    /// Run until a breakpoint, a watchpoint, an interrupt or the end.
    Continue,
    /// Execute one instruction, then report [`StopEvent::Step`].
    Step,
}

/// Why a run ended for good without the guest's EXIT hypercall; gdb shows
/// it as the signal that "terminated" the program (an `X` packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminateReason {
    /// Triple fault / shutdown (reported as SIGSEGV).
    TripleFault,
    /// The hypervisor could not emulate an instruction (SIGILL).
    EmulationFailure,
    /// The hypervisor refused to enter the guest, or failed (SIGABRT).
    HypervisorFailure,
    /// HLT with interrupts off: the guest can never wake (SIGHUP).
    Hang,
    /// The run's `--timeout` expired (SIGALRM).
    Timeout,
    /// The run was stopped from outside, e.g. Ctrl-C in the VMM's terminal (SIGTERM).
    Stopped,
}

impl TerminateReason {
    /// The POSIX-style signal number gdb prints for this reason.
    pub fn signal(self) -> u8 {
        match self {
            TerminateReason::TripleFault => 11,
            TerminateReason::EmulationFailure => 4,
            TerminateReason::HypervisorFailure => 6,
            TerminateReason::Hang => 1,
            TerminateReason::Timeout => 14,
            TerminateReason::Stopped => 15,
        }
    }
}

/// What stopped the guest, reported by [`DebugTarget::wait_stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopEvent {
    /// A hardware execute breakpoint fired (RIP is at the breakpoint).
    Breakpoint,
    /// A watchpoint fired after an access to `addr`.
    Watchpoint {
        /// The watched address (the slot's address).
        addr: u64,
        /// The slot's kind ([`HwBreakKind::Write`] or [`HwBreakKind::ReadWrite`]).
        kind: HwBreakKind,
    },
    /// One instruction was executed under [`ResumeMode::Step`].
    Step,
    /// The guest stopped because [`DebugTarget::interrupt`] asked it to.
    Interrupted,
    /// The guest called EXIT with this status (its low 8 bits, as the
    /// process exit code); the session ends with a `W` packet.
    Exited(u8),
    /// The run ended otherwise; the session ends with an `X` packet.
    Terminated(TerminateReason),
}

impl StopEvent {
    /// Converts a backend debug exit into a stop event, given the
    /// [`GuestDebug`] last passed to [`DebugTarget::set_guest_debug`] (for a
    /// watchpoint's address and kind).
    pub fn from_debug_cause(cause: DebugCause, debug: &GuestDebug) -> StopEvent {
        match cause {
            DebugCause::SingleStep => StopEvent::Step,
            DebugCause::HwBreakpoint(_) | DebugCause::SoftwareBreakpoint => StopEvent::Breakpoint,
            DebugCause::Watchpoint(slot) => {
                match debug.hw.get(usize::from(slot)).copied().flatten() {
                    Some(bp) => StopEvent::Watchpoint {
                        addr: bp.addr,
                        kind: bp.kind,
                    },
                    None => StopEvent::Breakpoint,
                }
            }
            DebugCause::Unknown if debug.single_step => StopEvent::Step,
            DebugCause::Unknown => StopEvent::Breakpoint,
        }
    }
}

/// Errors a [`DebugTarget`] reports; all but [`DebugError::Gone`] become an
/// `E` reply and the session goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DebugError {
    /// The guest-virtual address is not mapped (or not backed by RAM).
    #[error("guest address {addr:#x} is not mapped")]
    Unmapped {
        /// The first address that could not be accessed.
        addr: u64,
    },
    /// The request is malformed or not allowed (e.g. a segment selector write).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The target cannot do this.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The backend failed (an ioctl error, say); the session goes on.
    #[error("backend error: {0}")]
    Backend(String),
    /// The vCPU is gone (its thread ended, the channel closed): the session ends.
    #[error("the vCPU is gone")]
    Gone,
}

impl DebugError {
    /// The errno-style code sent to gdb in the `E` reply.
    pub fn errno(&self) -> u8 {
        match self {
            DebugError::Unmapped { .. } => 14,              // EFAULT
            DebugError::Invalid(_) => 22,                   // EINVAL
            DebugError::Unsupported(_) => 95,               // EOPNOTSUPP
            DebugError::Backend(_) | DebugError::Gone => 5, // EIO
        }
    }
}

/// Result type of [`DebugTarget`] calls.
pub type DebugResult<T> = Result<T, DebugError>;

/// The guest as the gdb server sees it: one vCPU that is either stopped
/// (the server may read and write its state) or running (the server only
/// calls [`DebugTarget::interrupt`] and [`DebugTarget::wait_stop`]).
///
/// The server calls it from its own thread; a VMM implements it by sending
/// requests to the vCPU thread and waiting for the answers. Each session
/// begins with [`DebugTarget::attach`], which leaves the vCPU stopped.
pub trait DebugTarget: Send {
    /// A session starts: stop the vCPU if it runs (like gdb's Ctrl-C, but
    /// without a stop report) and return once it is stopped; an error if
    /// the run is already over.
    fn attach(&mut self) -> DebugResult<()>;
    /// Reads the register state of the stopped vCPU.
    fn read_registers(&mut self) -> DebugResult<CpuState>;
    /// Writes the register state of the stopped vCPU (`Vcpu::set_regs` and,
    /// if `sregs` changed, `Vcpu::set_special_regs`).
    fn write_registers(&mut self, state: &CpuState) -> DebugResult<()>;
    /// Reads guest memory at guest-virtual `addr` through the current page
    /// tables; all of `buf` or an error (the server never asks across a
    /// 4 KiB page boundary).
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> DebugResult<()>;
    /// Writes guest memory at guest-virtual `addr`; all of `data` or an
    /// error (never across a 4 KiB page boundary).
    fn write_memory(&mut self, addr: u64, data: &[u8]) -> DebugResult<()>;
    /// Sets the vCPU's debug configuration (`Vcpu::set_guest_debug`): the
    /// hardware slots and single-step. The server calls it before every
    /// resume (gdb inserts breakpoints just before it resumes).
    fn set_guest_debug(&mut self, debug: &GuestDebug) -> DebugResult<()>;
    /// Lets the stopped vCPU run (the configuration from the last
    /// [`DebugTarget::set_guest_debug`] already has `single_step` set for
    /// [`ResumeMode::Step`]). Returns at once; the stop comes from
    /// [`DebugTarget::wait_stop`].
    fn resume(&mut self, mode: ResumeMode) -> DebugResult<()>;
    /// Asks the running vCPU to stop (gdb's Ctrl-C); it then reports
    /// [`StopEvent::Interrupted`] (or whatever stopped it first).
    fn interrupt(&mut self) -> DebugResult<()>;
    /// Waits up to `timeout` for the running vCPU to stop; `None` if it is
    /// still running.
    fn wait_stop(&mut self, timeout: Duration) -> DebugResult<Option<StopEvent>>;
    /// Ends the run (gdb's `kill`): the VMM reports it with its own exit code.
    fn kill(&mut self);
    /// Clears the debug state and lets the guest run on without a debugger.
    fn detach(&mut self);
}

/// Number of hardware slots the server hands out (x86 DR0-DR3).
pub const SLOTS: usize = HW_SLOTS;

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_hypervisor::HwBreakpoint;

    #[test]
    fn debug_causes_become_stop_events() {
        let mut debug = GuestDebug::default();
        debug.hw[2] = Some(HwBreakpoint {
            addr: 0x5000,
            kind: HwBreakKind::Write,
            len: 8,
        });
        let ev = |c| StopEvent::from_debug_cause(c, &debug);
        assert_eq!(ev(DebugCause::SingleStep), StopEvent::Step);
        assert_eq!(ev(DebugCause::HwBreakpoint(0)), StopEvent::Breakpoint);
        assert_eq!(ev(DebugCause::SoftwareBreakpoint), StopEvent::Breakpoint);
        assert_eq!(
            ev(DebugCause::Watchpoint(2)),
            StopEvent::Watchpoint {
                addr: 0x5000,
                kind: HwBreakKind::Write
            }
        );
        assert_eq!(ev(DebugCause::Watchpoint(7)), StopEvent::Breakpoint);
        assert_eq!(ev(DebugCause::Unknown), StopEvent::Breakpoint);
        debug.single_step = true;
        assert_eq!(
            StopEvent::from_debug_cause(DebugCause::Unknown, &debug),
            StopEvent::Step
        );
        assert_eq!(TerminateReason::TripleFault.signal(), 11);
        assert_eq!(DebugError::Unmapped { addr: 1 }.errno(), 14);
    }
}
