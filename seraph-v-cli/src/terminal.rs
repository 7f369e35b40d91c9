//! Raw mode for a terminal on stdin while its keys go to the guest's COM1.
//!
//! Keys reach the guest one at a time, unechoed and unedited; output still
//! turns "\n" into "\r\n" (output processing stays on) and Ctrl-C still
//! stops seraph-v (signals stay on). Ctrl-A x quits, as in QEMU. The saved
//! settings come back when the guard is dropped, which every way out of
//! `run` does (errors, the end of the run, Ctrl-C, SIGTERM, SIGHUP).

use std::io::IsTerminal;

use rustix::termios::{LocalModes, OptionalActions, OutputModes, Termios, tcgetattr, tcsetattr};

/// Restores the terminal's settings when dropped.
pub struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode if stdin is a terminal; otherwise
    /// (a pipe, a file, nothing) does nothing.
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Self { saved: None };
        }
        let Ok(saved) = tcgetattr(&stdin) else {
            return Self { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        raw.output_modes |= OutputModes::OPOST;
        raw.local_modes |= LocalModes::ISIG;
        if tcsetattr(&stdin, OptionalActions::Now, &raw).is_err() {
            return Self { saved: None };
        }
        Self { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &saved);
        }
    }
}
