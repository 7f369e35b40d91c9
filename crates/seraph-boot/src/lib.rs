//! Booting a Seraph OS kernel: the boot-info block and memory map of the
//! boot protocol ([`boot_info`], [`memory_map`]), an ELF64 kernel loader
//! ([`elf`]) and the boot plan that places every boot structure and writes
//! them into guest memory ([`plan`]).
//!
//! Typical use by the VMM:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use seraph_boot::{BootConfig, BootPlan, KernelImage};
//! let bytes = std::fs::read("kernel.elf")?;
//! let config = BootConfig::default();
//! let kernel = KernelImage::parse(&bytes, config.ram_size)?;
//! let plan = BootPlan::new(&kernel, &config)?;
//! let mem = seraph_memory::create_guest_memory(config.ram_size)?;
//! let entry = plan.write(&mem, &kernel, &bytes)?;
//! // entry.rip, entry.rsp, entry.rdi, entry.cr3, entry.gdt -> vCPU registers
//! # let _ = entry; Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod boot_info;
#[cfg(test)]
mod bss_tests;
pub mod claims;
pub mod cpu;
pub mod detect;
pub mod elf;
pub mod error;
pub mod linux;
#[cfg(test)]
mod linux_tests;
mod load;
pub mod memory_map;
pub mod pc_layout;
pub mod placement;
pub mod plan;
pub mod protocol_error;
#[cfg(test)]
mod protocol_tests;
pub mod pvh;
#[cfg(test)]
mod pvh_tests;
mod writing;

pub use boot_info::{BootInfo, MemoryDescriptor};
pub use cpu::{CpuEntry, Cr0, Cr4, Efer, LongModeEntry, ProtectedModeEntry};
pub use detect::{BootProtocol, Detection, choose_protocol, detect};
pub use elf::{KernelImage, Segment};
pub use error::{ElfError, MapError, PlanError};
pub use load::{BootRequest, LoadedKernel, load_kernel};
pub use memory_map::{Claim, build_memory_map, validate};
pub use plan::{BootConfig, BootPlan, EntryState, FramebufferConfig, Placement, Relocation};
pub use protocol_error::{DetectError, LinuxError, LoadError, PvhError};
