//! HTTP-level tests over raw TCP: routes, limits and abuse.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Synthetic, get, raw, split_response, start};
use seraph_display::DisplayConfig;

#[test]
fn the_page_and_its_parts() {
    let src = Synthetic::new(64, 32, 0, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    assert!(handle.url().starts_with("http://127.0.0.1:"));
    let (code, body) = get(handle.local_addr(), "/");
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    for part in [
        "<canvas",
        "id=\"console\"",
        "id=\"power\"",
        "id=\"status\"",
        "/ws",
    ] {
        assert!(page.contains(part), "page lacks {part}");
    }
    let resp = raw(
        handle.local_addr(),
        format!("HEAD / HTTP/1.1\r\nHost: {}\r\n\r\n", handle.local_addr()).as_bytes(),
    );
    let (code, body) = split_response(&resp);
    assert_eq!((code, body.len()), (200, 0));
    handle.shutdown();
}

#[test]
fn frame_png_decodes_to_the_current_pixels() {
    // Padding in each row checks that the stride is honoured.
    let src = Synthetic::new(100, 60, 12, Synthetic::pattern);
    src.fill(10, 20, 5, 5, [0x10, 0x20, 0x30, 0]);
    let (handle, _) = start(&src, DisplayConfig::default());
    let (code, body) = get(handle.local_addr(), "/frame.png?t=1");
    assert_eq!(code, 200);
    let decoder = png::Decoder::new(std::io::Cursor::new(body));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (100, 60));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    for y in 0..60 {
        for x in 0..100 {
            let at = ((y * 100 + x) * 3) as usize;
            assert_eq!(buf[at..at + 3], src.rgb(x, y), "pixel {x},{y}");
        }
    }
    assert_eq!(src.rgb(12, 22), [0x30, 0x20, 0x10]);
    handle.shutdown();
}

#[test]
fn errors_get_their_status_and_a_closed_connection() {
    let src = Synthetic::new(8, 8, 0, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    let addr = handle.local_addr();
    assert_eq!(get(addr, "/nope").0, 404);
    let host = format!("Host: {addr}\r\n");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"HELLO THERE\r\n\r\n".to_vec(), 400),
        (b"\x00\x01\x02\xff\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400), // no Host
        (
            b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_vec(),
            403,
        ),
        (
            format!("POST / HTTP/1.1\r\n{host}Content-Length: 3\r\n\r\nabc").into_bytes(),
            405,
        ),
        (
            format!("GET / HTTP/1.1\r\n{host}Content-Length: 3\r\n\r\nabc").into_bytes(),
            400,
        ),
        (format!("GET /ws HTTP/1.1\r\n{host}\r\n").into_bytes(), 400), // not an upgrade
        (
            format!("GET / HTTP/1.1\r\n{host}X: {}\r\n\r\n", "a".repeat(20_000)).into_bytes(),
            431,
        ),
        (
            format!("GET / HTTP/1.1\r\n{host}{}\r\n", "A: b\r\n".repeat(40)).into_bytes(),
            431,
        ),
        (
            format!(
                "GET /ws HTTP/1.1\r\n{host}Upgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Origin: http://evil.example\r\n\r\n"
            )
            .into_bytes(),
            403,
        ),
    ];
    for (request, want) in cases {
        // `raw` reads to EOF: the server closed the connection after answering.
        let resp = raw(addr, &request);
        let (code, _) = split_response(&resp);
        assert_eq!(
            code,
            want,
            "for {:?}",
            String::from_utf8_lossy(&request[..40.min(request.len())])
        );
    }
    // The server still answers.
    assert_eq!(get(addr, "/").0, 200);
    handle.shutdown();
}

#[test]
fn random_garbage_requests_get_4xx_and_the_server_lives() {
    let src = Synthetic::new(8, 8, 0, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    let addr = handle.local_addr();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces: [&[u8]; 8] = [
        b"GET ",
        b"/ws",
        b" HTTP/1.1\r\n",
        b"Host: x\r\n",
        b"\r\n",
        b"\x00\xff",
        b":",
        b"%%",
    ];
    let mut answered = 0;
    for _ in 0..200 {
        // Never starting with blank lines, which HTTP lets a server skip
        // (such a request waits for its 5 s deadline; tested below).
        let mut req = b"G".to_vec();
        for _ in 0..next() % 12 {
            let r = next();
            if r % 3 == 0 {
                req.push(r as u8);
            } else {
                req.extend_from_slice(pieces[(r % 8) as usize]);
            }
        }
        req.extend_from_slice(b"\r\n\r\n");
        let resp = raw(addr, &req);
        if !resp.is_empty() {
            let (code, _) = split_response(&resp);
            assert!((400..500).contains(&code), "{code} for {req:?}");
            answered += 1;
        }
    }
    assert!(answered > 150, "only {answered} answers");
    assert_eq!(get(addr, "/").0, 200);
    handle.shutdown();
}

#[test]
fn a_slow_request_times_out_with_408() {
    let src = Synthetic::new(8, 8, 0, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    let mut s = TcpStream::connect(handle.local_addr()).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let t0 = Instant::now();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    assert_eq!(split_response(&resp).0, 408);
    assert!(t0.elapsed() < Duration::from_secs(10));
    handle.shutdown();
}

#[test]
fn request_flood_and_a_thousand_dropped_connections() {
    let src = Synthetic::new(32, 32, 0, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    let addr = handle.local_addr();
    for i in 0..300 {
        let path = if i % 2 == 0 { "/" } else { "/frame.png" };
        assert_eq!(get(addr, path).0, 200, "request {i}");
    }
    for i in 0..1000 {
        let mut s = TcpStream::connect(addr).unwrap();
        if i % 3 == 0 {
            let _ = s.write_all(b"GET / HT");
        }
        drop(s);
    }
    // Every dropped connection ends; the server serves, and a full set of
    // connections can be opened again (none leaked).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held: Vec<TcpStream> = (0..31).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(50));
        let (code, _) = get(addr, "/");
        drop(held);
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connections leaked: still {code}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    handle.shutdown();
}

#[test]
fn beyond_max_connections_gets_503() {
    let src = Synthetic::new(8, 8, 0, Synthetic::pattern);
    let config = DisplayConfig {
        max_connections: 4,
        ..DisplayConfig::default()
    };
    let (handle, _) = start(&src, config);
    let addr = handle.local_addr();
    let held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(addr, "/").0, 503);
    assert!(handle.stats().refused >= 1);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(addr, "/").0 != 200 {
        assert!(Instant::now() < deadline, "slots never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.shutdown();
}

#[test]
fn shutdown_with_idle_connections_is_prompt() {
    let src = Synthetic::new(8, 8, 0, Synthetic::pattern);
    let (handle, _) = start(&src, DisplayConfig::default());
    let addr = handle.local_addr();
    let _held: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    handle.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(TcpStream::connect(addr).is_err(), "listener closed");
}
