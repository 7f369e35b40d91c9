//! Measurement 7: wake-up latency, a byte written to the VMM's stdin to
//! the guest's echo of it on stdout. The guest (`serial_echo`) sleeps in
//! HLT with interrupts on; the byte goes stdin -> COM1's receive FIFO ->
//! IRQ4 -> the guest's handler, which prints `echo: <c>`. Also: the CPU
//! time the VMM uses while the guest is halted with nothing to do.
//!
//! The floor is the same round trip through `cat` (two pipe hops and a
//! process wake-up, no VM); QEMU running the same ELF is the peer.

use std::path::Path;
use std::time::Duration;

use crate::error::BenchError;
use crate::lines::LineChild;
use crate::procstat::cpu_time_ns;
use crate::spawn::Invocation;

/// The bytes typed, in turn (never `q`, which ends the guest).
pub const KEYS: &[u8] = b"abcdefghijklmnop";

/// The key for byte number `i`.
pub fn key(i: usize) -> u8 {
    KEYS.get(i % KEYS.len()).copied().unwrap_or(b'a')
}

/// The line `serial_echo` prints for `key`.
pub fn echo_line(key: u8) -> String {
    format!("echo: {}", char::from(key))
}

/// Who is measured and how it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echoer {
    /// The serial_echo guest in a VMM: waits for its ready line, answers
    /// `echo: <c>`, ends on `q` with `exit_code`.
    Guest {
        /// The VMM's exit code after `q`.
        exit_code: i32,
    },
    /// `cat`: answers each `<c>\n` with `<c>`, ends at the end of stdin.
    Cat,
}

/// One contender's wake-up run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WakeRun {
    /// Write-to-echo latency per byte, microseconds.
    pub latency_us: Vec<f64>,
    /// CPU time of the whole process over the idle period, as a fraction
    /// of one CPU (`None` if /proc could not tell).
    pub idle_cpu: Option<f64>,
}

/// How many bytes, how far apart, and how long the idle period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakePlan {
    /// Bytes typed, one at a time.
    pub bytes: usize,
    /// Pause before each byte (the guest is back in HLT by then).
    pub gap: Duration,
    /// Idle period over which CPU use is measured, before the first byte.
    pub idle: Duration,
}

/// Spawns `inv` with stdin piped and measures it (see the module docs).
pub fn measure(inv: &Invocation, echoer: Echoer, plan: WakePlan) -> Result<WakeRun, BenchError> {
    let limit = Duration::from_secs(60);
    let mut child = LineChild::spawn(inv, true)?;
    if let Echoer::Guest { .. } = echoer {
        let ready = seraph_guests::SERIAL_ECHO_READY.trim_end();
        child.wait_line(limit, |l| l == ready)?;
    }
    // Let start-up settle (QEMU's threads, the first page faults), then
    // count CPU time over an idle period.
    std::thread::sleep(Duration::from_millis(100));
    let before = cpu_time_ns(child.pid());
    std::thread::sleep(plan.idle);
    let after = cpu_time_ns(child.pid());
    let idle_cpu = before
        .zip(after)
        .map(|(b, a)| a.saturating_sub(b) as f64 / plan.idle.as_nanos().max(1) as f64);
    let mut latency_us = Vec::with_capacity(plan.bytes);
    for i in 0..plan.bytes {
        std::thread::sleep(plan.gap);
        let k = key(i);
        let (sent, line) = match echoer {
            Echoer::Guest { .. } => {
                let expected = echo_line(k);
                let sent = child.send(&[k])?;
                (sent, child.wait_line(limit, |l| l == expected)?)
            }
            Echoer::Cat => {
                let expected = char::from(k).to_string();
                let sent = child.send(&[k, b'\n'])?;
                (sent, child.wait_line(limit, |l| l == expected)?)
            }
        };
        latency_us.push(line.at.saturating_duration_since(sent).as_secs_f64() * 1e6);
    }
    let code = match echoer {
        Echoer::Guest { exit_code } => {
            child.send(b"q")?;
            (exit_code, child.wait_exit(limit)?.0)
        }
        Echoer::Cat => {
            child.close_stdin();
            (0, child.wait_exit(limit)?.0)
        }
    };
    if code.1 != Some(code.0) {
        return Err(BenchError::Child {
            program: inv.program.clone(),
            detail: format!(
                "expected exit code {} after the last byte, got {:?}; output:\n{}",
                code.0,
                code.1,
                child.transcript()
            ),
        });
    }
    Ok(WakeRun {
        latency_us,
        idle_cpu,
    })
}

/// `seraph-v <echo guest> --serial stdio --no-screenshot --timeout 120s`.
pub fn seraph_v(binary: &Path, guest: &Path) -> Invocation {
    Invocation::new(
        binary,
        [
            guest.as_os_str(),
            "--serial".as_ref(),
            "stdio".as_ref(),
            "--no-screenshot".as_ref(),
            "--timeout".as_ref(),
            "120s".as_ref(),
        ],
    )
}

/// QEMU `-M pc` booting the same ELF (PVH), COM1 on stdio.
pub fn qemu(binary: &Path, guest: &Path) -> Invocation {
    let mut args: Vec<std::ffi::OsString> =
        crate::peers::QEMU_PC_ARGS.iter().map(Into::into).collect();
    args.extend(["-m".into(), "64".into(), "-kernel".into()]);
    args.push(guest.as_os_str().to_owned());
    Invocation::new(binary, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_quit_and_lines_match_the_guest() {
        assert!((0..100).all(|i| key(i) != b'q'));
        assert_eq!(key(0), b'a');
        assert_eq!(key(KEYS.len()), b'a');
        assert_eq!(echo_line(b'c'), "echo: c");
    }

    #[test]
    fn cat_is_measured_like_a_guest() -> Result<(), BenchError> {
        let Some(cat) = crate::spawn::find_in_path("cat") else {
            return Err(BenchError::Setup(
                "cat (coreutils) is not on PATH: it is the wake-up floor".into(),
            ));
        };
        let plan = WakePlan {
            bytes: 5,
            gap: Duration::from_millis(1),
            idle: Duration::from_millis(50),
        };
        let run = measure(&Invocation::new(&cat, [""; 0]), Echoer::Cat, plan)?;
        assert_eq!(run.latency_us.len(), 5);
        assert!(run.latency_us.iter().all(|l| *l >= 0.0));
        assert!(run.idle_cpu.is_some());
        Ok(())
    }

    #[test]
    fn a_wrong_exit_code_is_an_error() {
        // `sh` that echoes like a guest but exits 3 after `q`.
        let script = "echo 'serial-echo: ready'; while :; do c=$(dd bs=1 count=1 2>/dev/null); \
                      [ \"$c\" = q ] && exit 3; echo \"echo: $c\"; done";
        let inv = Invocation::new(Path::new("/bin/sh"), ["-c", script]);
        let plan = WakePlan {
            bytes: 2,
            gap: Duration::from_millis(1),
            idle: Duration::from_millis(10),
        };
        let ok = measure(&inv, Echoer::Guest { exit_code: 3 }, plan);
        assert!(ok.is_ok(), "{ok:?}");
        let wrong = measure(&inv, Echoer::Guest { exit_code: 0 }, plan);
        assert!(wrong.is_err());
    }

    #[test]
    fn command_lines() {
        let s = seraph_v(Path::new("sv"), Path::new("e.elf"));
        assert_eq!(
            s.shown(),
            "sv e.elf --serial stdio --no-screenshot --timeout 120s"
        );
        let q = qemu(Path::new("q"), Path::new("e.elf"));
        assert!(q.shown().ends_with("-m 64 -kernel e.elf"), "{}", q.shown());
    }
}
