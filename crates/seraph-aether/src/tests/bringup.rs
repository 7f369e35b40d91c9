//! A driver's bring-up: identity, reset, EEPROM, PHY, interrupts, I/O window.

use super::*;
use crate::regs::{ctrl, eerd, int, mdic, status};
use crate::{DEFAULT_MAC, eeprom};

#[test]
fn pci_identity_bars_and_pin() {
    let rig = Rig::new();
    let c = rig.card.config();
    assert_eq!(c.read_value(0, 2), 0x8086);
    assert_eq!(c.read_value(2, 2), 0x100E);
    assert_eq!(c.read_value(0x0B, 1), 0x02, "network controller");
    let bar0 = c.bar_spec(0).unwrap();
    assert_eq!(bar0.kind, seraph_pci::BarKind::Memory32);
    assert_eq!(bar0.size, 128 * 1024);
    assert_eq!(c.bar_spec(1).unwrap().kind, seraph_pci::BarKind::Io);
    assert_eq!(c.interrupt_pin(), 1);
}

#[test]
fn reset_completes_at_once_and_status_reports_a_gigabit_link() {
    let mut rig = Rig::new();
    rig.w(regs::IMS, int::RXT0);
    let c = rig.r(regs::CTRL);
    rig.w(regs::CTRL, c | ctrl::RST);
    assert_eq!(rig.r(regs::CTRL) & ctrl::RST, 0, "RST clears itself");
    assert_eq!(rig.r(regs::IMS), 0, "reset clears the mask");
    let s = rig.r(regs::STATUS);
    assert_ne!(s & status::LU, 0);
    assert_ne!(s & status::FD, 0);
    assert_eq!(s & 0xC0, status::SPEED_1000);
    rig.w(regs::STATUS, 0);
    assert_eq!(rig.r(regs::STATUS), s, "STATUS is read-only");
}

#[test]
fn eerd_reads_the_mac_and_a_valid_checksum() {
    let mut rig = Rig::with(AetherConfig {
        mac: [0x02, 0x53, 0x45, 0x52, 0x01, 0x02],
        ..AetherConfig::default()
    });
    let mut words = Vec::new();
    for a in 0..eeprom::WORDS as u32 {
        rig.w(regs::EERD, eerd::START | (a << eerd::ADDR_SHIFT));
        let v = rig.r(regs::EERD);
        assert_ne!(v & eerd::DONE, 0, "done at once");
        words.push((v >> 16) as u16);
    }
    assert_eq!(&words[..3], &[0x5302, 0x5245, 0x0201]);
    let sum = words.iter().fold(0u16, |a, &w| a.wrapping_add(w));
    assert_eq!(sum, 0xBABA);
}

#[test]
fn ral0_rah0_hold_the_mac_and_reset_reloads_them() {
    let mut rig = Rig::new();
    let ral = rig.r(regs::RAL0);
    let rah = rig.r(regs::RAH0);
    assert_eq!(ral.to_le_bytes(), DEFAULT_MAC[..4]);
    assert_eq!((rah as u16).to_le_bytes(), DEFAULT_MAC[4..]);
    assert_ne!(rah & regs::RAH_AV, 0);
    rig.w(regs::RAL0, 0x1234_5678);
    rig.w(regs::RAH0, 0);
    assert_eq!(rig.r(regs::RAL0), 0x1234_5678);
    rig.w(regs::CTRL, ctrl::RST);
    assert_eq!(rig.r(regs::RAL0), ral);
    assert_eq!(rig.r(regs::RAH0), rah);
}

#[test]
fn mdic_reads_the_phy_link_status() {
    let mut rig = Rig::new();
    rig.w(
        regs::MDIC,
        mdic::OP_READ | (1 << mdic::PHY_SHIFT) | (1 << mdic::REG_SHIFT),
    );
    let v = rig.r(regs::MDIC);
    assert_ne!(v & mdic::READY, 0);
    assert_eq!(v & mdic::ERROR, 0);
    assert_ne!(v & 0x0004, 0, "PHY link up");
    rig.w(regs::MDIC, mdic::OP_READ | (7 << mdic::PHY_SHIFT));
    assert_ne!(rig.r(regs::MDIC) & mdic::ERROR, 0);
}

#[test]
fn icr_is_read_to_clear_and_the_line_follows_ims() {
    let mut rig = Rig::new();
    rig.bus_master(true);
    rig.w(regs::ICS, int::TXQE | int::LSC);
    assert!(!rig.line(), "masked");
    rig.w(regs::IMS, int::LSC);
    assert!(rig.line());
    assert_eq!(rig.r(regs::IMS), int::LSC);
    assert_eq!(
        rig.card.config().read_value(6, 2) & 0x8,
        0x8,
        "PCI status interrupt bit"
    );
    assert_eq!(rig.r(regs::ICR), int::TXQE | int::LSC);
    assert!(!rig.line());
    assert_eq!(rig.r(regs::ICR), 0);
    rig.w(regs::ICS, int::RXT0);
    rig.w(regs::IMS, int::RXT0);
    assert!(rig.line());
    rig.w(regs::IMC, int::RXT0);
    assert!(!rig.line());
    rig.w(regs::IMS, int::RXT0);
    assert!(rig.line());
    // Writing 1s to ICR clears those causes.
    rig.w(regs::ICR, int::RXT0);
    assert!(!rig.line());
    assert_eq!(rig.irq.rising_edges(LINE), 3);
}

#[test]
fn intx_disable_holds_the_line_low() {
    let mut rig = Rig::new();
    rig.w(regs::IMS, int::TXDW);
    let cmd = command::MEMORY_SPACE | command::INTX_DISABLE;
    rig.card.config_mut().set_command(cmd);
    rig.card.config_written(4, &cmd.to_le_bytes());
    rig.w(regs::ICS, int::TXDW);
    assert!(!rig.line());
    rig.bus_master(true);
    assert!(rig.line(), "re-enabling INTx asserts the pending cause");
}

#[test]
fn receive_interrupts_are_enabled_by_rctl_ims_and_intx() {
    let mut rig = Rig::new();
    rig.bus_master(true);
    assert!(!rig.card.receive_interrupts_enabled());
    rig.w(regs::RCTL, regs::rctl::EN);
    rig.w(regs::IMS, int::TXDW);
    assert!(
        !rig.card.receive_interrupts_enabled(),
        "TXDW is not a receive cause"
    );
    rig.w(regs::IMS, int::RXT0);
    assert!(rig.card.receive_interrupts_enabled());
    let cmd = command::MEMORY_SPACE | command::INTX_DISABLE;
    rig.card.config_mut().set_command(cmd);
    assert!(!rig.card.receive_interrupts_enabled());
}

#[test]
fn setting_link_up_raises_lsc() {
    let mut rig = Rig::new();
    rig.w(regs::CTRL, 0);
    rig.r(regs::ICR);
    rig.w(regs::CTRL, ctrl::SLU);
    assert_eq!(rig.r(regs::ICR) & int::LSC, int::LSC);
    rig.card.set_link_up(false);
    assert_eq!(rig.r(regs::STATUS) & status::LU, 0);
    assert_eq!(rig.r(regs::ICR) & int::LSC, int::LSC);
}

#[test]
fn the_io_window_reaches_every_register() {
    let mut rig = Rig::new();
    rig.card.bar_write(1, 0, &regs::RAL0.to_le_bytes());
    let mut b = [0u8; 4];
    rig.card.bar_read(1, 0, &mut b);
    assert_eq!(u32::from_le_bytes(b), regs::RAL0);
    rig.card.bar_read(1, 4, &mut b);
    assert_eq!(b, DEFAULT_MAC[..4]);
    rig.card.bar_write(1, 0, &regs::IMS.to_le_bytes());
    rig.card.bar_write(1, 4, &int::RXO.to_le_bytes());
    assert_eq!(rig.r(regs::IMS), int::RXO);
    // An IOADDR past the window reads 0 and ignores writes.
    rig.card.bar_write(1, 0, &0xFFFF_FFFFu32.to_le_bytes());
    rig.card.bar_write(1, 4, &[1, 2, 3, 4]);
    rig.card.bar_read(1, 4, &mut b);
    assert!(b == [0; 4] || rig.r(0x1FFFC) == u32::from_le_bytes(b));
    rig.card.bar_read(1, 0x20, &mut b);
    assert_eq!(b, [0; 4]);
}

#[test]
fn partial_and_odd_width_accesses_merge_into_registers() {
    let mut rig = Rig::new();
    rig.card.bar_write(0, u64::from(regs::RDBAL) + 1, &[0x12]);
    assert_eq!(rig.r(regs::RDBAL), 0x1200);
    let mut two = [0u8; 2];
    rig.card.bar_read(0, u64::from(regs::RAL0) + 2, &mut two);
    assert_eq!(two, DEFAULT_MAC[2..4]);
    // An 8-byte access spanning two registers.
    rig.card.bar_write(
        0,
        u64::from(regs::TDBAL),
        &0x0000_0001_0000_2000u64.to_le_bytes(),
    );
    assert_eq!(rig.r(regs::TDBAL), 0x2000);
    assert_eq!(rig.r(regs::TDBAH), 1);
    let mut far = [0u8; 4];
    rig.card.bar_read(0, 0x2_0000, &mut far);
    assert_eq!(far, [0xFF; 4], "past BAR0");
    rig.card.bar_read(3, 0, &mut far);
    assert_eq!(far, [0xFF; 4], "no such BAR");
}

#[test]
fn microwire_reads_through_eecd() {
    use crate::regs::eecd;
    let mut rig = Rig::new();
    let clock = |rig: &mut Rig, di: bool| {
        let base = eecd::CS | eecd::REQ | if di { eecd::DI } else { 0 };
        rig.w(regs::EECD, base);
        rig.w(regs::EECD, base | eecd::SK);
        let out = rig.r(regs::EECD) & eecd::DO != 0;
        rig.w(regs::EECD, base);
        out
    };
    rig.w(regs::EECD, eecd::REQ);
    assert_ne!(rig.r(regs::EECD) & (eecd::GNT | eecd::PRES), 0);
    for bit in [true, true, false, false, false, false, false, false, true] {
        clock(&mut rig, bit);
    }
    let mut word = 0u16;
    for _ in 0..16 {
        word = (word << 1) | u16::from(clock(&mut rig, false));
    }
    assert_eq!(word, 0x5245, "word 1 of the default MAC");
}
