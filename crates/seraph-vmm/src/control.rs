//! The pause/resume channel of a vCPU loop: how a debugger (and later SMP
//! bring-up) stops a running vCPU, inspects or changes it on the vCPU's
//! own thread, and lets it go again.
//!
//! A [`VcpuControl`] sends requests; the loop notices them between exits
//! (one atomic load), kicking the vCPU out of the guest if it is running.
//! While paused, the loop runs [`ControlRequest::Task`]s against the vCPU
//! and guest memory until [`ControlRequest::Resume`]. The loop reports
//! what stopped it on the event channel ([`VcpuEvent`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};

use seraph_hypervisor::{DebugCause, Vcpu};
use vm_memory::GuestMemoryMmap;

use crate::interrupts::Wake;

/// What a task sees of a paused vCPU.
pub struct Paused<'a> {
    /// The vCPU (registers, debug state).
    pub vcpu: &'a mut dyn Vcpu,
    /// Guest memory.
    pub mem: &'a GuestMemoryMmap,
    /// Hold external interrupts back (a debugger single-steps: a step must
    /// not land in a timer handler). Stays as set until changed.
    pub hold_interrupts: &'a mut bool,
}

/// Work to run on the vCPU thread while it is paused.
pub type VcpuTask = Box<dyn FnOnce(Paused<'_>) + Send>;

/// A request to a vCPU loop.
pub enum ControlRequest {
    /// Stop at the next exit (or now, if halted) and report [`VcpuEvent::Paused`].
    Pause,
    /// Run on.
    Resume,
    /// Run this on the vCPU thread (pausing first if running).
    Task(VcpuTask),
}

impl std::fmt::Debug for ControlRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pause => "Pause",
            Self::Resume => "Resume",
            Self::Task(_) => "Task",
        })
    }
}

/// Why a vCPU loop stopped or ended, for whoever controls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuEvent {
    /// Paused on request (or at the first instruction, when asked to wait).
    Paused {
        /// Where.
        rip: u64,
    },
    /// A debug exit (breakpoint, watchpoint, step): the vCPU is paused.
    Debug {
        /// Where.
        pc: u64,
        /// What fired.
        cause: DebugCause,
    },
    /// The guest called EXIT with this status; the run is over.
    Exited(u64),
    /// The run ended another way (fault, timeout, ...).
    Ended(crate::report::RunOutcome),
}

/// Sends requests to a vCPU loop from any thread.
#[derive(Clone)]
pub struct VcpuControl {
    tx: Sender<ControlRequest>,
    pending: Arc<AtomicBool>,
    wake: Arc<Wake>,
    /// Set when the run is over: requests are no longer served.
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for VcpuControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VcpuControl").finish_non_exhaustive()
    }
}

impl VcpuControl {
    /// Sends `request`; false if the loop is gone or its run is over.
    pub fn send(&self, request: ControlRequest) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let sent = self.tx.send(request).is_ok();
        self.pending.store(true, Ordering::Release);
        self.wake.wake();
        sent
    }

    /// Asks the vCPU to pause.
    pub fn pause(&self) -> bool {
        self.send(ControlRequest::Pause)
    }

    /// Lets a paused vCPU run on.
    pub fn resume(&self) -> bool {
        self.send(ControlRequest::Resume)
    }

    /// Runs `f` on the paused vCPU and returns its result (`None` if the
    /// loop is gone).
    pub fn with_vcpu<T: Send + 'static>(
        &self,
        f: impl FnOnce(Paused<'_>) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        let task: VcpuTask = Box::new(move |paused| {
            let _ = tx.send(f(paused));
        });
        if !self.send(ControlRequest::Task(task)) {
            return None;
        }
        // The run may end before the task is served: then it is dropped
        // (its answer never comes) and `closed` tells us so.
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(answer) => return Some(answer),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.closed.load(Ordering::Acquire) {
                        return None;
                    }
                }
            }
        }
    }
}

/// The loop's end of the channel.
pub(crate) struct ControlPort {
    pub(crate) rx: Receiver<ControlRequest>,
    pub(crate) pending: Arc<AtomicBool>,
    pub(crate) events: Sender<VcpuEvent>,
    /// Pause before the first instruction.
    pub(crate) start_paused: bool,
    /// Set when the run is over.
    pub(crate) closed: Arc<AtomicBool>,
}

impl ControlPort {
    /// True if requests may be waiting (one atomic load).
    pub(crate) fn has_requests(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// The run is over: refuse new requests and drop the ones waiting.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        while self.rx.try_recv().is_ok() {}
    }

    /// Reports an event; a controller that went away is not an error.
    pub(crate) fn report(&self, event: VcpuEvent) {
        let _ = self.events.send(event);
    }
}

/// A control channel: the handle for the controller, the port for the
/// loop, and the event receiver for the controller.
pub(crate) fn channel(
    wake: Arc<Wake>,
    start_paused: bool,
) -> (VcpuControl, ControlPort, Receiver<VcpuEvent>) {
    let (tx, rx) = mpsc::channel();
    let (etx, erx) = mpsc::channel();
    let pending = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicBool::new(false));
    (
        VcpuControl {
            tx,
            pending: pending.clone(),
            wake,
            closed: closed.clone(),
        },
        ControlPort {
            rx,
            pending,
            events: etx,
            start_paused,
            closed,
        },
        erx,
    )
}
