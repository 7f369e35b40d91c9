//! INTx (level, INTMS/INTMC, the command register's INTx disable) and
//! MSI-X (a vector per completion queue, masking, pending bits).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{DATA, Driver, INTX_LINE, cmd};
use seraph_nvme::controller::{MSIX_PBA, MSIX_TABLE};
use seraph_pci::PciDevice;

/// Finds the MSI-X capability and returns its offset.
fn msix_cap(d: &Driver) -> u16 {
    let cfg = d.nvme.config();
    let mut at = cfg.read_value(0x34, 1) as u16;
    while at != 0 {
        if cfg.read_value(at, 1) == 0x11 {
            return at;
        }
        at = cfg.read_value(at + 1, 1) as u16;
    }
    panic!("no MSI-X capability");
}

fn config_write(d: &mut Driver, offset: u16, data: &[u8]) {
    d.nvme.config_mut().write(offset, data);
    d.nvme.config_written(offset, data);
}

fn program_vector(d: &mut Driver, v: u64, vector: u8) {
    let e = MSIX_TABLE + 16 * v;
    d.write32(e, 0xFEE0_0000);
    d.write32(e + 4, 0);
    d.write32(e + 8, u32::from(vector));
    d.write32(e + 12, 0);
}

#[test]
fn the_capability_describes_the_table_and_pba_in_bar0() {
    let d = Driver::memory_disk(8, 512, false);
    let cfg = d.nvme.config();
    assert_eq!(cfg.read_value(0x0A, 2), 0x0108, "class 01/08");
    assert_eq!(cfg.read_value(0x09, 1), 0x02, "prog-if NVMe");
    assert_eq!(cfg.read_value(0x10, 4) & 0x7, 0x4, "64-bit memory BAR0");
    assert_eq!(cfg.read_value(0x3D, 1), 1, "INTA#");
    let cap = msix_cap(&d);
    assert_eq!(cfg.read_value(cap + 2, 2) & 0x7FF, 63, "64 vectors");
    assert_eq!(cfg.read_value(cap + 4, 4), MSIX_TABLE, "table in BAR0");
    assert_eq!(cfg.read_value(cap + 8, 4), MSIX_PBA, "PBA in BAR0");
}

#[test]
fn intx_follows_unacknowledged_completions_and_the_masks() {
    let mut d = Driver::memory_disk(8, 512, false);
    d.enable();
    assert!(!d.sink.level(INTX_LINE));
    d.queue(0, cmd(0x08));
    d.ring(0);
    assert!(d.sink.level(INTX_LINE), "a completion raises INTx");
    assert_eq!(d.nvme.config().read_value(0x06, 2) & 0x8, 0x8, "status bit");
    // INTMS masks, INTMC unmasks; both read back the mask.
    d.write32(0x0C, 1);
    assert!(!d.sink.level(INTX_LINE));
    assert_eq!(d.read32(0x10), 1);
    d.write32(0x10, 1);
    assert!(d.sink.level(INTX_LINE));
    // The command register's INTx disable.
    config_write(&mut d, 0x04, &[0x06, 0x04]);
    assert!(!d.sink.level(INTX_LINE));
    config_write(&mut d, 0x04, &[0x06, 0x00]);
    assert!(d.sink.level(INTX_LINE));
    // Acknowledging the completion lowers the line.
    assert!(d.reap(0).is_some());
    assert!(!d.sink.level(INTX_LINE));
    // An I/O CQ without interrupts never raises it (a polling guest).
    let mut c = cmd(0x05);
    c.prp1 = common::IO_RINGS;
    c.cdw[0] = 1 | 15 << 16;
    c.cdw[1] = 1;
    d.admin_ok(c);
    let mut s = cmd(0x01);
    s.prp1 = common::IO_RINGS + 0x10000;
    s.cdw[0] = 1 | 15 << 16;
    s.cdw[1] = 1 | 1 << 16;
    d.admin_ok(s);
    d.sq[1] = Some(common::Ring {
        base: common::IO_RINGS + 0x10000,
        size: 16,
        index: 0,
        phase: true,
    });
    d.cq[1] = Some(common::Ring {
        base: common::IO_RINGS,
        size: 16,
        index: 0,
        phase: true,
    });
    d.queue(1, Driver::rw(0x02, 0, 1, DATA, 0));
    d.ring(1);
    assert!(!d.sink.level(INTX_LINE));
    assert!(d.peek(1).is_some(), "polling finds the completion");
}

#[test]
fn msix_signals_each_queue_s_vector_and_honours_masks() {
    let mut d = Driver::memory_disk(64, 512, false);
    let cap = msix_cap(&d);
    d.enable();
    for v in 0..3 {
        program_vector(&mut d, v, 0x40 + v as u8);
    }
    config_write(&mut d, cap + 3, &[0x80]);
    d.create_pair(1, 16, 1);
    d.create_pair(2, 16, 2);
    let vectors = |d: &Driver| {
        d.sink
            .messages()
            .iter()
            .map(|m| m.vector())
            .collect::<Vec<_>>()
    };
    // Admin completions while creating the queues went to vector 0.
    assert!(vectors(&d).iter().all(|v| *v == 0x40));
    assert!(!d.sink.level(INTX_LINE), "no INTx with MSI-X on");
    d.sink.clear_events();
    d.io(2, Driver::rw(0x02, 0, 1, DATA, 0));
    d.io(1, Driver::rw(0x02, 0, 1, DATA, 0));
    assert_eq!(vectors(&d), vec![0x42, 0x41]);
    assert_eq!(d.sink.messages()[0].address, 0xFEE0_0000);
    // Mask vector 1: the completion is pending, then delivered on unmask.
    d.sink.clear_events();
    d.write32(MSIX_TABLE + 16 + 12, 1);
    d.io(1, Driver::rw(0x02, 0, 1, DATA, 0));
    assert!(d.sink.messages().is_empty());
    assert_eq!(d.read32(MSIX_PBA) & 0b10, 0b10, "pending bit");
    d.write32(MSIX_TABLE + 16 + 12, 0);
    assert_eq!(vectors(&d), vec![0x41]);
    assert_eq!(d.read32(MSIX_PBA), 0);
    // Function mask.
    d.sink.clear_events();
    config_write(&mut d, cap + 3, &[0xC0]);
    d.io(2, Driver::rw(0x02, 0, 1, DATA, 0));
    assert!(d.sink.messages().is_empty());
    assert_eq!(d.read32(MSIX_PBA) & 0b100, 0b100);
    config_write(&mut d, cap + 3, &[0x80]);
    assert_eq!(vectors(&d), vec![0x42]);
    // The table reads back what was written (an 8-byte read of address).
    assert_eq!(d.read64(MSIX_TABLE + 32), 0xFEE0_0000);
    assert_eq!(d.read32(MSIX_TABLE + 32 + 8), 0x42);
}
