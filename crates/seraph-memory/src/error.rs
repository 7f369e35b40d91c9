//! Errors of this crate.

/// Errors from creating guest memory or writing boot structures into it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemoryError {
    /// The RAM size is not a whole number of 2 MiB pages.
    #[error(
        "RAM size {ram_size:#x} is not a multiple of 2 MiB: round --memory to a multiple of 2 MiB (e.g. {suggested} MiB)"
    )]
    RamSizeNotAligned {
        /// The requested size in bytes.
        ram_size: u64,
        /// The next multiple of 2 MiB, in MiB.
        suggested: u64,
    },
    /// The RAM size is below the minimum that fits the default layout.
    #[error("RAM size {ram_size:#x} is too small: at least {min:#x} bytes ({} MiB) are needed", min >> 20)]
    RamTooSmall {
        /// The requested size in bytes.
        ram_size: u64,
        /// The minimum size in bytes.
        min: u64,
    },
    /// The RAM size reaches into the framebuffer window.
    #[error(
        "RAM size {ram_size:#x} is too large: RAM must end at or below the framebuffer window at {max:#x} ({} MiB)", max >> 20
    )]
    RamTooLarge {
        /// The requested size in bytes.
        ram_size: u64,
        /// The maximum size in bytes.
        max: u64,
    },
    /// The host could not map the guest memory.
    #[error("cannot allocate guest memory: {0}")]
    Mmap(String),
    /// A structure's address is not aligned as it must be.
    #[error("{what} at {addr:#x} is not aligned to {align:#x}")]
    Misaligned {
        /// Which structure.
        what: &'static str,
        /// Its address.
        addr: u64,
        /// The required alignment.
        align: u64,
    },
    /// A structure does not fit in guest RAM (or its address arithmetic overflows).
    #[error(
        "{what} at {addr:#x} ({len:#x} bytes) does not fit in guest RAM of {ram_size:#x} bytes"
    )]
    OutOfRam {
        /// Which structure.
        what: &'static str,
        /// Its address.
        addr: u64,
        /// Its size in bytes.
        len: u64,
        /// The RAM size.
        ram_size: u64,
    },
    /// Two structures passed together overlap.
    #[error("{what} overlap: {a:#x} and {b:#x}")]
    Overlap {
        /// Which structures.
        what: &'static str,
        /// The first address.
        a: u64,
        /// The second address.
        b: u64,
    },
    /// Writing to guest memory failed.
    #[error("cannot write {len:#x} bytes of {what} at guest address {addr:#x}: {reason}")]
    GuestWrite {
        /// Which structure.
        what: &'static str,
        /// The guest-physical address.
        addr: u64,
        /// The length of the write.
        len: u64,
        /// vm-memory's explanation.
        reason: String,
    },
}

/// Why a guest-virtual address could not be translated or read.
///
/// Every variant is a guest fault (bad pointer, broken page tables): the VMM
/// reports it to the guest or the user and carries on.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum WalkError {
    /// Bits 63:47 of the address are not all equal.
    #[error("virtual address {virt:#x} is not canonical")]
    NonCanonical {
        /// The address.
        virt: u64,
    },
    /// An entry on the walk has its present bit clear.
    #[error("virtual address {virt:#x} is not mapped (level-{level} entry not present)")]
    NotPresent {
        /// The address.
        virt: u64,
        /// Paging level of the entry: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT.
        level: u8,
    },
    /// A PML4 entry has the page-size bit set (reserved on x86_64).
    #[error("virtual address {virt:#x}: PML4 entry has the reserved page-size bit set")]
    ReservedBit {
        /// The address.
        virt: u64,
    },
    /// A page-table entry lies outside guest memory.
    #[error(
        "virtual address {virt:#x}: level-{level} table entry at {entry_addr:#x} is outside guest memory"
    )]
    TableOutsideMemory {
        /// The address being translated.
        virt: u64,
        /// Paging level of the table.
        level: u8,
        /// Guest-physical address of the entry.
        entry_addr: u64,
    },
    /// The translated physical address is outside guest memory (e.g. MMIO).
    #[error("virtual address {virt:#x} maps to {phys:#x}, which is not guest memory")]
    PhysOutsideMemory {
        /// The virtual address.
        virt: u64,
        /// The physical address it maps to.
        phys: u64,
    },
    /// `virt + len` overflows the address space.
    #[error("range {virt:#x}+{len:#x} wraps around the address space")]
    Overflow {
        /// Start of the range.
        virt: u64,
        /// Its length.
        len: u64,
    },
}
