//! The HTTP side: reading one request head with limits, and the answers.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::{FrameSource, Geometry};

/// How long a client has to send its whole request head.
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// One blocking read at most this long, so shutdown is noticed.
pub(crate) const READ_SLICE: Duration = Duration::from_millis(100);
const MAX_HEADERS: usize = 32;
/// How long writing one response may take in all.
const RESPONSE_DEADLINE: Duration = Duration::from_secs(10);

/// A parsed request head: only what the server looks at.
#[derive(Debug, Default)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Header names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    /// Bytes after the head (the start of a WebSocket stream).
    pub(crate) rest: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True if the header is a comma list containing `token` (any case).
    pub(crate) fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Why no request came.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed or the connection broke before a head arrived.
    Closed,
    /// The head was not HTTP/1.x.
    Malformed,
    /// The head was larger than allowed.
    TooLarge,
    /// The deadline passed.
    Timeout,
    /// The server is stopping.
    Stopping,
}

/// Reads one request head (up to `max` bytes, within [`REQUEST_DEADLINE`]).
pub(crate) fn read_request(
    stream: &mut TcpStream,
    max: usize,
    stopping: &dyn Fn() -> bool,
) -> Result<Request, ReadError> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if stopping() {
            return Err(ReadError::Stopping);
        }
        if Instant::now() >= deadline {
            return Err(ReadError::Timeout);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            Err(e) if is_timeout(&e) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Closed),
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                if len > max {
                    return Err(ReadError::TooLarge);
                }
                let mut out = Request {
                    method: req.method.unwrap_or_default().to_owned(),
                    path: req.path.unwrap_or_default().to_owned(),
                    headers: Vec::with_capacity(req.headers.len()),
                    rest: buf.get(len..).unwrap_or(&[]).to_vec(),
                };
                for h in req.headers.iter() {
                    let value = std::str::from_utf8(h.value).map_err(|_| ReadError::Malformed)?;
                    out.headers
                        .push((h.name.to_ascii_lowercase(), value.trim().to_owned()));
                }
                return Ok(out);
            }
            Ok(httparse::Status::Partial) if buf.len() > max => return Err(ReadError::TooLarge),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooLarge),
            Err(_) => return Err(ReadError::Malformed),
        }
    }
}

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Writes a whole response with `Connection: close`.
pub(crate) fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let deadline = Instant::now() + RESPONSE_DEADLINE;
    stream.write_all(head.as_bytes())?;
    if !head_only {
        // In slices, so a reader that trickles cannot hold the thread (and
        // shutdown) for longer than the deadline.
        for chunk in body.chunks(64 * 1024) {
            if Instant::now() >= deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            stream.write_all(chunk)?;
        }
    }
    stream.flush()
}

/// A plain-text error response.
pub(crate) fn respond_error(stream: &mut TcpStream, status: &str) {
    let body = format!("{status}\n");
    let _ = respond(
        stream,
        status,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        false,
    );
}

/// The current frame as a PNG (RGB, 8 bits).
pub(crate) fn frame_png(source: &dyn FrameSource) -> Result<Vec<u8>, png::EncodingError> {
    let g = source.geometry();
    let valid = g.is_valid();
    let g = if valid {
        g
    } else {
        Geometry {
            width: 1,
            height: 1,
            stride: 4,
        }
    };
    let mut rgb = Vec::with_capacity(g.width as usize * g.height as usize * 3);
    let mut row = vec![0u8; g.width as usize * 4];
    for y in 0..g.height as usize {
        if valid {
            source.read(y * g.stride as usize, &mut row);
        }
        for px in row.chunks_exact(4) {
            rgb.extend_from_slice(&[px[2], px[1], px[0]]);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, g.width, g.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}
