//! Measurement 9: NVMe 4 KiB random reads and sequential writes at queue
//! depth 1, seraph-v's Atlas disk (`--disk`) against QEMU's `-device nvme`,
//! the same guest ELF (`nvme_bench`) and the same raw image. The guest
//! times each phase with its TSC and prints `nvme-bench: <kind> <ops> ops
//! <cycles> cycles`; both VMMs run on this host's TSC, so cycles per
//! command compare directly, and the host's TSC rate turns them into time.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::lines::LineChild;
use crate::spawn::Invocation;

/// One phase the guest reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// `randread-4k` or `seqwrite-4k`.
    pub kind: String,
    /// Commands issued.
    pub ops: u64,
    /// TSC cycles the phase took.
    pub cycles: u64,
}

impl Phase {
    /// Cycles per command.
    pub fn cycles_per_op(&self) -> Option<f64> {
        (self.ops > 0).then(|| self.cycles as f64 / self.ops as f64)
    }
}

/// Parses `nvme-bench: <kind> <ops> ops <cycles> cycles`.
pub fn parse_phase(line: &str) -> Option<Phase> {
    let rest = line.strip_prefix("nvme-bench: ")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        [kind, ops, "ops", cycles, "cycles"] => Some(Phase {
            kind: (*kind).to_owned(),
            ops: ops.parse().ok()?,
            cycles: cycles.parse().ok()?,
        }),
        _ => None,
    }
}

/// The host's TSC rate in cycles per second, measured against the
/// monotonic clock over `over`.
pub fn tsc_hz(over: Duration) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let t0 = Instant::now();
        // SAFETY: rdtsc has no preconditions on x86_64.
        let c0 = unsafe { core::arch::x86_64::_rdtsc() };
        std::thread::sleep(over);
        // SAFETY: as above.
        let c1 = unsafe { core::arch::x86_64::_rdtsc() };
        let secs = t0.elapsed().as_secs_f64();
        (secs > 0.0 && c1 > c0).then(|| (c1 - c0) as f64 / secs)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = over;
        None
    }
}

/// Writes a raw image of `size` bytes (a multiple of 4 KiB), every block
/// filled with a pattern, so reads return real data on both VMMs.
pub fn write_image(path: &Path, size: u64) -> Result<(), BenchError> {
    let mut file = std::fs::File::create(path).map_err(BenchError::io(path))?;
    let mut block = [0u8; 4096];
    for n in 0..size / 4096 {
        for (i, b) in block.iter_mut().enumerate() {
            *b = (n as usize).wrapping_mul(31).wrapping_add(i) as u8;
        }
        file.write_all(&block).map_err(BenchError::io(path))?;
    }
    file.sync_all().map_err(BenchError::io(path))
}

/// seraph-v with the image as its NVMe disk.
pub fn seraph_v(binary: &Path, guest: &Path, image: &Path) -> Invocation {
    let disk = image.as_os_str().to_owned();
    Invocation::new(
        binary,
        [
            "--no-screenshot".into(),
            "--serial".into(),
            "stdio".into(),
            "--timeout".into(),
            "300s".into(),
            "--disk".into(),
            disk,
            guest.as_os_str().to_owned(),
        ],
    )
}

/// QEMU `-M pc` with the image on `-device nvme`, booting the same ELF (PVH).
pub fn qemu(binary: &Path, guest: &Path, image: &Path) -> Invocation {
    let mut args: Vec<std::ffi::OsString> =
        crate::peers::QEMU_PC_ARGS.iter().map(Into::into).collect();
    for arg in [
        "-m".to_owned(),
        "256".to_owned(),
        "-drive".to_owned(),
        format!("file={},if=none,id=d0,format=raw", image.display()),
        "-device".to_owned(),
        "nvme,drive=d0,serial=bench".to_owned(),
        "-kernel".to_owned(),
    ] {
        args.push(arg.into());
    }
    args.push(guest.as_os_str().to_owned());
    Invocation::new(binary, args)
}

/// Runs the bench guest once; returns its phases (random reads, then
/// sequential writes) after checking `nvme-bench: ok` and the exit code.
pub fn run_once(inv: &Invocation, ok_code: i32) -> Result<Vec<Phase>, BenchError> {
    let limit = Duration::from_secs(300);
    let mut child = LineChild::spawn(inv, false)?;
    child.wait_line(limit, |l| l == "nvme-bench: ok" || l.contains("FAILED"))?;
    let (code, _) = child.wait_exit(limit)?;
    let phases: Vec<Phase> = child
        .seen()
        .iter()
        .filter_map(|l| parse_phase(&l.text))
        .collect();
    let ok = child.seen().iter().any(|l| l.text == "nvme-bench: ok");
    if !ok || code != Some(ok_code) || phases.len() != 2 {
        return Err(BenchError::Child {
            program: inv.program.clone(),
            detail: format!(
                "nvme bench: expected `nvme-bench: ok`, two phases and exit code {ok_code}, got {code:?}; output:\n{}",
                child.transcript()
            ),
        });
    }
    Ok(phases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_lines() {
        let p = parse_phase("nvme-bench: randread-4k 20000 ops 123456789 cycles");
        assert_eq!(
            p,
            Some(Phase {
                kind: "randread-4k".into(),
                ops: 20000,
                cycles: 123_456_789
            })
        );
        assert_eq!(
            p.and_then(|p| p.cycles_per_op()),
            Some(123_456_789.0 / 20000.0)
        );
        assert_eq!(parse_phase("nvme-bench: ok"), None);
        assert_eq!(parse_phase("nvme-bench: x 1 ops y cycles"), None);
        let zero = Phase {
            kind: "x".into(),
            ops: 0,
            cycles: 5,
        };
        assert_eq!(zero.cycles_per_op(), None);
    }

    #[test]
    fn tsc_rate_is_plausible() {
        if let Some(hz) = tsc_hz(Duration::from_millis(20)) {
            assert!(hz > 1e8 && hz < 1e11, "{hz}");
        }
    }

    #[test]
    fn image_is_written_with_a_pattern_and_commands_use_it() -> Result<(), BenchError> {
        let path = std::env::temp_dir().join(format!("seraph-v-bench-img-{}", std::process::id()));
        write_image(&path, 3 * 4096)?;
        let bytes = std::fs::read(&path).map_err(BenchError::io(&path))?;
        assert_eq!(bytes.len(), 3 * 4096);
        assert_eq!((bytes[1], bytes[4096 + 1]), (1, 32));
        std::fs::remove_file(&path).map_err(BenchError::io(&path))?;
        let s = seraph_v(Path::new("sv"), Path::new("g.elf"), Path::new("d.img"));
        assert_eq!(
            s.shown(),
            "sv --no-screenshot --serial stdio --timeout 300s --disk d.img g.elf"
        );
        let q = qemu(Path::new("q"), Path::new("g.elf"), Path::new("d.img"));
        assert!(q.shown().ends_with(
            "-drive file=d.img,if=none,id=d0,format=raw -device nvme,drive=d0,serial=bench -kernel g.elf"
        ));
        Ok(())
    }

    #[test]
    fn a_run_without_its_ok_line_is_an_error() {
        let good = Invocation::new(
            Path::new("/bin/sh"),
            [
                "-c",
                "echo 'nvme-bench: randread-4k 10 ops 100 cycles'; \
                 echo 'nvme-bench: seqwrite-4k 10 ops 200 cycles'; echo 'nvme-bench: ok'",
            ],
        );
        let phases = run_once(&good, 0);
        assert_eq!(phases.as_ref().map(Vec::len).ok(), Some(2), "{phases:?}");
        let bad = Invocation::new(Path::new("/bin/sh"), ["-c", "echo 'nvme-bench: FAILED x'"]);
        assert!(run_once(&bad, 0).is_err());
    }
}
