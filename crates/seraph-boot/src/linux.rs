//! The Linux x86 boot protocol for bzImage kernels.
//!
//! [`BzImageHeader::parse`] checks the setup header without trusting it
//! (magic, boot flag, protocol version >= 2.06, setup_sects, LOADED_HIGH,
//! a payload, and that the kernel fits). [`BzImageHeader::load`] loads the
//! protected-mode kernel at `code32_start` with linux-loader's bzImage
//! loader, builds the zero page (`boot_params`: the image's setup header,
//! loader type 0xFF, command line, initrd, E820 map) and writes it with
//! linux-loader's boot-params configurator. Entry: the 64-bit entry
//! (`startup_64`, load address + 0x200) when the header's xloadflags has
//! XLF_KERNEL_64 (protocol 2.12+), with the identity-mapping page tables,
//! CS = 0x10, DS = 0x18 and RSI = the zero page; otherwise the 32-bit
//! entry at `code32_start`, paging off, ESI = the zero page.

use std::io::Cursor;

use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params};
use linux_loader::loader::{BzImage, KernelLoader};
use seraph_memory::page_tables::{PageTableLayout, write_page_tables};
use seraph_memory::write_guest;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::bytes::{u8_at, u16_at, u32_at};
use crate::cpu::{
    CpuEntry, LONG_MODE_CR0, LONG_MODE_CR4, LONG_MODE_EFER, LongModeEntry, PROTECTED_MODE_CR0,
    ProtectedModeEntry,
};
use crate::detect::{HDRS_MAGIC, HDRS_OFFSET};
use crate::pc_layout::{
    BOOT_PARAMS, CMDLINE, E820Range, KERNEL_MIN, PAGE_TABLES, STACK_TOP, e820_map, place_initrd,
    write_boot_gdt, write_cmdline,
};
use crate::placement::Placement;
use crate::protocol_error::{LinuxError, LoadError};

/// Offset of the setup header in the image (and in the zero page).
pub const SETUP_HEADER_OFFSET: usize = 0x1F1;
/// Bytes of the setup header linux-loader reads (protocol 2.15).
pub const SETUP_HEADER_SIZE: usize =
    std::mem::size_of::<linux_loader::loader::bootparam::setup_header>();
/// Oldest protocol accepted: 2.06 (cmdline_size).
pub const MIN_VERSION: u16 = 0x0206;
/// `type_of_loader` for an unregistered boot loader.
pub const LOADER_TYPE_UNDEFINED: u8 = 0xFF;
/// xloadflags: the kernel has the 64-bit entry at +0x200.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// loadflags: the protected-mode kernel loads at 1 MiB.
pub const LOADED_HIGH: u8 = 1 << 0;
/// Offset of `startup_64` from the load address.
pub const STARTUP_64_OFFSET: u64 = 0x200;

/// The setup-header fields the loader uses, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BzImageHeader {
    /// Boot protocol version (0x020F = 2.15).
    pub version: u16,
    /// setup_sects as written (0 means 4).
    pub setup_sects: u8,
    /// Bytes of real-mode setup code plus the boot sector.
    pub setup_size: usize,
    /// Bytes of the protected-mode kernel in the file.
    pub payload_size: u64,
    /// Load address of the protected-mode kernel.
    pub code32_start: u32,
    /// Memory the kernel needs from its load address (protocol 2.10+; else the payload size).
    pub init_size: u32,
    /// xloadflags (protocol 2.12+, else 0).
    pub xloadflags: u16,
    /// Longest command line, without the NUL.
    pub cmdline_size: u32,
    /// Highest address the initrd may end at, inclusive.
    pub initrd_addr_max: u32,
}

impl BzImageHeader {
    /// Validates the header of `bytes` for `ram_size` bytes of RAM.
    pub fn parse(bytes: &[u8], ram_size: u64) -> Result<BzImageHeader, LinuxError> {
        let need = SETUP_HEADER_OFFSET + SETUP_HEADER_SIZE;
        if bytes.len() < HDRS_OFFSET + 4 {
            return Err(LinuxError::Truncated {
                len: bytes.len(),
                need,
            });
        }
        let magic = u32_at(bytes, HDRS_OFFSET).unwrap_or(0);
        if magic != HDRS_MAGIC {
            return Err(LinuxError::BadMagic(magic));
        }
        if bytes.len() < need {
            return Err(LinuxError::Truncated {
                len: bytes.len(),
                need,
            });
        }
        let boot_flag = u16_at(bytes, 0x1FE).unwrap_or(0);
        if boot_flag != 0xAA55 {
            return Err(LinuxError::BadBootFlag(boot_flag));
        }
        let version = u16_at(bytes, 0x206).unwrap_or(0);
        if version < MIN_VERSION {
            return Err(LinuxError::VersionTooOld {
                major: (version >> 8) as u8,
                minor: version as u8,
            });
        }
        let setup_sects = u8_at(bytes, 0x1F1).unwrap_or(0);
        // setup_sects 0 means 4 (very old kernels); plus the boot sector.
        let setup_size = (usize::from(if setup_sects == 0 { 4 } else { setup_sects }) + 1) * 512;
        if setup_size > bytes.len() {
            return Err(LinuxError::SetupPastEnd {
                setup_sects,
                setup_size,
                len: bytes.len(),
            });
        }
        if u8_at(bytes, 0x211).unwrap_or(0) & LOADED_HIGH == 0 {
            return Err(LinuxError::NotLoadedHigh);
        }
        let payload_size = (bytes.len() - setup_size) as u64;
        if payload_size == 0 {
            return Err(LinuxError::NoPayload { setup_size });
        }
        let code32_start = u32_at(bytes, 0x214).unwrap_or(0);
        if u64::from(code32_start) < KERNEL_MIN {
            return Err(LinuxError::LoadBelow1M(code32_start));
        }
        let init_size = if version >= 0x020A {
            u32_at(bytes, 0x260).unwrap_or(0)
        } else {
            0
        };
        let xloadflags = if version >= 0x020C {
            u16_at(bytes, 0x236).unwrap_or(0)
        } else {
            0
        };
        let header = BzImageHeader {
            version,
            setup_sects,
            setup_size,
            payload_size,
            code32_start,
            init_size,
            xloadflags,
            cmdline_size: u32_at(bytes, 0x238).unwrap_or(0),
            initrd_addr_max: u32_at(bytes, 0x22C).unwrap_or(0),
        };
        let load = u64::from(code32_start);
        let size = header.footprint();
        if load.checked_add(size).is_none_or(|end| end > ram_size) {
            return Err(LinuxError::KernelDoesNotFit {
                load,
                size,
                ram_size,
            });
        }
        Ok(header)
    }

    /// Bytes the kernel occupies from its load address: the larger of the
    /// payload and `init_size`.
    pub fn footprint(&self) -> u64 {
        self.payload_size.max(u64::from(self.init_size))
    }

    /// True if the kernel has the 64-bit entry.
    pub fn has_64bit_entry(&self) -> bool {
        self.version >= 0x020C && self.xloadflags & XLF_KERNEL_64 != 0
    }

    /// Loads the kernel and writes the zero page, command line, initrd,
    /// GDT and (64-bit entry) page tables into fresh guest memory.
    pub fn load(
        &self,
        mem: &GuestMemoryMmap,
        bytes: &[u8],
        ram_size: u64,
        cmdline: &str,
        initrd: Option<&[u8]>,
    ) -> Result<LinuxLoaded, LoadError> {
        // Loaded where the image asks (`code32_start`, checked by `parse`
        // to lie at or above 1 MiB and to fit in RAM), and entered there.
        let result =
            BzImage::load(mem, None, &mut Cursor::new(bytes), None).map_err(LoadError::Loader)?;
        let kernel_base = result.kernel_load.0;
        let mut params = boot_params::default();
        if let Some(hdr) = result.setup_header {
            params.hdr = hdr;
        }
        params.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
        // The real-mode heap flags mean nothing to a protected-mode entry.
        params.hdr.loadflags &= !0x80;
        write_cmdline(mem, cmdline, (self.cmdline_size as usize).saturating_add(1))?;
        // `cmdline_size` stays as the kernel wrote it: it is the kernel's
        // limit, which the loader reads and does not change.
        params.hdr.cmd_line_ptr = CMDLINE as u32;

        let kernel_end = kernel_base + self.footprint();
        let initrd_placement = match initrd {
            Some(data) => {
                let size = data.len() as u64;
                let limit = ram_size.min(u64::from(self.initrd_addr_max) + 1);
                let base = place_initrd(size, kernel_end, limit)?;
                write_guest(mem, "initrd", data, base)?;
                params.hdr.ramdisk_image = base as u32;
                params.hdr.ramdisk_size = size as u32;
                Some(Placement { base, size })
            }
            None => None,
        };
        let memory_map = e820_map(ram_size);
        for (slot, range) in params.e820_table.iter_mut().zip(&memory_map) {
            *slot = boot_e820_entry {
                addr: range.addr,
                size: range.size,
                r#type: range.kind,
            };
        }
        params.e820_entries = memory_map.len() as u8;
        LinuxBootConfigurator::write_bootparams(
            &BootParams::new(&params, GuestAddress(BOOT_PARAMS)),
            mem,
        )
        .map_err(LoadError::Configurator)?;

        let entry = if self.has_64bit_entry() {
            write_page_tables(mem, &PageTableLayout::new(PAGE_TABLES, ram_size))?;
            CpuEntry::Long64(LongModeEntry {
                rip: kernel_base + STARTUP_64_OFFSET,
                rsp: STACK_TOP,
                rdi: 0,
                rsi: BOOT_PARAMS,
                cr0: LONG_MODE_CR0,
                cr3: PAGE_TABLES,
                cr4: LONG_MODE_CR4,
                efer: LONG_MODE_EFER,
                gdt: write_boot_gdt(mem, true)?,
            })
        } else {
            CpuEntry::Protected32(ProtectedModeEntry {
                eip: kernel_base as u32,
                ebx: 0,
                esi: BOOT_PARAMS as u32,
                esp: 0,
                cr0: PROTECTED_MODE_CR0,
                gdt: write_boot_gdt(mem, false)?,
            })
        };
        Ok(LinuxLoaded {
            entry,
            kernel_base,
            memory_map,
            initrd: initrd_placement,
            zero_page: BOOT_PARAMS,
        })
    }
}

/// What [`BzImageHeader::load`] put where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxLoaded {
    /// The vCPU entry state.
    pub entry: CpuEntry,
    /// Where the protected-mode kernel was loaded (`code32_start`).
    pub kernel_base: u64,
    /// The E820 map in the zero page.
    pub memory_map: Vec<E820Range>,
    /// The initrd, if any.
    pub initrd: Option<Placement>,
    /// The zero page's address.
    pub zero_page: u64,
}
