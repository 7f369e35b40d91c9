//! One WebSocket viewer: sends updates, console bytes and status; takes input.
//!
//! One thread per viewer does both directions. Reads block at most
//! [`POLL`], so queued updates go out within that time; writes block at
//! most [`WRITE_SLICE`]. A viewer that stops reading leaves its bytes in
//! the socket and in tungstenite's write buffer; while those are pending
//! nothing new is written, its queue overflows and the pump skips it
//! (it gets a full frame when it catches up).
//!
//! Messages from the page (text):
//!
//! | message | meaning |
//! |---|---|
//! | `k+CODE` / `k-CODE` | key `CODE` (a `KeyboardEvent.code`) down / up |
//! | `s` + text | bytes for the serial port (the text's UTF-8) |
//! | `p` | power off |

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Bytes, Message, WebSocket};

use crate::Shared;
use crate::frame::MSG_CONSOLE;
use crate::http::is_timeout;
use crate::pump::ViewerQueue;

/// The longest a viewer thread waits for input before looking at its queue.
const POLL: Duration = Duration::from_millis(15);
/// The longest one socket write blocks.
const WRITE_SLICE: Duration = Duration::from_millis(20);
/// Console bytes per message at most.
const CONSOLE_CHUNK: usize = 16 * 1024;
/// Key codes are short ASCII names.
const MAX_CODE_LEN: usize = 32;

pub(crate) fn run(stream: TcpStream, already_read: Vec<u8>, shared: &Arc<Shared>) {
    if stream.set_read_timeout(Some(POLL)).is_err()
        || stream.set_write_timeout(Some(WRITE_SLICE)).is_err()
    {
        return;
    }
    let max_message = shared.config.max_ws_message_bytes;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(256 << 20)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let ws = WebSocket::from_partially_read(stream, already_read, Role::Server, Some(config));
    let queue = Arc::new(ViewerQueue::new(shared.config.viewer_queue_bytes));
    shared.pump.add(queue.clone());
    let mut viewer = Viewer {
        ws,
        shared: shared.clone(),
        queue: queue.clone(),
        backlogged: false,
        console_pos: shared.feed.start_position(),
        status_version: None,
        budget: Budget::new(shared.config.max_inputs_per_second),
        held: Vec::new(),
    };
    viewer.serve();
    shared.pump.remove(&queue);
    // A viewer that leaves with keys down must not leave them stuck in the guest.
    for code in viewer.held.drain(..) {
        shared.input.key(&code, false);
    }
}

/// A token bucket for input messages.
struct Budget {
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            tokens: per_second,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Viewer {
    ws: WebSocket<TcpStream>,
    shared: Arc<Shared>,
    queue: Arc<ViewerQueue>,
    /// Bytes wait in tungstenite's buffer: the peer is not reading.
    backlogged: bool,
    console_pos: u64,
    status_version: Option<u64>,
    budget: Budget,
    /// Keys this viewer holds down (released for it when it leaves).
    held: Vec<String>,
}

/// Keys one viewer can hold down at once (more are not tracked).
const MAX_HELD: usize = 32;

enum Step {
    Continue,
    Stop,
}

impl Viewer {
    fn serve(&mut self) {
        loop {
            if self.shared.stopping() {
                let _ = self.ws.close(None);
                let _ = self.ws.flush();
                return;
            }
            if let Step::Stop = self.send_pending() {
                return;
            }
            match self.ws.read() {
                Ok(message) => self.handle(message),
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                Err(_) => return,
            }
        }
    }

    /// Writes one message; a blocked socket sets `backlogged`.
    fn write(&mut self, message: Message) -> Step {
        match self.ws.write(message) {
            Ok(()) => Step::Continue,
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                self.backlogged = true;
                Step::Continue
            }
            Err(_) => Step::Stop,
        }
    }

    fn send_pending(&mut self) -> Step {
        if self.backlogged {
            match self.ws.flush() {
                Ok(()) => self.backlogged = false,
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => return Step::Continue,
                Err(_) => return Step::Stop,
            }
        }
        let (status, version) = self.shared.feed.status_versioned();
        if self.status_version != Some(version) {
            self.status_version = Some(version);
            if let Step::Stop = self.write(Message::text(status.to_json())) {
                return Step::Stop;
            }
        }
        while !self.backlogged {
            let (bytes, next) = self.shared.feed.read_from(self.console_pos, CONSOLE_CHUNK);
            if bytes.is_empty() {
                break;
            }
            self.console_pos = next;
            let mut message = Vec::with_capacity(bytes.len() + 1);
            message.push(MSG_CONSOLE);
            message.extend_from_slice(&bytes);
            if let Step::Stop = self.write(Message::Binary(Bytes::from(message))) {
                return Step::Stop;
            }
        }
        while !self.backlogged {
            let Some(update) = self.queue.pop() else {
                break;
            };
            if let Step::Stop = self.write(Message::Binary(update)) {
                return Step::Stop;
            }
        }
        Step::Continue
    }

    fn handle(&mut self, message: Message) {
        let Message::Text(text) = message else {
            // Binary, ping/pong (answered by tungstenite) and close are not input.
            return;
        };
        if !self.budget.take() {
            return;
        }
        let text = text.as_str();
        let input = self.shared.input.as_ref();
        if let Some(code) = text.strip_prefix("k+") {
            if valid_code(code) {
                if !self.held.iter().any(|c| c == code) && self.held.len() < MAX_HELD {
                    self.held.push(code.to_owned());
                }
                input.key(code, true);
            }
        } else if let Some(code) = text.strip_prefix("k-") {
            if valid_code(code) {
                self.held.retain(|c| c != code);
                input.key(code, false);
            }
        } else if let Some(bytes) = text.strip_prefix('s') {
            if !bytes.is_empty() {
                input.serial_input(bytes.as_bytes());
            }
        } else if text == "p" {
            input.power_off();
        }
    }
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.bytes().all(|b| b.is_ascii_alphanumeric())
}
