//! A small ELF64 kernel loader that trusts nothing in the file.
//!
//! Every PT_LOAD segment with `p_memsz > 0` is placed by its *virtual*
//! address, never by `p_paddr`:
//! - `p_vaddr >= 0xFFFF_8000_0000_0000` (higher-half kernel): physical =
//!   `p_vaddr - 0xFFFF_8000_0000_0000`, where the physical map finds it;
//! - `p_vaddr < 4 GiB` (identity-linked kernel): physical = `p_vaddr`;
//! - anything else is refused (the boot page tables do not map it).
//!
//! `load` copies `p_filesz` bytes of every segment into fresh (all-zero)
//! guest memory and leaves the bss alone: it is already zero, and writing
//! it would make the host allocate every page of it.
//! `load_zeroing_bss` also zeroes the bss, for memory used before.

use std::ops::Range;

use seraph_memory::layout::{
    FOUR_GIB, FRAMEBUFFER_BASE, FRAMEBUFFER_WINDOW, MMIO_HOLE_BASE, PHYS_MAP_BASE, ranges_overlap,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::detect::{EM_X86_64, ElfClass, PT_LOAD, read_elf_header, read_program_headers};
use crate::error::ElfError;

/// ELF header size.
const EHDR_SIZE: usize = 64;
/// ELF64 program header size.
const PHDR_SIZE: u16 = 56;
/// e_type for executables.
const ET_EXEC: u16 = 2;
/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;
/// Segment flag: readable.
pub const PF_R: u32 = 4;

/// One loaded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index of its program header.
    pub index: usize,
    /// p_vaddr.
    pub virt: u64,
    /// Where its bytes go in guest-physical memory.
    pub phys: u64,
    /// p_offset.
    pub file_offset: u64,
    /// p_filesz.
    pub file_size: u64,
    /// p_memsz (file bytes + bss).
    pub mem_size: u64,
    /// p_flags (`PF_R`, `PF_W`, `PF_X`).
    pub flags: u32,
}

impl Segment {
    /// Guest-physical range the segment occupies.
    pub fn phys_range(&self) -> Range<u64> {
        self.phys..self.phys + self.mem_size
    }

    /// Virtual range the segment occupies.
    pub fn virt_range(&self) -> Range<u64> {
        self.virt..self.virt + self.mem_size
    }
}

/// A validated kernel image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    /// Virtual entry point (e_entry).
    pub entry: u64,
    /// Lowest physical address loaded.
    pub phys_base: u64,
    /// Lowest virtual address loaded.
    pub virt_base: u64,
    /// Bytes from the lowest to the highest loaded physical address, bss included.
    pub size: u64,
    segments: Vec<Segment>,
}

impl KernelImage {
    /// Parses and validates `bytes` for a guest with `ram_size` bytes of RAM.
    pub fn parse(bytes: &[u8], ram_size: u64) -> Result<KernelImage, ElfError> {
        if bytes.len() < EHDR_SIZE {
            return Err(ElfError::Truncated { len: bytes.len() });
        }
        if bytes[0..4] != [0x7F, b'E', b'L', b'F'] {
            return Err(ElfError::NotElf);
        }
        if bytes[4] != 2 {
            return Err(ElfError::Not64Bit(bytes[4]));
        }
        if bytes[5] != 1 {
            return Err(ElfError::NotLittleEndian(bytes[5]));
        }
        // At least EHDR_SIZE bytes, so the header fields are all there.
        let header = read_elf_header(bytes, ElfClass::Elf64)
            .ok_or(ElfError::Truncated { len: bytes.len() })?;
        if header.machine != EM_X86_64 {
            return Err(ElfError::WrongMachine(header.machine));
        }
        if header.e_type != ET_EXEC {
            return Err(ElfError::WrongType(header.e_type));
        }
        let entry = header.entry;
        let (phoff, phnum) = (header.phoff, header.phnum);
        if header.phentsize != PHDR_SIZE {
            return Err(ElfError::BadPhentsize(header.phentsize));
        }
        if phnum == 0 || phnum == 0xFFFF {
            return Err(ElfError::BadPhnum(phnum));
        }
        let phdrs = read_program_headers(bytes, ElfClass::Elf64, phoff, phnum).ok_or(
            ElfError::PhdrsOutOfFile {
                phoff,
                count: phnum,
                len: bytes.len(),
            },
        )?;

        let mut segments = Vec::new();
        for ph in &phdrs {
            if ph.p_type != PT_LOAD || ph.memsz == 0 {
                continue;
            }
            let seg = Segment {
                index: ph.index,
                flags: ph.flags,
                file_offset: ph.offset,
                virt: ph.vaddr,
                phys: 0,
                file_size: ph.filesz,
                mem_size: ph.memsz,
            };
            segments.push(Self::check_segment(seg, bytes.len(), ram_size)?);
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadSegments);
        }

        segments.sort_by_key(|s| s.phys);
        for pair in segments.windows(2) {
            if let [a, b] = pair {
                if b.phys < a.phys + a.mem_size {
                    return Err(ElfError::OverlappingSegments {
                        a: a.index.min(b.index),
                        b: a.index.max(b.index),
                    });
                }
            }
        }
        if !segments
            .iter()
            .any(|s| s.flags & PF_X != 0 && s.virt_range().contains(&entry))
        {
            return Err(ElfError::BadEntry { entry });
        }

        let phys_base = segments.iter().map(|s| s.phys).min().unwrap_or(0);
        let phys_end = segments
            .iter()
            .map(|s| s.phys + s.mem_size)
            .max()
            .unwrap_or(0);
        let virt_base = segments.iter().map(|s| s.virt).min().unwrap_or(0);
        Ok(KernelImage {
            entry,
            phys_base,
            virt_base,
            size: phys_end - phys_base,
            segments,
        })
    }

    /// Validates one PT_LOAD and computes its physical destination.
    fn check_segment(
        mut seg: Segment,
        file_len: usize,
        ram_size: u64,
    ) -> Result<Segment, ElfError> {
        let index = seg.index;
        if seg.file_size > seg.mem_size {
            return Err(ElfError::FileSizeExceedsMemSize {
                index,
                filesz: seg.file_size,
                memsz: seg.mem_size,
            });
        }
        if seg
            .file_offset
            .checked_add(seg.file_size)
            .is_none_or(|end| end > file_len as u64)
        {
            return Err(ElfError::SegmentOutOfFile {
                index,
                offset: seg.file_offset,
                filesz: seg.file_size,
                len: file_len,
            });
        }
        let overflow = ElfError::AddressOverflow {
            index,
            vaddr: seg.virt,
            memsz: seg.mem_size,
        };
        let virt_end = seg.virt.checked_add(seg.mem_size).ok_or(overflow)?;
        let phys = if seg.virt >= PHYS_MAP_BASE {
            seg.virt - PHYS_MAP_BASE
        } else if virt_end <= FOUR_GIB {
            seg.virt
        } else {
            return Err(ElfError::UnmappedAddress {
                index,
                vaddr: seg.virt,
            });
        };
        let end = phys + seg.mem_size;
        if ranges_overlap(
            phys,
            end,
            FRAMEBUFFER_BASE,
            FRAMEBUFFER_BASE + FRAMEBUFFER_WINDOW,
        ) || ranges_overlap(phys, end, MMIO_HOLE_BASE, FOUR_GIB)
        {
            return Err(ElfError::SegmentInMmio { index, phys, end });
        }
        if end > ram_size {
            return Err(ElfError::SegmentNotInRam {
                index,
                phys,
                end,
                ram_size,
            });
        }
        seg.phys = phys;
        Ok(seg)
    }

    /// The loaded segments, sorted by physical address.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The guest-physical ranges the segments occupy, sorted.
    pub fn phys_ranges(&self) -> Vec<Range<u64>> {
        self.segments.iter().map(Segment::phys_range).collect()
    }

    /// Copies every segment's `p_filesz` bytes from `bytes` (the same file
    /// that was parsed) into guest memory. `mem` must be fresh (all zero,
    /// as `seraph_memory::create_guest_memory` makes it): the bss is not
    /// written, so a 2 GiB bss costs nothing. For memory that held
    /// something before, use [`KernelImage::load_zeroing_bss`].
    pub fn load(&self, mem: &GuestMemoryMmap, bytes: &[u8]) -> Result<(), ElfError> {
        self.load_segments(mem, bytes, false)
    }

    /// [`KernelImage::load`] for memory that may be non-zero: also writes
    /// zeros over every segment's bss.
    pub fn load_zeroing_bss(&self, mem: &GuestMemoryMmap, bytes: &[u8]) -> Result<(), ElfError> {
        self.load_segments(mem, bytes, true)
    }

    fn load_segments(
        &self,
        mem: &GuestMemoryMmap,
        bytes: &[u8],
        zero_bss: bool,
    ) -> Result<(), ElfError> {
        const ZEROS: [u8; 4096] = [0; 4096];
        for seg in &self.segments {
            let index = seg.index;
            let file = usize::try_from(seg.file_offset)
                .ok()
                .zip(usize::try_from(seg.file_size).ok())
                .and_then(|(off, len)| bytes.get(off..off.checked_add(len)?))
                .ok_or(ElfError::BytesMismatch { index })?;
            let write = |data: &[u8], phys: u64| {
                mem.write_slice(data, GuestAddress(phys))
                    .map_err(|e| ElfError::GuestWrite {
                        index,
                        phys,
                        reason: e.to_string(),
                    })
            };
            write(file, seg.phys)?;
            if !zero_bss {
                continue;
            }
            let mut at = seg.phys + seg.file_size;
            let end = seg.phys + seg.mem_size;
            while at < end {
                let chunk = (end - at).min(ZEROS.len() as u64);
                write(&ZEROS[..chunk as usize], at)?;
                at += chunk;
            }
        }
        Ok(())
    }
}

/// A test-only ELF64 writer.
#[cfg(test)]
pub(crate) mod test_elf {
    /// A program header to write.
    #[derive(Clone, Copy)]
    pub struct Ph {
        pub p_type: u32,
        pub flags: u32,
        pub offset: u64,
        pub vaddr: u64,
        pub paddr: u64,
        pub filesz: u64,
        pub memsz: u64,
    }

    /// A PT_LOAD whose file bytes follow the headers (offset filled in by `build`).
    pub fn load(vaddr: u64, paddr: u64, filesz: u64, memsz: u64, flags: u32) -> Ph {
        Ph {
            p_type: 1,
            flags,
            offset: u64::MAX,
            vaddr,
            paddr,
            filesz,
            memsz,
        }
    }

    /// Builds an ELF64 x86_64 ET_EXEC file. Segment payloads are bytes
    /// `(index + 1) * 0x11` repeated; offsets of `u64::MAX` are assigned.
    pub fn build(entry: u64, phs: &[Ph]) -> Vec<u8> {
        let mut out = vec![0u8; 64 + 56 * phs.len()];
        out[0..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&2u16.to_le_bytes());
        out[18..20].copy_from_slice(&62u16.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..32].copy_from_slice(&entry.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
        for (i, ph) in phs.iter().enumerate() {
            let mut offset = ph.offset;
            if offset == u64::MAX {
                offset = out.len() as u64;
                let fill = ((i + 1) * 0x11) as u8;
                out.extend(std::iter::repeat_n(fill, ph.filesz as usize));
            }
            let at = 64 + 56 * i;
            let h = &mut out[at..at + 56];
            h[0..4].copy_from_slice(&ph.p_type.to_le_bytes());
            h[4..8].copy_from_slice(&ph.flags.to_le_bytes());
            h[8..16].copy_from_slice(&offset.to_le_bytes());
            h[16..24].copy_from_slice(&ph.vaddr.to_le_bytes());
            h[24..32].copy_from_slice(&ph.paddr.to_le_bytes());
            h[32..40].copy_from_slice(&ph.filesz.to_le_bytes());
            h[40..48].copy_from_slice(&ph.memsz.to_le_bytes());
            h[48..56].copy_from_slice(&0x1000u64.to_le_bytes());
        }
        out
    }

    /// An identity-linked kernel: text at 0x100000 (entry 0x100010), data+bss at 0x102000.
    pub fn identity_kernel() -> Vec<u8> {
        build(
            0x10_0010,
            &[
                load(0x10_0000, 0x10_0000, 0x1234, 0x1234, 5),
                load(0x10_2000, 0x10_2000, 0x100, 0x3000, 6),
            ],
        )
    }

    /// A higher-half kernel: p_vaddr from 0xFFFF_8000_0000_0000, p_paddr from 0x100000.
    pub fn higher_half_kernel() -> Vec<u8> {
        let base = 0xFFFF_8000_0000_0000u64;
        build(
            base + 0x40,
            &[
                load(base, 0x10_0000, 0x2000, 0x2000, 5),
                load(base + 0x2000, 0x10_2000, 0x800, 0x23_1000, 6),
            ],
        )
    }
}

#[cfg(test)]
#[path = "elf_tests.rs"]
mod tests;
