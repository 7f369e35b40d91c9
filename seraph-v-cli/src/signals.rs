//! SIGINT, SIGTERM and SIGHUP: a handler that only records the signal and
//! writes a byte to a pipe, and a watcher thread that turns the byte into a
//! stop request for the machine, so a run stopped by Ctrl-C, `timeout`,
//! docker, systemd or a closed terminal still ends with its report line,
//! screenshot and flushed output. On non-Unix hosts the signals keep their
//! default meaning (the process ends).

use std::sync::{Arc, Mutex, PoisonError};

use seraph_vmm::{StopHandle, StopReason};

/// A signal that stopped the run, with its report text and exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopper {
    /// SIGINT (Ctrl-C): 130.
    Interrupt,
    /// SIGTERM (`kill`, `timeout`, docker, systemd): 143.
    Terminate,
    /// SIGHUP (the terminal went away): 129.
    Hangup,
}

impl Stopper {
    /// The report line's text (after `seraph-v: `).
    pub fn report(self) -> &'static str {
        match self {
            Stopper::Interrupt => "interrupted (Ctrl-C)",
            Stopper::Terminate => "terminated (SIGTERM)",
            Stopper::Hangup => "hangup (SIGHUP)",
        }
    }

    /// The process exit code: 128 + the signal number, as shells report it.
    pub fn exit_code(self) -> i32 {
        match self {
            Stopper::Interrupt => 130,
            Stopper::Terminate => 143,
            Stopper::Hangup => 129,
        }
    }
}

/// Where the watcher finds the machine to stop, once there is one.
type Slot = Arc<Mutex<Option<StopHandle>>>;

/// The installed handlers and their watcher thread.
pub struct Signals {
    slot: Slot,
}

impl Signals {
    /// Starts the watcher thread, then installs the handlers. Errors only if
    /// the thread cannot be created (the handlers are then not installed);
    /// if the pipe or a handler cannot be set up, the signals keep their
    /// default meaning.
    pub fn install() -> std::io::Result<Self> {
        let slot: Slot = Arc::new(Mutex::new(None));
        imp::install(slot.clone())?;
        Ok(Self { slot })
    }

    /// Hands the watcher the machine to stop. A signal that came before is
    /// acted on now: the next run ends at once.
    pub fn attach(&self, stop: StopHandle) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if imp::received().is_some() {
            stop.stop(StopReason::Interrupted);
        }
        *slot = Some(stop);
    }

    /// The first of the three signals received, if any.
    pub fn received(&self) -> Option<Stopper> {
        imp::received()
    }
}

/// Stops the machine in `slot`, if any (the watcher's side of `attach`).
#[cfg_attr(not(unix), allow(dead_code))]
fn stop_attached(slot: &Slot) {
    let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(stop) = slot.as_ref() {
        stop.stop(StopReason::Interrupted);
    }
}

#[cfg(not(unix))]
mod imp {
    use super::{Slot, Stopper};

    pub fn install(_slot: Slot) -> std::io::Result<()> {
        Ok(())
    }

    pub fn received() -> Option<Stopper> {
        None
    }
}

#[cfg(unix)]
mod imp {
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    use super::{Slot, Stopper, stop_attached};

    /// The signals handled.
    const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    /// The pipe's write end, for the handler.
    static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
    /// The first signal received (0: none).
    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    extern "C" fn on_signal(signal: libc::c_int) {
        let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        let fd = PIPE_WRITE.load(Ordering::SeqCst);
        if fd >= 0 {
            let byte = 1u8;
            // SAFETY: write(2) is async-signal-safe; the buffer is a live local.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    }

    pub fn received() -> Option<Stopper> {
        match RECEIVED.load(Ordering::SeqCst) {
            libc::SIGINT => Some(Stopper::Interrupt),
            libc::SIGTERM => Some(Stopper::Terminate),
            libc::SIGHUP => Some(Stopper::Hangup),
            _ => None,
        }
    }

    pub fn install(slot: Slot) -> std::io::Result<()> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the array we pass.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Ok(());
        }
        // SAFETY: each descriptor is fresh and owned only by its File.
        let (mut reader, writer) =
            unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        // The thread first: handlers whose bytes nobody reads would swallow
        // the signals. If it cannot start, both pipe ends are closed here.
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                if reader.read_exact(&mut byte).is_ok() {
                    // A second signal (say, while the screenshot is written
                    // after the run) ends the process as usual.
                    for signal in SIGNALS {
                        // SAFETY: restoring a default disposition has no
                        // preconditions.
                        unsafe { libc::signal(signal, libc::SIG_DFL) };
                    }
                    stop_attached(&slot);
                }
            })?;
        // The write end lives as long as the process: the handler may run
        // at any time.
        PIPE_WRITE.store(
            std::os::fd::IntoRawFd::into_raw_fd(writer),
            Ordering::SeqCst,
        );
        for signal in SIGNALS {
            // SAFETY: a zeroed sigaction is "no flags, empty mask"; the handler
            // only does atomic operations and write(2), all async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        Ok(())
    }
}
