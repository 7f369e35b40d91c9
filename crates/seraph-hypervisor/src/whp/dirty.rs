//! Dirty-page logging (`Vm::enable_dirty_log`): the slot is remapped with
//! `WHvMapGpaRangeFlagTrackDirtyPages`, and `WHvQueryGpaRangeDirtyBitmap`
//! returns and clears the bitmap of 4 KiB pages written since the last
//! query (one bit per page, bit N of word N / 64, as KVM_GET_DIRTY_LOG).

use std::sync::Arc;

use super::api::Api;
use super::hresult::check;
use super::partition::Partition;
use super::regions::Mapping;
use super::regions::PAGE_SIZE as PAGE;
use crate::{DirtyLog, HypervisorError, Result};

/// The number of 64-bit bitmap words for a slot of `size` bytes, if the
/// bitmap's byte size fits WHP's 32-bit length.
pub fn bitmap_words(size: u64) -> Option<usize> {
    let pages = size.div_ceil(PAGE);
    let words = pages.div_ceil(64);
    u32::try_from(words.checked_mul(8)?).ok()?;
    usize::try_from(words).ok()
}

/// The mapping a dirty log may query: slot `slot` still mapped at the same
/// range, with tracking on.
pub fn still_tracked(current: Option<Mapping>, guest_addr: u64, size: u64) -> Option<Mapping> {
    current.filter(|m| m.dirty_tracking && m.guest_addr == guest_addr && m.size == size)
}

/// Reads and clears a slot's dirty bitmap, from any thread.
#[derive(Debug)]
pub struct WhpDirtyLog {
    pub(super) api: &'static Api,
    pub(super) partition: Arc<Partition>,
    pub(super) slot: u32,
    pub(super) guest_addr: u64,
    pub(super) size: u64,
}

impl DirtyLog for WhpDirtyLog {
    fn take(&self) -> Result<Vec<u64>> {
        let Some(query) = self.api.query_dirty_bitmap else {
            return Err(HypervisorError::Unsupported(
                "WHvQueryGpaRangeDirtyBitmap is not available on this Windows".into(),
            ));
        };
        let words = bitmap_words(self.size)
            .ok_or_else(|| HypervisorError::Invalid("slot too large for a dirty bitmap".into()))?;
        let mut bitmap = vec![0u64; words];
        let bytes = u32::try_from(words * 8)
            .map_err(|_| HypervisorError::Invalid("slot too large for a dirty bitmap".into()))?;
        // Hold the memory map while querying: the slot cannot be unmapped
        // (or the VM dropped) under the call.
        let regions = match self.partition.regions.read() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if still_tracked(regions.get(self.slot), self.guest_addr, self.size).is_none() {
            return Err(HypervisorError::Invalid(format!(
                "memory slot {} is no longer mapped with dirty tracking",
                self.slot
            )));
        }
        check(
            // SAFETY: the range is mapped with dirty tracking on this live
            // partition; `bitmap` holds `bytes` writable bytes.
            unsafe {
                query(
                    self.partition.handle,
                    self.guest_addr,
                    self.size,
                    bitmap.as_mut_ptr(),
                    bytes,
                )
            },
            "WHvQueryGpaRangeDirtyBitmap",
        )?;
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bitmap_has_one_bit_per_page_in_whole_words() {
        assert_eq!(bitmap_words(4096), Some(1));
        assert_eq!(bitmap_words(64 * 4096), Some(1));
        assert_eq!(bitmap_words(65 * 4096), Some(2));
        // The 1024x768x4 framebuffer: 768 pages, 12 words.
        assert_eq!(bitmap_words(1024 * 768 * 4), Some(12));
        assert_eq!(bitmap_words(0), Some(0));
        // Beyond a 4 GiB bitmap (2^35 pages) WHP's u32 length cannot say it.
        assert_eq!(bitmap_words(u64::MAX), None);
    }

    #[test]
    fn a_log_reads_only_its_own_still_tracked_mapping() {
        let m = Mapping {
            slot: 1,
            guest_addr: 0xC000_0000,
            size: 0x30_0000,
            host_addr: 0x7000_0000,
            dirty_tracking: true,
        };
        assert_eq!(still_tracked(Some(m), 0xC000_0000, 0x30_0000), Some(m));
        // Remapped elsewhere, resized, untracked or gone: refused.
        assert_eq!(still_tracked(Some(m), 0xD000_0000, 0x30_0000), None);
        assert_eq!(still_tracked(Some(m), 0xC000_0000, 0x10_0000), None);
        let untracked = Mapping {
            dirty_tracking: false,
            ..m
        };
        assert_eq!(still_tracked(Some(untracked), 0xC000_0000, 0x30_0000), None);
        assert_eq!(still_tracked(None, 0xC000_0000, 0x30_0000), None);
    }
}
