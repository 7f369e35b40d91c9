use super::*;

fn space() -> ConfigSpace {
    ConfigSpace::new(PciIds {
        vendor: 0x8086,
        device: 0x100e,
        class: 0x02,
        revision: 3,
        ..Default::default()
    })
}

#[test]
fn identity_is_read_only() {
    let mut c = space();
    c.write(0, &[0, 0, 0, 0]);
    assert_eq!(c.read_value(0, 4), 0x100e_8086);
    assert_eq!(c.read_value(reg::REVISION, 1), 3);
    assert_eq!(c.read_value(reg::CLASS_CODE + 2, 1), 2);
}

#[test]
fn bar_sizing_reads_back_the_size_mask() {
    let mut c = space();
    c.add_bar(0, BarSpec::memory32(0x2_0000)).unwrap();
    c.add_bar(1, BarSpec::io(0x40)).unwrap();
    c.write(reg::BAR0, &0xffff_ffffu32.to_le_bytes());
    assert_eq!(c.read_value(reg::BAR0, 4), 0xfffe_0000);
    c.write(reg::BAR0 + 4, &0xffff_ffffu32.to_le_bytes());
    assert_eq!(c.read_value(reg::BAR0 + 4, 4), 0xffff_ffc1);
    let moved = c.write(reg::BAR0, &0xfebc_0000u32.to_le_bytes());
    assert_eq!(moved, vec![0]);
    assert_eq!(c.bar_address(0), Some(0xfebc_0000));
    // Unimplemented BARs read zero and ignore writes.
    c.write(reg::BAR0 + 8, &0xffff_ffffu32.to_le_bytes());
    assert_eq!(c.read_value(reg::BAR0 + 8, 4), 0);
}

#[test]
fn sixty_four_bit_bars_span_two_registers() {
    let mut c = space();
    c.add_bar(0, BarSpec::memory64(0x4000)).unwrap();
    assert_eq!(c.add_bar(1, BarSpec::io(4)), Err(ConfigError::BarInUse(1)));
    assert_eq!(
        c.add_bar(5, BarSpec::memory64(0x4000)),
        Err(ConfigError::BadBarIndex(5))
    );
    c.write(reg::BAR0, &0x1234_5000u32.to_le_bytes());
    c.write(reg::BAR0 + 4, &0x0000_0001u32.to_le_bytes());
    assert_eq!(c.bar_address(0), Some(0x1_1234_4000));
    assert_eq!(c.read_value(reg::BAR0, 4) & 0xf, 0x4);
    c.set_bar_address(0, 0x8_0000_0000);
    assert_eq!(c.bar_address(0), Some(0x8_0000_0000));
}

#[test]
fn byte_writes_to_bars_merge() {
    let mut c = space();
    c.add_bar(0, BarSpec::memory32(0x1000)).unwrap();
    c.write(reg::BAR0 + 3, &[0xfe]);
    c.write(reg::BAR0 + 2, &[0xbc]);
    assert_eq!(c.bar_address(0), Some(0xfebc_0000));
}

#[test]
fn bad_bar_sizes_are_refused() {
    let mut c = space();
    assert_eq!(
        c.add_bar(0, BarSpec::memory32(0x3000)),
        Err(ConfigError::BadBarSize(0x3000))
    );
    assert_eq!(
        c.add_bar(0, BarSpec::memory32(8)),
        Err(ConfigError::BadBarSize(8))
    );
    assert_eq!(
        c.add_bar(6, BarSpec::io(4)),
        Err(ConfigError::BadBarIndex(6))
    );
}

#[test]
fn command_register_gates_windows() {
    let mut c = space();
    c.add_bar(0, BarSpec::memory32(0x1000)).unwrap();
    c.add_bar(1, BarSpec::io(0x10)).unwrap();
    c.set_bar_address(0, 0xe000_0000);
    c.set_bar_address(1, 0xc000);
    assert!(c.active_windows().is_empty());
    c.write(reg::COMMAND, &[0x02, 0x00]);
    assert_eq!(c.active_windows().len(), 1);
    c.write(reg::COMMAND, &[0x07, 0x04]);
    assert_eq!(c.active_windows().len(), 2);
    assert!(c.bus_master() && c.intx_disabled());
    // Reserved command bits stay zero.
    c.write(reg::COMMAND, &[0xff, 0xff]);
    assert_eq!(c.command(), 0x0407);
}

#[test]
fn capabilities_chain_from_the_pointer() {
    let mut c = space();
    let a = c.add_capability(0x05, &[0; 12], &[0x01]).unwrap();
    let b = c
        .add_capability(0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &[])
        .unwrap();
    assert_eq!(a, 0x40);
    assert_eq!(b, 0x50);
    assert_eq!(c.read_value(reg::CAPABILITIES, 1), 0x40);
    assert_eq!(c.read_value(0x41, 1), 0x50);
    assert_eq!(c.read_value(0x51, 1), 0);
    assert_ne!(c.read_value(reg::STATUS, 2) & 0x10, 0);
    c.write(0x42, &[0xff]);
    assert_eq!(c.read_value(0x42, 1), 0x01);
    c.write(0x52, &[0xff]);
    assert_eq!(c.read_value(0x52, 1), 1);
}

#[test]
fn accesses_past_the_end_are_harmless() {
    let mut c = space();
    let mut b = [0u8; 4];
    c.read(254, &mut b);
    assert_eq!(b[2..], [0xff, 0xff]);
    c.write(255, &[1, 2, 3, 4]);
    c.write(u16::MAX, &[1; 8]);
}
