//! The Aether test guests on QEMU's own e1000 (the reference): two QEMU
//! processes linked by `-netdev dgram` on 127.0.0.1 exchange 1000 Aether
//! frames, and the ARP/ICMP guest answers `ping` through a TAP inside a
//! network namespace this test creates. Needs /dev/kvm (set
//! SERAPH_V_SKIP_KVM=1 to skip where there is none), qemu-system-x86_64,
//! unshare, ip and ping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn kvm_or_skip(test: &str) -> bool {
    if Path::new("/dev/kvm").exists() {
        return true;
    }
    if std::env::var("SERAPH_V_SKIP_KVM").as_deref() == Ok("1") {
        eprintln!("{test}: SKIPPED: /dev/kvm is missing and SERAPH_V_SKIP_KVM=1");
        return false;
    }
    panic!("{test}: /dev/kvm is missing (set SERAPH_V_SKIP_KVM=1 to skip KVM tests)");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seraph-aether-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_guest(dir: &Path, name: &str, elf: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, elf).unwrap();
    path
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// QEMU with COM1 on stdout (to `log`), isa-debug-exit, one e1000 on `netdev`.
fn qemu(kernel: &Path, netdev: &str, mac: &str, log: &Path) -> Child {
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
        .stdout(File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 runs (a test dependency of the Aether NIC)")
}

/// Waits for `child` at most `limit`; kills it after that.
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

fn dgram(local: u16, remote: u16) -> String {
    format!(
        "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={local},\
         remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
    )
}

/// isa-debug-exit turns guest status 0 into QEMU exit code 1.
const QEMU_GUEST_OK: i32 = 1;

fn pair(sender_elf: &[u8], echo_elf: &[u8], name: &str) {
    let dir = scratch(name);
    let sender = write_guest(&dir, "sender.elf", sender_elf);
    let echo = write_guest(&dir, "echo.elf", echo_elf);
    let (p1, p2) = (free_port(), free_port());
    let (slog, elog) = (dir.join("sender.log"), dir.join("echo.log"));
    let mut e = qemu(&echo, &dgram(p1, p2), "02:53:45:52:00:02", &elog);
    let mut s = qemu(&sender, &dgram(p2, p1), "02:53:45:52:00:01", &slog);
    let ss = wait_bounded(&mut s, Duration::from_secs(240));
    let es = wait_bounded(&mut e, Duration::from_secs(30));
    let stext = std::fs::read_to_string(&slog).unwrap_or_default();
    let etext = std::fs::read_to_string(&elog).unwrap_or_default();
    let frames = seraph_guests::AETHER_PAIR_FRAMES;
    assert!(
        stext.contains("aether-pair: mac 02:53:45:52:00:01 sender\n")
            && stext.contains(&format!("aether-pair: sender ok {frames} frames")),
        "sender ({ss:?}): {stext}"
    );
    assert!(
        etext.contains("aether-pair: mac 02:53:45:52:00:02 echo\n")
            && etext.contains(&format!("aether-pair: echo ok {frames} frames")),
        "echo ({es:?}): {etext}"
    );
    assert_eq!(ss.and_then(|s| s.code()), Some(QEMU_GUEST_OK), "{stext}");
    assert_eq!(es.and_then(|s| s.code()), Some(QEMU_GUEST_OK), "{etext}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_pair_guests_exchange_1000_frames_between_two_qemu_e1000s() {
    if !kvm_or_skip("the_pair_guests_exchange_1000_frames_between_two_qemu_e1000s") {
        return;
    }
    // One polling and one interrupt-driven guest per run: both drivers proven,
    // and only one vCPU spins on the two cores.
    pair(
        seraph_guests::AETHER_PAIR,
        seraph_guests::AETHER_PAIR_IRQ,
        "qemu-pair-a",
    );
    pair(
        seraph_guests::AETHER_PAIR_IRQ,
        seraph_guests::AETHER_PAIR,
        "qemu-pair-b",
    );
}

#[test]
fn the_ping_guest_answers_ping_through_a_tap_in_a_namespace() {
    if !kvm_or_skip("the_ping_guest_answers_ping_through_a_tap_in_a_namespace") {
        return;
    }
    let dir = scratch("qemu-ping");
    let kernel = write_guest(&dir, "ping.elf", seraph_guests::AETHER_PING);
    let log = dir.join("guest.log");
    // Everything below runs in a new network namespace: the TAP, its
    // address and the ping never touch the machine's own interfaces.
    let script = format!(
        "set -e
         ip link set lo up
         ip tuntap add svtap0 mode tap
         ip addr add 10.99.0.1/24 dev svtap0
         ip link set svtap0 up
         timeout 120 qemu-system-x86_64 -M pc -accel kvm -m 64 -nographic -no-reboot \
           -device isa-debug-exit,iobase=0xf4,iosize=4 \
           -netdev tap,id=n0,ifname=svtap0,script=no,downscript=no \
           -device e1000,netdev=n0,romfile= -kernel {kernel} > {log} 2>/dev/null &
         q=$!
         i=0
         while [ $i -lt 1200 ] && ! grep -q 'aether-ping: ip' {log}; do sleep 0.1; i=$((i+1)); done
         ping -c 3 -i 0.3 -w 60 {ip}
         set +e
         wait $q
         echo qemu-exit=$?",
        kernel = kernel.display(),
        log = log.display(),
        ip = seraph_guests::AETHER_PING_IP,
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let guest = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{stdout}\n{}\nguest: {guest}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 3 received"), "{stdout}");
    assert!(stdout.contains("qemu-exit=1"), "{stdout}\nguest: {guest}");
    assert!(guest.contains("aether-ping: arp reply\n"), "{guest}");
    assert!(guest.contains("aether-ping: ok\n"), "{guest}");
    std::fs::remove_dir_all(&dir).unwrap();
}
