//! Packet backends for Seraph-V NICs: UDP datagram links, TAP devices, pcap capture.
//!
//! [`attach`] connects an [`Aether`] card to the backend a [`NetSpec`]
//! names: a reader thread takes frames from the backend and offers them to
//! the card ([`Aether::receive`], under the card's lock); the card's
//! transmitted frames go straight to the backend through a [`FrameSink`]
//! whose sends never block for long (a backed-up backend drops and counts).
//! With a [`Capture`], every frame in and out is also written to a pcap file.
//!
//! ```no_run
//! # use std::sync::{Arc, Mutex};
//! # fn card() -> Arc<Mutex<seraph_aether::Aether>> { unimplemented!() }
//! let spec = seraph_net::NetSpec::parse("dgram,local=127.0.0.1:5000,remote=127.0.0.1:5001")?;
//! let capture = seraph_net::Capture::create("run.pcap".as_ref())?;
//! let mut handle = seraph_net::attach(&spec, Some(capture.clone()), card())?;
//! // ... run the VM ...
//! handle.shutdown();
//! capture.close()?;
//! # Ok::<(), seraph_net::NetError>(())
//! ```

pub mod dgram;
pub mod pcap;
pub mod spec;
pub mod tap;
pub mod writer;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use seraph_aether::{Aether, AetherConfig, FrameSink, NullSink, RxOutcome, SinkError};

pub use pcap::Capture;
pub use spec::{BackendSpec, DEFAULT_MAC, NetSpec, format_mac, parse_mac};

/// Largest datagram or TAP frame read (bigger ones arrive truncated and are dropped by the card).
const READ_BUFFER: usize = 65536;

/// Errors setting up a backend or a capture file.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The `--net` text is malformed.
    #[error("--net {spec:?}: {why}")]
    Spec {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// The UDP socket cannot be bound (address in use, not local).
    #[error("cannot bind UDP {local}: {source}")]
    Bind {
        /// The local address asked for.
        local: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// The process may not create or attach the TAP interface.
    #[error(
        "cannot open TAP device {ifname:?}: permission denied; run with CAP_NET_ADMIN, or create it \
         first for this user: ip tuntap add {ifname} mode tap user $(id -un) ({source})"
    )]
    TapPermission {
        /// The interface name.
        ifname: String,
        /// The system's error.
        source: io::Error,
    },
    /// The host has no TUN/TAP driver.
    #[error(
        "cannot open TAP device {ifname:?}: /dev/net/tun is not available (modprobe tun) ({source})"
    )]
    TapUnavailable {
        /// The interface name.
        ifname: String,
        /// The system's error.
        source: io::Error,
    },
    /// Any other TAP failure (e.g. the name is a non-TAP interface, or busy).
    #[error("cannot open TAP device {ifname:?}: {source}")]
    Tap {
        /// The interface name.
        ifname: String,
        /// The system's error.
        source: io::Error,
    },
    /// The capture file cannot be created or written.
    #[error("capture file {}: {source}", path.display())]
    Capture {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The reader thread cannot be started.
    #[error("cannot start the packet reader thread: {0}")]
    Thread(io::Error),
}

impl NetError {
    /// The process exit code the CLI should use (sysexits-style): 2 bad
    /// command line, 77 no permission for the TAP device, 69 no TUN/TAP
    /// driver, 71 a socket or TAP system error, 73 the capture file cannot
    /// be written, 70 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            NetError::Spec { .. } => 2,
            NetError::TapPermission { .. } => 77,
            NetError::TapUnavailable { .. } => 69,
            NetError::Bind { .. } | NetError::Tap { .. } => 71,
            NetError::Capture { .. } => 73,
            NetError::Thread(_) => 70,
        }
    }
}

/// A packet backend: a reader (called in a loop by one thread) and a writer.
pub trait PacketBackend: Send + Sync + 'static {
    /// Waits a short while (at most ~50 ms) for one frame; `Ok(None)` if none came.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>>;
    /// Sends one frame without blocking: a backend that cannot take it now
    /// says [`io::ErrorKind::WouldBlock`].
    fn send(&self, frame: &[u8]) -> io::Result<()>;
    /// One line naming the backend, for logs.
    fn describe(&self) -> String;
}

/// Counters of one attached backend.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Frames read from the backend.
    pub rx_frames: AtomicU64,
    /// Frames the card dropped (receiver off, filtered, queue full, ...).
    pub rx_dropped: AtomicU64,
    /// Datagrams from an address other than the peer, dropped.
    pub rx_foreign: AtomicU64,
    /// Read errors.
    pub rx_errors: AtomicU64,
    /// Frames handed to the backend.
    pub tx_frames: AtomicU64,
    /// Frames the backend could not take (backed up or failed).
    pub tx_dropped: AtomicU64,
    /// Frames the backend took (counted in `tx_frames`) but its writer
    /// thread then failed to send (the peer was backed up for 2 ms, or gone).
    pub tx_late_drops: AtomicU64,
}

/// Something to call after a frame reached the card (the VMM's I/O
/// thread may need to re-read the card's next deadline).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// The card's build settings for `spec` (its MAC).
pub fn card_config(spec: &NetSpec) -> AetherConfig {
    AetherConfig {
        mac: spec.mac,
        ..AetherConfig::default()
    }
}

/// Opens the backend `spec` names.
pub fn open_backend(
    spec: &NetSpec,
    stats: Arc<NetStats>,
) -> Result<Arc<dyn PacketBackend>, NetError> {
    Ok(match &spec.backend {
        BackendSpec::Dgram { local, remote } => {
            Arc::new(dgram::DgramBackend::new(*local, *remote, stats)?)
        }
        BackendSpec::Tap { ifname } => Arc::new(tap::TapBackend::new(ifname)?),
    })
}

/// Connects `device` to the backend `spec` names (see the crate docs).
pub fn attach(
    spec: &NetSpec,
    capture: Option<Capture>,
    device: Arc<Mutex<Aether>>,
) -> Result<NetHandle, NetError> {
    let stats = Arc::new(NetStats::default());
    let backend = open_backend(spec, stats.clone())?;
    attach_backend(backend, stats, capture, device, None)
}

/// [`attach`] with a callback run after each frame offered to the card.
pub fn attach_with_notify(
    spec: &NetSpec,
    capture: Option<Capture>,
    device: Arc<Mutex<Aether>>,
    notify: Notify,
) -> Result<NetHandle, NetError> {
    let stats = Arc::new(NetStats::default());
    let backend = open_backend(spec, stats.clone())?;
    attach_backend(backend, stats, capture, device, Some(notify))
}

/// Connects `device` to an already open `backend`.
pub fn attach_backend(
    backend: Arc<dyn PacketBackend>,
    stats: Arc<NetStats>,
    capture: Option<Capture>,
    device: Arc<Mutex<Aether>>,
    notify: Option<Notify>,
) -> Result<NetHandle, NetError> {
    let sink = BackendSink {
        backend: backend.clone(),
        capture: capture.clone(),
        stats: stats.clone(),
    };
    lock(&device).set_frame_sink(Box::new(sink));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = Reader {
        backend: backend.clone(),
        capture,
        stats: stats.clone(),
        device: device.clone(),
        notify,
        stop: stop.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("seraph-net-rx".into())
        .spawn(move || reader.run())
        .map_err(NetError::Thread)?;
    Ok(NetHandle {
        description: backend.describe(),
        stop,
        thread: Some(thread),
        stats,
        device,
    })
}

fn lock(device: &Mutex<Aether>) -> MutexGuard<'_, Aether> {
    device.lock().unwrap_or_else(|p| p.into_inner())
}

/// The card's writer path into a backend.
struct BackendSink {
    backend: Arc<dyn PacketBackend>,
    capture: Option<Capture>,
    stats: Arc<NetStats>,
}

impl FrameSink for BackendSink {
    fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        if let Some(c) = &self.capture {
            c.record(frame);
        }
        match self.backend.send(frame) {
            Ok(()) => {
                self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
                match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Err(SinkError::Full),
                    _ => Err(SinkError::Closed),
                }
            }
        }
    }
}

/// The reader thread's state.
struct Reader {
    backend: Arc<dyn PacketBackend>,
    capture: Option<Capture>,
    stats: Arc<NetStats>,
    device: Arc<Mutex<Aether>>,
    notify: Option<Notify>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(self) {
        let mut buf = vec![0u8; READ_BUFFER];
        let mut failures = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            match self.backend.recv(&mut buf) {
                Ok(Some(n)) => {
                    failures = 0;
                    let frame = buf.get(..n).unwrap_or(&buf);
                    self.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(c) = &self.capture {
                        c.record(frame);
                    }
                    let outcome = lock(&self.device).receive(frame);
                    if let RxOutcome::Dropped(_) = outcome {
                        self.stats.rx_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(n) = &self.notify {
                        n();
                    }
                }
                Ok(None) => failures = 0,
                Err(_) => {
                    // A failing backend must not spin a core: back off, keep trying.
                    self.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                    failures = failures.saturating_add(1);
                    let ms = u64::from(failures.min(100));
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
        }
    }
}

/// A running backend; [`NetHandle::shutdown`] (or drop) stops its thread.
pub struct NetHandle {
    description: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<NetStats>,
    device: Arc<Mutex<Aether>>,
}

impl std::fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetHandle")
            .field("backend", &self.description)
            .finish_non_exhaustive()
    }
}

impl NetHandle {
    /// The backend, in one line.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The backend's counters.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// True while the reader thread runs (until [`NetHandle::shutdown`]).
    pub fn is_open(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the reader thread (within ~50 ms) and detaches the card from
    /// the backend (its frames are dropped from then on). Idempotent.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            lock(&self.device).set_frame_sink(Box::new(NullSink));
        }
    }
}

impl Drop for NetHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
