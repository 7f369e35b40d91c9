//! A minimal WebSocket viewer for the display row: connects to
//! `ws://ADDR/ws`, answers pings, and counts the messages the display
//! pushes (frame updates start with the byte 1), on its own thread until
//! told to stop or the server closes. Only what the bench needs: no TLS,
//! no extensions, nothing sent but the handshake, pongs and a close.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::BenchError;

/// What the viewer received.
#[derive(Debug, Default)]
pub struct Counts {
    /// WebSocket messages.
    pub messages: AtomicU64,
    /// Frame updates (binary messages starting with 1).
    pub updates: AtomicU64,
    /// Payload bytes.
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

/// The client's opening handshake for `/ws` on `addr`.
pub fn handshake_request(addr: SocketAddr) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: c2VyYXBoLXYtYmVuY2gtMQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A frame header: (opcode, payload length, masked), and its length in
/// bytes, from the start of `bytes`; `None` if more bytes are needed.
pub fn parse_header(bytes: &[u8]) -> Option<((u8, u64, bool), usize)> {
    let (b0, b1) = (*bytes.first()?, *bytes.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut used) = match b1 & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
            4,
        ),
        127 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(bytes.get(2..10)?);
            (u64::from_be_bytes(raw), 10)
        }
        n => (u64::from(n), 2),
    };
    if masked {
        used += 4;
    }
    (bytes.len() >= used).then_some(((b0 & 0x0F, len, masked), used))
}

/// A masked client frame (`opcode`, `payload` of at most 125 bytes).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5Au8, 0xA5, 0x3C, 0xC3];
    let len = payload.len().min(125);
    let mut frame = vec![0x80 | opcode, 0x80 | len as u8];
    frame.extend_from_slice(&mask);
    frame.extend(
        payload
            .iter()
            .take(len)
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4]),
    );
    frame
}

/// Reads exactly `buf.len()` bytes, riding out read timeouts until `stop`.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> bool {
    let mut got = 0;
    while got < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        match stream.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

fn read_loop(mut stream: TcpStream, stop: &AtomicBool, counts: &Counts) {
    let mut head = [0u8; 14];
    loop {
        if !read_full(&mut stream, &mut head[..2], stop) {
            return;
        }
        let extra = match head[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        } + if head[1] & 0x80 != 0 { 4 } else { 0 };
        if !read_full(&mut stream, &mut head[2..2 + extra], stop) {
            return;
        }
        let Some(((opcode, len, _), _)) = parse_header(&head[..2 + extra]) else {
            return;
        };
        // Frames of the display are at most a few MiB; read in chunks.
        let mut first = None;
        let mut payload = Vec::new();
        let mut left = len;
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            if !read_full(&mut stream, &mut chunk[..n], stop) {
                return;
            }
            first.get_or_insert(chunk[0]);
            if opcode == 9 && payload.len() < 125 {
                payload.extend_from_slice(&chunk[..n.min(125 - payload.len())]);
            }
            left -= n as u64;
        }
        match opcode {
            8 => {
                let _ = stream.write_all(&client_frame(8, &[]));
                return;
            }
            9 => {
                let _ = stream.write_all(&client_frame(10, &payload));
            }
            0..=2 => {
                counts.messages.fetch_add(1, Ordering::Relaxed);
                counts.bytes.fetch_add(len, Ordering::Relaxed);
                if opcode == 2 && first == Some(1) {
                    counts.updates.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

impl Viewer {
    /// Connects (retrying until `limit`: the server may still be starting)
    /// and starts reading.
    pub fn connect(addr: SocketAddr, limit: Duration) -> Result<Self, BenchError> {
        let end = Instant::now() + limit;
        let mut stream = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= end => return Err(fail(format!("{addr}: {e}"))),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let io = |e: std::io::Error| fail(format!("{addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(io)?;
        stream
            .write_all(handshake_request(addr).as_bytes())
            .map_err(io)?;
        // The response head, byte by byte up to the blank line.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        let never = AtomicBool::new(false);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 8192
                || Instant::now() >= end
                || !read_full(&mut stream, &mut byte, &never)
            {
                return Err(fail("no handshake response".into()));
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head);
        if !text.starts_with("HTTP/1.1 101") {
            return Err(fail(format!(
                "handshake refused: {}",
                text.lines().next().unwrap_or("")
            )));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let (s, c) = (stop.clone(), counts.clone());
        let thread = std::thread::Builder::new()
            .name("bench-viewer".into())
            .spawn(move || read_loop(stream, &s, &c))
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
    use std::net::TcpListener;

    #[test]
    fn headers_and_client_frames() {
        assert_eq!(parse_header(&[0x82, 5]), Some(((2, 5, false), 2)));
        assert_eq!(parse_header(&[0x82, 126, 1, 0]), Some(((2, 256, false), 4)));
        let mut long = vec![0x82, 127];
        long.extend_from_slice(&(1u64 << 20).to_be_bytes());
        assert_eq!(parse_header(&long), Some(((2, 1 << 20, false), 10)));
        assert_eq!(parse_header(&[0x82]), None);
        assert_eq!(parse_header(&[0x82, 126, 1]), None);
        let pong = client_frame(10, b"hi");
        assert_eq!(&pong[..2], &[0x8A, 0x82]);
        assert_eq!(pong[6] ^ pong[2], b'h');
        assert_eq!(parse_header(&pong), Some(((10, 2, true), 6)));
        let request = handshake_request(SocketAddr::from(([127, 0, 0, 1], 80)));
        assert!(request.starts_with("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:80\r\n"));
    }

    #[test]
    fn counts_updates_from_a_scripted_server() -> Result<(), BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(BenchError::io("bind"))?;
        let addr = listener.local_addr().map_err(BenchError::io("addr"))?;
        let server = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
            let (mut s, _) = listener.accept()?;
            let mut req = Vec::new();
            let mut b = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b)?;
                req.push(b[0]);
            }
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")?;
            s.write_all(&[0x82, 3, 1, 9, 9])?; // an update
            s.write_all(&[0x82, 126, 1, 0])?; // a 256-byte update
            s.write_all(&[1u8; 256])?;
            s.write_all(&[0x82, 2, 2, 7])?; // console bytes
            s.write_all(&[0x89, 1, b'p'])?; // ping
            let mut pong = [0u8; 7];
            s.read_exact(&mut pong)?;
            s.write_all(&[0x88, 0])?; // close
            Ok(pong.to_vec())
        });
        let viewer = Viewer::connect(addr, Duration::from_secs(10))?;
        assert!(viewer.wait_updates(2, Duration::from_secs(10)));
        let pong = server
            .join()
            .map_err(|_| fail("server panicked".into()))?
            .map_err(BenchError::io("server"))?;
        assert_eq!(parse_header(&pong), Some(((10, 1, true), 6)));
        assert_eq!(pong[6] ^ pong[2], b'p');
        drop(viewer);
        Ok(())
    }
}
