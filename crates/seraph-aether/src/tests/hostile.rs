//! Hostile rings and registers: the ring stops, a counter moves, nothing panics.

use super::*;
use crate::regs::{rctl, stat};
use crate::{RxDrop, RxOutcome};

const BCAST: [u8; 6] = [0xFF; 6];

fn rx_rig() -> Rig {
    let mut rig = Rig::new();
    rig.bus_master(true);
    rig.setup_rx(8, rctl::SECRC | rctl::BAM);
    rig
}

#[test]
fn bad_receive_ring_lengths_stop_the_ring() {
    for len in [0u32, 100] {
        let mut rig = rx_rig();
        rig.w(regs::RDLEN, len);
        assert_eq!(rig.r(regs::RDLEN), 0, "low 7 bits are ignored");
        assert_eq!(
            rig.card.receive(&frame(BCAST, 60, 0)),
            RxOutcome::Dropped(RxDrop::RingError)
        );
        assert_eq!(rig.card.counters().rx_ring_errors, 1);
        // Halted: later frames queue and then count as missed.
        for _ in 0..300 {
            rig.card.receive(&frame(BCAST, 60, 0));
        }
        assert_eq!(rig.card.counters().rx_ring_errors, 1);
        assert!(rig.r(stat::MPC) > 0);
        // Reprogramming the ring restarts it and drains the queue.
        rig.w(regs::RDLEN, 8 * 16);
        assert_eq!(rig.r(regs::RDH), 7, "the queued frames filled the ring");
    }
}

#[test]
fn heads_and_tails_past_the_ring_stop_it() {
    let mut rig = rx_rig();
    rig.w(regs::RDT, 8);
    assert_eq!(rig.card.counters().rx_ring_errors, 0, "no frame yet");
    rig.card.receive(&frame(BCAST, 60, 0));
    assert_eq!(rig.card.counters().rx_ring_errors, 1);
    let mut rig = rx_rig();
    rig.w(regs::RDH, 0xFFFF);
    rig.card.receive(&frame(BCAST, 60, 0));
    assert_eq!(rig.card.counters().rx_ring_errors, 1);
}

#[test]
fn rings_and_buffers_outside_ram_stop_the_ring() {
    let mut rig = rx_rig();
    rig.w(regs::RDBAL, 0xFFFF_FF00);
    rig.w(regs::RDBAH, 0xFFFF_FFFF);
    rig.card.receive(&frame(BCAST, 60, 0));
    assert_eq!(rig.card.counters().rx_ring_errors, 1);
    // A ring that runs off the end of RAM.
    let mut rig = rx_rig();
    rig.w(regs::RDBAL, (RAM - 64) as u32);
    rig.card.receive(&frame(BCAST, 60, 0));
    assert_eq!(rig.card.counters().rx_ring_errors, 1);
    // A buffer address outside RAM.
    let mut rig = rx_rig();
    rig.dma.write_u64(RX_RING, u64::MAX - 10).unwrap();
    assert_eq!(
        rig.card.receive(&frame(BCAST, 60, 0)),
        RxOutcome::Dropped(RxDrop::RingError)
    );
    assert_eq!(rig.r(regs::RDH), 0);
}

fn tx_rig() -> Rig {
    let mut rig = Rig::new();
    rig.bus_master(true);
    rig.setup_tx(8);
    rig
}

#[test]
fn bad_transmit_rings_stop_and_restart_when_reprogrammed() {
    let mut rig = tx_rig();
    rig.w(regs::TDLEN, 0);
    rig.send(&frame(BCAST, 60, 0));
    assert_eq!(rig.card.counters().tx_ring_errors, 1);
    rig.w(regs::TDT, 2);
    assert_eq!(rig.card.counters().tx_ring_errors, 1, "halted: no new work");
    rig.w(regs::TDLEN, 8 * 16);
    rig.w(regs::TDT, 1);
    assert_eq!(rig.out.frames.lock().unwrap().len(), 1);

    let mut rig = tx_rig();
    rig.w(regs::TDT, 9);
    assert_eq!(rig.card.counters().tx_ring_errors, 1);

    let mut rig = tx_rig();
    rig.tx_desc(&[0; 60], 0x09, false);
    let mut d = [0u8; 8];
    d.copy_from_slice(&(RAM as u64 - 8).to_le_bytes());
    rig.dma.write(TX_RING, &d).unwrap();
    rig.w(regs::TDT, 1);
    assert_eq!(
        rig.card.counters().tx_ring_errors,
        1,
        "buffer runs past RAM"
    );
    assert!(rig.out.frames.lock().unwrap().is_empty());
}

#[test]
fn frames_over_16_kib_stop_the_transmit_ring() {
    let mut rig = tx_rig();
    let chunk = vec![0xAB; 4000];
    for _ in 0..5 {
        rig.tx_desc(&chunk, 0, false);
    }
    rig.w(regs::TDT, rig.tx_tail as u32);
    assert_eq!(rig.card.counters().tx_ring_errors, 1);
    assert!(rig.out.frames.lock().unwrap().is_empty());
    assert_eq!(
        rig.r(regs::TDH),
        4,
        "stopped at the descriptor that overflowed"
    );
}

#[test]
fn a_ring_whose_tail_chases_its_head_does_bounded_work() {
    let mut rig = tx_rig();
    // Every descriptor of the ring queued, no EOP anywhere: one pass, no frame.
    for _ in 0..7 {
        rig.tx_desc(&[1; 100], 0x08, false);
    }
    rig.w(regs::TDT, 7);
    assert_eq!(rig.r(regs::TDH), 7);
    assert!(rig.out.frames.lock().unwrap().is_empty());
}

#[test]
fn garbage_in_every_register_never_panics() {
    let mut rig = Rig::new();
    rig.bus_master(true);
    let mut x = 0x1234_5678_9ABC_DEF0u64;
    for round in 0..3 {
        for off in (0..regs::MMIO_SIZE as u32).step_by(4) {
            if off == regs::CTRL {
                continue;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = if round == 0 { 0xFFFF_FFFF } else { x as u32 };
            rig.w(off, v);
        }
        for _ in 0..50 {
            rig.card.receive(&frame(BCAST, 60 + (x % 1400) as usize, 0));
        }
        for off in (0..regs::MMIO_SIZE as u32).step_by(4) {
            rig.r(off);
        }
        rig.card.on_deadline(u64::MAX);
    }
    let mut b = [0u8; 8];
    rig.card.bar_read(0, u64::MAX - 2, &mut b);
    rig.card.bar_write(0, u64::MAX - 2, &b);
    rig.card.bar_read(1, u64::MAX, &mut b);
}
