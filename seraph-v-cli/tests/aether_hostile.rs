//! The Aether NIC against hostile peers and guests, `ping` through a TAP
//! inside a network namespace the test creates, and the command-line
//! errors of `--net` / `--net-capture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aether_support;
mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use aether_support::*;
use common::{TempDir, assert_one_line_error, kvm_available, seraph_v, wait_bounded, write_guest};

#[test]
fn a_hostile_peer_floods_and_sends_garbage_and_the_guest_still_echoes_every_frame() {
    if !kvm_available("a_hostile_peer_floods_and_sends_garbage") {
        return;
    }
    let _one = heavy();
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "pair.elf", seraph_guests::AETHER_PAIR);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let guest_port = free_port();
    let guest = format!("127.0.0.1:{guest_port}");
    let net = format!(
        "dgram,local={guest},remote={},mac=02:53:45:52:00:02",
        peer.local_addr().unwrap()
    );
    let (out, err) = (dir.path("echo.out"), dir.path("echo.err"));
    let mut sv = spawn_seraph_v(&dir, &["--net", &net, kernel.to_str().unwrap()], &out, &err);
    // Hello until the guest answers.
    let hello = pair_frame([0xFF; 6], SENDER_MAC, 0, 0, 60);
    let mut acked = false;
    for _ in 0..600 {
        peer.send_to(&hello, &guest).unwrap();
        if recv_until(&peer, Duration::from_millis(100), |f| {
            f.len() >= 26 && f[18] == 1
        })
        .is_some()
        {
            acked = true;
            break;
        }
    }
    assert!(acked, "no hello-ack: {}", read(&out));
    // Garbage: empty, runt, oversize, foreign sender, other MACs, other kinds.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.send_to(&[], &guest).unwrap();
    peer.send_to(&[0xFF; 5], &guest).unwrap();
    peer.send_to(&vec![0xFF; 20_000], &guest).unwrap();
    stranger
        .send_to(&pair_frame(ECHO_MAC, SENDER_MAC, 2, 5, pair_len(5)), &guest)
        .unwrap();
    for i in 0..1000u32 {
        let mut other = pair_frame([0x02, 0, 0, 0, 0, 0x77], SENDER_MAC, 2, i, 200);
        peer.send_to(&other, &guest).unwrap();
        other[..6].copy_from_slice(&ECHO_MAC);
        other[12] = 0x08;
        other[13] = 0x00;
        peer.send_to(&other, &guest).unwrap();
    }
    // A flood the guest ignores (kind 7): it must neither stall nor grow without bound.
    let flood = pair_frame(ECHO_MAC, SENDER_MAC, 7, 0, 1514);
    for _ in 0..30_000 {
        let _ = peer.send_to(&flood, &guest);
    }
    // Then the real exchange, every byte checked.
    let frames = seraph_guests::AETHER_PAIR_FRAMES;
    for seq in 0..frames {
        let data = pair_frame(ECHO_MAC, SENDER_MAC, 2, seq, pair_len(seq));
        let mut want = data.clone();
        want[..6].copy_from_slice(&SENDER_MAC);
        want[6..12].copy_from_slice(&ECHO_MAC);
        want[18] = 3;
        let mut got = None;
        for _ in 0..40 {
            peer.send_to(&data, &guest).unwrap();
            got = recv_until(&peer, Duration::from_millis(500), |f| {
                f.len() >= 26 && f[18] == 3 && f[20..24] == seq.to_le_bytes()
            });
            if got.is_some() {
                break;
            }
        }
        assert_eq!(
            got.as_deref(),
            Some(&want[..]),
            "echo of frame {seq}: {}",
            read(&out)
        );
    }
    for _ in 0..3 {
        peer.send_to(&pair_frame(ECHO_MAC, SENDER_MAC, 4, frames, 60), &guest)
            .unwrap();
    }
    let status = wait_bounded(&mut sv, Duration::from_secs(60));
    let text = read(&out) + &read(&err);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
    assert!(echo_ok(&text), "{text}");
}

#[test]
fn a_hostile_driver_stops_its_rings_and_the_card_still_works_after_a_reset() {
    if !kvm_available("a_hostile_driver_stops_its_rings") {
        return;
    }
    let _one = heavy();
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "hostile.elf", seraph_guests::AETHER_HOSTILE);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let guest = format!("127.0.0.1:{}", free_port());
    let net = format!(
        "dgram,local={guest},remote={},mac=02:53:45:52:00:02",
        peer.local_addr().unwrap()
    );
    let (out, err) = (dir.path("guest.out"), dir.path("guest.err"));
    let mut sv = spawn_seraph_v(&dir, &["--net", &net, kernel.to_str().unwrap()], &out, &err);
    // The peer sends a broadcast frame about every millisecond and keeps
    // whatever the guest sends, until seraph-v ends (bounded).
    let beacon = pair_frame([0xFF; 6], SENDER_MAC, 8, 0, 100);
    let mut from_guest = Vec::new();
    let mut buf = vec![0u8; 65536];
    let end = Instant::now() + Duration::from_secs(200);
    let mut status = None;
    while Instant::now() < end {
        let _ = peer.send_to(&beacon, &guest);
        if let Ok(n) = peer.recv(&mut buf) {
            from_guest.push(buf[..n].to_vec());
        }
        if let Some(s) = sv.try_wait().unwrap() {
            status = Some(s);
            break;
        }
    }
    if status.is_none() {
        let _ = sv.kill();
    }
    // Reaps the child in every case (after try_wait this returns the same status).
    let status = status.or(sv.wait().ok());
    while let Ok(n) = peer.recv(&mut buf) {
        from_guest.push(buf[..n].to_vec());
    }
    let text = read(&out) + &read(&err);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
    for step in 1..=7 {
        assert!(
            text.contains(&format!("aether-hostile: step {step} ok\n")),
            "{text}"
        );
    }
    assert!(text.contains("aether-hostile: ok\n"), "{text}");
    // Nothing from the broken rings ever left the card: only the clean frame.
    assert_eq!(
        from_guest.len(),
        1,
        "{} frames from the guest",
        from_guest.len()
    );
    let f = &from_guest[0];
    assert_eq!(f.len(), 60);
    assert_eq!(&f[..6], &[0xFF; 6]);
    assert_eq!(&f[6..12], &ECHO_MAC);
    assert_eq!(&f[12..19], &[0x88, 0xB5, b'A', b'E', b'T', b'H', 9]);
}

#[test]
fn ping_reaches_the_guest_through_a_tap_in_a_private_namespace() {
    if !kvm_available("ping_reaches_the_guest_through_a_tap") {
        return;
    }
    let _one = heavy();
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "ping.elf", seraph_guests::AETHER_PING);
    let (out, err) = (dir.path("guest.out"), dir.path("guest.err"));
    // The TAP, its address and the ping live in a namespace made for this
    // test: the machine's own interfaces are never touched. seraph-v creates
    // the TAP; the script configures it once the guest is up.
    let script = format!(
        "set -e
         ip link set lo up
         {sv} --no-screenshot --timeout 120s --net tap,ifname=svtap0,mac=02:53:45:52:00:05 {kernel} > {out} 2> {err} &
         v=$!
         i=0
         while [ $i -lt 600 ] && ! grep -q 'aether-ping: ip' {out}; do sleep 0.1; i=$((i+1)); done
         ip addr add 10.99.0.1/24 dev svtap0
         ip link set svtap0 up
         ping -c 3 -i 0.3 -w 60 {ip}
         set +e
         wait $v
         echo seraph-v-exit=$?",
        sv = env!("CARGO_BIN_EXE_seraph-v"),
        kernel = kernel.display(),
        out = out.display(),
        err = err.display(),
        ip = seraph_guests::AETHER_PING_IP,
    );
    let run = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let guest = read(&out) + &read(&err);
    assert!(
        run.status.success(),
        "{stdout}\n{}\nguest: {guest}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains(" 3 received"), "{stdout}\nguest: {guest}");
    assert!(
        stdout.contains("seraph-v-exit=0"),
        "{stdout}\nguest: {guest}"
    );
    assert!(guest.contains("aether-ping: arp reply\n"), "{guest}");
    assert!(guest.contains("aether-ping: ok\n"), "{guest}");
}

#[test]
fn a_tap_without_cap_net_admin_is_a_one_line_error_with_exit_77() {
    if !kvm_available("a_tap_without_cap_net_admin") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "ping.elf", seraph_guests::AETHER_PING);
    let before = dir.files();
    let out = Command::new("unshare")
        .args([
            "-n",
            "setpriv",
            "--bounding-set",
            "-net_admin",
            "--inh-caps",
            "-net_admin",
        ])
        .arg(env!("CARGO_BIN_EXE_seraph-v"))
        .args(["--no-screenshot", "--net", "tap,ifname=svtap1"])
        .arg(&kernel)
        .current_dir(&dir.0)
        .output()
        .expect("unshare and setpriv run");
    assert_one_line_error(&dir, &out, 77, "permission denied", &before);
    assert!(common::stderr(&out).contains("svtap1"));
}

#[test]
fn bad_net_options_are_one_line_errors() {
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "ping.elf", seraph_guests::AETHER_PING);
    let kernel = kernel.to_str().unwrap();
    let before = dir.files();
    for (spec, needle) in [
        ("dgram,local=127.0.0.1:1", "remote"),
        ("tap", "ifname"),
        (
            "dgram,local=127.0.0.1:1,remote=127.0.0.1:2,mac=01:00:00:00:00:01",
            "multicast",
        ),
        ("vde,sock=/x", "unknown backend"),
    ] {
        let out = seraph_v(&dir, &["--net", spec, kernel]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{spec}: {}",
            common::stderr(&out)
        );
        assert!(
            common::stderr(&out).contains(needle),
            "{spec}: {}",
            common::stderr(&out)
        );
        assert_eq!(dir.files(), before);
    }
    // A capture without a card.
    let out = seraph_v(&dir, &["--net-capture", "x.pcap", kernel]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("--net"),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(dir.files(), before);
    if !kvm_available("bad_net_options_are_one_line_errors") {
        return;
    }
    // A capture file that cannot be created: 73, nothing left behind.
    let out = seraph_v(
        &dir,
        &[
            "--no-screenshot",
            "--net",
            "dgram,local=127.0.0.1:0,remote=127.0.0.1:9",
            "--net-capture",
            "/nonexistent-dir/x.pcap",
            kernel,
        ],
    );
    assert_one_line_error(&dir, &out, 73, "/nonexistent-dir/x.pcap", &before);
    // A UDP port already in use: 71.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let net = format!("dgram,local=127.0.0.1:{port},remote=127.0.0.1:9");
    let out = seraph_v(&dir, &["--no-screenshot", "--net", &net, kernel]);
    assert_one_line_error(&dir, &out, 71, &format!("127.0.0.1:{port}"), &before);
}

/// Internet checksum (ones' complement of the ones' complement sum).
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

const PEER_MAC: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x77];
const PEER_IP: [u8; 4] = [10, 99, 0, 1];
const GUEST_IP: [u8; 4] = [10, 99, 0, 2];

fn icmp_echo_request(to: [u8; 6], seq: u16) -> Vec<u8> {
    let payload: Vec<u8> = (0..32u8).map(|i| i ^ seq as u8).collect();
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(&payload);
    let c = inet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&PEER_IP);
    ip.extend_from_slice(&GUEST_IP);
    let c = inet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = to.to_vec();
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend(ip);
    f.extend(icmp);
    f
}

#[test]
fn with_two_cards_the_first_net_option_is_the_first_card_on_the_bus() {
    if !kvm_available("with_two_cards_the_first_net_option_is_the_first_card") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "ping.elf", seraph_guests::AETHER_PING);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let (first, second) = (free_port(), free_port());
    let net1 = format!(
        "dgram,local=127.0.0.1:{first},remote={},mac=02:53:45:52:00:0a",
        peer.local_addr().unwrap()
    );
    // The second card's peer address answers nothing.
    let net2 = format!("dgram,local=127.0.0.1:{second},remote=127.0.0.1:9,mac=02:53:45:52:00:0b");
    let (out, err) = (dir.path("guest.out"), dir.path("guest.err"));
    let mut sv = spawn_seraph_v(
        &dir,
        &["--net", &net1, "--net", &net2, kernel.to_str().unwrap()],
        &out,
        &err,
    );
    let guest = format!("127.0.0.1:{first}");
    // ARP for the guest's address until the first card answers.
    let mut arp = vec![0xFF; 6];
    arp.extend_from_slice(&PEER_MAC);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    arp.extend_from_slice(&PEER_MAC);
    arp.extend_from_slice(&PEER_IP);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&GUEST_IP);
    arp.resize(60, 0);
    let mut reply = None;
    for _ in 0..300 {
        peer.send_to(&arp, &guest).unwrap();
        reply = recv_until(&peer, Duration::from_millis(100), |f| {
            f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2]
        });
        if reply.is_some() {
            break;
        }
    }
    let reply = reply.unwrap_or_else(|| panic!("no ARP reply: {}", read(&out)));
    assert_eq!(
        &reply[6..12],
        &[0x02, 0x53, 0x45, 0x52, 0x00, 0x0a],
        "the first card"
    );
    assert_eq!(&reply[28..32], &GUEST_IP);
    for seq in 1..=3u16 {
        let req = icmp_echo_request([0x02, 0x53, 0x45, 0x52, 0x00, 0x0a], seq);
        let mut echo = None;
        for _ in 0..20 {
            peer.send_to(&req, &guest).unwrap();
            echo = recv_until(&peer, Duration::from_millis(200), |f| {
                f.len() >= 42 && f[12..14] == [0x08, 0x00] && f[34] == 0
            });
            if echo.is_some() {
                break;
            }
        }
        let echo = echo.unwrap_or_else(|| panic!("no echo reply {seq}: {}", read(&out)));
        assert_eq!(inet_checksum(&echo[14..34]), 0, "IPv4 header checksum");
        assert_eq!(inet_checksum(&echo[34..]), 0, "ICMP checksum");
        assert_eq!(&echo[26..30], &GUEST_IP);
        assert_eq!(&echo[30..34], &PEER_IP);
        assert_eq!(echo[40..42], seq.to_be_bytes());
        assert_eq!(echo[42..], req[42..], "payload echoed");
    }
    let status = wait_bounded(&mut sv, Duration::from_secs(30));
    let text = read(&out) + &read(&err);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
    assert!(text.contains("aether-ping: ok\n"), "{text}");
}
