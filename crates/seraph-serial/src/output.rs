//! Where the guest's serial output goes, and the buffered writer that gets
//! it there.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::capture::CaptureRing;
use crate::error::SerialError;

/// A sink is written when a newline arrives or this many bytes are waiting,
/// whichever is first (a guest that never prints a newline still gets its
/// output out, and the buffer stays bounded).
pub const SINK_BUFFER_LIMIT: usize = 4096;

/// Where the guest's serial output goes, besides the capture ring.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SerialOutput {
    /// The host's standard output.
    Stdout,
    /// A file, created or truncated when the port is made.
    File(PathBuf),
    /// Only the capture ring (what tests use).
    #[default]
    Capture,
    /// Nowhere: output is counted and dropped, and no capture is kept.
    None,
}

impl SerialOutput {
    /// Opens the sink this output names; `None` for capture-only and none.
    pub(crate) fn open(&self) -> Result<Option<Box<dyn Write + Send>>, SerialError> {
        match self {
            Self::Stdout => Ok(Some(Box::new(io::stdout()))),
            Self::File(path) => {
                let file = File::create(path).map_err(|source| SerialError::OpenOutput {
                    path: path.clone(),
                    source,
                })?;
                Ok(Some(Box::new(file)))
            }
            Self::Capture | Self::None => Ok(None),
        }
    }
}

/// The writer `vm_superio::Serial` sends each transmitted byte to.
///
/// It never fails: vm-superio writes and flushes one byte at a time, so
/// `Write::flush` here does nothing, and bytes reach the sink in whole lines
/// (or [`SINK_BUFFER_LIMIT`]-byte pieces) through [`OutputWriter::flush_sink`].
pub(crate) struct OutputWriter {
    sink: Option<Box<dyn Write + Send>>,
    pending: Vec<u8>,
    capture: CaptureRing,
    bytes_written: u64,
    sink_errors: u64,
    bytes_dropped: u64,
}

impl OutputWriter {
    pub(crate) fn new(sink: Option<Box<dyn Write + Send>>, capture_limit: usize) -> Self {
        Self {
            sink,
            pending: Vec::new(),
            capture: CaptureRing::new(capture_limit),
            bytes_written: 0,
            sink_errors: 0,
            bytes_dropped: 0,
        }
    }

    /// Takes bytes the guest transmitted.
    fn push(&mut self, data: &[u8]) {
        self.bytes_written = self
            .bytes_written
            .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        self.capture.push(data);
        if self.sink.is_none() {
            return;
        }
        self.pending.extend_from_slice(data);
        if data.contains(&b'\n') || self.pending.len() >= SINK_BUFFER_LIMIT {
            self.flush_sink();
        }
    }

    /// Writes what is waiting to the sink and flushes it. A failure drops
    /// the waiting bytes and is counted; it never reaches the guest.
    pub(crate) fn flush_sink(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        if sink
            .write_all(&self.pending)
            .and_then(|()| sink.flush())
            .is_err()
        {
            self.sink_errors = self.sink_errors.saturating_add(1);
            let lost = u64::try_from(self.pending.len()).unwrap_or(u64::MAX);
            self.bytes_dropped = self.bytes_dropped.saturating_add(lost);
        }
        self.pending.clear();
        // Keep a long unterminated burst from pinning a large buffer.
        self.pending.shrink_to(SINK_BUFFER_LIMIT);
    }

    pub(crate) fn capture(&self) -> &CaptureRing {
        &self.capture
    }

    pub(crate) fn capture_mut(&mut self) -> &mut CaptureRing {
        &mut self.capture
    }

    pub(crate) fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    pub(crate) fn sink_errors(&self) -> u64 {
        self.sink_errors
    }

    pub(crate) fn bytes_dropped(&self) -> u64 {
        self.bytes_dropped
    }

    #[cfg(test)]
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

impl Write for OutputWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    /// Does nothing: vm-superio calls this after every byte; the sink is
    /// flushed at newlines and by [`OutputWriter::flush_sink`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for OutputWriter {
    fn drop(&mut self) {
        self.flush_sink();
    }
}
