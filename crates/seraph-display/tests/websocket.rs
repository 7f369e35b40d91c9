//! WebSocket viewers: full frame, then only changed rectangles; console,
//! status and input; slow and hostile clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Synthetic, decode_update, rss_bytes, start};
use seraph_display::{DisplayConfig, Status};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(addr: SocketAddr) -> Ws {
    let (ws, resp) = tungstenite::connect(format!("ws://{addr}/ws")).unwrap();
    assert_eq!(resp.status(), 101);
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    ws
}

#[derive(Debug, Default)]
struct Got {
    frames: Vec<Vec<u8>>,
    console: Vec<u8>,
    texts: Vec<String>,
}

/// Reads messages until `done` says so or `limit` passes.
fn read_until(ws: &mut Ws, limit: Duration, mut done: impl FnMut(&Got) -> bool) -> Got {
    let mut got = Got::default();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !done(&got) {
        match ws.read() {
            Ok(Message::Binary(b)) if b.first() == Some(&1) => got.frames.push(b.to_vec()),
            Ok(Message::Binary(b)) if b.first() == Some(&2) => {
                got.console.extend_from_slice(&b[1..])
            }
            Ok(Message::Text(t)) => got.texts.push(t.to_string()),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    got
}

#[test]
fn a_viewer_gets_a_full_frame_then_only_changes() {
    let src = Synthetic::new(200, 100, 16, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    let mut ws = connect(handle.local_addr());
    let got = read_until(&mut ws, Duration::from_secs(5), |g| !g.frames.is_empty());
    assert!(
        got.texts.iter().any(|t| t.contains("\"running\"")),
        "{:?}",
        got.texts
    );
    let (fw, fh, rects) = decode_update(&got.frames[0]);
    assert_eq!((fw, fh), (200, 100));
    assert_eq!(rects.len(), 1);
    let (x, y, w, h, px) = &rects[0];
    assert_eq!((*x, *y, *w, *h), (0, 0, 200, 100));
    for (i, p) in px.iter().enumerate() {
        let (px_x, px_y) = (i as u32 % 200, i as u32 / 200);
        assert_eq!(*p, src.rgb(px_x, px_y), "pixel {px_x},{px_y}");
    }

    // Nothing drawn: no updates and no pixel reads.
    let before = src.bytes_read.load(Ordering::Relaxed);
    let quiet = read_until(&mut ws, Duration::from_millis(400), |_| false);
    assert!(quiet.frames.is_empty());
    assert_eq!(src.bytes_read.load(Ordering::Relaxed), before);

    // Two small changes far apart: two tight rectangles.
    src.fill(30, 10, 4, 3, [255, 0, 0, 0]);
    src.fill(150, 80, 2, 2, [0, 255, 0, 0]);
    let got = read_until(&mut ws, Duration::from_secs(5), |g| !g.frames.is_empty());
    let (_, _, rects) = decode_update(&got.frames[0]);
    let boxes: Vec<_> = rects.iter().map(|r| (r.0, r.1, r.2, r.3)).collect();
    assert_eq!(boxes, [(30, 10, 4, 3), (150, 80, 2, 2)]);
    assert!(rects[0].4.iter().all(|p| *p == [0, 0, 255]));
    assert!(rects[1].4.iter().all(|p| *p == [0, 255, 0]));
    handle.shutdown();
}

#[test]
fn a_client_model_follows_random_drawing_exactly() {
    // Rows of 6016 bytes: pages split rows at varying columns.
    let (w, h) = (1500u32, 120u32);
    let src = Synthetic::new(w, h, 16, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    let mut ws = connect(handle.local_addr());
    let mut model = vec![[0u8; 3]; (w * h) as usize];
    let apply = |got: &Got, model: &mut [[u8; 3]]| {
        for f in &got.frames {
            let (fw, fh, rects) = decode_update(f);
            assert_eq!((fw, fh), (w, h));
            for (x, y, rw, rh, px) in rects {
                for dy in 0..rh {
                    for dx in 0..rw {
                        model[((y + dy) * w + x + dx) as usize] = px[(dy * rw + dx) as usize];
                    }
                }
            }
        }
    };
    let matches = |model: &[[u8; 3]]| {
        (0..h).all(|y| (0..w).all(|x| model[(y * w + x) as usize] == src.rgb(x, y)))
    };
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |m: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % u64::from(m)) as u32
    };
    for round in 0..40 {
        for _ in 0..1 + next(4) {
            let (x, y) = (next(w - 1), next(h - 1));
            let (rw, rh) = (1 + next((w - x).min(300)), 1 + next((h - y).min(40)));
            let c = next(0xFF_FFFF);
            src.fill(x, y, rw, rh, [c as u8, (c >> 8) as u8, (c >> 16) as u8, 0]);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = read_until(&mut ws, Duration::from_millis(100), |g| {
                !g.frames.is_empty()
            });
            apply(&got, &mut model);
            if matches(&model) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the model never caught up"
            );
        }
    }
    handle.shutdown();
}

#[test]
fn console_tail_status_and_input() {
    let src = Synthetic::new(16, 16, 0, Synthetic::pattern);
    let config = DisplayConfig {
        console_capacity: 32,
        ..DisplayConfig::default()
    };
    let (handle, input) = start(&src, config);
    let feed = handle.feed();
    feed.console(b"an early line that scrolls away\n");
    feed.console(b"boot: ok\n");
    let mut ws = connect(handle.local_addr());
    let got = read_until(&mut ws, Duration::from_secs(5), |g| {
        g.console.ends_with(b"boot: ok\n")
    });
    assert_eq!(got.console.len(), 32, "the tail only");
    feed.console(b"more\n");
    handle.set_status(Status::Idle);
    let got = read_until(&mut ws, Duration::from_secs(5), |g| {
        g.console == b"more\n" && g.texts.iter().any(|t| t.contains("idle"))
    });
    assert_eq!(got.console, b"more\n");

    for m in [
        "k+KeyA",
        "k-KeyA",
        "k+ArrowUp",
        "sHi\r",
        "p",
        "k+<b>",
        "k+",
        "x",
        "s",
    ] {
        ws.send(Message::text(m)).unwrap();
    }
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while input.power_offs.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        let _ = read_until(&mut ws, Duration::from_millis(50), |_| false);
    }
    std::thread::sleep(Duration::from_millis(100));
    let keys = input.keys.lock().unwrap().clone();
    assert_eq!(
        keys,
        [
            ("KeyA".to_owned(), true),
            ("KeyA".to_owned(), false),
            ("ArrowUp".to_owned(), true)
        ]
    );
    assert_eq!(*input.serial.lock().unwrap(), b"Hi\r");
    assert_eq!(input.power_offs.load(Ordering::Relaxed), 1);
    handle.shutdown();
}

/// A WebSocket handshake over a raw socket that is never read afterwards.
fn stuck_viewer(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    s
}

#[test]
fn a_stuck_viewer_costs_bounded_memory_and_never_stalls_another() {
    // 640x480 of noise: every update is a ~900 KB message.
    let noise = |seed: u32| {
        move |x: u32, y: u32| {
            let v =
                (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed).wrapping_mul(97);
            [v as u8, (v >> 8) as u8, (v >> 16) as u8, 0]
        }
    };
    let src = Synthetic::new(640, 480, 0, noise(0));
    let config = DisplayConfig {
        viewer_queue_bytes: 2 << 20,
        ..DisplayConfig::default()
    };
    let (handle, _) = start(&src, config);
    let addr = handle.local_addr();
    let _stuck: Vec<TcpStream> = (0..3).map(|_| stuck_viewer(addr)).collect();
    let mut ws = connect(addr);
    let _ = read_until(&mut ws, Duration::from_secs(5), |g| !g.frames.is_empty());
    let rss0 = rss_bytes();
    for round in 1..=60u32 {
        src.repaint(noise(round));
        // The live viewer sees this round's picture soon.
        let want = src.rgb(5, 5);
        let got = read_until(&mut ws, Duration::from_secs(5), |g| {
            g.frames.iter().any(|f| {
                let (_, _, rects) = decode_update(f);
                rects.iter().any(|(x, y, w, h, px)| {
                    *x <= 5
                        && *y <= 5
                        && x + w > 5
                        && y + h > 5
                        && px[((5 - y) * w + (5 - x)) as usize] == want
                })
            })
        });
        assert!(
            !got.frames.is_empty(),
            "round {round}: the live viewer starved"
        );
    }
    let stats = handle.stats();
    assert!(
        stats.updates_dropped > 0,
        "the stuck viewers dropped updates: {stats:?}"
    );
    assert_eq!(stats.viewers, 4);
    // 60 rounds x 3 stuck viewers x 0.9 MB would be 160 MB if queued.
    let growth = rss_bytes().saturating_sub(rss0);
    assert!(growth < 48 << 20, "memory grew by {growth} bytes");
    handle.shutdown();
}

#[test]
fn an_input_flood_is_rate_limited_and_others_keep_watching() {
    let src = Synthetic::new(64, 64, 0, Synthetic::pattern);
    let config = DisplayConfig {
        max_inputs_per_second: 100,
        ..DisplayConfig::default()
    };
    let (handle, input) = start(&src, config);
    let addr = handle.local_addr();
    let mut flooder = connect(addr);
    let mut watcher = connect(addr);
    let _ = read_until(&mut watcher, Duration::from_secs(5), |g| {
        !g.frames.is_empty()
    });
    let t0 = Instant::now();
    for _ in 0..20_000 {
        flooder.write(Message::text("k+KeyA")).unwrap();
    }
    flooder.flush().unwrap();
    // Oversized messages close the flooder's connection, nothing else.
    let _ = flooder.send(Message::text("s".repeat(100_000)));
    src.fill(1, 1, 2, 2, [1, 2, 3, 0]);
    let got = read_until(&mut watcher, Duration::from_secs(5), |g| {
        !g.frames.is_empty()
    });
    assert_eq!(decode_update(&got.frames[0]).2[0].0, 1);
    std::thread::sleep(Duration::from_millis(300));
    let accepted = input.keys.lock().unwrap().len() as f64;
    let allowed = 100.0 * (t0.elapsed().as_secs_f64() + 1.0);
    assert!(
        accepted >= 50.0 && accepted <= allowed,
        "{accepted} inputs passed, {allowed} allowed"
    );
    handle.shutdown();
}

#[test]
fn keys_held_by_a_viewer_that_leaves_are_released() {
    let src = Synthetic::new(16, 16, 0, Synthetic::pattern);
    let (handle, input) = start(&src, DisplayConfig::default());
    let mut ws = connect(handle.local_addr());
    for m in ["k+ShiftLeft", "k+KeyQ", "k-KeyQ", "k+KeyW"] {
        ws.send(Message::text(m)).unwrap();
    }
    let _ = read_until(&mut ws, Duration::from_secs(5), |_| {
        input.keys.lock().unwrap().len() == 4
    });
    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(5);
    while input.keys.lock().unwrap().len() < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let keys = input.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 6, "{keys:?}");
    let mut released: Vec<_> = keys[4..].iter().map(|(c, p)| (c.as_str(), *p)).collect();
    released.sort();
    assert_eq!(released, [("KeyW", false), ("ShiftLeft", false)]);
    handle.shutdown();
}

#[test]
fn shutdown_closes_viewers_and_joins() {
    let src = Synthetic::new(16, 16, 0, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    let mut ws = connect(handle.local_addr());
    let _ = read_until(&mut ws, Duration::from_secs(5), |g| !g.frames.is_empty());
    let t0 = Instant::now();
    handle.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(2);
    let closed = loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break true,
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break true,
            Ok(_) => {}
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(closed);
}
