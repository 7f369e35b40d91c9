//! Kicking a vCPU out of `KVM_RUN`, and raw ioctls kvm-ioctls lacks.
//!
//! A kick sets `immediate_exit` in the vCPU's kvm_run page and sends the
//! vCPU thread a real-time signal whose handler does nothing. If the vCPU is
//! inside `KVM_RUN`, the signal makes it return `EINTR`; if it is not,
//! `immediate_exit` makes the next `KVM_RUN` return at once. Either way the
//! VMM sees [`crate::VmExit::Interrupted`] and no kick is lost.
//!
//! The signal goes by kernel thread id with `tgkill`, not by `pthread_t`:
//! if the thread that last ran the vCPU has exited, `tgkill` fails with
//! ESRCH instead of touching a freed thread (`pthread_kill` on a dead
//! thread is undefined). Should the id be reused by another thread of the
//! process, that thread gets a do-nothing signal whose handler is installed
//! with SA_RESTART, so its system calls simply continue. KVM_RUN is not
//! restarted: it returns EINTR for any pending signal.

use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use kvm_bindings::kvm_run;
use kvm_ioctls::VcpuFd;

use crate::{HypervisorError, Result, VcpuKick};

/// The signal used for kicks.
fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN()
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs the do-nothing handler for the kick signal (once per process);
/// a failure is reported with the errno sigaction gave, every time asked.
pub(super) fn install_signal_handler() -> Result<()> {
    static INSTALL: Once = Once::new();
    /// The errno of a failed install, 0 if it worked.
    static FAILED: AtomicI32 = AtomicI32::new(0);
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
        // the handler is an `extern "C"` function that touches nothing, so it
        // is async-signal-safe. SA_RESTART keeps other threads' system calls
        // going; KVM_RUN returns EINTR for a pending signal regardless.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore_signal as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(kick_signal(), &action, std::ptr::null_mut()) != 0 {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
                FAILED.store(errno, Ordering::SeqCst);
            }
        }
    });
    match FAILED.load(Ordering::SeqCst) {
        0 => Ok(()),
        errno => Err(HypervisorError::Call {
            call: "sigaction",
            source: std::io::Error::from_raw_os_error(errno),
        }),
    }
}

/// The kick handle of one KVM vCPU.
#[derive(Debug)]
pub struct KvmKick {
    /// The vCPU's kvm_run page; `None` once the vCPU is gone.
    run: Mutex<Option<NonNull<kvm_run>>>,
    /// Kernel thread id of the thread that last ran the vCPU, 0 if none yet.
    thread: AtomicU64,
    /// A copy of `run` for lock-free reads on the vCPU's own thread.
    run_unlocked: NonNull<kvm_run>,
}

// SAFETY: the pointers name the vCPU's kvm_run mapping, which lives exactly
// as long as the owning KvmVcpu. Other threads touch it only in `kick`,
// under the `run` mutex, after checking it is still `Some` (KvmVcpu's drop
// sets it to `None` under the same mutex before the mapping goes), and only
// with a volatile byte store to `immediate_exit`, which KVM documents as
// the way for other threads to stop KVM_RUN. `run_unlocked` is read only by
// the owning KvmVcpu on its own thread (`ready_for_injection`).
unsafe impl Send for KvmKick {}
// SAFETY: as for Send: every cross-thread access goes through the mutex.
unsafe impl Sync for KvmKick {}

impl KvmKick {
    pub(super) fn new(run: &mut kvm_run) -> Arc<Self> {
        let page = NonNull::from(run);
        Arc::new(Self {
            run: Mutex::new(Some(page)),
            thread: AtomicU64::new(0),
            run_unlocked: page,
        })
    }

    /// Records the calling thread as the one running the vCPU.
    pub(super) fn note_running_thread(&self) {
        let me = current_tid();
        if self.thread.load(Ordering::Relaxed) != me {
            self.thread.store(me, Ordering::SeqCst);
        }
    }

    /// Forgets the kvm_run page (the vCPU is being destroyed).
    pub(super) fn detach(&self) {
        *self.run.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// kvm_run's view of whether the guest can take an interrupt now.
    pub(super) fn ready_for_injection(&self) -> bool {
        let run = self.run_unlocked.as_ptr();
        // SAFETY: only the owning KvmVcpu calls this, while it (and so its
        // kvm_run mapping) is alive; the fields are plain bytes.
        unsafe {
            std::ptr::read_volatile(&(*run).ready_for_interrupt_injection) != 0
                && std::ptr::read_volatile(&(*run).if_flag) != 0
        }
    }
}

impl VcpuKick for KvmKick {
    fn kick(&self) {
        let run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        let Some(page) = *run else {
            return;
        };
        let page = page.as_ptr();
        // SAFETY: `run` is `Some`, so the vCPU has not been dropped, and it
        // cannot be while we hold the lock (`detach` takes it first). A
        // volatile byte store to immediate_exit is what KVM expects of other
        // threads.
        unsafe { std::ptr::write_volatile(&mut (*page).immediate_exit, 1) };
        let thread = self.thread.load(Ordering::SeqCst);
        let tid = libc::pid_t::try_from(thread).unwrap_or(0);
        if tid != 0 {
            // SAFETY: tgkill takes plain integers; a stale thread id makes it
            // fail with ESRCH (ignored: immediate_exit already carries the
            // kick). The handler for the signal is installed before any VM
            // exists.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, kick_signal()) };
        }
    }
}

thread_local! {
    /// This thread's kernel thread id, asked once per thread.
    static TID: u64 = {
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        u64::try_from(tid).unwrap_or(0)
    };
}

/// The calling thread's kernel thread id (cached).
fn current_tid() -> u64 {
    TID.with(|tid| *tid)
}

/// `KVM_INTERRUPT`: `_IOW(KVMIO, 0x86, struct kvm_interrupt)`.
const KVM_INTERRUPT: libc::c_ulong = 0x4004_ae86;

/// Queues an external interrupt with `KVM_INTERRUPT` (userspace irqchip only).
pub(super) fn inject_interrupt(fd: &VcpuFd, vector: u8) -> Result<()> {
    let irq = kvm_bindings::kvm_interrupt {
        irq: u32::from(vector),
    };
    // SAFETY: a KVM_INTERRUPT ioctl on a vCPU fd with a pointer to a live,
    // correctly sized kvm_interrupt; the kernel only reads it.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), KVM_INTERRUPT, &irq) };
    if ret != 0 {
        return Err(HypervisorError::Call {
            call: "KVM_INTERRUPT",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}
