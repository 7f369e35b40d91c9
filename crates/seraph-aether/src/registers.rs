//! Register reads and writes with their side effects.

use crate::Aether;
use crate::regs::{self, ctrl, int, mdic, stat, status};

/// 1.024 us, the unit of RDTR/RADV/TIDV/TADV, in ns.
pub(crate) const DELAY_UNIT_NS: u64 = 1024;

impl Aether {
    /// A guest read of the register at `offset` (4-aligned, inside BAR0);
    /// read-to-clear registers clear only the bytes in `mask` (those read).
    pub(crate) fn read_reg(&mut self, offset: u32, mask: u32) -> u32 {
        match offset {
            regs::STATUS => {
                let lu = if self.link_up { status::LU } else { 0 };
                status::FD | lu | status::SPEED_1000
            }
            regs::EECD => self.eeprom.read_eecd(),
            regs::ICR => {
                let v = self.reg(regs::ICR);
                self.set_reg(regs::ICR, v & !mask);
                self.update_irq();
                v
            }
            regs::ICS | regs::IMC => 0,
            o if (regs::STATS_START..regs::STATS_END).contains(&o) => {
                let v = self.reg(o);
                self.set_reg(o, v & !mask);
                v
            }
            o => self.reg(o),
        }
    }

    /// A guest write of `value` to the register at `offset` (4-aligned, inside BAR0).
    pub(crate) fn write_reg(&mut self, offset: u32, value: u32) {
        match offset {
            regs::CTRL => {
                if value & ctrl::RST != 0 {
                    self.reset();
                    return;
                }
                let was_up = self.reg(regs::CTRL) & ctrl::SLU != 0;
                self.set_reg(regs::CTRL, value & !(ctrl::RST | ctrl::PHY_RST));
                if !was_up && value & ctrl::SLU != 0 {
                    self.raise(int::LSC);
                }
            }
            regs::STATUS => {}
            regs::EECD => self.eeprom.write_eecd(value),
            regs::EERD => {
                let v = self.eeprom.eerd(value);
                self.set_reg(regs::EERD, v);
            }
            regs::MDIC => {
                let v = self.phy.mdic(value);
                self.set_reg(regs::MDIC, v);
                if value & mdic::INT_EN != 0 {
                    self.raise(int::MDAC);
                }
            }
            regs::ICR => {
                let v = self.reg(regs::ICR) & !value;
                self.set_reg(regs::ICR, v);
                self.update_irq();
            }
            regs::ICS => self.raise(value & int::ALL),
            regs::IMS => {
                let v = self.reg(regs::IMS) | (value & int::ALL);
                self.set_reg(regs::IMS, v);
                self.update_irq();
            }
            regs::IMC => {
                let v = self.reg(regs::IMS) & !value;
                self.set_reg(regs::IMS, v);
                self.update_irq();
            }
            regs::RCTL => {
                self.set_reg(regs::RCTL, value);
                self.rx_halted = false;
                self.drain_rx_queue();
            }
            regs::TCTL => {
                self.set_reg(regs::TCTL, value);
                self.tx_halted = false;
                self.tx_partial.clear();
                self.process_tx();
            }
            regs::RDBAL | regs::TDBAL => self.ring_reg(offset, value & !0xF),
            regs::RDBAH | regs::TDBAH => self.ring_reg(offset, value),
            regs::RDLEN | regs::TDLEN => self.ring_reg(offset, value & 0x000F_FF80),
            regs::RDH | regs::TDH => self.ring_reg(offset, value & 0xFFFF),
            regs::RDT => {
                self.set_reg(regs::RDT, value & 0xFFFF);
                self.drain_rx_queue();
            }
            regs::TDT => {
                self.set_reg(regs::TDT, value & 0xFFFF);
                self.process_tx();
            }
            regs::RDTR => {
                self.set_reg(regs::RDTR, value & 0xFFFF);
                // FPD: flush the pending receive timer now.
                if value & (1 << 31) != 0
                    && (self.timers.rx_packet.is_some() || self.timers.rx_absolute.is_some())
                {
                    self.timers.rx_packet = None;
                    self.timers.rx_absolute = None;
                    self.raise(int::RXT0);
                }
            }
            regs::RADV | regs::TIDV | regs::TADV => self.set_reg(offset, value & 0xFFFF),
            o if (regs::STATS_START..regs::STATS_END).contains(&o) => {}
            o if (regs::RAL0..regs::RAL0 + 8 * regs::RA_ENTRIES).contains(&o) && o % 8 == 4 => {
                self.set_reg(o, value & (regs::RAH_AV | 0x3_FFFF));
            }
            o => self.set_reg(o, value),
        }
    }

    /// A write to a ring's base, length or head: the ring may run again.
    fn ring_reg(&mut self, offset: u32, value: u32) {
        self.set_reg(offset, value);
        if offset < regs::TDBAL {
            self.rx_halted = false;
            self.drain_rx_queue();
        } else {
            self.tx_halted = false;
            self.tx_partial.clear();
        }
    }
}

/// Counts a frame of `octets` (with FCS) into the size bins starting at `bin64`.
pub(crate) fn size_bin(bin64: u32, octets: usize) -> u32 {
    let index = match octets {
        0..=64 => 0,
        65..=127 => 1,
        128..=255 => 2,
        256..=511 => 3,
        512..=1023 => 4,
        _ => 5,
    };
    bin64 + 4 * index
}

/// Statistics offsets used by both directions.
pub(crate) use stat::{
    BPRC, BPTC, GORCL, GOTCL, GPRC, GPTC, MPC, MPRC, MPTC, PRC64, PTC64, RNBC, ROC, TORL, TOTL,
    TPR, TPT, TSCTC, TSCTFC,
};
/// Receive undersize count.
pub(crate) const RUC: u32 = 0x40A4;
