//! `--net-capture`: every frame in and out, as a classic pcap file
//! (microsecond timestamps, LINKTYPE_ETHERNET) that tcpdump and Wireshark open.
//!
//! Frames are handed to a writer thread through a bounded channel: a slow
//! disk drops capture records (counted), never stalls a vCPU.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::NetError;

/// Records waiting for the writer before new ones are dropped.
const QUEUE: usize = 4096;
/// Bytes of a frame kept in a record.
pub const SNAPLEN: u32 = 65535;
/// The pcap magic number (microsecond timestamps).
pub const MAGIC: u32 = 0xA1B2_C3D4;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// The 24-byte pcap global header.
pub fn file_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone and sigfigs stay 0.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    h
}

/// A record header for a frame of `len` bytes at `micros` since the epoch.
pub fn record_header(micros: u64, len: usize) -> [u8; 16] {
    let incl = (len as u32).min(SNAPLEN);
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
    h[4..8].copy_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
    h[8..12].copy_from_slice(&incl.to_le_bytes());
    h[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

/// One queued record: microseconds since the epoch and the frame.
type Record = (u64, Vec<u8>);

struct Inner {
    path: PathBuf,
    sender: Mutex<Option<SyncSender<Record>>>,
    writer: Mutex<Option<JoinHandle<std::io::Result<()>>>>,
    dropped: AtomicU64,
    written: Arc<AtomicU64>,
}

/// A pcap file being written; clones share the file (one per run, all cards).
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Creates (truncates) `path` and writes the pcap header.
    pub fn create(path: &Path) -> Result<Self, NetError> {
        let io_err = |source| NetError::Capture {
            path: path.to_path_buf(),
            source,
        };
        let mut file = BufWriter::new(File::create(path).map_err(io_err)?);
        file.write_all(&file_header()).map_err(io_err)?;
        file.flush().map_err(io_err)?;
        let (sender, receiver) = sync_channel(QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let count = written.clone();
        let writer = std::thread::Builder::new()
            .name("seraph-net-pcap".into())
            .spawn(move || write_records(file, receiver, &count))
            .map_err(io_err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                sender: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(writer)),
                dropped: AtomicU64::new(0),
                written,
            }),
        })
    }

    /// Queues one frame; drops it (counted) if the writer is behind or closed.
    pub fn record(&self, frame: &[u8]) {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let sender = self.inner.sender.lock().unwrap_or_else(|p| p.into_inner());
        let sent = match sender.as_ref() {
            Some(s) => match s.try_send((micros, frame.to_vec())) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        if !sent {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped because the writer was behind (or closed).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the file so far.
    pub fn written(&self) -> u64 {
        self.inner.written.load(Ordering::Relaxed)
    }

    /// Writes out what is queued and closes the file; later records are
    /// dropped. Safe to call more than once (from any clone).
    pub fn close(&self) -> Result<(), NetError> {
        drop(
            self.inner
                .sender
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(writer) = writer else {
            return Ok(());
        };
        let io_err = |source| NetError::Capture {
            path: self.inner.path.clone(),
            source,
        };
        match writer.join() {
            Ok(r) => r.map_err(io_err),
            Err(_) => Err(io_err(std::io::Error::other("capture writer panicked"))),
        }
    }
}

impl Drop for Inner {
    /// The last clone gone: write out what is queued and close the file.
    fn drop(&mut self) {
        drop(
            self.sender
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        if let Some(w) = self
            .writer
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = w.join();
        }
    }
}

fn write_records(
    mut file: BufWriter<File>,
    receiver: Receiver<Record>,
    written: &AtomicU64,
) -> std::io::Result<()> {
    while let Ok((micros, frame)) = receiver.recv() {
        file.write_all(&record_header(micros, frame.len()))?;
        let keep = frame.len().min(SNAPLEN as usize);
        file.write_all(frame.get(..keep).unwrap_or(&frame))?;
        written.fetch_add(1, Ordering::Relaxed);
        // Flush when the queue runs dry so the file is readable while the VM runs.
        if let Ok(next) = receiver.try_recv() {
            file.write_all(&record_header(next.0, next.1.len()))?;
            let keep = next.1.len().min(SNAPLEN as usize);
            file.write_all(next.1.get(..keep).unwrap_or(&next.1))?;
            written.fetch_add(1, Ordering::Relaxed);
        } else {
            file.flush()?;
        }
    }
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_file_holds_the_header_and_every_record() {
        let dir = std::env::temp_dir().join(format!("seraph-net-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("unit.pcap");
        let cap = Capture::create(&path).unwrap();
        let frames: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 60 + usize::from(i)]).collect();
        for f in &frames {
            cap.clone().record(f);
        }
        cap.close().unwrap();
        cap.close().unwrap();
        cap.record(&[1, 2, 3]);
        assert_eq!(cap.dropped(), 1, "after close");
        assert_eq!(cap.written(), 10);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[..24], file_header());
        let mut at = 24;
        for f in &frames {
            let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            let orig = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap()) as usize;
            assert_eq!((incl, orig), (f.len(), f.len()));
            assert_eq!(&bytes[at + 16..at + 16 + incl], f.as_slice());
            at += 16 + incl;
        }
        assert_eq!(at, bytes.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dropping_the_last_clone_writes_everything_out() {
        let dir = std::env::temp_dir().join(format!("seraph-net-pcap-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("drop.pcap");
        let cap = Capture::create(&path).unwrap();
        let other = cap.clone();
        for _ in 0..100 {
            other.record(&[0xAB; 1000]);
        }
        drop(cap);
        drop(other);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, 24 + 100 * (16 + 1000));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_a_clear_error() {
        let err = Capture::create(Path::new("/nonexistent-dir/x.pcap")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.pcap"), "{err}");
    }
}
