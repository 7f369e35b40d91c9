//! Placing boot structures in guest RAM: each goes to its default address
//! unless something already occupies it; then it moves to the lowest free,
//! suitably aligned range above 1 MiB, and the move is recorded.

use seraph_memory::layout::{LARGE_PAGE_SIZE, MIB, align_up, ranges_overlap};

use crate::error::PlanError;

/// A guest-physical range `[base, base + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Placement {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// A structure that could not go to its default address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    /// Which structure.
    pub what: &'static str,
    /// Its default address.
    pub default: u64,
    /// Where it went.
    pub actual: u64,
}

/// Lowest `align`-aligned address at or above 1 MiB where `size` bytes fit
/// below `ram_size` without touching `occupied` (sorted by start).
fn find_free(occupied: &[Placement], size: u64, align: u64, ram_size: u64) -> Option<u64> {
    let mut cand = align_up(MIB, align)?;
    for r in occupied {
        if r.end() <= cand {
            continue;
        }
        if r.base >= cand.checked_add(size)? {
            break;
        }
        cand = align_up(r.end(), align)?;
    }
    (cand.checked_add(size)? <= ram_size).then_some(cand)
}

/// Places structures one after another, avoiding what is already taken.
pub(crate) struct Placer {
    /// RAM size.
    pub(crate) ram_size: u64,
    /// Ranges already taken.
    pub(crate) occupied: Vec<Placement>,
    /// Structures that did not get their default address.
    pub(crate) relocations: Vec<Relocation>,
    /// What everything needs (for the "raise --memory" advice).
    pub(crate) needed: u64,
}

impl Placer {
    pub(crate) fn is_free(&self, base: u64, size: u64) -> bool {
        base.checked_add(size)
            .is_some_and(|end| end <= self.ram_size)
            && !self
                .occupied
                .iter()
                .any(|r| ranges_overlap(base, base + size, r.base, r.end()))
    }

    /// `default` if free, else the lowest free `align`-aligned range above 1 MiB.
    pub(crate) fn place(
        &mut self,
        what: &'static str,
        default: u64,
        size: u64,
        align: u64,
    ) -> Result<Placement, PlanError> {
        let base = if self.is_free(default, size) {
            default
        } else {
            self.occupied.sort_by_key(|r| r.base);
            let base =
                find_free(&self.occupied, size, align, self.ram_size).ok_or(PlanError::NoRoom {
                    what,
                    size,
                    ram_size: self.ram_size,
                    needed_mib: self.needed.div_ceil(LARGE_PAGE_SIZE) * 2,
                })?;
            self.relocations.push(Relocation {
                what,
                default,
                actual: base,
            });
            base
        };
        let placed = Placement { base, size };
        self.occupied.push(placed);
        Ok(placed)
    }
}
