//! Windows Hypervisor Platform backend.
//!
//! [`WhpHypervisor`] implements the crate's traits on `WinHvPlatform.dll`
//! and `WinHvEmulation.dll` through `windows-sys`. The partition runs with
//! local APIC emulation off (the VMM's own LAPIC and PIC models serve, as
//! on KVM), CPUID and MSR exits on, and native hypercall exits where the
//! host offers them.
//!
//! - Port I/O: plain `in`/`out` are finished here from the exit context
//!   (RAX merge and RIP advance at the next `run`); string and REP forms and
//!   all MMIO go through the WHP instruction emulator, bridged to the exit
//!   model by [`replay`].
//! - Hypercalls: an `out` to [`VmConfig::hypercall_port`] and a native
//!   VMCALL/VMMCALL are both reported as [`VmExit::Hypercall`];
//!   [`Completion::Hypercall`] writes RAX, and RIP moves past the instruction.
//! - CPUID: the leaves of [`translate::cpuid_exit_leaves`] exit and are
//!   answered from the vCPU's `set_cpuid` table (zeros for a leaf the table
//!   lacks); before any `set_cpuid` they are reported as [`VmExit::Cpuid`].
//! - Interrupts: `WHvRegisterPendingInterruption`, and the interrupt window
//!   through `WHvX64RegisterDeliverabilityNotifications`.
//!
//! All decisions are pure functions in [`translate`], [`pending`] and
//! [`replay`]; this file only makes the calls. None of it has been run on
//! Windows on this project's machines: see `docs/windows.md`.

pub mod debug;
pub mod pending;
pub mod replay;
pub mod translate;

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use windows_sys::Win32::System::Hypervisor::{
    WHV_CAPABILITY, WHV_EMULATOR_CALLBACKS, WHV_EMULATOR_IO_ACCESS_INFO,
    WHV_EMULATOR_MEMORY_ACCESS_INFO, WHV_EMULATOR_STATUS, WHV_PARTITION_HANDLE,
    WHV_PARTITION_PROPERTY_CODE, WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHV_RUN_VP_EXIT_CONTEXT,
    WHV_TRANSLATE_GVA_FLAGS, WHV_TRANSLATE_GVA_RESULT, WHV_TRANSLATE_GVA_RESULT_CODE,
    WHvCancelRunVirtualProcessor, WHvCapabilityCodeExtendedVmExits,
    WHvCapabilityCodeHypervisorPresent, WHvCreatePartition, WHvCreateVirtualProcessor,
    WHvDeletePartition, WHvDeleteVirtualProcessor, WHvEmulatorCreateEmulator,
    WHvEmulatorDestroyEmulator, WHvEmulatorTryIoEmulation, WHvEmulatorTryMmioEmulation,
    WHvGetCapability, WHvGetVirtualProcessorCpuidOutput, WHvGetVirtualProcessorRegisters,
    WHvMapGpaRange, WHvMapGpaRangeFlagExecute, WHvMapGpaRangeFlagRead, WHvMapGpaRangeFlagWrite,
    WHvPartitionPropertyCodeCpuidExitList, WHvPartitionPropertyCodeExceptionExitBitmap,
    WHvPartitionPropertyCodeExtendedVmExits, WHvPartitionPropertyCodeLocalApicEmulationMode,
    WHvPartitionPropertyCodeProcessorCount, WHvRegisterPendingInterruption, WHvRunVirtualProcessor,
    WHvSetPartitionProperty, WHvSetVirtualProcessorRegisters, WHvSetupPartition, WHvTranslateGva,
    WHvTranslateGvaFlagPrivilegeExempt, WHvTranslateGvaFlagValidateRead, WHvUnmapGpaRange,
    WHvX64LocalApicEmulationModeNone, WHvX64RegisterDeliverabilityNotifications, WHvX64RegisterDr6,
    WHvX64RegisterRdx, WHvX64RegisterRflags,
};
use windows_sys::core::HRESULT;

use self::pending::Pending;
use self::replay::{AccessKind, Replay};
use self::translate::{ExecState, ExitPlan, RawExit};
use crate::debug::{DebugCause, GuestDebug, VcpuEvents};
use crate::exit::{Completion, InstructionBytes, VmExit};
use crate::x86::{CpuidEntry, Regs, SpecialRegs};
use crate::{Hypervisor, HypervisorError, MemoryRegion, Result, Vcpu, VcpuKick, Vm, VmConfig};

/// Size of a vCPU's I/O buffer: the most bytes one exit carries.
pub const IO_BUFFER_LEN: usize = 4096;

/// `E_FAIL`, returned by emulator callbacks to stop a pass.
const E_FAIL: HRESULT = 0x8000_4005_u32 as HRESULT;

fn check(hr: HRESULT, call: &'static str) -> Result<()> {
    if hr >= 0 {
        Ok(())
    } else {
        Err(HypervisorError::Call {
            call,
            source: std::io::Error::from_raw_os_error(hr),
        })
    }
}

/// `WHV_REGISTER_VALUE` is 16-byte aligned in C; `windows-sys` declares
/// it with 8-byte alignment, so arrays handed to WHP are wrapped in this.
#[repr(C, align(16))]
struct Aligned<T>(T);

/// The exit context buffer, aligned as WHP declares it.
type ExitBuffer = Aligned<WHV_RUN_VP_EXIT_CONTEXT>;

/// An owned partition handle; deleted when the last user (VM, vCPU or kicker) drops it.
#[derive(Debug)]
struct Partition {
    handle: WHV_PARTITION_HANDLE,
    /// The `ExceptionExit` extended exit was granted (guest debugging works).
    exception_exits: bool,
    /// Each vCPU's exception-exit request; the partition bitmap is their union.
    debug_bitmaps: Mutex<Vec<(u32, u64)>>,
}

impl Partition {
    fn create() -> Result<Self> {
        let mut handle: WHV_PARTITION_HANDLE = 0;
        // SAFETY: `handle` is a valid out-pointer for the duration of the call.
        let hr = unsafe { WHvCreatePartition(&mut handle) };
        check(hr, "WHvCreatePartition")?;
        Ok(Partition {
            handle,
            exception_exits: false,
            debug_bitmaps: Mutex::new(Vec::new()),
        })
    }

    fn set_property<T>(
        &self,
        code: WHV_PARTITION_PROPERTY_CODE,
        value: &T,
        call: &'static str,
    ) -> Result<()> {
        let size = u32::try_from(std::mem::size_of_val(value))
            .map_err(|_| HypervisorError::Invalid(format!("{call}: property too large")))?;
        check(
            // SAFETY: `value` points to `size` readable bytes that outlive the call;
            // WHP copies the property.
            unsafe { WHvSetPartitionProperty(self.handle, code, (value as *const T).cast(), size) },
            call,
        )
    }

    fn set_property_slice<T>(
        &self,
        code: WHV_PARTITION_PROPERTY_CODE,
        values: &[T],
        call: &'static str,
    ) -> Result<()> {
        let size = u32::try_from(std::mem::size_of_val(values))
            .map_err(|_| HypervisorError::Invalid(format!("{call}: property too large")))?;
        check(
            // SAFETY: `values` is `size` readable bytes for the duration of the call.
            unsafe { WHvSetPartitionProperty(self.handle, code, values.as_ptr().cast(), size) },
            call,
        )
    }

    /// Creates and sets up a partition with this backend's configuration.
    fn configured(processor_count: u32) -> Result<Self> {
        let mut p = Partition::create()?;
        p.set_property(
            WHvPartitionPropertyCodeProcessorCount,
            &processor_count,
            "WHvSetPartitionProperty(ProcessorCount)",
        )?;
        let exits = translate::extended_vm_exits(capability_u64(WHvCapabilityCodeExtendedVmExits)?);
        p.set_property(
            WHvPartitionPropertyCodeExtendedVmExits,
            &exits,
            "WHvSetPartitionProperty(ExtendedVmExits)",
        )?;
        p.exception_exits = exits & (1 << 2) != 0;
        p.set_property_slice(
            WHvPartitionPropertyCodeCpuidExitList,
            &translate::cpuid_exit_leaves(),
            "WHvSetPartitionProperty(CpuidExitList)",
        )?;
        p.set_property(
            WHvPartitionPropertyCodeLocalApicEmulationMode,
            &WHvX64LocalApicEmulationModeNone,
            "WHvSetPartitionProperty(LocalApicEmulationMode)",
        )?;
        // SAFETY: the handle is a live partition that has not been set up yet.
        check(unsafe { WHvSetupPartition(p.handle) }, "WHvSetupPartition")?;
        Ok(p)
    }
}

impl Partition {
    /// Records vCPU `index`'s exception-exit request and sets the
    /// partition's bitmap to the union of all requests.
    fn set_exception_exits(&self, index: u32, bitmap: u64) -> Result<()> {
        if bitmap != 0 && !self.exception_exits {
            return Err(HypervisorError::Unsupported(
                "guest debugging: this host does not offer WHP exception exits \
                 (WHvCapabilityCodeExtendedVmExits.ExceptionExit)"
                    .into(),
            ));
        }
        let mut all = self
            .debug_bitmaps
            .lock()
            .map_err(|_| HypervisorError::Invalid("debug state poisoned".into()))?;
        all.retain(|(vp, _)| *vp != index);
        if bitmap != 0 {
            all.push((index, bitmap));
        }
        if !self.exception_exits {
            return Ok(());
        }
        let union = debug::partition_exception_bitmap(&all);
        self.set_property(
            WHvPartitionPropertyCodeExceptionExitBitmap,
            &union,
            "WHvSetPartitionProperty(ExceptionExitBitmap)",
        )
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        // SAFETY: the handle came from WHvCreatePartition and this is its
        // last owner; nothing uses it after this.
        unsafe {
            WHvDeletePartition(self.handle);
        }
    }
}

fn capability_u64(code: i32) -> Result<u64> {
    let mut cap = WHV_CAPABILITY {
        ExceptionExitBitmap: 0,
    };
    let mut written = 0u32;
    let size = std::mem::size_of::<WHV_CAPABILITY>() as u32;
    check(
        // SAFETY: `cap` is a writable buffer of `size` bytes and `written` a valid out-pointer.
        unsafe {
            WHvGetCapability(
                code,
                (&mut cap as *mut WHV_CAPABILITY).cast(),
                size,
                &mut written,
            )
        },
        "WHvGetCapability",
    )?;
    // SAFETY: the union was zero-initialised through its u64 member and WHP
    // wrote at most `size` bytes of plain data into it.
    Ok(unsafe { cap.ExceptionExitBitmap })
}

/// The Windows Hypervisor Platform.
#[derive(Debug, Clone)]
pub struct WhpHypervisor {
    max_vcpus: u32,
}

impl WhpHypervisor {
    /// Opens WHP for VMs of one vCPU. Fails with
    /// [`HypervisorError::Unavailable`] if the hypervisor is not running.
    pub fn new() -> Result<Self> {
        Self::with_max_vcpus(1)
    }

    /// Opens WHP for VMs of up to `max_vcpus` vCPUs (the partition's
    /// processor count is fixed before setup).
    pub fn with_max_vcpus(max_vcpus: u32) -> Result<Self> {
        let present = capability_u64(WHvCapabilityCodeHypervisorPresent)? & 0xFFFF_FFFF;
        if present == 0 {
            return Err(HypervisorError::Unavailable(
                "the Windows Hypervisor Platform is not available: enable the \
                 \"Windows Hypervisor Platform\" Windows feature (see docs/windows.md)"
                    .into(),
            ));
        }
        Ok(WhpHypervisor {
            max_vcpus: max_vcpus.max(1),
        })
    }
}

impl Hypervisor for WhpHypervisor {
    type Vm = WhpVm;

    fn name(&self) -> &'static str {
        "whp"
    }

    fn create_vm(&self, config: &VmConfig) -> Result<WhpVm> {
        let partition = Arc::new(Partition::configured(self.max_vcpus)?);
        Ok(WhpVm {
            partition,
            config: config.clone(),
            regions: Vec::new(),
            max_vcpus: self.max_vcpus,
        })
    }

    fn hypercall_instruction_exits(&self) -> bool {
        true
    }

    fn supported_cpuid(&self) -> Result<Vec<CpuidEntry>> {
        // A scratch partition with one VP: WHP answers CPUID per VP.
        let partition = Arc::new(Partition::configured(1)?);
        check(
            // SAFETY: a set-up partition; VP 0 is deleted by the guard below.
            unsafe { WHvCreateVirtualProcessor(partition.handle, 0, 0) },
            "WHvCreateVirtualProcessor",
        )?;
        let guard = VpGuard(partition.handle);
        let query = |leaf: u32, sub: u32| -> Result<[u32; 4]> {
            let mut out = windows_sys::Win32::System::Hypervisor::WHV_CPUID_OUTPUT::default();
            check(
                // SAFETY: VP 0 exists; `out` is a valid out-pointer.
                unsafe { WHvGetVirtualProcessorCpuidOutput(guard.0, 0, leaf, sub, &mut out) },
                "WHvGetVirtualProcessorCpuidOutput",
            )?;
            Ok([out.Eax, out.Ebx, out.Ecx, out.Edx])
        };
        let max_basic = query(0, 0)?[0];
        let max_ext = query(0x8000_0000, 0)?[0];
        translate::cpuid_query_plan(max_basic, max_ext)
            .into_iter()
            .map(|(leaf, sub, significant)| {
                let r = query(leaf, sub)?;
                Ok(CpuidEntry {
                    function: leaf,
                    index: sub,
                    significant_index: significant,
                    eax: r[0],
                    ebx: r[1],
                    ecx: r[2],
                    edx: r[3],
                })
            })
            .collect()
    }
}

/// Deletes VP 0 of a scratch partition.
struct VpGuard(WHV_PARTITION_HANDLE);

impl Drop for VpGuard {
    fn drop(&mut self) {
        // SAFETY: VP 0 was created on this live partition.
        unsafe {
            WHvDeleteVirtualProcessor(self.0, 0);
        }
    }
}

/// A WHP partition.
#[derive(Debug)]
pub struct WhpVm {
    partition: Arc<Partition>,
    config: VmConfig,
    regions: Vec<MemoryRegion>,
    max_vcpus: u32,
}

impl WhpVm {
    fn unmap(&self, region: &MemoryRegion) -> Result<()> {
        check(
            // SAFETY: the range was mapped by map_memory on this partition.
            unsafe { WHvUnmapGpaRange(self.partition.handle, region.guest_addr, region.size) },
            "WHvUnmapGpaRange",
        )
    }
}

impl Vm for WhpVm {
    type Vcpu = WhpVcpu;

    unsafe fn map_memory(&mut self, region: MemoryRegion) -> Result<()> {
        if let Some(pos) = self.regions.iter().position(|r| r.slot == region.slot) {
            let old = self.regions.remove(pos);
            self.unmap(&old)?;
        }
        if region.size == 0 {
            return Ok(()); // size 0 deletes the slot, as on KVM
        }
        translate::check_region(
            region.guest_addr,
            region.size,
            region.host_addr as usize,
            &self.regions,
        )
        .map_err(HypervisorError::Invalid)?;
        let flags = WHvMapGpaRangeFlagRead | WHvMapGpaRangeFlagWrite | WHvMapGpaRangeFlagExecute;
        check(
            // SAFETY: the caller guarantees host_addr..+size is mapped, writable
            // and stays valid for the VM's life (the trait's contract).
            unsafe {
                WHvMapGpaRange(
                    self.partition.handle,
                    region.host_addr.cast_const().cast(),
                    region.guest_addr,
                    region.size,
                    flags,
                )
            },
            "WHvMapGpaRange",
        )?;
        self.regions.push(region);
        Ok(())
    }

    fn create_vcpu(&mut self, id: u32) -> Result<WhpVcpu> {
        if id >= self.max_vcpus {
            return Err(HypervisorError::Invalid(format!(
                "vCPU {id}: this partition has {} vCPU(s) (WhpHypervisor::with_max_vcpus)",
                self.max_vcpus
            )));
        }
        WhpVcpu::create(Arc::clone(&self.partition), id, self.config.hypercall_port)
    }
}

/// Stops a WHP vCPU's run from another thread.
#[derive(Debug)]
pub struct WhpKick {
    partition: Arc<Partition>,
    index: u32,
    kicked: AtomicBool,
}

impl VcpuKick for WhpKick {
    fn kick(&self) {
        self.kicked.store(true, Ordering::SeqCst);
        // SAFETY: the partition handle is kept alive by the Arc; cancelling
        // a VP that is not running is harmless (the flag covers that case).
        unsafe {
            WHvCancelRunVirtualProcessor(self.partition.handle, self.index, 0);
        }
    }
}

/// An instruction being emulated across several `run` calls.
struct Emulation {
    replay: Replay,
    exit: Box<ExitBuffer>,
    is_io: bool,
    instruction: InstructionBytes,
}

/// The outcome of driving an emulated instruction.
enum EmuStep {
    /// Nothing left: run the guest.
    Done,
    /// The emulator could not finish the instruction.
    Failed(InstructionBytes),
    /// Hand this access to the VMM (data in the vCPU buffer's first `len`
    /// bytes: `len / size` accesses of `size` bytes).
    Deliver {
        kind: AccessKind,
        addr: u64,
        size: u8,
        len: usize,
    },
}

/// What the emulator callbacks see (through their context pointer).
struct EmulatorContext<'a> {
    partition: WHV_PARTITION_HANDLE,
    index: u32,
    replay: &'a mut Replay,
}

/// A WHP virtual processor.
pub struct WhpVcpu {
    partition: Arc<Partition>,
    index: u32,
    emulator: *mut c_void,
    hypercall_port: Option<u16>,
    kick: Arc<WhpKick>,
    exit: Box<ExitBuffer>,
    state: ExecState,
    pending: Pending,
    emulation: Option<Emulation>,
    cpuid: Option<Vec<CpuidEntry>>,
    window_wanted: bool,
    window_armed: bool,
    buf: Vec<u8>,
    /// The guest-debug configuration.
    debug: GuestDebug,
    /// RFLAGS.TF was set by this backend (single-step), not by the guest.
    tf_owned: bool,
    /// Enter with RFLAGS.RF to step over the execute breakpoint just reported.
    resume_flag: bool,
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
            .finish_non_exhaustive()
    }
}

impl WhpVcpu {
    fn create(partition: Arc<Partition>, index: u32, hypercall_port: Option<u16>) -> Result<Self> {
        check(
            // SAFETY: a set-up partition; the VP is deleted in Drop.
            unsafe { WHvCreateVirtualProcessor(partition.handle, index, 0) },
            "WHvCreateVirtualProcessor",
        )?;
        let callbacks = WHV_EMULATOR_CALLBACKS {
            Size: std::mem::size_of::<WHV_EMULATOR_CALLBACKS>() as u32,
            Reserved: 0,
            WHvEmulatorIoPortCallback: Some(emu_io_port),
            WHvEmulatorMemoryCallback: Some(emu_memory),
            WHvEmulatorGetVirtualProcessorRegisters: Some(emu_get_registers),
            WHvEmulatorSetVirtualProcessorRegisters: Some(emu_set_registers),
            WHvEmulatorTranslateGvaPage: Some(emu_translate_gva),
        };
        let mut emulator: *mut c_void = std::ptr::null_mut();
        // SAFETY: `callbacks` is valid for the call (WHP copies it) and
        // `emulator` is a valid out-pointer.
        let hr = unsafe { WHvEmulatorCreateEmulator(&callbacks, &mut emulator) };
        if let Err(e) = check(hr, "WHvEmulatorCreateEmulator") {
            // SAFETY: the VP was created above and is not used again.
            unsafe {
                WHvDeleteVirtualProcessor(partition.handle, index);
            }
            return Err(e);
        }
        let kick = Arc::new(WhpKick {
            partition: Arc::clone(&partition),
            index,
            kicked: AtomicBool::new(false),
        });
        Ok(WhpVcpu {
            partition,
            index,
            emulator,
            hypercall_port,
            kick,
            exit: Box::new(Aligned(WHV_RUN_VP_EXIT_CONTEXT::default())),
            state: ExecState::RESET,
            pending: Pending::None,
            emulation: None,
            cpuid: None,
            window_wanted: false,
            window_armed: false,
            buf: vec![0; IO_BUFFER_LEN],
            debug: GuestDebug::default(),
            tf_owned: false,
            resume_flag: false,
        })
    }

    fn get_registers<const N: usize>(
        &self,
        names: &[WHV_REGISTER_NAME; N],
    ) -> Result<[WHV_REGISTER_VALUE; N]> {
        let mut values = Aligned([WHV_REGISTER_VALUE::default(); N]);
        check(
            // SAFETY: `names` and `values` both hold N elements; `values` is
            // writable and 16-byte aligned.
            unsafe {
                WHvGetVirtualProcessorRegisters(
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

    fn set_registers(&self, pairs: &[(WHV_REGISTER_NAME, WHV_REGISTER_VALUE)]) -> Result<()> {
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
        for (i, (n, v)) in pairs.iter().enumerate() {
            names[i] = *n;
            values.0[i] = *v;
        }
        check(
            // SAFETY: the first `pairs.len()` entries of both arrays are
            // initialised; `values` is 16-byte aligned.
            unsafe {
                WHvSetVirtualProcessorRegisters(
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

    /// One emulator pass over the instruction of `em`; returns the status bits.
    fn emulate_pass(&self, em: &mut Emulation) -> Result<u32> {
        em.replay.begin_pass();
        let mut ctx = EmulatorContext {
            partition: self.partition.handle,
            index: self.index,
            replay: &mut em.replay,
        };
        let ctx_ptr: *const c_void = (&mut ctx as *mut EmulatorContext<'_>).cast_const().cast();
        let mut status = WHV_EMULATOR_STATUS { AsUINT32: 0 };
        let exit = &em.exit.0;
        let hr = if em.is_io {
            // SAFETY: the emulator handle is live; `ctx_ptr` points to a
            // context that outlives this synchronous call; the exit context
            // is the one WHP produced for this instruction (IoPortAccess live).
            unsafe {
                WHvEmulatorTryIoEmulation(
                    self.emulator,
                    ctx_ptr,
                    &exit.VpContext,
                    &exit.Anonymous.IoPortAccess,
                    &mut status,
                )
            }
        } else {
            // SAFETY: as above, with MemoryAccess the live variant.
            unsafe {
                WHvEmulatorTryMmioEmulation(
                    self.emulator,
                    ctx_ptr,
                    &exit.VpContext,
                    &exit.Anonymous.MemoryAccess,
                    &mut status,
                )
            }
        };
        check(
            hr,
            if em.is_io {
                "WHvEmulatorTryIoEmulation"
            } else {
                "WHvEmulatorTryMmioEmulation"
            },
        )?;
        // SAFETY: a union of a u32 bitfield struct and a u32.
        Ok(unsafe { status.AsUINT32 })
    }

    /// Drives an instruction under emulation: hands out its next access
    /// (copying write data into the buffer), or runs passes until there is
    /// one, the instruction is done, or it fails.
    fn step_emulation(&mut self) -> Result<EmuStep> {
        let Some(mut em) = self.emulation.take() else {
            return Ok(EmuStep::Done);
        };
        loop {
            if let Some(d) = em.replay.next_delivery() {
                let len = d.len.min(self.buf.len());
                em.replay.deliver(&d, &mut self.buf[..len]);
                self.emulation = Some(em);
                return Ok(EmuStep::Deliver {
                    kind: d.kind,
                    addr: d.addr,
                    size: d.size,
                    len,
                });
            }
            if em.replay.finished() {
                return Ok(EmuStep::Done);
            }
            let status = self.emulate_pass(&mut em)?;
            let ok = translate::emulation_succeeded(status);
            em.replay.end_pass(ok);
            if em.replay.failure().is_some() || (!ok && !em.replay.has_undelivered()) {
                return Ok(EmuStep::Failed(em.instruction));
            }
        }
    }

    /// Applies what the last exit owed the guest, and the interrupt-window request.
    fn finish_last_exit(&mut self) -> Result<()> {
        if let Some(em) = self.emulation.as_mut() {
            em.replay.supply(&self.buf);
        }
        let mut writes = self.pending.register_writes(&self.buf);
        self.pending = Pending::None;
        if self.window_wanted != self.window_armed {
            writes.push((
                WHvX64RegisterDeliverabilityNotifications,
                translate::deliverability_notifications(self.window_wanted),
            ));
            self.window_armed = self.window_wanted;
        }
        if self.debug.single_step || self.tf_owned || self.resume_flag {
            let [rflags] = self.get_registers(&[WHvX64RegisterRflags])?;
            // SAFETY: plain-data union; the first 8 bytes are a valid u64.
            let rflags = unsafe { rflags.Reg64 };
            let entry = debug::entry_rflags(
                rflags,
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

    /// Turns a #DB/#BP exception exit into `VmExit::Debug`, or gives the
    /// exception back to the guest (`None`: re-enter).
    fn debug_exit(&mut self, e: &translate::ExceptionInfo) -> Result<Option<(u64, DebugCause)>> {
        let dr6 = if e.vector == debug::DB_VECTOR {
            let [v] = self.get_registers(&[WHvX64RegisterDr6])?;
            // SAFETY: plain-data union; the first 8 bytes are a valid u64.
            unsafe { v.Reg64 }
        } else {
            0
        };
        match debug::decode_debug_exception(
            e,
            self.state.rip,
            dr6,
            self.state.instruction_length,
            &self.debug,
        ) {
            debug::DebugOutcome::Report { pc, cause } => {
                if e.vector == debug::DB_VECTOR {
                    // DR6 conditions are sticky: clear them for the next exit.
                    self.set_registers(&[(WHvX64RegisterDr6, reg64(debug::DR6_CLEAR))])?;
                }
                self.resume_flag = matches!(cause, DebugCause::HwBreakpoint(_));
                Ok(Some((pc, cause)))
            }
            debug::DebugOutcome::Reinject(bits) => {
                self.set_registers(&[(WHvRegisterPendingInterruption, reg64(bits))])?;
                Ok(None)
            }
        }
    }
}

impl Drop for WhpVcpu {
    fn drop(&mut self) {
        // SAFETY: the emulator and the VP were created by WhpVcpu::create and
        // are not used after this; the partition is still alive (Arc).
        unsafe {
            WHvEmulatorDestroyEmulator(self.emulator);
            WHvDeleteVirtualProcessor(self.partition.handle, self.index);
        }
    }
}

impl Vcpu for WhpVcpu {
    fn regs(&self) -> Result<Regs> {
        let v = self.get_registers(&translate::REGS_NAMES)?;
        Ok(translate::regs_from_values(&v))
    }

    fn set_regs(&mut self, regs: &Regs) -> Result<()> {
        let values = translate::regs_to_values(regs);
        let pairs: Vec<_> = translate::REGS_NAMES.iter().copied().zip(values).collect();
        self.set_registers(&pairs)?;
        self.state.rip = regs.rip;
        self.state.rflags = regs.rflags;
        Ok(())
    }

    fn special_regs(&self) -> Result<SpecialRegs> {
        let v = self.get_registers(&translate::SREGS_NAMES)?;
        Ok(translate::sregs_from_values(&v))
    }

    fn set_special_regs(&mut self, sregs: &SpecialRegs) -> Result<()> {
        let values = translate::sregs_to_values(sregs);
        let pairs: Vec<_> = translate::SREGS_NAMES.iter().copied().zip(values).collect();
        self.set_registers(&pairs)
    }

    fn set_cpuid(&mut self, entries: &[CpuidEntry]) -> Result<()> {
        self.cpuid = Some(entries.to_vec());
        Ok(())
    }

    fn run(&mut self) -> Result<VmExit<'_>> {
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
                    let data = &mut self.buf[..len];
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
            if self.kick.kicked.swap(false, Ordering::SeqCst) {
                return Ok(VmExit::Interrupted);
            }
            let size = std::mem::size_of::<WHV_RUN_VP_EXIT_CONTEXT>() as u32;
            check(
                // SAFETY: the VP exists; `self.exit` is a writable, aligned
                // buffer of `size` bytes.
                unsafe {
                    WHvRunVirtualProcessor(
                        self.partition.handle,
                        self.index,
                        (&mut self.exit.0 as *mut WHV_RUN_VP_EXIT_CONTEXT).cast(),
                        size,
                    )
                },
                "WHvRunVirtualProcessor",
            )?;
            self.state = translate::exec_state(&self.exit.0.VpContext);
            let raw = translate::decode_exit(&self.exit.0);
            match raw {
                RawExit::InterruptWindow => self.window_armed = false,
                RawExit::Canceled => {
                    self.kick.kicked.store(false, Ordering::SeqCst);
                }
                _ => {}
            }
            let plan = translate::plan_exit(
                &raw,
                &self.state,
                self.hypercall_port,
                self.cpuid.as_deref(),
            );
            match plan {
                ExitPlan::Report(exit) => return Ok(exit),
                ExitPlan::Resume => {}
                ExitPlan::PortOut {
                    port,
                    data,
                    len,
                    next_rip,
                } => {
                    self.pending = Pending::AdvanceRip { next_rip };
                    self.buf[..len].copy_from_slice(&data[..len]);
                    return Ok(VmExit::IoOut {
                        port,
                        size: len as u8,
                        data: &self.buf[..len],
                    });
                }
                ExitPlan::PortIn {
                    port,
                    len,
                    rax,
                    next_rip,
                } => {
                    self.pending = Pending::PortIn { rax, len, next_rip };
                    self.buf[..len].fill(0);
                    return Ok(VmExit::IoIn {
                        port,
                        size: len as u8,
                        data: &mut self.buf[..len],
                    });
                }
                ExitPlan::PortHypercall { io, next_rip } => {
                    let [rdx] = self.get_registers(&[WHvX64RegisterRdx])?;
                    // SAFETY: plain-data union; the first 8 bytes are a valid u64.
                    let rdx = unsafe { rdx.Reg64 };
                    self.pending = Pending::Hypercall {
                        next_rip,
                        result: None,
                    };
                    return Ok(VmExit::Hypercall(translate::hypercall_from_port(&io, rdx)));
                }
                ExitPlan::Hypercall { call, next_rip } => {
                    self.pending = Pending::Hypercall {
                        next_rip,
                        result: None,
                    };
                    return Ok(VmExit::Hypercall(call));
                }
                ExitPlan::MsrRead { index, next_rip } => {
                    self.pending = Pending::MsrRead {
                        next_rip,
                        answer: None,
                    };
                    return Ok(VmExit::MsrRead { index });
                }
                ExitPlan::MsrWrite {
                    index,
                    value,
                    next_rip,
                } => {
                    self.pending = Pending::MsrWrite {
                        next_rip,
                        accepted: None,
                    };
                    return Ok(VmExit::MsrWrite { index, value });
                }
                ExitPlan::CpuidAnswer { result, next_rip } => {
                    self.pending = Pending::Cpuid { next_rip, result };
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
                    return Ok(VmExit::Cpuid { leaf, subleaf });
                }
                ExitPlan::DebugException(e) => {
                    if let Some((pc, cause)) = self.debug_exit(&e)? {
                        return Ok(VmExit::Debug { pc, cause });
                    }
                }
                ExitPlan::Emulate => {
                    let (is_io, expected, instruction) = match raw {
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
                }
            }
        }
    }

    fn complete(&mut self, completion: Completion) -> Result<()> {
        self.pending
            .complete(completion)
            .map_err(HypervisorError::Invalid)
    }

    fn inject_interrupt(&mut self, vector: u8) -> Result<()> {
        self.set_registers(&[(
            WHvRegisterPendingInterruption,
            translate::pending_interrupt(vector),
        )])?;
        self.state.interruption_pending = true;
        Ok(())
    }

    fn can_inject_interrupt(&self) -> bool {
        self.state.can_inject_interrupt()
    }

    fn request_interrupt_window(&mut self, wanted: bool) {
        self.window_wanted = wanted;
    }

    fn kicker(&self) -> Arc<dyn VcpuKick> {
        self.kick.clone()
    }

    fn set_guest_debug(&mut self, cfg: &GuestDebug) -> Result<()> {
        self.partition
            .set_exception_exits(self.index, debug::exception_exit_bitmap(cfg))?;
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
        // SAFETY: plain-data unions; the first 8 bytes are a valid u64.
        let (a, b, c) = unsafe { (a.Reg64, b.Reg64, c.Reg64) };
        Ok(debug::events_from_registers(a, b, c))
    }

    fn translate(&self, addr: u64) -> Result<Option<u64>> {
        let mut result = WHV_TRANSLATE_GVA_RESULT::default();
        let mut gpa = 0u64;
        check(
            // SAFETY: the VP exists; `result` and `gpa` are valid out-pointers.
            unsafe {
                WHvTranslateGva(
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

fn reg64(v: u64) -> WHV_REGISTER_VALUE {
    let mut r = WHV_REGISTER_VALUE::default();
    r.Reg64 = v;
    r
}

/// Recovers the callback context.
///
/// # Safety
/// `context` must be the pointer `emulate_pass` passed, during that call.
unsafe fn context<'a>(context: *const c_void) -> &'a mut EmulatorContext<'a> {
    // SAFETY: per the function contract, `context` points to a live
    // EmulatorContext that nothing else touches during the emulator call.
    unsafe { &mut *(context.cast_mut().cast::<EmulatorContext<'a>>()) }
}

unsafe extern "system" fn emu_io_port(
    ctx: *const c_void,
    access: *mut WHV_EMULATOR_IO_ACCESS_INFO,
) -> HRESULT {
    // SAFETY: WHP passes back the context of the running emulate_pass call
    // and a valid access record.
    let (ctx, access) = unsafe { (context(ctx), &mut *access) };
    let size = usize::from(access.AccessSize).min(4);
    let mut bytes = access.Data.to_le_bytes();
    let kind = if access.Direction == 0 {
        AccessKind::PortRead
    } else {
        AccessKind::PortWrite
    };
    if !ctx
        .replay
        .on_access(kind, u64::from(access.Port), &mut bytes[..size])
    {
        return E_FAIL;
    }
    if kind == AccessKind::PortRead {
        access.Data = u32::from_le_bytes(bytes);
    }
    0
}

unsafe extern "system" fn emu_memory(
    ctx: *const c_void,
    access: *mut WHV_EMULATOR_MEMORY_ACCESS_INFO,
) -> HRESULT {
    // SAFETY: as in emu_io_port.
    let (ctx, access) = unsafe { (context(ctx), &mut *access) };
    let size = usize::from(access.AccessSize).min(8);
    let kind = if access.Direction == 0 {
        AccessKind::MmioRead
    } else {
        AccessKind::MmioWrite
    };
    if ctx
        .replay
        .on_access(kind, access.GpaAddress, &mut access.Data[..size])
    {
        0
    } else {
        E_FAIL
    }
}

unsafe extern "system" fn emu_get_registers(
    ctx: *const c_void,
    names: *const WHV_REGISTER_NAME,
    count: u32,
    values: *mut WHV_REGISTER_VALUE,
) -> HRESULT {
    // SAFETY: as in emu_io_port; WHP passes arrays of `count` elements.
    unsafe {
        let ctx = context(ctx);
        WHvGetVirtualProcessorRegisters(ctx.partition, ctx.index, names, count, values)
    }
}

unsafe extern "system" fn emu_set_registers(
    ctx: *const c_void,
    names: *const WHV_REGISTER_NAME,
    count: u32,
    values: *const WHV_REGISTER_VALUE,
) -> HRESULT {
    // SAFETY: as in emu_get_registers.
    unsafe {
        let ctx = context(ctx);
        WHvSetVirtualProcessorRegisters(ctx.partition, ctx.index, names, count, values)
    }
}

unsafe extern "system" fn emu_translate_gva(
    ctx: *const c_void,
    gva: u64,
    flags: WHV_TRANSLATE_GVA_FLAGS,
    result_code: *mut WHV_TRANSLATE_GVA_RESULT_CODE,
    gpa: *mut u64,
) -> HRESULT {
    // SAFETY: as in emu_io_port; `result_code` and `gpa` are valid
    // out-pointers for the duration of the callback.
    unsafe {
        let ctx = context(ctx);
        let mut result = WHV_TRANSLATE_GVA_RESULT::default();
        let hr = WHvTranslateGva(ctx.partition, ctx.index, gva, flags, &mut result, gpa);
        *result_code = result.ResultCode;
        hr
    }
}
