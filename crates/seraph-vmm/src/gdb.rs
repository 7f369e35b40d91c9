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
use seraph_hypervisor::{GuestDebug, HwBreakKind};
use vm_memory::{Bytes, GuestAddress};

use crate::control::{Paused, VcpuControl, VcpuEvent};
use crate::error::VmmError;
use crate::report::RunOutcome;
use crate::stop::{StopHandle, StopReason};

/// How long a stop request waits for the vCPU to pause.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A watchpoint kept by single-stepping (a host without data breakpoints).
#[derive(Debug, Clone, Copy)]
struct SoftWatch {
    addr: u64,
    len: u8,
    kind: HwBreakKind,
    value: u64,
}

/// The machine as gdb sees it.
pub struct VmmDebugTarget {
    control: VcpuControl,
    events: Receiver<VcpuEvent>,
    stop: StopHandle,
    debug: GuestDebug,
    /// How the run ended, once it has.
    ended: Option<StopEvent>,
    /// Hardware data breakpoints fire on this host.
    hw_watch: bool,
    /// Watchpoints kept in software (when `hw_watch` is false).
    soft: Vec<SoftWatch>,
    /// gdb itself asked for single-step (not just the software watchpoints).
    gdb_step: bool,
    /// gdb asked to stop (Ctrl-C) and has not been told yet.
    interrupt_asked: bool,
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
        RunOutcome::Interrupted
        | RunOutcome::Killed
        | RunOutcome::PoweredOff
        | RunOutcome::Signalled { .. } => TerminateReason::Stopped,
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
    /// `events`; `stop` ends the run for gdb's `kill`. Without
    /// `hw_watchpoints` (the host's `Hypervisor::data_breakpoints`), write
    /// and access watchpoints are kept by single-stepping and comparing the
    /// watched bytes after every instruction (an access watchpoint then
    /// fires on writes only).
    pub fn new(
        control: VcpuControl,
        events: Receiver<VcpuEvent>,
        stop: StopHandle,
        hw_watchpoints: bool,
    ) -> Self {
        Self {
            control,
            events,
            stop,
            debug: GuestDebug::default(),
            ended: None,
            hw_watch: hw_watchpoints,
            soft: Vec::new(),
            gdb_step: false,
            interrupt_asked: false,
        }
    }

    /// Reads the current value of a software watchpoint's bytes.
    fn watched_value(&self, addr: u64, len: u8) -> DebugResult<u64> {
        let mut buf = [0u8; 8];
        let n = usize::from(len.clamp(1, 8));
        let bytes = self.on_vcpu(move |p| {
            let phys = guest_physical(&p, addr, n)?;
            let mut out = vec![0u8; n];
            p.mem
                .read_slice(&mut out, GuestAddress(phys))
                .map_err(|_| DebugError::Unmapped { addr })?;
            Ok(out)
        })?;
        buf[..n].copy_from_slice(&bytes);
        Ok(u64::from_le_bytes(buf))
    }

    /// After a step: the software watchpoint whose bytes changed, if any.
    fn soft_watch_hit(&mut self) -> DebugResult<Option<StopEvent>> {
        let mut hit = None;
        for i in 0..self.soft.len() {
            let w = self.soft[i];
            let now = self.watched_value(w.addr, w.len)?;
            if now != w.value {
                self.soft[i].value = now;
                hit.get_or_insert(StopEvent::Watchpoint {
                    addr: w.addr,
                    kind: w.kind,
                });
            }
        }
        Ok(hit)
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
        let mut wanted = *debug;
        self.gdb_step = debug.single_step;
        let gdb_step = debug.single_step;
        if !self.hw_watch {
            let mut soft = Vec::new();
            for slot in wanted.hw.iter_mut() {
                if let Some(bp) = slot.filter(|bp| bp.kind != HwBreakKind::Execute) {
                    let value = self.watched_value(bp.addr, bp.len)?;
                    soft.push(SoftWatch {
                        addr: bp.addr,
                        len: bp.len,
                        kind: bp.kind,
                        value,
                    });
                    *slot = None;
                }
            }
            wanted.single_step |= !soft.is_empty();
            wanted.enabled |= wanted.single_step;
            self.soft = soft;
        }
        self.on_vcpu(move |p| {
            // A single step must execute the guest's next instruction, not
            // the entry of an interrupt handler.
            *p.hold_interrupts = gdb_step;
            p.vcpu.set_guest_debug(&wanted).map_err(backend)
        })?;
        self.debug = *debug;
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
        self.interrupt_asked = true;
        Ok(())
    }

    fn wait_stop(&mut self, timeout: Duration) -> DebugResult<Option<StopEvent>> {
        let until = std::time::Instant::now() + timeout;
        loop {
            if let Some(ended) = self.ended {
                return Ok(Some(ended));
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            let event = match self.events.recv_timeout(left) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => return Err(DebugError::Gone),
            };
            let stop = self.event_to_stop(event);
            if self.soft.is_empty() || stop != StopEvent::Step {
                self.interrupt_asked &= stop != StopEvent::Interrupted;
                return Ok(Some(stop));
            }
            // A step taken for the software watchpoints. The vCPU is paused:
            // every way out of here reports a stop or resumes it.
            match self.soft_watch_hit() {
                Ok(Some(hit)) => return Ok(Some(hit)),
                Ok(None) => {}
                // The watched bytes cannot be read any more (the guest
                // unmapped them): stop and let gdb show where.
                Err(DebugError::Gone) => return Err(DebugError::Gone),
                Err(_) => return Ok(Some(StopEvent::Interrupted)),
            }
            if self.gdb_step {
                return Ok(Some(stop));
            }
            if std::mem::take(&mut self.interrupt_asked) {
                return Ok(Some(StopEvent::Interrupted));
            }
            if !self.control.resume() {
                return Err(DebugError::Gone);
            }
        }
    }

    fn kill(&mut self) {
        self.stop.stop(StopReason::DebuggerKill);
        self.ended
            .get_or_insert(StopEvent::Terminated(TerminateReason::Stopped));
    }

    fn detach(&mut self) {
        // Stops reported to a session that is over mean nothing to the next.
        while let Ok(event) = self.events.try_recv() {
            let _ = self.event_to_stop(event);
        }
        self.interrupt_asked = false;
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
        let server =
            GdbServer::listen(addr).map_err(|source| VmmError::GdbListen { addr, source })?;
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
