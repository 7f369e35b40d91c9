//! Review fixes: frames no ring can hold, narrow reads of read-to-clear
//! registers, and the transmit work done per doorbell.

use super::*;
use crate::regs::{int, rctl, stat};
use crate::{RxDrop, RxOutcome};
use seraph_clock::Clock;

const BCAST: [u8; 6] = [0xFF; 6];

#[test]
fn a_frame_no_ring_state_can_hold_is_dropped_and_later_frames_flow() {
    let mut rig = Rig::new();
    rig.bus_master(true);
    // 8 descriptors (7 usable) of 256 bytes: at most 1792 bytes per frame.
    rig.setup_rx(8, rctl::LPE | rctl::BAM | (3 << rctl::BSIZE_SHIFT));
    assert_eq!(
        rig.card.receive(&frame(BCAST, 2000, 0)),
        RxOutcome::Dropped(RxDrop::Oversize)
    );
    assert_eq!(rig.r(stat::ROC), 1);
    for i in 0..3u8 {
        assert_eq!(
            rig.card.receive(&frame(BCAST, 100, i)),
            RxOutcome::Delivered
        );
    }
    let (len, sta, data) = rig.rx_desc(2);
    assert_eq!((len, sta & 3), (104, 3));
    assert_eq!(data[..100], frame(BCAST, 100, 2)[..]);
}

#[test]
fn a_too_big_frame_already_queued_is_dropped_when_its_turn_comes() {
    let mut rig = Rig::new();
    // No Bus Master: everything queues.
    rig.setup_rx(8, rctl::LPE | rctl::BAM | (3 << rctl::BSIZE_SHIFT));
    assert_eq!(rig.card.receive(&frame(BCAST, 2000, 0)), RxOutcome::Queued);
    assert_eq!(rig.card.receive(&frame(BCAST, 100, 1)), RxOutcome::Queued);
    assert_eq!(rig.card.receive(&frame(BCAST, 100, 2)), RxOutcome::Queued);
    rig.bus_master(true);
    assert_eq!(rig.card.queued_frames(), 0);
    assert_eq!(rig.card.counters().rx_delivered, 2);
    assert_eq!(rig.r(stat::ROC), 1);
    assert_eq!(rig.rx_desc(1).2[..100], frame(BCAST, 100, 2)[..]);
}

#[test]
fn narrow_icr_reads_clear_only_the_bytes_read() {
    let mut rig = Rig::new();
    rig.w(regs::IMS, int::ALL);
    rig.w(regs::ICS, int::TXDW | int::RXT0 | int::MDAC);
    let mut b = [0u8; 1];
    rig.card.bar_read(0, u64::from(regs::ICR), &mut b);
    assert_eq!(u32::from(b[0]), (int::TXDW | int::RXT0) & 0xFF);
    assert!(rig.line(), "MDAC (byte 1) is still pending");
    let mut h = [0u8; 2];
    rig.card.bar_read(0, u64::from(regs::ICR), &mut h);
    assert_eq!(
        u32::from(u16::from_le_bytes(h)),
        int::MDAC,
        "byte 0 was cleared"
    );
    assert!(!rig.line());
    assert_eq!(rig.r(regs::ICR), 0);
    // The same through the I/O window.
    rig.w(regs::ICS, int::TXDW | int::MDAC);
    rig.card.bar_write(1, 0, &regs::ICR.to_le_bytes());
    rig.card.bar_read(1, 5, &mut b);
    assert_eq!(u32::from(b[0]) << 8, int::MDAC);
    assert_eq!(rig.r(regs::ICR), int::TXDW);
}

#[test]
fn one_doorbell_sends_a_bounded_number_of_frames_and_the_rest_follow() {
    let mut rig = Rig::new();
    rig.bus_master(true);
    let count = 2048u64;
    rig.setup_tx(count);
    let buf = TX_BUFS;
    rig.dma.write(buf, &frame(BCAST, 60, 0)).unwrap();
    for i in 0..count {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&buf.to_le_bytes());
        d[8..10].copy_from_slice(&60u16.to_le_bytes());
        d[11] = 0x09; // EOP|RS
        rig.dma.write(TX_RING + 16 * i, &d).unwrap();
    }
    // A backend that never drains does not matter: the budget bounds the pass.
    rig.w(regs::TDT, (count - 1) as u32);
    let budget = crate::tx::TX_FRAME_BUDGET as usize;
    assert_eq!(rig.out.frames.lock().unwrap().len(), budget);
    let now = rig.clock.now_ns();
    assert_eq!(
        rig.card.next_deadline_ns(),
        Some(now),
        "the rest is due at once"
    );
    rig.card.on_deadline(now);
    assert_eq!(rig.out.frames.lock().unwrap().len(), count as usize - 1);
    assert_eq!(rig.card.next_deadline_ns(), None);
    // The guest sees TDH catch up once the pass is done.
    let mut h = [0u8; 4];
    rig.card.bar_read(0, u64::from(regs::TDH), &mut h);
    assert_eq!(u32::from_le_bytes(h), (count - 1) as u32);
}

#[test]
fn a_register_write_continues_a_pass_that_ran_out_of_budget() {
    let mut rig = Rig::new();
    rig.bus_master(true);
    let count = 1536u64;
    rig.setup_tx(count);
    rig.dma.write(TX_BUFS, &frame(BCAST, 60, 0)).unwrap();
    for i in 0..count {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&TX_BUFS.to_le_bytes());
        d[8..10].copy_from_slice(&60u16.to_le_bytes());
        d[11] = 0x01;
        rig.dma.write(TX_RING + 16 * i, &d).unwrap();
    }
    rig.w(regs::TDT, (count - 1) as u32);
    assert_eq!(rig.r(regs::TDH), 1024, "reads have no such side effect");
    rig.w(regs::IMS, 0);
    assert_eq!(
        rig.r(regs::TDH),
        (count - 1) as u32,
        "a write finished the pass"
    );
    assert_eq!(rig.card.counters().tx_frames, count - 1);
}
