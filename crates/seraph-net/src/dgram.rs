//! The UDP datagram backend: each frame is one datagram, as QEMU's
//! `-netdev dgram` sends them, so two seraph-v processes, or seraph-v and
//! QEMU, form a point-to-point link. Only datagrams from `remote` count as
//! frames; others are dropped and counted. Sends go through a writer
//! thread ([`QueuedWriter`]) so that the card's transmit path never
//! blocks; the thread's own sends give up after 2 ms.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::writer::{QueuedWriter, WRITER_QUEUE};
use crate::{NetError, NetStats, PacketBackend};

/// How long a reader waits before looking at its stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(50);
/// Longest a send may block before the frame is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_millis(2);

/// A bound UDP socket and its peer.
#[derive(Debug)]
pub struct DgramBackend {
    socket: UdpSocket,
    remote: SocketAddr,
    stats: Arc<NetStats>,
    writer: QueuedWriter,
}

impl DgramBackend {
    /// Binds `local`; frames go to `remote`.
    pub fn new(
        local: SocketAddr,
        remote: SocketAddr,
        stats: Arc<NetStats>,
    ) -> Result<Self, NetError> {
        let bind_err = |source| NetError::Bind { local, source };
        let socket = UdpSocket::bind(local).map_err(bind_err)?;
        socket
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(bind_err)?;
        socket
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(bind_err)?;
        let out = socket.try_clone().map_err(bind_err)?;
        let late = stats.clone();
        let writer = QueuedWriter::spawn("seraph-net-tx", WRITER_QUEUE, move |frame| {
            if out.send_to(frame, remote).is_err() {
                late.tx_late_drops.fetch_add(1, Ordering::Relaxed);
            }
        })
        .map_err(NetError::Thread)?;
        Ok(Self {
            socket,
            remote,
            stats,
            writer,
        })
    }

    /// The address actually bound (the port, if `local` asked for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

impl PacketBackend for DgramBackend {
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.socket.recv_from(buf) {
            Ok((n, from)) if from == self.remote => Ok(Some(n)),
            Ok(_) => {
                self.stats.rx_foreign.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            // An ICMP error from an earlier send surfaces here on some systems: not fatal.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.writer.push(frame)
    }

    fn describe(&self) -> String {
        let local = self
            .socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        format!("dgram {local} <-> {}", self.remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_peer_that_never_reads_cannot_stall_the_sender() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stats = Arc::new(NetStats::default());
        let local = "127.0.0.1:0".parse().unwrap();
        let backend = DgramBackend::new(local, peer.local_addr().unwrap(), stats).unwrap();
        let frame = vec![0x5A; 1500];
        let start = Instant::now();
        let mut accepted = 0u32;
        for _ in 0..20_000 {
            if backend.send(&frame).is_ok() {
                accepted += 1;
            }
        }
        // Sends only queue: a blocked peer costs refused frames, not time
        // (a send blocking for its 2 ms each would take 40 s in all).
        let took = start.elapsed();
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(accepted >= 1, "the queue takes frames");
    }
}
