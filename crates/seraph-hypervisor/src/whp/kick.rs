//! Kicking a vCPU out of `WHvRunVirtualProcessor`.
//!
//! `WHvCancelRunVirtualProcessor` on a VP that is not running is latched:
//! the next run returns `Canceled` at once. Cancelling unconditionally
//! therefore turned every kick that arrived between runs into a second,
//! spurious `Interrupted`. [`KickState`] tracks whether the VP is inside a
//! run: only then is it cancelled; a kick between runs is a flag the next
//! `run` reports without entering; and a `Canceled` exit with no kick
//! pending (a cancel latched by a kick that was already reported) is
//! spurious, and the vCPU simply re-enters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::api::Api;
use super::partition::Partition;
use crate::VcpuKick;

const RUNNING: u8 = 1;
const KICKED: u8 = 2;

/// What the end of a run means for the kick protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRun {
    /// An ordinary exit: handle it.
    Exit,
    /// Cancelled by a kick: report `VmExit::Interrupted`.
    Interrupted,
    /// Cancelled with no kick pending (a latched cancel): run again.
    Spurious,
}

/// The running/kicked state of one vCPU, shared with its kickers.
#[derive(Debug, Default)]
pub struct KickState(AtomicU8);

impl KickState {
    /// Records a kick. True if the vCPU is inside a run and must be cancelled.
    pub fn kick(&self) -> bool {
        self.0.fetch_or(KICKED, Ordering::SeqCst) & RUNNING != 0
    }

    /// Called before entering the guest: true to enter, false if a kick is
    /// pending (it is consumed: report `Interrupted` without entering).
    pub fn enter(&self) -> bool {
        match self
            .0
            .compare_exchange(0, RUNNING, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(_) => {
                self.0.fetch_and(!KICKED, Ordering::SeqCst);
                false
            }
        }
    }

    /// Called when the run returned; `canceled` if the exit was `Canceled`.
    pub fn leave(&self, canceled: bool) -> AfterRun {
        self.0.fetch_and(!RUNNING, Ordering::SeqCst);
        if !canceled {
            return AfterRun::Exit;
        }
        if self.0.fetch_and(!KICKED, Ordering::SeqCst) & KICKED != 0 {
            AfterRun::Interrupted
        } else {
            AfterRun::Spurious
        }
    }
}

/// Stops a WHP vCPU's run from another thread.
#[derive(Debug)]
pub struct WhpKick {
    pub(super) api: &'static Api,
    pub(super) partition: Arc<Partition>,
    pub(super) index: u32,
    pub(super) state: KickState,
}

impl VcpuKick for WhpKick {
    fn kick(&self) {
        if self.state.kick() {
            // SAFETY: the partition handle is kept alive by the Arc and the
            // VP exists while its WhpVcpu does (a cancel of a VP that has
            // just been deleted fails harmlessly with an HRESULT).
            unsafe {
                (self.api.cancel_run_virtual_processor)(self.partition.handle, self.index, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kick_between_runs_does_not_cancel_and_interrupts_once() {
        let s = KickState::default();
        assert!(!s.kick(), "an idle vCPU is not cancelled");
        assert!(!s.enter(), "the next run reports the kick without entering");
        assert!(s.enter(), "and the one after runs");
        assert_eq!(s.leave(false), AfterRun::Exit);
        assert!(s.enter());
    }

    #[test]
    fn a_kick_during_a_run_cancels_and_is_reported() {
        let s = KickState::default();
        assert!(s.enter());
        assert!(s.kick(), "a running vCPU is cancelled");
        assert_eq!(s.leave(true), AfterRun::Interrupted);
        assert!(s.enter(), "the kick was consumed");
    }

    #[test]
    fn a_latched_cancel_without_a_pending_kick_is_spurious() {
        let s = KickState::default();
        // A kick lands after the VP exited but before `leave`: it cancels
        // (latched) and stays pending.
        assert!(s.enter());
        assert!(s.kick());
        assert_eq!(s.leave(false), AfterRun::Exit);
        // Reported once, without entering...
        assert!(!s.enter());
        // ...and the latched cancel that ends the next run is not a second one.
        assert!(s.enter());
        assert_eq!(s.leave(true), AfterRun::Spurious);
    }
}
