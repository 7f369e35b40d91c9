//! The KVM vCPU: running it, decoding its exits and answering them.

use std::sync::Arc;

use kvm_bindings::CpuId;
use kvm_ioctls::{VcpuExit, VcpuFd};

use super::{KvmKick, call_err, convert, debug, kick};
use crate::exit::{Completion, Hypercall, InstructionBytes, ShutdownReason, VmExit};
use crate::x86::{CpuidEntry, Regs, SpecialRegs};
use crate::{GuestDebug, HypervisorError, Result, VcpuEvents, VcpuKick};

/// A KVM vCPU.
#[derive(Debug)]
pub struct KvmVcpu {
    fd: VcpuFd,
    hypercall_port: Option<u16>,
    kick: Arc<KvmKick>,
    /// Registers read for the hypercall being answered, written back with RAX set.
    hypercall_regs: Option<kvm_bindings::kvm_regs>,
    /// Consecutive KVM_RUN calls that failed with EAGAIN.
    eagain_streak: u32,
    /// The exit waiting for an answer, if the last exit needs one.
    awaiting: Option<Awaiting>,
}

impl KvmVcpu {
    /// Wraps a freshly created vCPU.
    pub(super) fn new(mut fd: VcpuFd, hypercall_port: Option<u16>) -> Self {
        let kick = KvmKick::new(fd.get_kvm_run());
        Self {
            fd,
            hypercall_port,
            kick,
            hypercall_regs: None,
            eagain_streak: 0,
            awaiting: None,
        }
    }
}

/// Which answer the last exit needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Hypercall,
    MsrRead,
    MsrWrite,
}

impl Awaiting {
    fn of(exit: &VmExit<'_>) -> Option<Self> {
        match exit {
            VmExit::Hypercall(_) => Some(Self::Hypercall),
            VmExit::MsrRead { .. } => Some(Self::MsrRead),
            VmExit::MsrWrite { .. } => Some(Self::MsrWrite),
            _ => None,
        }
    }

    fn answered_by(completion: &Completion) -> Option<Self> {
        match completion {
            Completion::Hypercall(_) => Some(Self::Hypercall),
            Completion::MsrRead(_) => Some(Self::MsrRead),
            Completion::MsrWrite(_) => Some(Self::MsrWrite),
            Completion::Cpuid(_) => None,
        }
    }
}

/// KVM_RUN failing with EAGAIN this many times in a row (about a second,
/// with the pause between tries) is a failure, not a reason to spin: it
/// happens when the host cannot give the vCPU what it needs (a thread
/// limit, say) and would otherwise loop forever at 100 % CPU.
const EAGAIN_LIMIT: u32 = 1000;

impl Drop for KvmVcpu {
    fn drop(&mut self) {
        // The kvm_run mapping goes away with `fd`: no kick may touch it after this.
        self.kick.detach();
    }
}

/// An exit with its data located but not yet borrowed, so that the vCPU can
/// still be used (to read registers) before the borrowed `VmExit` is built.
enum Located {
    Ready(VmExit<'static>),
    IoIn {
        port: u16,
        data: *mut u8,
        len: usize,
    },
    IoOut {
        port: u16,
        data: *const u8,
        len: usize,
    },
    MmioRead {
        addr: u64,
        data: *mut u8,
        len: usize,
    },
    MmioWrite {
        addr: u64,
        data: *const u8,
        len: usize,
    },
    Doorbell,
    EmulationFailure,
}

impl KvmVcpu {
    fn locate(exit: VcpuExit<'_>, hypercall_port: Option<u16>) -> Located {
        match exit {
            VcpuExit::IoOut(port, _) if Some(port) == hypercall_port => Located::Doorbell,
            VcpuExit::IoIn(port, data) => Located::IoIn {
                port,
                len: data.len(),
                data: data.as_mut_ptr(),
            },
            VcpuExit::IoOut(port, data) => Located::IoOut {
                port,
                len: data.len(),
                data: data.as_ptr(),
            },
            VcpuExit::MmioRead(addr, data) => Located::MmioRead {
                addr,
                len: data.len(),
                data: data.as_mut_ptr(),
            },
            VcpuExit::MmioWrite(addr, data) => Located::MmioWrite {
                addr,
                len: data.len(),
                data: data.as_ptr(),
            },
            VcpuExit::X86Rdmsr(msr) => Located::Ready(VmExit::MsrRead { index: msr.index }),
            VcpuExit::X86Wrmsr(msr) => Located::Ready(VmExit::MsrWrite {
                index: msr.index,
                value: msr.data,
            }),
            VcpuExit::Hlt => Located::Ready(VmExit::Halt),
            // The guest lowered CR8 below the TPR threshold (Intel, userspace
            // LAPIC): nothing to do but let the VMM look at CR8 again.
            VcpuExit::SetTpr => Located::Ready(VmExit::Interrupted),
            VcpuExit::IrqWindowOpen => Located::Ready(VmExit::InterruptWindow),
            VcpuExit::Intr => Located::Ready(VmExit::Interrupted),
            VcpuExit::Shutdown => Located::Ready(VmExit::Shutdown(ShutdownReason::TripleFault)),
            VcpuExit::SystemEvent(kind, _) => Located::Ready(match kind {
                kvm_bindings::KVM_SYSTEM_EVENT_RESET => VmExit::Shutdown(ShutdownReason::Reset),
                _ => VmExit::Shutdown(ShutdownReason::PowerOff),
            }),
            VcpuExit::Debug(arch) => Located::Ready(VmExit::Debug {
                pc: arch.pc,
                cause: crate::debug::x86_debug_cause(arch.exception, arch.dr6, arch.dr7),
            }),
            VcpuExit::FailEntry(reason, _) => Located::Ready(VmExit::FailedEntry { reason }),
            VcpuExit::InternalError => Located::EmulationFailure,
            VcpuExit::Unsupported(reason) => Located::Ready(VmExit::Unknown {
                reason: u64::from(reason),
            }),
            other => Located::Ready(VmExit::Unknown {
                reason: u64::from(convert::exit_reason_number(&other)),
            }),
        }
    }

    /// Bytes per access of the port I/O exit just taken (kvm-ioctls gives
    /// only the total, `size * count`, for string I/O).
    fn io_size(&mut self) -> u8 {
        let run = self.fd.get_kvm_run();
        // SAFETY: only called while handling a KVM_EXIT_IO exit, so the
        // kernel filled the `io` member of the union (plain integers).
        unsafe { run.__bindgen_anon_1.io.size }
    }

    /// Builds the exit for `KVM_EXIT_INTERNAL_ERROR` from the kvm_run page.
    fn internal_error(&mut self) -> VmExit<'static> {
        let run = self.fd.get_kvm_run();
        // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so the kernel
        // filled the `internal` member of the union (and, for emulation
        // failures with the capability on, the `emulation_failure` view of
        // the same bytes). Both are plain integers: any bit pattern is valid.
        let internal = unsafe { run.__bindgen_anon_1.internal };
        if internal.suberror == kvm_bindings::KVM_INTERNAL_ERROR_EMULATION {
            // SAFETY: as above; `emulation_failure` overlays `internal`.
            let failure = unsafe { run.__bindgen_anon_1.emulation_failure };
            let with_bytes = failure.flags
                & u64::from(kvm_bindings::KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
                != 0;
            let instruction = with_bytes.then(|| {
                // SAFETY: the flag says the kernel wrote insn_size/insn_bytes.
                let insn = unsafe { failure.__bindgen_anon_1.__bindgen_anon_1 };
                let len = usize::from(insn.insn_size.min(15));
                InstructionBytes::from_slice(&insn.insn_bytes[..len])
            });
            return VmExit::EmulationFailure { instruction };
        }
        let n = usize::try_from(internal.ndata)
            .unwrap_or(0)
            .min(internal.data.len());
        let detail = internal.data[..n]
            .iter()
            .map(|d| format!("{d:#x}"))
            .collect::<Vec<_>>()
            .join(" ");
        VmExit::InternalError {
            code: internal.suberror,
            detail: format!(
                "KVM internal error suberror {}: [{detail}]",
                internal.suberror
            ),
        }
    }
}

impl crate::Vcpu for KvmVcpu {
    fn regs(&self) -> Result<Regs> {
        let r = self.fd.get_regs().map_err(call_err("KVM_GET_REGS"))?;
        Ok(convert::regs_from_kvm(&r))
    }

    fn set_regs(&mut self, regs: &Regs) -> Result<()> {
        self.fd
            .set_regs(&convert::regs_to_kvm(regs))
            .map_err(call_err("KVM_SET_REGS"))
    }

    fn special_regs(&self) -> Result<SpecialRegs> {
        let s = self.fd.get_sregs().map_err(call_err("KVM_GET_SREGS"))?;
        Ok(convert::sregs_from_kvm(&s))
    }

    fn set_special_regs(&mut self, sregs: &SpecialRegs) -> Result<()> {
        // Start from KVM's copy so that fields we do not model (the pending
        // interrupt bitmap) keep their values.
        let mut s = self.fd.get_sregs().map_err(call_err("KVM_GET_SREGS"))?;
        convert::sregs_into_kvm(sregs, &mut s);
        self.fd.set_sregs(&s).map_err(call_err("KVM_SET_SREGS"))
    }

    fn set_cpuid(&mut self, entries: &[CpuidEntry]) -> Result<()> {
        let kvm_entries: Vec<_> = entries.iter().map(convert::cpuid_to_kvm).collect();
        let cpuid = CpuId::from_entries(&kvm_entries).map_err(|_| {
            HypervisorError::Invalid(format!(
                "{} CPUID entries is more than KVM takes",
                entries.len()
            ))
        })?;
        self.fd
            .set_cpuid2(&cpuid)
            .map_err(call_err("KVM_SET_CPUID2"))
    }

    fn run(&mut self) -> Result<VmExit<'_>> {
        self.kick.note_running_thread();
        self.awaiting = None;
        let located = match self.fd.run() {
            Ok(exit) => Self::locate(exit, self.hypercall_port),
            Err(e) if e.errno() == libc::EINTR => {
                self.eagain_streak = 0;
                self.fd.set_kvm_immediate_exit(0);
                return Ok(VmExit::Interrupted);
            }
            Err(e) if e.errno() == libc::EAGAIN => {
                self.fd.set_kvm_immediate_exit(0);
                self.eagain_streak += 1;
                if self.eagain_streak >= EAGAIN_LIMIT {
                    self.eagain_streak = 0;
                    return Err(call_err("KVM_RUN")(e));
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
                return Ok(VmExit::Interrupted);
            }
            Err(e) => return Err(call_err("KVM_RUN")(e)),
        };
        self.eagain_streak = 0;
        Ok(match located {
            Located::Ready(exit) => {
                self.awaiting = Awaiting::of(&exit);
                exit
            }
            Located::Doorbell => {
                let r = self.fd.get_regs().map_err(call_err("KVM_GET_REGS"))?;
                self.hypercall_regs = Some(r);
                self.awaiting = Some(Awaiting::Hypercall);
                VmExit::Hypercall(Hypercall {
                    nr: r.rax,
                    args: [r.rdi, r.rsi, r.rdx, r.rcx],
                })
            }
            Located::EmulationFailure => self.internal_error(),
            // SAFETY (all four data arms): the pointers and lengths were taken
            // from slices kvm-ioctls built over this vCPU's kvm_run mapping
            // for this very exit. The mapping lives as long as `self.fd`,
            // which the returned borrow of `self` keeps alive and exclusive.
            Located::IoIn { port, data, len } => VmExit::IoIn {
                port,
                size: self.io_size(),
                // SAFETY: this exit's data in the kvm_run mapping (see above).
                data: unsafe { std::slice::from_raw_parts_mut(data, len) },
            },
            Located::IoOut { port, data, len } => VmExit::IoOut {
                port,
                size: self.io_size(),
                // SAFETY: this exit's data in the kvm_run mapping (see above).
                data: unsafe { std::slice::from_raw_parts(data, len) },
            },
            Located::MmioRead { addr, data, len } => VmExit::MmioRead {
                addr,
                // SAFETY: this exit's data in the kvm_run mapping (see above).
                data: unsafe { std::slice::from_raw_parts_mut(data, len) },
            },
            Located::MmioWrite { addr, data, len } => VmExit::MmioWrite {
                addr,
                // SAFETY: this exit's data in the kvm_run mapping (see above).
                data: unsafe { std::slice::from_raw_parts(data, len) },
            },
        })
    }

    fn complete(&mut self, completion: Completion) -> Result<()> {
        // An answer must fit the exit just taken: an MSR answer written into
        // kvm_run after a port exit would scribble over the wrong union member.
        let wanted = self.awaiting.take();
        if let Some(given) = Awaiting::answered_by(&completion) {
            if wanted != Some(given) {
                return Err(HypervisorError::Invalid(format!(
                    "{completion:?} does not answer the pending exit ({wanted:?})"
                )));
            }
        }
        match completion {
            Completion::Hypercall(result) => {
                let mut r = match self.hypercall_regs.take() {
                    Some(r) => r,
                    None => self.fd.get_regs().map_err(call_err("KVM_GET_REGS"))?,
                };
                r.rax = result;
                self.fd.set_regs(&r).map_err(call_err("KVM_SET_REGS"))
            }
            Completion::MsrRead(value) => {
                let run = self.fd.get_kvm_run();
                // SAFETY: only called to answer the KVM_EXIT_X86_RDMSR exit
                // just returned, so the union holds the `msr` member; the
                // fields are plain integers.
                let msr = unsafe { &mut run.__bindgen_anon_1.msr };
                msr.data = value.unwrap_or(0);
                msr.error = u8::from(value.is_none());
                Ok(())
            }
            Completion::MsrWrite(accepted) => {
                let run = self.fd.get_kvm_run();
                // SAFETY: as above, for KVM_EXIT_X86_WRMSR.
                let msr = unsafe { &mut run.__bindgen_anon_1.msr };
                msr.error = u8::from(!accepted);
                Ok(())
            }
            Completion::Cpuid(_) => Err(HypervisorError::Unsupported(
                "KVM answers CPUID itself from KVM_SET_CPUID2".into(),
            )),
        }
    }

    fn inject_interrupt(&mut self, vector: u8) -> Result<()> {
        kick::inject_interrupt(&self.fd, vector)
    }

    fn can_inject_interrupt(&self) -> bool {
        self.kick.ready_for_injection()
    }

    fn request_interrupt_window(&mut self, wanted: bool) {
        self.fd.get_kvm_run().request_interrupt_window = u8::from(wanted);
    }

    fn kicker(&self) -> Arc<dyn VcpuKick> {
        self.kick.clone()
    }

    fn cr8(&mut self) -> Result<u8> {
        Ok((self.fd.get_kvm_run().cr8 & 0xf) as u8)
    }

    fn set_cr8(&mut self, cr8: u8) -> Result<()> {
        // KVM loads kvm_run->cr8 into the guest's CR8 at the next entry
        // (without an in-kernel LAPIC), as QEMU's pre-run hook uses it.
        self.fd.get_kvm_run().cr8 = u64::from(cr8 & 0xf);
        Ok(())
    }

    fn set_guest_debug(&mut self, debug: &GuestDebug) -> Result<()> {
        debug::set_guest_debug(&self.fd, debug)
    }

    fn events(&self) -> Result<VcpuEvents> {
        debug::events(&self.fd)
    }

    fn translate(&self, addr: u64) -> Result<Option<u64>> {
        debug::translate(&self.fd, addr)
    }
}
