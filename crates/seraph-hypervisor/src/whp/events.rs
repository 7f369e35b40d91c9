//! The events a vCPU owes the guest, written one at a time.
//!
//! An external interrupt the VMM injects and a #GP from a refused
//! RDMSR/WRMSR used to be written to the same `WHvRegisterPendingInterruption`
//! independently, so the later write replaced the earlier event and an
//! interrupt could be lost. Now both are queued; before each entry at most
//! one is written: a queued exception first (exceptions are not masked by
//! RFLAGS.IF), an interrupt only when no exception is queued, nothing is
//! still pending from the last entry, and the guest can take it. An
//! interrupt that cannot go yet waits for an interrupt window.
//!
//! Exceptions go to `WHvRegisterPendingEvent` (an exception event, as
//! crosvm injects #GP on WHPX), interrupts to
//! `WHvRegisterPendingInterruption` (type external interrupt, as QEMU and
//! crosvm inject them).

use std::collections::VecDeque;

use windows_sys::Win32::System::Hypervisor::{WHvX64PendingEventException, WHvX64PendingInterrupt};

/// An exception: vector and optional error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedException {
    /// Vector (0-31).
    pub vector: u8,
    /// Error code, for vectors that push one.
    pub error_code: Option<u32>,
}

/// What to write before entering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// Nothing queued.
    Nothing,
    /// Write this `WHvRegisterPendingEvent` value (low 64 bits).
    Exception(u64),
    /// Write this `WHvRegisterPendingInterruption` value.
    Interrupt(u64),
    /// An interrupt is queued but cannot be written now: ask for an
    /// interrupt window and try again at the next entry.
    WaitForWindow,
}

/// The queue.
#[derive(Debug, Default, Clone)]
pub struct EventQueue {
    exceptions: VecDeque<QueuedException>,
    interrupts: VecDeque<u8>,
}

/// The low 64 bits of `WHvRegisterPendingEvent` for exception `e`:
/// EventPending (bit 0), EventType exception (bits 1-3),
/// DeliverErrorCode (bit 8), Vector (bits 16-31), ErrorCode (bits 32-63);
/// the high half (ExceptionParameter) stays 0.
pub fn exception_bits(e: QueuedException) -> u64 {
    let mut bits =
        1 | ((WHvX64PendingEventException as u64 & 0x7) << 1) | (u64::from(e.vector) << 16);
    if let Some(code) = e.error_code {
        bits |= 1 << 8;
        bits |= u64::from(code) << 32;
    }
    bits
}

/// `WHvRegisterPendingInterruption` for external interrupt `vector` (type 0).
pub fn interrupt_bits(vector: u8) -> u64 {
    1 | ((WHvX64PendingInterrupt as u64 & 0x7) << 1) | (u64::from(vector) << 16)
}

impl EventQueue {
    /// Queues an exception.
    pub fn push_exception(&mut self, e: QueuedException) {
        self.exceptions.push_back(e);
    }

    /// Queues an external interrupt.
    pub fn push_interrupt(&mut self, vector: u8) {
        self.interrupts.push_back(vector);
    }

    /// Nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.exceptions.is_empty() && self.interrupts.is_empty()
    }

    /// The exception that will be written next, if any.
    pub fn next_exception(&self) -> Option<QueuedException> {
        self.exceptions.front().copied()
    }

    /// The interrupt that will be written next, if any.
    pub fn next_interrupt(&self) -> Option<u8> {
        self.interrupts.front().copied()
    }

    /// Takes the one event to write before entering. `register_busy`: the
    /// last exit said an event is still pending; `interruptible`: IF = 1
    /// and no interrupt shadow at the last exit.
    pub fn next_injection(&mut self, register_busy: bool, interruptible: bool) -> Injection {
        if register_busy {
            return if self.is_empty() {
                Injection::Nothing
            } else {
                Injection::WaitForWindow
            };
        }
        if let Some(e) = self.exceptions.pop_front() {
            return Injection::Exception(exception_bits(e));
        }
        match self.interrupts.front() {
            None => Injection::Nothing,
            Some(&v) if interruptible => {
                self.interrupts.pop_front();
                Injection::Interrupt(interrupt_bits(v))
            }
            Some(_) => Injection::WaitForWindow,
        }
    }
}

/// `WHvRegisterInternalActivityState` bit 1 (HaltSuspend): the VP sits in
/// the HLT state.
pub const HALT_SUSPEND: u64 = 1 << 1;

/// A halt-suspended VP does not take an injected interrupt (QEMU and
/// OpenVMM clear the bit when they inject, with the in-hypervisor APIC).
/// The exit model is KVM's: the next `run` resumes the guest after the HLT,
/// interrupt or not. If an `X64Halt` exit left the VP suspended, this is
/// the activity state to write for that; `None` if it is not suspended.
pub fn wake_from_halt(activity: u64) -> Option<u64> {
    (activity & HALT_SUSPEND != 0).then_some(activity & !HALT_SUSPEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_halted_vp_is_woken_for_the_next_run_and_only_then() {
        assert_eq!(wake_from_halt(HALT_SUSPEND), Some(0));
        // StartupSuspend (bit 0) is not ours to clear.
        assert_eq!(wake_from_halt(HALT_SUSPEND | 1), Some(1));
        assert_eq!(wake_from_halt(0), None);
        assert_eq!(wake_from_halt(1), None);
    }

    const GP: QueuedException = QueuedException {
        vector: 13,
        error_code: Some(0),
    };

    #[test]
    fn a_gp_and_an_interrupt_are_both_delivered_exception_first() {
        let mut q = EventQueue::default();
        // A refused WRMSR queues #GP; the VMM injects timer vector 0x20.
        q.push_exception(GP);
        q.push_interrupt(0x20);
        assert_eq!(
            q.next_injection(false, true),
            Injection::Exception(1 | (1 << 8) | (13 << 16))
        );
        // The interrupt was not overwritten: it goes at the next free entry.
        assert_eq!(q.next_interrupt(), Some(0x20));
        assert_eq!(q.next_injection(true, true), Injection::WaitForWindow);
        assert_eq!(
            q.next_injection(false, true),
            Injection::Interrupt(1 | (0x20 << 16))
        );
        assert!(q.is_empty());
        assert_eq!(q.next_injection(false, true), Injection::Nothing);
    }

    #[test]
    fn an_interrupt_waits_for_if_and_the_end_of_a_shadow() {
        let mut q = EventQueue::default();
        q.push_interrupt(0x31);
        assert_eq!(q.next_injection(false, false), Injection::WaitForWindow);
        assert_eq!(q.next_interrupt(), Some(0x31));
        assert_eq!(
            q.next_injection(false, true),
            Injection::Interrupt(interrupt_bits(0x31))
        );
    }

    #[test]
    fn exceptions_do_not_wait_for_if() {
        let mut q = EventQueue::default();
        q.push_exception(QueuedException {
            vector: 6,
            error_code: None,
        });
        assert_eq!(
            q.next_injection(false, false),
            Injection::Exception(1 | (6 << 16))
        );
    }
}
