//! Where PRINT hypercall output goes: the host's stdout (or nowhere), plus a
//! bounded capture of the most recent bytes for reports and tests.

use std::io::Write;

use seraph_serial::CaptureRing;

/// The PRINT hypercall's output.
pub struct Console {
    out: Option<Box<dyn Write + Send>>,
    capture: CaptureRing,
    bytes: u64,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console that echoes to `out` (if any), keeping the last `capture` bytes.
    pub fn new(out: Option<Box<dyn Write + Send>>, capture: usize) -> Self {
        Self {
            out,
            capture: CaptureRing::new(capture),
            bytes: 0,
        }
    }

    /// Takes one PRINT's bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.capture.push(bytes);
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
        if let Some(out) = self.out.as_mut() {
            // The sink is the output queue, which never blocks and counts
            // what it cannot write; an error here is not the guest's.
            let _ = out.write_all(bytes).and_then(|()| out.flush());
        }
    }

    /// The most recent output, oldest first.
    pub fn captured(&self) -> Vec<u8> {
        self.capture.to_vec()
    }

    /// All bytes ever printed, kept or not.
    #[cfg(test)]
    pub(crate) fn bytes_written(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_keeps_a_bounded_capture() {
        let mut c = Console::new(None, 8);
        c.write(b"hello\n");
        c.write(b"world\n");
        assert_eq!(c.captured(), b"o\nworld\n");
        assert_eq!(c.bytes_written(), 12);
    }
}
