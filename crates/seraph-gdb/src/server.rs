//! The TCP server and the session's event loop: bytes from gdb (read on a
//! helper thread, filtered by the framer) and stop events from the target
//! drive gdbstub's state machine.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use gdbstub::common::Signal;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};

use crate::adapter::Adapter;
use crate::arch::{NUM_REGS, Reg};
use crate::framer::{Frame, Framer, PACKET_BUFFER, packet};
use crate::target::{DebugError, DebugTarget};

/// How long the event loop waits for a stop before looking at the socket again.
const POLL: Duration = Duration::from_millis(10);
/// Packets gdbstub could not parse, answered with an error, before the
/// session is given up.
const MAX_RESTARTS: u32 = 1000;
/// Frames held while the guest runs before the server stops reading.
const MAX_HELD: usize = 256;
/// Chunks read from the socket and not yet filtered (the reader thread
/// waits, and TCP pushes back, beyond this).
const MAX_CHUNKS: usize = 16;
/// A client that does not read its replies for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the gdb server.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    /// Binding, accepting or setting up a socket failed.
    #[error("gdb server socket: {0}")]
    Io(#[from] std::io::Error),
    /// The client broke the protocol beyond repair; the session ended and
    /// the guest was detached (it runs on).
    #[error("gdb session ended on a protocol error: {0}")]
    Protocol(String),
    /// The target went away (the vCPU thread ended).
    #[error("the debug target is gone")]
    TargetGone,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// gdb detached; the guest runs on without a debugger.
    Detached,
    /// gdb killed the guest ([`DebugTarget::kill`] was called).
    Killed,
    /// The guest called EXIT with this status (gdb was told with `W`).
    Exited(u8),
    /// The run ended otherwise, with this gdb signal number (gdb was told with `X`).
    Terminated(u8),
    /// The client went away without detaching; the guest was detached.
    ClientGone,
}

/// A listening gdb server.
#[derive(Debug)]
pub struct GdbServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl GdbServer {
    /// Binds `addr` (port 0 picks a free port; see [`GdbServer::local_addr`]).
    pub fn listen(addr: SocketAddr) -> Result<GdbServer, GdbError> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(GdbServer { listener, addr })
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for gdb to connect.
    pub fn accept(&self) -> Result<TcpStream, GdbError> {
        let (stream, _) = self.listener.accept()?;
        Ok(stream)
    }

    /// Accepts one client and serves it until the session ends.
    pub fn serve_one(&self, target: &mut dyn DebugTarget) -> Result<SessionEnd, GdbError> {
        let stream = self.accept()?;
        serve(stream, target)
    }
}

/// Bytes of the register file in the `g` packet.
fn g_bytes() -> usize {
    (0..NUM_REGS)
        .filter_map(Reg::from_number)
        .map(Reg::size)
        .sum()
}

/// Where the loop gets the client's bytes from.
struct Input {
    rx: Receiver<Vec<u8>>,
    framer: Framer,
    /// Filtered frames not yet handled, in order.
    frames: VecDeque<Frame>,
    /// The rest of the frame being fed to gdbstub.
    pending: VecDeque<u8>,
    closed: bool,
}

impl Input {
    /// Waits up to `wait` (forever if `None`) for a chunk from the client
    /// and filters it; false if none came.
    fn receive(&mut self, wait: Option<Duration>) -> bool {
        let chunk = match wait {
            None => self.rx.recv().ok(),
            Some(t) => match self.rx.recv_timeout(t) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(chunk) = chunk else {
            self.closed = true;
            return false;
        };
        let mut out = Vec::new();
        for &b in &chunk {
            self.framer.push(b, &mut out);
        }
        self.frames.extend(out);
        true
    }

    /// The next byte for gdbstub while the target is stopped: waits for
    /// one; `None` once the client is gone. Replies the filter made are
    /// written in turn.
    fn next_stopped(
        &mut self,
        conn: &mut TcpStream,
        adapter: &Adapter<'_>,
    ) -> std::io::Result<Option<u8>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Ok(Some(b));
            }
            match self.frames.pop_front() {
                Some(Frame::Forward(bytes)) => match adapter.refuse(&bytes) {
                    // A request the adapter would refuse: say why, in words.
                    Some(message) => {
                        let body = format!("E.{message}");
                        conn.write_all(&acked_reply(self.framer.no_ack, body.as_bytes()))?;
                        conn.flush()?;
                    }
                    None => self.pending.extend(bytes),
                },
                Some(Frame::Reply(bytes)) => {
                    conn.write_all(&bytes)?;
                    conn.flush()?;
                }
                None if self.closed => return Ok(None),
                None => {
                    self.receive(None);
                }
            }
        }
    }

    /// The next byte for gdbstub while the target runs: only a Ctrl-C
    /// (gdb sends nothing else then; other packets wait for the stop).
    fn next_running(&mut self) -> Option<u8> {
        if let Some(b) = self.pending.pop_front() {
            return Some(b);
        }
        let is_ctrl_c = |f: &Frame| matches!(f, Frame::Forward(b) if b.as_slice() == [0x03]);
        // A client that floods packets while the guest runs is not read
        // further (TCP pushes back) until the guest stops.
        if !self.frames.iter().any(is_ctrl_c) && !self.closed && self.frames.len() < MAX_HELD {
            self.receive(Some(Duration::ZERO));
        }
        let at = self.frames.iter().position(is_ctrl_c)?;
        self.frames.remove(at);
        Some(0x03)
    }
}

/// Serves one gdb client over `stream` until the session ends. The target
/// is stopped first ([`DebugTarget::attach`]); when the client detaches or
/// goes away the target is detached, when it kills the target is killed.
pub fn serve(stream: TcpStream, target: &mut dyn DebugTarget) -> Result<SessionEnd, GdbError> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut reader = stream.try_clone()?;
    let mut conn = stream.try_clone()?;
    let (tx, rx) = mpsc::sync_channel(MAX_CHUNKS);
    let reader_thread = thread::Builder::new()
        .name("seraph-gdb-reader".into())
        .spawn(move || {
            let mut buf = vec![0u8; PACKET_BUFFER];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let chunk = buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default();
                        if tx.send(chunk).is_err() {
                            break;
                        }
                    }
                }
            }
        })?;

    let result = match target.attach() {
        Ok(()) => run_session(stream, &mut conn, rx, target),
        Err(DebugError::Gone) => Err(GdbError::TargetGone),
        Err(e) => Err(GdbError::Protocol(format!("cannot attach: {e}"))),
    };
    let _ = conn.shutdown(Shutdown::Both);
    let _ = reader_thread.join();
    result
}

fn run_session(
    stream: TcpStream,
    conn: &mut TcpStream,
    rx: Receiver<Vec<u8>>,
    target: &mut dyn DebugTarget,
) -> Result<SessionEnd, GdbError> {
    let mut adapter = Adapter::new(target);
    let mut input = Input {
        rx,
        framer: Framer::new(g_bytes()),
        frames: VecDeque::new(),
        pending: VecDeque::new(),
        closed: false,
    };
    let mut sm = machine(&stream, &mut adapter)?;
    let mut restarts = 0;
    let end = loop {
        let mut was_idle = false;
        let next = match sm {
            GdbStubStateMachine::Idle(g) => match input.next_stopped(conn, &adapter) {
                Ok(Some(byte)) => {
                    was_idle = true;
                    g.incoming_data(&mut adapter, byte)
                }
                Ok(None) | Err(_) => break Ok(SessionEnd::ClientGone),
            },
            GdbStubStateMachine::Running(g) if adapter.blocked.is_some() => {
                // A resume refused for lack of slots: print why, report a stop.
                let text = adapter.blocked.take().unwrap_or_default();
                if conn.write_all(&console_packet(&text)).is_err() {
                    break Ok(SessionEnd::ClientGone);
                }
                g.report_stop(&mut adapter, SingleThreadStopReason::Signal(Signal(0)))
            }
            GdbStubStateMachine::Running(g) => match input.next_running() {
                Some(byte) => g.incoming_data(&mut adapter, byte),
                None if input.closed => break Ok(SessionEnd::ClientGone),
                None => match adapter.target.wait_stop(POLL) {
                    Ok(Some(event)) => {
                        let reason = adapter.stop_reason(event);
                        g.report_stop(&mut adapter, reason)
                    }
                    Ok(None) => Ok(g.into()),
                    Err(DebugError::Gone) => break Err(GdbError::TargetGone),
                    // A target that cannot tell is treated as still running.
                    Err(_) => Ok(g.into()),
                },
            },
            GdbStubStateMachine::CtrlCInterrupt(g) => {
                if let Err(DebugError::Gone) = adapter.target.interrupt() {
                    break Err(GdbError::TargetGone);
                }
                g.interrupt_handled(&mut adapter, None::<SingleThreadStopReason<u64>>)
            }
            GdbStubStateMachine::Disconnected(g) => {
                break Ok(match g.get_reason() {
                    DisconnectReason::Disconnect => SessionEnd::Detached,
                    DisconnectReason::Kill => SessionEnd::Killed,
                    DisconnectReason::TargetExited(code) => SessionEnd::Exited(code),
                    DisconnectReason::TargetTerminated(sig) => SessionEnd::Terminated(sig.0),
                });
            }
        };
        sm = match next {
            Ok(sm) => sm,
            Err(e) => match fatal(e) {
                // The client stopped reading, or went away mid-reply.
                GdbError::Io(_) => break Ok(SessionEnd::ClientGone),
                // gdbstub gives up on a packet it cannot parse: answer it
                // with an error ourselves and start a fresh state machine
                // (the breakpoints live in the adapter and survive).
                GdbError::Protocol(_) if was_idle && restarts < MAX_RESTARTS => {
                    restarts += 1;
                    let mut reply = if input.framer.no_ack {
                        Vec::new()
                    } else {
                        vec![b'+']
                    };
                    reply.extend_from_slice(&packet(b"E16"));
                    if conn.write_all(&reply).is_err() {
                        break Ok(SessionEnd::ClientGone);
                    }
                    input.pending.clear();
                    match machine(conn, &mut adapter) {
                        Ok(sm) => sm,
                        Err(e) => break Err(e),
                    }
                }
                other => break Err(other),
            },
        };
    };
    match end {
        Ok(SessionEnd::Detached) | Ok(SessionEnd::ClientGone) => adapter.target.detach(),
        Ok(SessionEnd::Killed) => adapter.target.kill(),
        Err(GdbError::Protocol(_)) => adapter.target.detach(),
        _ => {}
    }
    end
}

/// A gdbstub state machine on `conn`, ready for a packet.
fn machine<'a, 'b>(
    conn: &TcpStream,
    adapter: &mut Adapter<'a>,
) -> Result<GdbStubStateMachine<'b, Adapter<'a>, TcpStream>, GdbError> {
    let stub = GdbStub::<Adapter<'a>, TcpStream>::builder(conn.try_clone()?)
        .packet_buffer_size(PACKET_BUFFER)
        .build()
        .map_err(|e| GdbError::Protocol(e.to_string()))?;
    stub.run_state_machine(adapter).map_err(fatal)
}

/// The ack (unless acks are off) and a reply packet with `body`.
fn acked_reply(no_ack: bool, body: &[u8]) -> Vec<u8> {
    let mut out = if no_ack { Vec::new() } else { vec![b'+'] };
    out.extend_from_slice(&packet(body));
    out
}

/// An `O` packet: gdb prints `text` on its console.
fn console_packet(text: &str) -> Vec<u8> {
    let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
    packet(format!("O{hex}").as_bytes())
}

fn fatal(e: gdbstub::stub::GdbStubError<DebugError, std::io::Error>) -> GdbError {
    if e.is_target_error() {
        return GdbError::TargetGone;
    }
    if e.is_connection_error() {
        let msg = e.to_string();
        return GdbError::Io(std::io::Error::other(msg));
    }
    GdbError::Protocol(e.to_string())
}
