//! The memory types the boot plan reports for its own structures.
//!
//! The rule (docs/boot-protocol.md, "Memory types"): everything the kernel
//! keeps using after boot gets a type no kernel may reuse, wherever it sits
//! (below or above 1 MiB, default place or relocated):
//!
//! | structure | type |
//! |---|---|
//! | kernel image | 0x8000_0000 (kernel image) |
//! | initial stack | 0x8000_0001 (kernel stack) |
//! | boot info + memory map | 0x8000_0002 (boot info) |
//! | page tables (CR3 stays on them) | 0 reserved |
//! | GDT + TSS, IST1 stack | 0 reserved |
//! | heap backing (mapped by the boot page tables, `--map-heap`) | 0 reserved |
//! | page 0 (unless the kernel occupies it) | 0 reserved |
//! | primordial arena | 2 loader data: the kernel may reclaim it (Seraph OS reserves it itself) |
//!
//! Loader code (1), loader data (2), boot services (3) and conventional
//! memory (7) are what Seraph OS's allocator frees, so none of the
//! structures above may carry them.

use crate::boot_info::{
    MEM_BOOT_INFO, MEM_KERNEL_IMAGE, MEM_KERNEL_STACK, MEM_LOADER_DATA, MEM_RESERVED,
};
use crate::memory_map::Claim;
use crate::placement::Placement;

/// Where the plan put each structure.
pub(crate) struct Placed {
    /// The kernel's pages.
    pub kernel: Placement,
    /// The page tables.
    pub tables: Placement,
    /// The GDT+TSS page.
    pub gdt: Placement,
    /// The IST1 stack.
    pub ist_stack: Placement,
    /// The boot info page.
    pub boot_info: Placement,
    /// The initial stack.
    pub stack: Placement,
    /// The primordial arena.
    pub arena: Placement,
    /// Page 0, unless the kernel covers it.
    pub low_reserved: Option<Placement>,
    /// The heap backing, with `--map-heap`.
    pub heap: Option<Placement>,
}

/// Memory types that a kernel's allocator may take as free (Seraph OS
/// frees exactly these): none of the boot structures it keeps using may
/// carry one.
pub const RECLAIMABLE_TYPES: [u32; 4] = [1, 2, 3, 7];

/// The claims for the memory map, typed by the rule above.
pub(crate) fn boot_claims(p: &Placed) -> Vec<Claim> {
    let claim = |what, at: Placement, memory_type| Claim {
        what,
        start: at.base,
        end: at.end(),
        memory_type,
    };
    let mut claims = vec![
        claim("kernel image", p.kernel, MEM_KERNEL_IMAGE),
        claim("page tables", p.tables, MEM_RESERVED),
        claim("GDT and TSS", p.gdt, MEM_RESERVED),
        claim("IST1 stack", p.ist_stack, MEM_RESERVED),
        claim("boot info", p.boot_info, MEM_BOOT_INFO),
        claim("initial stack", p.stack, MEM_KERNEL_STACK),
        claim("primordial arena", p.arena, MEM_LOADER_DATA),
    ];
    if let Some(low) = p.low_reserved {
        claims.push(claim("low reserved page", low, MEM_RESERVED));
    }
    if let Some(heap) = p.heap {
        claims.push(claim("heap backing", heap, MEM_RESERVED));
    }
    claims
}
