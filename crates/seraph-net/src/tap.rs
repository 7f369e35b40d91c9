//! The TAP backend: frames to and from a host TAP interface (layer 2, no
//! packet-information header), created if missing. The interface starts
//! down: bring it up with `ip link set NAME up` (or create a persistent
//! one beforehand with `ip tuntap add NAME mode tap`).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tun_tap::{Iface, Mode};

use crate::{NetError, PacketBackend};

/// Shortest and longest pause of an idle reader.
const MIN_IDLE_US: u64 = 20;
const MAX_IDLE_US: u64 = 1000;

/// An open TAP interface.
#[derive(Debug)]
pub struct TapBackend {
    iface: Iface,
    /// The reader's current idle pause in microseconds (grows while idle).
    idle_us: AtomicU64,
}

impl TapBackend {
    /// Opens (creating if needed) TAP interface `ifname`.
    pub fn new(ifname: &str) -> Result<Self, NetError> {
        let iface = Iface::without_packet_info(ifname, Mode::Tap).map_err(|source| {
            let ifname = ifname.to_string();
            match source.raw_os_error() {
                Some(1) | Some(13) => NetError::TapPermission { ifname, source },
                Some(2) | Some(6) | Some(19) => NetError::TapUnavailable { ifname, source },
                _ => NetError::Tap { ifname, source },
            }
        })?;
        iface.set_non_blocking().map_err(|source| NetError::Tap {
            ifname: ifname.to_string(),
            source,
        })?;
        Ok(Self {
            iface,
            idle_us: AtomicU64::new(MIN_IDLE_US),
        })
    }

    /// The interface's name as the kernel gave it.
    pub fn name(&self) -> &str {
        self.iface.name()
    }
}

impl PacketBackend for TapBackend {
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.iface.recv(buf) {
            Ok(n) => {
                self.idle_us.store(MIN_IDLE_US, Ordering::Relaxed);
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let pause = self.idle_us.load(Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(pause));
                self.idle_us
                    .store((pause * 2).min(MAX_IDLE_US), Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.iface.send(frame).map(|_| ())
    }

    fn describe(&self) -> String {
        format!("tap {}", self.iface.name())
    }
}
