//! Measurement 8: two VMs linked by UDP datagrams on 127.0.0.1 (seraph-v's
//! `--net dgram`, QEMU's `-netdev dgram` with an e1000), running the
//! interrupt-driven Aether pair guest (`aether_pair_irq`, the same ELF on
//! both VMMs and both ends): the sender (MAC ending 00:01) sends numbered
//! frames of 60-1514 bytes one at a time and waits for each echo in HLT;
//! the echo guest checks and returns every frame. Interrupt-driven on both
//! ends, so no guest spins a host CPU and the round trip is the wake-up
//! path of both VMMs (a polling sender would keep one of this machine's
//! two CPUs busy and turn the round trip into a scheduler time slice).
//!
//! The exchange is timed from the sender's `aether-pair: mac ... sender`
//! line (printed before its first hello) to its `sender ok` line, so boot
//! and exit are outside; that span holds one hello round trip and
//! [`seraph_guests::AETHER_PAIR_FRAMES`] data round trips. Stop-and-wait:
//! frames per second (both directions) = 2 / round trip.

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use crate::error::BenchError;
use crate::lines::LineChild;
use crate::spawn::Invocation;

/// The sender's MAC (the pair guest sends when its MAC ends in 00:01).
pub const SENDER_MAC: &str = "02:53:45:52:00:01";
/// The echo guest's MAC.
pub const ECHO_MAC: &str = "02:53:45:52:00:02";

/// A free UDP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> Result<u16, BenchError> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(BenchError::io("127.0.0.1:0"))?;
    Ok(socket
        .local_addr()
        .map_err(BenchError::io("127.0.0.1:0"))?
        .port())
}

/// seraph-v with one Aether NIC on a dgram link.
pub fn seraph_v(binary: &Path, guest: &Path, local: u16, remote: u16, mac: &str) -> Invocation {
    let net = format!("dgram,local=127.0.0.1:{local},remote=127.0.0.1:{remote},mac={mac}");
    Invocation::new(
        binary,
        [
            "--no-screenshot".as_ref(),
            "--serial".as_ref(),
            "stdio".as_ref(),
            "--timeout".as_ref(),
            "240s".as_ref(),
            "--net".as_ref(),
            net.as_ref(),
            guest.as_os_str(),
        ],
    )
}

/// QEMU `-M pc` with one e1000 on a dgram link, booting the same ELF (PVH).
pub fn qemu(binary: &Path, guest: &Path, local: u16, remote: u16, mac: &str) -> Invocation {
    let netdev = format!(
        "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={local},\
         remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
    );
    let mut args: Vec<std::ffi::OsString> =
        crate::peers::QEMU_PC_ARGS.iter().map(Into::into).collect();
    for arg in [
        "-m".to_owned(),
        "64".to_owned(),
        "-netdev".to_owned(),
        netdev,
        "-device".to_owned(),
        format!("e1000,netdev=n0,mac={mac},romfile="),
        "-kernel".to_owned(),
    ] {
        args.push(arg.into());
    }
    args.push(guest.as_os_str().to_owned());
    Invocation::new(binary, args)
}

/// Resends the sender reports on its `sender ok` line (0 if none).
pub fn resends(sender_ok_line: &str) -> u64 {
    sender_ok_line
        .split_once(" resends ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One pair run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairRun {
    /// Mean round trip over the exchange, microseconds.
    pub round_trip_us: f64,
    /// Frames delivered per second, both directions.
    pub frames_per_s: f64,
    /// Frames the sender had to resend (a lost frame costs a timeout).
    pub resends: u64,
}

/// Which VMM runs the pair, and its exit code for a passing guest.
#[derive(Debug, Clone)]
pub struct PairSide {
    /// Builds the command for (local port, remote port, MAC, guest).
    pub command: fn(&Path, &Path, u16, u16, &str) -> Invocation,
    /// The VMM binary.
    pub binary: std::path::PathBuf,
    /// Exit code of a guest that passed.
    pub ok_code: i32,
}

/// Runs one pair: the echo VM first (until its `mac ... echo` line), then
/// the sender; times the exchange (see the module docs); checks both
/// guests' verdicts and exit codes.
pub fn run_pair(side: &PairSide, sender: &Path, echo: &Path) -> Result<PairRun, BenchError> {
    let limit = Duration::from_secs(120);
    let (p1, p2) = (free_port()?, free_port()?);
    let mut echo_vm =
        LineChild::spawn(&(side.command)(&side.binary, echo, p1, p2, ECHO_MAC), false)?;
    let echo_mac = format!("aether-pair: mac {ECHO_MAC} echo");
    echo_vm.wait_line(limit, |l| l == echo_mac)?;
    let mut sender_vm = LineChild::spawn(
        &(side.command)(&side.binary, sender, p2, p1, SENDER_MAC),
        false,
    )?;
    let sender_mac = format!("aether-pair: mac {SENDER_MAC} sender");
    let start = sender_vm.wait_line(limit, |l| l == sender_mac)?;
    let frames = seraph_guests::AETHER_PAIR_FRAMES;
    let ok_prefix = format!("aether-pair: sender ok {frames} frames");
    let done = sender_vm.wait_line(limit, |l| l.starts_with(&ok_prefix) || l.contains("FAILED"))?;
    let fail = |who: &str, detail: String| BenchError::Child {
        program: side.binary.clone(),
        detail: format!("aether pair, {who}: {detail}"),
    };
    if !done.text.starts_with(&ok_prefix) {
        return Err(fail("sender", done.text));
    }
    let (sender_code, _) = sender_vm.wait_exit(limit)?;
    let (echo_code, _) = echo_vm.wait_exit(limit)?;
    let echo_ok = format!("aether-pair: echo ok {frames} frames");
    if !echo_vm.seen().iter().any(|l| l.text.starts_with(&echo_ok)) {
        return Err(fail("echo", echo_vm.transcript()));
    }
    if sender_code != Some(side.ok_code) || echo_code != Some(side.ok_code) {
        return Err(fail(
            "exit codes",
            format!(
                "sender {sender_code:?}, echo {echo_code:?}, expected {}",
                side.ok_code
            ),
        ));
    }
    let span = done.at.saturating_duration_since(start.at).as_secs_f64();
    let round_trips = f64::from(frames) + 1.0;
    Ok(PairRun {
        round_trip_us: span / round_trips * 1e6,
        frames_per_s: if span > 0.0 {
            2.0 * round_trips / span
        } else {
            0.0
        },
        resends: resends(&done.text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_come_from_the_sender_line() {
        assert_eq!(resends("aether-pair: sender ok 1000 frames"), 0);
        assert_eq!(resends("aether-pair: sender ok 1000 frames resends 3"), 3);
        assert_eq!(
            resends("aether-pair: sender ok 1000 frames resends 12 irqs 5"),
            12
        );
    }

    #[test]
    fn command_lines_link_the_two_ends() -> Result<(), BenchError> {
        let port = free_port()?;
        assert!(port > 0);
        let s = seraph_v(Path::new("sv"), Path::new("g.elf"), 5001, 5002, SENDER_MAC);
        assert_eq!(
            s.shown(),
            "sv --no-screenshot --serial stdio --timeout 240s --net \
             dgram,local=127.0.0.1:5001,remote=127.0.0.1:5002,mac=02:53:45:52:00:01 g.elf"
        );
        let q = qemu(Path::new("q"), Path::new("g.elf"), 5002, 5001, ECHO_MAC);
        let shown = q.shown();
        assert!(
            shown.contains(
                "local.port=5002,remote.type=inet,remote.host=127.0.0.1,remote.port=5001"
            )
        );
        assert!(
            shown.ends_with("-device e1000,netdev=n0,mac=02:53:45:52:00:02,romfile= -kernel g.elf")
        );
        Ok(())
    }

    #[test]
    fn a_pair_of_scripts_is_timed_and_checked() -> Result<(), BenchError> {
        // A stand-in VMM: prints what the pair guests print and exits 0.
        fn fake(_: &Path, guest: &Path, _: u16, _: u16, mac: &str) -> Invocation {
            let role = if mac == SENDER_MAC { "sender" } else { "echo" };
            let frames = seraph_guests::AETHER_PAIR_FRAMES;
            let script = format!(
                "echo 'aether-pair: mac {mac} {role}'; sleep 0.05; \
                 echo 'aether-pair: {role} ok {frames} frames'; exit ${{0##*x}}"
            );
            let _ = guest;
            Invocation::new(Path::new("/bin/sh"), ["-c", &script, "x0"])
        }
        let side = PairSide {
            command: fake,
            binary: "/bin/sh".into(),
            ok_code: 0,
        };
        let run = run_pair(&side, Path::new("s"), Path::new("e"))?;
        assert!(run.round_trip_us > 0.0 && run.frames_per_s > 0.0);
        assert_eq!(run.resends, 0);
        let wrong = PairSide { ok_code: 1, ..side };
        assert!(run_pair(&wrong, Path::new("s"), Path::new("e")).is_err());
        Ok(())
    }
}
