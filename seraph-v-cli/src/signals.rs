//! Ctrl-C: a SIGINT handler that only writes a byte to a pipe, and a thread
//! that turns that byte into a stop request for the running machine. On
//! non-Unix hosts Ctrl-C keeps its default meaning (the process ends).

#[cfg(not(unix))]
/// Ctrl-C is not intercepted here: it ends the process as usual.
pub fn on_ctrl_c(_stop: seraph_vmm::StopHandle) -> Option<std::thread::JoinHandle<()>> {
    None
}

#[cfg(unix)]
pub use unix::on_ctrl_c;

#[cfg(unix)]
mod unix {

    use std::fs::File;
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    use seraph_vmm::{StopHandle, StopReason};

    /// The pipe's write end, for the signal handler.
    static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_sigint(_: libc::c_int) {
        let fd = PIPE_WRITE.load(Ordering::SeqCst);
        if fd >= 0 {
            let byte = 1u8;
            // SAFETY: write(2) is async-signal-safe; the buffer is a live local.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    }

    /// Installs the handler; the returned thread lives until the process exits.
    /// Returns `None` (Ctrl-C then kills the process as usual) if the pipe or
    /// handler cannot be set up.
    pub fn on_ctrl_c(stop: StopHandle) -> Option<std::thread::JoinHandle<()>> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the array we pass.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return None;
        }
        // SAFETY: fds[0] is a fresh descriptor that only this File owns.
        let mut reader = unsafe { File::from_raw_fd(fds[0]) };
        PIPE_WRITE.store(fds[1], Ordering::SeqCst);
        // SAFETY: a zeroed sigaction is "no flags, empty mask"; the handler only
        // does an atomic load and write(2), both async-signal-safe.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigint as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) == 0
        };
        if !installed {
            return None;
        }
        std::thread::Builder::new()
            .name("ctrl-c".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                if reader.read_exact(&mut byte).is_ok() {
                    // A second Ctrl-C (say, while the screenshot is being
                    // written after the run) ends the process as usual.
                    // SAFETY: restoring the default disposition of SIGINT
                    // has no preconditions.
                    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
                    stop.stop(StopReason::Interrupted);
                }
            })
            .ok()
    }
}
