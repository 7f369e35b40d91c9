//! Helpers shared by the Aether NIC tests: spawning seraph-v and QEMU,
//! the pair guests' frame format and checks.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::{TempDir, wait_bounded, write_guest};

/// The VM-pair tests each run two busy VMs: one at a time on small machines.
static HEAVY: Mutex<()> = Mutex::new(());

pub const SENDER_MAC: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x01];
pub const ECHO_MAC: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x02];

pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn dgram(local: u16, remote: u16, mac: &str) -> String {
    format!("dgram,local=127.0.0.1:{local},remote=127.0.0.1:{remote},mac={mac}")
}

/// Starts seraph-v with COM1 to `out` and its stderr to `err`.
pub fn spawn_seraph_v(dir: &TempDir, args: &[&str], out: &Path, err: &Path) -> Child {
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

pub fn spawn_qemu(kernel: &Path, netdev: &str, mac: &str, out: &Path) -> Child {
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

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn sender_ok(text: &str) -> bool {
    text.contains("aether-pair: mac 02:53:45:52:00:01 sender\n")
        && text.contains(&format!(
            "aether-pair: sender ok {} frames",
            seraph_guests::AETHER_PAIR_FRAMES
        ))
}

pub fn echo_ok(text: &str) -> bool {
    text.contains("aether-pair: mac 02:53:45:52:00:02 echo\n")
        && text.contains(&format!(
            "aether-pair: echo ok {} frames",
            seraph_guests::AETHER_PAIR_FRAMES
        ))
}

/// Two seraph-v processes run `guest`; the sender's frames are captured to `pcap`.
pub fn seraph_v_pair(guest: &[u8], pcap: Option<&Path>) -> (String, String) {
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

/// The pair guests' frame format (see aether_pair.c).
pub fn pair_frame(dst: [u8; 6], src: [u8; 6], kind: u8, seq: u32, len: usize) -> Vec<u8> {
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

pub fn pair_len(seq: u32) -> usize {
    if seq == 1 {
        1514
    } else {
        60 + (seq as usize * 89) % 1455
    }
}

/// Receives until `pred` holds for a datagram, at most `limit`.
pub fn recv_until(
    sock: &UdpSocket,
    limit: Duration,
    pred: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
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
