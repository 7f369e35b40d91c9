//! Errors: [`ElfError`] for kernel files, [`MapError`] for memory maps,
//! [`PlanError`] for placing and writing the boot structures.

use seraph_memory::MemoryError;

/// Why a kernel ELF file was refused or could not be loaded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    /// The file is shorter than the 64-byte ELF header.
    #[error("kernel file is empty or truncated: {len} bytes, an ELF64 header needs 64")]
    Truncated {
        /// File length.
        len: usize,
    },
    /// Wrong magic bytes.
    #[error("kernel file is not an ELF file (bad magic)")]
    NotElf,
    /// EI_CLASS is not ELFCLASS64.
    #[error("kernel is not a 64-bit ELF (EI_CLASS = {0})")]
    Not64Bit(u8),
    /// EI_DATA is not little-endian.
    #[error("kernel ELF is not little-endian (EI_DATA = {0})")]
    NotLittleEndian(u8),
    /// e_machine is not x86_64.
    #[error("kernel ELF is for machine {0}, not x86_64 (62)")]
    WrongMachine(u16),
    /// e_type is not ET_EXEC.
    #[error(
        "kernel ELF type {0} is not supported: only ET_EXEC (2) is loaded; link a fixed-address kernel (no PIE / ET_DYN)"
    )]
    WrongType(u16),
    /// e_phentsize is not 56.
    #[error("bogus e_phentsize {0} (an ELF64 program header is 56 bytes)")]
    BadPhentsize(u16),
    /// e_phnum is zero or PN_XNUM.
    #[error("bogus e_phnum {0}")]
    BadPhnum(u16),
    /// The program header table lies outside the file.
    #[error(
        "program header table at {phoff:#x} ({count} entries) runs past the end of the {len}-byte file"
    )]
    PhdrsOutOfFile {
        /// e_phoff.
        phoff: u64,
        /// e_phnum.
        count: u16,
        /// File length.
        len: usize,
    },
    /// No PT_LOAD segment with a nonzero size.
    #[error("kernel ELF has no PT_LOAD segment")]
    NoLoadSegments,
    /// p_filesz > p_memsz.
    #[error("segment {index}: p_filesz {filesz:#x} exceeds p_memsz {memsz:#x}")]
    FileSizeExceedsMemSize {
        /// Program header index.
        index: usize,
        /// p_filesz.
        filesz: u64,
        /// p_memsz.
        memsz: u64,
    },
    /// p_offset + p_filesz is past the end of the file.
    #[error(
        "segment {index}: file range {offset:#x}+{filesz:#x} runs past the end of the {len}-byte file"
    )]
    SegmentOutOfFile {
        /// Program header index.
        index: usize,
        /// p_offset.
        offset: u64,
        /// p_filesz.
        filesz: u64,
        /// File length.
        len: usize,
    },
    /// Address arithmetic overflows.
    #[error("segment {index}: address {vaddr:#x}+{memsz:#x} overflows")]
    AddressOverflow {
        /// Program header index.
        index: usize,
        /// p_vaddr.
        vaddr: u64,
        /// p_memsz.
        memsz: u64,
    },
    /// p_vaddr is neither below 4 GiB (identity map) nor in the physical map.
    #[error(
        "segment {index}: p_vaddr {vaddr:#x} is neither identity-mapped (below 4 GiB) nor in the physical map at 0xFFFF_8000_0000_0000"
    )]
    UnmappedAddress {
        /// Program header index.
        index: usize,
        /// p_vaddr.
        vaddr: u64,
    },
    /// The segment's physical destination overlaps the framebuffer or MMIO.
    #[error(
        "segment {index}: physical range {phys:#x}-{end:#x} overlaps the framebuffer window or MMIO"
    )]
    SegmentInMmio {
        /// Program header index.
        index: usize,
        /// Physical start.
        phys: u64,
        /// Physical end (exclusive).
        end: u64,
    },
    /// The segment's physical destination ends beyond RAM.
    #[error(
        "segment {index}: physical range {phys:#x}-{end:#x} ends beyond RAM ({ram_size:#x} bytes): raise --memory"
    )]
    SegmentNotInRam {
        /// Program header index.
        index: usize,
        /// Physical start.
        phys: u64,
        /// Physical end (exclusive).
        end: u64,
        /// RAM size.
        ram_size: u64,
    },
    /// Two segments share physical memory.
    #[error("segments {a} and {b} overlap in physical memory")]
    OverlappingSegments {
        /// First program header index.
        a: usize,
        /// Second program header index.
        b: usize,
    },
    /// The entry point is not inside an executable loaded segment.
    #[error("entry point {entry:#x} is not inside an executable (PF_X) PT_LOAD segment")]
    BadEntry {
        /// e_entry.
        entry: u64,
    },
    /// `load` was given bytes other than the ones parsed.
    #[error(
        "kernel bytes passed to load() do not match the parsed image (segment {index} out of range)"
    )]
    BytesMismatch {
        /// Program header index.
        index: usize,
    },
    /// Writing a segment to guest memory failed.
    #[error("cannot write segment {index} to guest memory at {phys:#x}: {reason}")]
    GuestWrite {
        /// Program header index.
        index: usize,
        /// Physical address.
        phys: u64,
        /// vm-memory's explanation.
        reason: String,
    },
}

/// Why a memory map could not be built or is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    /// A claim is empty, wraps or ends beyond RAM.
    #[error("claim `{what}` {start:#x}-{end:#x} is empty or outside RAM ({ram_size:#x} bytes)")]
    ClaimOutsideRam {
        /// Claim name.
        what: &'static str,
        /// Start.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// RAM size.
        ram_size: u64,
    },
    /// Two claims overlap after page rounding (a bug in the plan).
    #[error("claims `{a}` and `{b}` overlap (after rounding to 4 KiB pages)")]
    OverlappingClaims {
        /// First claim.
        a: &'static str,
        /// Second claim.
        b: &'static str,
    },
    /// Descriptors are not sorted, overlap or leave a hole in RAM.
    #[error("memory map entry {index} at {phys_start:#x}: {problem}")]
    Invalid {
        /// Descriptor index.
        index: usize,
        /// Its start.
        phys_start: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// The map does not cover all of RAM.
    #[error("memory map covers RAM only up to {covered:#x}, RAM is {ram_size:#x} bytes")]
    RamNotCovered {
        /// End of the contiguous coverage from 0.
        covered: u64,
        /// RAM size.
        ram_size: u64,
    },
    /// The local APIC page is not described.
    #[error("memory map does not describe the local APIC page at 0xFEE0_0000")]
    LapicNotCovered,
}

/// Why a boot plan could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The framebuffer configuration is unusable.
    #[error("bad framebuffer configuration: {0}")]
    Framebuffer(String),
    /// A structure found no free room in RAM.
    #[error(
        "no room for the {what} ({size:#x} bytes): guest RAM of {ram_size:#x} bytes is full; raise --memory to at least {needed_mib} MiB"
    )]
    NoRoom {
        /// Which structure.
        what: &'static str,
        /// Its size.
        size: u64,
        /// RAM size.
        ram_size: u64,
        /// A RAM size (MiB) that would fit everything.
        needed_mib: u64,
    },
    /// The kernel passed to `write` is not the one planned for.
    #[error("the kernel passed to write() is not the one the plan was made for")]
    KernelMismatch,
    /// The memory map is too large for the space reserved after the boot info.
    #[error("memory map has {count} entries, room for {capacity}")]
    MapTooLarge {
        /// Entries.
        count: usize,
        /// Capacity.
        capacity: usize,
    },
    /// A guest-memory problem (RAM size, page tables, GDT, writes).
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Loading the kernel failed.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// Building the memory map failed.
    #[error(transparent)]
    Map(#[from] MapError),
}
