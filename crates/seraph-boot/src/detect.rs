//! Which boot protocol a kernel image speaks.
//!
//! - **Seraph**: an ELF64 x86-64 executable [`KernelImage::parse`] accepts
//!   (64-bit entry, Seraph boot info in RDI).
//! - **PVH**: an ELF (32- or 64-bit class) with a `XEN_ELFNOTE_PHYS32_ENTRY`
//!   (18) note, name `"Xen"`, in a PT_NOTE segment: a 32-bit entry with
//!   paging off and EBX = `hvm_start_info`.
//! - **Linux**: a bzImage, recognised by the `"HdrS"` setup-header magic at
//!   offset 0x202.
//!
//! An ELF that is both (a PVH note and a loadable 64-bit entry) boots as
//! Seraph unless PVH is forced, except when its ELF entry *is* the PVH entry
//! (the entry is then 32-bit code, as in QEMU-only PVH images such as the
//! bench guest): that image boots as PVH.

use crate::bytes::{u16_at, u32_at, u64_at};
use crate::elf::KernelImage;
use crate::error::ElfError;
use crate::protocol_error::{DetectError, PvhError};

/// `XEN_ELFNOTE_PHYS32_ENTRY`.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Offset of the setup header's `"HdrS"` magic in a bzImage.
pub const HDRS_OFFSET: usize = 0x202;
/// The `"HdrS"` magic as a little-endian u32.
pub const HDRS_MAGIC: u32 = 0x5372_6448;

/// A boot protocol (`--boot seraph|pvh|linux`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootProtocol {
    /// The Seraph boot protocol: 64-bit entry, `Seraph_BootInfo` in RDI.
    Seraph,
    /// Xen PVH: 32-bit entry, paging off, `hvm_start_info` in EBX.
    Pvh,
    /// The Linux x86 boot protocol (bzImage, zero page in RSI/ESI).
    Linux,
}

impl BootProtocol {
    /// The name `--boot` takes.
    pub fn name(self) -> &'static str {
        match self {
            BootProtocol::Seraph => "seraph",
            BootProtocol::Pvh => "pvh",
            BootProtocol::Linux => "linux",
        }
    }

    /// Parses a `--boot` value.
    pub fn from_name(name: &str) -> Option<BootProtocol> {
        match name {
            "seraph" => Some(BootProtocol::Seraph),
            "pvh" => Some(BootProtocol::Pvh),
            "linux" => Some(BootProtocol::Linux),
            _ => None,
        }
    }
}

impl std::fmt::Display for BootProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// ELF class of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

/// What an image offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The protocol it boots with when none is forced.
    pub protocol: BootProtocol,
    /// The PVH entry from its note, if it has one.
    pub pvh_entry: Option<u32>,
    /// Whether the Seraph ELF loader accepts it (and why not).
    pub seraph: Result<(), ElfError>,
    /// It has the bzImage `"HdrS"` magic.
    pub bzimage: bool,
    /// ELF class, for ELF images.
    pub elf_class: Option<ElfClass>,
}

impl std::fmt::Display for Detection {
    /// One line for `--debug` and reports, e.g. `ELF64, Seraph entry, PVH
    /// entry 0x100029: boots as seraph`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.elf_class {
            Some(ElfClass::Elf32) => f.write_str("ELF32")?,
            Some(ElfClass::Elf64) => f.write_str("ELF64")?,
            None if self.bzimage => f.write_str("bzImage")?,
            None => f.write_str("image")?,
        }
        if self.seraph.is_ok() {
            f.write_str(", Seraph entry")?;
        }
        if let Some(entry) = self.pvh_entry {
            write!(f, ", PVH entry {entry:#x}")?;
        }
        write!(f, ": boots as {}", self.protocol)
    }
}

/// True if `bytes` starts with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x7F, b'E', b'L', b'F'])
}

/// True if `bytes` has the bzImage `"HdrS"` magic at 0x202.
pub fn is_bzimage(bytes: &[u8]) -> bool {
    u32_at(bytes, HDRS_OFFSET) == Some(HDRS_MAGIC)
}

/// One ELF program header, class-independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// Index in the table.
    pub index: usize,
    /// p_type.
    pub p_type: u32,
    /// p_flags.
    pub flags: u32,
    /// p_offset.
    pub offset: u64,
    /// p_vaddr.
    pub vaddr: u64,
    /// p_paddr.
    pub paddr: u64,
    /// p_filesz.
    pub filesz: u64,
    /// p_memsz.
    pub memsz: u64,
}

/// The parts of an ELF header PVH loading needs, for either class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfHeaders {
    /// Class.
    pub class: ElfClass,
    /// e_machine.
    pub machine: u16,
    /// e_type.
    pub e_type: u16,
    /// e_entry.
    pub entry: u64,
    /// Program headers.
    pub phdrs: Vec<ProgramHeader>,
}

/// PT_NOTE.
pub const PT_NOTE: u32 = 4;
/// PT_LOAD.
pub const PT_LOAD: u32 = 1;
/// EM_386.
pub const EM_386: u16 = 3;
/// EM_X86_64.
pub const EM_X86_64: u16 = 62;

/// Parses an ELF header and program-header table of either class, trusting
/// nothing: every offset and size is checked against the file.
pub fn parse_elf_headers(bytes: &[u8]) -> Result<ElfHeaders, PvhError> {
    if !is_elf(bytes) {
        return Err(PvhError::NotElf);
    }
    let class = match bytes.get(4) {
        Some(1) => ElfClass::Elf32,
        Some(2) => ElfClass::Elf64,
        other => return Err(PvhError::BadClass(other.copied().unwrap_or(0))),
    };
    if bytes.get(5) != Some(&1) {
        return Err(PvhError::NotLittleEndian);
    }
    let header = read_elf_header(bytes, class).ok_or(PvhError::Truncated { len: bytes.len() })?;
    if header.phentsize != phdr_size(class) {
        return Err(PvhError::BadPhentsize(header.phentsize));
    }
    let phdrs = read_program_headers(bytes, class, header.phoff, header.phnum).ok_or(
        PvhError::PhdrsOutOfFile {
            phoff: header.phoff,
            count: header.phnum,
            len: bytes.len(),
        },
    )?;
    Ok(ElfHeaders {
        class,
        machine: header.machine,
        e_type: header.e_type,
        entry: header.entry,
        phdrs,
    })
}

/// Size of one program header of `class`.
fn phdr_size(class: ElfClass) -> u16 {
    match class {
        ElfClass::Elf32 => 32,
        ElfClass::Elf64 => 56,
    }
}

/// The ELF header fields both ELF loaders read, unchecked.
pub(crate) struct RawElfHeader {
    /// e_type.
    pub(crate) e_type: u16,
    /// e_machine.
    pub(crate) machine: u16,
    /// e_entry.
    pub(crate) entry: u64,
    /// e_phoff.
    pub(crate) phoff: u64,
    /// e_phentsize.
    pub(crate) phentsize: u16,
    /// e_phnum.
    pub(crate) phnum: u16,
}

/// Reads the header fields of an ELF of `class` (ident already checked by
/// the caller); `None` if the file ends inside them.
pub(crate) fn read_elf_header(bytes: &[u8], class: ElfClass) -> Option<RawElfHeader> {
    let (entry, phoff, phentsize, phnum) = match class {
        ElfClass::Elf32 => (
            u64::from(u32_at(bytes, 24)?),
            u64::from(u32_at(bytes, 28)?),
            u16_at(bytes, 42)?,
            u16_at(bytes, 44)?,
        ),
        ElfClass::Elf64 => (
            u64_at(bytes, 24)?,
            u64_at(bytes, 32)?,
            u16_at(bytes, 54)?,
            u16_at(bytes, 56)?,
        ),
    };
    Some(RawElfHeader {
        e_type: u16_at(bytes, 16)?,
        machine: u16_at(bytes, 18)?,
        entry,
        phoff,
        phentsize,
        phnum,
    })
}

/// The `phnum` program headers of an ELF of `class` at `phoff` (entries
/// of the class's standard size); `None` if the table is not inside the
/// file.
pub(crate) fn read_program_headers(
    bytes: &[u8],
    class: ElfClass,
    phoff: u64,
    phnum: u16,
) -> Option<Vec<ProgramHeader>> {
    let size = phdr_size(class);
    let end = phoff
        .checked_add(u64::from(phnum) * u64::from(size))
        .filter(|end| *end <= bytes.len() as u64)?;
    let table = bytes.get(usize::try_from(phoff).ok()?..usize::try_from(end).ok()?)?;
    let phdrs = table
        .chunks_exact(usize::from(size))
        .enumerate()
        .map(|(index, ph)| {
            let field = |off32: usize, off64: usize| -> u64 {
                match class {
                    ElfClass::Elf32 => u32_at(ph, off32).map_or(0, u64::from),
                    ElfClass::Elf64 => u64_at(ph, off64).unwrap_or(0),
                }
            };
            ProgramHeader {
                index,
                p_type: u32_at(ph, 0).unwrap_or(0),
                flags: match class {
                    ElfClass::Elf32 => u32_at(ph, 24).unwrap_or(0),
                    ElfClass::Elf64 => u32_at(ph, 4).unwrap_or(0),
                },
                offset: field(4, 8),
                vaddr: field(8, 16),
                paddr: field(12, 24),
                filesz: field(16, 32),
                memsz: field(20, 40),
            }
        })
        .collect();
    Some(phdrs)
}

/// Finds the PVH entry in the PT_NOTE segments: the first note of type
/// `XEN_ELFNOTE_PHYS32_ENTRY` named `"Xen"`. `Ok(None)` if there is none;
/// a malformed note segment or PVH note is an error.
pub fn find_pvh_entry(bytes: &[u8], headers: &ElfHeaders) -> Result<Option<u32>, PvhError> {
    for ph in headers.phdrs.iter().filter(|p| p.p_type == PT_NOTE) {
        let notes = ph
            .offset
            .checked_add(ph.filesz)
            .filter(|end| *end <= bytes.len() as u64)
            .and_then(|end| bytes.get(usize::try_from(ph.offset).ok()?..usize::try_from(end).ok()?))
            .ok_or(PvhError::NoteOutOfFile {
                index: ph.index,
                offset: ph.offset,
                size: ph.filesz,
                len: bytes.len(),
            })?;
        let mut at = 0usize;
        while at < notes.len() {
            let bad = |problem: &'static str| PvhError::MalformedNote {
                index: ph.index,
                offset: at,
                problem,
            };
            let (Some(namesz), Some(descsz), Some(n_type)) = (
                u32_at(notes, at),
                u32_at(notes, at + 4),
                u32_at(notes, at + 8),
            ) else {
                return Err(bad("note header runs past the end of the segment"));
            };
            let name_at = at + 12;
            let name_len = usize::try_from(namesz)
                .ok()
                .and_then(|n| n.checked_add(3))
                .map(|n| n & !3)
                .ok_or_else(|| bad("name size overflows"))?;
            let desc_at = name_at
                .checked_add(name_len)
                .ok_or_else(|| bad("name size overflows"))?;
            let desc_len = usize::try_from(descsz)
                .ok()
                .and_then(|n| n.checked_add(3))
                .map(|n| n & !3)
                .ok_or_else(|| bad("descriptor size overflows"))?;
            let next = desc_at
                .checked_add(desc_len)
                .ok_or_else(|| bad("descriptor size overflows"))?;
            if next > notes.len() {
                return Err(bad("name or descriptor runs past the end of the segment"));
            }
            let name = notes.get(name_at..name_at + namesz as usize).unwrap_or(&[]);
            if n_type == XEN_ELFNOTE_PHYS32_ENTRY && name == b"Xen\0" {
                let desc = notes.get(desc_at..desc_at + descsz as usize).unwrap_or(&[]);
                return match desc.len() {
                    4 => Ok(u32_at(desc, 0)),
                    8 => match u64_at(desc, 0).map(u32::try_from) {
                        Some(Ok(entry)) => Ok(Some(entry)),
                        _ => Err(PvhError::EntryAbove4G(u64_at(desc, 0).unwrap_or(0))),
                    },
                    len => Err(PvhError::BadEntryNoteSize(len)),
                };
            }
            at = next;
        }
    }
    Ok(None)
}

/// Works out what `bytes` is and how it boots by default. `ram_size` is the
/// guest RAM the Seraph loader checks against.
pub fn detect(bytes: &[u8], ram_size: u64) -> Result<Detection, DetectError> {
    if is_elf(bytes) {
        let seraph = KernelImage::parse(bytes, ram_size).map(|_| ());
        let headers = parse_elf_headers(bytes);
        let elf_class = headers.as_ref().ok().map(|h| h.class);
        let pvh_entry = match &headers {
            Ok(h) => find_pvh_entry(bytes, h),
            Err(e) => Err(e.clone()),
        };
        let protocol = match (&seraph, &pvh_entry) {
            (Ok(()), Ok(Some(pvh))) => {
                let elf_entry = headers.as_ref().map_or(0, |h| h.entry);
                if elf_entry == u64::from(*pvh) {
                    BootProtocol::Pvh
                } else {
                    BootProtocol::Seraph
                }
            }
            (Ok(()), _) => BootProtocol::Seraph,
            (Err(_), Ok(Some(_))) => BootProtocol::Pvh,
            (Err(_), Err(pvh)) if headers.is_ok() => {
                return Err(DetectError::Pvh(pvh.clone()));
            }
            (Err(seraph), _) => return Err(DetectError::Elf(seraph.clone())),
        };
        return Ok(Detection {
            protocol,
            pvh_entry: pvh_entry.ok().flatten(),
            seraph,
            bzimage: false,
            elf_class,
        });
    }
    if is_bzimage(bytes) {
        return Ok(Detection {
            protocol: BootProtocol::Linux,
            pvh_entry: None,
            seraph: Err(ElfError::NotElf),
            bzimage: true,
            elf_class: None,
        });
    }
    Err(DetectError::Unknown { len: bytes.len() })
}

/// The protocol to boot `bytes` with: `force` if given and supported, else
/// the detected default. A forced protocol the image lacks is an error
/// that says why.
pub fn choose_protocol(
    bytes: &[u8],
    ram_size: u64,
    force: Option<BootProtocol>,
) -> Result<(BootProtocol, Detection), DetectError> {
    let detection = match (detect(bytes, ram_size), force) {
        (Ok(d), _) => d,
        (Err(e), None) => return Err(e),
        (Err(DetectError::Unknown { .. }), Some(forced)) => {
            return Err(DetectError::NotSupported {
                protocol: forced,
                reason: "the image is neither an ELF file nor a bzImage".into(),
            });
        }
        (Err(e), Some(_)) => return Err(e),
    };
    let Some(forced) = force else {
        return Ok((detection.protocol, detection));
    };
    let refuse = |reason: String| DetectError::NotSupported {
        protocol: forced,
        reason,
    };
    match forced {
        BootProtocol::Seraph => {
            if let Err(e) = &detection.seraph {
                return Err(refuse(e.to_string()));
            }
        }
        BootProtocol::Pvh => {
            if detection.pvh_entry.is_none() {
                return Err(refuse(if detection.bzimage {
                    "a bzImage has no PVH entry note".into()
                } else {
                    "the ELF has no XEN_ELFNOTE_PHYS32_ENTRY note".into()
                }));
            }
        }
        BootProtocol::Linux => {
            if !detection.bzimage {
                return Err(refuse(
                    "the image is not a bzImage (no \"HdrS\" setup header at 0x202)".into(),
                ));
            }
        }
    }
    Ok((forced, detection))
}
