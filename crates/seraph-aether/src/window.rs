//! The BAR windows: dword register accesses through BAR0 and the
//! IOADDR/IODATA pair of BAR1, and how byte accesses split into dwords.

use crate::{Aether, regs};

impl Aether {
    /// Reads the dword register at `offset` (4-aligned) with its side
    /// effects, which touch only the bytes in `mask` (the bytes read).
    pub(crate) fn read_dword(&mut self, bar: usize, offset: u64, mask: u32) -> u32 {
        match bar {
            0 if offset < regs::MMIO_SIZE => self.read_reg(offset as u32, mask),
            1 => match offset {
                0 => self.io_addr,
                4 => {
                    let at = u64::from(self.io_addr & !3);
                    if at < regs::MMIO_SIZE {
                        self.read_reg(at as u32, mask)
                    } else {
                        0
                    }
                }
                _ => 0,
            },
            _ => 0xFFFF_FFFF,
        }
    }

    /// Writes the dword register at `offset` (4-aligned) with its side effects.
    pub(crate) fn write_dword(&mut self, bar: usize, offset: u64, value: u32) {
        match bar {
            0 if offset < regs::MMIO_SIZE => self.write_reg(offset as u32, value),
            1 => match offset {
                0 => self.io_addr = value & 0x1_FFFC,
                4 => {
                    let at = u64::from(self.io_addr & !3);
                    if at < regs::MMIO_SIZE {
                        self.write_reg(at as u32, value);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// The stored value of a dword without side effects (to merge partial writes).
    pub(crate) fn peek_dword(&self, bar: usize, offset: u64) -> u32 {
        match bar {
            0 if offset < regs::MMIO_SIZE => self.reg(offset as u32),
            1 if offset == 0 => self.io_addr,
            _ => 0,
        }
    }
}
