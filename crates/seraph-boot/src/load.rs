//! One entry point for the VMM: [`load_kernel`] detects the image's boot
//! protocol (or takes the forced one), loads it into fresh guest memory,
//! writes that protocol's boot structures and returns how the vCPU starts.

use vm_memory::GuestMemoryMmap;

use crate::cpu::{CpuEntry, LONG_MODE_CR0, LONG_MODE_CR4, LONG_MODE_EFER, LongModeEntry};
use crate::detect::{BootProtocol, Detection, choose_protocol};
use crate::elf::KernelImage;
use crate::linux::BzImageHeader;
use crate::pc_layout::E820Range;
use crate::placement::Placement;
use crate::plan::{BootConfig, BootPlan};
use crate::protocol_error::LoadError;
use crate::pvh::PvhImage;

/// What to boot and how.
#[derive(Debug, Clone, Copy)]
pub struct BootRequest<'a> {
    /// RAM size, framebuffer geometry, heap option (the Seraph plan's input;
    /// PVH and Linux use the RAM size).
    pub config: BootConfig,
    /// Kernel command line (PVH, Linux); must be empty for Seraph.
    pub cmdline: &'a str,
    /// Initial ramdisk (Linux) / the one PVH module; `None` for Seraph.
    pub initrd: Option<&'a [u8]>,
    /// `--boot`: a protocol to use instead of the detected one.
    pub force: Option<BootProtocol>,
}

/// A loaded kernel: its protocol, the vCPU entry state and where things went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedKernel {
    /// The protocol it boots with.
    pub protocol: BootProtocol,
    /// What detection found (for `--debug`).
    pub detection: Detection,
    /// Registers to load before the first run.
    pub entry: CpuEntry,
    /// The Seraph boot plan (Seraph protocol only).
    pub plan: Option<BootPlan>,
    /// The E820-style map given to a PVH or Linux kernel (empty for Seraph,
    /// whose map is in `plan`).
    pub memory_map: Vec<E820Range>,
    /// Physical range of the kernel image.
    pub kernel: Placement,
    /// Where the initrd / PVH module went.
    pub initrd: Option<Placement>,
    /// Address of the boot info (Seraph), `hvm_start_info` (PVH) or zero page (Linux).
    pub boot_params: u64,
}

/// Loads `bytes` into `mem` (fresh from `seraph_memory::create_guest_memory`
/// with `request.config.ram_size` bytes: all zero) and writes every boot
/// structure of the chosen protocol.
pub fn load_kernel(
    mem: &GuestMemoryMmap,
    bytes: &[u8],
    request: &BootRequest<'_>,
) -> Result<LoadedKernel, LoadError> {
    request.config.validate()?;
    let ram_size = request.config.ram_size;
    let (protocol, detection) = choose_protocol(bytes, ram_size, request.force)?;
    match protocol {
        BootProtocol::Seraph => {
            if !request.cmdline.is_empty() {
                return Err(LoadError::SeraphHasNo("command line"));
            }
            if request.initrd.is_some() {
                return Err(LoadError::SeraphHasNo("initrd"));
            }
            let image = KernelImage::parse(bytes, ram_size).map_err(crate::PlanError::from)?;
            let plan = BootPlan::new(&image, &request.config)?;
            let state = plan.write(mem, &image, bytes)?;
            Ok(LoadedKernel {
                protocol,
                detection,
                entry: CpuEntry::Long64(LongModeEntry {
                    rip: state.rip,
                    rsp: state.rsp,
                    rdi: state.rdi,
                    rsi: 0,
                    cr0: LONG_MODE_CR0,
                    cr3: state.cr3,
                    cr4: LONG_MODE_CR4,
                    efer: LONG_MODE_EFER,
                    gdt: state.gdt,
                }),
                memory_map: Vec::new(),
                kernel: plan.kernel,
                initrd: None,
                boot_params: plan.boot_info.base,
                plan: Some(plan),
            })
        }
        BootProtocol::Pvh => {
            let image = PvhImage::parse(bytes, ram_size)?;
            let loaded = image.load(mem, bytes, ram_size, request.cmdline, request.initrd)?;
            Ok(LoadedKernel {
                protocol,
                detection,
                entry: loaded.entry,
                plan: None,
                memory_map: loaded.memory_map,
                kernel: Placement {
                    base: image.phys_base,
                    size: image.phys_end - image.phys_base,
                },
                initrd: loaded.module,
                boot_params: loaded.start_info,
            })
        }
        BootProtocol::Linux => {
            let header = BzImageHeader::parse(bytes, ram_size)?;
            let loaded = header.load(mem, bytes, ram_size, request.cmdline, request.initrd)?;
            Ok(LoadedKernel {
                protocol,
                detection,
                entry: loaded.entry,
                plan: None,
                memory_map: loaded.memory_map,
                kernel: Placement {
                    base: loaded.kernel_base,
                    size: header.footprint(),
                },
                initrd: loaded.initrd,
                boot_params: loaded.zero_page,
            })
        }
    }
}
