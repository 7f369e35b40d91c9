//! The vCPU run loop: finish what the last exit owed, inject at most one
//! event, enter the guest, and turn the exit into a [`VmExit`].

use windows_sys::Win32::System::Hypervisor::{
    WHV_RUN_VP_EXIT_CONTEXT, WHvRegisterInternalActivityState, WHvRegisterPendingInterruption,
    WHvRunVpExitReasonCanceled, WHvX64RegisterCr4, WHvX64RegisterCr8, WHvX64RegisterDr6,
    WHvX64RegisterRflags, WHvX64RegisterXCr0,
};

use super::cpuid::{self, CpuidState};
use super::debug::{self, DebugOutcome};
use super::emulator::{EmuStep, Emulation};
use super::entry;
use super::events;
use super::hresult::check;
use super::kick::AfterRun;
use super::pending::Pending;
use super::plan::{self, ExitPlan};
use super::replay::{AccessKind, Replay};
use super::translate::{self, ExceptionInfo, RawExit};
use super::vcpu::WhpVcpu;
use super::{Aligned, IO_BUFFER_LEN, reg64, value64};
use crate::Result;
use crate::debug::DebugCause;
use crate::exit::{InstructionBytes, VmExit};

impl WhpVcpu {
    /// Applies what the last exit owed the guest, writes at most one queued
    /// event, arms the interrupt window, and sets the debug RFLAGS bits.
    fn finish_last_exit(&mut self) -> Result<()> {
        if let Some(em) = self.emulation.as_mut() {
            em.replay.supply(&self.buf);
        }
        let entry = entry::plan_entry(
            &self.pending,
            &self.buf,
            &mut self.events,
            &self.state,
            self.window_wanted,
            self.window_armed,
        );
        self.pending = Pending::None;
        if entry.event_written {
            self.state.interruption_pending = true;
        }
        self.window_armed = entry.window_armed;
        let mut writes = entry.writes;
        if let Some(cr8) = self.cr8_pending.take() {
            writes.push((WHvX64RegisterCr8, reg64(u64::from(cr8))));
            self.state.cr8 = cr8;
        }
        if self.halted {
            self.halted = false;
            self.wake_from_halt();
        }
        if self.debug.single_step || self.tf_owned || self.resume_flag {
            let [rflags] = self.get_registers(&[WHvX64RegisterRflags])?;
            let entry = debug::entry_rflags(
                value64(&rflags),
                self.debug.single_step,
                self.tf_owned,
                self.resume_flag,
            );
            writes.push((WHvX64RegisterRflags, reg64(entry)));
            self.tf_owned = self.debug.single_step;
            self.resume_flag = false;
        }
        self.set_registers(&writes)
    }

    /// Clears `HaltSuspend` if the `X64Halt` exit left the VP suspended.
    /// Best effort: with LAPIC emulation off the VP is most likely not
    /// suspended at all, and a write to the activity register has been
    /// reported refused (ACCESS_DENIED) in that mode, so a failure here
    /// must not fail the run (see docs/windows.md).
    fn wake_from_halt(&self) {
        let Ok([activity]) = self.get_registers(&[WHvRegisterInternalActivityState]) else {
            return;
        };
        if let Some(awake) = events::wake_from_halt(value64(&activity)) {
            let _ = self.set_registers(&[(WHvRegisterInternalActivityState, reg64(awake))]);
        }
    }

    /// Turns a #DB/#BP exception exit into `VmExit::Debug`, or gives the
    /// exception back to the guest (`None`: re-enter).
    fn debug_exit(&mut self, e: &ExceptionInfo) -> Result<Option<(u64, DebugCause)>> {
        let dr6 = if e.vector == debug::DB_VECTOR {
            let [v] = self.get_registers(&[WHvX64RegisterDr6])?;
            value64(&v)
        } else {
            0
        };
        let outcome = debug::decode_debug_exception(
            e,
            self.state.rip,
            dr6,
            self.state.instruction_length,
            &self.debug,
        );
        match outcome {
            DebugOutcome::Report { pc, cause } => {
                if e.vector == debug::DB_VECTOR {
                    // DR6 conditions are sticky: clear them for the next exit.
                    self.set_registers(&[(WHvX64RegisterDr6, reg64(debug::DR6_CLEAR))])?;
                }
                self.resume_flag = matches!(cause, DebugCause::HwBreakpoint(_));
                Ok(Some((pc, cause)))
            }
            DebugOutcome::Reinject(bits) => {
                self.set_registers(&[(WHvRegisterPendingInterruption, reg64(bits))])?;
                // The register is taken: queued events wait for the next exit.
                self.state.interruption_pending = true;
                Ok(None)
            }
        }
    }

    /// The table's CPUID answer with the state- and vCPU-dependent bits set.
    fn cpuid_answer(&self, leaf: u32, subleaf: u32, result: [u32; 4]) -> Result<[u32; 4]> {
        let Some(table) = self.cpuid.as_deref() else {
            return Ok(result);
        };
        let (cr4, xcr0) = if cpuid::depends_on_state(leaf) {
            let [cr4, xcr0] = self.get_registers(&[WHvX64RegisterCr4, WHvX64RegisterXCr0])?;
            (value64(&cr4), value64(&xcr0))
        } else {
            (0, 1)
        };
        let state = CpuidState {
            cr4,
            xcr0,
            apic_id: self.index,
        };
        Ok(cpuid::fix_up(leaf, subleaf, result, &state, table))
    }

    /// Enters the guest once; `None` when the run was a spurious cancel.
    fn enter_guest(&mut self) -> Result<Option<AfterRun>> {
        let size = std::mem::size_of::<WHV_RUN_VP_EXIT_CONTEXT>() as u32;
        // SAFETY: the VP exists; `self.exit` is a writable, aligned buffer
        // of `size` bytes.
        let hr = unsafe {
            (self.api.run_virtual_processor)(
                self.partition.handle,
                self.index,
                (&mut self.exit.0 as *mut WHV_RUN_VP_EXIT_CONTEXT).cast(),
                size,
            )
        };
        let canceled = hr >= 0 && self.exit.0.ExitReason == WHvRunVpExitReasonCanceled;
        let after = self.kick.state.leave(canceled);
        check(hr, "WHvRunVirtualProcessor")?;
        self.state = translate::exec_state(&self.exit.0.VpContext);
        Ok((after != AfterRun::Spurious).then_some(after))
    }

    /// `Vcpu::run`.
    pub(super) fn run_loop(&mut self) -> Result<VmExit<'_>> {
        loop {
            self.finish_last_exit()?;
            match self.step_emulation()? {
                EmuStep::Done => {}
                EmuStep::Failed(instruction) => {
                    return Ok(VmExit::EmulationFailure {
                        instruction: Some(instruction),
                    });
                }
                EmuStep::Deliver {
                    kind,
                    addr,
                    size,
                    len,
                } => {
                    let data = self.buf.get_mut(..len).unwrap_or(&mut []);
                    return Ok(match kind {
                        AccessKind::PortRead => VmExit::IoIn {
                            port: addr as u16,
                            size,
                            data,
                        },
                        AccessKind::PortWrite => VmExit::IoOut {
                            port: addr as u16,
                            size,
                            data,
                        },
                        AccessKind::MmioRead => VmExit::MmioRead { addr, data },
                        AccessKind::MmioWrite => VmExit::MmioWrite { addr, data },
                    });
                }
            }
            if !self.kick.state.enter() {
                return Ok(VmExit::Interrupted);
            }
            match self.enter_guest()? {
                None => continue,
                Some(AfterRun::Interrupted) => return Ok(VmExit::Interrupted),
                Some(_) => {}
            }
            let raw = translate::decode_exit(&self.exit.0);
            self.halted = matches!(raw, RawExit::Halt);
            if matches!(raw, RawExit::InterruptWindow) {
                // QEMU treats the notification as one-shot (cleared with
                // this exit); WHP does not document it. Whatever it is now,
                // the next entry writes the wanted value again, so a
                // notification left set cannot fire forever.
                self.window_armed = None;
                if !self.window_wanted {
                    continue; // our own window, for a queued interrupt
                }
            }
            let plan = plan::plan_exit(
                &raw,
                &self.state,
                self.hypercall_port,
                self.cpuid.as_deref(),
            );
            if let Some(exit) = self.start_exit(plan, &raw)? {
                return Ok(exit.into_exit(&mut self.buf));
            }
        }
    }

    /// Records what the exit owes and what to report; `None` re-enters.
    fn start_exit(&mut self, plan: ExitPlan, raw: &RawExit) -> Result<Option<Report>> {
        Ok(Some(match plan {
            ExitPlan::Report(exit) => Report::Exit(exit),
            ExitPlan::Resume => return Ok(None),
            ExitPlan::PortOut {
                port,
                data,
                len,
                next_rip,
            } => {
                self.pending = Pending::AdvanceRip { next_rip };
                Report::IoOut { port, data, len }
            }
            ExitPlan::PortIn {
                port,
                len,
                rax,
                next_rip,
            } => {
                self.pending = Pending::PortIn { rax, len, next_rip };
                Report::IoIn { port, len }
            }
            ExitPlan::PortHypercall { io, next_rip } => {
                let args = self.get_registers(&translate::PORT_HYPERCALL_REGISTERS)?;
                self.pending = Pending::Hypercall {
                    next_rip,
                    result: None,
                };
                Report::Exit(VmExit::Hypercall(translate::hypercall_from_port(
                    io.rax,
                    args.map(|v| value64(&v)),
                )))
            }
            ExitPlan::Hypercall { call, next_rip } => {
                self.pending = Pending::Hypercall {
                    next_rip,
                    result: None,
                };
                Report::Exit(VmExit::Hypercall(call))
            }
            ExitPlan::MsrRead { index, next_rip } => {
                self.pending = Pending::MsrRead {
                    next_rip,
                    answer: None,
                };
                Report::Exit(VmExit::MsrRead { index })
            }
            ExitPlan::MsrWrite {
                index,
                value,
                next_rip,
            } => {
                self.pending = Pending::MsrWrite {
                    index,
                    value,
                    next_rip,
                    accepted: None,
                };
                Report::Exit(VmExit::MsrWrite { index, value })
            }
            ExitPlan::CpuidAnswer { result, next_rip } => {
                let result = match *raw {
                    RawExit::Cpuid { leaf, subleaf, .. } => {
                        self.cpuid_answer(leaf, subleaf, result)?
                    }
                    _ => result,
                };
                self.pending = Pending::Cpuid { next_rip, result };
                return Ok(None);
            }
            ExitPlan::CpuidAsk {
                leaf,
                subleaf,
                default,
                next_rip,
            } => {
                self.pending = Pending::Cpuid {
                    next_rip,
                    result: default,
                };
                Report::Exit(VmExit::Cpuid { leaf, subleaf })
            }
            ExitPlan::DebugException(e) => match self.debug_exit(&e)? {
                Some((pc, cause)) => Report::Exit(VmExit::Debug { pc, cause }),
                None => return Ok(None),
            },
            ExitPlan::Emulate => {
                let (is_io, expected, instruction) = match *raw {
                    RawExit::PortIo(io) => (true, io.element_count(), io.instruction),
                    RawExit::Memory(m) => (false, 1, m.instruction),
                    _ => (false, 1, InstructionBytes::default()),
                };
                self.emulation = Some(Emulation {
                    replay: Replay::new(expected, IO_BUFFER_LEN),
                    exit: Box::new(Aligned(self.exit.0)),
                    is_io,
                    instruction,
                });
                return Ok(None);
            }
        }))
    }
}

/// An exit to report, before it borrows the vCPU's I/O buffer.
enum Report {
    /// Reported as it is.
    Exit(VmExit<'static>),
    /// A plain `out` of `data[..len]`.
    IoOut {
        port: u16,
        data: [u8; 4],
        len: usize,
    },
    /// A plain `in` of `len` bytes.
    IoIn { port: u16, len: usize },
}

impl Report {
    fn into_exit(self, buf: &mut [u8]) -> VmExit<'_> {
        match self {
            Report::Exit(exit) => exit,
            Report::IoOut { port, data, len } => {
                let n = len.min(4);
                let (dst, src) = (buf.get_mut(..n), data.get(..n));
                if let (Some(dst), Some(src)) = (dst, src) {
                    dst.copy_from_slice(src);
                }
                VmExit::IoOut {
                    port,
                    size: n as u8,
                    data: buf.get(..n).unwrap_or(&[]),
                }
            }
            Report::IoIn { port, len } => {
                let n = len.min(4);
                let data = buf.get_mut(..n).unwrap_or(&mut []);
                data.fill(0);
                VmExit::IoIn {
                    port,
                    size: n as u8,
                    data,
                }
            }
        }
    }
}
