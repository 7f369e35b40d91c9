//! Device DMA: bounds-checked reads and writes of guest-physical memory.
//!
//! Devices never hold raw pointers into guest memory: they get a
//! [`GuestDma`] and every access is checked against the guest's memory
//! map. An address outside guest memory is a [`DmaError`] the device
//! reports to its guest (a status bit, a counter), never a VMM crash.

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// A DMA access that guest memory cannot satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DMA {kind} of {len} bytes at guest-physical {addr:#x} is outside guest memory")]
pub struct DmaError {
    /// "read" or "write".
    pub kind: &'static str,
    /// First guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: usize,
}

/// A device's handle on guest memory.
#[derive(Debug, Clone)]
pub struct GuestDma {
    mem: GuestMemoryMmap,
}

impl GuestDma {
    /// A handle on `mem` (shares the mapping; cheap to clone).
    pub fn new(mem: GuestMemoryMmap) -> Self {
        Self { mem }
    }

    /// True if `addr..addr + len` is entirely backed by guest memory (it
    /// may span adjacent regions, not holes).
    pub fn contains(&self, addr: u64, len: usize) -> bool {
        len == 0 || self.mem.check_range(GuestAddress(addr), len)
    }

    /// Reads guest memory at `addr` into `buf`, all or nothing.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let err = DmaError {
            kind: "read",
            addr,
            len: buf.len(),
        };
        if !self.contains(addr, buf.len()) {
            return Err(err);
        }
        self.mem
            .read_slice(buf, GuestAddress(addr))
            .map_err(|_| err)
    }

    /// Writes `buf` to guest memory at `addr`, all or nothing.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let err = DmaError {
            kind: "write",
            addr,
            len: buf.len(),
        };
        if !self.contains(addr, buf.len()) {
            return Err(err);
        }
        self.mem
            .write_slice(buf, GuestAddress(addr))
            .map_err(|_| err)
    }

    /// Reads a little-endian u32 at `addr`.
    pub fn read_u32(&self, addr: u64) -> Result<u32, DmaError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian u64 at `addr`.
    pub fn read_u64(&self, addr: u64) -> Result<u64, DmaError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian u32 at `addr`.
    pub fn write_u32(&self, addr: u64, value: u32) -> Result<(), DmaError> {
        self.write(addr, &value.to_le_bytes())
    }

    /// Writes a little-endian u64 at `addr`.
    pub fn write_u64(&self, addr: u64, value: u64) -> Result<(), DmaError> {
        self.write(addr, &value.to_le_bytes())
    }

    /// The guest memory behind this handle.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }
}

/// Guest memory for device tests: `size` bytes of RAM at guest-physical 0.
pub fn test_memory(size: usize) -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size)]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_inside_ram_only() {
        let dma = GuestDma::new(test_memory(0x10000));
        dma.write_u32(0x100, 0xdead_beef).unwrap();
        assert_eq!(dma.read_u32(0x100).unwrap(), 0xdead_beef);
        dma.write_u64(0xfff8, 7).unwrap();
        assert_eq!(dma.read_u64(0xfff8).unwrap(), 7);
        assert!(dma.read_u64(0xfffc).is_err());
        assert!(dma.write(0x10000, &[1]).is_err());
        assert!(dma.read(u64::MAX, &mut [0u8; 2]).is_err());
        assert!(dma.read(u64::MAX - 1, &mut []).is_ok());
        let e = dma.write(0x2_0000, &[0; 4]).unwrap_err();
        assert_eq!(e.addr, 0x2_0000);
        assert_eq!(e.kind, "write");
    }

    #[test]
    fn ranges_may_span_adjacent_regions_but_not_holes() {
        let mem = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), 0x1000),
            (GuestAddress(0x1000), 0x1000),
            (GuestAddress(0x4000), 0x1000),
        ])
        .unwrap();
        let dma = GuestDma::new(mem);
        assert!(dma.contains(0xff0, 0x20));
        assert!(dma.write(0xff0, &[9; 0x20]).is_ok());
        assert!(!dma.contains(0x1ff0, 0x20));
        assert!(dma.read(0x1ff0, &mut [0; 0x20]).is_err());
        assert!(dma.contains(0x4000, 0x1000));
    }
}
