//! TCP segmentation offload: Linux-style TSO frames come out as correct
//! segments; bad contexts stop the ring and count.

use super::*;
use crate::regs::stat;

/// Independent ones' complement checksum check: the folded sum of `data`.
fn fold(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for pair in data.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |&b| u64::from(b));
        sum += hi | lo;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// IPv4 source and destination.
const SRC: [u8; 4] = [10, 0, 0, 1];
const DST: [u8; 4] = [10, 0, 0, 2];

/// Ethernet + IPv4 (total length and checksum 0, id 0x1234) + L4 header
/// (`l4`), with the L4 checksum at `csum_at` (inside `l4`) seeded, as Linux
/// does, with the pseudo-header sum without the length; then `payload`.
fn tso_frame(proto: u8, mut l4: Vec<u8>, csum_at: usize, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&DST);
    let mut pseudo = SRC.to_vec();
    pseudo.extend_from_slice(&DST);
    pseudo.extend_from_slice(&[0, proto]);
    l4[csum_at..csum_at + 2].copy_from_slice(&fold(&pseudo).to_be_bytes());
    f.extend_from_slice(&l4);
    f.extend_from_slice(payload);
    f
}

/// A TCP header: ports 1000 -> 2000, sequence `seq`, flags `flags`.
fn tcp_header(seq: u32, flags: u8) -> Vec<u8> {
    let mut h = vec![0x03, 0xE8, 0x07, 0xD0];
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]);
    h
}

/// Queues a TCP/IP context descriptor.
fn context(rig: &mut Rig, tucmd: u8, tucso: u8, paylen: u32, hdrlen: u8, mss: u16) {
    let i = rig.tx_tail;
    rig.tx_desc(&[], 0x20, false);
    let mut d = [
        14u8, 24, 33, 0, 34, tucso, 0, 0, 0, 0, 0, 0, 0, hdrlen, 0, 0,
    ];
    let dw2 = (paylen & 0xF_FFFF) | (u32::from(tucmd | 0x20) << 24);
    d[8..12].copy_from_slice(&dw2.to_le_bytes());
    d[14..16].copy_from_slice(&mss.to_le_bytes());
    rig.dma.write(TX_RING + 16 * i, &d).unwrap();
}

/// Queues an extended data descriptor (DEXT|TSE, plus EOP|RS if `last`),
/// POPTS IXSM|TXSM.
fn data(rig: &mut Rig, bytes: &[u8], last: bool) {
    let i = rig.tx_tail;
    let cmd: u8 = 0x24 | if last { 0x09 } else { 0 };
    rig.tx_desc(bytes, cmd, false);
    let dw2 = (bytes.len() as u32) | (1 << 20) | (u32::from(cmd) << 24);
    rig.dma
        .write(TX_RING + 16 * i + 8, &dw2.to_le_bytes())
        .unwrap();
    rig.dma.write(TX_RING + 16 * i + 13, &[0x03]).unwrap();
}

fn ready() -> Rig {
    let mut rig = Rig::new();
    rig.bus_master(true);
    rig.setup_tx(8);
    rig
}

/// TUCMD: TSE | IP | TCP.
const TCP4: u8 = 0x04 | 0x02 | 0x01;
/// TUCMD: TSE | IP (UDP).
const UDP4: u8 = 0x04 | 0x02;

#[test]
fn a_10000_byte_tcp_payload_with_mss_1460_becomes_7_correct_segments() {
    let mut rig = ready();
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let seq = 0xFFFF_F000; // wraps inside the burst
    let f = tso_frame(6, tcp_header(seq, 0x19), 16, &payload); // FIN|PSH|ACK
    context(&mut rig, TCP4, 50, 10_000, 54, 1460);
    data(&mut rig, &f[..54], false);
    data(&mut rig, &f[54..], true);
    rig.w(regs::TDT, rig.tx_tail as u32);
    let out = rig.out.frames.lock().unwrap().clone();
    assert_eq!(out.len(), 7);
    let mut joined = Vec::new();
    for (i, s) in out.iter().enumerate() {
        let last = i == 6;
        let chunk = if last { 10_000 - 6 * 1460 } else { 1460 };
        assert_eq!(s.len(), 54 + chunk, "segment {i} length");
        assert_eq!(s[..14], f[..14], "Ethernet header copied");
        let total = u16::from_be_bytes([s[16], s[17]]);
        assert_eq!(usize::from(total), 40 + chunk, "IPv4 total length");
        assert_eq!(
            u16::from_be_bytes([s[18], s[19]]),
            0x1234 + i as u16,
            "IP id"
        );
        assert_eq!(fold(&s[14..34]), 0xFFFF, "IPv4 header checksum of {i}");
        let got_seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
        assert_eq!(got_seq, seq.wrapping_add(1460 * i as u32), "sequence");
        assert_eq!(s[47], if last { 0x19 } else { 0x10 }, "FIN/PSH last only");
        let mut pseudo = SRC.to_vec();
        pseudo.extend_from_slice(&DST);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&((20 + chunk) as u16).to_be_bytes());
        pseudo.extend_from_slice(&s[34..]);
        assert_eq!(fold(&pseudo), 0xFFFF, "TCP checksum of {i}");
        joined.extend_from_slice(&s[54..]);
    }
    assert_eq!(joined, payload);
    assert_eq!(rig.r(stat::TSCTC), 1);
    assert_eq!(rig.r(stat::GPTC), 7);
    assert_eq!(rig.r(regs::TDH), 3);
    assert_eq!(rig.card.counters().tx_ring_errors, 0);
}

#[test]
fn udp_tso_fixes_each_segments_length_and_checksum() {
    let mut rig = ready();
    let payload: Vec<u8> = (0..2500u32).map(|i| (i % 253) as u8).collect();
    let udp = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
    let f = tso_frame(17, udp, 6, &payload);
    context(&mut rig, UDP4, 40, 2500, 42, 1000);
    data(&mut rig, &f, true);
    rig.w(regs::TDT, rig.tx_tail as u32);
    let out = rig.out.frames.lock().unwrap().clone();
    assert_eq!(out.len(), 3);
    for (i, s) in out.iter().enumerate() {
        let chunk = if i == 2 { 500 } else { 1000 };
        assert_eq!(s.len(), 42 + chunk);
        assert_eq!(usize::from(u16::from_be_bytes([s[38], s[39]])), 8 + chunk);
        assert_eq!(fold(&s[14..34]), 0xFFFF);
        let mut pseudo = SRC.to_vec();
        pseudo.extend_from_slice(&DST);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&((8 + chunk) as u16).to_be_bytes());
        pseudo.extend_from_slice(&s[34..]);
        assert_eq!(fold(&pseudo), 0xFFFF, "UDP checksum of {i}");
        assert_eq!(s[42..], payload[i * 1000..i * 1000 + chunk]);
    }
}

/// Sends one TSO frame with the given context values; returns the rig.
fn bad(paylen: u32, hdrlen: u8, mss: u16, payload: usize) -> Rig {
    let mut rig = ready();
    let f = tso_frame(6, tcp_header(1, 0x10), 16, &vec![7; payload]);
    context(&mut rig, TCP4, 50, paylen, hdrlen, mss);
    let mut parts = f.chunks(16_000).peekable();
    while let Some(p) = parts.next() {
        data(&mut rig, p, parts.peek().is_none());
    }
    rig.w(regs::TDT, rig.tx_tail as u32);
    rig
}

#[test]
fn mss_0_stops_the_ring_and_counts() {
    let mut rig = bad(3000, 54, 0, 3000);
    assert!(rig.out.frames.lock().unwrap().is_empty());
    assert_eq!(rig.card.counters().tx_ring_errors, 1);
    assert_eq!(rig.r(stat::TSCTFC), 1);
    assert_eq!(rig.r(stat::TSCTC), 0);
    // Reprogramming the ring runs it again.
    rig.setup_tx(8);
    rig.send(&frame([0xFF; 6], 60, 1));
    assert_eq!(rig.out.frames.lock().unwrap().len(), 1);
}

#[test]
fn hdrlen_beyond_the_data_stops_the_ring() {
    let mut rig = bad(0, 200, 1460, 50);
    assert!(rig.out.frames.lock().unwrap().is_empty());
    assert_eq!(rig.card.counters().tx_ring_errors, 1);
    assert_eq!(rig.r(stat::TSCTFC), 1);
}

#[test]
fn a_payload_over_64_kib_stops_the_ring() {
    let rig = bad(70_000, 54, 1460, 70_000);
    assert!(rig.out.frames.lock().unwrap().is_empty());
    assert_eq!(rig.card.counters().tx_ring_errors, 1);
    // A PAYLEN over the limit fails too, even with little data.
    let mut rig = bad(0x10_0000 - 1, 54, 1460, 1000);
    assert!(rig.out.frames.lock().unwrap().is_empty());
    assert_eq!(rig.card.counters().tx_ring_errors, 1);
    assert_eq!(rig.r(stat::TSCTFC), 1);
}

#[test]
fn a_tiny_mss_that_would_make_thousands_of_segments_stops_the_ring() {
    let mut rig = bad(60_000, 54, 8, 60_000);
    assert!(rig.out.frames.lock().unwrap().is_empty());
    assert_eq!(rig.card.counters().tx_ring_errors, 1);
    assert_eq!(rig.r(stat::TSCTFC), 1);
    // Linux's smallest MSS over the largest payload still segments.
    let rig = bad(60_000, 54, 48, 60_000);
    assert_eq!(rig.out.frames.lock().unwrap().len(), 1250);
    assert_eq!(rig.card.counters().tx_ring_errors, 0);
}

#[test]
fn segments_over_16_kib_stop_the_ring() {
    let rig = bad(30_000, 54, 20_000, 30_000);
    assert!(rig.out.frames.lock().unwrap().is_empty());
    assert_eq!(rig.card.counters().tx_ring_errors, 1);
    // A large MSS is fine while the payload keeps segments small.
    let rig = bad(3000, 54, 20_000, 3000);
    assert_eq!(rig.out.frames.lock().unwrap().len(), 1);
    assert_eq!(rig.card.counters().tx_ring_errors, 0);
}

#[test]
fn context_parse_reads_the_segmentation_fields() {
    let mut raw = [0u8; 16];
    raw[8..12].copy_from_slice(&(0x0A_BCDEu32 | (0x27 << 24)).to_le_bytes());
    raw[13] = 54;
    raw[14..16].copy_from_slice(&1460u16.to_le_bytes());
    let c = crate::TxContext::parse(&raw);
    assert_eq!(
        (c.paylen, c.tucmd, c.hdrlen, c.mss),
        (0xA_BCDE, 0x27, 54, 1460)
    );
}

#[test]
fn ipv6_tcp_tso_fixes_the_payload_length_and_checksum() {
    let mut rig = ready();
    let src = [0x20u8, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut dst = src;
    dst[15] = 2;
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x86, 0xDD]);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, 6, 64]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    let mut seed = src.to_vec();
    seed.extend_from_slice(&dst);
    seed.extend_from_slice(&[0, 6]);
    let mut tcp = tcp_header(1000, 0x18);
    tcp[16..18].copy_from_slice(&fold(&seed).to_be_bytes());
    f.extend_from_slice(&tcp);
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 241) as u8).collect();
    f.extend_from_slice(&payload);
    // Context: IP from 14 (no IP checksum), TCP from 54 into 70; TSE|TCP.
    let i = rig.tx_tail;
    rig.tx_desc(&[], 0x20, false);
    let mut d = [14u8, 0, 0, 0, 54, 70, 0, 0, 0, 0, 0, 0, 0, 74, 0, 0];
    d[8..12].copy_from_slice(&(3000u32 | (0x25 << 24)).to_le_bytes());
    d[14..16].copy_from_slice(&1400u16.to_le_bytes());
    rig.dma.write(TX_RING + 16 * i, &d).unwrap();
    let i = rig.tx_tail;
    rig.tx_desc(&f, 0x2D, false);
    let dw2 = (f.len() as u32) | (1 << 20) | (0x2D << 24);
    rig.dma
        .write(TX_RING + 16 * i + 8, &dw2.to_le_bytes())
        .unwrap();
    rig.dma.write(TX_RING + 16 * i + 13, &[0x02]).unwrap(); // TXSM only
    rig.w(regs::TDT, rig.tx_tail as u32);
    let out = rig.out.frames.lock().unwrap().clone();
    assert_eq!(out.len(), 3);
    for (i, s) in out.iter().enumerate() {
        let chunk = if i == 2 { 200 } else { 1400 };
        assert_eq!(usize::from(u16::from_be_bytes([s[18], s[19]])), 20 + chunk);
        assert_eq!(s[20..54], f[20..54], "addresses untouched");
        let mut pseudo = src.to_vec();
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&((20 + chunk) as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 6]);
        pseudo.extend_from_slice(&s[54..]);
        assert_eq!(fold(&pseudo), 0xFFFF, "TCP checksum of {i}");
        let seq = u32::from_be_bytes([s[58], s[59], s[60], s[61]]);
        assert_eq!(seq, 1000 + 1400 * i as u32);
    }
}
