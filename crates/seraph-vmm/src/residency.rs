//! Has the guest ever touched a range of its memory? Guest RAM is anonymous
//! memory mapped on demand, so a page no one has touched is not resident,
//! and reads as zero. The VMM uses this to skip copying and encoding a
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
    // SAFETY: offset + len lies inside the region (checked above), so the
    // pointer stays within the region's mapping.
    let start = unsafe { region.as_ptr().add(offset) };
    none_resident(start, len)
}

#[cfg(unix)]
fn none_resident(start: *mut u8, len: usize) -> bool {
    // SAFETY: sysconf has no preconditions.
    let page = match usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) {
        Ok(p) if p > 0 => p,
        _ => return false,
    };
    if (start as usize) % page != 0 {
        return false;
    }
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: `start..start + len` is mapped memory owned by guest RAM
    // (the caller checked it lies in one region), `start` is page-aligned,
    // and `vec` has one byte per page of the range, as mincore(2) needs.
    let rc = unsafe { libc::mincore(start.cast(), len, vec.as_mut_ptr()) };
    rc == 0 && vec.iter().all(|&b| b & 1 == 0)
}

#[cfg(not(unix))]
fn none_resident(_start: *mut u8, _len: usize) -> bool {
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
