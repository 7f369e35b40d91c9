//! Protocol-level tests: a raw TCP client speaks the GDB remote protocol
//! (checksums, acks) to the server driving the fake guest, including
//! garbage, bad checksums, huge reads, unmapped memory and disconnects.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use seraph_gdb::SessionEnd;

/// A minimal gdb client.
struct Client {
    s: TcpStream,
}

fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

fn framed(body: &str) -> Vec<u8> {
    format!("${body}#{:02x}", checksum(body.as_bytes())).into_bytes()
}

/// Undoes gdbstub's run-length encoding (`X*N`: N - 29 more copies of X).
fn unrle(body: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        if b == b'*' {
            let n = body.get(i + 1).copied().unwrap_or(29).saturating_sub(29);
            let last = out.last().copied().unwrap_or(b'?');
            out.extend(std::iter::repeat_n(last, usize::from(n)));
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn le_hex(value: u64, bytes: usize) -> String {
    value.to_le_bytes()[..bytes]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Client {
    fn new(addr: std::net::SocketAddr) -> Client {
        Client { s: connect(addr) }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.s
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write: {e}"));
    }

    fn byte(&mut self) -> u8 {
        let mut b = [0u8];
        self.s
            .read_exact(&mut b)
            .unwrap_or_else(|e| panic!("read: {e}"));
        b[0]
    }

    /// Reads one packet (skipping acks), checks its checksum and acks it.
    fn packet(&mut self) -> String {
        while self.byte() != b'$' {}
        let mut body = Vec::new();
        loop {
            match self.byte() {
                b'#' => break,
                b => body.push(b),
            }
        }
        let sum = [self.byte(), self.byte()];
        let sum = std::str::from_utf8(&sum)
            .ok()
            .and_then(|s| u8::from_str_radix(s, 16).ok())
            .unwrap_or_else(|| panic!("bad checksum digits {sum:?}"));
        assert_eq!(sum, checksum(&body), "reply checksum");
        self.raw(b"+");
        unrle(&body)
    }

    /// Sends a packet, expects the ack, returns the reply.
    fn cmd(&mut self, body: &str) -> String {
        self.raw(&framed(body));
        assert_eq!(self.byte(), b'+', "ack for {body}");
        self.packet()
    }
}

/// Bytes of the `g` packet (see src/arch.rs).
const G_BYTES: usize = 16 * 8 + 8 + 4 + 6 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 2 * 8 + 6 * 8;

#[test]
fn registers_including_system_registers() {
    let (addr, server) = start(FakeTarget::new(Ending::Exit));
    let mut c = Client::new(addr);
    let g = c.cmd("g");
    assert_eq!(g.len(), 2 * G_BYTES);
    assert_eq!(&g[256..272], le_hex(ENTRY, 8), "rip");
    assert_eq!(&g[272..280], "02000000", "eflags");
    assert_eq!(&g[280..288], "08000000", "cs");
    assert!(g[328..].starts_with(&"x".repeat(20)), "st0 is unavailable");
    assert_eq!(c.cmd("p3d"), le_hex(CR3, 8), "cr3 (61)");
    assert_eq!(c.cmd("p40"), le_hex(0xd01, 8), "efer (64)");
    assert_eq!(c.cmd("p39"), le_hex(0x1234_5678, 8), "fs_base (57)");
    assert_eq!(c.cmd("p3b"), le_hex(0x8000_0011, 8), "cr0 (59)");
    assert_eq!(c.cmd("p18"), "x".repeat(20), "st0 (24)");
    assert_eq!(c.cmd("p99"), "", "no such register");
    // Writes: rax, rip, cr3; a changed selector and an x87 register are refused.
    assert_eq!(c.cmd("P0=2a00000000000000"), "OK");
    assert_eq!(c.cmd("p0"), le_hex(42, 8));
    assert_eq!(c.cmd(&format!("P10={}", le_hex(FUNC, 8))), "OK");
    assert_eq!(c.cmd("P3d=0020100000000000"), "OK");
    assert_eq!(c.cmd("P12=18000000"), "E16");
    assert_eq!(c.cmd("P12=08000000"), "OK");
    assert_eq!(c.cmd("P18=00000000000000000000"), "E16");
    assert_eq!(c.cmd("P0=2a"), "E16", "short value");
    // G writes everything back (unavailable registers as xx) ...
    let g = c.cmd("g");
    let g2 = format!("{}{}{}", &g[..16], le_hex(99, 8), &g[32..]);
    assert_eq!(c.cmd(&format!("G{g2}")), "OK");
    assert_eq!(c.cmd("p1"), le_hex(99, 8), "rbx");
    // ... but not a different CS, nor a packet of the wrong size.
    let bad = format!("{}18000000{}", &g[..280], &g[288..]);
    assert_eq!(c.cmd(&format!("G{bad}")), "E16");
    assert_eq!(c.cmd(&format!("G{}", &g[2..])), "E16");
    assert_eq!(c.cmd("D"), "OK");
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Detached);
    assert_eq!(fake.state.regs.rip, FUNC);
    assert_eq!(fake.state.sregs.cr3, 0x10_2000);
    assert!(fake.detached);
}

#[test]
fn memory_reads_writes_and_faults() {
    let (addr, server) = start(FakeTarget::new(Ending::Exit));
    let mut c = Client::new(addr);
    let text: String = GREETING_TEXT.bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        c.cmd(&format!("m{GREETING:x},{:x}", GREETING_TEXT.len())),
        text
    );
    assert_eq!(c.cmd(&format!("m{COUNTER:x},8")), le_hex(COUNTER_START, 8));
    // Huge reads are clamped to 2000 bytes.
    assert_eq!(c.cmd(&format!("m{COUNTER:x},ffffffff")).len(), 4000);
    assert_eq!(
        c.cmd(&format!("m{COUNTER:x},ffffffffffffffffffffffff"))
            .len(),
        4000
    );
    // A read running into an unmapped page stops there.
    let edge = COUNTER + 2 * 4096 - 4;
    assert_eq!(c.cmd(&format!("m{edge:x},100")).len(), 8);
    // Unmapped addresses are errors (EFAULT), including the top of memory.
    assert_eq!(c.cmd("m0,10"), "E0e");
    assert_eq!(c.cmd("mffffffffffffffff,10"), "E0e");
    assert_eq!(c.cmd("M1000,2:4142"), "E0e");
    assert_eq!(c.cmd("X1000,2:AB"), "E0e");
    // Writes land.
    assert_eq!(c.cmd(&format!("M{COUNTER:x},8:2a00000000000000")), "OK");
    assert_eq!(c.cmd(&format!("m{COUNTER:x},8")), le_hex(42, 8));
    // Malformed memory packets get EINVAL, and the session goes on.
    for bad in [
        "m",
        "m1000",
        "m1000,",
        "mzz,1",
        "m11112222333344445,1",
        "M1000,2:41",
        "M1000:41",
    ] {
        assert_eq!(c.cmd(bad), "E16", "{bad}");
    }
    // Kill has no reply: the server acks it and closes the connection.
    c.raw(&framed("k"));
    assert_eq!(c.byte(), b'+');
    let mut rest = Vec::new();
    let _ = c.s.read_to_end(&mut rest);
    assert!(rest.iter().all(|&b| b == b'+'), "{rest:?}");
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Killed);
    assert!(fake.killed);
    assert_eq!(fake.counter(), 42);
}

#[test]
fn garbage_and_bad_checksums_get_naks_and_errors() {
    let (addr, server) = start(FakeTarget::new(Ending::Exit));
    let mut c = Client::new(addr);
    c.raw(b"hello\x00\xff\r\n+-+");
    c.raw(b"$g#00");
    assert_eq!(c.byte(), b'-', "bad checksum is NAKed");
    c.raw(b"$g#zz");
    assert_eq!(c.byte(), b'-');
    // A packet larger than the buffer is refused whole.
    let big = format!("M{COUNTER:x},1000:{}", "00".repeat(0x1000));
    assert_eq!(c.cmd(&big), "E16");
    // Breakpoint packets with bad fields.
    for bad in ["Z9,1000,1", "Z0,1000", "Z1,111112222333344445,1", "zz"] {
        assert_eq!(c.cmd(bad), "E16", "{bad}");
    }
    // Unknown packets get the empty reply.
    assert_eq!(c.cmd("qSeraphNoSuchThing"), "");
    assert_eq!(c.cmd("vMustReplyEmpty"), "");
    // Still alive and consistent.
    assert_eq!(c.cmd(&format!("m{COUNTER:x},8")), le_hex(COUNTER_START, 8));
    // A disconnect in the middle of a packet: the guest is let go.
    c.raw(b"$m1000,");
    drop(c);
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::ClientGone);
    assert!(fake.detached);
}

#[test]
fn random_packets_get_replies_and_never_end_the_session() {
    let (addr, server) = start(FakeTarget::new(Ending::Spin));
    let mut c = Client::new(addr);
    // A fixed xorshift sequence: reproducible "fuzzing".
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let heads = [
        "m", "M", "g", "G", "p", "P", "Z", "z", "X", "q", "H", "T", "?", "Q",
    ];
    let alphabet = b"0123456789abcdefxX,:;=#$}*-+ghijk\x03";
    let mut survived = true;
    for _ in 0..400 {
        let head = heads[(next() % heads.len() as u64) as usize];
        let len = (next() % 40) as usize;
        let tail: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .filter(|b| !matches!(b, b'#' | b'$' | 0x03))
            .collect();
        let body = format!("{head}{}", String::from_utf8_lossy(&tail));
        if c.s.write_all(&framed(&body)).is_err() {
            survived = false;
            break;
        }
        // Every packet gets an ack and a reply, or the session ended.
        let mut b = [0u8];
        match c.s.read(&mut b) {
            Ok(1) if b[0] == b'+' => {
                let _ = c.packet();
            }
            _ => {
                survived = false;
                break;
            }
        }
    }
    // Every malformed packet got an error reply and the session went on.
    assert!(survived, "the session ended on a random packet");
    assert_eq!(c.cmd("D"), "OK");
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Detached);
    assert!(fake.detached);
}

#[test]
fn breakpoints_use_four_hardware_slots() {
    let (addr, server) = start(FakeTarget::new(Ending::Exit));
    let mut c = Client::new(addr);
    for i in 0..3 {
        assert_eq!(c.cmd(&format!("Z1,{:x},1", FUNC + 4 * i)), "OK");
    }
    // `break` takes the last free slot; then nothing is left for hbreak or
    // watch, and a fifth `break` is accepted but keeps the guest from running.
    assert_eq!(c.cmd(&format!("Z0,{:x},1", FUNC + 12)), "OK");
    assert!(c.cmd(&format!("Z1,{:x},1", FUNC + 16)).starts_with('E'));
    assert!(c.cmd(&format!("Z2,{COUNTER:x},8")).starts_with('E'));
    assert_eq!(c.cmd(&format!("Z0,{:x},1", FUNC + 16)), "OK");
    c.raw(&framed("c"));
    assert_eq!(c.byte(), b'+');
    let console = c.packet();
    let text: Vec<u8> = (1..console.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(console.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8_lossy(&text);
    assert!(console.starts_with('O'), "{console}");
    assert!(
        text.contains("no free hardware slot") && text.contains("hbreak"),
        "{text}"
    );
    let stop = c.packet();
    assert!(stop.starts_with("S00") || stop.starts_with("T00"), "{stop}");
    assert_eq!(c.cmd("p10"), le_hex(ENTRY, 8), "the guest did not run");
    assert_eq!(c.cmd(&format!("z0,{:x},1", FUNC + 16)), "OK");
    for i in 0..3 {
        assert_eq!(c.cmd(&format!("z1,{:x},1", FUNC + 4 * i)), "OK");
    }
    // rwatch cannot be done with x86 debug registers.
    assert!(c.cmd(&format!("Z3,{COUNTER:x},8")).starts_with('E'));
    // The software breakpoint (in a hardware slot) stops the guest.
    let stop = c.cmd("c");
    assert!(
        stop.starts_with("T05") && stop.contains("swbreak"),
        "{stop}"
    );
    assert_eq!(c.cmd("p10"), le_hex(FUNC + 12, 8));
    assert_eq!(c.cmd(&format!("z0,{:x},1", FUNC + 12)), "OK");
    // Single-step moves one instruction.
    let stop = c.cmd("s");
    assert!(stop.starts_with("T05") || stop.starts_with("S05"), "{stop}");
    assert_eq!(c.cmd("p10"), le_hex(FUNC + 16, 8));
    // A hardware breakpoint, then a write watchpoint on the counter.
    assert_eq!(c.cmd(&format!("Z1,{:x},1", ENTRY + 18 * INSN)), "OK");
    let stop = c.cmd("c");
    assert!(stop.contains("hwbreak"), "{stop}");
    assert_eq!(c.cmd(&format!("Z2,{COUNTER:x},8")), "OK");
    let stop = c.cmd("c");
    assert!(stop.contains(&format!("watch:{COUNTER:x}")), "{stop}");
    assert_eq!(c.cmd("p10"), le_hex(ENTRY + (BUMP_INDEX + 1) * INSN, 8));
    // Continue to the guest's EXIT: W with the counter's value.
    assert_eq!(c.cmd(&format!("z2,{COUNTER:x},8")), "OK");
    assert_eq!(c.cmd("c"), format!("W{:02x}", COUNTER_START + 1));
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Exited(COUNTER_START as u8 + 1));
    assert!(!fake.detached && !fake.killed);
}

#[test]
fn a_triple_fault_is_reported_as_a_signal_exit() {
    let (addr, server) = start(FakeTarget::new(Ending::TripleFault));
    let mut c = Client::new(addr);
    assert_eq!(c.cmd("c"), "X0b");
    let (_, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Terminated(11));
}

#[test]
fn ctrl_c_stops_a_running_guest_and_detach_lets_it_go() {
    let (addr, server) = start(FakeTarget::new(Ending::Spin));
    let mut c = Client::new(addr);
    c.raw(&framed("c"));
    assert_eq!(c.byte(), b'+');
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.raw(b"\x03");
    let stop = c.packet();
    assert!(stop.starts_with("T02") || stop.starts_with("S02"), "{stop}");
    assert_eq!(
        c.cmd("p10"),
        le_hex(ENTRY + EXIT_INDEX * INSN, 8),
        "spinning at the end"
    );
    assert_eq!(c.cmd("D"), "OK");
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Detached);
    assert!(fake.detached && fake.resumes == 1);
}

#[test]
fn a_client_vanishing_while_the_guest_runs_detaches_it() {
    let (addr, server) = start(FakeTarget::new(Ending::Spin));
    let mut c = Client::new(addr);
    assert_eq!(c.cmd(&format!("Z1,{FUNC:x},1")), "OK");
    c.raw(&framed("c"));
    assert_eq!(c.byte(), b'+');
    assert!(c.packet().contains("hwbreak"));
    c.raw(&framed("c"));
    drop(c);
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::ClientGone);
    assert!(fake.detached);
    assert_eq!(fake.debug, Default::default(), "debug state cleared");
}

#[test]
fn target_description_is_served_whole_in_chunks() {
    let (addr, server) = start(FakeTarget::new(Ending::Exit));
    let mut c = Client::new(addr);
    let features = c.cmd("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386");
    assert!(features.contains("PacketSize=1000"), "{features}");
    assert!(features.contains("qXfer:features:read+"), "{features}");
    // Read target.xml with a huge length: each reply fits the packet size.
    let mut xml = String::new();
    loop {
        let reply = c.cmd(&format!(
            "qXfer:features:read:target.xml:{:x},ffffffff",
            xml.len()
        ));
        assert!(reply.len() <= 4096, "reply of {} bytes", reply.len());
        let (kind, data) = reply.split_at(1);
        xml.push_str(data);
        match kind {
            "m" => continue,
            "l" => break,
            other => panic!("unexpected qXfer reply {other}{data}"),
        }
    }
    assert_eq!(xml, seraph_gdb::arch::TARGET_XML.trim());
    assert!(xml.contains(r#"<reg name="cr3""#));
    // Past the end, and an unknown annex.
    assert_eq!(
        c.cmd(&format!(
            "qXfer:features:read:target.xml:{:x},10",
            xml.len() + 100
        )),
        "l"
    );
    assert!(
        c.cmd("qXfer:features:read:nosuch.xml:0,10")
            .starts_with('E')
    );
    assert_eq!(c.cmd("D"), "OK");
    let (_, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Detached);
}
