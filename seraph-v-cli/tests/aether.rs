//! The Aether NIC end to end: seraph-v processes linked by `--net dgram`
//! on 127.0.0.1, seraph-v linked with QEMU's e1000, a hostile peer, `ping`
//! through a TAP inside a network namespace the test creates, and the
//! command-line errors. The guests are seraph-guests' AETHER_PAIR(_IRQ)
//! and AETHER_PING (also proven on QEMU in seraph-aether's tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{TempDir, assert_one_line_error, kvm_available, seraph_v, write_guest};

/// The VM-pair tests each run two busy VMs: one at a time on small machines.
static HEAVY: Mutex<()> = Mutex::new(());

const SENDER_MAC: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x01];
const ECHO_MAC: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x02];

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dgram(local: u16, remote: u16, mac: &str) -> String {
    format!("dgram,local=127.0.0.1:{local},remote=127.0.0.1:{remote},mac={mac}")
}

/// Starts seraph-v with COM1 to `out` and its stderr to `err`.
fn spawn_seraph_v(dir: &TempDir, args: &[&str], out: &Path, err: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_seraph-v"))
        .args(["--no-screenshot", "--timeout", "240s"])
        .args(args)
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(File::create(out).unwrap())
        .stderr(File::create(err).unwrap())
        .spawn()
        .expect("seraph-v runs")
}

fn spawn_qemu(kernel: &Path, netdev: &str, mac: &str, out: &Path) -> Child {
    Command::new("qemu-system-x86_64")
        .args([
            "-M",
            "pc",
            "-accel",
            "kvm",
            "-m",
            "64",
            "-nographic",
            "-no-reboot",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .args(["-netdev", netdev])
        .args(["-device", &format!("e1000,netdev=n0,mac={mac},romfile=")])
        .arg("-kernel")
        .arg(kernel)
        .stdin(Stdio::null())
        .stdout(File::create(out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 runs (a test dependency of the Aether NIC)")
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn sender_ok(text: &str) -> bool {
    text.contains("aether-pair: mac 02:53:45:52:00:01 sender\n")
        && text.contains(&format!(
            "aether-pair: sender ok {} frames",
            seraph_guests::AETHER_PAIR_FRAMES
        ))
}

fn echo_ok(text: &str) -> bool {
    text.contains("aether-pair: mac 02:53:45:52:00:02 echo\n")
        && text.contains(&format!(
            "aether-pair: echo ok {} frames",
            seraph_guests::AETHER_PAIR_FRAMES
        ))
}

/// Two seraph-v processes run `guest`; the sender's frames are captured to `pcap`.
fn seraph_v_pair(guest: &[u8], pcap: Option<&Path>) -> (String, String) {
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "pair.elf", guest);
    let kernel = kernel.to_str().unwrap();
    let (p1, p2) = (free_port(), free_port());
    let echo_net = dgram(p1, p2, "02:53:45:52:00:02");
    let send_net = dgram(p2, p1, "02:53:45:52:00:01");
    let (eo, ee, so, se) = (
        dir.path("echo.out"),
        dir.path("echo.err"),
        dir.path("send.out"),
        dir.path("send.err"),
    );
    let mut echo = spawn_seraph_v(&dir, &["--net", &echo_net, kernel], &eo, &ee);
    let mut send_args = vec!["--net", send_net.as_str()];
    let capture = pcap.map(|p| p.to_str().unwrap().to_string());
    if let Some(c) = &capture {
        send_args.extend(["--net-capture", c.as_str()]);
    }
    send_args.push(kernel);
    let mut sender = spawn_seraph_v(&dir, &send_args, &so, &se);
    let ss = wait_bounded(&mut sender, Duration::from_secs(250));
    let es = wait_bounded(&mut echo, Duration::from_secs(30));
    let (stext, etext) = (read(&so) + &read(&se), read(&eo) + &read(&ee));
    assert_eq!(ss.and_then(|s| s.code()), Some(0), "sender: {stext}");
    assert_eq!(es.and_then(|s| s.code()), Some(0), "echo: {etext}");
    assert!(sender_ok(&stext), "sender: {stext}");
    assert!(echo_ok(&etext), "echo: {etext}");
    (stext, etext)
}

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

/// The pair guests' frame format (see aether_pair.c).
fn pair_frame(dst: [u8; 6], src: [u8; 6], kind: u8, seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xB5, b'A', b'E', b'T', b'H', kind, 0]);
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend_from_slice(&(len as u16).to_le_bytes());
    for i in 26..len as u32 {
        f.push(
            seq.wrapping_mul(7)
                .wrapping_add(i * 13)
                .wrapping_add(i >> 8) as u8,
        );
    }
    f
}

fn pair_len(seq: u32) -> usize {
    if seq == 1 {
        1514
    } else {
        60 + (seq as usize * 89) % 1455
    }
}

/// Receives until `pred` holds for a datagram, at most `limit`.
fn recv_until(sock: &UdpSocket, limit: Duration, pred: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let end = Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            if pred(&buf[..n]) {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

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
