//! A WebSocket viewer for the display row: connects to `ws://ADDR/ws`
//! (tungstenite does the handshake, framing and pongs), and counts the
//! messages the display pushes (frame updates start with the byte 1), on
//! its own thread until told to stop or the server closes.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::error::BenchError;

/// How long one read may block: the reading thread checks `stop` (and
/// the handshake its deadline) at least this often.
const READ_TICK: Duration = Duration::from_millis(100);

/// What the viewer received.
#[derive(Debug, Default)]
pub struct Counts {
    /// WebSocket data messages (text or binary).
    pub messages: AtomicU64,
    /// Frame updates (binary messages starting with 1).
    pub updates: AtomicU64,
    /// Payload bytes of the data messages.
    pub bytes: AtomicU64,
}

/// A connected viewer reading on its own thread.
#[derive(Debug)]
pub struct Viewer {
    stop: Arc<AtomicBool>,
    /// What has arrived so far.
    pub counts: Arc<Counts>,
    thread: Option<JoinHandle<()>>,
}

fn fail(detail: String) -> BenchError {
    BenchError::Setup(format!("display viewer: {detail}"))
}

/// A read that timed out (the socket's read timeout), not a failure.
fn timed_out(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if matches!(
        io.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    ))
}

/// Counts one message: data messages and their bytes, and frame updates.
/// Pings, pongs and closes are tungstenite's business.
fn count(counts: &Counts, message: &Message) {
    let (len, update) = match message {
        Message::Binary(data) => (data.len(), data.first() == Some(&1)),
        Message::Text(text) => (text.len(), false),
        _ => return,
    };
    counts.messages.fetch_add(1, Ordering::Relaxed);
    counts.bytes.fetch_add(len as u64, Ordering::Relaxed);
    if update {
        counts.updates.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads until `stop`, the server closes, or the connection fails; each
/// `read` also sends any pong or close reply tungstenite has queued.
fn read_loop(mut ws: WebSocket<TcpStream>, stop: &AtomicBool, counts: &Counts) {
    while !stop.load(Ordering::Relaxed) {
        match ws.read() {
            Ok(message) => count(counts, &message),
            Err(e) if timed_out(&e) => {}
            Err(_) => return,
        }
    }
}

impl Viewer {
    /// Connects (retrying until `limit`: the server may still be starting)
    /// and starts reading.
    pub fn connect(addr: SocketAddr, limit: Duration) -> Result<Self, BenchError> {
        let end = Instant::now() + limit;
        let stream = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= end => return Err(fail(format!("{addr}: {e}"))),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let io = |e: std::io::Error| fail(format!("{addr}: {e}"));
        stream.set_read_timeout(Some(READ_TICK)).map_err(io)?;
        // A pong must not block the reader forever either.
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
        // Display frames can be several MiB: no size limits, as before.
        let config = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let mut attempt = tungstenite::client::client_with_config(
            format!("ws://{addr}/ws"),
            stream,
            Some(config),
        );
        let ws = loop {
            match attempt {
                Ok((ws, _response)) => break ws,
                Err(HandshakeError::Interrupted(mid)) => {
                    if Instant::now() >= end {
                        return Err(fail(format!("{addr}: no handshake response")));
                    }
                    attempt = mid.handshake();
                }
                Err(HandshakeError::Failure(e)) => {
                    return Err(fail(format!("{addr}: handshake refused: {e}")));
                }
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let (s, c) = (stop.clone(), counts.clone());
        let thread = std::thread::Builder::new()
            .name("bench-viewer".into())
            .spawn(move || read_loop(ws, &s, &c))
            .map_err(|e| fail(format!("thread: {e}")))?;
        Ok(Self {
            stop,
            counts,
            thread: Some(thread),
        })
    }

    /// Waits until at least `n` frame updates arrived, or `limit` passes.
    pub fn wait_updates(&self, n: u64, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while self.counts.updates.load(Ordering::Relaxed) < n {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn listen() -> Result<(TcpListener, SocketAddr), BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(BenchError::io("bind"))?;
        let addr = listener.local_addr().map_err(BenchError::io("addr"))?;
        Ok((listener, addr))
    }

    #[test]
    fn counts_updates_and_answers_pings() -> Result<(), BenchError> {
        let (listener, addr) = listen()?;
        let server = std::thread::spawn(move || -> Result<Vec<u8>, tungstenite::Error> {
            let (s, _) = listener.accept()?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut ws = tungstenite::accept(s).map_err(|e| match e {
                HandshakeError::Failure(e) => e,
                HandshakeError::Interrupted(_) => tungstenite::Error::ConnectionClosed,
            })?;
            ws.send(Message::binary(vec![1, 9, 9]))?; // an update
            ws.send(Message::binary(vec![1u8; 256 * 1024]))?; // a large update
            ws.send(Message::binary(vec![2, 7]))?; // console bytes
            ws.send(Message::text("hello"))?; // not an update
            ws.send(Message::Ping(b"p".to_vec().into()))?;
            let pong = loop {
                if let Message::Pong(data) = ws.read()? {
                    break data.to_vec();
                }
            };
            ws.close(None)?;
            // The viewer answers the close; then the connection ends.
            while ws.read().is_ok() {}
            Ok(pong)
        });
        let viewer = Viewer::connect(addr, Duration::from_secs(10))?;
        assert!(viewer.wait_updates(2, Duration::from_secs(10)));
        let pong = server
            .join()
            .map_err(|_| fail("server panicked".into()))?
            .map_err(|e| fail(format!("server: {e}")))?;
        assert_eq!(pong, b"p");
        // The server closed: the reading thread has ended on its own.
        let end = Instant::now() + Duration::from_secs(10);
        while !viewer.thread.as_ref().is_some_and(|t| t.is_finished()) {
            assert!(Instant::now() < end, "viewer still reading after close");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(viewer.counts.updates.load(Ordering::Relaxed), 2);
        assert_eq!(viewer.counts.messages.load(Ordering::Relaxed), 4);
        assert_eq!(
            viewer.counts.bytes.load(Ordering::Relaxed),
            3 + 256 * 1024 + 2 + 5
        );
        Ok(())
    }

    #[test]
    fn a_refused_handshake_is_an_error() -> Result<(), BenchError> {
        let (listener, addr) = listen()?;
        let server = std::thread::spawn(move || -> std::io::Result<()> {
            let (mut s, _) = listener.accept()?;
            let mut req = Vec::new();
            let mut b = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b)?;
                req.push(b[0]);
            }
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        });
        let err = Viewer::connect(addr, Duration::from_secs(10))
            .err()
            .map(|e| e.to_string());
        let _ = server.join();
        let err = err.unwrap_or_default();
        assert!(err.contains("display viewer"), "{err}");
        assert!(err.contains("handshake refused"), "{err}");
        Ok(())
    }

    #[test]
    fn a_silent_server_cannot_hang_the_handshake() -> Result<(), BenchError> {
        let (listener, addr) = listen()?;
        let started = Instant::now();
        let err = Viewer::connect(addr, Duration::from_millis(300))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no handshake response"), "{err}");
        // A hang guard, not a speed check (the limit was 300 ms).
        assert!(started.elapsed() < Duration::from_secs(30));
        drop(listener);
        Ok(())
    }

    #[test]
    fn stopping_ends_the_reader() -> Result<(), BenchError> {
        let (listener, addr) = listen()?;
        let server = std::thread::spawn(move || -> Result<(), tungstenite::Error> {
            let (s, _) = listener.accept()?;
            let mut ws = tungstenite::accept(s).map_err(|e| match e {
                HandshakeError::Failure(e) => e,
                HandshakeError::Interrupted(_) => tungstenite::Error::ConnectionClosed,
            })?;
            ws.send(Message::binary(vec![1]))?;
            // Then silence, until the viewer goes away.
            while ws.read().is_ok() {}
            Ok(())
        });
        let viewer = Viewer::connect(addr, Duration::from_secs(10))?;
        assert!(viewer.wait_updates(1, Duration::from_secs(10)));
        let started = Instant::now();
        drop(viewer);
        // A hang guard, not a speed check: drop joins the reader.
        assert!(started.elapsed() < Duration::from_secs(30));
        let _ = server.join();
        Ok(())
    }
}
