//! Walking a command's PRP entries into guest-physical segments.
//!
//! PRP1 may start anywhere dword-aligned inside a memory page and covers up
//! to the end of that page. If the rest fits in one page, PRP2 is that
//! page's address; otherwise PRP2 points at a PRP list (dword-aligned, any
//! offset) of page addresses. When a list page holds more entries than fit,
//! its last entry points at the next list page (a chained list). Every data
//! page after the first must have offset 0.

use seraph_pci::GuestDma;

use crate::spec::Status;

/// One contiguous piece of a transfer in guest-physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: usize,
}

/// Resolves the PRPs of a transfer of `len` bytes with memory page size
/// `page_size` (a power of two) into segments, reading PRP lists through
/// `dma`. Errors are completion statuses: PRP Offset Invalid for misaligned
/// entries, Data Transfer Error for lists or data outside guest memory.
pub fn segments(
    dma: &GuestDma,
    prp1: u64,
    prp2: u64,
    len: usize,
    page_size: u64,
) -> Result<Vec<Segment>, Status> {
    let mut out = Vec::new();
    if len == 0 {
        return Ok(out);
    }
    let mask = page_size - 1;
    if prp1 & 0x3 != 0 {
        return Err(Status::INVALID_PRP_OFFSET);
    }
    let first = (page_size - (prp1 & mask)).min(len as u64) as usize;
    push(dma, &mut out, prp1, first)?;
    let mut left = len - first;
    if left == 0 {
        return Ok(out);
    }
    if left as u64 <= page_size {
        if prp2 & mask != 0 {
            return Err(Status::INVALID_PRP_OFFSET);
        }
        push(dma, &mut out, prp2, left)?;
        return Ok(out);
    }
    // PRP2 is a list pointer.
    if prp2 & 0x3 != 0 {
        return Err(Status::INVALID_PRP_OFFSET);
    }
    let mut list = prp2;
    while left > 0 {
        // Entries left in this list page.
        let room = ((page_size - (list & mask)) / 8) as usize;
        let needed = left.div_ceil(page_size as usize);
        let data_entries = if needed > room {
            room.saturating_sub(1)
        } else {
            needed
        };
        if data_entries == 0 {
            // A list page with room only for a chain pointer: no progress.
            return Err(Status::INVALID_PRP_OFFSET);
        }
        let mut raw = vec![0u8; data_entries * 8];
        dma.read(list, &mut raw)
            .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        for entry in raw.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(entry);
            let page = u64::from_le_bytes(b);
            if page & mask != 0 {
                return Err(Status::INVALID_PRP_OFFSET);
            }
            let n = left.min(page_size as usize);
            push(dma, &mut out, page, n)?;
            left -= n;
        }
        if left > 0 {
            let chain_at = list
                .checked_add(data_entries as u64 * 8)
                .ok_or(Status::DATA_TRANSFER_ERROR)?;
            let next = dma
                .read_u64(chain_at)
                .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
            if next & 0x3 != 0 {
                return Err(Status::INVALID_PRP_OFFSET);
            }
            list = next;
        }
    }
    Ok(out)
}

/// Appends a segment after checking it lies in guest memory, merging it
/// with the previous one when contiguous.
fn push(dma: &GuestDma, out: &mut Vec<Segment>, addr: u64, len: usize) -> Result<(), Status> {
    if !dma.contains(addr, len) {
        return Err(Status::DATA_TRANSFER_ERROR);
    }
    if let Some(last) = out.last_mut()
        && last.addr.checked_add(last.len as u64) == Some(addr)
    {
        last.len += len;
        return Ok(());
    }
    out.push(Segment { addr, len });
    Ok(())
}

/// Copies `data` into guest memory along `segs` (controller to host).
pub fn write_to_guest(dma: &GuestDma, segs: &[Segment], data: &[u8]) -> Result<(), Status> {
    let mut at = 0usize;
    for s in segs {
        let chunk = data
            .get(at..at + s.len)
            .ok_or(Status::DATA_TRANSFER_ERROR)?;
        dma.write(s.addr, chunk)
            .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        at += s.len;
    }
    Ok(())
}

/// Copies guest memory along `segs` into `data` (host to controller).
pub fn read_from_guest(dma: &GuestDma, segs: &[Segment], data: &mut [u8]) -> Result<(), Status> {
    let mut at = 0usize;
    for s in segs {
        let chunk = data
            .get_mut(at..at + s.len)
            .ok_or(Status::DATA_TRANSFER_ERROR)?;
        dma.read(s.addr, chunk)
            .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        at += s.len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_pci::dma::test_memory;

    const PAGE: u64 = 4096;

    fn dma() -> GuestDma {
        GuestDma::new(test_memory(0x40_0000))
    }

    #[test]
    fn one_and_two_page_transfers_use_prp1_and_prp2() {
        let d = dma();
        assert_eq!(
            segments(&d, 0x1000, 0, 512, PAGE).unwrap(),
            vec![Segment {
                addr: 0x1000,
                len: 512
            }]
        );
        // Offset PRP1: 0x1E00..0x2000 then PRP2 page.
        assert_eq!(
            segments(&d, 0x1E00, 0x8000, 1024, PAGE).unwrap(),
            vec![
                Segment {
                    addr: 0x1E00,
                    len: 512
                },
                Segment {
                    addr: 0x8000,
                    len: 512
                }
            ]
        );
        // Contiguous pages merge.
        assert_eq!(
            segments(&d, 0x1000, 0x2000, 8192, PAGE).unwrap(),
            vec![Segment {
                addr: 0x1000,
                len: 8192
            }]
        );
        assert_eq!(
            segments(&d, 0x1002, 0, 4, PAGE),
            Err(Status::INVALID_PRP_OFFSET)
        );
        assert_eq!(
            segments(&d, 0x1000, 0x2200, 8192, PAGE),
            Err(Status::INVALID_PRP_OFFSET)
        );
    }

    #[test]
    fn chained_prp_lists_span_pages() {
        let d = dma();
        // 6 pages: PRP1 + 5 entries. First list at 0x10FF0 has room for 2
        // entries: one data page, then a chain pointer to 0x20000.
        let pages = [
            0x100000u64,
            0x102000,
            0x104000,
            0x106000,
            0x108000,
            0x10A000,
        ];
        d.write_u64(0x10FF0, pages[1]).unwrap();
        d.write_u64(0x10FF8, 0x20000).unwrap();
        for (i, p) in pages[2..].iter().enumerate() {
            d.write_u64(0x20000 + 8 * i as u64, *p).unwrap();
        }
        let segs = segments(&d, pages[0], 0x10FF0, 6 * 4096, PAGE).unwrap();
        let addrs: Vec<u64> = segs.iter().map(|s| s.addr).collect();
        assert_eq!(addrs, pages.to_vec());
        assert!(segs.iter().all(|s| s.len == 4096));
        // A data entry with an offset.
        d.write_u64(0x20000, 0x104010).unwrap();
        assert_eq!(
            segments(&d, pages[0], 0x10FF0, 6 * 4096, PAGE),
            Err(Status::INVALID_PRP_OFFSET)
        );
    }

    #[test]
    fn lists_and_pages_outside_ram_are_data_transfer_errors() {
        let d = dma();
        assert_eq!(
            segments(&d, 0x8000_0000, 0, 512, PAGE),
            Err(Status::DATA_TRANSFER_ERROR)
        );
        assert_eq!(
            segments(&d, 0x3F_F000, 0x40_0000, 8192, PAGE),
            Err(Status::DATA_TRANSFER_ERROR)
        );
        // A list pointer beyond RAM.
        assert_eq!(
            segments(&d, 0x1000, 0x9000_0000, 3 * 4096, PAGE),
            Err(Status::DATA_TRANSFER_ERROR)
        );
        // Wrapping addresses.
        assert_eq!(
            segments(&d, u64::MAX - 3, 0, 8, PAGE),
            Err(Status::DATA_TRANSFER_ERROR)
        );
    }
}
