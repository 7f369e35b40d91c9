//! The channel plumbing ([`seraph_gdb::port`]) between the server thread
//! and a vCPU thread, driven by the real gdb: a simulated vCPU loop on its
//! own thread serves the server only while stopped, as the VMM's will.

mod common;

use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::*;
use seraph_gdb::port::{PortCommand, VcpuAccess, VcpuDebugPort, debug_port};
use seraph_gdb::{
    CpuState, DebugResult, DebugTarget, GdbError, GdbServer, ResumeMode, SessionEnd, StopEvent,
};
use seraph_hypervisor::GuestDebug;

/// The fake guest seen from its own vCPU thread.
struct Access<'a>(&'a mut FakeTarget);

impl VcpuAccess for Access<'_> {
    fn read_registers(&mut self) -> DebugResult<CpuState> {
        self.0.read_registers()
    }
    fn write_registers(&mut self, state: &CpuState) -> DebugResult<()> {
        self.0.write_registers(state)
    }
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> DebugResult<()> {
        self.0.read_memory(addr, buf)
    }
    fn write_memory(&mut self, addr: u64, data: &[u8]) -> DebugResult<()> {
        self.0.write_memory(addr, data)
    }
    fn set_guest_debug(&mut self, debug: &GuestDebug) -> DebugResult<()> {
        self.0.set_guest_debug(debug)
    }
}

/// What the vCPU loop did, for the test to check.
struct VcpuEnd {
    fake: FakeTarget,
    command: Option<PortCommand>,
    detaches: usize,
}

/// A vCPU loop like the VMM's: held at entry (`-S`) or running at once;
/// stops when the guest hits a debug event or the server asks.
fn vcpu_thread(mut fake: FakeTarget, mut port: VcpuDebugPort, hold: bool) -> JoinHandle<VcpuEnd> {
    thread::spawn(move || {
        let mut detaches = 0;
        let mut command = if hold {
            port.report_stop(StopEvent::Interrupted, &mut Access(&mut fake))
        } else {
            PortCommand::Resume(ResumeMode::Continue)
        };
        loop {
            match command {
                PortCommand::Kill => {
                    return VcpuEnd {
                        fake,
                        command: Some(command),
                        detaches,
                    };
                }
                PortCommand::Detach => {
                    detaches += 1;
                    let _ = fake.resume(ResumeMode::Continue);
                }
                PortCommand::Resume(mode) => {
                    let _ = fake.resume(mode);
                }
            }
            // "run" until the guest stops or the server kicks.
            let event = loop {
                if port.stop_requested() {
                    let _ = fake.interrupt();
                }
                if let Ok(Some(event)) = fake.wait_stop(Duration::from_millis(1)) {
                    break event;
                }
            };
            match event {
                StopEvent::Exited(_) | StopEvent::Terminated(_) => {
                    port.report_end(event);
                    return VcpuEnd {
                        fake,
                        command: None,
                        detaches,
                    };
                }
                event => command = port.report_stop(event, &mut Access(&mut fake)),
            }
        }
    })
}

fn server_thread(
    sessions: usize,
) -> (
    SocketAddr,
    VcpuDebugPort,
    JoinHandle<Vec<Result<SessionEnd, GdbError>>>,
) {
    let (mut remote, port) = debug_port(Box::new(|| {}));
    let server = GdbServer::listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap_or_else(|e| panic!("listen: {e}"));
    let addr = server.local_addr();
    let handle = thread::spawn(move || {
        (0..sessions)
            .map(|_| server.serve_one(&mut remote))
            .collect()
    });
    (addr, port, handle)
}

fn join<T>(h: JoinHandle<T>) -> T {
    h.join()
        .unwrap_or_else(|_| panic!("a test thread panicked"))
}

#[test]
fn held_at_entry_debugged_through_the_port_to_the_exit() {
    let (addr, port, server) = server_thread(1);
    let vcpu = vcpu_thread(FakeTarget::new(Ending::Exit), port, true);
    let out = gdb(
        addr,
        &[
            "p/x $pc".into(),
            format!("hbreak *{FUNC:#x}"),
            "continue".into(),
            "p/x $cr3".into(),
            format!("x/s {GREETING:#x}"),
            "stepi".into(),
            "p/x $pc".into(),
            format!("set var *(long *){COUNTER:#x} = 99"),
            "delete".into(),
            format!("watch *(long *){COUNTER:#x}"),
            "continue".into(),
            "delete".into(),
            "continue".into(),
        ],
    );
    has(&out, &format!("$1 = {ENTRY:#x}"));
    has(&out, &format!("Breakpoint 1, {FUNC:#x} in ?? ()"));
    has(&out, &format!("$2 = {CR3:#x}"));
    has(&out, GREETING_TEXT);
    has(&out, &format!("$3 = {:#x}", FUNC + INSN));
    before(&out, "Old value = 99", "New value = 100");
    has(&out, "[Inferior 1 (process 1) exited with code 0144]");
    let ends = join(server);
    assert!(
        matches!(ends.as_slice(), [Ok(SessionEnd::Exited(100))]),
        "{ends:?}"
    );
    let end = join(vcpu);
    assert_eq!(end.fake.counter(), 100);
    assert_eq!(
        end.command, None,
        "the vCPU loop ended with the guest's exit"
    );
}

#[test]
fn attach_to_a_running_guest_detach_then_attach_again_and_kill() {
    let (addr, port, server) = server_thread(2);
    let vcpu = vcpu_thread(FakeTarget::new(Ending::Spin), port, false);
    // The guest runs; gdb's connection stops it wherever it is.
    thread::sleep(Duration::from_millis(50));
    let out = gdb(
        addr,
        &[
            format!("hbreak *{:#x}", ENTRY + EXIT_INDEX * INSN),
            "continue".into(),
            "p/x $pc".into(),
            "detach".into(),
        ],
    );
    has(&out, &format!("$1 = {:#x}", ENTRY + EXIT_INDEX * INSN));
    has(&out, "[Inferior 1 (process 1) detached]");
    // Detached: no breakpoints left, the guest runs on (and spins at the end).
    thread::sleep(Duration::from_millis(50));
    let out = gdb(addr, &["p/x $pc".into(), "kill".into()]);
    has(&out, &format!("$1 = {:#x}", ENTRY + EXIT_INDEX * INSN));
    let ends = join(server);
    assert!(
        matches!(
            ends.as_slice(),
            [Ok(SessionEnd::Detached), Ok(SessionEnd::Killed)]
        ),
        "{ends:?}"
    );
    let end = join(vcpu);
    assert_eq!(end.command, Some(PortCommand::Kill));
    assert_eq!(end.detaches, 1);
    assert_eq!(
        end.fake.debug,
        GuestDebug::default(),
        "detach cleared the debug state"
    );
}
