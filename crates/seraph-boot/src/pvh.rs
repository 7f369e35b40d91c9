//! The PVH boot protocol (Xen's `hvm_start_info` ABI, what QEMU's
//! `-kernel` does with an ELF that has a `XEN_ELFNOTE_PHYS32_ENTRY` note).
//!
//! [`PvhImage::parse`] validates the ELF (32- or 64-bit class) without
//! trusting it. [`PvhImage::load`] copies the segments to their `p_paddr`
//! (64-bit class through linux-loader's ELF loader, which handles only
//! ELF64; 32-bit class by this crate), writes the command line, the module
//! (initrd) and the start info with its memory map through linux-loader's
//! PVH configurator, and the boot GDT; the vCPU starts in 32-bit protected
//! mode, paging off, EBX = the start info. Guest memory must be fresh (all
//! zero): bss is not written.

use std::io::Cursor;

use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::{Elf, KernelLoader};
use seraph_memory::layout::ranges_overlap;
use seraph_memory::write_guest;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::cpu::{CpuEntry, PROTECTED_MODE_CR0, ProtectedModeEntry};
use crate::detect::{
    EM_386, EM_X86_64, ElfClass, PT_LOAD, ProgramHeader, find_pvh_entry, parse_elf_headers,
};
use crate::pc_layout::{
    BOOT_PARAMS, CMDLINE, CMDLINE_MAX, E820Range, KERNEL_MIN, PVH_MEMMAP, PVH_MODLIST, e820_map,
    place_initrd, write_boot_gdt, write_cmdline,
};
use crate::placement::Placement;
use crate::protocol_error::{LoadError, PvhError};

/// `hvm_start_info.magic`.
pub const PVH_START_MAGIC: u32 = 0x336E_C578;
/// `hvm_start_info.version` written (1: with the memory map fields).
pub const PVH_START_VERSION: u32 = 1;

/// A validated PVH kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvhImage {
    /// ELF class.
    pub class: ElfClass,
    /// The 32-bit entry from the note.
    pub entry: u32,
    /// PT_LOAD segments with p_memsz > 0, sorted by p_paddr.
    pub segments: Vec<ProgramHeader>,
    /// Lowest p_paddr.
    pub phys_base: u64,
    /// Highest p_paddr + p_memsz.
    pub phys_end: u64,
}

/// What [`PvhImage::load`] put where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvhLoaded {
    /// The vCPU entry state.
    pub entry: CpuEntry,
    /// The memory map in the start info.
    pub memory_map: Vec<E820Range>,
    /// The module (initrd), if any.
    pub module: Option<Placement>,
    /// Where the start info is.
    pub start_info: u64,
}

impl PvhImage {
    /// Validates `bytes` as a PVH kernel for `ram_size` bytes of RAM.
    pub fn parse(bytes: &[u8], ram_size: u64) -> Result<PvhImage, PvhError> {
        let headers = parse_elf_headers(bytes)?;
        if headers.machine != EM_386 && headers.machine != EM_X86_64 {
            return Err(PvhError::WrongMachine(headers.machine));
        }
        let entry = find_pvh_entry(bytes, &headers)?.ok_or(PvhError::NoEntryNote)?;
        let mut segments = Vec::new();
        for ph in headers
            .phdrs
            .iter()
            .filter(|p| p.p_type == PT_LOAD && (p.memsz > 0 || p.filesz > 0))
        {
            // Every PT_LOAD with file bytes is checked, even one with
            // p_memsz = 0: linux-loader copies p_filesz bytes of each.
            Self::check_segment(ph, bytes.len(), ram_size)?;
            segments.push(*ph);
        }
        if segments.is_empty() {
            return Err(PvhError::NoLoadSegments);
        }
        segments.sort_by_key(|s| s.paddr);
        for pair in segments.windows(2) {
            if let [a, b] = pair {
                if ranges_overlap(a.paddr, a.paddr + a.memsz, b.paddr, b.paddr + b.memsz) {
                    return Err(PvhError::OverlappingSegments {
                        a: a.index.min(b.index),
                        b: a.index.max(b.index),
                    });
                }
            }
        }
        let inside = |s: &ProgramHeader| (s.paddr..s.paddr + s.memsz).contains(&u64::from(entry));
        if !segments.iter().any(inside) {
            return Err(PvhError::EntryNotLoaded { entry });
        }
        let phys_base = segments.iter().map(|s| s.paddr).min().unwrap_or(0);
        let phys_end = segments
            .iter()
            .map(|s| s.paddr + s.memsz)
            .max()
            .unwrap_or(0);
        Ok(PvhImage {
            class: headers.class,
            entry,
            segments,
            phys_base,
            phys_end,
        })
    }

    fn check_segment(ph: &ProgramHeader, len: usize, ram_size: u64) -> Result<(), PvhError> {
        let index = ph.index;
        if ph.filesz > ph.memsz {
            return Err(PvhError::FileSizeExceedsMemSize {
                index,
                filesz: ph.filesz,
                memsz: ph.memsz,
            });
        }
        if ph
            .offset
            .checked_add(ph.filesz)
            .is_none_or(|end| end > len as u64)
        {
            return Err(PvhError::SegmentOutOfFile {
                index,
                offset: ph.offset,
                filesz: ph.filesz,
                len,
            });
        }
        let end = ph.paddr.checked_add(ph.memsz);
        if ph.paddr < KERNEL_MIN || end.is_none_or(|end| end > ram_size) {
            return Err(PvhError::SegmentNotInRam {
                index,
                phys: ph.paddr,
                end: end.unwrap_or(u64::MAX),
                ram_size,
            });
        }
        Ok(())
    }

    /// Loads the kernel and writes the start info, memory map, command line
    /// and module into fresh guest memory of `ram_size` bytes.
    pub fn load(
        &self,
        mem: &GuestMemoryMmap,
        bytes: &[u8],
        ram_size: u64,
        cmdline: &str,
        initrd: Option<&[u8]>,
    ) -> Result<PvhLoaded, LoadError> {
        match self.class {
            ElfClass::Elf64 => {
                // linux-loader copies each PT_LOAD with p_filesz > 0 to
                // p_paddr; `parse` checked every range against the file and RAM.
                Elf::load(mem, None, &mut Cursor::new(bytes), None).map_err(LoadError::Loader)?;
            }
            ElfClass::Elf32 => {
                for seg in self.segments.iter().filter(|s| s.filesz > 0) {
                    let file = usize::try_from(seg.offset)
                        .ok()
                        .zip(usize::try_from(seg.filesz).ok())
                        .and_then(|(off, n)| bytes.get(off..off.checked_add(n)?))
                        .ok_or(PvhError::SegmentOutOfFile {
                            index: seg.index,
                            offset: seg.offset,
                            filesz: seg.filesz,
                            len: bytes.len(),
                        })?;
                    write_guest(mem, "PVH kernel segment", file, seg.paddr)?;
                }
            }
        }

        let cmdline_paddr = if cmdline.is_empty() {
            0
        } else {
            write_cmdline(mem, cmdline, CMDLINE_MAX)?;
            CMDLINE
        };
        let memory_map = e820_map(ram_size);
        let table: Vec<hvm_memmap_table_entry> = memory_map
            .iter()
            .map(|r| hvm_memmap_table_entry {
                addr: r.addr,
                size: r.size,
                type_: r.kind,
                reserved: 0,
            })
            .collect();
        let mut start_info = hvm_start_info {
            magic: PVH_START_MAGIC,
            version: PVH_START_VERSION,
            cmdline_paddr,
            memmap_paddr: PVH_MEMMAP,
            memmap_entries: table.len() as u32,
            ..Default::default()
        };
        let module = match initrd {
            Some(data) => {
                let size = data.len() as u64;
                let base = place_initrd(size, self.phys_end, ram_size)?;
                write_guest(mem, "PVH module", data, base)?;
                start_info.nr_modules = 1;
                start_info.modlist_paddr = PVH_MODLIST;
                Some(Placement { base, size })
            }
            None => None,
        };
        let mut params = BootParams::new(&start_info, GuestAddress(BOOT_PARAMS));
        params.set_sections(&table, GuestAddress(PVH_MEMMAP));
        if let Some(m) = module {
            let entry = hvm_modlist_entry {
                paddr: m.base,
                size: m.size,
                cmdline_paddr: 0,
                reserved: 0,
            };
            params.set_modules(&[entry], GuestAddress(PVH_MODLIST));
        }
        PvhBootConfigurator::write_bootparams(&params, mem).map_err(LoadError::Configurator)?;
        let gdt = write_boot_gdt(mem, false)?;
        Ok(PvhLoaded {
            entry: CpuEntry::Protected32(ProtectedModeEntry {
                eip: self.entry,
                ebx: BOOT_PARAMS as u32,
                esi: 0,
                esp: 0,
                cr0: PROTECTED_MODE_CR0,
                gdt,
            }),
            memory_map,
            module,
            start_info: BOOT_PARAMS,
        })
    }
}
