//! [`WhpVcpu`]: a WHP virtual processor, its registers and the `Vcpu`
//! trait. The run loop is in `run.rs`, the instruction emulator in
//! `emulator.rs`.

use std::ffi::c_void;
use std::sync::Arc;

use windows_sys::Win32::System::Hypervisor::{
    WHV_EMULATOR_CALLBACKS, WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHV_RUN_VP_EXIT_CONTEXT,
    WHV_TRANSLATE_GVA_RESULT, WHvTranslateGvaFlagPrivilegeExempt, WHvTranslateGvaFlagValidateRead,
    WHvX64RegisterPat,
};

use super::api::Api;
use super::emulator::{self, Emulation};
use super::events::EventQueue;
use super::hresult::check;
use super::kick::{KickState, WhpKick};
use super::partition::Partition;
use super::pending::Pending;
use super::registers;
use super::translate::ExecState;
use super::{Aligned, ExitBuffer, IO_BUFFER_LEN, reg64, value64};
use super::{config, debug};
use crate::debug::{GuestDebug, PendingException, VcpuEvents};
use crate::exit::{Completion, VmExit};
use crate::x86::{CpuidEntry, Regs, SpecialRegs};
use crate::{HypervisorError, Result, Vcpu, VcpuKick};

/// A WHP virtual processor.
pub struct WhpVcpu {
    pub(super) api: &'static Api,
    pub(super) partition: Arc<Partition>,
    pub(super) index: u32,
    pub(super) emulator: *mut c_void,
    pub(super) hypercall_port: Option<u16>,
    pub(super) kick: Arc<WhpKick>,
    pub(super) exit: Box<ExitBuffer>,
    pub(super) state: ExecState,
    pub(super) pending: Pending,
    /// Exceptions and interrupts not yet written to the guest.
    pub(super) events: EventQueue,
    pub(super) emulation: Option<Emulation>,
    pub(super) cpuid: Option<Vec<CpuidEntry>>,
    pub(super) window_wanted: bool,
    /// The interrupt-window notification as last written (`None`: unknown,
    /// write it at the next entry).
    pub(super) window_armed: Option<bool>,
    pub(super) buf: Vec<u8>,
    /// The guest-debug configuration.
    pub(super) debug: GuestDebug,
    /// RFLAGS.TF was set by this backend (single-step), not by the guest.
    pub(super) tf_owned: bool,
    /// Enter with RFLAGS.RF to step over the execute breakpoint just reported.
    pub(super) resume_flag: bool,
    /// The last exit was `X64Halt`: wake the VP before the next entry.
    pub(super) halted: bool,
    /// CR8 the VMM set for the next entry (`Vcpu::set_cr8`), not yet written.
    pub(super) cr8_pending: Option<u8>,
}

// SAFETY: the emulator handle is an opaque pointer owned by this vCPU alone
// and only used through `&mut self`; WinHvEmulation does not tie it to the
// creating thread.
unsafe impl Send for WhpVcpu {}

impl std::fmt::Debug for WhpVcpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhpVcpu")
            .field("index", &self.index)
            .field("state", &self.state)
            .field("pending", &self.pending)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl WhpVcpu {
    pub(super) fn create(
        partition: Arc<Partition>,
        index: u32,
        hypercall_port: Option<u16>,
    ) -> Result<Self> {
        let api = partition.api;
        check(
            // SAFETY: a set-up partition; the VP is deleted in Drop.
            unsafe { (api.create_virtual_processor)(partition.handle, index, 0) },
            "WHvCreateVirtualProcessor",
        )?;
        let callbacks = WHV_EMULATOR_CALLBACKS {
            Size: std::mem::size_of::<WHV_EMULATOR_CALLBACKS>() as u32,
            Reserved: 0,
            WHvEmulatorIoPortCallback: Some(emulator::emu_io_port),
            WHvEmulatorMemoryCallback: Some(emulator::emu_memory),
            WHvEmulatorGetVirtualProcessorRegisters: Some(emulator::emu_get_registers),
            WHvEmulatorSetVirtualProcessorRegisters: Some(emulator::emu_set_registers),
            WHvEmulatorTranslateGvaPage: Some(emulator::emu_translate_gva),
        };
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: `callbacks` is valid for the call (WHP copies it) and
        // `handle` is a valid out-pointer.
        let hr = unsafe { (api.emulator_create)(&callbacks, &mut handle) };
        if let Err(e) = check(hr, "WHvEmulatorCreateEmulator") {
            // SAFETY: the VP was created above and is not used again.
            unsafe {
                (api.delete_virtual_processor)(partition.handle, index);
            }
            return Err(e);
        }
        let kick = Arc::new(WhpKick {
            api,
            partition: Arc::clone(&partition),
            index,
            state: KickState::default(),
        });
        let vcpu = WhpVcpu {
            api,
            partition,
            index,
            emulator: handle,
            hypercall_port,
            kick,
            exit: Box::new(Aligned(WHV_RUN_VP_EXIT_CONTEXT::default())),
            state: ExecState::RESET,
            pending: Pending::None,
            events: EventQueue::default(),
            emulation: None,
            cpuid: None,
            window_wanted: false,
            window_armed: Some(false),
            buf: vec![0; IO_BUFFER_LEN],
            debug: GuestDebug::default(),
            tf_owned: false,
            resume_flag: false,
            halted: false,
            cr8_pending: None,
        };
        vcpu.set_registers(&[(WHvX64RegisterPat, reg64(config::PAT_RESET))])?;
        Ok(vcpu)
    }

    pub(super) fn get_registers<const N: usize>(
        &self,
        names: &[WHV_REGISTER_NAME; N],
    ) -> Result<[WHV_REGISTER_VALUE; N]> {
        let mut values = Aligned([WHV_REGISTER_VALUE::default(); N]);
        check(
            // SAFETY: `names` and `values` both hold N elements; `values` is
            // writable and 16-byte aligned.
            unsafe {
                (self.api.get_registers)(
                    self.partition.handle,
                    self.index,
                    names.as_ptr(),
                    N as u32,
                    values.0.as_mut_ptr(),
                )
            },
            "WHvGetVirtualProcessorRegisters",
        )?;
        Ok(values.0)
    }

    pub(super) fn set_registers(
        &self,
        pairs: &[(WHV_REGISTER_NAME, WHV_REGISTER_VALUE)],
    ) -> Result<()> {
        const MAX: usize = 32;
        if pairs.is_empty() {
            return Ok(());
        }
        if pairs.len() > MAX {
            return Err(HypervisorError::Invalid(
                "too many registers in one write".into(),
            ));
        }
        let mut names = [0 as WHV_REGISTER_NAME; MAX];
        let mut values = Aligned([WHV_REGISTER_VALUE::default(); MAX]);
        for ((name, value), (n, v)) in names.iter_mut().zip(values.0.iter_mut()).zip(pairs) {
            *name = *n;
            *value = *v;
        }
        check(
            // SAFETY: the first `pairs.len()` entries of both arrays are
            // initialised; `values` is 16-byte aligned.
            unsafe {
                (self.api.set_registers)(
                    self.partition.handle,
                    self.index,
                    names.as_ptr(),
                    pairs.len() as u32,
                    values.0.as_ptr(),
                )
            },
            "WHvSetVirtualProcessorRegisters",
        )
    }
}

impl Drop for WhpVcpu {
    fn drop(&mut self) {
        // SAFETY: the emulator and the VP were created by WhpVcpu::create and
        // are not used after this; the partition is still alive (Arc).
        unsafe {
            (self.api.emulator_destroy)(self.emulator);
            (self.api.delete_virtual_processor)(self.partition.handle, self.index);
        }
    }
}

/// True if an external interrupt can be injected now: the guest can take
/// one (IF, no shadow, nothing pending in WHP), nothing is queued, and the
/// last exit does not owe the guest an exception (a refused or unanswered
/// RDMSR/WRMSR ends in #GP, which goes first).
fn injectable(state: &ExecState, events: &EventQueue, pending: &Pending) -> bool {
    state.can_inject_interrupt() && events.is_empty() && !pending.raises_exception()
}

/// The events the queue still holds, merged into what the registers say.
fn with_queued(mut ev: VcpuEvents, queue: &EventQueue) -> VcpuEvents {
    if ev.exception.is_none() {
        ev.exception = queue.next_exception().map(|e| PendingException {
            vector: e.vector,
            error_code: e.error_code,
            injected: false,
        });
    }
    if ev.interrupt.is_none() {
        ev.interrupt = queue.next_interrupt();
    }
    ev
}

impl Vcpu for WhpVcpu {
    fn regs(&self) -> Result<Regs> {
        let v = self.get_registers(&registers::REGS_NAMES)?;
        let mut regs = registers::regs_from_values(&v);
        if self.tf_owned {
            // Single-step's TF is the debugger's, not the guest's (as KVM hides it).
            regs.rflags &= !debug::RFLAGS_TF;
        }
        Ok(regs)
    }

    fn set_regs(&mut self, regs: &Regs) -> Result<()> {
        let values = registers::regs_to_values(regs);
        let pairs: Vec<_> = registers::REGS_NAMES.iter().copied().zip(values).collect();
        self.set_registers(&pairs)?;
        self.state.rip = regs.rip;
        self.state.rflags = regs.rflags;
        Ok(())
    }

    fn special_regs(&self) -> Result<SpecialRegs> {
        let v = self.get_registers(&registers::SREGS_NAMES)?;
        Ok(registers::sregs_from_values(&v))
    }

    fn set_special_regs(&mut self, sregs: &SpecialRegs) -> Result<()> {
        let values = registers::sregs_to_values(sregs);
        let pairs: Vec<_> = registers::SREGS_NAMES.iter().copied().zip(values).collect();
        self.set_registers(&pairs)?;
        self.state.cr8 = (sregs.cr8 & 0xF) as u8;
        self.cr8_pending = None;
        Ok(())
    }

    fn set_cpuid(&mut self, entries: &[CpuidEntry]) -> Result<()> {
        self.cpuid = Some(entries.to_vec());
        Ok(())
    }

    fn run(&mut self) -> Result<VmExit<'_>> {
        self.run_loop()
    }

    fn complete(&mut self, completion: Completion) -> Result<()> {
        self.pending
            .complete(completion)
            .map_err(HypervisorError::Invalid)
    }

    fn inject_interrupt(&mut self, vector: u8) -> Result<()> {
        // Written at the next entry, after any exception already owed.
        self.events.push_interrupt(vector);
        Ok(())
    }

    fn can_inject_interrupt(&self) -> bool {
        injectable(&self.state, &self.events, &self.pending)
    }

    fn request_interrupt_window(&mut self, wanted: bool) {
        self.window_wanted = wanted;
    }

    fn kicker(&self) -> Arc<dyn VcpuKick> {
        self.kick.clone()
    }

    fn cr8(&mut self) -> Result<u8> {
        // Every exit context carries CR8: no register call.
        Ok(self.cr8_pending.unwrap_or(self.state.cr8))
    }

    fn set_cr8(&mut self, cr8: u8) -> Result<()> {
        // Written with the other entry writes, in one register call.
        self.cr8_pending = Some(cr8 & 0xF);
        Ok(())
    }

    fn set_guest_debug(&mut self, cfg: &GuestDebug) -> Result<()> {
        self.partition
            .set_exception_exits(self.index, debug::exception_exit_bitmap(cfg))?;
        if !cfg.enabled && !self.debug.enabled {
            // Never debugged: the guest's own debug registers stay as they are.
            return Ok(());
        }
        let values = debug::debug_register_values(cfg);
        let pairs: Vec<_> = debug::DEBUG_REGISTER_NAMES
            .iter()
            .copied()
            .zip(values.map(reg64))
            .collect();
        self.set_registers(&pairs)?;
        self.debug = *cfg;
        if !cfg.enabled {
            self.debug.single_step = false;
        }
        Ok(())
    }

    fn events(&self) -> Result<VcpuEvents> {
        let [a, b, c] = self.get_registers(&debug::EVENT_REGISTER_NAMES)?;
        let ev = debug::events_from_registers(value64(&a), value64(&b), value64(&c));
        Ok(with_queued(ev, &self.events))
    }

    fn translate(&self, addr: u64) -> Result<Option<u64>> {
        let mut result = WHV_TRANSLATE_GVA_RESULT::default();
        let mut gpa = 0u64;
        check(
            // SAFETY: the VP exists; `result` and `gpa` are valid out-pointers.
            unsafe {
                (self.api.translate_gva)(
                    self.partition.handle,
                    self.index,
                    addr,
                    WHvTranslateGvaFlagValidateRead | WHvTranslateGvaFlagPrivilegeExempt,
                    &mut result,
                    &mut gpa,
                )
            },
            "WHvTranslateGva",
        )?;
        Ok(debug::translation(result.ResultCode, gpa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whp::events::QueuedException;
    use crate::whp::pending::Pending;

    #[test]
    fn queued_events_show_in_vcpu_events() {
        let mut q = EventQueue::default();
        q.push_exception(QueuedException {
            vector: 13,
            error_code: Some(0),
        });
        q.push_interrupt(0x20);
        let ev = with_queued(VcpuEvents::default(), &q);
        assert_eq!(
            ev.exception,
            Some(PendingException {
                vector: 13,
                error_code: Some(0),
                injected: false
            })
        );
        assert_eq!(ev.interrupt, Some(0x20));
    }

    #[test]
    fn an_owed_gp_blocks_interrupt_injection() {
        // What can_inject_interrupt combines: an unanswered RDMSR ends in
        // #GP, so the VMM must not think it can inject now.
        let p = Pending::MsrRead {
            next_rip: 0,
            answer: None,
        };
        let state = ExecState {
            rflags: 0x202,
            ..ExecState::RESET
        };
        let mut q = EventQueue::default();
        assert!(injectable(&state, &q, &Pending::None));
        assert!(!injectable(&state, &q, &p));
        // A queued exception (or interrupt) blocks it too.
        q.push_exception(QueuedException {
            vector: 13,
            error_code: Some(0),
        });
        assert!(!injectable(&state, &q, &Pending::None));
    }
}
