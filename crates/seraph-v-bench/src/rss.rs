//! Counting which guest pages are resident (`mincore` over the mappings).

use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::error::BenchError;

/// The host page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// Bytes of guest memory resident in host RAM, over all regions.
pub fn resident_guest_bytes(mem: &GuestMemoryMmap) -> Result<u64, BenchError> {
    let page = page_size();
    let mut total = 0u64;
    for region in mem.iter() {
        let len = usize::try_from(region.len()).map_err(|e| BenchError::Memory(e.to_string()))?;
        let pages = len.div_ceil(page as usize);
        let mut vec = vec![0u8; pages];
        // SAFETY: the region is a live page-aligned mapping of `len` bytes
        // owned by `mem` (borrowed for this call); `vec` has one byte per page.
        let r = unsafe { libc::mincore(region.as_ptr().cast(), len, vec.as_mut_ptr()) };
        if r != 0 {
            return Err(BenchError::Memory(format!(
                "mincore: {}",
                std::io::Error::last_os_error()
            )));
        }
        let resident = vec.iter().filter(|&&b| b & 1 != 0).count() as u64;
        total = total.saturating_add(resident.saturating_mul(page));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestAddress};

    #[test]
    fn counts_touched_pages_only() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        assert_eq!(resident_guest_bytes(&mem).unwrap(), 0);
        let page = page_size();
        for i in 0..5u64 {
            mem.write_obj(1u8, GuestAddress(i * 3 * page)).unwrap();
        }
        assert_eq!(resident_guest_bytes(&mem).unwrap(), 5 * page);
    }
}
