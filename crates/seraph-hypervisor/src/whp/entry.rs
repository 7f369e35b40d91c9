//! What the next entry writes for the last exit's answer, the event queue
//! and the interrupt window: the pure part of `run.rs`'s
//! `finish_last_exit`, so the interplay of a refused RDMSR/WRMSR, an
//! injected interrupt and the window is tested as a whole.

use windows_sys::Win32::System::Hypervisor::{
    WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHvRegisterPendingEvent, WHvRegisterPendingInterruption,
    WHvX64RegisterDeliverabilityNotifications,
};

use super::events::{EventQueue, Injection};
use super::pending::Pending;
use super::plan::deliverability_notifications;
use super::reg64;
use super::translate::ExecState;
use crate::x86::RFLAGS_IF;

/// The entry's register writes and the bookkeeping they change.
pub struct EntryPlan {
    /// Register writes, in order, for one `WHvSetVirtualProcessorRegisters`.
    pub writes: Vec<(WHV_REGISTER_NAME, WHV_REGISTER_VALUE)>,
    /// An event register was written: nothing else may be until the next exit.
    pub event_written: bool,
    /// The interrupt-window notification as written now.
    pub window_armed: Option<bool>,
}

/// Plans the entry after an exit: the answer `pending` owes (with `io`, the
/// VMM's `in` data), a #GP it raises queued in `events`, then at most one
/// queued event, then the interrupt-window notification (wanted by the VMM
/// or needed for a queued interrupt), written only when it changes.
pub fn plan_entry(
    pending: &Pending,
    io: &[u8],
    events: &mut EventQueue,
    state: &ExecState,
    window_wanted: bool,
    window_armed: Option<bool>,
) -> EntryPlan {
    let mut writes = pending.register_writes(io);
    if let Some(e) = pending.exception() {
        events.push_exception(e);
    }
    let interruptible = state.rflags & RFLAGS_IF != 0 && !state.interrupt_shadow;
    let mut event_written = false;
    let mut internal_window = false;
    match events.next_injection(state.interruption_pending, interruptible) {
        Injection::Exception(bits) => {
            writes.push((WHvRegisterPendingEvent, reg64(bits)));
            event_written = true;
        }
        Injection::Interrupt(bits) => {
            writes.push((WHvRegisterPendingInterruption, reg64(bits)));
            event_written = true;
        }
        Injection::WaitForWindow => internal_window = true,
        Injection::Nothing => {}
    }
    if event_written {
        internal_window = !events.is_empty();
    }
    let window = window_wanted || internal_window;
    if window_armed != Some(window) {
        writes.push((
            WHvX64RegisterDeliverabilityNotifications,
            deliverability_notifications(window),
        ));
    }
    EntryPlan {
        writes,
        event_written,
        window_armed: Some(window),
    }
}

#[cfg(test)]
mod tests {
    use windows_sys::Win32::System::Hypervisor::{WHvX64RegisterRax, WHvX64RegisterRip};

    use super::*;
    use crate::whp::value64;

    fn names(plan: &EntryPlan) -> Vec<(WHV_REGISTER_NAME, u64)> {
        plan.writes.iter().map(|(n, v)| (*n, value64(v))).collect()
    }

    const RUNNING: ExecState = ExecState {
        rip: 0x1000,
        rflags: 0x202,
        instruction_length: 2,
        interruption_pending: false,
        interrupt_shadow: false,
        cr8: 0,
    };

    #[test]
    fn a_refused_rdmsr_and_an_injected_interrupt_both_reach_the_guest() {
        let refused = Pending::MsrRead {
            next_rip: 0x1002,
            answer: Some(None),
        };
        let mut events = EventQueue::default();
        events.push_interrupt(0x20); // the VMM's timer interrupt
        // Entry 1: the #GP, in the exception-event register; the interrupt
        // waits, with the window armed for it. No PendingInterruption write
        // could overwrite the #GP.
        let first = plan_entry(&refused, &[], &mut events, &RUNNING, false, Some(false));
        assert_eq!(
            names(&first),
            [
                (WHvRegisterPendingEvent, 1 | (1 << 8) | (13 << 16)),
                (WHvX64RegisterDeliverabilityNotifications, 0b10),
            ]
        );
        assert!(first.event_written);
        assert_eq!(first.window_armed, Some(true));
        // Entry 2, after the window exit (notification state unknown): the
        // interrupt, and the window written off.
        let second = plan_entry(&Pending::None, &[], &mut events, &RUNNING, false, None);
        assert_eq!(
            names(&second),
            [
                (WHvRegisterPendingInterruption, 1 | (0x20 << 16)),
                (WHvX64RegisterDeliverabilityNotifications, 0),
            ]
        );
        assert!(events.is_empty());
    }

    #[test]
    fn an_answered_exit_writes_its_registers_and_nothing_else() {
        let mut p = Pending::MsrRead {
            next_rip: 0x1002,
            answer: None,
        };
        p.complete(crate::Completion::MsrRead(Some(7))).unwrap();
        let mut events = EventQueue::default();
        let plan = plan_entry(&p, &[], &mut events, &RUNNING, false, Some(false));
        let n = names(&plan);
        assert!(n.contains(&(WHvX64RegisterRax, 7)));
        assert!(n.contains(&(WHvX64RegisterRip, 0x1002)));
        assert!(!plan.event_written);
        assert_eq!(n.len(), 3);
    }

    #[test]
    fn the_vmms_window_is_armed_once_and_an_unknown_one_rewritten() {
        let mut events = EventQueue::default();
        let armed = plan_entry(
            &Pending::None,
            &[],
            &mut events,
            &RUNNING,
            true,
            Some(false),
        );
        assert_eq!(
            names(&armed),
            [(WHvX64RegisterDeliverabilityNotifications, 0b10)]
        );
        let again = plan_entry(&Pending::None, &[], &mut events, &RUNNING, true, Some(true));
        assert!(again.writes.is_empty());
        // After a window exit the state is unknown: written again.
        let unknown = plan_entry(&Pending::None, &[], &mut events, &RUNNING, false, None);
        assert_eq!(
            names(&unknown),
            [(WHvX64RegisterDeliverabilityNotifications, 0)]
        );
    }

    #[test]
    fn an_interrupt_waits_while_an_event_is_still_pending() {
        let mut events = EventQueue::default();
        events.push_interrupt(0x21);
        let busy = ExecState {
            interruption_pending: true,
            ..RUNNING
        };
        let plan = plan_entry(&Pending::None, &[], &mut events, &busy, false, Some(false));
        assert!(!plan.event_written);
        assert_eq!(
            names(&plan),
            [(WHvX64RegisterDeliverabilityNotifications, 0b10)]
        );
        assert_eq!(events.next_interrupt(), Some(0x21));
    }
}
