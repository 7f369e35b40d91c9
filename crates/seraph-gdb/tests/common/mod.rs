//! A simulated one-vCPU guest for the server's tests, and helpers to run
//! a session against it.
#![allow(dead_code)] // each test binary uses part of this

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use seraph_gdb::{
    CpuState, DebugError, DebugResult, DebugTarget, GdbError, GdbServer, ResumeMode, SessionEnd,
    StopEvent, TerminateReason,
};
use seraph_hypervisor::{GuestDebug, HwBreakKind};

/// Where the "kernel" is linked (higher half, like a real one).
pub const ENTRY: u64 = 0xffff_ffff_8010_0000;
/// Every instruction is this long.
pub const INSN: u64 = 4;
/// Number of instructions in the code page.
pub const CODE_INSNS: u64 = 1024;
/// The instruction (index) that does `counter += 1` (a read and a write).
pub const BUMP_INDEX: u64 = 20;
/// The instruction (index) that calls EXIT with the counter's low byte.
pub const EXIT_INDEX: u64 = 40;
/// A function gdb can `hbreak` (instruction index 10).
pub const FUNC: u64 = ENTRY + 10 * INSN;
/// The u64 counter variable.
pub const COUNTER: u64 = 0xffff_ffff_8020_0000;
/// A NUL-terminated string.
pub const GREETING: u64 = 0xffff_ffff_8020_0100;
/// The greeting's text.
pub const GREETING_TEXT: &str = "Hello from the Seraph-V fake guest";
/// The counter's value at entry.
pub const COUNTER_START: u64 = 7;
/// Page-table root the fake reports in CR3.
pub const CR3: u64 = 0x0000_0000_0010_1000;

const PAGE: u64 = 4096;

/// How the fake program ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// EXIT with the counter's low byte at `EXIT_INDEX`.
    Exit,
    /// A triple fault at `EXIT_INDEX`.
    TripleFault,
    /// Spin forever at `EXIT_INDEX` (only Ctrl-C stops it).
    Spin,
}

/// The simulated guest.
#[derive(Debug)]
pub struct FakeTarget {
    pub state: CpuState,
    /// Physical memory.
    pub phys: Vec<u8>,
    /// Virtual page -> physical page.
    pub pages: HashMap<u64, u64>,
    pub debug: GuestDebug,
    pub ending: Ending,
    running: Option<ResumeMode>,
    first_after_resume: bool,
    interrupt_requested: bool,
    dead: bool,
    // What the server did, for the tests to check.
    pub attached: bool,
    pub detached: bool,
    pub killed: bool,
    pub resumes: usize,
    pub instructions: u64,
    /// Set on every resume: a test thread can see that gdb let the guest run.
    pub resumed: Arc<AtomicBool>,
}

impl FakeTarget {
    /// A guest stopped at its entry point.
    pub fn new(ending: Ending) -> FakeTarget {
        let mut state = CpuState::default();
        state.regs.rip = ENTRY;
        state.regs.rsp = 0xffff_ffff_8030_0000;
        state.regs.rflags = 0x2;
        state.sregs.cs.selector = 0x08;
        state.sregs.ss.selector = 0x10;
        state.sregs.ds.selector = 0x10;
        state.sregs.es.selector = 0x10;
        state.sregs.fs.base = 0x1234_5678;
        state.sregs.gs.base = 0xffff_8000_0000_1000;
        state.sregs.cr0 = 0x8000_0011; // PG | ET | PE
        state.sregs.cr3 = CR3;
        state.sregs.cr4 = 0x20; // PAE
        state.sregs.efer = 0xd01; // NXE | LMA | LME | SCE
        let mut pages = HashMap::new();
        pages.insert(ENTRY, 0x1000); // code
        pages.insert(COUNTER, 0x2000); // data: counter and greeting
        pages.insert(COUNTER + PAGE, 0x3000); // the next data page
        let mut fake = FakeTarget {
            state,
            phys: vec![0; 0x4000],
            pages,
            debug: GuestDebug::default(),
            ending,
            running: None,
            first_after_resume: false,
            interrupt_requested: false,
            dead: false,
            attached: false,
            detached: false,
            killed: false,
            resumes: 0,
            instructions: 0,
            resumed: Arc::new(AtomicBool::new(false)),
        };
        let _ = fake.write_memory(COUNTER, &COUNTER_START.to_le_bytes());
        let mut text = GREETING_TEXT.as_bytes().to_vec();
        text.push(0);
        let _ = fake.write_memory(GREETING, &text);
        fake
    }

    fn phys_of(&self, virt: u64) -> Option<usize> {
        let page = self.pages.get(&(virt & !(PAGE - 1)))?;
        usize::try_from(page + (virt & (PAGE - 1))).ok()
    }

    /// The counter variable's value.
    pub fn counter(&self) -> u64 {
        let mut b = [0u8; 8];
        let _ = self.peek(COUNTER, &mut b);
        u64::from_le_bytes(b)
    }

    fn peek(&self, addr: u64, buf: &mut [u8]) -> DebugResult<()> {
        for (i, out) in buf.iter_mut().enumerate() {
            let virt = addr.wrapping_add(i as u64);
            let p = self
                .phys_of(virt)
                .ok_or(DebugError::Unmapped { addr: virt })?;
            *out = *self
                .phys
                .get(p)
                .ok_or(DebugError::Unmapped { addr: virt })?;
        }
        Ok(())
    }

    fn watch_hit(&self, addr: u64, len: u64, write: bool) -> Option<StopEvent> {
        self.debug.hw.iter().flatten().find_map(|bp| {
            let kind_hits = match bp.kind {
                HwBreakKind::Write => write,
                HwBreakKind::ReadWrite => true,
                HwBreakKind::Execute => false,
            };
            let overlaps = bp.addr < addr + len && addr < bp.addr + u64::from(bp.len);
            (kind_hits && overlaps).then_some(StopEvent::Watchpoint {
                addr: bp.addr,
                kind: bp.kind,
            })
        })
    }

    /// Executes one instruction, or stops before it; `Some` if the guest stops.
    fn tick(&mut self) -> Option<StopEvent> {
        let rip = self.state.regs.rip;
        if !self.first_after_resume
            && self.debug.enabled
            && self
                .debug
                .hw
                .iter()
                .flatten()
                .any(|bp| bp.kind == HwBreakKind::Execute && bp.addr == rip)
        {
            return Some(StopEvent::Breakpoint);
        }
        self.first_after_resume = false;
        let index = rip.wrapping_sub(ENTRY) / INSN;
        if self.phys_of(rip).is_none() || rip % INSN != 0 {
            self.dead = true;
            return Some(StopEvent::Terminated(TerminateReason::TripleFault));
        }
        self.instructions += 1;
        let mut event = None;
        match index {
            BUMP_INDEX => {
                let value = self.counter().wrapping_add(1);
                let _ = self.write_memory(COUNTER, &value.to_le_bytes());
                if self.debug.enabled {
                    event = self.watch_hit(COUNTER, 8, true);
                }
            }
            EXIT_INDEX => match self.ending {
                Ending::Exit => {
                    self.dead = true;
                    return Some(StopEvent::Exited(self.counter() as u8));
                }
                Ending::TripleFault => {
                    self.dead = true;
                    return Some(StopEvent::Terminated(TerminateReason::TripleFault));
                }
                Ending::Spin => {} // jmp $: RIP stays
            },
            _ => {}
        }
        if !(index == EXIT_INDEX && self.ending == Ending::Spin) {
            self.state.regs.rax = self.state.regs.rax.wrapping_add(1);
            self.state.regs.rip = rip.wrapping_add(INSN);
        }
        if event.is_none() && self.running == Some(ResumeMode::Step) {
            event = Some(StopEvent::Step);
        }
        event
    }
}

impl DebugTarget for FakeTarget {
    fn attach(&mut self) -> DebugResult<()> {
        if self.dead {
            return Err(DebugError::Gone);
        }
        self.attached = true;
        self.running = None;
        Ok(())
    }

    fn read_registers(&mut self) -> DebugResult<CpuState> {
        Ok(self.state)
    }

    fn write_registers(&mut self, state: &CpuState) -> DebugResult<()> {
        self.state = *state;
        Ok(())
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> DebugResult<()> {
        self.peek(addr, buf)
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> DebugResult<()> {
        for (i, b) in data.iter().enumerate() {
            let virt = addr.wrapping_add(i as u64);
            let p = self
                .phys_of(virt)
                .ok_or(DebugError::Unmapped { addr: virt })?;
            let slot = self
                .phys
                .get_mut(p)
                .ok_or(DebugError::Unmapped { addr: virt })?;
            *slot = *b;
        }
        Ok(())
    }

    fn set_guest_debug(&mut self, debug: &GuestDebug) -> DebugResult<()> {
        self.debug = *debug;
        Ok(())
    }

    fn resume(&mut self, mode: ResumeMode) -> DebugResult<()> {
        if self.dead {
            return Err(DebugError::Gone);
        }
        self.resumes += 1;
        self.resumed.store(true, Ordering::SeqCst);
        self.running = Some(mode);
        self.first_after_resume = true;
        Ok(())
    }

    fn interrupt(&mut self) -> DebugResult<()> {
        self.interrupt_requested = true;
        Ok(())
    }

    fn wait_stop(&mut self, timeout: Duration) -> DebugResult<Option<StopEvent>> {
        if self.running.is_none() {
            thread::sleep(timeout);
            return Ok(None);
        }
        // A slice of guest time: a few instructions, like a real vCPU.
        for _ in 0..8 {
            if self.interrupt_requested {
                self.interrupt_requested = false;
                self.running = None;
                return Ok(Some(StopEvent::Interrupted));
            }
            if let Some(event) = self.tick() {
                self.running = None;
                return Ok(Some(event));
            }
        }
        thread::sleep(Duration::from_millis(1));
        Ok(None)
    }

    fn kill(&mut self) {
        self.killed = true;
        self.dead = true;
    }

    fn detach(&mut self) {
        self.detached = true;
        self.debug = GuestDebug::default();
        self.running = Some(ResumeMode::Continue);
    }
}

/// The server thread: it hands the fake back with the session's end.
pub type ServerThread = JoinHandle<(FakeTarget, Result<SessionEnd, GdbError>)>;

/// A server on a free loopback port serving one client against `fake`.
pub fn start(fake: FakeTarget) -> (SocketAddr, ServerThread) {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = match GdbServer::listen(loopback) {
        Ok(s) => s,
        Err(e) => panic!("cannot listen on loopback: {e}"),
    };
    let addr = server.local_addr();
    let handle = thread::spawn(move || {
        let mut fake = fake;
        let end = server.serve_one(&mut fake);
        (fake, end)
    });
    (addr, handle)
}

/// Waits for the server thread; fails the test if it panicked.
pub fn finish(handle: ServerThread) -> (FakeTarget, Result<SessionEnd, GdbError>) {
    match handle.join() {
        Ok(v) => v,
        Err(_) => panic!("the gdb server thread panicked"),
    }
}

/// Connects to `addr` with a read timeout, so a silent server fails the test.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_nodelay(true);
    s
}

/// Longest a batch gdb session may take.
pub const GDB_TIMEOUT_SECS: u32 = 60;

/// Runs `gdb -batch` with `commands` after connecting to `addr`; returns
/// stdout and stderr together (gdb prints a target's console output and
/// warnings on stderr).
pub fn gdb(addr: SocketAddr, commands: &[String]) -> String {
    gdb_with_file(addr, None, commands)
}

/// [`gdb`], with an ELF file for symbols.
pub fn gdb_with_file(addr: SocketAddr, elf: Option<&Path>, commands: &[String]) -> String {
    let mut args: Vec<String> = ["-batch", "-nx"].map(String::from).to_vec();
    if let Some(elf) = elf {
        args.push(elf.display().to_string());
    }
    for c in [
        "set pagination off".to_string(),
        "set confirm off".to_string(),
        "set architecture i386:x86-64".to_string(),
        format!("target remote {addr}"),
    ]
    .iter()
    .chain(commands)
    {
        args.push("-ex".into());
        args.push(c.clone());
    }
    // coreutils' timeout: a session that hangs fails the test instead of CI.
    let out = Command::new("timeout")
        .arg(GDB_TIMEOUT_SECS.to_string())
        .arg("gdb")
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `timeout gdb`: {e}"));
    match out.status.code() {
        Some(127) => panic!(
            "gdb is not installed (Debian package `gdb`): this test needs it and does not skip"
        ),
        Some(124) => panic!(
            "gdb did not finish within {GDB_TIMEOUT_SECS}s: {}",
            String::from_utf8_lossy(&out.stdout)
        ),
        _ => {}
    }
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("--- gdb output ---\n{text}\n---");
    text
}

pub fn has(output: &str, needle: &str) {
    assert!(output.contains(needle), "gdb output lacks {needle:?}");
}

/// Checks that `first` appears before `second`.
pub fn before(output: &str, first: &str, second: &str) {
    let a = output.find(first);
    let b = output.find(second);
    assert!(
        matches!((a, b), (Some(a), Some(b)) if a < b),
        "{first:?} should come before {second:?}"
    );
}
