//! Serves a synthetic, animated framebuffer and a ticking console, to look
//! at the page without a guest: `cargo run -p seraph-display --example
//! display_demo [ADDR:PORT] [SECONDS]`. Keys and serial input are printed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seraph_display::{
    Dirty, DisplayConfig, DisplayServer, FrameSource, Geometry, InputSink, Status,
    parse_display_spec,
};

const W: u32 = 640;
const H: u32 = 400;

struct Demo {
    pixels: Mutex<(Vec<u8>, Vec<u64>)>,
}

impl Demo {
    fn draw_box(&self, x0: u32, y0: u32, size: u32, bgra: [u8; 4]) {
        let mut guard = self.pixels.lock().unwrap_or_else(|p| p.into_inner());
        let (pixels, dirty) = &mut *guard;
        for y in y0..(y0 + size).min(H) {
            for x in x0..(x0 + size).min(W) {
                let at = ((y * W + x) * 4) as usize;
                if let Some(px) = pixels.get_mut(at..at + 4) {
                    px.copy_from_slice(&bgra);
                }
                let page = at / 4096;
                if let Some(word) = dirty.get_mut(page / 64) {
                    *word |= 1 << (page % 64);
                }
            }
        }
    }
}

impl FrameSource for Demo {
    fn geometry(&self) -> Geometry {
        Geometry {
            width: W,
            height: H,
            stride: W * 4,
        }
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        let guard = self.pixels.lock().unwrap_or_else(|p| p.into_inner());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = guard.0.get(offset + i).copied().unwrap_or(0);
        }
    }

    fn take_dirty(&self) -> Dirty {
        let mut guard = self.pixels.lock().unwrap_or_else(|p| p.into_inner());
        let words = std::mem::replace(&mut guard.1, vec![0; (W * H * 4 / 4096 / 64 + 1) as usize]);
        if words.iter().all(|&w| w == 0) {
            Dirty::Clean
        } else {
            Dirty::Pages(words)
        }
    }
}

struct Printer(AtomicBool);

impl InputSink for Printer {
    fn key(&self, code: &str, pressed: bool) {
        eprintln!("key {code} {}", if pressed { "down" } else { "up" });
    }
    fn serial_input(&self, bytes: &[u8]) {
        eprintln!("serial {:?}", String::from_utf8_lossy(bytes));
    }
    fn power_off(&self) {
        eprintln!("power off");
        self.0.store(true, Ordering::Release);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let spec = match args.next() {
        Some(addr) => parse_display_spec(&format!("web,addr={addr}")),
        None => parse_display_spec("web"),
    };
    let spec = match spec {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3600);
    let mut pixels = vec![0u8; (W * H * 4) as usize];
    for (i, px) in pixels.chunks_exact_mut(4).enumerate() {
        let (x, y) = (i as u32 % W, i as u32 / W);
        px.copy_from_slice(&[(x / 3) as u8, (y / 2) as u8, 0x40, 0]);
    }
    let demo = Arc::new(Demo {
        pixels: Mutex::new((pixels, vec![0; (W * H * 4 / 4096 / 64 + 1) as usize])),
    });
    let input = Arc::new(Printer(AtomicBool::new(false)));
    let handle =
        match DisplayServer::start(DisplayConfig::from_spec(&spec), demo.clone(), input.clone()) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
    eprintln!("seraph-v: display at {}", handle.url());
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(seconds) && !input.0.load(Ordering::Acquire) {
        let (x, y) = ((n * 37) % (W - 20), (n * 23) % (H - 20));
        demo.draw_box(
            x,
            y,
            20,
            [(n * 40) as u8, (n * 90) as u8, (n * 10) as u8, 0],
        );
        handle.console(format!("tick {n}: box at {x},{y}\r\n").as_bytes());
        handle.set_status(if n % 10 < 7 {
            Status::Running
        } else {
            Status::Idle
        });
        n += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    handle.set_status(Status::Exited(0));
    handle.shutdown();
}
