use std::sync::{Arc, Mutex};

use seraph_bus::{Bus, BusDevice, SharedDevice};

use super::*;

/// The Linux / Seraph OS sequence: ICW1 0x11, ICW2 0x20/0x28, ICW3 4/2,
/// ICW4 1, then masks.
fn init(pic: &mut PicPair, master_mask: u8, slave_mask: u8) {
    pic.port_write(0x20, 0x11);
    pic.port_write(0xA0, 0x11);
    pic.port_write(0x21, 0x20);
    pic.port_write(0xA1, 0x28);
    pic.port_write(0x21, 0x04);
    pic.port_write(0xA1, 0x02);
    pic.port_write(0x21, 0x01);
    pic.port_write(0xA1, 0x01);
    pic.port_write(0x21, master_mask);
    pic.port_write(0xA1, slave_mask);
}

fn initialized() -> PicPair {
    let mut pic = PicPair::new();
    init(&mut pic, 0x00, 0x00);
    pic
}

const EOI: u8 = 0x20;

#[test]
fn init_sequence_sets_vector_bases_and_masks() {
    let mut pic = PicPair::new();
    pic.raise_edge(0);
    assert!(!pic.has_interrupt()); // not initialized: no vector base yet
    assert_eq!(pic.acknowledge(), None);
    init(&mut pic, 0xFB, 0xFF);
    assert_eq!(pic.port_read(0x21), 0xFB);
    assert_eq!(pic.port_read(0xA1), 0xFF);
    // ICW1 cleared the request latched before initialization.
    assert!(!pic.has_interrupt());
    pic.port_write(0x21, 0xFA); // unmask IRQ0
    pic.raise_edge(0);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x20));
    assert_eq!(pic.isr(Chip::Master), 0x01);
    pic.port_write(0x20, EOI);
    assert_eq!(pic.isr(Chip::Master), 0x00);
}

#[test]
fn masked_request_waits_in_irr_until_unmasked() {
    let mut pic = PicPair::new();
    init(&mut pic, 0xFF, 0xFF);
    pic.set_irq(4, true);
    assert!(!pic.has_interrupt());
    assert_eq!(pic.irr(Chip::Master), 0x10);
    pic.port_write(0x21, 0xEF);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x24));
    // Still high: no new edge, no new request.
    pic.port_write(0x20, EOI);
    assert!(!pic.has_interrupt());
    pic.set_irq(4, false);
    pic.set_irq(4, true);
    assert_eq!(pic.acknowledge(), Some(0x24));
}

#[test]
fn priority_between_lines_and_nesting() {
    let mut pic = initialized();
    pic.raise_edge(3);
    pic.raise_edge(1);
    assert_eq!(pic.acknowledge(), Some(0x21)); // IRQ1 beats IRQ3
    // IRQ3 is lower than IRQ1 in service: it waits.
    assert!(!pic.has_interrupt());
    // IRQ0 is higher: it nests.
    pic.raise_edge(0);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x20));
    assert_eq!(pic.isr(Chip::Master), 0x03);
    pic.port_write(0x20, EOI); // ends IRQ0 (highest in service)
    assert_eq!(pic.isr(Chip::Master), 0x02);
    assert!(!pic.has_interrupt());
    pic.port_write(0x20, EOI); // ends IRQ1
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x23));
}

#[test]
fn ocw3_selects_irr_or_isr_on_command_port_reads() {
    let mut pic = initialized();
    pic.raise_edge(5);
    pic.raise_edge(6);
    assert_eq!(pic.port_read(0x20), 0x60); // IRR after init
    assert_eq!(pic.acknowledge(), Some(0x25));
    pic.port_write(0x20, 0x0B); // read ISR
    assert_eq!(pic.port_read(0x20), 0x20);
    assert_eq!(pic.port_read(0x20), 0x20); // the selection persists
    pic.port_write(0x20, 0x0A); // read IRR
    assert_eq!(pic.port_read(0x20), 0x40);
    // The data port always reads IMR.
    assert_eq!(pic.port_read(0x21), 0x00);
}

#[test]
fn specific_and_non_specific_eoi() {
    let mut pic = initialized();
    pic.raise_edge(6);
    assert_eq!(pic.acknowledge(), Some(0x26));
    pic.raise_edge(1);
    assert_eq!(pic.acknowledge(), Some(0x21));
    assert_eq!(pic.isr(Chip::Master), 0x42);
    pic.port_write(0x20, 0x60 | 6); // specific EOI for IRQ6
    assert_eq!(pic.isr(Chip::Master), 0x02);
    pic.port_write(0x20, 0x60 | 3); // specific EOI for a level not in service
    assert_eq!(pic.isr(Chip::Master), 0x02);
    pic.port_write(0x20, 0x20); // non-specific
    assert_eq!(pic.isr(Chip::Master), 0x00);
    // Rotate on non-specific EOI: IRQ1 becomes the lowest priority.
    pic.raise_edge(1);
    assert_eq!(pic.acknowledge(), Some(0x21));
    pic.port_write(0x20, 0xA0);
    pic.raise_edge(1);
    pic.raise_edge(5);
    assert_eq!(pic.acknowledge(), Some(0x25));
    // Set priority: IRQ7 lowest again (the usual order).
    pic.port_write(0x20, 0x20);
    pic.port_write(0x20, 0xC7);
    pic.raise_edge(3);
    assert_eq!(pic.acknowledge(), Some(0x21));
}

#[test]
fn cascade_irq8_to_15_through_irq2() {
    let mut pic = initialized();
    pic.set_irq(10, true);
    assert_eq!(pic.irr(Chip::Slave), 0x04);
    assert_eq!(pic.irr(Chip::Master), 0x04); // IR2 from the slave's INT
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x2A));
    assert_eq!(pic.isr(Chip::Slave), 0x04);
    assert_eq!(pic.isr(Chip::Master), 0x04);
    // IRQ14 waits behind IRQ10 on the slave (and IR2 on the master).
    pic.raise_edge(14);
    assert!(!pic.has_interrupt());
    // A master IRQ above IR2 still gets through.
    pic.raise_edge(1);
    assert_eq!(pic.acknowledge(), Some(0x21));
    pic.port_write(0x20, EOI);
    // EOI the slave, then the master: IRQ14 arrives.
    pic.port_write(0xA0, EOI);
    assert!(!pic.has_interrupt()); // master IR2 still in service
    pic.port_write(0x20, EOI);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x2E));
    // Slave mask blocks its lines.
    pic.port_write(0xA0, EOI);
    pic.port_write(0x20, EOI);
    pic.port_write(0xA1, 0x01);
    pic.raise_edge(8);
    assert!(!pic.has_interrupt());
    pic.port_write(0xA1, 0x00);
    assert_eq!(pic.acknowledge(), Some(0x28));
}

#[test]
fn spurious_irq7_when_master_request_vanishes() {
    let mut pic = initialized();
    pic.set_irq(3, true);
    assert!(pic.has_interrupt());
    pic.set_irq(3, false);
    assert_eq!(pic.acknowledge(), Some(0x27));
    assert_eq!(pic.isr(Chip::Master), 0x00); // spurious: nothing in service
    assert_eq!(pic.irr(Chip::Master), 0x00);
}

#[test]
fn spurious_irq15_leaves_master_ir2_in_service() {
    let mut pic = initialized();
    pic.set_irq(12, true);
    assert!(pic.has_interrupt());
    pic.set_irq(12, false); // the slave's request goes away before INTA
    assert_eq!(pic.acknowledge(), Some(0x2F));
    assert_eq!(pic.isr(Chip::Slave), 0x00);
    assert_eq!(pic.isr(Chip::Master), 0x04); // the OS must EOI the master
    pic.port_write(0x20, EOI);
    assert_eq!(pic.isr(Chip::Master), 0x00);
    assert!(!pic.has_interrupt());
}

#[test]
fn auto_eoi_and_poll_mode() {
    let mut pic = PicPair::new();
    pic.port_write(0x20, 0x11);
    pic.port_write(0x21, 0x30);
    pic.port_write(0x21, 0x04);
    pic.port_write(0x21, 0x03); // 8086 mode, auto EOI
    pic.raise_edge(5);
    assert_eq!(pic.acknowledge(), Some(0x35));
    assert_eq!(pic.isr(Chip::Master), 0x00);
    // Poll: OCW3 with P set, next read is the poll word and acknowledges.
    pic.raise_edge(6);
    pic.port_write(0x20, 0x0C);
    assert_eq!(pic.port_read(0x20), 0x86);
    assert_eq!(pic.irr(Chip::Master), 0x00);
    pic.port_write(0x20, 0x0C);
    assert_eq!(pic.port_read(0x20), 0x00);
}

#[test]
fn special_mask_mode_lets_lower_levels_in() {
    let mut pic = initialized();
    pic.raise_edge(3);
    assert_eq!(pic.acknowledge(), Some(0x23));
    pic.raise_edge(5);
    assert!(!pic.has_interrupt());
    pic.port_write(0x21, 0x08); // mask IRQ3 (in service)
    pic.port_write(0x20, 0x68); // OCW3: set special mask mode
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x25));
    pic.port_write(0x20, 0x48); // reset special mask mode
    pic.port_write(0x20, 0x65);
    pic.port_write(0x20, 0x63);
    assert_eq!(pic.isr(Chip::Master), 0x00);
}

#[test]
fn level_triggered_mode_follows_the_line() {
    let mut pic = PicPair::new();
    pic.port_write(0x20, 0x19); // LTIM
    pic.port_write(0x21, 0x40);
    pic.port_write(0x21, 0x04);
    pic.port_write(0x21, 0x01);
    pic.set_irq(1, true);
    assert_eq!(pic.acknowledge(), Some(0x41));
    pic.port_write(0x20, EOI);
    // Still high: requests again without a new edge.
    assert!(pic.has_interrupt());
    pic.set_irq(1, false);
    assert!(!pic.has_interrupt());
}

#[test]
fn pic_ports_on_a_bus_share_one_pair() {
    let pic = Arc::new(Mutex::new(PicPair::new()));
    let master: SharedDevice = Arc::new(Mutex::new(PicPort::new(pic.clone(), Chip::Master)));
    let slave: SharedDevice = Arc::new(Mutex::new(PicPort::new(pic.clone(), Chip::Slave)));
    let mut bus = Bus::new();
    bus.insert("pic-master", 0x20, 2, master).unwrap();
    bus.insert("pic-slave", 0xA0, 2, slave).unwrap();
    for (port, value) in [
        (0x20, 0x11),
        (0xA0, 0x11),
        (0x21, 0x20),
        (0xA1, 0x28),
        (0x21, 0x04),
        (0xA1, 0x02),
        (0x21, 0x01),
        (0xA1, 0x01),
        (0x21, 0xFB),
        (0xA1, 0xFE),
    ] {
        assert!(bus.write(port, &[value]).is_some());
    }
    let mut b = [0u8];
    bus.read(0xA1, &mut b);
    assert_eq!(b, [0xFE]);
    // A 16-bit read at 0x20 reads IRR then IMR.
    let mut w = [0u8; 2];
    bus.read(0x20, &mut w);
    assert_eq!(w, [0x00, 0xFB]);
    pic.lock().unwrap().set_irq(8, true);
    assert_eq!(pic.lock().unwrap().acknowledge(), Some(0x28));
    let mut port = PicPort::new(pic, Chip::Slave);
    let mut three = [0u8; 3];
    port.read(1, &mut three);
    assert_eq!(three, [0xFE, 0xFF, 0xFF]);
}

#[test]
fn hostile_inputs_do_not_panic() {
    let mut pic = PicPair::new();
    for v in 0..=255u8 {
        for port in [0x20, 0x21, 0xA0, 0xA1, 0x22, 0xFFFF] {
            pic.port_write(port, v);
            let _ = pic.port_read(port);
        }
        pic.set_irq(v, v & 1 == 1);
        pic.raise_edge(v);
        let _ = pic.has_interrupt();
        let _ = pic.acknowledge();
    }
    assert_eq!(pic.port_read(0x1234), 0xFF);
}

#[test]
fn can_deliver_follows_init_masks_and_in_service_blocking() {
    let mut pic = PicPair::new();
    assert!(!pic.can_deliver(0), "an uninitialized PIC delivers nothing");
    init(&mut pic, 0xFE, 0xFF);
    assert!(pic.can_deliver(0));
    assert!(!pic.can_deliver(4), "IRQ4 is masked");
    assert!(!pic.can_deliver(8), "the slave's IRQ8 is masked");
    assert!(!pic.can_deliver(2), "the cascade input is no device line");
    pic.port_write(0x21, 0xF8); // unmask IRQ0-2
    pic.port_write(0xA1, 0xFE); // unmask IRQ8
    assert!(pic.can_deliver(8));
    // IRQ0 taken and never EOI'd: IRQ0 and everything below it is blocked.
    pic.raise_edge(0);
    assert_eq!(pic.acknowledge(), Some(0x20));
    assert!(!pic.can_deliver(0));
    assert!(!pic.can_deliver(1));
    assert!(!pic.can_deliver(8), "the slave hangs off IR2, below IR0");
    pic.port_write(0x20, EOI);
    assert!(pic.can_deliver(0) && pic.can_deliver(1) && pic.can_deliver(8));
    assert!(!pic.can_deliver(200));
}

#[test]
fn elcr_makes_a_line_level_triggered_and_it_fires_again_until_lowered() {
    let mut pic = initialized();
    pic.set_elcr(Chip::Slave, 0x08); // IRQ11
    assert_eq!(pic.elcr(Chip::Slave), 0x08);
    pic.set_irq(11, true);
    assert_eq!(pic.acknowledge(), Some(0x2B));
    // The device still asserts: after EOI the same interrupt comes again.
    pic.port_write(0xA0, EOI);
    pic.port_write(0x20, EOI);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x2B));
    pic.port_write(0xA0, EOI);
    pic.port_write(0x20, EOI);
    // Withdrawn before INTA: the master's cascade input (edge-triggered)
    // is still latched, so the CPU gets the slave's spurious IRQ15, as on
    // a PC; after it nothing is pending.
    pic.set_irq(11, false);
    if pic.has_interrupt() {
        assert_eq!(pic.acknowledge(), Some(0x2F));
        pic.port_write(0x20, EOI);
    }
    assert!(!pic.has_interrupt());
    // Edge-triggered IRQ12 (ELCR bit clear) fires once per rising edge.
    pic.set_irq(12, true);
    assert_eq!(pic.acknowledge(), Some(0x2C));
    pic.port_write(0xA0, EOI);
    pic.port_write(0x20, EOI);
    assert!(!pic.has_interrupt());
    // IRQ 0-2, 8 and 13 stay edge-triggered whatever is written.
    pic.set_elcr(Chip::Master, 0xFF);
    pic.set_elcr(Chip::Slave, 0xFF);
    assert_eq!(pic.elcr(Chip::Master), 0xF8);
    assert_eq!(pic.elcr(Chip::Slave), 0xDE);
}

#[test]
fn elcr_ports_read_and_write_both_registers() {
    let pic = Arc::new(Mutex::new(PicPair::new()));
    let mut port = ElcrPort::new(pic.clone());
    port.write(0, &[0x20, 0x08]);
    let mut b = [0u8; 2];
    port.read(0, &mut b);
    assert_eq!(b, [0x20, 0x08]);
    port.read(1, &mut b);
    assert_eq!(b, [0x08, 0xFF]);
}
