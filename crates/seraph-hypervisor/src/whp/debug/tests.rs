//! Guest-debug settings, #DB/#BP exit decoding and event-register decoding.

use super::*;
use crate::debug::{HW_SLOTS, HwBreakKind, HwBreakpoint};
use crate::exit::InstructionBytes;

fn exception(vector: u8, parameter: u64) -> ExceptionInfo {
    ExceptionInfo {
        vector,
        error_code: None,
        parameter,
        instruction: InstructionBytes::from_slice(&[0xCC]),
    }
}

fn with_slots() -> GuestDebug {
    let mut hw = [None; HW_SLOTS];
    hw[0] = Some(HwBreakpoint {
        addr: 0xFFFF_8000_0010_0000,
        kind: HwBreakKind::Execute,
        len: 1,
    });
    hw[2] = Some(HwBreakpoint {
        addr: 0x20_0000,
        kind: HwBreakKind::Write,
        len: 4,
    });
    GuestDebug {
        enabled: true,
        single_step: false,
        software_breakpoints: true,
        hw,
    }
}

#[test]
fn debug_registers_carry_the_slot_addresses_and_dr7() {
    let cfg = with_slots();
    let v = debug_register_values(&cfg);
    assert_eq!(v[0], 0xFFFF_8000_0010_0000);
    assert_eq!(v[1], 0);
    assert_eq!(v[2], 0x20_0000);
    assert_eq!(v[3], 0);
    assert_eq!(v[4], crate::debug::x86_dr7(&cfg.hw));
    // G0 and G2 enabled; slot 2 is a 4-byte write watchpoint (RW=01, LEN=11).
    assert_eq!(v[4] & 0xFF, 0b0010_0010);
    assert_eq!((v[4] >> 24) & 0xF, 0b1101);
    assert_eq!(
        DEBUG_REGISTER_NAMES,
        [
            WHvX64RegisterDr0,
            WHvX64RegisterDr1,
            WHvX64RegisterDr2,
            WHvX64RegisterDr3,
            WHvX64RegisterDr7
        ]
    );
    // Debugging off clears every register, slots or not.
    let off = GuestDebug {
        enabled: false,
        ..cfg
    };
    assert_eq!(debug_register_values(&off), [0; 5]);
}

#[test]
fn the_exception_bitmap_asks_for_db_and_bp_only_as_needed() {
    assert_eq!(exception_exit_bitmap(&GuestDebug::default()), 0);
    let step = GuestDebug {
        enabled: true,
        single_step: true,
        ..Default::default()
    };
    assert_eq!(exception_exit_bitmap(&step), 1 << 1);
    let sw = GuestDebug {
        enabled: true,
        software_breakpoints: true,
        ..Default::default()
    };
    assert_eq!(exception_exit_bitmap(&sw), 1 << 3);
    assert_eq!(exception_exit_bitmap(&with_slots()), (1 << 1) | (1 << 3));
    // The partition bitmap is the union of the vCPUs' requests.
    assert_eq!(
        partition_exception_bitmap(&[(0, 1 << 1), (1, 1 << 3)]),
        0b1010
    );
    assert_eq!(partition_exception_bitmap(&[]), 0);
}

#[test]
fn entry_rflags_sets_tf_for_stepping_and_rf_after_an_execute_breakpoint() {
    assert_eq!(entry_rflags(0x202, true, false, false), 0x302);
    assert_eq!(entry_rflags(0x302, false, true, false), 0x202);
    // A TF the guest set itself stays when the backend does not own it.
    assert_eq!(entry_rflags(0x302, false, false, false), 0x302);
    assert_eq!(entry_rflags(0x202, false, false, true), 0x1_0202);
}

#[test]
fn db_exits_decode_dr6_into_the_cause() {
    let cfg = with_slots();
    let e = exception(1, 0);
    assert_eq!(
        decode_debug_exception(&e, 0x1000, DR6_CLEAR | 1, 0, &cfg),
        DebugOutcome::Report {
            pc: 0x1000,
            cause: DebugCause::HwBreakpoint(0)
        }
    );
    assert_eq!(
        decode_debug_exception(&e, 0x1000, DR6_CLEAR | (1 << 2), 0, &cfg),
        DebugOutcome::Report {
            pc: 0x1000,
            cause: DebugCause::Watchpoint(2)
        }
    );
    // The condition bits may come in the exception parameter instead.
    let in_param = exception(1, 1 << 14);
    let step = GuestDebug {
        single_step: true,
        ..cfg
    };
    assert_eq!(
        decode_debug_exception(&in_param, 0x1003, DR6_CLEAR, 0, &step),
        DebugOutcome::Report {
            pc: 0x1003,
            cause: DebugCause::SingleStep
        }
    );
    // A #DB with no condition bit while stepping is the step.
    assert_eq!(
        decode_debug_exception(&e, 0x1005, DR6_CLEAR, 0, &step),
        DebugOutcome::Report {
            pc: 0x1005,
            cause: DebugCause::SingleStep
        }
    );
}

#[test]
fn bp_exits_are_software_breakpoints_at_the_int3() {
    let cfg = with_slots();
    assert_eq!(
        decode_debug_exception(&exception(3, 0), 0x4000, 0, 1, &cfg),
        DebugOutcome::Report {
            pc: 0x4000,
            cause: DebugCause::SoftwareBreakpoint
        }
    );
}

#[test]
fn exceptions_this_vcpu_does_not_debug_go_back_to_the_guest() {
    let none = GuestDebug::default();
    // #BP: pending, type 6 (software exception), length 1, vector 3.
    assert_eq!(
        decode_debug_exception(&exception(3, 0), 0x4000, 0, 1, &none),
        DebugOutcome::Reinject(1 | (6 << 1) | (1 << 5) | (3 << 16))
    );
    // #DB: pending, type 3 (exception), vector 1.
    assert_eq!(
        decode_debug_exception(&exception(1, 0), 0x4000, DR6_CLEAR, 0, &none),
        DebugOutcome::Reinject(1 | (3 << 1) | (1 << 16))
    );
    // Software breakpoints only: a #DB still belongs to the guest.
    let sw_only = GuestDebug {
        enabled: true,
        software_breakpoints: true,
        ..Default::default()
    };
    assert!(matches!(
        decode_debug_exception(&exception(1, 0), 0, DR6_CLEAR, 0, &sw_only),
        DebugOutcome::Reinject(_)
    ));
}

#[test]
fn event_registers_decode_into_vcpu_events() {
    assert_eq!(events_from_registers(0, 0, 0), VcpuEvents::default());
    // External interrupt 0x30 being injected, interrupt shadow set.
    let ev = events_from_registers(1 | (0x30 << 16), 1, 0);
    assert_eq!(ev.interrupt, Some(0x30));
    assert!(ev.interrupt_shadow);
    assert_eq!(ev.exception, None);
    // #GP(0x18) injected through the interruption register.
    let gp = 1 | (3 << 1) | (1 << 4) | (13 << 16) | (0x18u64 << 32);
    assert_eq!(
        events_from_registers(gp, 0, 0).exception,
        Some(PendingException {
            vector: 13,
            error_code: Some(0x18),
            injected: true
        })
    );
    // NMI.
    assert!(events_from_registers(1 | (2 << 1) | (2 << 16), 0, 0).nmi_pending);
    // #PF(2) pending through the exception event register.
    let pf = 1 | (1 << 8) | (14 << 16) | (2u64 << 32);
    assert_eq!(
        events_from_registers(0, 0, pf).exception,
        Some(PendingException {
            vector: 14,
            error_code: Some(2),
            injected: false
        })
    );
    // External-interrupt event: type 5, vector in bits 8-15.
    assert_eq!(
        events_from_registers(0, 0, 1 | (5 << 1) | (0x41 << 8)).interrupt,
        Some(0x41)
    );
}

#[test]
fn translation_succeeds_only_with_the_success_code() {
    assert_eq!(translation(0, 0x1234_5000), Some(0x1234_5000));
    assert_eq!(translation(1, 0x1234_5000), None);
    assert_eq!(translation(6, 0), None);
}
