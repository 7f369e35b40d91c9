//! Two cards linked by the UDP datagram backend on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Driver, aether_frame, two_ports, wait_for};
use seraph_net::{Capture, NetSpec, attach};

const MAC_A: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x02];

fn spec(local: std::net::SocketAddr, remote: std::net::SocketAddr, mac: [u8; 6]) -> NetSpec {
    NetSpec::parse(&format!(
        "dgram,local={local},remote={remote},mac={}",
        seraph_net::format_mac(&mac)
    ))
    .unwrap()
}

#[test]
fn frames_cross_the_link_both_ways_byte_for_byte_and_into_the_pcap() {
    let (pa, pb) = two_ports();
    let dir = std::env::temp_dir().join(format!("seraph-net-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("link.pcap");
    let capture = Capture::create(&pcap).unwrap();
    let mut a = Driver::new(MAC_A);
    let mut b = Driver::new(MAC_B);
    let mut ha = attach(&spec(pa, pb, MAC_A), Some(capture.clone()), a.card.clone()).unwrap();
    let mut hb = attach(&spec(pb, pa, MAC_B), None, b.card.clone()).unwrap();
    assert!(ha.describe().contains(&pa.to_string()));
    a.bring_up(true);
    b.bring_up(true);
    const FRAMES: u32 = 300;
    for seq in 0..FRAMES {
        let len = 60 + (seq as usize * 97) % (1514 - 60 + 1);
        let f = aether_frame(MAC_B, MAC_A, seq, len);
        a.send(&f);
        let got = b.recv(Duration::from_secs(5)).expect("frame reaches B");
        assert_eq!(got, f, "frame {seq}");
        // B echoes it back.
        let mut echo = got.clone();
        echo[..6].copy_from_slice(&MAC_A);
        echo[6..12].copy_from_slice(&MAC_B);
        b.send(&echo);
        let back = a.recv(Duration::from_secs(5)).expect("echo reaches A");
        assert_eq!(back, echo, "echo {seq}");
    }
    ha.shutdown();
    hb.shutdown();
    assert_eq!(
        ha.stats().tx_frames.load(Ordering::Relaxed),
        u64::from(FRAMES)
    );
    assert_eq!(
        ha.stats().rx_frames.load(Ordering::Relaxed),
        u64::from(FRAMES)
    );
    capture.close().unwrap();
    assert_eq!(capture.written(), 2 * u64::from(FRAMES));
    let out = Command::new("tcpdump")
        .args(["-nn", "-e", "-r"])
        .arg(&pcap)
        .output()
        .expect("tcpdump runs (it is a test dependency)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = text.lines().filter(|l| l.contains("0x88b5")).count();
    assert_eq!(lines, 2 * FRAMES as usize, "{text:.500}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_datagram_flood_is_bounded_and_never_stalls_register_access() {
    let (pa, pb) = two_ports();
    let mut b = Driver::with_queue(MAC_B, 64);
    let mut hb = attach(&spec(pb, pa, MAC_B), None, b.card.clone()).unwrap();
    b.bring_up(false);
    let peer = UdpSocket::bind(pa).unwrap();
    let frame = aether_frame(MAC_B, MAC_A, 0, 1514);
    let flood = std::thread::spawn(move || {
        for _ in 0..100_000 {
            let _ = peer.send_to(&frame, pb);
        }
    });
    let mut worst = Duration::ZERO;
    let mut reads = 0;
    while !flood.is_finished() && reads < 200_000 {
        let t = Instant::now();
        b.r(seraph_aether::regs::STATUS);
        worst = worst.max(t.elapsed());
        reads += 1;
    }
    flood.join().unwrap();
    assert!(
        worst < Duration::from_millis(250),
        "a register read took {worst:?}"
    );
    assert!(wait_for(Duration::from_secs(5), || {
        hb.stats().rx_frames.load(Ordering::Relaxed) > 1000
    }));
    let card = b.card.lock().unwrap();
    assert_eq!(card.queued_frames(), 64, "queue stays at its bound");
    assert!(card.counters().rx_dropped > 0);
    drop(card);
    let mpc = b.r(seraph_aether::regs::stat::MPC);
    assert!(mpc > 0, "missed packets counted");
    hb.shutdown();
}

#[test]
fn malformed_and_foreign_datagrams_are_dropped_and_counted() {
    let (pa, pb) = two_ports();
    let mut b = Driver::new(MAC_B);
    let mut hb = attach(&spec(pb, pa, MAC_B), None, b.card.clone()).unwrap();
    b.bring_up(true);
    let peer = UdpSocket::bind(pa).unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.send_to(&[], pb).unwrap();
    peer.send_to(&[0xFF; 5], pb).unwrap();
    peer.send_to(&vec![0xFF; 20_000], pb).unwrap();
    stranger
        .send_to(&aether_frame(MAC_B, MAC_A, 9, 100), pb)
        .unwrap();
    let good = aether_frame(MAC_B, MAC_A, 1, 200);
    peer.send_to(&good, pb).unwrap();
    assert_eq!(b.recv(Duration::from_secs(5)), Some(good));
    assert_eq!(b.poll(), None, "nothing else got through");
    assert_eq!(hb.stats().rx_frames.load(Ordering::Relaxed), 4);
    assert_eq!(hb.stats().rx_dropped.load(Ordering::Relaxed), 3);
    assert_eq!(hb.stats().rx_foreign.load(Ordering::Relaxed), 1);
    assert_eq!(b.r(seraph_aether::regs::stat::ROC), 1);
    assert!(hb.is_open());
    hb.shutdown();
    assert!(!hb.is_open());
    hb.shutdown();
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let b = Driver::new(MAC_B);
    let err = attach(&spec(addr, addr, MAC_B), None, b.card.clone()).unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert_eq!(err.exit_code(), 71);
}
