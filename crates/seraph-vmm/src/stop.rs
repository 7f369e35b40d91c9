//! Stopping a run from outside the vCPU loop: a timeout, Ctrl-C, a
//! termination signal, an embedding program.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use seraph_hypervisor::VcpuKick;

use crate::interrupts::Wake;

/// Why a run was asked to stop from outside the vCPU loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `--timeout` expired.
    Timeout,
    /// Ctrl-C (or Ctrl-A x on the serial console), or an embedding program.
    Interrupted,
    /// A termination signal (SIGTERM, SIGHUP) with this number.
    Terminated(i32),
    /// The attached debugger asked to kill the run (gdb's `kill`).
    DebuggerKill,
    /// The display's "power off" button.
    PowerOff,
}

impl StopReason {
    fn encode(self) -> u32 {
        match self {
            Self::Timeout => 1,
            Self::Interrupted => 2,
            Self::Terminated(signal) => 0x100 | (signal as u32 & 0xff),
            Self::DebuggerKill => 3,
            Self::PowerOff => 4,
        }
    }

    fn decode(value: u32) -> Option<Self> {
        match value {
            0 => None,
            1 => Some(Self::Timeout),
            2 => Some(Self::Interrupted),
            3 => Some(Self::DebuggerKill),
            4 => Some(Self::PowerOff),
            v => Some(Self::Terminated((v & 0xff) as i32)),
        }
    }
}

/// Stops a running machine from another thread (a signal watcher, a timer).
#[derive(Clone)]
pub struct StopHandle {
    reason: Arc<AtomicU32>,
    kicker: Arc<dyn VcpuKick>,
    wake: Arc<Wake>,
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("reason", &self.requested())
            .finish()
    }
}

impl StopHandle {
    pub(crate) fn new(kicker: Arc<dyn VcpuKick>, wake: Arc<Wake>) -> Self {
        Self {
            reason: Arc::new(AtomicU32::new(0)),
            kicker,
            wake,
        }
    }

    /// Asks the run to end with `reason` (the first reason asked wins).
    pub fn stop(&self, reason: StopReason) {
        let _ =
            self.reason
                .compare_exchange(0, reason.encode(), Ordering::SeqCst, Ordering::SeqCst);
        self.kicker.kick();
        self.wake.wake();
    }

    /// The reason asked for, if any.
    pub fn requested(&self) -> Option<StopReason> {
        StopReason::decode(self.reason.load(Ordering::SeqCst))
    }

    /// Forgets a request (after a run, so it does not end the next one).
    pub(crate) fn clear(&self) {
        self.reason.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_the_first_wins() {
        for r in [
            StopReason::Timeout,
            StopReason::Interrupted,
            StopReason::Terminated(15),
            StopReason::Terminated(1),
            StopReason::DebuggerKill,
            StopReason::PowerOff,
        ] {
            assert_eq!(StopReason::decode(r.encode()), Some(r));
        }
        struct NoKick;
        impl VcpuKick for NoKick {
            fn kick(&self) {}
        }
        let h = StopHandle::new(Arc::new(NoKick), Arc::new(Wake::default()));
        assert_eq!(h.requested(), None);
        h.stop(StopReason::Terminated(15));
        h.stop(StopReason::Timeout);
        assert_eq!(h.requested(), Some(StopReason::Terminated(15)));
        h.clear();
        assert_eq!(h.requested(), None);
    }
}
