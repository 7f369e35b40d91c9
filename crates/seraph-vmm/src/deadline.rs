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

/// Kicks a vCPU at the armed deadline (once per arming).
pub struct DeadlineKicker {
    shared: Shared,
    armed: Option<Instant>,
    thread: Option<JoinHandle<()>>,
}

impl DeadlineKicker {
    /// Starts the thread; it kicks through `kick`.
    pub fn start(kick: Arc<dyn VcpuKick>) -> std::io::Result<Self> {
        let shared: Shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let theirs = shared.clone();
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
        Ok(Self {
            shared,
            armed: None,
            thread: Some(thread),
        })
    }

    /// Kicks at `deadline` (or never, for `None`); cheap when unchanged.
    pub fn arm(&mut self, deadline: Option<Instant>) {
        if deadline == self.armed {
            return;
        }
        self.armed = deadline;
        lock(&self.shared).deadline = deadline;
        self.shared.1.notify_one();
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
        let mut kicker = DeadlineKicker::start(count.clone()).unwrap();
        kicker.arm(Some(Instant::now()));
        // Wait (bounded) for the thread to act: this checks behaviour, not speed.
        for _ in 0..1000 {
            if count.0.load(Ordering::SeqCst) > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        kicker.arm(None);
        drop(kicker);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
