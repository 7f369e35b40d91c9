//! PCI on the machine: the host bridge on ports 0xCF8-0xCFF, BAR windows
//! mapped onto the buses, and firmware-style BAR assignment at boot.
//!
//! A BAR window is mapped when the guest enables decoding and its address
//! is acceptable: not over RAM, the framebuffer window, the local APIC or
//! another device. A refused window is counted, logged under `--debug`,
//! and simply does not decode (accesses there read all-ones).

use std::sync::{Arc, Mutex};

use seraph_bus::{Bus, BusDevice, DeviceIndex};
use seraph_memory::layout;
use seraph_pci::config::BarWindow;
use seraph_pci::host::{SharedPciDevice, lock_device};
use seraph_pci::{BarKind, PciHost};

/// Where the VMM places 32-bit memory BARs: 0xD000_0000-0xDFFF_FFFF (the
/// memory map marks it MMIO, the boot page tables map it uncached).
pub use seraph_memory::layout::{PCI_MMIO_BASE, PCI_MMIO_SIZE};
/// Where the VMM places I/O BARs: ports 0xC000-0xFFFF.
pub const PCI_IO_BASE: u64 = 0xC000;
/// Size of the PCI I/O window.
pub const PCI_IO_SIZE: u64 = 0x4000;

/// One BAR of one device, and its bus entry.
struct BarSlot {
    slot: u8,
    bar: usize,
    kind: BarKind,
    id: DeviceIndex,
    mapped: Option<u64>,
    /// Where the guest asked for it when it was last refused.
    refused_at: Option<u64>,
}

/// A BAR as a bus device: accesses go to the PCI device's BAR handler.
struct BarRegion {
    device: SharedPciDevice,
    bar: usize,
}

impl BusDevice for BarRegion {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        lock_device(&self.device).bar_read(self.bar, offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        lock_device(&self.device).bar_write(self.bar, offset, data);
    }
}

/// The machine's PCI bus 0 and its BAR mappings.
pub struct PciBus {
    /// The host bridge (also on the port bus at 0xCF8).
    pub host: Arc<Mutex<PciHost>>,
    bars: Vec<BarSlot>,
    ram_size: u64,
    refused: u64,
    debug: bool,
}

impl std::fmt::Debug for PciBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciBus")
            .field("bars", &self.bars.len())
            .field("refused", &self.refused)
            .finish()
    }
}

/// Why a memory window may not be mapped, if it may not.
fn forbidden(window: &BarWindow, ram_size: u64) -> Option<&'static str> {
    if window.kind == BarKind::Io {
        return (window.base.saturating_add(window.size) > 0x1_0000).then_some("past port 0xFFFF");
    }
    let end = window.base.saturating_add(window.size);
    let overlaps = |lo: u64, len: u64| window.base < lo.saturating_add(len) && lo < end;
    if overlaps(0, ram_size) {
        Some("over guest RAM")
    } else if overlaps(layout::FRAMEBUFFER_BASE, layout::FRAMEBUFFER_WINDOW) {
        Some("over the framebuffer")
    } else if overlaps(layout::LAPIC_BASE, layout::LAPIC_SIZE) {
        Some("over the local APIC")
    } else {
        None
    }
}

impl PciBus {
    /// An empty bus 0 for a machine with `ram_size` bytes of RAM.
    pub fn new(ram_size: u64, debug: bool) -> Self {
        Self {
            host: Arc::new(Mutex::new(PciHost::new())),
            bars: Vec::new(),
            ram_size,
            refused: 0,
            debug,
        }
    }

    /// Puts `device` on bus 0 and gives each of its BARs a bus entry (not
    /// yet mapped). Returns its slot.
    pub fn add(
        &mut self,
        name: &str,
        device: SharedPciDevice,
        pio: &mut Bus,
        mmio: &mut Bus,
    ) -> Option<u8> {
        let slot = super::lock(&self.host).add(device.clone())?;
        let config = lock_device(&device).config().clone();
        for bar in 0..seraph_pci::config::BAR_COUNT {
            let Some(spec) = config.bar_spec(bar) else {
                continue;
            };
            let region = Arc::new(Mutex::new(BarRegion {
                device: device.clone(),
                bar,
            }));
            let bus = if spec.kind == BarKind::Io {
                &mut *pio
            } else {
                &mut *mmio
            };
            let id = bus.add_unmapped(&format!("{name}.bar{bar}"), region);
            self.bars.push(BarSlot {
                slot,
                bar,
                kind: spec.kind,
                id,
                mapped: None,
                refused_at: None,
            });
        }
        Some(slot)
    }

    /// Does firmware's job: assigns every BAR in the PCI windows and
    /// enables decoding and bus mastering, then maps the windows.
    pub fn assign(&mut self, pio: &mut Bus, mmio: &mut Bus) -> bool {
        let ok = seraph_pci::host::assign_bars(
            &super::lock(&self.host),
            (PCI_MMIO_BASE, PCI_MMIO_SIZE),
            (PCI_IO_BASE, PCI_IO_SIZE),
        );
        let slots: std::collections::BTreeSet<u8> = self.bars.iter().map(|b| b.slot).collect();
        for slot in slots {
            self.remap(slot, pio, mmio);
        }
        ok
    }

    /// Applies BAR changes the guest made through the host bridge.
    pub fn apply_changes(&mut self, pio: &mut Bus, mmio: &mut Bus) {
        let changes = super::lock(&self.host).take_changes();
        if changes.is_empty() {
            return;
        }
        let changed: std::collections::BTreeSet<u8> = changes.iter().map(|c| c.slot).collect();
        for &slot in &changed {
            self.remap(slot, pio, mmio);
        }
        // A BAR refused because another was in its way may fit now.
        let waiting: std::collections::BTreeSet<u8> = self
            .bars
            .iter()
            .filter(|b| b.refused_at.is_some())
            .map(|b| b.slot)
            .collect();
        for slot in waiting {
            self.remap(slot, pio, mmio);
        }
    }

    /// Brings the bus entries of the device in `slot` in line with its
    /// configuration space.
    fn remap(&mut self, slot: u8, pio: &mut Bus, mmio: &mut Bus) {
        let Some(device) = super::lock(&self.host).device(slot).cloned() else {
            return;
        };
        let windows = lock_device(&device).config().active_windows();
        let wanted = |entry: &BarSlot| windows.iter().find(|w| w.bar == entry.bar).copied();
        // First take every moved or disabled BAR off the bus, so that BARs
        // of one device can trade places in one change.
        for entry in self.bars.iter_mut().filter(|b| b.slot == slot) {
            if entry.mapped.is_some() && wanted(entry).map(|w| w.base) != entry.mapped {
                let bus = if entry.kind == BarKind::Io {
                    &mut *pio
                } else {
                    &mut *mmio
                };
                bus.unmap(entry.id);
                entry.mapped = None;
            }
            if wanted(entry).is_none() {
                entry.refused_at = None;
            }
        }
        for entry in self.bars.iter_mut().filter(|b| b.slot == slot) {
            let Some(window) = wanted(entry) else {
                continue;
            };
            if entry.mapped.is_some() {
                continue;
            }
            let bus = if entry.kind == BarKind::Io {
                &mut *pio
            } else {
                &mut *mmio
            };
            let refusal = forbidden(&window, self.ram_size)
                .map(str::to_owned)
                .or_else(|| {
                    bus.map(entry.id, window.base, window.size)
                        .err()
                        .map(|e| e.to_string())
                });
            match refusal {
                None => {
                    entry.mapped = Some(window.base);
                    entry.refused_at = None;
                }
                Some(why) => {
                    // Counted and logged once per place asked for; tried
                    // again whenever a BAR changes (the conflict may be gone).
                    if entry.refused_at != Some(window.base) {
                        self.refused += 1;
                        if self.debug {
                            crate::debug_line!(
                                "PCI slot {slot} BAR{} at {:#x}+{:#x} not mapped: {why}",
                                entry.bar,
                                window.base,
                                window.size
                            );
                        }
                    }
                    entry.refused_at = Some(window.base);
                }
            }
        }
    }

    /// The bus entries of the BARs of the device in `slot`.
    pub fn bar_ids(&self, slot: u8) -> Vec<(BarKind, DeviceIndex)> {
        self.bars
            .iter()
            .filter(|b| b.slot == slot)
            .map(|b| (b.kind, b.id))
            .collect()
    }

    /// BAR windows refused so far (over RAM, the LAPIC, another device...).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// True if the bridge has changes to apply.
    pub fn has_changes(&self) -> bool {
        super::lock(&self.host).has_changes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_irq::IrqLine;
    use seraph_pci::testdev::{TESTDEV_MAGIC, TestDevice, regs};

    fn cfg(host: &Arc<Mutex<PciHost>>, slot: u8, reg: u16, value: Option<u32>) -> u32 {
        let mut h = super::super::lock(host);
        let addr = 0x8000_0000u32 | u32::from(slot) << 11 | u32::from(reg);
        h.write(0, &addr.to_le_bytes());
        match value {
            Some(v) => {
                h.write(4, &v.to_le_bytes());
                0
            }
            None => {
                let mut b = [0u8; 4];
                h.read(4, &mut b);
                u32::from_le_bytes(b)
            }
        }
    }

    #[test]
    fn bars_are_assigned_moved_and_refused_over_ram() {
        let (mut pio, mut mmio) = (Bus::new(), Bus::new());
        let mut pci = PciBus::new(512 << 20, false);
        let dev = Arc::new(Mutex::new(TestDevice::new(IrqLine::disconnected())));
        let slot = pci.add("testdev", dev, &mut pio, &mut mmio).unwrap();
        assert!(pci.assign(&mut pio, &mut mmio));
        let mut b = [0u8; 4];
        assert!(mmio.read(PCI_MMIO_BASE + regs::MAGIC, &mut b).is_some());
        assert_eq!(u32::from_le_bytes(b), TESTDEV_MAGIC);
        assert!(pio.read(PCI_IO_BASE + regs::MAGIC, &mut b).is_some());
        // The guest moves BAR0.
        cfg(&pci.host, slot, 0x10, Some(0xD800_0000));
        pci.apply_changes(&mut pio, &mut mmio);
        assert!(mmio.read(PCI_MMIO_BASE, &mut b).is_none());
        assert!(mmio.read(0xD800_0000, &mut b).is_some());
        // Over RAM: refused and counted; the BAR decodes nowhere.
        cfg(&pci.host, slot, 0x10, Some(0x0010_0000));
        pci.apply_changes(&mut pio, &mut mmio);
        assert!(mmio.read(0x0010_0000, &mut b).is_none());
        assert!(mmio.read(0xD800_0000, &mut b).is_none());
        assert_eq!(pci.refused(), 1);
        // Over the LAPIC: refused too.
        cfg(&pci.host, slot, 0x10, Some(0xFEE0_0000));
        pci.apply_changes(&mut pio, &mut mmio);
        assert_eq!(pci.refused(), 2);
        // Memory decoding off: unmapped.
        cfg(&pci.host, slot, 0x10, Some(0xD000_0000));
        cfg(&pci.host, slot, 0x04, Some(0x0001));
        pci.apply_changes(&mut pio, &mut mmio);
        assert!(mmio.read(0xD000_0000, &mut b).is_none());
        assert!(pio.read(PCI_IO_BASE, &mut b).is_some());
    }

    #[test]
    fn a_bar_refused_for_a_conflict_maps_once_the_other_moves_away() {
        let (mut pio, mut mmio) = (Bus::new(), Bus::new());
        let mut pci = PciBus::new(512 << 20, false);
        let slots = ["a", "b"].map(|name| {
            let dev = Arc::new(Mutex::new(TestDevice::new(IrqLine::disconnected())));
            pci.add(name, dev, &mut pio, &mut mmio).unwrap()
        });
        let (a, b) = (slots[0], slots[1]);
        assert!(pci.assign(&mut pio, &mut mmio));
        let a_base = u64::from(cfg(&pci.host, a, 0x10, None) & !0xF);
        // B asks for A's place: refused once, however often it is retried.
        cfg(&pci.host, b, 0x10, Some(a_base as u32));
        pci.apply_changes(&mut pio, &mut mmio);
        cfg(&pci.host, b, 0x04, Some(0x0007));
        pci.apply_changes(&mut pio, &mut mmio);
        assert_eq!(pci.refused(), 1);
        // A moves away: B now decodes where it asked to be.
        cfg(&pci.host, a, 0x10, Some(0xD800_0000));
        pci.apply_changes(&mut pio, &mut mmio);
        let mut word = [0u8; 4];
        assert!(mmio.read(0xD800_0000 + regs::MAGIC, &mut word).is_some());
        assert!(mmio.read(a_base + regs::MAGIC, &mut word).is_some());
        assert_eq!(u32::from_le_bytes(word), TESTDEV_MAGIC);
        assert_eq!(pci.refused(), 1);
        let b_mem = pci
            .bar_ids(b)
            .into_iter()
            .find(|(kind, _)| *kind != BarKind::Io);
        let (_, b_id) = b_mem.unwrap();
        assert_eq!(mmio.range_of(b_id).map(|r| r.0), Some(a_base));
    }
}
