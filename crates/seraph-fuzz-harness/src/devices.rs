//! The device targets: each device's register interface driven by a
//! byte-coded sequence of reads, writes, clock advances and the calls the
//! VMM makes on it, with a [`FakeClock`].
//!
//! Encoding, per operation: one opcode byte `op`; `op % 4` is
//! 0 = read, 1 = write, 2 = advance the clock, 3 = a device-specific call
//! (`op / 4` selects it). Reads and writes take a little-endian u16 offset
//! (reduced modulo the device's range, so accesses may run past its end as
//! a bus allows) and are `1 + (op / 4) % 8` bytes long; writes take their
//! data bytes next.

use std::sync::{Arc, Mutex};

use seraph_bus::BusDevice;
use seraph_clock::{Clock, FakeClock};
use seraph_lapic::Lapic;
use seraph_pic::{Chip, PicPair, PicPort};
use seraph_pit::{Pit, Port61};
use seraph_serial::Serial;

use crate::bytes::Bytes;

/// At most this many operations are decoded from one input.
const MAX_OPS: usize = 4096;
/// Serial output kept by the fuzzed UART.
const SERIAL_CAPTURE: usize = 256;

/// One decoded operation.
enum Op {
    Read {
        offset: u64,
        len: usize,
    },
    Write {
        offset: u64,
        data: [u8; 8],
        len: usize,
    },
    Advance(u64),
    Call(u8),
}

/// Decodes operations for a device with `range` bytes of registers.
fn ops<'a>(input: &'a mut Bytes<'_>, range: u64) -> impl Iterator<Item = Op> + 'a {
    let mut n = 0;
    std::iter::from_fn(move || {
        if input.is_empty() || n >= MAX_OPS {
            return None;
        }
        n += 1;
        let op = input.u8();
        let len = 1 + usize::from(op / 4) % 8;
        Some(match op % 4 {
            0 => Op::Read {
                offset: u64::from(input.u16()) % range,
                len,
            },
            1 => {
                let offset = u64::from(input.u16()) % range;
                let mut data = [0u8; 8];
                let bytes = input.take(len);
                data[..bytes.len()].copy_from_slice(bytes);
                Op::Write { offset, data, len }
            }
            2 => Op::Advance(input.duration_ns()),
            _ => Op::Call(op / 4),
        })
    })
}

/// Runs one read or write on `device`; returns false for other operations.
fn access(device: &mut dyn BusDevice, op: &Op) -> bool {
    match op {
        Op::Read { offset, len } => {
            let mut buf = [0u8; 8];
            device.read(*offset, &mut buf[..*len]);
        }
        Op::Write { offset, data, len } => device.write(*offset, &data[..*len]),
        _ => return false,
    }
    true
}

/// The local APIC page (4 KiB of registers). Calls: take and acknowledge
/// the pending vector (which must be a legal one, 16 or above), accept an
/// external interrupt, write and read IA32_APIC_BASE, and the deadline and
/// PIC-acceptance queries the VMM makes between exits.
pub fn lapic(data: &[u8]) {
    let clock = FakeClock::new();
    let mut lapic = Lapic::new(clock.clone());
    let mut input = Bytes::new(data);
    let mut args = Bytes::new(data);
    for op in ops(&mut input, seraph_lapic::spec::APIC_PAGE_SIZE) {
        if access(&mut lapic, &op) {
            continue;
        }
        match op {
            Op::Advance(ns) => clock.advance(ns),
            Op::Call(c) => match c % 6 {
                0 => {
                    if let Some(vector) = lapic.pending_vector() {
                        assert!(vector >= 16, "illegal vector {vector} delivered");
                        lapic.acknowledge(vector);
                    }
                }
                1 => lapic.accept_interrupt(args.u8()),
                2 => {
                    let _ = lapic.write_apic_base(args.u64());
                }
                3 => {
                    let base = lapic.read_apic_base();
                    assert_eq!(lapic.write_apic_base(base), Ok(()), "own value back");
                }
                4 => {
                    let _ = lapic.next_deadline_ns();
                }
                _ => {
                    let _ = lapic.accepts_pic_interrupts();
                }
            },
            _ => {}
        }
    }
}

/// The 8254 at ports 0x40-0x43 plus port 0x61 (as the VMM wires them).
/// Calls: take IRQ0 edges (after which the next deadline, if any, must lie
/// in the future), read OUT of each channel, and port 0x61 through its own
/// bus adapter.
pub fn pit(data: &[u8]) {
    let clock = FakeClock::new();
    let pit = Arc::new(Mutex::new(Pit::new(clock.clone())));
    let mut port61 = Port61::new(pit.clone());
    let mut input = Bytes::new(data);
    let mut args = Bytes::new(data);
    for op in ops(&mut input, 4) {
        let mut guard = pit.lock().unwrap_or_else(|p| p.into_inner());
        if access(&mut *guard, &op) {
            continue;
        }
        match op {
            Op::Advance(ns) => clock.advance(ns),
            Op::Call(c) => match c % 4 {
                0 => {
                    let _ = guard.take_irq0_edges();
                    if let Some(deadline) = guard.next_deadline_ns() {
                        assert!(
                            deadline > clock.now_ns() || clock.now_ns() == u64::MAX,
                            "next edge {deadline} not after now {} once edges are taken",
                            clock.now_ns()
                        );
                    }
                }
                1 => {
                    for i in 0..4 {
                        let _ = guard.out(i);
                    }
                }
                2 => {
                    drop(guard);
                    let mut b = [args.u8()];
                    port61.write(0, &b);
                    port61.read(0, &mut b);
                }
                _ => {
                    drop(guard);
                    let mut b = [0u8; 2];
                    port61.read(u64::from(args.u8() % 2), &mut b);
                }
            },
            _ => {}
        }
    }
}

/// The 8259 pair through its two bus adapters (master at 0x20, slave at
/// 0xA0; reads and writes alternate between them by offset bit 1). Calls:
/// raise an edge or set a level on an IRQ line, and acknowledge (which must
/// give a vector whenever an interrupt is reported ready).
pub fn pic(data: &[u8]) {
    let pair = Arc::new(Mutex::new(PicPair::new()));
    let mut master = PicPort::new(pair.clone(), Chip::Master);
    let mut slave = PicPort::new(pair.clone(), Chip::Slave);
    let mut input = Bytes::new(data);
    let mut args = Bytes::new(data);
    for op in ops(&mut input, 4) {
        let target: &mut dyn BusDevice = match &op {
            Op::Read { offset, .. } | Op::Write { offset, .. } if offset & 2 != 0 => &mut slave,
            _ => &mut master,
        };
        let op = match op {
            Op::Read { offset, len } => Op::Read {
                offset: offset & 1,
                len: len.min(2),
            },
            Op::Write { offset, data, len } => Op::Write {
                offset: offset & 1,
                data,
                len: len.min(2),
            },
            other => other,
        };
        if access(target, &op) {
            continue;
        }
        let mut pic = pair.lock().unwrap_or_else(|p| p.into_inner());
        if let Op::Call(c) = op {
            match c % 3 {
                0 => pic.raise_edge(args.u8() % 20),
                1 => {
                    let irq = args.u8();
                    pic.set_irq(irq % 20, irq & 0x80 != 0);
                }
                _ => {
                    let ready = pic.has_interrupt();
                    let vector = pic.acknowledge();
                    assert!(!ready || vector.is_some(), "ready but no vector");
                }
            }
        }
    }
}

/// COM1's 16550 (8 ports) writing to nowhere with a small capture. Calls:
/// queue input bytes, take the IRQ, flush. The capture never exceeds its
/// limit and the receive FIFO never reports more than its 64 bytes free.
pub fn serial(data: &[u8]) {
    let mut uart = Serial::with_writer(Box::new(std::io::sink()), SERIAL_CAPTURE);
    let mut input = Bytes::new(data);
    let mut args = Bytes::new(data);
    for op in ops(&mut input, seraph_serial::COM1_LEN) {
        if access(&mut uart, &op) {
            continue;
        }
        if let Op::Call(c) = op {
            match c % 3 {
                0 => {
                    let n = usize::from(args.u8() % 80);
                    let _ = uart.enqueue_input(args.take(n));
                }
                1 => {
                    let _ = uart.take_irq();
                }
                _ => uart.flush(),
            }
        }
        assert!(uart.captured().len() <= SERIAL_CAPTURE);
        assert!(uart.input_capacity() <= 64);
    }
}
