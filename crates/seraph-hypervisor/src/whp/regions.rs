//! The partition's guest-physical memory map, kept beside WHP's own.
//!
//! Three jobs: validate a new or replaced slot *before* anything is
//! unmapped ([`Regions::plan`]: a failed check leaves the old mapping in
//! place), give the instruction emulator the host address of RAM-backed
//! guest-physical addresses ([`Regions::read`] / [`Regions::write`]: the
//! emulator fetches instruction bytes and the RAM side of `rep outs`/`ins`
//! through its memory callback, and only unbacked addresses are MMIO), and
//! hand every mapping back for unmapping when the VM goes
//! ([`Regions::take_all`]), so that no partition outlives its guest memory.

use crate::MemoryRegion;

/// WHP's mapping granularity.
pub const PAGE_SIZE: u64 = 4096;

/// Checks a region before `WHvMapGpaRange`: page-aligned guest address,
/// host address and size, no wrap-around, no overlap with `existing`.
pub fn check_region(
    guest_addr: u64,
    size: u64,
    host_addr: usize,
    existing: &[crate::MemoryRegion],
) -> Result<(), String> {
    if size == 0 || size % PAGE_SIZE != 0 {
        return Err(format!(
            "region size {size:#x} is not a non-zero multiple of 4 KiB"
        ));
    }
    if guest_addr % PAGE_SIZE != 0 || (host_addr as u64) % PAGE_SIZE != 0 {
        return Err(format!(
            "region at guest {guest_addr:#x} / host {host_addr:#x} is not 4 KiB aligned"
        ));
    }
    let end = guest_addr
        .checked_add(size)
        .ok_or_else(|| format!("region at {guest_addr:#x} + {size:#x} wraps around"))?;
    for r in existing {
        let r_end = r.guest_addr.saturating_add(r.size);
        if guest_addr < r_end && r.guest_addr < end {
            return Err(format!(
                "region {guest_addr:#x}..{end:#x} overlaps slot {} at {:#x}..{r_end:#x}",
                r.slot, r.guest_addr
            ));
        }
    }
    Ok(())
}

/// One mapped slot (the host address kept as an integer: the table is
/// shared between threads and never dereferences through the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Slot number.
    pub slot: u32,
    /// First guest-physical address.
    pub guest_addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// Host virtual address of the first byte.
    pub host_addr: usize,
    /// Mapped with dirty-page tracking (`Vm::enable_dirty_log`).
    pub dirty_tracking: bool,
}

impl Mapping {
    fn from_region(r: &MemoryRegion, dirty_tracking: bool) -> Self {
        Mapping {
            slot: r.slot,
            guest_addr: r.guest_addr,
            size: r.size,
            host_addr: r.host_addr as usize,
            dirty_tracking,
        }
    }

    /// The mapping as the region it was made from.
    pub fn as_region(&self) -> MemoryRegion {
        MemoryRegion {
            slot: self.slot,
            guest_addr: self.guest_addr,
            size: self.size,
            host_addr: self.host_addr as *mut u8,
        }
    }

    /// The host address of `gpa..gpa + len` if the whole range is in this mapping.
    fn host(&self, gpa: u64, len: usize) -> Option<usize> {
        let off = gpa.checked_sub(self.guest_addr)?;
        let end = off.checked_add(len as u64)?;
        if end > self.size {
            return None;
        }
        self.host_addr.checked_add(usize::try_from(off).ok()?)
    }
}

/// What `map_memory` has to do, decided before any WHP call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapPlan {
    /// The slot's current mapping, to unmap first.
    pub unmap: Option<Mapping>,
    /// The new mapping (none when the request deletes the slot).
    pub map: Option<MemoryRegion>,
    /// Map it with dirty-page tracking: the slot it replaces had it.
    pub track_dirty: bool,
}

/// The slots of one partition.
#[derive(Debug, Default)]
pub struct Regions {
    list: Vec<Mapping>,
}

impl Regions {
    /// Checks `region` against every other slot (the slot's own old
    /// mapping does not count: it is being replaced). Size 0 deletes the slot.
    pub fn plan(&self, region: &MemoryRegion) -> Result<MapPlan, String> {
        let unmap = self.list.iter().find(|m| m.slot == region.slot).copied();
        let track_dirty = unmap.is_some_and(|m| m.dirty_tracking);
        if region.size == 0 {
            return Ok(MapPlan {
                unmap,
                map: None,
                track_dirty,
            });
        }
        let others: Vec<MemoryRegion> = self
            .list
            .iter()
            .filter(|m| m.slot != region.slot)
            .map(Mapping::as_region)
            .collect();
        check_region(
            region.guest_addr,
            region.size,
            region.host_addr as usize,
            &others,
        )?;
        Ok(MapPlan {
            unmap,
            map: Some(*region),
            track_dirty,
        })
    }

    /// Forgets slot `slot` (after WHP unmapped it).
    pub fn remove(&mut self, slot: u32) {
        self.list.retain(|m| m.slot != slot);
    }

    /// Records a mapping (after WHP mapped it).
    ///
    /// # Safety
    /// `region.host_addr..+region.size` must be readable and writable, and
    /// stay so until the slot is removed or [`Regions::take_all`] returns it:
    /// [`Regions::read`] and [`Regions::write`] copy through it.
    pub unsafe fn insert(&mut self, region: &MemoryRegion, dirty_tracking: bool) {
        self.list.push(Mapping::from_region(region, dirty_tracking));
    }

    /// Slot `slot`'s mapping, if mapped.
    pub fn get(&self, slot: u32) -> Option<Mapping> {
        self.list.iter().find(|m| m.slot == slot).copied()
    }

    /// Marks slot `slot` as mapped with dirty tracking (after WHP remapped it).
    pub fn set_dirty_tracking(&mut self, slot: u32) {
        for m in self.list.iter_mut().filter(|m| m.slot == slot) {
            m.dirty_tracking = true;
        }
    }

    /// Removes and returns every mapping: after this no access reaches host memory.
    pub fn take_all(&mut self) -> Vec<Mapping> {
        std::mem::take(&mut self.list)
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True if no slot is mapped.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn host(&self, gpa: u64, len: usize) -> Option<usize> {
        self.list.iter().find_map(|m| m.host(gpa, len))
    }

    /// Copies guest RAM at `gpa` into `data`; false if the range is not
    /// entirely in one RAM slot (then it is MMIO).
    pub fn read(&self, gpa: u64, data: &mut [u8]) -> bool {
        let Some(host) = self.host(gpa, data.len()) else {
            return false;
        };
        // SAFETY: `host..+len` lies inside a slot, which `insert`'s contract
        // keeps valid while it is in the table; `data` is a distinct buffer.
        unsafe { std::ptr::copy_nonoverlapping(host as *const u8, data.as_mut_ptr(), data.len()) };
        true
    }

    /// Copies `data` into guest RAM at `gpa`; false if the range is not
    /// entirely in one RAM slot (then it is MMIO).
    pub fn write(&self, gpa: u64, data: &[u8]) -> bool {
        let Some(host) = self.host(gpa, data.len()) else {
            return false;
        };
        // SAFETY: as in `read`; the slot is writable host memory.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), host as *mut u8, data.len()) };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_must_be_aligned_and_disjoint() {
        let existing = [MemoryRegion {
            slot: 0,
            guest_addr: 0,
            size: 0x2000_0000,
            host_addr: std::ptr::null_mut(),
        }];
        assert!(check_region(0xC000_0000, 0x100_0000, 0x7F00_0000_0000, &existing).is_ok());
        assert!(check_region(0x1000_0000, 0x1000, 0x1000, &existing).is_err());
        assert!(check_region(0xC000_0000, 0x800, 0x1000, &existing).is_err());
        assert!(check_region(0xC000_0001, 0x1000, 0x1000, &existing).is_err());
        assert!(check_region(0xC000_0000, 0x1000, 0x1001, &existing).is_err());
        assert!(check_region(u64::MAX - 0xFFF, 0x2000, 0x1000, &[]).is_err());
        assert!(check_region(0, 0, 0x1000, &[]).is_err());
    }

    /// One page-aligned host page.
    #[derive(Clone, Copy)]
    #[repr(C, align(4096))]
    struct Page([u8; 4096]);

    /// A page-aligned host buffer of `pages` pages.
    fn host_pages(pages: usize) -> Vec<Page> {
        vec![Page([0u8; 4096]); pages]
    }

    fn region(slot: u32, guest_addr: u64, host: &mut [Page]) -> MemoryRegion {
        MemoryRegion {
            slot,
            guest_addr,
            size: (host.len() * 4096) as u64,
            host_addr: host.as_mut_ptr().cast(),
        }
    }

    #[test]
    fn a_failed_remap_check_leaves_the_old_mapping_in_place() {
        let mut a = host_pages(2);
        let mut b = host_pages(1);
        let mut regions = Regions::default();
        let ram = region(0, 0, &mut a);
        let fb = region(1, 0x10_0000, &mut b);
        for r in [ram, fb] {
            let plan = regions.plan(&r).unwrap();
            assert_eq!(plan.unmap, None);
            // SAFETY: the buffers outlive `regions`.
            unsafe { regions.insert(&r, false) };
        }
        // Moving slot 1 onto slot 0's range fails the check, and the plan
        // never gets to unmap slot 1.
        let bad = MemoryRegion {
            guest_addr: 0x1000,
            ..fb
        };
        assert!(regions.plan(&bad).unwrap_err().contains("overlaps slot 0"));
        assert_eq!(regions.len(), 2);
        assert!(regions.write(0x10_0000, &[7]));
        // A valid move replaces the slot's own old range, which does not
        // count as an overlap.
        let moved = MemoryRegion {
            guest_addr: 0x20_0000,
            ..fb
        };
        let plan = regions.plan(&moved).unwrap();
        assert_eq!(plan.unmap.map(|m| m.slot), Some(1));
        assert_eq!(plan.map, Some(moved));
        assert!(!plan.track_dirty);
        // Size 0 deletes.
        let del = regions.plan(&MemoryRegion { size: 0, ..fb }).unwrap();
        assert_eq!((del.unmap.map(|m| m.slot), del.map), (Some(1), None));
        // A slot with dirty tracking keeps it when it is replaced.
        regions.set_dirty_tracking(1);
        assert!(regions.get(1).is_some_and(|m| m.dirty_tracking));
        assert!(regions.plan(&moved).unwrap().track_dirty);
        assert!(!regions.get(0).is_some_and(|m| m.dirty_tracking));
    }

    #[test]
    fn ram_reads_and_writes_go_to_host_memory_and_unbacked_ranges_do_not() {
        let mut a = host_pages(2);
        let mut regions = Regions::default();
        let ram = region(0, 0x20_0000, &mut a);
        // SAFETY: `a` outlives `regions`.
        unsafe { regions.insert(&ram, false) };
        assert!(regions.write(0x20_1FFE, &[0xAA, 0xBB]));
        let mut back = [0u8; 2];
        assert!(regions.read(0x20_1FFE, &mut back));
        assert_eq!(back, [0xAA, 0xBB]);
        // Straddling the end of the slot, or outside it: not RAM.
        assert!(!regions.read(0x20_1FFF, &mut back));
        assert!(!regions.read(0x20_2000, &mut back));
        assert!(!regions.read(0x1F_FFFF, &mut back));
        assert!(!regions.read(u64::MAX, &mut back));
        drop(regions);
        assert_eq!(a[1].0[0xFFE..], [0xAA, 0xBB]);
    }

    #[test]
    fn take_all_returns_every_mapping_and_stops_host_access() {
        let mut a = host_pages(1);
        let mut b = host_pages(1);
        let mut regions = Regions::default();
        // SAFETY: the buffers outlive `regions`.
        unsafe {
            regions.insert(&region(3, 0, &mut a), false);
            regions.insert(&region(4, 0x8000, &mut b), true);
        }
        let all = regions.take_all();
        assert_eq!(
            all.iter()
                .map(|m| (m.slot, m.dirty_tracking))
                .collect::<Vec<_>>(),
            [(3, false), (4, true)]
        );
        assert!(regions.is_empty());
        assert!(!regions.read(0, &mut [0u8; 1]));
        assert!(!regions.write(0x8000, &[1]));
    }
}
