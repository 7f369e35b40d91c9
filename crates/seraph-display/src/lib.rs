//! Live display in the browser: an HTTP/WebSocket server showing the
//! framebuffer and console, taking keyboard input.
//!
//! The VMM implements [`FrameSource`] (the framebuffer and its dirty pages)
//! and [`InputSink`] (keys, serial bytes, power off), starts a
//! [`DisplayServer`] and pushes console bytes and run status through the
//! returned handle's [`DisplayFeed`]. The server serves one page at `/`,
//! the current frame as PNG at `/frame.png`, and a WebSocket at `/ws` that
//! carries changed rectangles to the page and input back. See
//! `docs/display.md` for the design.

#![forbid(unsafe_code)]

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

mod cli;
mod feed;
pub mod frame;
mod http;
mod pipe;
mod pump;
mod server;
mod viewer;

#[cfg(feature = "testing")]
pub mod testing;

pub use cli::{DEFAULT_ADDR, DisplaySpec, DisplaySpecError, parse_display_spec};
pub use feed::{DisplayFeed, Status};
pub use pipe::{SerialPipeReader, SerialPipeWriter, serial_pipe};

/// Framebuffer geometry: BGRA8 pixels (byte 0 blue, 1 green, 2 red, 3 unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Geometry {
    /// Width in pixels (at most 65535).
    pub width: u32,
    /// Height in pixels (at most 65535).
    pub height: u32,
    /// Bytes from one row to the next (at least `width * 4`).
    pub stride: u32,
}

impl Geometry {
    /// True if the geometry is usable: non-empty, at most 65535 a side,
    /// rows not overlapping.
    pub fn is_valid(&self) -> bool {
        self.width > 0
            && self.height > 0
            && self.width <= 0xFFFF
            && self.height <= 0xFFFF
            && u64::from(self.stride) >= u64::from(self.width) * 4
    }
}

/// What changed in the framebuffer since the last [`FrameSource::take_dirty`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dirty {
    /// Nothing.
    Clean,
    /// A bitmap of 4 KiB pages: bit `i % 64` of word `i / 64` set means the
    /// page at byte offset `i * 4096` of the framebuffer was written (the
    /// layout of `KVM_GET_DIRTY_LOG` for a slot that starts at the
    /// framebuffer). Bits past the framebuffer are ignored.
    Pages(Vec<u64>),
    /// The source does not track writes: compare the whole frame.
    Unknown,
}

/// The framebuffer, as the VMM exposes it (called from the display's threads).
pub trait FrameSource: Send + Sync {
    /// The current geometry; the pump re-reads it every update.
    fn geometry(&self) -> Geometry;
    /// Fills `buf` with framebuffer bytes from byte `offset` on (zeros for
    /// anything the source cannot read). Called with whole or partial rows.
    fn read(&self, offset: usize, buf: &mut [u8]);
    /// The pages written since the previous call, and resets the record.
    fn take_dirty(&self) -> Dirty;
}

/// Where viewers' input goes (called from viewer threads; must not block long).
pub trait InputSink: Send + Sync {
    /// A key went down or up; `code` is the browser's `KeyboardEvent.code`
    /// ("KeyA", "Enter", "ArrowUp", ...): for the PS/2 keyboard.
    fn key(&self, code: &str, pressed: bool);
    /// Bytes typed into the console pane: for COM1's receiver.
    fn serial_input(&self, bytes: &[u8]);
    /// The page's "power off" button.
    fn power_off(&self);
}

/// Server limits and address.
#[derive(Debug, Clone)]
pub struct DisplayConfig {
    /// Where to listen (default 127.0.0.1, a free port).
    pub addr: SocketAddr,
    /// Connections served at once (HTTP and WebSocket); more get 503.
    pub max_connections: usize,
    /// Frame updates per second at most.
    pub max_updates_per_second: u32,
    /// Bytes of console output kept for viewers.
    pub console_capacity: usize,
    /// Bytes of frame updates a viewer may have waiting before it skips to
    /// a full frame.
    pub viewer_queue_bytes: usize,
    /// Largest HTTP request head accepted.
    pub max_request_bytes: usize,
    /// Largest WebSocket message accepted from a viewer.
    pub max_ws_message_bytes: usize,
    /// Input messages a viewer may send per second; more are dropped.
    pub max_inputs_per_second: u32,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR,
            max_connections: 32,
            max_updates_per_second: 30,
            console_capacity: 64 * 1024,
            viewer_queue_bytes: 8 << 20,
            max_request_bytes: 8 * 1024,
            max_ws_message_bytes: 16 * 1024,
            max_inputs_per_second: 2000,
        }
    }
}

impl DisplayConfig {
    /// The default configuration at the address a `--display` value gives.
    pub fn from_spec(spec: &DisplaySpec) -> Self {
        Self {
            addr: spec.addr,
            ..Self::default()
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A thread could not be started or the socket configured.
    #[error("cannot start the display server: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters for tests and `--stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DisplayStats {
    /// Frame update messages the pump built (deltas and full frames).
    pub updates_built: u64,
    /// Updates a viewer could not take (it was behind; it gets a full frame later).
    pub updates_dropped: u64,
    /// Connections refused with 503.
    pub refused: u64,
    /// Viewers connected now.
    pub viewers: usize,
}

/// State the server's threads share.
pub(crate) struct Shared {
    pub(crate) config: DisplayConfig,
    pub(crate) source: Arc<dyn FrameSource>,
    pub(crate) input: Arc<dyn InputSink>,
    pub(crate) feed: DisplayFeed,
    pub(crate) shutdown: AtomicBool,
    pub(crate) local_addr: SocketAddr,
    pub(crate) pump: pump::PumpControl,
    pub(crate) stats: Mutex<DisplayStats>,
    /// One PNG encode at a time: a flood of `/frame.png` costs one core at most.
    pub(crate) png_lock: Mutex<()>,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, DisplayStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The display server.
pub struct DisplayServer;

impl DisplayServer {
    /// Binds `config.addr` and starts the accept and pump threads.
    pub fn start(
        config: DisplayConfig,
        source: Arc<dyn FrameSource>,
        input: Arc<dyn InputSink>,
    ) -> Result<DisplayHandle, DisplayError> {
        let listener = TcpListener::bind(config.addr).map_err(|source| DisplayError::Bind {
            addr: config.addr,
            source,
        })?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            feed: DisplayFeed::new(config.console_capacity),
            config,
            source,
            input,
            shutdown: AtomicBool::new(false),
            local_addr,
            pump: pump::PumpControl::default(),
            stats: Mutex::new(DisplayStats::default()),
            png_lock: Mutex::new(()),
        });
        let pump = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("display-pump".into())
                .spawn(move || pump::run(&shared))?
        };
        let accept = match server::spawn_acceptor(listener, shared.clone()) {
            Ok(handle) => handle,
            Err(e) => {
                shared.shutdown.store(true, Ordering::Release);
                shared.pump.wake();
                let _ = pump.join();
                return Err(e.into());
            }
        };
        Ok(DisplayHandle {
            shared,
            pump: Some(pump),
            accept: Some(accept),
        })
    }
}

/// A running display server; [`DisplayHandle::shutdown`] (or drop) stops it.
pub struct DisplayHandle {
    shared: Arc<Shared>,
    pump: Option<JoinHandle<()>>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DisplayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisplayHandle")
            .field("addr", &self.shared.local_addr)
            .finish()
    }
}

impl DisplayHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The page's URL (`http://ADDR:PORT/`; an unspecified bind address
    /// shows as loopback).
    pub fn url(&self) -> String {
        let mut addr = self.shared.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}/")
    }

    /// The console and status feed (clone it for other threads).
    pub fn feed(&self) -> DisplayFeed {
        self.shared.feed.clone()
    }

    /// Shorthand for `feed().set_status(status)`.
    pub fn set_status(&self, status: Status) {
        self.shared.feed.set_status(status);
    }

    /// Shorthand for `feed().console(bytes)`.
    pub fn console(&self, bytes: &[u8]) {
        self.shared.feed.console(bytes);
    }

    /// Current counters.
    pub fn stats(&self) -> DisplayStats {
        let mut stats = *self.shared.stats();
        stats.viewers = self.shared.pump.viewer_count();
        stats
    }

    /// Stops accepting, closes every connection and joins all threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.pump.wake();
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
        if let Some(accept) = self.accept.take() {
            // The accept thread sits in `accept` until a connection comes:
            // make one. If even that fails, leave the thread rather than hang.
            if server::wake_acceptor(self.shared.local_addr) {
                let _ = accept.join();
            }
        }
    }
}

impl Drop for DisplayHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
