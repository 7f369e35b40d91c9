//! Creating the guest's memory: RAM from 0 and the framebuffer window.

use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::error::MemoryError;
use crate::layout::{FRAMEBUFFER_BASE, FRAMEBUFFER_WINDOW, LARGE_PAGE_SIZE, MAX_RAM, MIB, MIN_RAM};

/// Checks a RAM size: a multiple of 2 MiB, between [`MIN_RAM`] and [`MAX_RAM`].
pub fn validate_ram_size(ram_size: u64) -> Result<(), MemoryError> {
    if ram_size % LARGE_PAGE_SIZE != 0 {
        let suggested = ram_size.div_ceil(LARGE_PAGE_SIZE).saturating_mul(2);
        return Err(MemoryError::RamSizeNotAligned {
            ram_size,
            suggested,
        });
    }
    if ram_size < MIN_RAM {
        return Err(MemoryError::RamTooSmall {
            ram_size,
            min: MIN_RAM,
        });
    }
    if ram_size > MAX_RAM {
        return Err(MemoryError::RamTooLarge {
            ram_size,
            max: MAX_RAM,
        });
    }
    Ok(())
}

/// Creates guest memory with two regions: RAM at `[0, ram_size)` and the
/// framebuffer window at `[0xC000_0000, 0xC100_0000)`.
///
/// Both are plain anonymous private mappings (not prefaulted: pages are
/// allocated by the host on first touch), zero-filled.
pub fn create_guest_memory(ram_size: u64) -> Result<GuestMemoryMmap, MemoryError> {
    validate_ram_size(ram_size)?;
    let too_big = |_| {
        MemoryError::Mmap(format!(
            "{} MiB does not fit in a host usize",
            ram_size / MIB
        ))
    };
    let ram_len = usize::try_from(ram_size).map_err(too_big)?;
    let fb_len = usize::try_from(FRAMEBUFFER_WINDOW).map_err(too_big)?;
    GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0), ram_len),
        (GuestAddress(FRAMEBUFFER_BASE), fb_len),
    ])
    .map_err(|e| MemoryError::Mmap(e.to_string()))
}

/// Writes `bytes` at guest-physical `addr`, naming `what` in the error if
/// the range is not all guest memory.
pub fn write_guest(
    mem: &GuestMemoryMmap,
    what: &'static str,
    bytes: &[u8],
    addr: u64,
) -> Result<(), MemoryError> {
    use vm_memory::{Bytes, GuestAddress};
    mem.write_slice(bytes, GuestAddress(addr))
        .map_err(|e| MemoryError::GuestWrite {
            what,
            addr,
            len: bytes.len() as u64,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemoryBackend, GuestMemoryRegion};

    #[test]
    fn two_regions_at_spec_addresses() {
        let mem = create_guest_memory(512 * MIB).unwrap();
        let regions: Vec<(u64, u64)> = mem.iter().map(|r| (r.start_addr().0, r.len())).collect();
        assert_eq!(regions, vec![(0, 512 * MIB), (0xC000_0000, 16 * MIB)]);
        mem.write_obj(0xAABB_u16, GuestAddress(0xC0FF_FFFE))
            .unwrap();
        assert_eq!(
            mem.read_obj::<u16>(GuestAddress(0xC0FF_FFFE)).unwrap(),
            0xAABB
        );
        assert!(mem.read_obj::<u8>(GuestAddress(512 * MIB)).is_err());
        assert!(mem.read_obj::<u8>(GuestAddress(0xC100_0000)).is_err());
        assert_eq!(mem.read_obj::<u64>(GuestAddress(0x1000)).unwrap(), 0);
    }

    #[test]
    fn rejects_bad_sizes_with_advice() {
        let err = create_guest_memory(512 * MIB + 1).unwrap_err();
        assert_eq!(
            err,
            MemoryError::RamSizeNotAligned {
                ram_size: 512 * MIB + 1,
                suggested: 514
            }
        );
        assert!(err.to_string().contains("multiple of 2 MiB"));
        assert_eq!(
            validate_ram_size(32 * MIB),
            Err(MemoryError::RamTooSmall {
                ram_size: 32 * MIB,
                min: MIN_RAM
            })
        );
        assert_eq!(
            validate_ram_size(MAX_RAM + LARGE_PAGE_SIZE),
            Err(MemoryError::RamTooLarge {
                ram_size: MAX_RAM + LARGE_PAGE_SIZE,
                max: MAX_RAM
            })
        );
        assert_eq!(validate_ram_size(MAX_RAM), Ok(()));
        assert_eq!(validate_ram_size(MIN_RAM), Ok(()));
    }
}
