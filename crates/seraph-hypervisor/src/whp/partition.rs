//! The partition: WHP's VM object, its configuration and its memory map;
//! [`WhpHypervisor`] and [`WhpVm`].

use std::sync::{Arc, Mutex, RwLock};

use windows_sys::Win32::System::Hypervisor::{
    WHV_CAPABILITY, WHV_CPUID_OUTPUT, WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE,
    WHvCapabilityCodeExtendedVmExits, WHvCapabilityCodeHypervisorPresent,
    WHvMapGpaRangeFlagExecute, WHvMapGpaRangeFlagRead, WHvMapGpaRangeFlagTrackDirtyPages,
    WHvMapGpaRangeFlagWrite, WHvPartitionPropertyCodeCpuidExitList,
    WHvPartitionPropertyCodeExceptionExitBitmap, WHvPartitionPropertyCodeExtendedVmExits,
    WHvPartitionPropertyCodeLocalApicEmulationMode, WHvPartitionPropertyCodeProcessorCount,
    WHvPartitionPropertyCodeX64MsrExitBitmap, WHvX64LocalApicEmulationModeNone,
};

use super::api::{Api, api, optional_function_message};
use super::dirty::{self, WhpDirtyLog};
use super::hresult::check;
use super::regions::{Mapping, Regions};
use super::vcpu::WhpVcpu;
use super::{config, cpuid, debug, plan};
use crate::x86::CpuidEntry;
use crate::{DirtyLog, Hypervisor, HypervisorError, MemoryRegion, Result, Vm, VmConfig};

/// An owned partition handle; deleted when the last user (VM, vCPU or
/// kicker) drops it. [`WhpVm`] unmaps guest memory when it goes, so a
/// partition kept alive by a vCPU or a kicker maps nothing.
#[derive(Debug)]
pub struct Partition {
    pub(super) api: &'static Api,
    pub(super) handle: WHV_PARTITION_HANDLE,
    /// The `ExceptionExit` extended exit was granted (guest debugging works).
    exception_exits: bool,
    /// Each vCPU's exception-exit request; the partition bitmap is their union.
    debug_bitmaps: Mutex<Vec<(u32, u64)>>,
    /// The guest-physical memory map; the emulator reads RAM through it.
    pub(super) regions: RwLock<Regions>,
}

impl Partition {
    fn create(api: &'static Api) -> Result<Self> {
        let mut handle: WHV_PARTITION_HANDLE = 0;
        check(
            // SAFETY: `handle` is a valid out-pointer for the duration of the call.
            unsafe { (api.create_partition)(&mut handle) },
            "WHvCreatePartition",
        )?;
        Ok(Partition {
            api,
            handle,
            exception_exits: false,
            debug_bitmaps: Mutex::new(Vec::new()),
            regions: RwLock::new(Regions::default()),
        })
    }

    fn set_property<T>(
        &self,
        code: WHV_PARTITION_PROPERTY_CODE,
        value: &T,
        call: &'static str,
    ) -> Result<()> {
        self.set_property_slice(code, std::slice::from_ref(value), call)
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
            // SAFETY: `values` is `size` readable bytes for the duration of
            // the call; WHP copies the property.
            unsafe {
                (self.api.set_partition_property)(self.handle, code, values.as_ptr().cast(), size)
            },
            call,
        )
    }

    /// Creates and sets up a partition with this backend's configuration.
    pub(super) fn configured(
        api: &'static Api,
        processor_count: u32,
        vmm_msrs: &[u32],
    ) -> Result<Self> {
        let mut p = Partition::create(api)?;
        p.set_property(
            WHvPartitionPropertyCodeProcessorCount,
            &processor_count,
            "WHvSetPartitionProperty(ProcessorCount)",
        )?;
        let exits = plan::extended_vm_exits(capability_u64(api, WHvCapabilityCodeExtendedVmExits)?);
        p.set_property(
            WHvPartitionPropertyCodeExtendedVmExits,
            &exits,
            "WHvSetPartitionProperty(ExtendedVmExits)",
        )?;
        p.exception_exits = exits & (1 << 2) != 0;
        if p.exception_exits {
            // No vector exits until a vCPU debugs: the default bitmap is not
            // documented, so it is set, as Hyperlight sets it with the exit.
            p.set_property(
                WHvPartitionPropertyCodeExceptionExitBitmap,
                &0u64,
                "WHvSetPartitionProperty(ExceptionExitBitmap)",
            )?;
        }
        if exits & (1 << 1) != 0 {
            p.set_property(
                WHvPartitionPropertyCodeX64MsrExitBitmap,
                &config::msr_exit_bitmap(vmm_msrs),
                "WHvSetPartitionProperty(X64MsrExitBitmap)",
            )?;
        }
        p.set_property_slice(
            WHvPartitionPropertyCodeCpuidExitList,
            &cpuid::cpuid_exit_leaves(),
            "WHvSetPartitionProperty(CpuidExitList)",
        )?;
        p.set_property(
            WHvPartitionPropertyCodeLocalApicEmulationMode,
            &WHvX64LocalApicEmulationModeNone,
            "WHvSetPartitionProperty(LocalApicEmulationMode)",
        )?;
        check(
            // SAFETY: the handle is a live partition that has not been set up yet.
            unsafe { (api.setup_partition)(p.handle) },
            "WHvSetupPartition",
        )?;
        Ok(p)
    }

    /// Records vCPU `index`'s exception-exit request and sets the
    /// partition's bitmap to the union of all requests.
    pub(super) fn set_exception_exits(&self, index: u32, bitmap: u64) -> Result<()> {
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
        self.set_property(
            WHvPartitionPropertyCodeExceptionExitBitmap,
            &debug::partition_exception_bitmap(&all),
            "WHvSetPartitionProperty(ExceptionExitBitmap)",
        )
    }

    fn map(&self, r: &MemoryRegion, track_dirty: bool) -> Result<()> {
        let mut flags =
            WHvMapGpaRangeFlagRead | WHvMapGpaRangeFlagWrite | WHvMapGpaRangeFlagExecute;
        if track_dirty {
            flags |= WHvMapGpaRangeFlagTrackDirtyPages;
        }
        check(
            // SAFETY: `map_memory`'s caller guarantees host_addr..+size is
            // mapped, writable host memory valid for the VM's life.
            unsafe {
                (self.api.map_gpa_range)(
                    self.handle,
                    r.host_addr.cast_const().cast(),
                    r.guest_addr,
                    r.size,
                    flags,
                )
            },
            "WHvMapGpaRange",
        )
    }

    fn unmap(&self, m: &Mapping) -> Result<()> {
        check(
            // SAFETY: the range was mapped by map_memory on this partition.
            unsafe { (self.api.unmap_gpa_range)(self.handle, m.guest_addr, m.size) },
            "WHvUnmapGpaRange",
        )
    }

    /// Unmaps every slot; nothing reaches the old host memory afterwards.
    fn unmap_all(&self) {
        let taken = match self.regions.write() {
            Ok(mut r) => r.take_all(),
            Err(poisoned) => poisoned.into_inner().take_all(),
        };
        for m in &taken {
            // A failure here leaves nothing to do: the partition is going.
            let _ = self.unmap(m);
        }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.unmap_all();
        // SAFETY: the handle came from WHvCreatePartition and this is its
        // last owner; nothing uses it after this.
        unsafe {
            (self.api.delete_partition)(self.handle);
        }
    }
}

fn capability_u64(api: &Api, code: i32) -> Result<u64> {
    let mut cap = WHV_CAPABILITY {
        ExceptionExitBitmap: 0,
    };
    let mut written = 0u32;
    let size = std::mem::size_of::<WHV_CAPABILITY>() as u32;
    check(
        // SAFETY: `cap` is a writable buffer of `size` bytes and `written` a valid out-pointer.
        unsafe {
            (api.get_capability)(
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
    api: &'static Api,
    max_vcpus: u32,
}

impl WhpHypervisor {
    /// Opens WHP for VMs of one vCPU. Fails with
    /// [`HypervisorError::Unavailable`] if the DLLs are missing or the
    /// hypervisor is not running.
    pub fn new() -> Result<Self> {
        Self::with_max_vcpus(1)
    }

    /// Opens WHP for VMs of up to `max_vcpus` vCPUs (the partition's
    /// processor count is fixed before setup).
    pub fn with_max_vcpus(max_vcpus: u32) -> Result<Self> {
        let api = api()?;
        let present = capability_u64(api, WHvCapabilityCodeHypervisorPresent)? & 0xFFFF_FFFF;
        if present == 0 {
            return Err(HypervisorError::Unavailable(
                "the Windows Hypervisor Platform is not available: the hypervisor is not \
                 running. Enable the \"Windows Hypervisor Platform\" Windows feature, turn \
                 on VT-x/AMD-V in the firmware, and reboot (see docs/windows.md)"
                    .into(),
            ));
        }
        Ok(WhpHypervisor {
            api,
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
        let partition = Arc::new(Partition::configured(
            self.api,
            self.max_vcpus,
            &config.vmm_msrs,
        )?);
        Ok(WhpVm {
            partition,
            config: config.clone(),
            max_vcpus: self.max_vcpus,
        })
    }

    fn hypercall_instruction_exits(&self) -> bool {
        config::VMCALL_REACHES_VMM
    }

    fn supported_cpuid(&self) -> Result<Vec<CpuidEntry>> {
        let Some(get_cpuid) = self.api.get_cpuid_output else {
            return Err(HypervisorError::Unsupported(optional_function_message(
                "WHvGetVirtualProcessorCpuidOutput",
                "Windows 10 version 20H2 or later",
            )));
        };
        // A scratch partition with one VP: WHP answers CPUID per VP.
        let partition = Partition::configured(self.api, 1, &[])?;
        check(
            // SAFETY: a set-up partition; VP 0 is deleted by the guard below.
            unsafe { (self.api.create_virtual_processor)(partition.handle, 0, 0) },
            "WHvCreateVirtualProcessor",
        )?;
        let guard = VpGuard(&partition);
        let query = |leaf: u32, sub: u32| -> Result<[u32; 4]> {
            let mut out = WHV_CPUID_OUTPUT::default();
            check(
                // SAFETY: VP 0 exists; `out` is a valid out-pointer.
                unsafe { get_cpuid(guard.0.handle, 0, leaf, sub, &mut out) },
                "WHvGetVirtualProcessorCpuidOutput",
            )?;
            Ok([out.Eax, out.Ebx, out.Ecx, out.Edx])
        };
        let max_basic = query(0, 0)?[0];
        let max_ext = query(0x8000_0000, 0)?[0];
        cpuid::cpuid_query_plan(max_basic, max_ext)
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
struct VpGuard<'a>(&'a Partition);

impl Drop for VpGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: VP 0 was created on this live partition.
        unsafe {
            (self.0.api.delete_virtual_processor)(self.0.handle, 0);
        }
    }
}

/// A WHP partition.
#[derive(Debug)]
pub struct WhpVm {
    partition: Arc<Partition>,
    config: VmConfig,
    max_vcpus: u32,
}

impl Vm for WhpVm {
    type Vcpu = WhpVcpu;

    unsafe fn map_memory(&mut self, region: MemoryRegion) -> Result<()> {
        let p = &self.partition;
        let mut regions = p
            .regions
            .write()
            .map_err(|_| HypervisorError::Invalid("memory map poisoned".into()))?;
        // Validate first: a refused request changes nothing.
        let plan = regions.plan(&region).map_err(HypervisorError::Invalid)?;
        if let Some(old) = plan.unmap {
            p.unmap(&old)?;
            regions.remove(old.slot);
        }
        let Some(new) = plan.map else {
            return Ok(()); // size 0 deletes the slot, as on KVM
        };
        if let Err(e) = p.map(&new, plan.track_dirty) {
            if let Some(old) = plan.unmap {
                // Put the slot back as it was (its memory is still the
                // caller's, valid for the VM's life); if even that fails the
                // slot stays unmapped and the table says so.
                let restored = old.as_region();
                if p.map(&restored, old.dirty_tracking).is_ok() {
                    // SAFETY: as below, for the slot's previous memory.
                    unsafe { regions.insert(&restored, old.dirty_tracking) };
                }
            }
            return Err(e);
        }
        // SAFETY: the caller guarantees host_addr..+size is mapped, writable
        // and stays valid for the VM's life (the trait's contract); WhpVm
        // takes the mapping out of the table (and unmaps it) when it drops.
        unsafe { regions.insert(&new, plan.track_dirty) };
        Ok(())
    }

    fn enable_dirty_log(&mut self, slot: u32) -> Result<Arc<dyn DirtyLog>> {
        let p = &self.partition;
        if p.api.query_dirty_bitmap.is_none() {
            return Err(HypervisorError::Unsupported(optional_function_message(
                "WHvQueryGpaRangeDirtyBitmap",
                "Windows 10 version 1809 or later",
            )));
        }
        let mut regions = p
            .regions
            .write()
            .map_err(|_| HypervisorError::Invalid("memory map poisoned".into()))?;
        let Some(m) = regions.get(slot) else {
            return Err(HypervisorError::Invalid(format!("no memory slot {slot}")));
        };
        if dirty::bitmap_words(m.size).is_none() {
            return Err(HypervisorError::Invalid(format!(
                "memory slot {slot} is too large for a dirty bitmap"
            )));
        }
        if !m.dirty_tracking {
            // WHP sets tracking when a range is mapped: map the slot again.
            p.unmap(&m)?;
            regions.remove(slot);
            let region = m.as_region();
            if let Err(e) = p.map(&region, true) {
                // Put the untracked mapping back; if even that fails the
                // slot stays unmapped and the table says so.
                if p.map(&region, false).is_ok() {
                    // SAFETY: the same host memory `map_memory` mapped for
                    // this slot, valid for the VM's life under its contract.
                    unsafe { regions.insert(&region, false) };
                }
                return Err(e);
            }
            // SAFETY: as above.
            unsafe { regions.insert(&region, true) };
        }
        Ok(Arc::new(WhpDirtyLog {
            api: p.api,
            partition: Arc::clone(p),
            slot,
            guest_addr: m.guest_addr,
            size: m.size,
        }))
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

impl Drop for WhpVm {
    fn drop(&mut self) {
        // The guest memory's validity ends with the VM (map_memory's
        // contract), while vCPUs and kickers may keep the partition alive:
        // unmap now, under the write lock, so no emulator pass is copying.
        self.partition.unmap_all();
    }
}
