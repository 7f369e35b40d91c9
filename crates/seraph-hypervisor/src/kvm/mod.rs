//! The KVM backend (Linux), on kvm-ioctls.
//!
//! Interrupts use the userspace irqchip: no in-kernel LAPIC/PIC/PIT, so the
//! VMM's own device models serve, LAPIC MMIO and HLT exit to user space, and
//! external interrupts are injected with `KVM_INTERRUPT`.
//!
//! Hypercalls: KVM handles VMCALL/VMMCALL inside the host kernel and never
//! lets them reach user space (a guest's `vmcall` with RAX = 1 returns 0,
//! any other number returns -1000, KVM_ENOSYS). So this backend offers the
//! port-I/O doorbell of [`VmConfig::hypercall_port`]: an `out` to that port
//! is reported as [`VmExit::Hypercall`](crate::VmExit::Hypercall) with the registers already read.

mod convert;
mod debug;
mod kick;
mod probe;
mod vcpu;

use std::sync::Arc;

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, kvm_enable_cap, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, VmFd};

use crate::x86::CpuidEntry;
use crate::{HypervisorError, MemoryRegion, Result, VmConfig};

pub use kick::KvmKick;
pub use vcpu::KvmVcpu;

/// Where KVM may put the three pages it needs for real-mode TSS emulation on
/// Intel hosts: just below the 4 GiB boundary's BIOS area, clear of RAM, the
/// framebuffer window and the LAPIC.
const TSS_ADDRESS: usize = 0xfffb_d000;

fn call_err(call: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> HypervisorError {
    move |e| HypervisorError::Call {
        call,
        source: std::io::Error::from_raw_os_error(e.errno()),
    }
}

/// The KVM hypervisor: an open `/dev/kvm`.
#[derive(Debug)]
pub struct KvmHypervisor {
    kvm: Kvm,
}

impl KvmHypervisor {
    /// Opens `/dev/kvm`, with an error that says what to do if that fails.
    ///
    /// Process-wide effect: the first call installs a do-nothing handler for
    /// SIGRTMIN (with SA_RESTART), the signal vCPU kicks use to interrupt
    /// KVM_RUN. An embedder that uses SIGRTMIN itself must not create a
    /// KvmHypervisor. If the install fails, the error says why (sigaction's
    /// errno), on this and every later call.
    pub fn new() -> Result<Self> {
        let kvm = Kvm::new().map_err(|e| {
            let why = std::io::Error::from_raw_os_error(e.errno());
            HypervisorError::Unavailable(format!(
                "cannot open /dev/kvm: {why} (load the kvm module, enable virtualization in the \
                 firmware, or add your user to the `kvm` group)"
            ))
        })?;
        if kvm.get_api_version() != 12 {
            return Err(HypervisorError::Unavailable(format!(
                "/dev/kvm speaks API version {}, Seraph-V needs 12",
                kvm.get_api_version()
            )));
        }
        kick::install_signal_handler()?;
        Ok(Self { kvm })
    }

    /// (Test code only: the `test-util` feature.) Opens /dev/kvm for a test that boots guests, with this project's
    /// rule for KVM tests: with `SERAPH_V_SKIP_KVM=1` the test is skipped
    /// (`None`, and it says so on stderr); otherwise a host without a
    /// usable /dev/kvm fails the test with a message saying what is missing.
    ///
    /// # Panics
    /// Without a usable /dev/kvm unless the skip variable is set: a KVM
    /// test must never pass by skipping silently.
    #[cfg(any(test, feature = "test-util"))]
    pub fn for_test(test: &str) -> Option<Self> {
        if std::env::var("SERAPH_V_SKIP_KVM").as_deref() == Ok("1") {
            eprintln!("SKIPPED {test}: SERAPH_V_SKIP_KVM=1 is set, KVM test not run");
            return None;
        }
        match Self::new() {
            Ok(kvm) => Some(kvm),
            Err(e) => panic!(
                "{test} needs a usable /dev/kvm and this host has none: {e}. \
                 Run on a KVM host, or set SERAPH_V_SKIP_KVM=1 to skip KVM tests explicitly."
            ),
        }
    }
}

impl crate::Hypervisor for KvmHypervisor {
    type Vm = KvmVm;

    fn name(&self) -> &'static str {
        "kvm"
    }

    fn create_vm(&self, config: &VmConfig) -> Result<KvmVm> {
        let vm = self.kvm.create_vm().map_err(call_err("KVM_CREATE_VM"))?;
        vm.set_tss_address(TSS_ADDRESS)
            .map_err(call_err("KVM_SET_TSS_ADDR"))?;
        // Ask KVM to hand us the instruction bytes when its emulator gives
        // up; older kernels lack the capability and the VMM reads the bytes
        // from guest memory instead.
        if vm.check_extension_raw(libc::c_ulong::from(
            kvm_bindings::KVM_CAP_EXIT_ON_EMULATION_FAILURE,
        )) > 0
        {
            let cap = kvm_enable_cap {
                cap: kvm_bindings::KVM_CAP_EXIT_ON_EMULATION_FAILURE,
                args: [1, 0, 0, 0],
                ..Default::default()
            };
            // Best effort: without it the report still has RIP and the bytes
            // read through the guest's page tables.
            let _ = vm.enable_cap(&cap);
        }
        let user_msrs = enable_user_space_msrs(&vm, &config.vmm_msrs)?;
        Ok(KvmVm {
            vm: Arc::new(vm),
            hypercall_port: config.hypercall_port,
            user_msrs,
            regions: Vec::new(),
        })
    }

    fn hypercall_instruction_exits(&self) -> bool {
        // KVM answers VMCALL in the host kernel (VAPIC_POLL_IRQ, -KVM_ENOSYS).
        false
    }

    fn data_breakpoints(&self) -> bool {
        probe::data_breakpoints_fire(&self.kvm)
    }

    fn supported_cpuid(&self) -> Result<Vec<CpuidEntry>> {
        let cpuid = self
            .kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(call_err("KVM_GET_SUPPORTED_CPUID"))?;
        Ok(cpuid
            .as_slice()
            .iter()
            .map(convert::cpuid_from_kvm)
            .collect())
    }
}

/// Routes MSR accesses to user space: MSRs KVM does not know (so the VMM
/// can report them) and the MSRs in `vmm_msrs` (through a deny filter).
/// Returns false if this KVM lacks the capability (then KVM answers every
/// MSR itself, with #GP for unknown ones).
fn enable_user_space_msrs(vm: &VmFd, vmm_msrs: &[u32]) -> Result<bool> {
    let cap = libc::c_ulong::from(kvm_bindings::KVM_CAP_X86_USER_SPACE_MSR);
    if vm.check_extension_raw(cap) <= 0 {
        return Ok(false);
    }
    let enable = kvm_enable_cap {
        cap: kvm_bindings::KVM_CAP_X86_USER_SPACE_MSR,
        args: [
            u64::from(
                kvm_bindings::KVM_MSR_EXIT_REASON_UNKNOWN
                    | kvm_bindings::KVM_MSR_EXIT_REASON_FILTER,
            ),
            0,
            0,
            0,
        ],
        ..Default::default()
    };
    vm.enable_cap(&enable)
        .map_err(call_err("KVM_ENABLE_CAP(X86_USER_SPACE_MSR)"))?;
    if vmm_msrs.is_empty() {
        return Ok(true);
    }
    if vmm_msrs.len() > kvm_bindings::KVM_MSR_FILTER_MAX_RANGES as usize {
        return Err(HypervisorError::Invalid(format!(
            "{} VMM-handled MSRs; KVM filters at most {}",
            vmm_msrs.len(),
            kvm_bindings::KVM_MSR_FILTER_MAX_RANGES
        )));
    }
    // One single-MSR range each, bitmap bit 0 clear: deny, so accesses exit.
    let deny = [0u8];
    let ranges: Vec<MsrFilterRange<'_>> = vmm_msrs
        .iter()
        .map(|&base| MsrFilterRange {
            flags: MsrFilterRangeFlags::READ | MsrFilterRangeFlags::WRITE,
            base,
            msr_count: 1,
            bitmap: &deny,
        })
        .collect();
    vm.set_msr_filter(MsrFilterDefaultAction::ALLOW, &ranges)
        .map_err(call_err("KVM_X86_SET_MSR_FILTER"))?;
    Ok(true)
}

/// A KVM virtual machine.
#[derive(Debug)]
pub struct KvmVm {
    vm: Arc<VmFd>,
    hypercall_port: Option<u16>,
    user_msrs: bool,
    /// The regions mapped so far, by slot (to turn dirty logging on).
    regions: Vec<kvm_userspace_memory_region>,
}

/// The dirty bitmap of one KVM memory slot.
struct KvmDirtyLog {
    vm: Arc<VmFd>,
    slot: u32,
    size: usize,
}

impl crate::DirtyLog for KvmDirtyLog {
    fn take(&self) -> Result<Vec<u64>> {
        self.vm
            .get_dirty_log(self.slot, self.size)
            .map_err(call_err("KVM_GET_DIRTY_LOG"))
    }
}

impl KvmVm {
    /// True if MSR accesses can exit to the VMM on this host.
    pub fn user_space_msrs(&self) -> bool {
        self.user_msrs
    }
}

impl crate::Vm for KvmVm {
    type Vcpu = KvmVcpu;

    unsafe fn map_memory(&mut self, region: MemoryRegion) -> Result<()> {
        let mem = kvm_userspace_memory_region {
            slot: region.slot,
            flags: 0,
            guest_phys_addr: region.guest_addr,
            memory_size: region.size,
            userspace_addr: region.host_addr as u64,
        };
        // SAFETY: the caller guarantees (this function's contract) that the
        // host range stays mapped and valid for the VM's lifetime.
        unsafe { self.vm.set_user_memory_region(mem) }
            .map_err(call_err("KVM_SET_USER_MEMORY_REGION"))?;
        self.regions.retain(|r| r.slot != mem.slot);
        self.regions.push(mem);
        Ok(())
    }

    fn enable_dirty_log(&mut self, slot: u32) -> Result<Arc<dyn crate::DirtyLog>> {
        let Some(region) = self.regions.iter_mut().find(|r| r.slot == slot) else {
            return Err(HypervisorError::Invalid(format!("no memory slot {slot}")));
        };
        let mut logged = *region;
        logged.flags |= kvm_bindings::KVM_MEM_LOG_DIRTY_PAGES;
        // SAFETY: the same host range `map_memory` registered for this slot
        // (under its contract); only the flags change.
        unsafe { self.vm.set_user_memory_region(logged) }
            .map_err(call_err("KVM_SET_USER_MEMORY_REGION"))?;
        *region = logged;
        let size = usize::try_from(logged.memory_size)
            .map_err(|_| HypervisorError::Invalid("slot larger than host memory".into()))?;
        Ok(Arc::new(KvmDirtyLog {
            vm: self.vm.clone(),
            slot,
            size,
        }))
    }

    fn create_vcpu(&mut self, id: u32) -> Result<KvmVcpu> {
        let fd = self
            .vm
            .create_vcpu(u64::from(id))
            .map_err(call_err("KVM_CREATE_VCPU"))?;
        Ok(KvmVcpu::new(fd, self.hypercall_port))
    }
}
