//! A synthetic framebuffer, an input recorder and small HTTP helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seraph_display::{
    Dirty, DisplayConfig, DisplayHandle, DisplayServer, FrameSource, Geometry, InputSink,
};

/// A framebuffer in memory that records written pages, like a dirty log.
pub struct Synthetic {
    state: Mutex<State>,
    /// Bytes read by the server (to check that idle costs nothing).
    pub bytes_read: AtomicU64,
}

struct State {
    geometry: Geometry,
    pixels: Vec<u8>,
    dirty: Vec<u64>,
}

impl Synthetic {
    /// A `width` x `height` frame with `pad` spare bytes per row, filled by `f(x, y)` -> BGRA.
    pub fn new(width: u32, height: u32, pad: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> Arc<Self> {
        let stride = width * 4 + pad;
        let mut pixels = vec![0u8; (stride * height) as usize];
        for y in 0..height {
            for x in 0..width {
                let at = (y * stride + x * 4) as usize;
                pixels[at..at + 4].copy_from_slice(&f(x, y));
            }
        }
        let pages = pixels.len().div_ceil(4096);
        Arc::new(Self {
            state: Mutex::new(State {
                geometry: Geometry {
                    width,
                    height,
                    stride,
                },
                pixels,
                dirty: vec![0; pages.div_ceil(64)],
            }),
            bytes_read: AtomicU64::new(0),
        })
    }

    /// The pattern the tests use: a gradient that differs at every pixel.
    pub fn pattern(x: u32, y: u32) -> [u8; 4] {
        [(x * 3) as u8, (y * 5) as u8, ((x + y) * 7) as u8, 0]
    }

    pub fn geometry(&self) -> Geometry {
        self.state.lock().unwrap().geometry
    }

    /// Fills a rectangle with one BGRA color and marks its pages dirty.
    pub fn fill(&self, x0: u32, y0: u32, w: u32, h: u32, bgra: [u8; 4]) {
        let mut s = self.state.lock().unwrap();
        let stride = s.geometry.stride;
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                let at = (y * stride + x * 4) as usize;
                s.pixels[at..at + 4].copy_from_slice(&bgra);
                let page = at / 4096;
                s.dirty[page / 64] |= 1 << (page % 64);
            }
        }
    }

    /// Rewrites every pixel with `f` (marking all pages dirty).
    pub fn repaint(&self, f: impl Fn(u32, u32) -> [u8; 4]) {
        let mut s = self.state.lock().unwrap();
        let g = s.geometry;
        for y in 0..g.height {
            for x in 0..g.width {
                let at = (y * g.stride + x * 4) as usize;
                s.pixels[at..at + 4].copy_from_slice(&f(x, y));
            }
        }
        s.dirty.iter_mut().for_each(|w| *w = u64::MAX);
    }

    /// The RGB of pixel (x, y).
    pub fn rgb(&self, x: u32, y: u32) -> [u8; 3] {
        let s = self.state.lock().unwrap();
        let at = (y * s.geometry.stride + x * 4) as usize;
        [s.pixels[at + 2], s.pixels[at + 1], s.pixels[at]]
    }
}

impl FrameSource for Synthetic {
    fn geometry(&self) -> Geometry {
        self.state.lock().unwrap().geometry
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        let s = self.state.lock().unwrap();
        self.bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = s.pixels.get(offset + i).copied().unwrap_or(0);
        }
    }

    fn take_dirty(&self) -> Dirty {
        let mut s = self.state.lock().unwrap();
        if s.dirty.iter().all(|&w| w == 0) {
            return Dirty::Clean;
        }
        let out = s.dirty.clone();
        s.dirty.iter_mut().for_each(|w| *w = 0);
        Dirty::Pages(out)
    }
}

/// Records what viewers typed.
#[derive(Default)]
pub struct Recorder {
    pub keys: Mutex<Vec<(String, bool)>>,
    pub serial: Mutex<Vec<u8>>,
    pub power_offs: AtomicU64,
}

impl InputSink for Recorder {
    fn key(&self, code: &str, pressed: bool) {
        self.keys.lock().unwrap().push((code.to_owned(), pressed));
    }

    fn serial_input(&self, bytes: &[u8]) {
        self.serial.lock().unwrap().extend_from_slice(bytes);
    }

    fn power_off(&self) {
        self.power_offs.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn start(source: &Arc<Synthetic>, config: DisplayConfig) -> (DisplayHandle, Arc<Recorder>) {
    let input = Arc::new(Recorder::default());
    let handle = DisplayServer::start(config, source.clone(), input.clone()).unwrap();
    (handle, input)
}

/// Sends raw bytes and reads the whole answer (the server closes).
pub fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// A GET with a proper Host; returns (status code, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    split_response(&raw(addr, req.as_bytes()))
}

pub fn split_response(resp: &[u8]) -> (u16, Vec<u8>) {
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(resp)));
    let head = String::from_utf8_lossy(&resp[..head_end]);
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    (code, resp[head_end + 4..].to_vec())
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Decodes a frame update message into (frame w, frame h, [(x, y, w, h, rgb pixels)]).
pub type Rects = Vec<(u32, u32, u32, u32, Vec<[u8; 3]>)>;

pub fn decode_update(msg: &[u8]) -> (u32, u32, Rects) {
    assert_eq!(msg[0], seraph_display::frame::MSG_FRAME);
    let u16_at = |o: usize| u32::from(u16::from_le_bytes([msg[o], msg[o + 1]]));
    let (fw, fh, n) = (u16_at(1), u16_at(3), u16_at(5));
    let mut o = 7;
    let mut rects = Vec::new();
    for _ in 0..n {
        let (x, y, w, h) = (u16_at(o), u16_at(o + 2), u16_at(o + 4), u16_at(o + 6));
        let len = u32::from_le_bytes(msg[o + 8..o + 12].try_into().unwrap()) as usize;
        o += 12;
        let px = seraph_display::frame::decode_rle(&msg[o..o + len]).unwrap();
        assert_eq!(px.len(), (w * h) as usize);
        rects.push((x, y, w, h, px));
        o += len;
    }
    assert_eq!(o, msg.len());
    (fw, fh, rects)
}
