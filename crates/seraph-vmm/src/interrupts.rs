//! The interrupt controller layer: where device lines end up.
//!
//! Devices get [`seraph_irq::IrqLine`]s into an [`InterruptRouter`] when
//! they are built and push level changes and pulses from whatever thread
//! they run on (the vCPU during an MMIO write, the I/O thread when a byte
//! or a packet arrives). The router records them in atomics, marks itself
//! dirty and wakes the vCPU ([`Wake`]); the vCPU loop moves the changes
//! into the 8259 pair (lines 0-15) and MSI vectors into the local APIC at
//! its next poll. Lines 16 and up are reserved for an I/O APIC.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use seraph_hypervisor::VcpuKick;
use seraph_irq::{LineSink, MsiMessage, MsiSink};

thread_local! {
    /// True on the thread that runs the vCPU loop: changes made there need
    /// no kick (the vCPU is not in the guest while its thread runs VMM code).
    static ON_VCPU_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as the vCPU thread (for as long as the guard lives).
pub(crate) struct VcpuThreadGuard;

impl VcpuThreadGuard {
    pub(crate) fn enter() -> Self {
        ON_VCPU_THREAD.with(|c| c.set(true));
        Self
    }
}

impl Drop for VcpuThreadGuard {
    fn drop(&mut self) {
        ON_VCPU_THREAD.with(|c| c.set(false));
    }
}

/// Wakes a halted vCPU at once, and kicks a running one out of the guest,
/// when something outside the vCPU thread raises an interrupt or asks the
/// run to stop.
#[derive(Default)]
pub struct Wake {
    pending: Mutex<bool>,
    cv: Condvar,
    kick: Mutex<Option<Arc<dyn VcpuKick>>>,
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wake").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wake {
    /// Connects the vCPU to kick when woken from another thread.
    pub fn set_kick(&self, kick: Arc<dyn VcpuKick>) {
        *lock(&self.kick) = Some(kick);
    }

    /// Wakes the vCPU: ends a [`Wake::wait`] now or makes the next one
    /// return at once; from another thread, also kicks a running vCPU.
    pub fn wake(&self) {
        *lock(&self.pending) = true;
        self.cv.notify_all();
        if !ON_VCPU_THREAD.with(Cell::get) {
            if let Some(kick) = lock(&self.kick).as_ref() {
                kick.kick();
            }
        }
    }

    /// Sleeps until woken or until `deadline` (forever if `None`); returns
    /// true if woken. Consumes the wake-up.
    pub fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut pending = lock(&self.pending);
        loop {
            if *pending {
                *pending = false;
                return true;
            }
            match deadline {
                None => pending = self.cv.wait(pending).unwrap_or_else(|p| p.into_inner()),
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        return false;
                    }
                    pending = self
                        .cv
                        .wait_timeout(pending, at - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
            }
        }
    }

    /// Forgets a wake-up that is no longer needed (the vCPU looked anyway).
    pub fn clear(&self) {
        *lock(&self.pending) = false;
    }
}

/// Number of controller inputs the router tracks (0-15 PIC, 16-63 for an I/O APIC).
pub const LINES: u32 = 64;

/// Line changes and MSI vectors collected since the last [`InterruptRouter::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoutedChanges {
    /// The level of every line now (bit N = line N).
    pub levels: u64,
    /// Lines pulsed since the last take.
    pub pulses: u64,
    /// Lines that went from low to high since the last take (a line that
    /// fell and rose again in between is high in both `levels` snapshots
    /// but still made a new edge).
    pub rose: u64,
    /// MSI vectors signalled since the last take (bit N of word N / 64).
    pub msi_vectors: [u64; 4],
}

/// Receives device lines and MSI messages, for the vCPU loop to deliver.
#[derive(Debug, Default)]
pub struct InterruptRouter {
    levels: AtomicU64,
    pulses: AtomicU64,
    rose: AtomicU64,
    msi: [AtomicU64; 4],
    dirty: AtomicBool,
    dropped_msi: AtomicU64,
    ignored_lines: AtomicU64,
    wake: Arc<Wake>,
}

impl InterruptRouter {
    /// A router that wakes the vCPU through `wake`.
    pub fn new(wake: Arc<Wake>) -> Self {
        Self {
            wake,
            ..Self::default()
        }
    }

    /// True if a line changed or a message arrived since the last take
    /// (one atomic load: the run loop's fast path).
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Takes what changed since the last take.
    pub fn take(&self) -> RoutedChanges {
        self.dirty.store(false, Ordering::Release);
        RoutedChanges {
            levels: self.levels.load(Ordering::Acquire),
            pulses: self.pulses.swap(0, Ordering::AcqRel),
            rose: self.rose.swap(0, Ordering::AcqRel),
            msi_vectors: [0, 1, 2, 3].map(|i| self.msi[i].swap(0, Ordering::AcqRel)),
        }
    }

    /// The level of `line` now.
    pub fn level(&self, line: u32) -> bool {
        line < LINES && self.levels.load(Ordering::Acquire) & (1 << line) != 0
    }

    /// MSI messages dropped (outside the x86 window, or a delivery mode
    /// this machine does not carry out).
    pub fn dropped_msi(&self) -> u64 {
        self.dropped_msi.load(Ordering::Relaxed)
    }

    /// Line changes on inputs the router does not have (>= [`LINES`]).
    pub fn ignored_lines(&self) -> u64 {
        self.ignored_lines.load(Ordering::Relaxed)
    }

    fn changed(&self) {
        self.dirty.store(true, Ordering::Release);
        self.wake.wake();
    }
}

impl LineSink for InterruptRouter {
    fn set_level(&self, line: u32, high: bool) {
        if line >= LINES {
            self.ignored_lines.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let bit = 1u64 << line;
        // A rise is noted in `rose` before the level is published, so a
        // `take` between the two sees it as a level change or not at all,
        // never as a second edge. (Each line has one writer: its device,
        // or the `SharedLine` mutex.)
        if high && self.levels.load(Ordering::Acquire) & bit == 0 {
            self.rose.fetch_or(bit, Ordering::AcqRel);
        }
        let before = if high {
            self.levels.fetch_or(bit, Ordering::AcqRel)
        } else {
            self.levels.fetch_and(!bit, Ordering::AcqRel)
        };
        if (before & bit != 0) != high {
            self.changed();
        }
    }

    fn pulse(&self, line: u32) {
        if line >= LINES {
            self.ignored_lines.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.pulses.fetch_or(1 << line, Ordering::AcqRel);
        self.changed();
    }
}

impl MsiSink for InterruptRouter {
    fn signal(&self, message: MsiMessage) {
        // Fixed (0) and lowest-priority (1) delivery to the one local APIC;
        // vectors below 16 are illegal and dropped like other modes.
        let vector = message.vector();
        if !message.is_x86_window() || message.delivery_mode() > 1 || vector < 16 {
            self.dropped_msi.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.msi[usize::from(vector / 64)].fetch_or(1 << (vector % 64), Ordering::AcqRel);
        self.changed();
    }
}

/// Several devices on one controller input, wired-OR as PCI INTx lines
/// are: the input is high while any device holds it high.
pub struct SharedLine {
    router: Arc<InterruptRouter>,
    line: u32,
    /// One bit per device that holds the line high; the lock also orders
    /// the router updates of concurrent changes.
    holders: Mutex<u64>,
    next_source: AtomicU64,
}

impl std::fmt::Debug for SharedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLine")
            .field("line", &self.line)
            .finish()
    }
}

/// One device's connection to a [`SharedLine`].
struct SharedLineSource {
    shared: Arc<SharedLine>,
    bit: u64,
}

impl SharedLine {
    /// A wired-OR input `line` of `router`.
    pub fn new(router: Arc<InterruptRouter>, line: u32) -> Arc<Self> {
        Arc::new(Self {
            router,
            line,
            holders: Mutex::new(0),
            next_source: AtomicU64::new(0),
        })
    }

    /// A new device's output on this line (up to 64 devices share one
    /// input; further ones share the last bit).
    pub fn connect(self: &Arc<Self>) -> seraph_irq::IrqLine {
        let n = self.next_source.fetch_add(1, Ordering::Relaxed).min(63);
        seraph_irq::IrqLine::new(
            Arc::new(SharedLineSource {
                shared: self.clone(),
                bit: 1 << n,
            }),
            self.line,
        )
    }
}

impl LineSink for SharedLineSource {
    fn set_level(&self, _line: u32, high: bool) {
        let mut holders = lock(&self.shared.holders);
        if high {
            *holders |= self.bit;
        } else {
            *holders &= !self.bit;
        }
        self.shared
            .router
            .set_level(self.shared.line, *holders != 0);
    }

    fn pulse(&self, _line: u32) {
        self.shared.router.pulse(self.shared.line);
    }
}

/// The vectors set in a [`RoutedChanges::msi_vectors`] bitmap, lowest first.
pub fn msi_vectors(bits: &[u64; 4]) -> impl Iterator<Item = u8> + '_ {
    (0..=255u8).filter(move |v| bits[usize::from(v / 64)] & (1 << (v % 64)) != 0)
}

/// The lines set in `bits`, lowest first.
pub fn lines(bits: u64) -> impl Iterator<Item = u32> {
    (0..LINES).filter(move |l| bits & (1 << l) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_irq::IrqLine;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[derive(Default)]
    struct CountKick(AtomicUsize);
    impl VcpuKick for CountKick {
        fn kick(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn lines_mark_the_router_dirty_and_are_taken_once() {
        let router = Arc::new(InterruptRouter::default());
        let line = IrqLine::new(router.clone(), 4);
        assert!(!router.is_dirty());
        line.raise();
        assert!(router.is_dirty());
        line.raise(); // no change, still one edge
        IrqLine::new(router.clone(), 0).pulse();
        let c = router.take();
        assert_eq!(c.levels, 1 << 4);
        assert_eq!(c.pulses, 1);
        assert!(!router.is_dirty());
        assert_eq!(router.take().pulses, 0);
        IrqLine::new(router.clone(), 99).pulse();
        assert_eq!(router.ignored_lines(), 1);
        assert!(!router.is_dirty());
    }

    #[test]
    fn a_fall_and_rise_between_takes_is_reported_as_a_new_edge() {
        let router = Arc::new(InterruptRouter::default());
        let line = IrqLine::new(router.clone(), 8);
        line.raise();
        let first = router.take();
        assert_eq!((first.levels, first.rose), (1 << 8, 1 << 8));
        line.lower();
        line.raise();
        let second = router.take();
        assert_eq!(second.levels, 1 << 8, "high at both takes");
        assert_eq!(second.rose, 1 << 8, "but it rose again in between");
        assert_eq!(router.take().rose, 0);
    }

    #[test]
    fn a_shared_line_stays_high_while_any_device_holds_it() {
        let router = Arc::new(InterruptRouter::default());
        let shared = SharedLine::new(router.clone(), 11);
        let (a, b) = (shared.connect(), shared.connect());
        a.raise();
        b.raise();
        a.lower();
        assert!(router.level(11), "b still holds the line");
        b.lower();
        assert!(!router.level(11));
        b.raise();
        assert!(router.level(11));
    }

    #[test]
    fn msi_messages_become_vectors() {
        let router = InterruptRouter::default();
        router.signal(MsiMessage {
            address: 0xFEE0_0000,
            data: 0x41,
        });
        router.signal(MsiMessage {
            address: 0xFEE0_0000,
            data: 0x400 | 0x42, // NMI delivery: dropped
        });
        router.signal(MsiMessage {
            address: 0x1000,
            data: 0x43,
        });
        let c = router.take();
        assert_eq!(msi_vectors(&c.msi_vectors).collect::<Vec<_>>(), vec![0x41]);
        assert_eq!(router.dropped_msi(), 2);
    }

    #[test]
    fn wake_from_another_thread_ends_a_wait_and_kicks() {
        let wake = Arc::new(Wake::default());
        let kick = Arc::new(CountKick::default());
        wake.set_kick(kick.clone());
        let theirs = wake.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            theirs.wake();
        });
        assert!(wake.wait(None));
        t.join().unwrap();
        assert_eq!(kick.0.load(Ordering::SeqCst), 1);
        // On the vCPU thread a wake-up needs no kick.
        let _guard = VcpuThreadGuard::enter();
        wake.wake();
        assert_eq!(kick.0.load(Ordering::SeqCst), 1);
        assert!(wake.wait(Some(Instant::now())));
        assert!(!wake.wait(Some(Instant::now() + Duration::from_millis(5))));
    }
}
