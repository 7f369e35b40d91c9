//! A helper thread that kicks the vCPU out of the guest when a device timer
//! is due, so that a guest running (not halted) gets its timer interrupt on
//! time instead of at its next unrelated exit.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use seraph_hypervisor::VcpuKick;

#[derive(Debug, Default)]
struct State {
    deadline: Option<Instant>,
    quit: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kicks a vCPU at the armed deadline (once per arming). The thread is
/// started the first time a deadline is armed: a guest that never programs
/// a timer costs no thread.
pub struct DeadlineKicker {
    kick: Arc<dyn VcpuKick>,
    shared: Shared,
    armed: Option<Instant>,
    thread: Option<JoinHandle<()>>,
}

impl DeadlineKicker {
    /// A kicker that kicks through `kick`; no thread runs yet.
    pub fn new(kick: Arc<dyn VcpuKick>) -> Self {
        Self {
            kick,
            shared: Arc::new((Mutex::new(State::default()), Condvar::new())),
            armed: None,
            thread: None,
        }
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let theirs = self.shared.clone();
        let kick = self.kick.clone();
        let thread = std::thread::Builder::new()
            .name("seraph-v-timer".into())
            .spawn(move || {
                let mut state = lock(&theirs);
                loop {
                    if state.quit {
                        return;
                    }
                    match state.deadline {
                        None => {
                            state = theirs.1.wait(state).unwrap_or_else(|p| p.into_inner());
                        }
                        Some(at) => {
                            let now = Instant::now();
                            if now >= at {
                                state.deadline = None;
                                drop(state);
                                kick.kick();
                                state = lock(&theirs);
                            } else {
                                state = theirs
                                    .1
                                    .wait_timeout(state, at - now)
                                    .map(|(s, _)| s)
                                    .unwrap_or_else(|p| p.into_inner().0);
                            }
                        }
                    }
                }
            })?;
        self.thread = Some(thread);
        Ok(())
    }

    /// Kicks at `deadline` (or never, for `None`); cheap when unchanged.
    /// Fails only if the thread cannot be started.
    pub fn arm(&mut self, deadline: Option<Instant>) -> std::io::Result<()> {
        if deadline == self.armed {
            return Ok(());
        }
        if deadline.is_some() && self.thread.is_none() {
            self.spawn()?;
        }
        self.armed = deadline;
        lock(&self.shared).deadline = deadline;
        self.shared.1.notify_one();
        Ok(())
    }
}

impl Drop for DeadlineKicker {
    fn drop(&mut self) {
        lock(&self.shared).quit = true;
        self.shared.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[derive(Default)]
    struct Count(AtomicU32);

    impl VcpuKick for Count {
        fn kick(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn kicks_once_per_past_deadline_and_stops_cleanly() {
        let count = Arc::new(Count::default());
        let mut kicker = DeadlineKicker::new(count.clone());
        kicker.arm(None).unwrap();
        assert!(
            kicker.thread.is_none(),
            "no thread until a deadline is armed"
        );
        kicker.arm(Some(Instant::now())).unwrap();
        // Wait (bounded) for the thread to act: this checks behaviour, not speed.
        for _ in 0..1000 {
            if count.0.load(Ordering::SeqCst) > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        kicker.arm(None).unwrap();
        drop(kicker);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
