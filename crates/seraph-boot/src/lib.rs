//! Booting kernels: the Seraph boot protocol (boot-info block and memory
//! map: [`boot_info`], [`memory_map`]; an ELF64 loader: [`elf`]; the boot
//! plan that places and writes every boot structure: [`plan`], with the
//! memory-type rule in [`claims`]), and the standard protocols QEMU boots:
//! PVH ELFs ([`pvh`]) and Linux bzImages ([`linux`]), through linux-loader.
//! [`mod@detect`] tells them apart; [`cpu::CpuEntry`] says how the vCPU starts.
//!
//! Typical use by the VMM: one call for every protocol.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use seraph_boot::{BootConfig, BootRequest, CpuEntry, load_kernel};
//! let bytes = std::fs::read("kernel.elf")?;
//! let config = BootConfig::default();
//! let mem = seraph_memory::create_guest_memory(config.ram_size)?;
//! let request = BootRequest { config, cmdline: "", initrd: None, force: None };
//! let loaded = load_kernel(&mem, &bytes, &request)?;
//! match loaded.entry {
//!     CpuEntry::Long64(e) => { /* e.rip, e.rsp, e.rdi, e.rsi, e.cr0/cr3/cr4/efer, e.gdt */ }
//!     CpuEntry::Protected32(e) => { /* e.eip, e.ebx, e.esi, e.cr0, e.gdt; paging off */ }
//! }
//! // loaded.plan: the Seraph BootPlan (Seraph protocol only)
//! # Ok(()) }
//! ```
//!
//! The Seraph-only path is still there: `KernelImage::parse`,
//! `BootPlan::new`, `BootPlan::write` (returns an [`EntryState`]).

#![forbid(unsafe_code)]

pub mod boot_info;
#[cfg(test)]
mod bss_tests;
mod bytes;
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
