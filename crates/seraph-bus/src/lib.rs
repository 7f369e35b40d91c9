//! Device dispatch for Seraph-V.
//!
//! A [`BusDevice`] answers reads and writes at offsets within its own range;
//! a [`Bus`] maps address ranges (port numbers or guest-physical addresses)
//! to devices. The same trait serves port I/O and MMIO, and nothing here
//! knows about KVM or WHP: a bus access comes in, a device answers it.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a bus access landed: what a device needs beyond the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusAccess {
    /// The first address of the device's range on the bus (a PCI BAR's base).
    pub base: u64,
    /// The offset of the access inside that range.
    pub offset: u64,
    /// The vCPU that made the access (0 on a one-vCPU machine).
    pub vcpu: u32,
}

impl BusAccess {
    /// The absolute address of the access (`base + offset`).
    pub fn address(&self) -> u64 {
        self.base.wrapping_add(self.offset)
    }
}

/// A device that answers guest reads and writes inside its own address range.
///
/// Simple devices implement [`BusDevice::read`] and [`BusDevice::write`] at
/// an offset; devices that care where their range sits or which vCPU asked
/// (a PCI BAR, a per-CPU register page) override the `_access` forms, which
/// the bus calls.
pub trait BusDevice: Send {
    /// Fills `data` with what a read of `data.len()` bytes at `offset` returns.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Takes a write of `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
    /// A read with its full description; defaults to [`BusDevice::read`] at the offset.
    fn read_access(&mut self, access: BusAccess, data: &mut [u8]) {
        self.read(access.offset, data);
    }
    /// A write with its full description; defaults to [`BusDevice::write`] at the offset.
    fn write_access(&mut self, access: BusAccess, data: &[u8]) {
        self.write(access.offset, data);
    }
}

/// A device shared between the bus and the code that owns it.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Errors from building a bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// The new range is empty or wraps around the address space.
    #[error("device `{name}` has an empty or wrapping range {base:#x}+{len:#x}")]
    BadRange {
        /// The device's name.
        name: String,
        /// First address of the range.
        base: u64,
        /// Length of the range.
        len: u64,
    },
    /// The new range overlaps one already on the bus.
    #[error("device `{name}` at {base:#x}+{len:#x} overlaps `{other}`")]
    Overlap {
        /// The device's name.
        name: String,
        /// First address of the range.
        base: u64,
        /// Length of the range.
        len: u64,
        /// The device already there.
        other: String,
    },
}

/// Which device on a bus answered an access: its position on the finished
/// bus, stable once all devices are inserted (an index for statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceIndex(pub usize);

struct Entry {
    base: u64,
    len: u64,
    name: String,
    device: SharedDevice,
}

/// Address ranges mapped to devices; one bus for port I/O, another for MMIO.
#[derive(Default)]
pub struct Bus {
    /// Sorted by `base`, never overlapping.
    entries: Vec<Entry>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for e in &self.entries {
            list.entry(&format_args!("{}@{:#x}+{:#x}", e.name, e.base, e.len));
        }
        list.finish()
    }
}

fn lock(device: &SharedDevice) -> MutexGuard<'_, dyn BusDevice + 'static> {
    // A device that panicked while locked is still the best answer we have;
    // never propagate the poison as a second panic.
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `device` at `base..base + len`, named `name` in reports.
    pub fn insert(
        &mut self,
        name: &str,
        base: u64,
        len: u64,
        device: SharedDevice,
    ) -> Result<(), BusError> {
        let end = base.checked_add(len).filter(|_| len > 0);
        let Some(end) = end else {
            return Err(BusError::BadRange {
                name: name.to_owned(),
                base,
                len,
            });
        };
        if let Some(other) = self
            .entries
            .iter()
            .find(|e| base < e.base + e.len && e.base < end)
        {
            return Err(BusError::Overlap {
                name: name.to_owned(),
                base,
                len,
                other: other.name.clone(),
            });
        }
        let at = self.entries.partition_point(|e| e.base < base);
        self.entries.insert(
            at,
            Entry {
                base,
                len,
                name: name.to_owned(),
                device,
            },
        );
        Ok(())
    }

    /// The device whose range holds the whole access `addr..addr + len`.
    fn find(&self, addr: u64, len: usize) -> Option<(usize, &Entry)> {
        let at = self.entries.partition_point(|e| e.base <= addr);
        let idx = at.checked_sub(1)?;
        let entry = &self.entries[idx];
        let offset = addr - entry.base;
        let fits = offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= entry.len);
        fits.then_some((idx, entry))
    }

    /// Reads from the device at `addr`; `None` if no device holds the whole access.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> Option<DeviceIndex> {
        let (idx, entry) = self.find(addr, data.len())?;
        lock(&entry.device).read(addr - entry.base, data);
        Some(DeviceIndex(idx))
    }

    /// Writes to the device at `addr`; `None` if no device holds the whole access.
    pub fn write(&self, addr: u64, data: &[u8]) -> Option<DeviceIndex> {
        let (idx, entry) = self.find(addr, data.len())?;
        lock(&entry.device).write(addr - entry.base, data);
        Some(DeviceIndex(idx))
    }

    /// The index of the device holding `addr`, if any.
    pub fn device_index(&self, addr: u64) -> Option<DeviceIndex> {
        self.find(addr, 1).map(|(idx, _)| DeviceIndex(idx))
    }

    /// The name a device was inserted under.
    pub fn name(&self, index: DeviceIndex) -> Option<&str> {
        self.entries.get(index.0).map(|e| e.name.as_str())
    }

    /// Number of devices on the bus.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no device is on the bus.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads a little-endian value of up to 8 bytes from an access buffer.
pub fn le_value(data: &[u8]) -> u64 {
    data.iter()
        .take(8)
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Fills an access buffer with the little-endian bytes of `value`.
pub fn fill_le(data: &mut [u8], value: u64) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = if i < 8 { (value >> (8 * i)) as u8 } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembers the last write and answers reads with offset + 1.
    #[derive(Default)]
    struct Probe {
        last_write: Option<(u64, Vec<u8>)>,
    }

    impl BusDevice for Probe {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8 + 1);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.last_write = Some((offset, data.to_vec()));
        }
    }

    fn probe() -> (Arc<Mutex<Probe>>, SharedDevice) {
        let p = Arc::new(Mutex::new(Probe::default()));
        let shared: SharedDevice = p.clone();
        (p, shared)
    }

    #[test]
    fn routes_by_range_with_offsets() {
        let mut bus = Bus::new();
        let (a, a_dev) = probe();
        let (_b, b_dev) = probe();
        bus.insert("b", 0x40, 4, b_dev).unwrap();
        bus.insert("a", 0x3f8, 8, a_dev).unwrap();
        let mut byte = [0u8; 1];
        let idx = bus.read(0x3fd, &mut byte).unwrap();
        assert_eq!(bus.name(idx), Some("a"));
        assert_eq!(byte, [6]);
        assert!(bus.write(0x3f8, &[0x41]).is_some());
        assert_eq!(a.lock().unwrap().last_write, Some((0, vec![0x41])));
        assert_eq!(bus.device_index(0x43).and_then(|i| bus.name(i)), Some("b"));
    }

    #[test]
    fn misses_outside_and_across_range_ends() {
        let mut bus = Bus::new();
        let (_a, a_dev) = probe();
        bus.insert("a", 0x1000, 0x10, a_dev).unwrap();
        let mut four = [0u8; 4];
        assert!(bus.read(0xfff, &mut four).is_none());
        assert!(bus.read(0x100e, &mut four).is_none()); // straddles the end
        assert!(bus.read(0x1010, &mut four).is_none());
        assert!(bus.read(u64::MAX, &mut four).is_none());
        assert!(bus.write(0x100c, &four).is_some());
    }

    #[test]
    fn rejects_overlaps_and_bad_ranges() {
        let mut bus = Bus::new();
        let (_a, a_dev) = probe();
        let (_b, b_dev) = probe();
        bus.insert("a", 0x20, 2, a_dev).unwrap();
        assert!(matches!(
            bus.insert("b", 0x21, 1, b_dev.clone()),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert("b", u64::MAX, 2, b_dev.clone()),
            Err(BusError::BadRange { .. })
        ));
        assert!(matches!(
            bus.insert("b", 0x30, 0, b_dev),
            Err(BusError::BadRange { .. })
        ));
        assert_eq!(bus.len(), 1);
    }

    #[test]
    fn little_endian_helpers_round_trip() {
        let mut buf = [0u8; 4];
        fill_le(&mut buf, 0x1122_3344_5566);
        assert_eq!(buf, [0x66, 0x55, 0x44, 0x33]);
        assert_eq!(le_value(&buf), 0x3344_5566);
        let mut wide = [0xffu8; 10];
        fill_le(&mut wide, u64::MAX);
        assert_eq!(le_value(&wide), u64::MAX);
        assert_eq!(wide[9], 0);
    }
}
