//! The VMM's side of the GDB stub: a [`seraph_gdb::DebugTarget`] over the
//! vCPU loop's control channel, and a server thread that serves gdb
//! sessions until the run ends.
//!
//! The gdb server runs on its own thread. Every register or memory request
//! becomes a task that runs on the paused vCPU's thread
//! ([`VcpuControl::with_vcpu`]); resume, interrupt and debug exits travel
//! as control requests and [`VcpuEvent`]s. Guest-virtual addresses are
//! translated by the hypervisor (`Vcpu::translate`), falling back to
//! physical for addresses inside guest memory when paging is off or the
//! address is not mapped.

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use seraph_gdb::{
    CpuState, DebugError, DebugResult, DebugTarget, GdbServer, ResumeMode, SessionEnd, StopEvent,
    TerminateReason,
};
use seraph_hypervisor::GuestDebug;
use vm_memory::{Bytes, GuestAddress};

use crate::control::{Paused, VcpuControl, VcpuEvent};
use crate::error::VmmError;
use crate::report::RunOutcome;
use crate::stop::{StopHandle, StopReason};

/// How long a stop request waits for the vCPU to pause.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The machine as gdb sees it.
pub struct VmmDebugTarget {
    control: VcpuControl,
    events: Receiver<VcpuEvent>,
    stop: StopHandle,
    debug: GuestDebug,
    /// How the run ended, once it has.
    ended: Option<StopEvent>,
}

impl std::fmt::Debug for VmmDebugTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmmDebugTarget")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// What gdb is told when the run ends with `outcome`.
fn end_event(outcome: &RunOutcome) -> StopEvent {
    StopEvent::Terminated(match outcome {
        RunOutcome::TripleFault { .. } => TerminateReason::TripleFault,
        RunOutcome::EmulationFailure { .. } => TerminateReason::EmulationFailure,
        RunOutcome::HypervisorFailure { .. } => TerminateReason::HypervisorFailure,
        RunOutcome::DeadHalt { .. } | RunOutcome::Idle { .. } => TerminateReason::Hang,
        RunOutcome::Timeout { .. } => TerminateReason::Timeout,
        RunOutcome::GuestExit { status } => return StopEvent::Exited((*status & 0xff) as u8),
        RunOutcome::Interrupted | RunOutcome::Killed | RunOutcome::Signalled { .. } => {
            TerminateReason::Stopped
        }
    })
}

fn backend(e: impl std::fmt::Display) -> DebugError {
    DebugError::Backend(e.to_string())
}

/// Translates guest-virtual `addr` for an access of `len` bytes (never
/// across a page): through the vCPU, else physical if inside guest memory.
fn guest_physical(p: &Paused<'_>, addr: u64, len: usize) -> DebugResult<u64> {
    let translated = p.vcpu.translate(addr).ok().flatten();
    let phys = translated.unwrap_or(addr);
    let inside = crate::guest_view::physically_backed(p.mem, phys, len);
    if inside {
        Ok(phys)
    } else {
        Err(DebugError::Unmapped { addr })
    }
}

impl VmmDebugTarget {
    /// A target driving the vCPU through `control`, told about stops by
    /// `events`; `stop` ends the run for gdb's `kill`.
    pub fn new(control: VcpuControl, events: Receiver<VcpuEvent>, stop: StopHandle) -> Self {
        Self {
            control,
            events,
            stop,
            debug: GuestDebug::default(),
            ended: None,
        }
    }

    fn event_to_stop(&mut self, event: VcpuEvent) -> StopEvent {
        let stop = match event {
            VcpuEvent::Paused { .. } => StopEvent::Interrupted,
            VcpuEvent::Debug { cause, .. } => StopEvent::from_debug_cause(cause, &self.debug),
            VcpuEvent::Exited(status) => StopEvent::Exited((status & 0xff) as u8),
            VcpuEvent::Ended(outcome) => end_event(&outcome),
        };
        if matches!(stop, StopEvent::Exited(_) | StopEvent::Terminated(_)) {
            self.ended = Some(stop);
        }
        stop
    }

    /// Waits for the vCPU to report that it stopped.
    fn wait_paused(&mut self) -> DebugResult<StopEvent> {
        match self.events.recv_timeout(PAUSE_TIMEOUT) {
            Ok(event) => Ok(self.event_to_stop(event)),
            Err(RecvTimeoutError::Timeout) => Err(DebugError::Backend(
                "the vCPU did not stop within 30 s".into(),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(DebugError::Gone),
        }
    }

    fn on_vcpu<T: Send + 'static>(
        &self,
        f: impl FnOnce(Paused<'_>) -> DebugResult<T> + Send + 'static,
    ) -> DebugResult<T> {
        if self.ended.is_some() {
            return Err(DebugError::Gone);
        }
        self.control.with_vcpu(f).ok_or(DebugError::Gone)?
    }
}

impl DebugTarget for VmmDebugTarget {
    fn attach(&mut self) -> DebugResult<()> {
        if self.ended.is_some() {
            return Err(DebugError::Gone);
        }
        // A vCPU held at its first instruction has already said so.
        if let Ok(event) = self.events.try_recv() {
            if matches!(
                self.event_to_stop(event),
                StopEvent::Exited(_) | StopEvent::Terminated(_)
            ) {
                return Err(DebugError::Gone);
            }
            return Ok(());
        }
        if !self.control.pause() {
            return Err(DebugError::Gone);
        }
        match self.wait_paused()? {
            StopEvent::Exited(_) | StopEvent::Terminated(_) => Err(DebugError::Gone),
            _ => Ok(()),
        }
    }

    fn read_registers(&mut self) -> DebugResult<CpuState> {
        self.on_vcpu(|p| {
            Ok(CpuState {
                regs: p.vcpu.regs().map_err(backend)?,
                sregs: p.vcpu.special_regs().map_err(backend)?,
            })
        })
    }

    fn write_registers(&mut self, state: &CpuState) -> DebugResult<()> {
        let state = *state;
        self.on_vcpu(move |p| {
            p.vcpu.set_regs(&state.regs).map_err(backend)?;
            if p.vcpu.special_regs().map_err(backend)? != state.sregs {
                p.vcpu.set_special_regs(&state.sregs).map_err(backend)?;
            }
            Ok(())
        })
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> DebugResult<()> {
        let len = buf.len();
        let bytes = self.on_vcpu(move |p| {
            let phys = guest_physical(&p, addr, len)?;
            let mut out = vec![0u8; len];
            p.mem
                .read_slice(&mut out, GuestAddress(phys))
                .map_err(|_| DebugError::Unmapped { addr })?;
            Ok(out)
        })?;
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> DebugResult<()> {
        let data = data.to_vec();
        self.on_vcpu(move |p| {
            let phys = guest_physical(&p, addr, data.len())?;
            p.mem
                .write_slice(&data, GuestAddress(phys))
                .map_err(|_| DebugError::Unmapped { addr })
        })
    }

    fn set_guest_debug(&mut self, debug: &GuestDebug) -> DebugResult<()> {
        let wanted = *debug;
        self.on_vcpu(move |p| p.vcpu.set_guest_debug(&wanted).map_err(backend))?;
        self.debug = wanted;
        Ok(())
    }

    fn resume(&mut self, _mode: ResumeMode) -> DebugResult<()> {
        if self.ended.is_some() || !self.control.resume() {
            return Err(DebugError::Gone);
        }
        Ok(())
    }

    fn interrupt(&mut self) -> DebugResult<()> {
        if self.ended.is_some() || !self.control.pause() {
            return Err(DebugError::Gone);
        }
        Ok(())
    }

    fn wait_stop(&mut self, timeout: Duration) -> DebugResult<Option<StopEvent>> {
        if let Some(ended) = self.ended {
            return Ok(Some(ended));
        }
        match self.events.recv_timeout(timeout) {
            Ok(event) => Ok(Some(self.event_to_stop(event))),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(DebugError::Gone),
        }
    }

    fn kill(&mut self) {
        self.stop.stop(StopReason::DebuggerKill);
        self.ended
            .get_or_insert(StopEvent::Terminated(TerminateReason::Stopped));
    }

    fn detach(&mut self) {
        if self.ended.is_some() {
            return;
        }
        let _ = self.set_guest_debug(&GuestDebug::default());
        let _ = self.control.resume();
    }
}

/// A gdb server bound to its address, before the run starts.
pub struct GdbStub {
    server: GdbServer,
}

impl std::fmt::Debug for GdbStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GdbStub")
            .field("addr", &self.server.local_addr())
            .finish()
    }
}

impl GdbStub {
    /// Binds the server (before the guest runs, so the address is known).
    pub fn listen(addr: SocketAddr) -> Result<Self, VmmError> {
        let server = GdbServer::listen(addr)
            .map_err(|e| VmmError::Output(format!("cannot listen for gdb on {addr}: {e}")))?;
        Ok(Self { server })
    }

    /// Where gdb connects.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves gdb sessions on a thread of their own until the run ends
    /// (a detached or disconnected gdb may connect again).
    pub fn spawn(
        self,
        mut target: VmmDebugTarget,
    ) -> Result<std::thread::JoinHandle<()>, VmmError> {
        std::thread::Builder::new()
            .name("seraph-v-gdb".into())
            .spawn(move || {
                loop {
                    match self.server.serve_one(&mut target) {
                        Ok(SessionEnd::Detached | SessionEnd::ClientGone)
                        | Err(seraph_gdb::GdbError::Protocol(_)) => {
                            if target.ended.is_some() {
                                return;
                            }
                        }
                        Ok(_) | Err(_) => return,
                    }
                }
            })
            .map_err(VmmError::Thread)
    }
}
