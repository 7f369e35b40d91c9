//! The answer an exit still owes the guest, applied at the next `run`.
//!
//! WHP leaves every intercepted instruction un-retired: the VMM writes the
//! result registers and moves RIP itself. A vCPU keeps one [`Pending`] per
//! exit; [`Pending::complete`] records the VMM's answer and
//! [`Pending::register_writes`] turns it into the register writes done
//! (in one `WHvSetVirtualProcessorRegisters`) before the guest re-enters.
//! A refused RDMSR/WRMSR does not write the pending-interruption register
//! itself: its #GP goes to the vCPU's event queue (`events.rs`), so that it
//! cannot overwrite an interrupt the VMM injected.
//!
//! An accepted WRMSR to IA32_APIC_BASE is also written to WHP's APIC base
//! register: WHP exits on APIC_BASE writes but answers reads itself, so the
//! value the VMM's LAPIC accepted must be the one RDMSR returns.

use windows_sys::Win32::System::Hypervisor::{
    WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHvX64RegisterApicBase, WHvX64RegisterRax,
    WHvX64RegisterRbx, WHvX64RegisterRcx, WHvX64RegisterRdx, WHvX64RegisterRip,
};

use super::config::MSR_APIC_BASE;
use super::events::QueuedException;
use super::plan::merge_in_result;
use crate::exit::Completion;

/// x86 #GP.
pub const GP_VECTOR: u8 = 13;

/// What the last exit still owes the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pending {
    /// Nothing.
    #[default]
    None,
    /// Move RIP past the instruction (`out`).
    AdvanceRip {
        /// RIP after the instruction.
        next_rip: u64,
    },
    /// Merge the VMM's `in` data into RAX and move RIP.
    PortIn {
        /// RAX at the exit.
        rax: u64,
        /// 1, 2 or 4 bytes.
        len: usize,
        /// RIP after the `in`.
        next_rip: u64,
    },
    /// A hypercall: RAX = result if completed; RIP moves either way.
    Hypercall {
        /// RIP after the VMCALL or `out`.
        next_rip: u64,
        /// The result, once completed.
        result: Option<u64>,
    },
    /// RDMSR: EDX:EAX = value, or #GP (also when not completed).
    MsrRead {
        /// RIP after the RDMSR.
        next_rip: u64,
        /// `Some(Some(v))` = value, `Some(None)` = #GP.
        answer: Option<Option<u64>>,
    },
    /// WRMSR: accepted (RIP moves) or #GP (also when not completed).
    MsrWrite {
        /// The MSR.
        index: u32,
        /// The value written.
        value: u64,
        /// RIP after the WRMSR.
        next_rip: u64,
        /// `Some(true)` = accepted.
        accepted: Option<bool>,
    },
    /// CPUID: the four result registers (WHP's default until completed).
    Cpuid {
        /// RIP after the CPUID.
        next_rip: u64,
        /// EAX, EBX, ECX, EDX.
        result: [u32; 4],
    },
}

impl Pending {
    /// Records the VMM's answer. Errors if the completion does not fit the
    /// exit that is pending.
    pub fn complete(&mut self, completion: Completion) -> Result<(), String> {
        match (self, completion) {
            (Pending::Hypercall { result, .. }, Completion::Hypercall(v)) => *result = Some(v),
            (Pending::MsrRead { answer, .. }, Completion::MsrRead(v)) => *answer = Some(v),
            (Pending::MsrWrite { accepted, .. }, Completion::MsrWrite(ok)) => *accepted = Some(ok),
            (Pending::Cpuid { result, .. }, Completion::Cpuid(r)) => *result = r,
            (p, c) => {
                return Err(format!(
                    "completion {c:?} does not answer pending exit {p:?}"
                ));
            }
        }
        Ok(())
    }

    /// True if finishing this exit raises an exception in the guest (a
    /// refused or unanswered RDMSR/WRMSR): an interrupt cannot go first.
    pub fn raises_exception(&self) -> bool {
        matches!(
            self,
            Pending::MsrRead {
                answer: None | Some(None),
                ..
            } | Pending::MsrWrite {
                accepted: None | Some(false),
                ..
            }
        )
    }

    /// The exception finishing this exit raises, for the event queue.
    pub fn exception(&self) -> Option<QueuedException> {
        self.raises_exception().then_some(QueuedException {
            vector: GP_VECTOR,
            error_code: Some(0),
        })
    }

    /// The register writes that finish the exit. `io_data` is the VMM's
    /// answer to an `in` (the vCPU's I/O buffer). A #GP is not among them:
    /// see [`Pending::exception`].
    pub fn register_writes(&self, io_data: &[u8]) -> Vec<(WHV_REGISTER_NAME, WHV_REGISTER_VALUE)> {
        let reg = |v: u64| {
            let mut r = WHV_REGISTER_VALUE::default();
            r.Reg64 = v;
            r
        };
        match *self {
            Pending::None => Vec::new(),
            Pending::AdvanceRip { next_rip } => vec![(WHvX64RegisterRip, reg(next_rip))],
            Pending::PortIn { rax, len, next_rip } => {
                let data = io_data.get(..len).unwrap_or(&[]);
                vec![
                    (WHvX64RegisterRax, reg(merge_in_result(rax, data))),
                    (WHvX64RegisterRip, reg(next_rip)),
                ]
            }
            Pending::Hypercall { next_rip, result } => {
                let mut w = vec![(WHvX64RegisterRip, reg(next_rip))];
                if let Some(v) = result {
                    w.push((WHvX64RegisterRax, reg(v)));
                }
                w
            }
            Pending::MsrRead {
                next_rip,
                answer: Some(Some(v)),
            } => vec![
                (WHvX64RegisterRax, reg(v & 0xFFFF_FFFF)),
                (WHvX64RegisterRdx, reg(v >> 32)),
                (WHvX64RegisterRip, reg(next_rip)),
            ],
            Pending::MsrRead { .. } => Vec::new(),
            Pending::MsrWrite {
                index,
                value,
                next_rip,
                accepted: Some(true),
            } => {
                let mut w = vec![(WHvX64RegisterRip, reg(next_rip))];
                if index == MSR_APIC_BASE {
                    w.push((WHvX64RegisterApicBase, reg(value)));
                }
                w
            }
            Pending::MsrWrite { .. } => Vec::new(),
            Pending::Cpuid { next_rip, result } => vec![
                (WHvX64RegisterRax, reg(u64::from(result[0]))),
                (WHvX64RegisterRbx, reg(u64::from(result[1]))),
                (WHvX64RegisterRcx, reg(u64::from(result[2]))),
                (WHvX64RegisterRdx, reg(u64::from(result[3]))),
                (WHvX64RegisterRip, reg(next_rip)),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_pairs(w: &[(WHV_REGISTER_NAME, WHV_REGISTER_VALUE)]) -> Vec<(WHV_REGISTER_NAME, u64)> {
        // SAFETY: plain-data union; the first 8 bytes are a valid u64.
        w.iter().map(|(n, v)| (*n, unsafe { v.Reg64 })).collect()
    }

    #[test]
    fn port_in_merges_al_and_moves_rip() {
        let p = Pending::PortIn {
            rax: 0xFFFF_FFFF_FFFF_FF00,
            len: 1,
            next_rip: 0x1001,
        };
        assert_eq!(
            as_pairs(&p.register_writes(&[0x5A, 0xEE])),
            [
                (WHvX64RegisterRax, 0xFFFF_FFFF_FFFF_FF5A),
                (WHvX64RegisterRip, 0x1001)
            ]
        );
    }

    #[test]
    fn hypercall_writes_rax_only_when_completed() {
        let mut p = Pending::Hypercall {
            next_rip: 0x2003,
            result: None,
        };
        assert_eq!(
            as_pairs(&p.register_writes(&[])),
            [(WHvX64RegisterRip, 0x2003)]
        );
        p.complete(Completion::Hypercall(42)).unwrap();
        assert_eq!(
            as_pairs(&p.register_writes(&[])),
            [(WHvX64RegisterRip, 0x2003), (WHvX64RegisterRax, 42)]
        );
    }

    #[test]
    fn msr_read_splits_edx_eax() {
        let mut p = Pending::MsrRead {
            next_rip: 0x10,
            answer: None,
        };
        p.complete(Completion::MsrRead(Some(0xFEE0_0900_1234_5678)))
            .unwrap();
        assert_eq!(
            as_pairs(&p.register_writes(&[])),
            [
                (WHvX64RegisterRax, 0x1234_5678),
                (WHvX64RegisterRdx, 0xFEE0_0900),
                (WHvX64RegisterRip, 0x10)
            ]
        );
    }

    #[test]
    fn refused_or_unanswered_msrs_queue_gp_without_moving_rip() {
        let gp = Some(QueuedException {
            vector: 13,
            error_code: Some(0),
        });
        for p in [
            Pending::MsrRead {
                next_rip: 0x10,
                answer: None,
            },
            Pending::MsrRead {
                next_rip: 0x10,
                answer: Some(None),
            },
            Pending::MsrWrite {
                index: 0xC000_0080,
                value: 0,
                next_rip: 0x10,
                accepted: Some(false),
            },
        ] {
            // No register write at all: the pending-interruption register
            // belongs to the event queue.
            assert_eq!(as_pairs(&p.register_writes(&[])), []);
            assert!(p.raises_exception());
            assert_eq!(p.exception(), gp);
        }
        let ok = Pending::MsrWrite {
            index: 0xC000_0080,
            value: 0,
            next_rip: 0x10,
            accepted: Some(true),
        };
        assert_eq!(
            as_pairs(&ok.register_writes(&[])),
            [(WHvX64RegisterRip, 0x10)]
        );
        assert!(!ok.raises_exception());
        assert_eq!(ok.exception(), None);
    }

    #[test]
    fn an_accepted_apic_base_write_updates_the_register_rdmsr_reads() {
        let mut p = Pending::MsrWrite {
            index: 0x1B,
            value: 0xFEE0_0900,
            next_rip: 0x40,
            accepted: None,
        };
        p.complete(Completion::MsrWrite(true)).unwrap();
        assert_eq!(
            as_pairs(&p.register_writes(&[])),
            [
                (WHvX64RegisterRip, 0x40),
                (WHvX64RegisterApicBase, 0xFEE0_0900)
            ]
        );
        // Refused: neither RIP nor the APIC base changes.
        let refused = Pending::MsrWrite {
            index: 0x1B,
            value: 0xFEE0_0900,
            next_rip: 0x40,
            accepted: Some(false),
        };
        assert_eq!(as_pairs(&refused.register_writes(&[])), []);
    }

    #[test]
    fn cpuid_writes_four_registers_and_rip() {
        let mut p = Pending::Cpuid {
            next_rip: 0x22,
            result: [1, 2, 3, 4],
        };
        p.complete(Completion::Cpuid([
            0xD,
            0x756E_6547,
            0x6C65_746E,
            0x4965_6E69,
        ]))
        .unwrap();
        assert_eq!(
            as_pairs(&p.register_writes(&[])),
            [
                (WHvX64RegisterRax, 0xD),
                (WHvX64RegisterRbx, 0x756E_6547),
                (WHvX64RegisterRcx, 0x6C65_746E),
                (WHvX64RegisterRdx, 0x4965_6E69),
                (WHvX64RegisterRip, 0x22)
            ]
        );
    }

    #[test]
    fn mismatched_completions_are_errors() {
        let mut p = Pending::AdvanceRip { next_rip: 1 };
        assert!(p.complete(Completion::Hypercall(0)).is_err());
        let mut q = Pending::Hypercall {
            next_rip: 1,
            result: None,
        };
        assert!(q.complete(Completion::Cpuid([0; 4])).is_err());
        assert_eq!(Pending::None.register_writes(&[]).len(), 0);
    }
}
