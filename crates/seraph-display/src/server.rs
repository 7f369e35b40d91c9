//! The accept loop and request routing: one thread per connection, at most
//! `max_connections` of them; beyond that a 503 from the accept thread.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::Shared;
use crate::http::{self, ReadError, Request};

/// The page, served from the binary.
const PAGE: &str = include_str!("page.html");
/// How long the accept loop pauses after a failed accept (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// How long one socket write may wait for a slow reader.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Wakes an accept loop blocked in `accept` (after the shutdown flag is
/// set) by connecting to it; false if that failed.
pub(crate) fn wake_acceptor(addr: SocketAddr) -> bool {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

pub(crate) fn spawn_acceptor(
    listener: TcpListener,
    shared: Arc<Shared>,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(false)?;
    thread::Builder::new()
        .name("display-accept".into())
        .spawn(move || accept_loop(&listener, &shared))
}

/// Decrements the live connection count when a connection thread ends.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            // Out of descriptors for now, or an aborted handshake: try again.
            Err(_) => {
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        if shared.stopping() {
            break;
        }
        connections.retain(|h| !h.is_finished());
        if active.load(Ordering::Acquire) >= shared.config.max_connections {
            shared.stats().refused += 1;
            refuse(stream);
            continue;
        }
        active.fetch_add(1, Ordering::AcqRel);
        let guard = ActiveGuard(active.clone());
        let conn_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name("display-conn".into())
            .spawn(move || {
                let _guard = guard;
                serve(stream, &conn_shared);
            });
        if let Ok(handle) = spawned {
            connections.push(handle);
        }
    }
    for h in connections {
        let _ = h.join();
    }
}

fn refuse(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    http::respond_error(&mut stream, "503 Service Unavailable");
    let _ = stream.shutdown(Shutdown::Both);
}

/// Closes politely: no more writes, then a short drain so unread request
/// bytes do not turn the close into a reset that eats the response.
fn close(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while Instant::now() < deadline && total < 64 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

fn serve(mut stream: TcpStream, shared: &Arc<Shared>) {
    let configured = stream
        .set_read_timeout(Some(http::READ_SLICE))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true));
    if configured.is_err() {
        return;
    }
    let stopping = || shared.stopping();
    let request = match http::read_request(&mut stream, shared.config.max_request_bytes, &stopping)
    {
        Ok(r) => r,
        Err(ReadError::Closed | ReadError::Stopping) => return,
        Err(ReadError::Malformed) => return fail(stream, "400 Bad Request"),
        Err(ReadError::TooLarge) => return fail(stream, "431 Request Header Fields Too Large"),
        Err(ReadError::Timeout) => return fail(stream, "408 Request Timeout"),
    };
    if let Err(status) = check_request(&request, shared) {
        return fail(stream, status);
    }
    let head_only = request.method == "HEAD";
    let path = request.path.split('?').next().unwrap_or_default();
    match path {
        "/" | "/index.html" => {
            let _ = http::respond(
                &mut stream,
                "200 OK",
                "text/html; charset=utf-8",
                PAGE.as_bytes(),
                head_only,
            );
        }
        "/frame.png" => {
            let png = {
                let _one_at_a_time = shared.png_lock.lock().unwrap_or_else(|p| p.into_inner());
                http::frame_png(shared.source.as_ref())
            };
            match png {
                Ok(png) => {
                    let _ = http::respond(&mut stream, "200 OK", "image/png", &png, head_only);
                }
                Err(_) => http::respond_error(&mut stream, "500 Internal Server Error"),
            }
        }
        "/ws" if !head_only => match upgrade(&mut stream, &request) {
            Ok(()) => return crate::viewer::run(stream, request.rest, shared),
            Err(status) => http::respond_error(&mut stream, status),
        },
        _ => http::respond_error(&mut stream, "404 Not Found"),
    }
    close(stream);
}

fn fail(mut stream: TcpStream, status: &str) {
    http::respond_error(&mut stream, status);
    close(stream);
}

/// Method, body and Host checks shared by every route.
fn check_request(request: &Request, shared: &Shared) -> Result<(), &'static str> {
    if request.method != "GET" && request.method != "HEAD" {
        return Err("405 Method Not Allowed");
    }
    let has_body = request
        .header("content-length")
        .is_some_and(|v| v.trim() != "0")
        || request.header("transfer-encoding").is_some();
    if has_body {
        return Err("400 Bad Request");
    }
    if !request.path.starts_with('/') {
        return Err("400 Bad Request");
    }
    let Some(host) = request.header("host") else {
        return Err("400 Bad Request");
    };
    // On a loopback bind, only loopback names: a web page elsewhere cannot
    // reach the guest by rebinding a DNS name to 127.0.0.1.
    if shared.local_addr.ip().is_loopback() && !is_loopback_host(host) {
        return Err("403 Forbidden");
    }
    Ok(())
}

fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a WebSocket upgrade request and answers 101.
fn upgrade(stream: &mut TcpStream, request: &Request) -> Result<(), &'static str> {
    if !request.header_has_token("upgrade", "websocket")
        || !request.header_has_token("connection", "upgrade")
        || request.header("sec-websocket-version") != Some("13")
    {
        return Err("400 Bad Request");
    }
    let Some(key) = request.header("sec-websocket-key") else {
        return Err("400 Bad Request");
    };
    // Browsers send Origin: only the page's own origin may drive the guest.
    if let Some(origin) = request.header("origin") {
        let host = request.header("host").unwrap_or_default();
        if !origin.eq_ignore_ascii_case(&format!("http://{host}")) {
            return Err("403 Forbidden");
        }
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|_| "500 Internal Server Error")
}
