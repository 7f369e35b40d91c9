//! Ready-made plumbing between the gdb server's thread and a vCPU thread:
//! [`debug_port`] makes a [`RemoteTarget`] (a [`DebugTarget`] for the
//! server) and a [`VcpuDebugPort`] for the vCPU loop, which serves the
//! server's requests through [`VcpuAccess`] whenever the vCPU is stopped.
//!
//! The vCPU loop's side, in short:
//! - on `VmExit::Debug { cause, .. }`: `port.report_stop(StopEvent::from_debug_cause(..), vcpu)`
//!   and do what the returned [`PortCommand`] says;
//! - on `VmExit::Interrupted`: if `port.stop_requested()`, the same with
//!   [`StopEvent::Interrupted`] (the server kicked the vCPU);
//! - held at the first instruction (`-S`): `port.report_stop(StopEvent::Interrupted, vcpu)`;
//! - when the run ends: `port.report_end(StopEvent::Exited(status))` (or `Terminated`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use seraph_hypervisor::GuestDebug;

use crate::target::{CpuState, DebugError, DebugResult, DebugTarget, ResumeMode, StopEvent};

/// How long the server waits for the stopped vCPU to answer one request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long attach, detach and kill wait for a running vCPU to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the vCPU thread offers while stopped: the `Vcpu` calls plus
/// guest-virtual memory through the guest's page tables.
pub trait VcpuAccess {
    /// `Vcpu::regs` and `Vcpu::special_regs`.
    fn read_registers(&mut self) -> DebugResult<CpuState>;
    /// `Vcpu::set_regs` and (if changed) `Vcpu::set_special_regs`.
    fn write_registers(&mut self, state: &CpuState) -> DebugResult<()>;
    /// Guest-virtual read (never across a 4 KiB page).
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> DebugResult<()>;
    /// Guest-virtual write (never across a 4 KiB page).
    fn write_memory(&mut self, addr: u64, data: &[u8]) -> DebugResult<()>;
    /// `Vcpu::set_guest_debug`.
    fn set_guest_debug(&mut self, debug: &GuestDebug) -> DebugResult<()>;
}

/// What the vCPU loop does after [`VcpuDebugPort::report_stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortCommand {
    /// Run again (with the guest-debug state the server set).
    Resume(ResumeMode),
    /// The debugger left: debug state is already cleared; run on.
    Detach,
    /// End the run (gdb's `kill`).
    Kill,
}

enum Request {
    ReadRegisters,
    WriteRegisters(Box<CpuState>),
    ReadMemory(u64, usize),
    WriteMemory(u64, Vec<u8>),
    SetGuestDebug(GuestDebug),
    Resume(ResumeMode),
    Detach,
    Kill,
}

enum Answer {
    Registers(Box<CpuState>),
    Memory(Vec<u8>),
    Done,
}

/// State both sides see.
#[derive(Default)]
struct Shared {
    /// The vCPU sits in `report_stop` (serving requests).
    stopped: bool,
}

/// The vCPU thread's end: serves the server while the vCPU is stopped.
pub struct VcpuDebugPort {
    shared: Arc<Mutex<Shared>>,
    stop_requested: Arc<AtomicBool>,
    requests: Receiver<(u64, Request)>,
    answers: Sender<(u64, DebugResult<Answer>)>,
    events: Sender<StopEvent>,
}

/// The server's end: a [`DebugTarget`] over channels to a [`VcpuDebugPort`].
pub struct RemoteTarget {
    shared: Arc<Mutex<Shared>>,
    stop_requested: Arc<AtomicBool>,
    kick: Box<dyn Fn() + Send>,
    requests: Sender<(u64, Request)>,
    answers: Receiver<(u64, DebugResult<Answer>)>,
    events: Receiver<StopEvent>,
    next_id: u64,
    running: bool,
}

/// Connects a server-side [`RemoteTarget`] to a vCPU-side
/// [`VcpuDebugPort`]; `kick` makes the vCPU's `run` return (e.g.
/// `VcpuKick::kick` of the vCPU's kicker).
pub fn debug_port(kick: Box<dyn Fn() + Send>) -> (RemoteTarget, VcpuDebugPort) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let stop_requested = Arc::new(AtomicBool::new(false));
    let (req_tx, req_rx) = mpsc::channel();
    let (ans_tx, ans_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    let remote = RemoteTarget {
        shared: shared.clone(),
        stop_requested: stop_requested.clone(),
        kick,
        requests: req_tx,
        answers: ans_rx,
        events: ev_rx,
        next_id: 0,
        running: false,
    };
    let port = VcpuDebugPort {
        shared,
        stop_requested,
        requests: req_rx,
        answers: ans_tx,
        events: ev_tx,
    };
    (remote, port)
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VcpuDebugPort {
    /// True if the server asked the running vCPU to stop (check it when
    /// `run` returns `VmExit::Interrupted`).
    pub fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::SeqCst)
    }

    /// The vCPU stopped for `event`: tells the server, then serves its
    /// requests until it resumes, detaches or kills. A server that went
    /// away counts as a detach.
    pub fn report_stop(&mut self, event: StopEvent, vcpu: &mut dyn VcpuAccess) -> PortCommand {
        {
            let mut shared = lock(&self.shared);
            shared.stopped = true;
            self.stop_requested.store(false, Ordering::SeqCst);
        }
        let _ = self.events.send(event);
        let command = loop {
            let Ok((id, request)) = self.requests.recv() else {
                break self.detach(vcpu);
            };
            let answer = match request {
                Request::ReadRegisters => vcpu
                    .read_registers()
                    .map(|s| Answer::Registers(Box::new(s))),
                Request::WriteRegisters(state) => {
                    vcpu.write_registers(&state).map(|()| Answer::Done)
                }
                Request::ReadMemory(addr, len) => {
                    let mut buf = vec![0u8; len];
                    vcpu.read_memory(addr, &mut buf)
                        .map(|()| Answer::Memory(buf))
                }
                Request::WriteMemory(addr, data) => {
                    vcpu.write_memory(addr, &data).map(|()| Answer::Done)
                }
                Request::SetGuestDebug(debug) => {
                    vcpu.set_guest_debug(&debug).map(|()| Answer::Done)
                }
                Request::Resume(mode) => break PortCommand::Resume(mode),
                Request::Detach => break self.detach(vcpu),
                Request::Kill => break PortCommand::Kill,
            };
            let _ = self.answers.send((id, answer));
        };
        lock(&self.shared).stopped = false;
        command
    }

    fn detach(&mut self, vcpu: &mut dyn VcpuAccess) -> PortCommand {
        let _ = vcpu.set_guest_debug(&GuestDebug::default());
        PortCommand::Detach
    }

    /// The run is over (`Exited` or `Terminated`): tells a server, if one
    /// is attached or attaches later.
    pub fn report_end(&mut self, event: StopEvent) {
        let _ = self.events.send(event);
    }
}

impl RemoteTarget {
    fn ask(&mut self, request: Request) -> DebugResult<Answer> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.requests
            .send((id, request))
            .map_err(|_| DebugError::Gone)?;
        loop {
            match self.answers.recv_timeout(ANSWER_TIMEOUT) {
                Ok((got, answer)) if got == id => return answer,
                Ok(_) => continue, // a late answer to a request that timed out
                Err(RecvTimeoutError::Timeout) => {
                    return Err(DebugError::Backend("the vCPU did not answer".into()));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(DebugError::Gone),
            }
        }
    }

    fn done(&mut self, request: Request) -> DebugResult<()> {
        self.ask(request).map(|_| ())
    }

    /// Asks a running vCPU to stop (unless it already sits in `report_stop`).
    fn request_stop(&mut self) {
        let shared = lock(&self.shared);
        if !shared.stopped {
            self.stop_requested.store(true, Ordering::SeqCst);
            (self.kick)();
        }
    }

    /// Stops a running vCPU and swallows its stop report.
    fn stop_quietly(&mut self, timeout: Duration) -> DebugResult<StopEvent> {
        self.request_stop();
        let event = match self.events.recv_timeout(timeout) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => {
                return Err(DebugError::Backend("the vCPU did not stop".into()));
            }
            Err(RecvTimeoutError::Disconnected) => return Err(DebugError::Gone),
        };
        self.running = false;
        match event {
            StopEvent::Exited(_) | StopEvent::Terminated(_) => Err(DebugError::Gone),
            other => Ok(other),
        }
    }
}

impl DebugTarget for RemoteTarget {
    fn attach(&mut self) -> DebugResult<()> {
        // The vCPU reports exactly one stop: the one asked for now, or the
        // one it made while held (at the first instruction, or already
        // waiting for a debugger).
        self.stop_quietly(STOP_TIMEOUT).map(|_| ())
    }

    fn read_registers(&mut self) -> DebugResult<CpuState> {
        match self.ask(Request::ReadRegisters)? {
            Answer::Registers(state) => Ok(*state),
            _ => Err(DebugError::Backend("unexpected answer".into())),
        }
    }

    fn write_registers(&mut self, state: &CpuState) -> DebugResult<()> {
        self.done(Request::WriteRegisters(Box::new(*state)))
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> DebugResult<()> {
        match self.ask(Request::ReadMemory(addr, buf.len()))? {
            Answer::Memory(data) if data.len() == buf.len() => {
                buf.copy_from_slice(&data);
                Ok(())
            }
            _ => Err(DebugError::Backend("unexpected answer".into())),
        }
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> DebugResult<()> {
        self.done(Request::WriteMemory(addr, data.to_vec()))
    }

    fn set_guest_debug(&mut self, debug: &GuestDebug) -> DebugResult<()> {
        self.done(Request::SetGuestDebug(*debug))
    }

    fn resume(&mut self, mode: ResumeMode) -> DebugResult<()> {
        self.requests
            .send((0, Request::Resume(mode)))
            .map_err(|_| DebugError::Gone)?;
        self.running = true;
        Ok(())
    }

    fn interrupt(&mut self) -> DebugResult<()> {
        self.request_stop();
        Ok(())
    }

    fn wait_stop(&mut self, timeout: Duration) -> DebugResult<Option<StopEvent>> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => {
                self.running = false;
                Ok(Some(event))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(DebugError::Gone),
        }
    }

    fn kill(&mut self) {
        if !self.running || self.stop_quietly(STOP_TIMEOUT).is_ok() {
            let _ = self.requests.send((0, Request::Kill));
        }
    }

    fn detach(&mut self) {
        if !self.running || self.stop_quietly(STOP_TIMEOUT).is_ok() {
            let _ = self.requests.send((0, Request::Detach));
        }
    }
}
