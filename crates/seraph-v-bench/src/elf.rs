//! The floor's ELF loader: the least that runs an identity-linked ELF64
//! guest (copy each PT_LOAD's file bytes to p_paddr, zero the rest of
//! p_memsz). Checked arithmetic throughout: the file is input.

use crate::error::BenchError;

const PT_LOAD: u32 = 1;

/// One segment to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// Offset of its bytes in the file.
    pub offset: usize,
    /// Bytes in the file.
    pub file_size: usize,
    /// Guest-physical load address.
    pub paddr: u64,
    /// Bytes in memory (file bytes, then zeroes).
    pub mem_size: u64,
}

/// The parts of an ELF64 x86-64 executable the floor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinimalElf {
    /// The entry point (used as RIP; the guests are identity-linked).
    pub entry: u64,
    /// The PT_LOAD segments.
    pub segments: Vec<LoadSegment>,
}

fn field<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], BenchError> {
    at.checked_add(N)
        .and_then(|end| bytes.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| BenchError::Elf(format!("truncated at byte {at}")))
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, BenchError> {
    field::<2>(bytes, at).map(u16::from_le_bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, BenchError> {
    field::<4>(bytes, at).map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64, BenchError> {
    field::<8>(bytes, at).map(u64::from_le_bytes)
}

fn to_usize(value: u64) -> Result<usize, BenchError> {
    usize::try_from(value).map_err(|_| BenchError::Elf(format!("{value:#x} is too large")))
}

impl MinimalElf {
    /// Parses the ELF header and program headers of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, BenchError> {
        if bytes.get(0..4) != Some(b"\x7fELF".as_slice()) {
            return Err(BenchError::Elf("not an ELF file".into()));
        }
        if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
            return Err(BenchError::Elf("not ELF64 little-endian".into()));
        }
        if u16_at(bytes, 18)? != 62 {
            return Err(BenchError::Elf("not x86-64".into()));
        }
        let entry = u64_at(bytes, 24)?;
        let phoff = to_usize(u64_at(bytes, 32)?)?;
        let phentsize = usize::from(u16_at(bytes, 54)?);
        let phnum = usize::from(u16_at(bytes, 56)?);
        if phentsize < 56 {
            return Err(BenchError::Elf(format!("program header size {phentsize}")));
        }
        let mut segments = Vec::new();
        for i in 0..phnum {
            let at = i
                .checked_mul(phentsize)
                .and_then(|o| o.checked_add(phoff))
                .ok_or_else(|| BenchError::Elf("program headers overflow".into()))?;
            if u32_at(bytes, at)? != PT_LOAD {
                continue;
            }
            let offset = to_usize(u64_at(bytes, at + 8)?)?;
            let paddr = u64_at(bytes, at + 24)?;
            let file_size = to_usize(u64_at(bytes, at + 32)?)?;
            let mem_size = u64_at(bytes, at + 40)?;
            let in_file = offset
                .checked_add(file_size)
                .is_some_and(|end| end <= bytes.len());
            if !in_file || (file_size as u64) > mem_size {
                return Err(BenchError::Elf(format!("bad PT_LOAD {i}")));
            }
            segments.push(LoadSegment {
                offset,
                file_size,
                paddr,
                mem_size,
            });
        }
        if segments.is_empty() {
            return Err(BenchError::Elf("no PT_LOAD segment".into()));
        }
        Ok(Self { entry, segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_bench_guests() {
        for guest in [
            seraph_guests::BENCH_PIO,
            seraph_guests::BENCH_MMIO,
            seraph_guests::BENCH_HELLO,
            seraph_guests::BENCH_PVH,
        ] {
            let elf = MinimalElf::parse(guest).unwrap();
            assert_eq!(elf.entry, 0x10_0000);
            assert_eq!(elf.segments.len(), 1);
            let seg = elf.segments[0];
            assert_eq!((seg.offset, seg.paddr), (0x1000, 0x10_0000));
            assert_eq!(seg.mem_size, seg.file_size as u64);
            // The code starts at the entry.
            assert_ne!(guest[seg.offset], 0);
        }
    }

    #[test]
    fn rejects_what_it_cannot_load() {
        assert!(MinimalElf::parse(b"MZ").is_err());
        assert!(MinimalElf::parse(&[]).is_err());
        let good = seraph_guests::BENCH_HELLO;
        assert!(MinimalElf::parse(&good[..60]).is_err(), "headers cut off");
        let mut huge = good.to_vec();
        // phoff is 64; p_filesz of the first header at 64 + 32.
        huge[96..104].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(MinimalElf::parse(&huge).is_err(), "segment past the file");
        let mut arm = good.to_vec();
        arm[18] = 183;
        assert!(MinimalElf::parse(&arm).is_err(), "aarch64");
    }

    #[test]
    fn pvh_guest_has_the_xen_phys32_entry_note() {
        let elf = seraph_guests::BENCH_PVH;
        // namesz 4, descsz 8, type 18, "Xen\0", entry 0x100000 as a u64.
        let mut note = Vec::new();
        note.extend_from_slice(&4u32.to_le_bytes());
        note.extend_from_slice(&8u32.to_le_bytes());
        note.extend_from_slice(&18u32.to_le_bytes());
        note.extend_from_slice(b"Xen\0");
        note.extend_from_slice(&0x10_0000u64.to_le_bytes());
        assert!(elf.windows(note.len()).any(|w| w == note));
        // A PT_NOTE program header exists (type 4).
        let phnum = usize::from(u16::from_le_bytes([elf[56], elf[57]]));
        let types: Vec<u32> = (0..phnum)
            .map(|i| u32::from_le_bytes(elf[64 + i * 56..68 + i * 56].try_into().unwrap()))
            .collect();
        assert_eq!(types, [1, 4]);
    }

    #[test]
    fn hello_twins_write_the_same_line() {
        let line = seraph_guests::BENCH_HELLO_LINE.as_bytes();
        for guest in [seraph_guests::BENCH_HELLO, seraph_guests::BENCH_PVH] {
            assert!(guest.windows(line.len()).any(|w| w == line));
        }
        let started = seraph_guests::BENCH_HELLO_STARTED.as_bytes();
        assert!(
            seraph_guests::BENCH_HELLO
                .windows(started.len())
                .any(|w| w == started)
        );
        assert_eq!(seraph_guests::bench_guests().len(), 4);
    }
}
