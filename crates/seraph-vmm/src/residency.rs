//! Has the guest ever touched a range of its memory? Guest RAM is anonymous
//! memory mapped on demand, so a page no one has touched has no page behind
//! it (neither in RAM nor in swap), and reads as zero. The VMM uses this to skip copying and encoding a
//! framebuffer the guest never drew on.

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// True if no page of guest-physical `base..base + len` has ever been
/// touched, so all of it reads as zero. False when unsure (the range is not
/// one region, or residency cannot be asked on this host).
pub fn untouched(mem: &GuestMemoryMmap, base: u64, len: u64) -> bool {
    let Some(region) = mem.find_region(GuestAddress(base)) else {
        return false;
    };
    let offset = base - region.start_addr().0;
    if offset.checked_add(len).is_none_or(|end| end > region.len()) {
        return false;
    }
    let Ok(offset) = usize::try_from(offset) else {
        return false;
    };
    let Ok(len) = usize::try_from(len) else {
        return false;
    };
    // Only the address is needed (the kernel is asked about it); offset +
    // len lies inside the region's mapping, checked above.
    none_resident(region.as_ptr() as usize + offset, len)
}

/// Asks the kernel's page map (`/proc/self/pagemap`, one 64-bit entry per
/// page: bit 63 present, bit 62 swapped) whether any page of the range was
/// ever backed. A page that was written and then swapped out still counts,
/// which residency tests such as mincore(2) would miss.
#[cfg(target_os = "linux")]
fn none_resident(start: usize, len: usize) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const PAGE: usize = 4096;
    if start % PAGE != 0 || len % PAGE != 0 {
        return false;
    }
    let Ok(mut map) = std::fs::File::open("/proc/self/pagemap") else {
        return false;
    };
    let mut entries = vec![0u8; len / PAGE * 8];
    let at = (start / PAGE) as u64 * 8;
    if map.seek(SeekFrom::Start(at)).is_err() || map.read_exact(&mut entries).is_err() {
        return false;
    }
    entries.chunks_exact(8).all(|e| {
        let entry = u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
        entry & (PRESENT | SWAPPED) == 0
    })
}

#[cfg(not(target_os = "linux"))]
fn none_resident(_start: usize, _len: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn untouched_until_written() {
        let mem = seraph_memory::create_guest_memory(64 << 20).unwrap();
        let fb = seraph_memory::layout::FRAMEBUFFER_BASE;
        let len = seraph_memory::layout::FRAMEBUFFER_WINDOW;
        assert!(untouched(&mem, fb, len));
        mem.write_obj(0xffu8, GuestAddress(fb + len - 1)).unwrap();
        assert!(!untouched(&mem, fb, len));
        // Not one region: unsure, so "touched".
        assert!(!untouched(&mem, 0, 1 << 40));
        assert!(!untouched(&mem, 0xdead_0000_0000, 4096));
    }
}
