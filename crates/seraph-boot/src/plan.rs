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
//! Memory types reported in the map: kernel image 0x8000_0000, stack
//! 0x8000_0001, boot info + map 0x8000_0002, page tables / arena / heap
//! backing loader data (2), GDT+TSS and IST stack reserved (0: they stay in
//! use for the kernel's whole life), page 0 reserved unless the kernel
//! occupies it.

use seraph_memory::gdt::{GdtLayout, write_gdt_and_tss};
use seraph_memory::layout::{
    ARENA_SIZE, DEFAULT_ARENA, DEFAULT_BOOT_INFO, DEFAULT_GDT, DEFAULT_HEAP_BACKING,
    DEFAULT_IST_STACK, DEFAULT_PML4, DEFAULT_RAM, DEFAULT_STACK, FRAMEBUFFER_BASE,
    FRAMEBUFFER_WINDOW, HEAP_BACKING_SIZE, IST_STACK_SIZE, LARGE_PAGE_SIZE, LOW_RESERVED_SIZE, MIB,
    PAGE_SIZE, STACK_SIZE, align_down, align_up, ranges_overlap,
};
use seraph_memory::page_tables::{HeapMapping, PageTableLayout, write_page_tables};
use seraph_memory::{MemoryError, validate_ram_size};
use vm_memory::GuestMemoryMmap;

use crate::boot_info::{
    BootInfo, DESC_SIZE, DESC_VERSION, FB_FORMAT_BGRA8, FLAG_FRAMEBUFFER, FLAG_SERIAL, MAGIC,
    MEM_BOOT_INFO, MEM_KERNEL_IMAGE, MEM_KERNEL_STACK, MEM_LOADER_DATA, MEM_RESERVED,
    MemoryDescriptor, VERSION,
};
use crate::elf::KernelImage;
use crate::error::PlanError;
use crate::memory_map::{Claim, build_memory_map};

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

/// A guest-physical range `[base, base + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Placement {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// A structure that could not go to its default address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    /// Which structure.
    pub what: &'static str,
    /// Its default address.
    pub default: u64,
    /// Where it went.
    pub actual: u64,
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

/// Lowest `align`-aligned address at or above 1 MiB where `size` bytes fit
/// below `ram_size` without touching `occupied` (sorted by start).
fn find_free(occupied: &[Placement], size: u64, align: u64, ram_size: u64) -> Option<u64> {
    let mut cand = align_up(MIB, align)?;
    for r in occupied {
        if r.end() <= cand {
            continue;
        }
        if r.base >= cand.checked_add(size)? {
            break;
        }
        cand = align_up(r.end(), align)?;
    }
    (cand.checked_add(size)? <= ram_size).then_some(cand)
}

struct Placer {
    ram_size: u64,
    occupied: Vec<Placement>,
    relocations: Vec<Relocation>,
    needed: u64,
}

impl Placer {
    fn is_free(&self, base: u64, size: u64) -> bool {
        base.checked_add(size)
            .is_some_and(|end| end <= self.ram_size)
            && !self
                .occupied
                .iter()
                .any(|r| ranges_overlap(base, base + size, r.base, r.end()))
    }

    fn place(
        &mut self,
        what: &'static str,
        default: u64,
        size: u64,
        align: u64,
    ) -> Result<Placement, PlanError> {
        let base = if self.is_free(default, size) {
            default
        } else {
            self.occupied.sort_by_key(|r| r.base);
            let base =
                find_free(&self.occupied, size, align, self.ram_size).ok_or(PlanError::NoRoom {
                    what,
                    size,
                    ram_size: self.ram_size,
                    needed_mib: self.needed.div_ceil(LARGE_PAGE_SIZE) * 2,
                })?;
            self.relocations.push(Relocation {
                what,
                default,
                actual: base,
            });
            base
        };
        let placed = Placement { base, size };
        self.occupied.push(placed);
        Ok(placed)
    }
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

        let claim = |what, p: Placement, memory_type| Claim {
            what,
            start: p.base,
            end: p.end(),
            memory_type,
        };
        let mut claims = vec![
            claim("kernel image", kernel_pages, MEM_KERNEL_IMAGE),
            claim("page tables", tables, MEM_LOADER_DATA),
            claim("GDT and TSS", gdt, MEM_RESERVED),
            claim("IST1 stack", ist_stack, MEM_RESERVED),
            claim("boot info", boot_info, MEM_BOOT_INFO),
            claim("initial stack", stack, MEM_KERNEL_STACK),
            claim("primordial arena", arena, MEM_LOADER_DATA),
        ];
        if !kernel_covers_page0 {
            claims.push(claim("low reserved page", low_reserved, MEM_RESERVED));
        }
        if let Some(heap) = heap_backing {
            claims.push(claim("heap backing", heap, MEM_LOADER_DATA));
        }
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

    /// Loads the kernel, zeroes the stacks and boot-info page, and
    /// writes page tables, GDT/TSS, boot info and memory map. `kernel` and
    /// `kernel_bytes` must be what the plan was made from. `mem` must be
    /// fresh from [`seraph_memory::create_guest_memory`] (all zero): the
    /// primordial arena is promised zeroed and is left untouched.
    pub fn write(
        &self,
        mem: &GuestMemoryMmap,
        kernel: &KernelImage,
        kernel_bytes: &[u8],
    ) -> Result<EntryState, PlanError> {
        if kernel.phys_base != self.kernel_phys_base
            || kernel.size != self.kernel_size
            || kernel.entry != self.entry
            || kernel.virt_base != self.kernel_virt_base
        {
            return Err(PlanError::KernelMismatch);
        }
        // The 16 MiB arena is not written: fresh guest memory (see
        // `create_guest_memory`) is already zero, and touching it would cost
        // 4096 page faults and 16 MiB of host memory before the guest runs.
        for (what, p) in [
            ("initial stack", self.stack),
            ("IST1 stack", self.ist_stack),
            ("boot info", self.boot_info),
            ("GDT and TSS", self.gdt),
        ] {
            zero(mem, what, p)?;
        }
        kernel.load(mem, kernel_bytes)?;
        write_page_tables(mem, &self.page_tables)?;
        let gdt = write_gdt_and_tss(
            mem,
            self.gdt.base,
            self.gdt.base + TSS_OFFSET,
            self.ist_stack.end(),
        )?;
        write_bytes(
            mem,
            "boot info",
            &self.boot_info().to_bytes(),
            self.boot_info.base,
        )?;
        let map: Vec<u8> = self.memory_map.iter().flat_map(|d| d.to_bytes()).collect();
        write_bytes(mem, "memory map", &map, self.memory_map_base)?;
        Ok(self.entry_state(gdt))
    }
}

use seraph_memory::write_guest as write_bytes;

fn zero(mem: &GuestMemoryMmap, what: &'static str, p: Placement) -> Result<(), MemoryError> {
    static ZEROS: [u8; 0x1_0000] = [0; 0x1_0000];
    let mut at = p.base;
    while at < p.end() {
        let chunk = (p.end() - at).min(ZEROS.len() as u64);
        write_bytes(mem, what, &ZEROS[..chunk as usize], at)?;
        at += chunk;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot_info::{MEM_CONVENTIONAL, MEM_MMIO};
    use crate::elf::test_elf::{build, higher_half_kernel, identity_kernel, load};
    use crate::memory_map::validate;
    use seraph_memory::{create_guest_memory, read_virt, translate};
    use vm_memory::{Bytes, GuestAddress};

    fn plan_for(bytes: &[u8], config: &BootConfig) -> (KernelImage, BootPlan) {
        let kernel = KernelImage::parse(bytes, config.ram_size).unwrap();
        let plan = BootPlan::new(&kernel, config).unwrap();
        (kernel, plan)
    }

    fn types(plan: &BootPlan) -> Vec<(u32, u64, u64)> {
        plan.memory_map
            .iter()
            .map(|d| (d.memory_type, d.phys_start, d.phys_end()))
            .collect()
    }

    #[test]
    fn default_plan_uses_spec_addresses() {
        let (_, plan) = plan_for(&identity_kernel(), &BootConfig::default());
        assert_eq!(plan.page_tables.pml4(), 0x1000);
        assert_eq!(plan.page_tables.heap, None);
        assert_eq!(plan.gdt.base, 0xD000);
        assert_eq!(
            plan.ist_stack,
            Placement {
                base: 0xE000,
                size: 0x2000
            }
        );
        assert_eq!(plan.boot_info.base, 0x8_0000);
        assert_eq!(plan.memory_map_base, 0x8_0118);
        assert_eq!(
            plan.stack,
            Placement {
                base: 0x9_0000,
                size: 0x1_0000
            }
        );
        assert_eq!(
            plan.arena,
            Placement {
                base: 0x0100_0000,
                size: 0x0100_0000
            }
        );
        assert_eq!(plan.heap_backing, None);
        assert!(plan.relocations.is_empty());
        assert_eq!(
            types(&plan),
            vec![
                (MEM_RESERVED, 0, 0x1000),
                (MEM_LOADER_DATA, 0x1000, 0xB000),
                (MEM_CONVENTIONAL, 0xB000, 0xD000),
                (MEM_RESERVED, 0xD000, 0xE000),
                (MEM_RESERVED, 0xE000, 0x1_0000),
                (MEM_CONVENTIONAL, 0x1_0000, 0x8_0000),
                (MEM_BOOT_INFO, 0x8_0000, 0x8_1000),
                (MEM_CONVENTIONAL, 0x8_1000, 0x9_0000),
                (MEM_KERNEL_STACK, 0x9_0000, 0xA_0000),
                (MEM_CONVENTIONAL, 0xA_0000, 0x10_0000),
                (MEM_KERNEL_IMAGE, 0x10_0000, 0x10_5000),
                (MEM_CONVENTIONAL, 0x10_5000, 0x0100_0000),
                (MEM_LOADER_DATA, 0x0100_0000, 0x0200_0000),
                (MEM_CONVENTIONAL, 0x0200_0000, 0x2000_0000),
                (MEM_MMIO, 0xC000_0000, 0xC100_0000),
                (MEM_MMIO, 0xFEE0_0000, 0xFEE0_1000),
            ]
        );
    }

    #[test]
    fn heap_option_places_backing_at_default() {
        let config = BootConfig {
            map_heap: true,
            ..BootConfig::default()
        };
        let (_, plan) = plan_for(&identity_kernel(), &config);
        assert_eq!(
            plan.heap_backing,
            Some(Placement {
                base: 0x0200_0000,
                size: 0x0400_0000
            })
        );
        assert_eq!(
            plan.page_tables.heap,
            Some(HeapMapping {
                backing_phys: 0x0200_0000
            })
        );
        assert!(plan.relocations.is_empty());
        assert_eq!(validate(&plan.memory_map, config.ram_size), Ok(()));
    }

    #[test]
    fn higher_half_kernel_moves_low_structures() {
        let config = BootConfig::default();
        let bytes = higher_half_kernel();
        let (kernel, plan) = plan_for(&bytes, &config);
        // Kernel occupies 0..0x233000: everything low moves above it.
        assert_eq!(
            plan.kernel,
            Placement {
                base: 0,
                size: 0x23_3000
            }
        );
        assert_eq!(plan.page_tables.base, 0x23_3000);
        assert_eq!(plan.gdt.base, 0x23_D000);
        assert_eq!(plan.ist_stack.base, 0x23_E000);
        assert_eq!(plan.boot_info.base, 0x24_0000);
        assert_eq!(plan.stack.base, 0x24_1000);
        assert_eq!(plan.arena.base, 0x0100_0000);
        let moved: Vec<(&str, u64, u64)> = plan
            .relocations
            .iter()
            .map(|r| (r.what, r.default, r.actual))
            .collect();
        assert_eq!(
            moved,
            vec![
                ("page tables", 0x1000, 0x23_3000),
                ("GDT and TSS", 0xD000, 0x23_D000),
                ("IST1 stack", 0xE000, 0x23_E000),
                ("boot info and memory map", 0x8_0000, 0x24_0000),
                ("initial stack", 0x9_0000, 0x24_1000),
            ]
        );
        // No low reserved page: the kernel image starts at 0.
        assert_eq!(types(&plan)[0], (MEM_KERNEL_IMAGE, 0, 0x23_3000));

        let mem = create_guest_memory(config.ram_size).unwrap();
        let entry = plan.write(&mem, &kernel, &bytes).unwrap();
        assert_eq!(entry.cr3, 0x23_3000);
        assert_eq!(entry.rdi, 0x24_0000);
        assert_eq!(entry.rsp, 0x25_1000);
        assert_eq!(entry.rip, 0xFFFF_8000_0000_0040);
        assert_eq!(entry.gdt.gdt_base, 0x23_D000);
        assert_eq!(entry.gdt.tss_base, 0x23_D080);
        let mut info = [0u8; 280];
        mem.read_slice(&mut info, GuestAddress(0x24_0000)).unwrap();
        let u64_at = |off: usize| u64::from_le_bytes(info[off..off + 8].try_into().unwrap());
        assert_eq!(u64_at(48), 0x24_0118, "memory_map_base");
        assert_eq!(u64_at(80), 0, "kernel_phys_base");
        assert_eq!(u64_at(88), 0xFFFF_8000_0000_0000, "kernel_virt_base");
        assert_eq!(u64_at(96), 0x23_3000, "kernel_size");
        assert_eq!(u64_at(120), 0x24_1000, "stack_phys");
        assert_eq!(u64_at(152), 0x23_3000, "pml4_phys");
        // The entry point translates through the new tables to the kernel's bytes.
        assert_eq!(translate(&mem, entry.cr3, entry.rip), Ok(0x40));
        let mut code = [0u8; 2];
        read_virt(&mem, entry.cr3, entry.rip, &mut code).unwrap();
        assert_eq!(code, [0x11, 0x11]);
    }

    #[test]
    fn write_then_read_back_for_several_ram_sizes() {
        for (ram_mib, map_heap) in [
            (64, false),
            (96, true),
            (512, false),
            (1026, true),
            (2050, false),
        ] {
            let config = BootConfig {
                ram_size: ram_mib * MIB,
                map_heap,
                ..BootConfig::default()
            };
            let bytes = identity_kernel();
            let (kernel, plan) = plan_for(&bytes, &config);
            assert!(
                plan.relocations.is_empty(),
                "{ram_mib} MiB: {:?}",
                plan.relocations
            );
            assert_eq!(
                validate(&plan.memory_map, config.ram_size),
                Ok(()),
                "{ram_mib} MiB"
            );
            let mem = create_guest_memory(config.ram_size).unwrap();
            let entry = plan.write(&mem, &kernel, &bytes).unwrap();
            assert_eq!(
                (entry.rip, entry.rsp, entry.rdi, entry.cr3),
                (0x10_0010, 0xA_0000, 0x8_0000, 0x1000)
            );

            let mut info = [0u8; 280];
            mem.read_slice(&mut info, GuestAddress(0x8_0000)).unwrap();
            assert_eq!(info, plan.boot_info().to_bytes());
            assert_eq!(info[0..8], [0x54, 0x42, 0x48, 0x50, 0x41, 0x52, 0x45, 0x53]);
            let u32_at = |off: usize| u32::from_le_bytes(info[off..off + 4].try_into().unwrap());
            let u64_at = |off: usize| u64::from_le_bytes(info[off..off + 8].try_into().unwrap());
            assert_eq!(u32_at(12), 0x11, "flags FRAMEBUFFER|SERIAL");
            assert_eq!(u64_at(16), 0xC000_0000);
            assert_eq!(u64_at(24), 3 * MIB);
            assert_eq!(
                (u32_at(32), u32_at(36), u32_at(40), u32_at(44)),
                (1024, 768, 4096, 0)
            );
            assert_eq!(u64_at(48), 0x8_0118);
            let count = u32_at(76) as usize;
            assert_eq!(count, plan.memory_map.len());
            assert_eq!(u64_at(56), count as u64 * 40);
            assert_eq!((u64_at(64), u32_at(72)), (40, 1));
            assert_eq!(
                (u64_at(80), u64_at(88), u64_at(96)),
                (0x10_0000, 0x10_0000, 0x5000)
            );
            assert_eq!((u64_at(120), u64_at(128)), (0x9_0000, 0x1_0000));
            assert_eq!(
                (u64_at(136), u64_at(144), u64_at(152)),
                (0x0100_0000, 0x0100_0000, 0x1000)
            );

            // Decode the map from guest memory and validate it.
            let mut raw = vec![0u8; count * 40];
            mem.read_slice(&mut raw, GuestAddress(0x8_0118)).unwrap();
            let decoded: Vec<MemoryDescriptor> = raw
                .chunks_exact(40)
                .map(|c| MemoryDescriptor {
                    memory_type: u32::from_le_bytes(c[0..4].try_into().unwrap()),
                    phys_start: u64::from_le_bytes(c[8..16].try_into().unwrap()),
                    virt_start: u64::from_le_bytes(c[16..24].try_into().unwrap()),
                    page_count: u64::from_le_bytes(c[24..32].try_into().unwrap()),
                    attribute: u64::from_le_bytes(c[32..40].try_into().unwrap()),
                })
                .collect();
            assert_eq!(decoded, plan.memory_map);
            assert_eq!(validate(&decoded, config.ram_size), Ok(()));
            // The boot info is reachable at RDI through the identity map, and the TSS has IST1.
            let mut magic = [0u8; 8];
            read_virt(&mem, entry.cr3, entry.rdi, &mut magic).unwrap();
            assert_eq!(u64::from_le_bytes(magic), MAGIC);
            let ist1: u64 = mem.read_obj(GuestAddress(entry.gdt.tss_base + 36)).unwrap();
            assert_eq!(ist1, 0x1_0000);
            // Last RAM page reachable through the physical map.
            let top = 0xFFFF_8000_0000_0000 + config.ram_size - 8;
            assert_eq!(translate(&mem, entry.cr3, top), Ok(config.ram_size - 8));
        }
    }

    #[test]
    fn big_kernel_pushes_arena_or_fails_with_advice() {
        // Kernel bss covers the default arena: the arena moves above it.
        let bytes = build(0x10_0000, &[load(0x10_0000, 0, 0x10, 0x0180_0000, 5)]);
        let (_, plan) = plan_for(
            &bytes,
            &BootConfig {
                ram_size: 64 * MIB,
                ..BootConfig::default()
            },
        );
        assert_eq!(plan.arena.base, 0x01A0_0000);
        assert_eq!(
            plan.relocations,
            vec![Relocation {
                what: "primordial arena",
                default: 0x0100_0000,
                actual: 0x01A0_0000
            }]
        );

        // Kernel fills most of RAM: no room for the arena.
        let bytes = build(0x10_0000, &[load(0x10_0000, 0, 0x10, 0x0380_0000, 5)]);
        let config = BootConfig {
            ram_size: 64 * MIB,
            ..BootConfig::default()
        };
        let kernel = KernelImage::parse(&bytes, config.ram_size).unwrap();
        let err = BootPlan::new(&kernel, &config).unwrap_err();
        assert!(
            matches!(
                err,
                PlanError::NoRoom {
                    what: "primordial arena",
                    needed_mib: 76,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("raise --memory to at least 76 MiB")
        );

        // The heap option does not fit in 64 MiB.
        let config = BootConfig {
            ram_size: 64 * MIB,
            map_heap: true,
            ..BootConfig::default()
        };
        let kernel = KernelImage::parse(&identity_kernel(), config.ram_size).unwrap();
        assert!(matches!(
            BootPlan::new(&kernel, &config),
            Err(PlanError::NoRoom {
                what: "heap backing",
                ..
            })
        ));
    }

    #[test]
    fn config_errors_and_kernel_mismatch() {
        let kernel = KernelImage::parse(&identity_kernel(), DEFAULT_RAM).unwrap();
        for fb in [
            FramebufferConfig {
                width: 0,
                ..FramebufferConfig::default()
            },
            FramebufferConfig {
                stride: 4095,
                ..FramebufferConfig::default()
            },
            FramebufferConfig {
                width: 4096,
                height: 4096,
                stride: 16384,
                format: 0,
            },
            FramebufferConfig {
                format: 4,
                ..FramebufferConfig::default()
            },
        ] {
            let config = BootConfig {
                framebuffer: fb,
                ..BootConfig::default()
            };
            assert!(
                matches!(
                    BootPlan::new(&kernel, &config),
                    Err(PlanError::Framebuffer(_))
                ),
                "{fb:?}"
            );
        }
        let config = BootConfig {
            ram_size: 100 * MIB + 1,
            ..BootConfig::default()
        };
        assert!(matches!(
            BootPlan::new(&kernel, &config),
            Err(PlanError::Memory(MemoryError::RamSizeNotAligned { .. }))
        ));
        // A kernel parsed for more RAM than the plan's.
        let big = KernelImage::parse(
            &build(0x0500_0000, &[load(0x0500_0000, 0, 0, 0x10, 5)]),
            DEFAULT_RAM,
        )
        .unwrap();
        let small = BootConfig {
            ram_size: 64 * MIB,
            ..BootConfig::default()
        };
        assert!(matches!(
            BootPlan::new(&big, &small),
            Err(PlanError::Memory(MemoryError::OutOfRam { .. }))
        ));

        let plan = BootPlan::new(&kernel, &BootConfig::default()).unwrap();
        let other_bytes = higher_half_kernel();
        let other = KernelImage::parse(&other_bytes, DEFAULT_RAM).unwrap();
        let mem = create_guest_memory(DEFAULT_RAM).unwrap();
        assert!(matches!(
            plan.write(&mem, &other, &other_bytes),
            Err(PlanError::KernelMismatch)
        ));
    }
}
