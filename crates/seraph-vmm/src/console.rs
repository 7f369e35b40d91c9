//! Where PRINT hypercall output goes: the host's stdout (or nowhere), plus a
//! bounded capture of the most recent bytes for reports and tests.

use std::io::Write;

use seraph_serial::CaptureRing;

/// The PRINT hypercall's output.
#[derive(Debug)]
pub struct Console {
    to_stdout: bool,
    capture: CaptureRing,
    bytes: u64,
    write_errors: u64,
}

impl Console {
    /// A console that echoes to stdout if `to_stdout`, keeping the last `capture` bytes.
    pub fn new(to_stdout: bool, capture: usize) -> Self {
        Self {
            to_stdout,
            capture: CaptureRing::new(capture),
            bytes: 0,
            write_errors: 0,
        }
    }

    /// Takes one PRINT's bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.capture.push(bytes);
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
        if self.to_stdout {
            let mut out = std::io::stdout().lock();
            // A closed or full stdout must not stop the guest: count and go on.
            if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
                self.write_errors += 1;
            }
        }
    }

    /// The most recent output, oldest first.
    pub fn captured(&self) -> Vec<u8> {
        self.capture.to_vec()
    }

    /// All bytes ever printed, kept or not.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_keeps_a_bounded_capture() {
        let mut c = Console::new(false, 8);
        c.write(b"hello\n");
        c.write(b"world\n");
        assert_eq!(c.captured(), b"o\nworld\n");
        assert_eq!(c.bytes_written(), 12);
    }
}
