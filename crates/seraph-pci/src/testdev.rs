//! A tiny PCI test device (in the spirit of QEMU's pci-testdev): one 4 KiB
//! memory BAR and one 16-port I/O BAR with a few registers, and an INTx
//! line the guest can raise and lower. It exists to prove the PCI plumbing
//! (enumeration, BAR sizing and moving, decoding, interrupts) end to end.

use seraph_irq::IrqLine;

use crate::{BarSpec, ConfigSpace, PciDevice, PciIds};

/// Vendor id of the test device (not a registered vendor: test use only).
pub const TESTDEV_VENDOR: u16 = 0x5345;
/// Device id of the test device.
pub const TESTDEV_DEVICE: u16 = 0x7e57;
/// What the magic register reads: "SVTD".
pub const TESTDEV_MAGIC: u32 = 0x5354_5644;

/// Register offsets (in both BARs).
pub mod regs {
    /// Read-only magic, [`super::TESTDEV_MAGIC`].
    pub const MAGIC: u64 = 0x0;
    /// Read/write scratch register.
    pub const SCRATCH: u64 = 0x4;
    /// Write 1 to raise INTx, 0 to lower it; reads the line level.
    pub const IRQ: u64 = 0x8;
    /// Number of register writes so far (read-only).
    pub const WRITES: u64 = 0xC;
}

/// The test device.
pub struct TestDevice {
    config: ConfigSpace,
    intx: IrqLine,
    scratch: u32,
    irq: bool,
    writes: u32,
}

impl std::fmt::Debug for TestDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDevice")
            .field("scratch", &self.scratch)
            .field("irq", &self.irq)
            .finish_non_exhaustive()
    }
}

impl TestDevice {
    /// A test device driving `intx`.
    pub fn new(intx: IrqLine) -> Self {
        let mut config = ConfigSpace::new(PciIds {
            vendor: TESTDEV_VENDOR,
            device: TESTDEV_DEVICE,
            class: 0xff,
            ..Default::default()
        });
        // Cannot fail: fixed, valid BAR layout.
        let _ = config.add_bar(0, BarSpec::memory32(0x1000));
        let _ = config.add_bar(1, BarSpec::io(0x10));
        config.set_interrupt_pin(1);
        Self {
            config,
            intx,
            scratch: 0,
            irq: false,
            writes: 0,
        }
    }

    fn update_line(&mut self) {
        let level = self.irq && !self.config.intx_disabled();
        self.config.set_interrupt_status(self.irq);
        self.intx.set_level(level);
    }

    fn register(&self, offset: u64) -> u32 {
        match offset {
            regs::MAGIC => TESTDEV_MAGIC,
            regs::SCRATCH => self.scratch,
            regs::IRQ => u32::from(self.irq),
            regs::WRITES => self.writes,
            _ => 0,
        }
    }
}

impl PciDevice for TestDevice {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn config_written(&mut self, _offset: u16, _data: &[u8]) {
        // The command register's INTx-disable bit may have changed.
        self.update_line();
    }

    fn bar_read(&mut self, _bar: usize, offset: u64, data: &mut [u8]) {
        let value = self.register(offset & !3);
        let shift = (offset & 3) * 8;
        let bytes = (u64::from(value) >> shift).to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0);
        }
    }

    fn bar_write(&mut self, _bar: usize, offset: u64, data: &[u8]) {
        self.writes = self.writes.wrapping_add(1);
        let mut value = [0u8; 4];
        for (slot, b) in value.iter_mut().zip(data) {
            *slot = *b;
        }
        let value = u32::from_le_bytes(value);
        match offset {
            regs::SCRATCH => self.scratch = value,
            regs::IRQ => {
                self.irq = value & 1 != 0;
                self.update_line();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_irq::testing::RecordingSink;
    use std::sync::Arc;

    #[test]
    fn registers_and_interrupt_line() {
        let sink = Arc::new(RecordingSink::default());
        let mut d = TestDevice::new(IrqLine::new(sink.clone(), 11));
        let mut b = [0u8; 4];
        d.bar_read(0, regs::MAGIC, &mut b);
        assert_eq!(u32::from_le_bytes(b), TESTDEV_MAGIC);
        d.bar_write(1, regs::SCRATCH, &0x1234u32.to_le_bytes());
        d.bar_read(0, regs::SCRATCH, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0x1234);
        d.bar_write(0, regs::IRQ, &[1, 0, 0, 0]);
        assert!(sink.level(11));
        // INTx disable in the command register lowers the line.
        d.config_mut().set_command(crate::command::INTX_DISABLE);
        d.config_written(4, &[0, 4]);
        assert!(!sink.level(11));
        d.config_mut().set_command(0);
        d.config_written(4, &[0, 0]);
        assert!(sink.level(11));
        d.bar_write(0, regs::IRQ, &[0, 0, 0, 0]);
        assert!(!sink.level(11));
        d.bar_read(0, regs::WRITES, &mut b);
        assert_eq!(u32::from_le_bytes(b), 3);
        let mut wide = [0u8; 8];
        d.bar_read(0, 0x1, &mut wide);
        assert_eq!(wide[..3], [0x56, 0x54, 0x53]);
    }
}
