//! The Aether NIC end to end: seraph-v processes linked by `--net dgram`
//! on 127.0.0.1 (polling and interrupt-driven guests, a pcap tcpdump
//! reads) and seraph-v linked with QEMU's e1000. The guests are
//! seraph-guests' AETHER_PAIR(_IRQ) (also proven on QEMU in seraph-aether's
//! tests); hostile guests, peers, TAP and errors are in aether_hostile.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aether_support;
mod common;

use std::process::Command;
use std::time::Duration;

use aether_support::*;
use common::{TempDir, kvm_available, wait_bounded, write_guest};

#[test]
fn two_seraph_v_processes_exchange_1000_frames_and_the_pcap_shows_them() {
    if !kvm_available("two_seraph_v_processes_exchange_1000_frames") {
        return;
    }
    let _one = heavy();
    let keep = TempDir::new();
    let pcap = keep.path("run.pcap");
    seraph_v_pair(seraph_guests::AETHER_PAIR, Some(&pcap));
    let out = Command::new("tcpdump")
        .args(["-nn", "-e", "-r"])
        .arg(&pcap)
        .output()
        .expect("tcpdump runs (a test dependency of the Aether NIC)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let aether = text
        .lines()
        .filter(|l| l.contains("ethertype Unknown (0x88b5)"))
        .count();
    let frames = seraph_guests::AETHER_PAIR_FRAMES as usize;
    // Every data frame out and every echo in, plus hello, hello-ack and done.
    assert!(
        aether >= 2 * frames + 3,
        "{aether} Aether frames in the capture"
    );
    assert!(
        text.contains("02:53:45:52:00:01 > 02:53:45:52:00:02"),
        "{text:.400}"
    );
    assert!(
        text.contains("02:53:45:52:00:02 > 02:53:45:52:00:01"),
        "{text:.400}"
    );
    assert!(text.contains("length 1514"), "largest frame captured");
}

#[test]
fn two_interrupt_driven_guests_exchange_1000_frames() {
    if !kvm_available("two_interrupt_driven_guests_exchange_1000_frames") {
        return;
    }
    let _one = heavy();
    let (stext, etext) = seraph_v_pair(seraph_guests::AETHER_PAIR_IRQ, None);
    assert!(stext.contains(" irqs "), "{stext}");
    assert!(etext.contains(" irqs "), "{etext}");
}

#[test]
fn seraph_v_and_qemu_e1000_exchange_1000_frames() {
    if !kvm_available("seraph_v_and_qemu_e1000_exchange_1000_frames") {
        return;
    }
    let _one = heavy();
    let dir = TempDir::new();
    let sender = write_guest(&dir, "pair.elf", seraph_guests::AETHER_PAIR);
    let echo = write_guest(&dir, "pair_irq.elf", seraph_guests::AETHER_PAIR_IRQ);
    let (p1, p2) = (free_port(), free_port());
    let qlog = dir.path("qemu.out");
    let netdev = format!(
        "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={p1},\
         remote.type=inet,remote.host=127.0.0.1,remote.port={p2}"
    );
    let mut qemu = spawn_qemu(&echo, &netdev, "02:53:45:52:00:02", &qlog);
    let (so, se) = (dir.path("send.out"), dir.path("send.err"));
    let net = dgram(p2, p1, "02:53:45:52:00:01");
    let mut sv = spawn_seraph_v(&dir, &["--net", &net, sender.to_str().unwrap()], &so, &se);
    let ss = wait_bounded(&mut sv, Duration::from_secs(250));
    let qs = wait_bounded(&mut qemu, Duration::from_secs(30));
    let (stext, qtext) = (read(&so) + &read(&se), read(&qlog));
    assert_eq!(ss.and_then(|s| s.code()), Some(0), "seraph-v: {stext}");
    assert!(sender_ok(&stext), "seraph-v: {stext}");
    assert!(echo_ok(&qtext), "qemu: {qtext}");
    // isa-debug-exit: guest status 0 is QEMU exit code 1.
    assert_eq!(qs.and_then(|s| s.code()), Some(1), "qemu: {qtext}");
}
