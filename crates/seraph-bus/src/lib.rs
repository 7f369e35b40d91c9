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
    /// No device has this id.
    #[error("no device with id {0} on this bus")]
    NoSuchDevice(usize),
}

/// A device's stable id on a bus: given when the device is added, kept
/// while its range moves or is unmapped (statistics key on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceIndex(pub usize);

/// A device on the bus, mapped or not.
struct Slot {
    name: String,
    device: SharedDevice,
    range: Option<(u64, u64)>,
}

/// A decoded range: `base..base + len` goes to slot `id`.
#[derive(Clone, Copy)]
struct Range {
    base: u64,
    len: u64,
    id: usize,
}

/// Address ranges mapped to devices; one bus for port I/O, another for MMIO.
///
/// Devices keep their [`DeviceIndex`] for the life of the bus; their ranges
/// can be added, moved ([`Bus::map`]) and removed ([`Bus::unmap`]) at run
/// time, as when a guest reprograms a PCI BAR.
#[derive(Default)]
pub struct Bus {
    slots: Vec<Slot>,
    /// Sorted by `base`, never overlapping.
    ranges: Vec<Range>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for r in &self.ranges {
            let name = self.slots.get(r.id).map_or("?", |s| s.name.as_str());
            list.entry(&format_args!("{name}@{:#x}+{:#x}", r.base, r.len));
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

    /// Adds `device` named `name` and maps it at `base..base + len`.
    pub fn insert(
        &mut self,
        name: &str,
        base: u64,
        len: u64,
        device: SharedDevice,
    ) -> Result<DeviceIndex, BusError> {
        self.check(name, base, len, None)?;
        let id = self.add_unmapped(name, device);
        self.map(id, base, len)?;
        Ok(id)
    }

    /// Adds `device` without a range (a PCI BAR not yet enabled); it gets
    /// its id now and a range with [`Bus::map`] later.
    pub fn add_unmapped(&mut self, name: &str, device: SharedDevice) -> DeviceIndex {
        self.slots.push(Slot {
            name: name.to_owned(),
            device,
            range: None,
        });
        DeviceIndex(self.slots.len() - 1)
    }

    /// Checks that `base..base + len` is a valid range free of every
    /// device but `except`.
    fn check(
        &self,
        name: &str,
        base: u64,
        len: u64,
        except: Option<usize>,
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
            .ranges
            .iter()
            .find(|r| Some(r.id) != except && base < r.base + r.len && r.base < end)
        {
            return Err(BusError::Overlap {
                name: name.to_owned(),
                base,
                len,
                other: self
                    .slots
                    .get(other.id)
                    .map_or_else(String::new, |s| s.name.clone()),
            });
        }
        Ok(())
    }

    /// Maps device `id` at `base..base + len`, moving it if it was mapped
    /// elsewhere. On error the device keeps its old range.
    pub fn map(&mut self, id: DeviceIndex, base: u64, len: u64) -> Result<(), BusError> {
        let name = self
            .slots
            .get(id.0)
            .map(|s| s.name.clone())
            .ok_or(BusError::NoSuchDevice(id.0))?;
        self.check(&name, base, len, Some(id.0))?;
        self.unmap(id);
        let at = self.ranges.partition_point(|r| r.base < base);
        self.ranges.insert(
            at,
            Range {
                base,
                len,
                id: id.0,
            },
        );
        if let Some(slot) = self.slots.get_mut(id.0) {
            slot.range = Some((base, len));
        }
        Ok(())
    }

    /// Removes device `id`'s range (it keeps its id and can be mapped again).
    pub fn unmap(&mut self, id: DeviceIndex) {
        self.ranges.retain(|r| r.id != id.0);
        if let Some(slot) = self.slots.get_mut(id.0) {
            slot.range = None;
        }
    }

    /// Where device `id` is mapped, if it is.
    pub fn range_of(&self, id: DeviceIndex) -> Option<(u64, u64)> {
        self.slots.get(id.0).and_then(|s| s.range)
    }

    /// The device whose range holds the whole access `addr..addr + len`.
    fn find(&self, addr: u64, len: usize) -> Option<(Range, &Slot)> {
        let at = self.ranges.partition_point(|r| r.base <= addr);
        let range = *self.ranges.get(at.checked_sub(1)?)?;
        let offset = addr - range.base;
        let fits = offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= range.len);
        if !fits {
            return None;
        }
        Some((range, self.slots.get(range.id)?))
    }

    /// Reads from the device at `addr`; `None` if no device holds the whole access.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> Option<DeviceIndex> {
        let (range, slot) = self.find(addr, data.len())?;
        let access = BusAccess {
            base: range.base,
            offset: addr - range.base,
            vcpu: 0,
        };
        lock(&slot.device).read_access(access, data);
        Some(DeviceIndex(range.id))
    }

    /// Writes to the device at `addr`; `None` if no device holds the whole access.
    pub fn write(&self, addr: u64, data: &[u8]) -> Option<DeviceIndex> {
        let (range, slot) = self.find(addr, data.len())?;
        let access = BusAccess {
            base: range.base,
            offset: addr - range.base,
            vcpu: 0,
        };
        lock(&slot.device).write_access(access, data);
        Some(DeviceIndex(range.id))
    }

    /// The id of the device mapped at `addr`, if any.
    pub fn device_index(&self, addr: u64) -> Option<DeviceIndex> {
        self.find(addr, 1).map(|(r, _)| DeviceIndex(r.id))
    }

    /// The name a device was added under.
    pub fn name(&self, index: DeviceIndex) -> Option<&str> {
        self.slots.get(index.0).map(|s| s.name.as_str())
    }

    /// Number of devices on the bus (mapped or not); ids are below it.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if no device is on the bus.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
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
    fn devices_keep_their_ids_while_ranges_move() {
        let mut bus = Bus::new();
        let (a, a_dev) = probe();
        let (_b, b_dev) = probe();
        let ida = bus.insert("a", 0x1000, 0x10, a_dev).unwrap();
        let idb = bus.add_unmapped("b", b_dev);
        assert_eq!(bus.device_index(0x1000), Some(ida));
        assert_eq!(bus.range_of(idb), None);
        assert!(matches!(
            bus.map(idb, 0x1008, 0x10),
            Err(BusError::Overlap { .. })
        ));
        bus.map(idb, 0x2000, 0x10).unwrap();
        bus.map(ida, 0x3000, 0x10).unwrap();
        assert_eq!(bus.device_index(0x1000), None);
        assert_eq!(bus.device_index(0x3004), Some(ida));
        // The device sees where its range is.
        assert!(bus.write(0x3004, &[1]).is_some());
        assert_eq!(a.lock().unwrap().last_write, Some((4, vec![1])));
        // Moving onto its own old range is fine; a failed move keeps the old one.
        bus.map(ida, 0x3008, 0x10).unwrap();
        assert!(bus.map(ida, 0x2008, 0x10).is_err());
        assert_eq!(bus.range_of(ida), Some((0x3008, 0x10)));
        bus.unmap(ida);
        assert_eq!(bus.device_index(0x3008), None);
        assert_eq!(bus.name(ida), Some("a"));
        assert_eq!(bus.len(), 2);
        assert!(matches!(
            bus.map(DeviceIndex(9), 0, 1),
            Err(BusError::NoSuchDevice(9))
        ));
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
