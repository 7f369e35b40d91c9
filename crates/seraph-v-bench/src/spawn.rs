//! Timing a child process from spawn to its first stdout byte and to its
//! exit; reading its peak resident memory at its exit.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::BenchError;

/// What one child run took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRun {
    /// Spawn to the first byte on its stdout, if it wrote any.
    pub first_output: Option<Duration>,
    /// Spawn to its exit (reaped).
    pub exit: Duration,
    /// Its exit code (`None` if a signal killed it).
    pub code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
}

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

impl Invocation {
    /// `program` with `args`.
    pub fn new<A: Into<OsString>>(program: &Path, args: impl IntoIterator<Item = A>) -> Self {
        Self {
            program: program.to_owned(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The command line, for reports.
    pub fn shown(&self) -> String {
        let mut text = self.program.display().to_string();
        for arg in &self.args {
            text.push(' ');
            text.push_str(&arg.to_string_lossy());
        }
        text
    }
}

/// Runs `inv` with stdin and stderr closed, reading its stdout to the end.
pub fn time_child(inv: &Invocation) -> Result<ChildRun, BenchError> {
    let fail = |detail: String| BenchError::Child {
        program: inv.program.clone(),
        detail,
    };
    let started = Instant::now();
    let mut child = Command::new(&inv.program)
        .args(&inv.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| fail(e.to_string()))?;
    let mut stdout = Vec::new();
    let mut first_output = None;
    if let Some(mut pipe) = child.stdout.take() {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    first_output.get_or_insert_with(|| started.elapsed());
                    stdout.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(format!("reading stdout: {e}"))),
            }
        }
    }
    let mut status: libc::c_int = 0;
    let reaped = loop {
        // SAFETY: `pid` is our unreaped child (std never waits for it unless
        // asked); `status` is a live local waitpid writes into.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let exit = started.elapsed();
    if reaped != pid {
        return Err(fail(format!(
            "waitpid failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(ChildRun {
        first_output,
        exit,
        code,
        stdout,
    })
}

/// Resident memory of a process at its exit, read from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitMemory {
    /// `VmHWM`: peak resident set of the process's own address space, bytes.
    pub peak: u64,
    /// `VmRSS` at the exit, bytes.
    pub resident: u64,
}

/// Reads `VmHWM` and `VmRSS` (kB) from a `/proc/<pid>/status` text.
pub fn parse_status_memory(status: &str) -> Option<ExitMemory> {
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let value = line.get(key.len()..)?.trim().strip_suffix("kB")?.trim();
        value.parse::<u64>().ok()?.checked_mul(1024)
    };
    Some(ExitMemory {
        peak: kib("VmHWM:")?,
        resident: kib("VmRSS:")?,
    })
}

/// Runs `inv` (output discarded) and reads its peak RSS when it exits.
///
/// `wait4`'s `ru_maxrss` cannot be used from this process: at `exec` the
/// kernel folds the high-water mark of the address space being replaced,
/// which for a child spawned from the benchmark is the benchmark's own
/// (hundreds of MiB of mapped guests), into the child's `maxrss`. `VmHWM`
/// belongs to the child's new address space only. The child is traced
/// (`PTRACE_O_TRACEEXIT`) so that it stops at its exit
/// while its memory is still mapped (`PTRACE_TRACEME` before exec, so
/// even a child that exits at once is caught). These runs are not timed.
pub fn exit_memory(inv: &Invocation) -> Result<ExitMemory, BenchError> {
    let fail = |detail: String| BenchError::Child {
        program: inv.program.clone(),
        detail,
    };
    let mut command = Command::new(&inv.program);
    command
        .args(&inv.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the ptrace(2) system call, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let r = libc::ptrace(
                libc::PTRACE_TRACEME,
                0,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            );
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let child = command
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| fail(e.to_string()))?;
    // The child stops with SIGTRAP at its exec: ask for a stop at its exit too.
    let mut status: libc::c_int = 0;
    // SAFETY: waiting for our own traced child; `status` is a live local.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    if r != pid || !libc::WIFSTOPPED(status) {
        return Err(fail(format!(
            "no exec stop (waitpid {r}, status {status:#x})"
        )));
    }
    // SAFETY: PTRACE_SETOPTIONS on our stopped tracee with an options word.
    let set = unsafe {
        libc::ptrace(
            libc::PTRACE_SETOPTIONS,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            libc::PTRACE_O_TRACEEXIT as usize as *mut libc::c_void,
        )
    };
    // SAFETY: resuming our stopped tracee without a signal.
    unsafe {
        libc::ptrace(
            libc::PTRACE_CONT,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if set != 0 {
        return Err(fail(format!(
            "PTRACE_SETOPTIONS: {}",
            std::io::Error::last_os_error()
        )));
    }
    let mut memory = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waiting for our own (traced) child; `status` is a live local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == -1 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(fail(format!("waitpid: {err}")));
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            break;
        }
        let mut signal = 0;
        if libc::WIFSTOPPED(status) {
            let event = (status >> 16) & 0xff;
            if event == libc::PTRACE_EVENT_EXIT {
                let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .map_err(|e| fail(format!("reading /proc/{pid}/status: {e}")))?;
                memory = parse_status_memory(&text);
            } else if event == 0 {
                // A real signal stop: pass the signal on.
                signal = libc::WSTOPSIG(status);
            }
        }
        // SAFETY: resuming our stopped tracee; `signal` is 0 or the signal
        // it stopped with, passed as the data word.
        unsafe {
            libc::ptrace(
                libc::PTRACE_CONT,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                signal as usize as *mut libc::c_void,
            )
        };
    }
    memory.ok_or_else(|| fail("no exit stop seen (VmHWM unknown)".into()))
}

/// The first directory on `PATH` holding an executable `name`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_a_child_and_reads_its_output_and_code() {
        let inv = Invocation::new(Path::new("/bin/sh"), ["-c", "printf 'hi\\n'; exit 7"]);
        assert_eq!(inv.shown(), "/bin/sh -c printf 'hi\\n'; exit 7");
        let run = time_child(&inv).unwrap();
        assert_eq!(run.code, Some(7));
        assert_eq!(run.stdout, b"hi\n");
        let first = run.first_output.unwrap();
        assert!(first <= run.exit);
    }

    #[test]
    fn status_memory_lines() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_status_memory(status),
            Some(ExitMemory {
                peak: 2 << 20,
                resident: 1 << 20
            })
        );
        assert_eq!(parse_status_memory("VmHWM: 12 kB\n"), None);
        assert_eq!(parse_status_memory("VmHWM: x kB\nVmRSS: 1 kB\n"), None);
    }

    #[test]
    fn exit_memory_sees_a_child_touch_memory() {
        // A shell holding an 8 MB string peaks above 8 MB; `true` does not.
        let small = exit_memory(&Invocation::new(Path::new("/bin/true"), [""; 0])).unwrap();
        let big = exit_memory(&Invocation::new(
            Path::new("/bin/sh"),
            ["-c", "x=$(head -c 8000000 /dev/zero | tr '\\0' a); true"],
        ))
        .unwrap();
        assert!(small.peak > 0 && small.peak < 8 << 20, "{small:?}");
        assert!(big.peak >= 8_000_000, "{big:?}");
    }

    #[test]
    fn silent_and_missing_programs() {
        let run = time_child(&Invocation::new(Path::new("/bin/true"), [""; 0])).unwrap();
        assert_eq!((run.code, run.first_output), (Some(0), None));
        let missing = Invocation::new(Path::new("/nonexistent/prog"), [""; 0]);
        assert!(time_child(&missing).is_err());
        assert!(find_in_path("sh").is_some());
        assert_eq!(find_in_path("no-such-program-seraph"), None);
    }
}
