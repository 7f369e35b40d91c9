//! Bytes from the host (stdin, or any reader) into COM1's receive FIFO.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use seraph_serial::Serial;

/// Ctrl-A: the escape byte of the QEMU-style key commands.
pub const ESCAPE: u8 = 0x01;

/// How stdin is read into the serial port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StdinOptions {
    /// Interpret Ctrl-A x as "quit" (and Ctrl-A Ctrl-A as one Ctrl-A), as
    /// QEMU does on a terminal.
    pub escapes: bool,
    /// The source is a person at a terminal: while it is open, the
    /// `--idle-hlts` heuristic does not end the run (a pipe or a file is
    /// not interactive: it still counts as able to wake the guest until EOF).
    pub interactive: bool,
}

/// What an input thread reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEvent {
    /// The source ended (EOF or a read error).
    Closed,
    /// The user typed the quit sequence (Ctrl-A x).
    Quit,
}

/// The state of an input source, shared with the VMM.
#[derive(Debug, Default)]
pub struct InputState {
    open: AtomicBool,
    bytes: AtomicU64,
    quit: AtomicBool,
}

/// A handle on a running input thread.
#[derive(Debug, Clone)]
pub struct InputHandle {
    state: Arc<InputState>,
}

impl InputHandle {
    /// True until the source reached its end (EOF or a read error).
    pub fn is_open(&self) -> bool {
        self.state.open.load(Ordering::Acquire)
    }

    /// Bytes delivered into the device so far.
    pub fn bytes(&self) -> u64 {
        self.state.bytes.load(Ordering::Relaxed)
    }

    /// True if the user typed the quit sequence (Ctrl-A x).
    pub fn quit_requested(&self) -> bool {
        self.state.quit.load(Ordering::Acquire)
    }
}

fn lock(m: &Mutex<Serial>) -> MutexGuard<'_, Serial> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a thread that reads `source` into `serial`'s receive FIFO,
/// waiting while the FIFO is full (so a fast source is paced by the guest,
/// and memory stays bounded). `on_event` is called after the source ends
/// or asks to quit (the VMM wakes the vCPU there).
pub fn spawn_serial_input(
    mut source: Box<dyn Read + Send>,
    serial: Arc<Mutex<Serial>>,
    options: StdinOptions,
    on_event: Arc<dyn Fn(InputEvent) + Send + Sync>,
) -> std::io::Result<InputHandle> {
    let state = Arc::new(InputState {
        open: AtomicBool::new(true),
        ..InputState::default()
    });
    let theirs = state.clone();
    std::thread::Builder::new()
        .name("seraph-v-stdin".into())
        .spawn(move || {
            let mut buf = [0u8; 256];
            let mut escape = false;
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut bytes = Vec::with_capacity(n);
                let mut quit = false;
                for &b in buf.get(..n).unwrap_or_default() {
                    if !options.escapes {
                        bytes.push(b);
                    } else if escape {
                        escape = false;
                        match b {
                            b'x' | b'X' => {
                                quit = true;
                                break;
                            }
                            ESCAPE => bytes.push(ESCAPE),
                            _ => {}
                        }
                    } else if b == ESCAPE {
                        escape = true;
                    } else {
                        bytes.push(b);
                    }
                }
                let mut rest = bytes.as_slice();
                while !rest.is_empty() {
                    let taken = lock(&serial).enqueue_input(rest);
                    theirs.bytes.fetch_add(taken as u64, Ordering::Relaxed);
                    rest = rest.get(taken..).unwrap_or_default();
                    if !rest.is_empty() {
                        // The 64-byte FIFO is full: the guest has not read yet.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                if quit {
                    theirs.quit.store(true, Ordering::Release);
                    on_event(InputEvent::Quit);
                    return;
                }
            }
            theirs.open.store(false, Ordering::Release);
            on_event(InputEvent::Closed);
        })?;
    Ok(InputHandle { state })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_closed(h: &InputHandle) {
        let until = Instant::now() + Duration::from_secs(10);
        while h.is_open() && !h.quit_requested() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn drain(serial: &Arc<Mutex<Serial>>) -> Vec<u8> {
        use seraph_bus::BusDevice;
        let mut out = Vec::new();
        let mut s = lock(serial);
        loop {
            let mut lsr = [0u8];
            s.read(5, &mut lsr);
            if lsr[0] & 1 == 0 {
                return out;
            }
            let mut b = [0u8];
            s.read(0, &mut b);
            out.push(b[0]);
        }
    }

    #[test]
    fn bytes_reach_the_fifo_and_eof_closes_the_source() {
        let serial = Arc::new(Mutex::new(Serial::with_writer(
            Box::new(std::io::sink()),
            0,
        )));
        let h = spawn_serial_input(
            Box::new(&b"hello"[..]),
            serial.clone(),
            StdinOptions::default(),
            Arc::new(|_| {}),
        )
        .unwrap();
        wait_closed(&h);
        assert!(!h.is_open());
        assert_eq!(h.bytes(), 5);
        assert_eq!(drain(&serial), b"hello");
    }

    #[test]
    fn ctrl_a_x_quits_and_ctrl_a_ctrl_a_is_literal() {
        let serial = Arc::new(Mutex::new(Serial::with_writer(
            Box::new(std::io::sink()),
            0,
        )));
        let h = spawn_serial_input(
            Box::new(&b"a\x01\x01b\x01xc"[..]),
            serial.clone(),
            StdinOptions {
                escapes: true,
                interactive: true,
            },
            Arc::new(|_| {}),
        )
        .unwrap();
        wait_closed(&h);
        assert!(h.quit_requested());
        assert_eq!(drain(&serial), b"a\x01b");
    }

    #[test]
    fn a_source_larger_than_the_fifo_waits_for_the_guest() {
        let serial = Arc::new(Mutex::new(Serial::with_writer(
            Box::new(std::io::sink()),
            0,
        )));
        let data = vec![b'z'; 1000];
        let handle = spawn_serial_input(
            Box::new(std::io::Cursor::new(data)),
            serial.clone(),
            StdinOptions::default(),
            Arc::new(|_| {}),
        )
        .unwrap();
        let mut got = Vec::new();
        let until = Instant::now() + Duration::from_secs(10);
        while got.len() < 1000 && Instant::now() < until {
            got.extend(drain(&serial));
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(got.len(), 1000);
        assert!(got.iter().all(|&b| b == b'z'));
        wait_closed(&handle);
        assert_eq!(handle.bytes(), 1000);
    }
}
