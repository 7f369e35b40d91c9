//! Frames through the rings: transmit, receive, filters, delays, statistics.

use super::*;
use crate::regs::{int, rctl, stat};
use crate::{DEFAULT_MAC, RxDrop, RxOutcome, crc};

const BCAST: [u8; 6] = [0xFF; 6];

fn ready() -> Rig {
    let mut rig = Rig::new();
    rig.bus_master(true);
    rig.setup_tx(8);
    rig.setup_rx(8, rctl::SECRC | rctl::BAM);
    rig
}

#[test]
fn a_transmitted_frame_reaches_the_sink_and_is_written_back() {
    let mut rig = ready();
    rig.w(regs::IMS, int::TXDW);
    let f = frame(BCAST, 100, 7);
    rig.send(&f);
    assert_eq!(
        rig.out.frames.lock().unwrap().as_slice(),
        std::slice::from_ref(&f)
    );
    let mut sta = [0u8];
    rig.dma.read(TX_RING + 12, &mut sta).unwrap();
    assert_eq!(sta[0] & 1, 1, "DD");
    assert_eq!(rig.r(regs::TDH), 1);
    assert!(rig.line());
    assert_eq!(rig.r(regs::ICR), int::TXDW | int::TXQE);
    assert_eq!(rig.r(stat::GPTC), 1);
    assert_eq!(rig.r(stat::GPTC), 0, "read-to-clear");
    assert_eq!(rig.r(stat::GOTCL), 104);
    assert_eq!(rig.r(stat::TPT), 1);
    assert_eq!(rig.r(stat::BPTC), 1);
    assert_eq!(rig.r(stat::PTC64 + 4), 1, "65-127 bin");
    assert_eq!(rig.card.counters().tx_frames, 1);
}

#[test]
fn a_frame_spans_descriptors_until_eop_and_short_ones_are_padded() {
    let mut rig = ready();
    let f = frame(BCAST, 1514, 3);
    rig.tx_desc(&f[..1000], 0, false);
    rig.tx_desc(&f[1000..], 0x01, true);
    rig.send(&f[..42]);
    let out = rig.out.frames.lock().unwrap().clone();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], f);
    assert_eq!(out[1].len(), 60, "PSP pads to 60");
    assert_eq!(out[1][..42], f[..42]);
    assert_eq!(rig.r(regs::TDH), 3);
}

#[test]
fn legacy_checksum_insertion_and_skipped_context_descriptors() {
    let mut rig = ready();
    // Context descriptor (DEXT, DTYP 0), then an extended data descriptor (DTYP 1).
    let mut f = frame(BCAST, 64, 1);
    rig.tx_desc(&[], 0x20 | 0x08, false);
    let i = rig.tx_tail;
    rig.tx_desc(&f, 0, false);
    let mut dw2 = [0u8; 4];
    dw2.copy_from_slice(&((f.len() as u32) | (1 << 20) | (0x29 << 24)).to_le_bytes());
    rig.dma.write(TX_RING + 16 * i + 8, &dw2).unwrap();
    rig.w(regs::TDT, rig.tx_tail as u32);
    assert_eq!(rig.out.frames.lock().unwrap().len(), 1);
    assert_eq!(rig.out.frames.lock().unwrap()[0], f);
    // Legacy IC: checksum of bytes 20.. stored at 16.
    f[16] = 0;
    f[17] = 0;
    let i = rig.tx_tail;
    rig.tx_desc(&f, 0x01 | 0x04 | 0x08, false);
    rig.dma.write(TX_RING + 16 * i + 10, &[16]).unwrap();
    rig.dma.write(TX_RING + 16 * i + 13, &[20]).unwrap();
    rig.w(regs::TDT, rig.tx_tail as u32);
    let sent = rig.out.frames.lock().unwrap()[1].clone();
    let sum = sent[20..]
        .chunks(2)
        .chain(std::iter::once(&sent[16..18]))
        .fold(0u32, |a, c| a + u32::from(u16::from_be_bytes([c[0], c[1]])));
    let folded = (sum & 0xFFFF) + (sum >> 16);
    assert_eq!(
        (folded & 0xFFFF) + (folded >> 16),
        0xFFFF,
        "checksum verifies"
    );
}

#[test]
fn no_dma_before_bus_master() {
    let mut rig = Rig::new();
    rig.setup_tx(8);
    rig.setup_rx(8, rctl::SECRC | rctl::BAM);
    rig.send(&frame(BCAST, 60, 0));
    assert!(rig.out.frames.lock().unwrap().is_empty());
    assert_eq!(rig.r(regs::TDH), 0);
    let f = frame(BCAST, 80, 9);
    assert_eq!(rig.card.receive(&f), RxOutcome::Queued);
    assert_eq!(rig.rx_desc(0).1, 0, "nothing written");
    rig.bus_master(true);
    assert_eq!(rig.out.frames.lock().unwrap().len(), 1);
    assert_eq!(rig.rx_desc(0).2, f);
}

#[test]
fn a_full_backend_drops_and_counts_but_completes_the_descriptor() {
    let mut rig = ready();
    *rig.out.full.lock().unwrap() = true;
    rig.send(&frame(BCAST, 60, 0));
    assert_eq!(rig.card.counters().tx_backend_drops, 1);
    assert_eq!(rig.r(regs::TDH), 1);
}

#[test]
fn delayed_transmit_interrupts_wait_for_tidv() {
    let mut rig = ready();
    rig.w(regs::TIDV, 100);
    rig.w(regs::IMS, int::TXDW);
    rig.tx_desc(&frame(BCAST, 60, 0), 0x01 | 0x08 | 0x80, true);
    assert_eq!(rig.r(regs::ICR) & int::TXDW, 0);
    let due = rig.card.next_deadline_ns().unwrap();
    assert_eq!(due, 100 * 1024);
    rig.clock.advance(due);
    rig.card.on_deadline(due);
    assert!(rig.line());
    assert_eq!(rig.r(regs::ICR) & int::TXDW, int::TXDW);
    assert_eq!(rig.card.next_deadline_ns(), None);
}

#[test]
fn received_frames_are_written_with_dd_eop_and_without_fcs_when_secrc() {
    let mut rig = ready();
    rig.w(regs::IMS, int::RXT0);
    let f = frame(DEFAULT_MAC, 1514, 5);
    assert_eq!(rig.card.receive(&f), RxOutcome::Delivered);
    let (len, sta, data) = rig.rx_desc(0);
    assert_eq!(len, 1514);
    assert_eq!(sta & 0x3, 0x3);
    assert_eq!(data, f);
    assert_eq!(rig.r(regs::RDH), 1);
    assert!(rig.line());
    assert_eq!(rig.r(regs::ICR) & int::RXT0, int::RXT0);
    assert_eq!(rig.r(stat::GPRC), 1);
    assert_eq!(rig.r(stat::GORCL), 1518);
    assert_eq!(rig.r(stat::TPR), 1);
    assert_eq!(rig.r(stat::GPRC), 0);
}

#[test]
fn without_secrc_the_fcs_is_appended_and_short_frames_padded() {
    let mut rig = ready();
    rig.setup_rx(8, rctl::BAM);
    let f = frame(BCAST, 42, 1);
    rig.card.receive(&f);
    let (len, _, data) = rig.rx_desc(0);
    assert_eq!(len, 64);
    assert_eq!(data[..42], f[..]);
    assert!(data[42..60].iter().all(|&b| b == 0));
    assert_eq!(data[60..], crc::fcs(&data[..60]).to_le_bytes());
    assert_eq!(rig.r(stat::BPRC), 1);
}

#[test]
fn small_buffers_split_a_frame_over_descriptors() {
    let mut rig = ready();
    rig.setup_rx(8, rctl::SECRC | rctl::BAM | (3 << rctl::BSIZE_SHIFT));
    assert_eq!(rig.card.rx_buffer_size(), 256);
    let f = frame(BCAST, 1000, 2);
    rig.card.receive(&f);
    let mut joined = Vec::new();
    for i in 0..4 {
        let (len, sta, data) = rig.rx_desc(i);
        assert_eq!(sta & 1, 1);
        assert_eq!(sta & 2 != 0, i == 3, "EOP only on the last");
        assert_eq!(len, if i < 3 { 256 } else { 232 });
        joined.extend(data);
    }
    assert_eq!(joined, f);
    // No state of an 8-descriptor ring (7 usable) holds 4000 bytes in
    // 256-byte pieces: the frame is dropped at once, not left blocking.
    rig.w(
        regs::RCTL,
        rctl::EN | rctl::LPE | rctl::BAM | (3 << rctl::BSIZE_SHIFT),
    );
    assert_eq!(
        rig.card.receive(&frame(BCAST, 4000, 0)),
        RxOutcome::Dropped(RxDrop::Oversize)
    );
    rig.w(
        regs::RCTL,
        rctl::EN | rctl::LPE | rctl::BAM | rctl::BSEX | (1 << rctl::BSIZE_SHIFT),
    );
    assert_eq!(rig.card.rx_buffer_size(), 16384);
    assert_eq!(
        rig.card.receive(&frame(BCAST, 4000, 0)),
        RxOutcome::Delivered,
        "fits once buffers are big enough"
    );
}

#[test]
fn long_frames_need_lpe() {
    let mut rig = ready();
    let f = frame(BCAST, 1600, 0);
    assert_eq!(rig.card.receive(&f), RxOutcome::Dropped(RxDrop::Oversize));
    assert_eq!(rig.r(stat::ROC), 1);
    rig.w(regs::RCTL, rctl::EN | rctl::BAM | rctl::LPE | rctl::SECRC);
    assert_eq!(rig.card.receive(&f), RxOutcome::Delivered);
    assert_eq!(rig.rx_desc(0).0, 1600);
    let huge = frame(BCAST, 16 * 1024 + 1, 0);
    assert_eq!(
        rig.card.receive(&huge),
        RxOutcome::Dropped(RxDrop::Oversize)
    );
    assert_eq!(
        rig.card.receive(&[1, 2, 3]),
        RxOutcome::Dropped(RxDrop::Undersize)
    );
}

#[test]
fn address_filters() {
    let mut rig = ready();
    rig.setup_rx(8, rctl::SECRC);
    let other = [0x02, 0, 0, 0, 0, 0x99];
    let mcast = [0x01, 0x00, 0x5E, 0x00, 0x00, 0xFB];
    let ok = RxOutcome::Delivered;
    let no = RxOutcome::Dropped(RxDrop::Filtered);
    assert_eq!(rig.card.receive(&frame(DEFAULT_MAC, 60, 0)), ok);
    assert_eq!(rig.card.receive(&frame(other, 60, 0)), no);
    assert_eq!(rig.card.receive(&frame(BCAST, 60, 0)), no, "BAM clear");
    assert_eq!(rig.card.receive(&frame(mcast, 60, 0)), no);
    // A second exact address in entry 3.
    rig.w(regs::RAL0 + 24, u32::from_le_bytes([0x02, 0, 0, 0]));
    rig.w(regs::RAH0 + 24, 0x9900 | regs::RAH_AV);
    assert_eq!(rig.card.receive(&frame(other, 60, 0)), ok);
    // MTA hash with MO = 0: bits 47:36 of the address.
    let hash = ((u32::from(mcast[4]) >> 4) | (u32::from(mcast[5]) << 4)) & 0xFFF;
    rig.w(regs::MTA + 4 * (hash >> 5), 1 << (hash & 31));
    assert_eq!(rig.card.receive(&frame(mcast, 60, 0)), ok);
    assert_eq!(rig.r(stat::MPRC), 1);
    // Promiscuous modes and broadcast accept.
    rig.w(
        regs::RCTL,
        rctl::EN | rctl::SECRC | rctl::UPE | rctl::MPE | rctl::BAM,
    );
    assert_eq!(rig.card.receive(&frame([0x02, 9, 9, 9, 9, 9], 60, 0)), ok);
    assert_eq!(rig.card.receive(&frame([0x03, 9, 9, 9, 9, 9], 60, 0)), ok);
    assert_eq!(rig.card.receive(&frame(BCAST, 60, 0)), ok);
    assert_eq!(rig.r(stat::TPR), 9, "every frame counts in TPR");
    assert_eq!(rig.r(stat::GPRC), 6);
}

#[test]
fn without_descriptors_frames_queue_then_drop_into_mpc() {
    let mut rig = Rig::with(AetherConfig {
        rx_queue_frames: 4,
        ..AetherConfig::default()
    });
    rig.bus_master(true);
    rig.setup_rx(8, rctl::SECRC | rctl::BAM);
    rig.w(regs::RDT, 3);
    rig.w(regs::IMS, int::RXO | int::RXDMT0);
    let frames: Vec<_> = (0..10).map(|i| frame(BCAST, 60 + i, i as u8)).collect();
    let outcomes: Vec<_> = frames.iter().map(|f| rig.card.receive(f)).collect();
    assert_eq!(outcomes[..3], [RxOutcome::Delivered; 3]);
    assert_eq!(outcomes[3..7], [RxOutcome::Queued; 4]);
    assert_eq!(outcomes[7..], [RxOutcome::Dropped(RxDrop::QueueFull); 3]);
    assert_eq!(rig.r(stat::MPC), 3);
    assert_eq!(rig.r(stat::RNBC), 4);
    assert_eq!(
        rig.r(regs::ICR) & (int::RXO | int::RXDMT0),
        int::RXO | int::RXDMT0
    );
    for i in 0..3 {
        assert_eq!(rig.rx_desc(i).2, frames[i as usize]);
    }
    // The driver hands three more descriptors to the card.
    rig.w(regs::RDT, 6);
    assert_eq!(rig.card.queued_frames(), 1);
    for i in 3..6 {
        assert_eq!(rig.rx_desc(i).2, frames[i as usize]);
    }
    rig.w(regs::RDT, 7);
    assert_eq!(rig.card.queued_frames(), 0);
    assert_eq!(rig.rx_desc(6).2, frames[6]);
}

#[test]
fn a_disabled_receiver_drops() {
    let mut rig = ready();
    rig.w(regs::RCTL, rctl::BAM);
    assert_eq!(
        rig.card.receive(&frame(BCAST, 60, 0)),
        RxOutcome::Dropped(RxDrop::ReceiverDisabled)
    );
    assert_eq!(rig.card.counters().rx_dropped, 1);
}

#[test]
fn receive_delay_timers_rdtr_radv_and_flush() {
    let mut rig = ready();
    rig.w(regs::IMS, int::RXT0);
    rig.w(regs::RDTR, 10);
    rig.w(regs::RADV, 15);
    rig.card.receive(&frame(BCAST, 60, 0));
    assert!(!rig.line());
    assert_eq!(rig.card.next_deadline_ns(), Some(10 * 1024));
    rig.clock.advance(8 * 1024);
    rig.card.receive(&frame(BCAST, 60, 1));
    // The packet timer restarted (18 units); the absolute one still ends at 15.
    assert_eq!(rig.card.next_deadline_ns(), Some(15 * 1024));
    rig.card.on_deadline(14 * 1024);
    assert!(!rig.line(), "not due yet");
    rig.card.on_deadline(15 * 1024);
    assert!(rig.line());
    assert_eq!(rig.card.next_deadline_ns(), None);
    rig.r(regs::ICR);
    rig.card.receive(&frame(BCAST, 60, 2));
    assert!(!rig.line());
    rig.w(regs::RDTR, 10 | (1 << 31));
    assert!(rig.line(), "FPD flushes at once");
}

/// Ones' complement sum of big-endian words, folded.
fn ones_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

#[test]
fn context_descriptors_drive_ip_and_udp_checksum_insertion() {
    let mut rig = ready();
    // Ethernet + IPv4 (20 bytes, checksum 0) + UDP (8 bytes) + 50 bytes payload.
    let mut f = frame(BCAST, 14, 0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + 50u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    let udp_len = 8 + 50u16;
    f.extend_from_slice(&[
        0x30,
        0x39,
        0x00,
        0x35,
        (udp_len >> 8) as u8,
        udp_len as u8,
        0,
        0,
    ]);
    f.extend((0..50u8).map(|i| i.wrapping_mul(7)));
    // The driver seeds the UDP checksum with the pseudo-header sum.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&f[26..34]);
    pseudo.extend_from_slice(&[0, 17, (udp_len >> 8) as u8, udp_len as u8]);
    f[40..42].copy_from_slice(&ones_sum(&pseudo).to_be_bytes());
    // Context: IP 14..=33 into 24; UDP 34..end into 40.
    let i = rig.tx_tail;
    rig.tx_desc(&[], 0x20, false);
    let ctx = [14u8, 24, 33, 0, 34, 40, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0];
    rig.dma.write(TX_RING + 16 * i, &ctx).unwrap();
    // Data: extended (DTYP 1), EOP|RS|DEXT, POPTS IXSM|TXSM.
    let i = rig.tx_tail;
    rig.tx_desc(&f, 0x29, false);
    let dw2 = (f.len() as u32) | (1 << 20) | (0x29 << 24);
    rig.dma
        .write(TX_RING + 16 * i + 8, &dw2.to_le_bytes())
        .unwrap();
    rig.dma.write(TX_RING + 16 * i + 13, &[0x03]).unwrap();
    rig.w(regs::TDT, rig.tx_tail as u32);
    let sent = rig.out.frames.lock().unwrap()[0].clone();
    assert_eq!(
        ones_sum(&sent[14..34]),
        0xFFFF,
        "IPv4 header checksum verifies"
    );
    let mut check = pseudo.clone();
    check.extend_from_slice(&sent[34..]);
    assert_eq!(ones_sum(&check), 0xFFFF, "UDP checksum verifies");
    assert_eq!(sent[..24], f[..24]);
    assert_eq!(sent[42..], f[42..], "payload untouched");
    let parsed = crate::TxContext::parse(&ctx);
    assert_eq!((parsed.ipcse, parsed.tucso, parsed.tucse), (33, 40, 0));
}
