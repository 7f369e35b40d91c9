//! Errors of kernel detection and of the PVH and Linux boot protocols, and
//! [`LoadError`], what [`crate::load_kernel`] returns. Every message is one
//! line; docs/boot-protocol.md lists them.

use seraph_memory::MemoryError;

use crate::detect::BootProtocol;
use crate::error::{ElfError, PlanError};

/// Why an image's kind could not be determined, or a forced protocol does
/// not fit it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DetectError {
    /// An ELF that the Seraph loader refuses and that has no PVH note.
    #[error(transparent)]
    Elf(ElfError),
    /// An ELF whose headers or notes are malformed and that is not a Seraph kernel.
    #[error(transparent)]
    Pvh(PvhError),
    /// Neither an ELF nor a bzImage.
    #[error(
        "kernel file ({len} bytes) is not a kernel: no ELF magic and no bzImage \"HdrS\" header at 0x202"
    )]
    Unknown {
        /// File length.
        len: usize,
    },
    /// `--boot` asked for a protocol the image does not support.
    #[error("cannot boot this image with --boot {protocol}: {reason}")]
    NotSupported {
        /// The forced protocol.
        protocol: BootProtocol,
        /// Why not.
        reason: String,
    },
}

/// A PVH ELF that cannot be loaded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PvhError {
    /// No ELF magic.
    #[error("PVH kernel is not an ELF file (bad magic)")]
    NotElf,
    /// EI_CLASS neither 1 nor 2.
    #[error("PVH kernel has an unknown ELF class {0} (1 = 32-bit, 2 = 64-bit)")]
    BadClass(u8),
    /// EI_DATA not little-endian.
    #[error("PVH kernel ELF is not little-endian")]
    NotLittleEndian,
    /// Shorter than its ELF header.
    #[error("PVH kernel ELF is truncated: {len} bytes, shorter than its ELF header")]
    Truncated {
        /// File length.
        len: usize,
    },
    /// e_machine is neither EM_386 nor EM_X86_64.
    #[error("PVH kernel ELF is for machine {0}, not x86 (3) or x86-64 (62)")]
    WrongMachine(u16),
    /// e_phentsize does not match the class.
    #[error("PVH kernel ELF has a bogus e_phentsize {0}")]
    BadPhentsize(u16),
    /// The program-header table is outside the file.
    #[error(
        "PVH kernel program header table at {phoff:#x} ({count} entries) runs past the end of the {len}-byte file"
    )]
    PhdrsOutOfFile {
        /// e_phoff.
        phoff: u64,
        /// e_phnum.
        count: u16,
        /// File length.
        len: usize,
    },
    /// A PT_NOTE segment is outside the file.
    #[error(
        "PT_NOTE segment {index} at {offset:#x}+{size:#x} runs past the end of the {len}-byte file"
    )]
    NoteOutOfFile {
        /// Program header index.
        index: usize,
        /// p_offset.
        offset: u64,
        /// p_filesz.
        size: u64,
        /// File length.
        len: usize,
    },
    /// A note inside a PT_NOTE segment is malformed.
    #[error("malformed ELF note in PT_NOTE segment {index} at offset {offset:#x}: {problem}")]
    MalformedNote {
        /// Program header index.
        index: usize,
        /// Offset inside the segment.
        offset: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// The PHYS32_ENTRY descriptor is not 4 or 8 bytes.
    #[error("XEN_ELFNOTE_PHYS32_ENTRY note has a {0}-byte descriptor (4 or 8 expected)")]
    BadEntryNoteSize(usize),
    /// An 8-byte PHYS32_ENTRY above 4 GiB.
    #[error("XEN_ELFNOTE_PHYS32_ENTRY {0:#x} is above 4 GiB: a 32-bit entry cannot reach it")]
    EntryAbove4G(u64),
    /// No PHYS32_ENTRY note.
    #[error("the ELF has no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH kernel")]
    NoEntryNote,
    /// No loadable segment.
    #[error("PVH kernel has no PT_LOAD segment with a nonzero size")]
    NoLoadSegments,
    /// p_filesz > p_memsz.
    #[error("PVH segment {index}: p_filesz {filesz:#x} exceeds p_memsz {memsz:#x}")]
    FileSizeExceedsMemSize {
        /// Program header index.
        index: usize,
        /// p_filesz.
        filesz: u64,
        /// p_memsz.
        memsz: u64,
    },
    /// File bytes outside the file.
    #[error(
        "PVH segment {index}: file range {offset:#x}+{filesz:#x} runs past the end of the {len}-byte file"
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
    /// A segment (by p_paddr) outside [1 MiB, end of RAM).
    #[error(
        "PVH segment {index}: physical range {phys:#x}-{end:#x} is not inside RAM above 1 MiB (RAM is {ram_size:#x} bytes): the kernel does not fit"
    )]
    SegmentNotInRam {
        /// Program header index.
        index: usize,
        /// p_paddr.
        phys: u64,
        /// End (exclusive), saturated.
        end: u64,
        /// RAM size.
        ram_size: u64,
    },
    /// Two segments overlap.
    #[error("PVH segments {a} and {b} overlap in physical memory")]
    OverlappingSegments {
        /// First index.
        a: usize,
        /// Second index.
        b: usize,
    },
    /// The entry is not inside a loaded segment.
    #[error("PVH entry {entry:#x} is not inside a loaded segment")]
    EntryNotLoaded {
        /// The note's entry.
        entry: u32,
    },
}

/// A bzImage that cannot be booted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LinuxError {
    /// Too short to hold the setup header.
    #[error("bzImage is truncated: {len} bytes, the setup header needs {need}")]
    Truncated {
        /// File length.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// No "HdrS".
    #[error("bzImage has a bad setup header magic {0:#010x} (\"HdrS\" = 0x53726448 expected)")]
    BadMagic(u32),
    /// boot_flag is not 0xAA55.
    #[error("bzImage has a bad boot_flag {0:#06x} (0xaa55 expected)")]
    BadBootFlag(u16),
    /// Boot protocol older than 2.06.
    #[error(
        "bzImage boot protocol version {major}.{minor:02} is too old: 2.06 or newer is required"
    )]
    VersionTooOld {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The setup sectors do not fit in the file.
    #[error(
        "bzImage setup_sects {setup_sects}: the setup code ({setup_size} bytes) runs past the end of the {len}-byte file"
    )]
    SetupPastEnd {
        /// setup_sects.
        setup_sects: u8,
        /// (setup_sects + 1) * 512.
        setup_size: usize,
        /// File length.
        len: usize,
    },
    /// LOADED_HIGH is clear.
    #[error("not a bzImage: loadflags bit 0 (LOADED_HIGH) is clear (a zImage loads below 1 MiB)")]
    NotLoadedHigh,
    /// No protected-mode kernel after the setup code.
    #[error("bzImage has no protected-mode kernel after its {setup_size}-byte setup code")]
    NoPayload {
        /// Setup size.
        setup_size: usize,
    },
    /// The kernel does not fit in RAM at its load address.
    #[error(
        "bzImage kernel needs {size:#x} bytes at {load:#x}, RAM is {ram_size:#x} bytes: the kernel does not fit (raise --memory)"
    )]
    KernelDoesNotFit {
        /// Load address.
        load: u64,
        /// Bytes needed (the larger of the payload and init_size).
        size: u64,
        /// RAM size.
        ram_size: u64,
    },
    /// Load address below 1 MiB.
    #[error("bzImage code32_start {0:#x} is below 1 MiB")]
    LoadBelow1M(u32),
}

/// Why [`crate::load_kernel`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Detection or `--boot` mismatch.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// A PVH image problem.
    #[error(transparent)]
    Pvh(#[from] PvhError),
    /// A bzImage problem.
    #[error(transparent)]
    Linux(#[from] LinuxError),
    /// The Seraph plan failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A guest-memory write or layout problem.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// linux-loader refused the image.
    #[error("linux-loader could not load the kernel: {0}")]
    Loader(#[source] linux_loader::loader::Error),
    /// linux-loader could not write the start info or boot params.
    #[error("linux-loader could not write the boot parameters: {0}")]
    Configurator(#[source] linux_loader::configurator::Error),
    /// The command line is too long or has a NUL.
    #[error("command line ({len} bytes) is too long (at most {max}) or contains a NUL byte")]
    Cmdline {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The initrd does not fit.
    #[error(
        "initrd ({size:#x} bytes) does not fit in RAM between the kernel end {kernel_end:#x} and {limit:#x}"
    )]
    InitrdDoesNotFit {
        /// Initrd size.
        size: u64,
        /// End of the kernel.
        kernel_end: u64,
        /// Highest address it may end at.
        limit: u64,
    },
    /// A command line or initrd with the Seraph protocol, which has no place for them.
    #[error("the Seraph boot protocol has no {0}: use --boot pvh or --boot linux")]
    SeraphHasNo(&'static str),
}
