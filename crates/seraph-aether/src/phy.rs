//! The PHY behind MDIC: an M88E1011-style copper PHY at address 1 that
//! always reports a 1000 Mb/s full-duplex link with auto-negotiation done.

use crate::regs::mdic;

/// The PHY's MDIO address.
pub const PHY_ADDRESS: u32 = 1;

/// PHY registers (32 of them; unknown ones read 0 and keep writes).
#[derive(Debug, Clone)]
pub struct Phy {
    regs: [u16; 32],
}

/// PHY control: auto-negotiation enable, full duplex, 1000 Mb/s.
const PCTRL_DEFAULT: u16 = 0x1140;
/// PHY control: reset (self-clearing) and restart auto-negotiation (self-clearing).
const PCTRL_SELF_CLEARING: u16 = 0x8000 | 0x0200;
/// PHY status: link up, auto-negotiation complete, extended status, 10/100 abilities.
const PSTATUS: u16 = 0x796D;

impl Default for Phy {
    fn default() -> Self {
        let mut regs = [0u16; 32];
        regs[0] = PCTRL_DEFAULT;
        regs[1] = PSTATUS;
        regs[2] = 0x0141; // PHY identifier (Marvell OUI)
        regs[3] = 0x0C20; // M88E1011, the 82540EM's PHY
        regs[4] = 0x0DE1; // auto-negotiation advertisement
        regs[5] = 0x41E1; // link partner ability: full duplex, acknowledged
        regs[6] = 0x0001; // auto-negotiation expansion
        regs[9] = 0x0E00; // 1000BASE-T control
        regs[10] = 0x3C00; // 1000BASE-T status: partner is 1000 FD capable
        regs[15] = 0x3000; // extended status: 1000BASE-T FD/HD
        regs[16] = 0x0068; // PHY specific control
        regs[17] = 0xAC00; // PHY specific status: 1000, FD, resolved, link
        Self { regs }
    }
}

impl Phy {
    /// Executes an MDIC command; returns what MDIC reads back.
    pub fn mdic(&mut self, value: u32) -> u32 {
        let reg = ((value >> mdic::REG_SHIFT) & 0x1F) as usize;
        let phy = (value >> mdic::PHY_SHIFT) & 0x1F;
        let op = value & (3 << 26);
        let keep = value & !(0xFFFF | mdic::READY | mdic::ERROR);
        if phy != PHY_ADDRESS || (op != mdic::OP_READ && op != mdic::OP_WRITE) {
            return keep | mdic::READY | mdic::ERROR;
        }
        let data = if op == mdic::OP_READ {
            self.read(reg)
        } else {
            self.write(reg, (value & 0xFFFF) as u16);
            (value & 0xFFFF) as u16
        };
        keep | u32::from(data) | mdic::READY
    }

    /// Reads register `reg`.
    pub fn read(&self, reg: usize) -> u16 {
        self.regs.get(reg).copied().unwrap_or(0)
    }

    fn write(&mut self, reg: usize, data: u16) {
        match reg {
            // Status and identity registers are read-only.
            1..=3 | 5 | 6 | 10 | 15 | 17 => {}
            0 => {
                self.regs[0] = if data & 0x8000 != 0 {
                    PCTRL_DEFAULT
                } else {
                    data & !PCTRL_SELF_CLEARING
                };
            }
            _ => {
                if let Some(r) = self.regs.get_mut(reg) {
                    *r = data;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(op: u32, phy: u32, reg: u32, data: u16) -> u32 {
        op | (phy << mdic::PHY_SHIFT) | (reg << mdic::REG_SHIFT) | u32::from(data)
    }

    #[test]
    fn reads_report_link_and_identity() {
        let mut p = Phy::default();
        let status = p.mdic(cmd(mdic::OP_READ, 1, 1, 0));
        assert_ne!(status & mdic::READY, 0);
        assert_eq!(status & mdic::ERROR, 0);
        assert_ne!(status & 0x4, 0, "link status bit");
        assert_ne!(status & 0x20, 0, "auto-negotiation complete");
        assert_eq!(p.mdic(cmd(mdic::OP_READ, 1, 2, 0)) & 0xFFFF, 0x0141);
        assert_eq!(p.mdic(cmd(mdic::OP_READ, 1, 3, 0)) & 0xFFFF, 0x0C20);
    }

    #[test]
    fn writes_stick_except_read_only_and_self_clearing_bits() {
        let mut p = Phy::default();
        p.mdic(cmd(mdic::OP_WRITE, 1, 4, 0x01E1));
        assert_eq!(p.read(4), 0x01E1);
        p.mdic(cmd(mdic::OP_WRITE, 1, 1, 0));
        assert_eq!(p.read(1), PSTATUS);
        p.mdic(cmd(mdic::OP_WRITE, 1, 0, 0x1340));
        assert_eq!(p.read(0), 0x1140, "restart-autoneg bit clears itself");
        p.mdic(cmd(mdic::OP_WRITE, 1, 0, 0x0000));
        p.mdic(cmd(mdic::OP_WRITE, 1, 0, 0x8000));
        assert_eq!(p.read(0), PCTRL_DEFAULT);
    }

    #[test]
    fn other_phy_addresses_and_opcodes_error() {
        let mut p = Phy::default();
        let v = p.mdic(cmd(mdic::OP_READ, 2, 1, 0));
        assert_ne!(v & mdic::ERROR, 0);
        assert_ne!(v & mdic::READY, 0);
        let v = p.mdic(cmd(3 << 26, 1, 1, 0));
        assert_ne!(v & mdic::ERROR, 0);
    }
}
