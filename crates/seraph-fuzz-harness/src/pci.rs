//! Fuzz target `pci_config`: PCI configuration space through the host
//! bridge (ports 0xCF8-0xCFF) as a guest drives it, with BAR moves applied
//! to the machine's buses after every write, and BAR accesses wherever the
//! BARs end up.
//!
//! Invariants: nothing panics; a BAR never decodes over guest RAM, the
//! framebuffer or the local APIC; a sized BAR reads back a mask that matches
//! its size.

use std::sync::{Arc, Mutex};

use seraph_bus::{Bus, BusDevice};
use seraph_irq::IrqLine;
use seraph_memory::layout;
use seraph_pci::testdev::TestDevice;
use seraph_vmm::devices::PciBus;

use crate::bytes::Bytes;

/// Guest RAM of the fuzzed machine.
const RAM: u64 = 256 << 20;

/// Runs one input.
pub fn pci_config(data: &[u8]) {
    let mut input = Bytes::new(data);
    let (mut pio, mut mmio) = (Bus::new(), Bus::new());
    let mut pci = PciBus::new(RAM, false);
    for _ in 0..2 {
        let dev = Arc::new(Mutex::new(TestDevice::new(IrqLine::disconnected())));
        if pci.add("testdev", dev, &mut pio, &mut mmio).is_none() {
            return;
        }
    }
    let _ = pci.assign(&mut pio, &mut mmio);
    let host = pci.host.clone();
    let mut steps = 0;
    while !input.is_empty() && steps < 512 {
        steps += 1;
        let op = input.u8();
        let lock = || host.lock().unwrap_or_else(|p| p.into_inner());
        match op % 6 {
            0 => {
                // Select a register (slot, offset from the input).
                let addr = 0x8000_0000 | (input.u32() & 0x00ff_fffc);
                lock().write(0, &addr.to_le_bytes());
            }
            1 => {
                let off = u64::from(input.u8() % 4);
                let len = [1usize, 2, 4][usize::from(input.u8() % 3)];
                let value = input.u32().to_le_bytes();
                let len = len.min(4 - off as usize);
                lock().write(4 + off, &value[..len]);
                pci.apply_changes(&mut pio, &mut mmio);
            }
            2 => {
                let off = u64::from(input.u8() % 8);
                let mut buf = [0u8; 4];
                let len = 1 + usize::from(input.u8() % 4);
                lock().read(off, &mut buf[..len]);
            }
            3 => {
                // An MMIO access somewhere in the 4 GiB below the LAPIC.
                let addr = u64::from(input.u32());
                let mut buf = [0u8; 4];
                let _ = mmio.read(addr, &mut buf);
                let _ = mmio.write(addr, &buf);
            }
            4 => {
                let port = u64::from(input.u16());
                let mut buf = [0u8; 2];
                let _ = pio.read(port, &mut buf);
                let _ = pio.write(port, &buf);
            }
            _ => pci.apply_changes(&mut pio, &mut mmio),
        }
        // No BAR may decode over RAM, the framebuffer or the LAPIC.
        for probe in [0, RAM - 4, layout::FRAMEBUFFER_BASE, layout::LAPIC_BASE] {
            assert!(
                mmio.device_index(probe).is_none(),
                "a BAR decodes at {probe:#x}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizing_moving_and_hostile_bars_do_not_panic() {
        // Select slot 1's BAR0, write all-ones, move it over RAM, then into the window.
        let mut input = Vec::new();
        let sel = |v: u32| {
            let mut b = vec![0u8];
            b.extend_from_slice(&(v | 0x8000_0000).to_le_bytes());
            b
        };
        let write = |v: u32| {
            let mut b = vec![1u8, 0, 2];
            b.extend_from_slice(&v.to_le_bytes());
            b
        };
        input.extend(sel(1 << 11 | 0x10));
        input.extend(write(0xffff_ffff));
        input.extend(write(0x0010_0000));
        input.extend(write(0xD800_0000));
        input.extend([3, 0, 0, 0, 0xD8]);
        pci_config(&input);
        pci_config(&[0xff; 300]);
        pci_config(&[]);
    }
}
