//! The PCI host bridge: configuration mechanism #1 at ports 0xCF8-0xCFF.
//!
//! Port 0xCF8 latches a configuration address (bit 31 enable, bus 23:16,
//! device 15:11, function 10:8, register 7:2); ports 0xCFC-0xCFF read and
//! write that function's configuration space. Bus 0 only: device 0 is the
//! bridge itself, the machine's devices follow in slot order. Writes that
//! may move a BAR (a BAR or the command register) are queued as
//! [`BarChange`]s for the VMM, which moves the bus ranges.

use std::sync::{Arc, Mutex, MutexGuard};

use seraph_bus::BusDevice;

use crate::config::{BAR_COUNT, ConfigSpace, PciIds, reg};
use crate::{PciDevice, command};

/// First port of the host bridge.
pub const CONFIG_ADDRESS_PORT: u64 = 0xCF8;
/// Ports the host bridge decodes (0xCF8-0xCFF).
pub const CONFIG_PORTS_LEN: u64 = 8;
/// Devices per bus.
pub const SLOTS: usize = 32;

/// A PCI function shared between the host bridge and the VMM's BAR mappings.
pub type SharedPciDevice = Arc<Mutex<dyn PciDevice>>;

/// The guest may have moved or enabled/disabled a device's BARs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarChange {
    /// The device's slot on bus 0.
    pub slot: u8,
}

/// Locks a device; a poisoned lock is still used as is.
pub fn lock_device(device: &SharedPciDevice) -> MutexGuard<'_, dyn PciDevice + 'static> {
    device.lock().unwrap_or_else(|p| p.into_inner())
}

/// The host bridge's own function (bus 0, device 0).
struct Bridge {
    config: ConfigSpace,
}

impl PciDevice for Bridge {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }
    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }
    fn bar_read(&mut self, _bar: usize, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn bar_write(&mut self, _bar: usize, _offset: u64, _data: &[u8]) {}
}

/// The host bridge and the devices on bus 0.
pub struct PciHost {
    address: u32,
    slots: Vec<Option<SharedPciDevice>>,
    /// Slots with a possible BAR change not yet taken (a bit per slot).
    changed: u32,
}

impl std::fmt::Debug for PciHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciHost")
            .field("address", &format_args!("{:#x}", self.address))
            .field(
                "devices",
                &self.slots.iter().filter(|s| s.is_some()).count(),
            )
            .finish()
    }
}

impl Default for PciHost {
    fn default() -> Self {
        Self::new()
    }
}

impl PciHost {
    /// A bus 0 with only the host bridge (8086:1237, class 06/00) at slot 0.
    pub fn new() -> Self {
        let bridge = Bridge {
            config: ConfigSpace::new(PciIds {
                vendor: 0x8086,
                device: 0x1237,
                class: 0x06,
                ..Default::default()
            }),
        };
        let mut slots: Vec<Option<SharedPciDevice>> = vec![None; SLOTS];
        slots[0] = Some(Arc::new(Mutex::new(bridge)));
        Self {
            address: 0,
            slots,
            changed: 0,
        }
    }

    /// Puts `device` in the next free slot; returns the slot, or `None` if bus 0 is full.
    pub fn add(&mut self, device: SharedPciDevice) -> Option<u8> {
        let slot = self.slots.iter().position(Option::is_none)?;
        self.slots[slot] = Some(device);
        u8::try_from(slot).ok()
    }

    /// The device in `slot`, if any.
    pub fn device(&self, slot: u8) -> Option<&SharedPciDevice> {
        self.slots.get(usize::from(slot)).and_then(Option::as_ref)
    }

    /// The occupied slots (the bridge at 0 included), in order.
    pub fn slots(&self) -> impl Iterator<Item = (u8, &SharedPciDevice)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Some((u8::try_from(i).ok()?, d.as_ref()?)))
    }

    /// Takes the queued BAR changes, one per slot, in slot order.
    pub fn take_changes(&mut self) -> Vec<BarChange> {
        let bits = std::mem::take(&mut self.changed);
        (0..SLOTS as u8)
            .filter(|s| bits & (1 << s) != 0)
            .map(|slot| BarChange { slot })
            .collect()
    }

    /// True if BAR changes are queued.
    pub fn has_changes(&self) -> bool {
        self.changed != 0
    }

    /// The function the latched address selects: bus 0, function 0, enabled.
    fn selected(&self) -> Option<(u8, &SharedPciDevice, u16)> {
        if self.address & 0x8000_0000 == 0 {
            return None;
        }
        let bus = (self.address >> 16) & 0xff;
        let slot = ((self.address >> 11) & 0x1f) as u8;
        let function = (self.address >> 8) & 0x7;
        if bus != 0 || function != 0 {
            return None;
        }
        let register = (self.address & 0xfc) as u16;
        self.device(slot).map(|d| (slot, d, register))
    }

    fn data_read(&self, port_offset: u64, data: &mut [u8]) {
        match self.selected() {
            Some((_, device, register)) => {
                let offset = register + (port_offset - 4) as u16;
                lock_device(device).config().read(offset, data);
            }
            None => data.fill(0xff),
        }
    }

    fn data_write(&mut self, port_offset: u64, data: &[u8]) {
        let Some((slot, device, register)) = self.selected() else {
            return;
        };
        let offset = register + (port_offset - 4) as u16;
        let mut dev = lock_device(device);
        let moved = dev.config_mut().write(offset, data);
        dev.config_written(offset, data);
        drop(dev);
        let end = offset + data.len() as u16;
        let touches_command = offset < reg::COMMAND + 2 && end > reg::COMMAND;
        let bar_end = reg::BAR0 + 4 * BAR_COUNT as u16;
        let touches_bars = offset < bar_end && end > reg::BAR0;
        if !moved.is_empty() || touches_command || touches_bars {
            self.changed |= 1 << slot;
        }
    }
}

impl BusDevice for PciHost {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match offset {
            0..=3 if offset == 0 && data.len() == 4 => {
                data.copy_from_slice(&self.address.to_le_bytes());
            }
            4..=7 if offset + data.len() as u64 <= 8 => self.data_read(offset, data),
            _ => data.fill(0xff),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match offset {
            0 if data.len() == 4 => {
                let mut b = [0u8; 4];
                b.copy_from_slice(data);
                self.address = u32::from_le_bytes(b) & 0x80ff_fffc;
            }
            4..=7 if offset + data.len() as u64 <= 8 => self.data_write(offset, data),
            _ => {}
        }
    }
}

/// Firmware's job with no firmware: gives every BAR of every device an
/// address in the window `[base, base + len)` (memory) and
/// `[io_base, io_base + io_len)` (ports), naturally aligned, and enables
/// decoding and bus mastering. Returns false if the windows are too small.
pub fn assign_bars(host: &PciHost, mut mmio: (u64, u64), mut io: (u64, u64)) -> bool {
    let mut ok = true;
    for (slot, device) in host.slots() {
        if slot == 0 {
            continue;
        }
        let mut dev = lock_device(device);
        let mut cmd = dev.config().command();
        for bar in 0..BAR_COUNT {
            let Some(spec) = dev.config().bar_spec(bar) else {
                continue;
            };
            let window = if spec.kind == crate::BarKind::Io {
                &mut io
            } else {
                &mut mmio
            };
            let aligned = window.0.div_ceil(spec.size) * spec.size;
            let fits = aligned
                .checked_add(spec.size)
                .is_some_and(|end| end <= window.0.saturating_add(window.1));
            if !fits {
                ok = false;
                continue;
            }
            let used = aligned + spec.size - window.0;
            window.0 += used;
            window.1 = window.1.saturating_sub(used);
            dev.config_mut().set_bar_address(bar, aligned);
            cmd |= if spec.kind == crate::BarKind::Io {
                command::IO_SPACE
            } else {
                command::MEMORY_SPACE
            };
        }
        dev.config_mut().set_command(cmd | command::BUS_MASTER);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BarSpec;

    struct Dev {
        config: ConfigSpace,
    }
    impl PciDevice for Dev {
        fn config(&self) -> &ConfigSpace {
            &self.config
        }
        fn config_mut(&mut self) -> &mut ConfigSpace {
            &mut self.config
        }
        fn bar_read(&mut self, _: usize, _: u64, data: &mut [u8]) {
            data.fill(0);
        }
        fn bar_write(&mut self, _: usize, _: u64, _: &[u8]) {}
    }

    fn dev() -> SharedPciDevice {
        let mut config = ConfigSpace::new(PciIds {
            vendor: 0x1234,
            device: 0x5678,
            class: 0xff,
            ..Default::default()
        });
        config.add_bar(0, BarSpec::memory64(0x4000)).unwrap();
        config.add_bar(2, BarSpec::io(0x20)).unwrap();
        Arc::new(Mutex::new(Dev { config }))
    }

    fn cfg_read(host: &mut PciHost, slot: u8, reg: u16) -> u32 {
        host.write(
            0,
            &(0x8000_0000u32 | u32::from(slot) << 11 | u32::from(reg)).to_le_bytes(),
        );
        let mut b = [0u8; 4];
        host.read(4, &mut b);
        u32::from_le_bytes(b)
    }

    fn cfg_write(host: &mut PciHost, slot: u8, reg: u16, value: u32) {
        host.write(
            0,
            &(0x8000_0000u32 | u32::from(slot) << 11 | u32::from(reg)).to_le_bytes(),
        );
        host.write(4, &value.to_le_bytes());
    }

    #[test]
    fn enumerates_bus_zero_and_sizes_bars() {
        let mut host = PciHost::new();
        assert_eq!(host.add(dev()), Some(1));
        assert_eq!(cfg_read(&mut host, 0, 0), 0x1237_8086);
        assert_eq!(cfg_read(&mut host, 1, 0), 0x5678_1234);
        assert_eq!(cfg_read(&mut host, 2, 0), 0xffff_ffff);
        cfg_write(&mut host, 1, 0x10, 0xffff_ffff);
        cfg_write(&mut host, 1, 0x14, 0xffff_ffff);
        assert_eq!(cfg_read(&mut host, 1, 0x10), 0xffff_c004);
        assert_eq!(cfg_read(&mut host, 1, 0x14), 0xffff_ffff);
        cfg_write(&mut host, 1, 0x18, 0xffff_ffff);
        assert_eq!(cfg_read(&mut host, 1, 0x18), 0xffff_ffe1);
        assert_eq!(host.take_changes(), vec![BarChange { slot: 1 }]);
        assert!(!host.has_changes());
        // Function 1 and other buses do not exist.
        host.write(0, &0x8000_0100u32.to_le_bytes());
        let mut b = [0u8; 4];
        host.read(4, &mut b);
        assert_eq!(b, [0xff; 4]);
    }

    #[test]
    fn firmware_assignment_places_and_enables_bars() {
        let mut host = PciHost::new();
        host.add(dev());
        host.add(dev());
        assert!(assign_bars(
            &host,
            (0xE000_0000, 0x10_0000),
            (0xC000, 0x1000)
        ));
        let d1 = lock_device(host.device(1).unwrap()).config().clone();
        let d2 = lock_device(host.device(2).unwrap()).config().clone();
        assert_eq!(d1.bar_address(0), Some(0xE000_0000));
        assert_eq!(d2.bar_address(0), Some(0xE000_4000));
        assert_eq!(d1.bar_address(2), Some(0xC000));
        assert_eq!(d2.bar_address(2), Some(0xC020));
        assert!(d1.memory_enabled() && d1.io_enabled() && d1.bus_master());
        assert_eq!(d1.active_windows().len(), 2);
        assert!(!assign_bars(&host, (0xE000_0000, 0x100), (0xC000, 0x1000)));
    }
}
