//! `explain_x86`: from what a VMM can read after a triple fault (registers,
//! the vCPU's event state, guest memory, the bytes at RIP) to one
//! [`FaultReport`]; and `explain_halted_handler` for a guest whose
//! exception handler halts.

use seraph_hypervisor::{InstructionBytes, Regs, SpecialRegs, VcpuEvents};
use seraph_memory::vm_memory::GuestMemoryMmap;

use super::error_code::{self, PageFaultError};
use super::exceptions::{self, vector};
use super::idt::{self, IdtProblem};
use super::insn::{self, InsnEffect};
use super::walk::{AccessIntent, PagingControls, WalkOutcome, explain_access};
use crate::report::{Access, Arch, Cause, FaultReport};

/// What the VMM read from the vCPU when the run ended.
#[derive(Debug, Clone, Copy)]
pub struct X86FaultState<'a> {
    /// General registers (RIP, RSP, and the operands of the instruction).
    pub regs: &'a Regs,
    /// Control, segment and descriptor-table registers (CR2, CR3, IDTR, ...).
    pub sregs: &'a SpecialRegs,
    /// The vCPU's event state, if the backend could read it (`Vcpu::events`).
    pub events: Option<&'a VcpuEvents>,
    /// The instruction bytes at RIP, if known (read through the guest's tables otherwise).
    pub instruction: Option<&'a InstructionBytes>,
}

/// Where the first fault's identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The hypervisor reported the exception (KVM_GET_VCPU_EVENTS).
    Reported,
    /// RIP cannot be fetched: the fault is on the instruction fetch.
    FetchAtRip,
    /// The instruction at RIP was decoded and its operand checked.
    Instruction,
    /// CR2 names an address that does not translate.
    Cr2,
    /// Nothing explains it.
    Unknown,
}

struct FirstFault {
    vector: u8,
    error_code: Option<u32>,
    address: Option<u64>,
    access: Option<Access>,
    evidence: Evidence,
    note: Option<String>,
}

fn cpl(sregs: &SpecialRegs) -> u8 {
    (sregs.cs.selector & 3) as u8
}

fn derived_pf_code(outcome: &WalkOutcome, access: Access, user: bool) -> u32 {
    let (present, reserved) = match outcome {
        WalkOutcome::Fault(f) => (
            !matches!(f.cause, Cause::NotPresent | Cause::TableOutsideMemory),
            f.cause == Cause::ReservedBit,
        ),
        _ => (false, false),
    };
    PageFaultError {
        present,
        write: access == Access::Write,
        user,
        reserved_bit: reserved,
        instruction_fetch: access == Access::Execute,
        ..Default::default()
    }
    .encode()
}

fn instruction_bytes(mem: &GuestMemoryMmap, state: &X86FaultState<'_>) -> Option<InstructionBytes> {
    if let Some(b) = state.instruction {
        return Some(*b);
    }
    let ctl = PagingControls::from_sregs(state.sregs);
    let mut buf = [0u8; 15];
    (1..=15usize).rev().find_map(|len| {
        let part = buf.get_mut(..len)?;
        idt::read_linear(mem, &ctl, state.regs.rip, part)?;
        Some(InstructionBytes::from_slice(part))
    })
}

/// Works out the first exception from the state alone.
fn derive(mem: &GuestMemoryMmap, state: &X86FaultState<'_>) -> FirstFault {
    let (regs, sregs) = (state.regs, state.sregs);
    let ctl = PagingControls::from_sregs(sregs);
    let user = cpl(sregs) == 3;
    let fetch = AccessIntent {
        access: Access::Execute,
        user,
    };
    let at_rip = explain_access(mem, &ctl, regs.rip, fetch);
    match at_rip {
        WalkOutcome::NonCanonical => {
            return FirstFault {
                vector: vector::GP,
                error_code: Some(0),
                address: Some(regs.rip),
                access: Some(Access::Execute),
                evidence: Evidence::FetchAtRip,
                note: Some("rip is not canonical".into()),
            };
        }
        WalkOutcome::Fault(_) => {
            return FirstFault {
                vector: vector::PF,
                error_code: Some(derived_pf_code(&at_rip, Access::Execute, user)),
                address: Some(regs.rip),
                access: Some(Access::Execute),
                evidence: Evidence::FetchAtRip,
                note: Some("derived: the instruction at rip cannot be fetched".into()),
            };
        }
        _ => {}
    }
    let bytes = instruction_bytes(mem, state);
    let effect = bytes
        .as_ref()
        .and_then(|b| insn::decode(b.as_slice(), regs));
    match effect {
        Some(InsnEffect::Memory {
            address, access, ..
        }) => {
            let outcome = explain_access(mem, &ctl, address, AccessIntent { access, user });
            match outcome {
                WalkOutcome::NonCanonical => {
                    return FirstFault {
                        vector: vector::GP,
                        error_code: Some(0),
                        address: Some(address),
                        access: Some(access),
                        evidence: Evidence::Instruction,
                        note: Some(format!(
                            "derived: the instruction at rip accesses non-canonical {address:#x}"
                        )),
                    };
                }
                WalkOutcome::Fault(_) => {
                    return FirstFault {
                        vector: vector::PF,
                        error_code: Some(derived_pf_code(&outcome, access, user)),
                        address: Some(address),
                        access: Some(access),
                        evidence: Evidence::Instruction,
                        note: Some("derived from the instruction at rip".into()),
                    };
                }
                _ => {}
            }
        }
        Some(InsnEffect::Wrmsr { msr }) | Some(InsnEffect::Rdmsr { msr }) => {
            let what = if matches!(effect, Some(InsnEffect::Wrmsr { .. })) {
                "wrmsr"
            } else {
                "rdmsr"
            };
            return FirstFault {
                vector: vector::GP,
                error_code: Some(0),
                address: None,
                access: None,
                evidence: Evidence::Instruction,
                note: Some(format!(
                    "derived: {what} of MSR {msr:#x} at rip (refused by the hypervisor)"
                )),
            };
        }
        _ => {}
    }
    // Last resort: CR2 (set by the most recent #PF, possibly an old one).
    let read = AccessIntent {
        access: Access::Read,
        user,
    };
    let write = AccessIntent {
        access: Access::Write,
        user,
    };
    if sregs.cr2 != 0 {
        for intent in [read, write] {
            let outcome = explain_access(mem, &ctl, sregs.cr2, intent);
            if matches!(outcome, WalkOutcome::Fault(_)) {
                return FirstFault {
                    vector: vector::PF,
                    error_code: None,
                    address: Some(sregs.cr2),
                    access: (intent.access == Access::Write).then_some(Access::Write),
                    evidence: Evidence::Cr2,
                    note: Some("derived from cr2".into()),
                };
            }
        }
    }
    FirstFault {
        vector: 0xFF,
        error_code: None,
        address: None,
        access: None,
        evidence: Evidence::Unknown,
        note: bytes.map(|b| format!("instruction at rip: {b}")),
    }
}

/// Why an exception could not be delivered: the gate, the handler's page,
/// the stack.
fn delivery_notes(mem: &GuestMemoryMmap, state: &X86FaultState<'_>, vector: u8) -> Vec<String> {
    let (regs, sregs) = (state.regs, state.sregs);
    let ctl = PagingControls::from_sregs(sregs);
    let mut notes = Vec::new();
    let name = exceptions::exception(vector).map_or("the exception", |e| e.mnemonic);
    match idt::read_gate(mem, &ctl, &sregs.idt, vector) {
        Err(IdtProblem::Empty) => {
            notes.push(format!("{name} cannot be delivered: {}", IdtProblem::Empty));
            return notes;
        }
        Err(problem) => notes.push(format!("{name} cannot be delivered: {problem}")),
        Ok(gate) => {
            let fetch = AccessIntent {
                access: Access::Execute,
                user: false,
            };
            if let WalkOutcome::Fault(f) = explain_access(mem, &ctl, gate.offset, fetch) {
                notes.push(format!(
                    "{name} handler at {:#x} cannot be fetched ({} at {})",
                    gate.offset, f.cause, f.level
                ));
            }
            if gate.ist == 0 && cpl(sregs) == 0 {
                let push = AccessIntent {
                    access: Access::Write,
                    user: false,
                };
                let slot = (regs.rsp & !0xF).wrapping_sub(8);
                if let WalkOutcome::Fault(f) = explain_access(mem, &ctl, slot, push) {
                    notes.push(format!(
                        "the stack at {slot:#x} cannot take the frame ({} at {})",
                        f.cause, f.level
                    ));
                }
            }
        }
    }
    if vector != vector::DF {
        if let Err(problem) = idt::read_gate(mem, &ctl, &sregs.idt, vector::DF) {
            notes.push(format!("nor can #DF: {problem}"));
        }
    }
    notes
}

/// The exception the backend reported; for #GP and #SS, the instruction at
/// RIP names the non-canonical address if it is a decodable MOV.
fn reported_fault(
    mem: &GuestMemoryMmap,
    state: &X86FaultState<'_>,
    vector: u8,
    error_code: Option<u32>,
) -> FirstFault {
    let mut first = FirstFault {
        vector,
        error_code,
        address: (vector == vector::PF).then_some(state.sregs.cr2),
        access: None,
        evidence: Evidence::Reported,
        note: None,
    };
    if vector == vector::GP || vector == vector::SS {
        let bytes = instruction_bytes(mem, state);
        let effect = bytes.and_then(|b| insn::decode(b.as_slice(), state.regs));
        if let Some(InsnEffect::Memory {
            address, access, ..
        }) = effect
        {
            let ctl = PagingControls::from_sregs(state.sregs);
            let intent = AccessIntent {
                access,
                user: cpl(state.sregs) == 3,
            };
            if explain_access(mem, &ctl, address, intent) == WalkOutcome::NonCanonical {
                first.address = Some(address);
                first.access = Some(access);
                first.evidence = Evidence::Instruction;
            }
        }
    }
    first
}

/// Explains the exception that ended a run (a triple fault, a shutdown):
/// the first fault, its address, the table level that refused it, the
/// error code, and why the CPU could not deliver it.
///
/// The exception comes from `state.events` when the backend reports one;
/// otherwise (KVM clears it at a triple fault, see docs/fault-reports.md)
/// it is derived from the state: an unfetchable RIP, the decoded
/// instruction at RIP and its operand, or CR2.
pub fn explain_x86(mem: &GuestMemoryMmap, state: &X86FaultState<'_>) -> FaultReport {
    let reported = state.events.and_then(|e| e.exception);
    let first = match reported {
        Some(pe) => reported_fault(mem, state, pe.vector, pe.error_code),
        None => derive(mem, state),
    };
    let mut report = match exceptions::exception(first.vector) {
        Some(info) => FaultReport::new(Arch::X86_64, info.mnemonic, info.name),
        None => FaultReport::new(Arch::X86_64, "shutdown", "unexplained triple fault"),
    };
    report.pc = Some(state.regs.rip);
    report.address = first.address;
    report.access = first.access;
    if let (Some(code), vector::PF) = (first.error_code, first.vector) {
        report.access = Some(PageFaultError::decode(code).access());
    }
    if first.vector == vector::PF {
        if let Some(address) = first.address {
            explain_page(mem, state, address, first.error_code, &mut report);
        }
    }
    if first.vector == vector::GP
        && first.evidence == Evidence::Instruction
        && first.address.is_some()
    {
        report.cause = Some(Cause::NonCanonical);
    }
    if let Some(code) = first.error_code {
        report.syndrome = Some(error_code::describe(first.vector, code));
    }
    report.notes.extend(first.note);
    if first.evidence != Evidence::Unknown {
        report
            .notes
            .extend(delivery_notes(mem, state, first.vector));
    }
    report
}

fn explain_page(
    mem: &GuestMemoryMmap,
    state: &X86FaultState<'_>,
    address: u64,
    code: Option<u32>,
    report: &mut FaultReport,
) {
    let ctl = PagingControls::from_sregs(state.sregs);
    let intent = AccessIntent {
        access: report.access.unwrap_or(Access::Read),
        user: code.map_or(cpl(state.sregs) == 3, |c| PageFaultError::decode(c).user),
    };
    match explain_access(mem, &ctl, address, intent) {
        WalkOutcome::Fault(f) => {
            report.cause = Some(f.cause);
            report.level = Some(f.level);
        }
        WalkOutcome::NonCanonical => report.cause = Some(Cause::NonCanonical),
        WalkOutcome::Mapped { .. } | WalkOutcome::PagingOff => report
            .notes
            .push("the address translates now: the tables changed after the fault".into()),
        WalkOutcome::UnsupportedMode => report
            .notes
            .push("paging mode not walked (only 4-level long mode is)".into()),
    }
}

/// For a guest that halts inside an exception handler (a #PF handler that
/// prints and HLT-loops, say): finds the handler RIP belongs to through
/// the IDT, and reads the exception frame at RSP if it is reliable (the
/// handler did not move RSP). `None` if RIP is in no IDT handler.
pub fn explain_halted_handler(
    mem: &GuestMemoryMmap,
    regs: &Regs,
    sregs: &SpecialRegs,
) -> Option<FaultReport> {
    let ctl = PagingControls::from_sregs(sregs);
    let found = idt::handler_containing(mem, &ctl, &sregs.idt, regs.rip)?;
    let Some(vector) = found.exception() else {
        let v = found.vectors.first().copied().unwrap_or(0);
        let mut report = FaultReport::new(Arch::X86_64, "INT", "interrupt handler");
        report.pc = Some(regs.rip);
        report.notes.push(format!(
            "halted in the handler at {:#x} for vector {v:#04x}",
            found.handler
        ));
        return Some(report);
    };
    let info = exceptions::exception(vector)?;
    let mut report = FaultReport::new(Arch::X86_64, info.mnemonic, info.name);
    let frame = idt::read_frame(mem, sregs, regs.rsp, vector);
    report.pc = frame.map(|f| f.rip);
    let code = frame.and_then(|f| f.error_code).map(|c| c as u32);
    if vector == vector::PF {
        report.address = Some(sregs.cr2);
        if let Some(code) = code {
            report.access = Some(PageFaultError::decode(code).access());
        }
        let state = X86FaultState {
            regs,
            sregs,
            events: None,
            instruction: None,
        };
        explain_page(mem, &state, sregs.cr2, code, &mut report);
    }
    if let Some(code) = code {
        report.syndrome = Some(error_code::describe(vector, code));
    }
    report.notes.push(format!(
        "the guest's handler at {:#x} took it and halts at rip {:#x}",
        found.handler, regs.rip
    ));
    if frame.is_none() {
        report
            .notes
            .push("the exception frame at rsp is not readable or has been moved".into());
    }
    Some(report)
}
