//! The boot plan: where every boot structure goes, and writing them all.
//!
//! Each structure goes to its default address (see
//! [`seraph_memory::layout`]) unless the kernel image or an earlier
//! structure occupies it; then it moves to the lowest free, suitably aligned
//! range of RAM above 1 MiB and the move is recorded in
//! [`BootPlan::relocations`]. Placement order: page tables, GDT+TSS page,
//! IST1 stack, boot info (+ memory map), initial stack, primordial arena,
//! heap backing (only with [`BootConfig::map_heap`]).
//!
//! Memory types reported in the map: see [`crate::claims`] (everything the
//! kernel keeps using is reserved or a Seraph type; only the primordial
//! arena is loader data).

use seraph_memory::gdt::GdtLayout;
use seraph_memory::layout::{
    ARENA_SIZE, DEFAULT_ARENA, DEFAULT_BOOT_INFO, DEFAULT_GDT, DEFAULT_HEAP_BACKING,
    DEFAULT_IST_STACK, DEFAULT_PML4, DEFAULT_RAM, DEFAULT_STACK, FRAMEBUFFER_BASE,
    FRAMEBUFFER_WINDOW, HEAP_BACKING_SIZE, IST_STACK_SIZE, LARGE_PAGE_SIZE, LOW_RESERVED_SIZE, MIB,
    PAGE_SIZE, STACK_SIZE, align_down, align_up, ranges_overlap,
};
use seraph_memory::page_tables::{HeapMapping, PageTableLayout};
use seraph_memory::{MemoryError, validate_ram_size};

use crate::boot_info::{
    BootInfo, DESC_SIZE, DESC_VERSION, FB_FORMAT_BGRA8, FLAG_FRAMEBUFFER, FLAG_SERIAL, MAGIC,
    MemoryDescriptor, VERSION,
};
use crate::claims::{Placed, boot_claims};
use crate::elf::KernelImage;
use crate::error::PlanError;
use crate::memory_map::build_memory_map;
use crate::placement::Placer;
pub use crate::placement::{Placement, Relocation};

/// Offset of the TSS inside the GDT page.
pub const TSS_OFFSET: u64 = 0x80;
/// Bytes reserved for the boot info and the memory map after it (one page).
pub const BOOT_INFO_REGION: u64 = PAGE_SIZE;
/// How many descriptors fit after the boot info in its page.
pub const MAP_CAPACITY: usize = ((BOOT_INFO_REGION - BootInfo::SIZE as u64) / DESC_SIZE) as usize;

/// The framebuffer the kernel is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramebufferConfig {
    /// Pixels per line.
    pub width: u32,
    /// Lines.
    pub height: u32,
    /// Bytes per line (at least width * 4).
    pub stride: u32,
    /// `FB_FORMAT_*` (0 = BGRA8).
    pub format: u32,
}

impl Default for FramebufferConfig {
    /// 1024x768, stride 4096, BGRA8.
    fn default() -> Self {
        Self {
            width: 1024,
            height: 768,
            stride: 4096,
            format: FB_FORMAT_BGRA8,
        }
    }
}

impl FramebufferConfig {
    /// width * height * 4: the boot info's framebuffer_size.
    pub fn size(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * 4
    }

    /// Checks: nonzero, stride >= width * 4, and the frame (stride * height)
    /// fits in the 16 MiB window.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: String| Err(PlanError::Framebuffer(m));
        if self.width == 0 || self.height == 0 || self.stride == 0 {
            return bad(format!(
                "{}x{} stride {} has a zero dimension",
                self.width, self.height, self.stride
            ));
        }
        if u64::from(self.stride) < u64::from(self.width) * 4 {
            return bad(format!(
                "stride {} is less than width {} * 4",
                self.stride, self.width
            ));
        }
        if self.size() > FRAMEBUFFER_WINDOW
            || u64::from(self.stride) * u64::from(self.height) > FRAMEBUFFER_WINDOW
        {
            return bad(format!(
                "{}x{} (stride {}) does not fit in the 16 MiB framebuffer window",
                self.width, self.height, self.stride
            ));
        }
        if self.format > 3 {
            return bad(format!("unknown pixel format {}", self.format));
        }
        Ok(())
    }
}

/// What the user chose for this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootConfig {
    /// Guest RAM in bytes.
    pub ram_size: u64,
    /// The framebuffer.
    pub framebuffer: FramebufferConfig,
    /// Pre-map 64 MiB of heap at `0xFFFF_C000_0000_0000` (off by default:
    /// real Seraph kernels map their heap themselves).
    pub map_heap: bool,
}

impl Default for BootConfig {
    /// 512 MiB, 1024x768 BGRA8, no heap map.
    fn default() -> Self {
        Self {
            ram_size: DEFAULT_RAM,
            framebuffer: FramebufferConfig::default(),
            map_heap: false,
        }
    }
}

impl BootConfig {
    /// Checks the RAM size and the framebuffer.
    pub fn validate(&self) -> Result<(), PlanError> {
        validate_ram_size(self.ram_size)?;
        self.framebuffer.validate()
    }
}

/// Registers the vCPU starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryState {
    /// The ELF entry point (virtual).
    pub rip: u64,
    /// Top of the initial stack, 16-byte aligned.
    pub rsp: u64,
    /// Physical (= identity-mapped) address of the boot info.
    pub rdi: u64,
    /// The PML4's physical address.
    pub cr3: u64,
    /// GDTR and selectors; the TSS descriptor in memory is "available"
    /// (type 9): load TR with type 11 (busy), as `ltr` would.
    pub gdt: GdtLayout,
}

/// Where everything goes for one boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPlan {
    /// The configuration planned for.
    pub config: BootConfig,
    /// Kernel entry point (virtual).
    pub entry: u64,
    /// Lowest physical address of the kernel.
    pub kernel_phys_base: u64,
    /// Lowest virtual address of the kernel.
    pub kernel_virt_base: u64,
    /// Kernel size, lowest to highest loaded address.
    pub kernel_size: u64,
    /// The pages the kernel image occupies (rounded to 4 KiB).
    pub kernel: Placement,
    /// The page tables (base = PML4 = CR3).
    pub page_tables: PageTableLayout,
    /// The GDT+TSS page: GDT at `base`, TSS at `base + TSS_OFFSET`.
    pub gdt: Placement,
    /// The IST1 (double-fault) stack; IST1 = its end.
    pub ist_stack: Placement,
    /// The boot-info page: boot info at `base`, memory map right after.
    pub boot_info: Placement,
    /// Physical address of the memory map (`boot_info.base + 280`).
    pub memory_map_base: u64,
    /// The initial kernel stack; RSP = its end.
    pub stack: Placement,
    /// The primordial arena (zeroed).
    pub arena: Placement,
    /// The heap backing, when the heap is pre-mapped.
    pub heap_backing: Option<Placement>,
    /// Structures that did not stay at their default address.
    pub relocations: Vec<Relocation>,
    /// The memory map the kernel receives.
    pub memory_map: Vec<MemoryDescriptor>,
}

impl BootPlan {
    /// Places every boot structure for `kernel` under `config`.
    pub fn new(kernel: &KernelImage, config: &BootConfig) -> Result<BootPlan, PlanError> {
        config.validate()?;
        let ram_size = config.ram_size;
        let kernel_start = align_down(kernel.phys_base, PAGE_SIZE);
        let kernel_end = kernel
            .phys_base
            .checked_add(kernel.size)
            .and_then(|end| align_up(end, PAGE_SIZE))
            .ok_or(MemoryError::OutOfRam {
                what: "kernel image",
                addr: kernel.phys_base,
                len: kernel.size,
                ram_size,
            })?;
        if kernel_end > ram_size {
            return Err(MemoryError::OutOfRam {
                what: "kernel image",
                addr: kernel.phys_base,
                len: kernel.size,
                ram_size,
            }
            .into());
        }
        let kernel_pages = Placement {
            base: kernel_start,
            size: kernel_end - kernel_start,
        };
        let pt_size = PageTableLayout::new(0, ram_size).size();
        let heap_size = if config.map_heap {
            HEAP_BACKING_SIZE + LARGE_PAGE_SIZE
        } else {
            0
        };
        // What everything needs if packed above the kernel (or above 1 MiB), with alignment slack.
        let needed = kernel_end.max(MIB)
            + pt_size
            + 3 * PAGE_SIZE
            + BOOT_INFO_REGION
            + STACK_SIZE
            + ARENA_SIZE
            + LARGE_PAGE_SIZE
            + heap_size;

        let low_reserved = Placement {
            base: 0,
            size: LOW_RESERVED_SIZE,
        };
        let kernel_covers_page0 =
            ranges_overlap(0, LOW_RESERVED_SIZE, kernel_pages.base, kernel_pages.end());
        let mut placer = Placer {
            ram_size,
            occupied: vec![kernel_pages],
            relocations: Vec::new(),
            needed,
        };
        if !kernel_covers_page0 {
            placer.occupied.push(low_reserved);
        }

        let tables = placer.place("page tables", DEFAULT_PML4, pt_size, PAGE_SIZE)?;
        let gdt = placer.place("GDT and TSS", DEFAULT_GDT, PAGE_SIZE, PAGE_SIZE)?;
        let ist_stack = placer.place("IST1 stack", DEFAULT_IST_STACK, IST_STACK_SIZE, PAGE_SIZE)?;
        let boot_info = placer.place(
            "boot info and memory map",
            DEFAULT_BOOT_INFO,
            BOOT_INFO_REGION,
            PAGE_SIZE,
        )?;
        let stack = placer.place("initial stack", DEFAULT_STACK, STACK_SIZE, PAGE_SIZE)?;
        let arena = placer.place(
            "primordial arena",
            DEFAULT_ARENA,
            ARENA_SIZE,
            LARGE_PAGE_SIZE,
        )?;
        let heap_backing = if config.map_heap {
            Some(placer.place(
                "heap backing",
                DEFAULT_HEAP_BACKING,
                HEAP_BACKING_SIZE,
                LARGE_PAGE_SIZE,
            )?)
        } else {
            None
        };
        let page_tables = PageTableLayout {
            base: tables.base,
            ram_size,
            heap: heap_backing.map(|h| HeapMapping {
                backing_phys: h.base,
            }),
        };

        let claims = boot_claims(&Placed {
            kernel: kernel_pages,
            tables,
            gdt,
            ist_stack,
            boot_info,
            stack,
            arena,
            low_reserved: (!kernel_covers_page0).then_some(low_reserved),
            heap: heap_backing,
        });
        let memory_map = build_memory_map(ram_size, &claims)?;
        if memory_map.len() > MAP_CAPACITY {
            return Err(PlanError::MapTooLarge {
                count: memory_map.len(),
                capacity: MAP_CAPACITY,
            });
        }

        Ok(BootPlan {
            config: *config,
            entry: kernel.entry,
            kernel_phys_base: kernel.phys_base,
            kernel_virt_base: kernel.virt_base,
            kernel_size: kernel.size,
            kernel: kernel_pages,
            page_tables,
            gdt,
            ist_stack,
            boot_info,
            memory_map_base: boot_info.base + BootInfo::SIZE as u64,
            stack,
            arena,
            heap_backing,
            relocations: placer.relocations,
            memory_map,
        })
    }

    /// The boot info the kernel receives.
    pub fn boot_info(&self) -> BootInfo {
        let fb = &self.config.framebuffer;
        let count = self.memory_map.len() as u64;
        BootInfo {
            magic: MAGIC,
            version: VERSION,
            flags: FLAG_FRAMEBUFFER | FLAG_SERIAL,
            framebuffer_base: FRAMEBUFFER_BASE,
            framebuffer_size: fb.size(),
            fb_width: fb.width,
            fb_height: fb.height,
            fb_stride: fb.stride,
            fb_format: fb.format,
            memory_map_base: self.memory_map_base,
            memory_map_size: count * DESC_SIZE,
            memory_desc_size: DESC_SIZE,
            memory_desc_version: DESC_VERSION,
            memory_map_count: count as u32,
            kernel_phys_base: self.kernel_phys_base,
            kernel_virt_base: self.kernel_virt_base,
            kernel_size: self.kernel_size,
            rsdp_address: 0,
            smbios_address: 0,
            stack_phys: self.stack.base,
            stack_size: self.stack.size,
            primordial_arena_phys: self.arena.base,
            primordial_arena_size: self.arena.size,
            pml4_phys: self.page_tables.pml4(),
        }
    }

    /// The vCPU state at the kernel's entry.
    pub fn entry_state(&self, gdt: GdtLayout) -> EntryState {
        EntryState {
            rip: self.entry,
            rsp: self.stack.end() & !0xF,
            rdi: self.boot_info.base,
            cr3: self.page_tables.pml4(),
            gdt,
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
