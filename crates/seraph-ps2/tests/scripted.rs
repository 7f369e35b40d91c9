//! The controller driven the way drivers drive it: port accesses in order.

use std::sync::{Arc, Mutex};

use seraph_bus::BusDevice;
use seraph_irq::IrqLine;
use seraph_irq::testing::RecordingSink;
use seraph_ps2::{
    COMMAND_PORT, DATA_PORT, DEFAULT_COMMAND_BYTE, I8042, I8042Port, KEYBOARD_QUEUE_BYTES, Port,
    ccb, status,
};

struct Rig {
    sink: Arc<RecordingSink>,
    kbc: I8042,
}

impl Rig {
    fn new() -> Self {
        let sink = Arc::new(RecordingSink::default());
        let kbc = I8042::new(IrqLine::new(sink.clone(), 1));
        Self { sink, kbc }
    }

    fn cmd(&mut self, c: u8) {
        self.kbc.port_write(COMMAND_PORT, c);
    }

    fn data(&mut self, d: u8) {
        self.kbc.port_write(DATA_PORT, d);
    }

    fn status(&mut self) -> u8 {
        self.kbc.port_read(COMMAND_PORT)
    }

    /// Reads every byte waiting, as a polling driver does.
    fn drain(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            if self.status() & status::OUTPUT_FULL == 0 {
                break;
            }
            out.push(self.kbc.port_read(DATA_PORT));
        }
        out
    }

    fn type_keys(&mut self, events: &[(&str, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(code, pressed) in events {
            assert!(self.kbc.key_event(code, pressed), "{code}");
            out.extend(self.drain());
        }
        out
    }
}

const HI_NEWLINE: &[(&str, bool)] = &[
    ("ShiftLeft", true),
    ("KeyH", true),
    ("KeyH", false),
    ("ShiftLeft", false),
    ("KeyI", true),
    ("KeyI", false),
    ("Enter", true),
    ("Enter", false),
];

#[test]
fn a_driver_init_sequence() {
    let mut r = Rig::new();
    // Disable the keyboard, flush, read and rewrite the command byte.
    r.cmd(0xAD);
    assert!(r.drain().is_empty());
    r.cmd(0x20);
    assert_eq!(r.drain(), [DEFAULT_COMMAND_BYTE | ccb::KBD_DISABLED]);
    let ccb = DEFAULT_COMMAND_BYTE & !(ccb::KBD_INTERRUPT | ccb::TRANSLATE);
    r.cmd(0x60);
    r.data(ccb);
    r.cmd(0x20);
    assert_eq!(r.drain(), [ccb]);
    // Self test, port test; the aux port is absent.
    r.cmd(0xAA);
    assert_eq!(r.drain(), [0x55]);
    r.cmd(0xA8);
    r.cmd(0x20);
    let now = r.drain();
    assert_eq!(now.len(), 1);
    assert_ne!(
        now[0] & ccb::AUX_DISABLED,
        0,
        "single channel: aux stays off"
    );
    r.cmd(0xAB);
    assert_eq!(r.drain(), [0x00]);
    // Enable, interrupts on, reset the keyboard, identify, set 2, LEDs, scanning.
    r.cmd(0xAE);
    r.cmd(0x60);
    r.data(ccb | ccb::KBD_INTERRUPT);
    assert_eq!(r.kbc.command_byte() & ccb::KBD_DISABLED, 0);
    r.sink.clear_events();
    r.data(0xFF);
    assert_eq!(r.drain(), [0xFA, 0xAA]);
    assert_eq!(r.sink.pulses(1), 2, "one IRQ1 edge per byte");
    r.data(0xF2);
    assert_eq!(r.drain(), [0xFA, 0xAB, 0x83]);
    r.data(0xF0);
    r.data(0x00);
    assert_eq!(r.drain(), [0xFA, 0xFA, 0x02]);
    r.data(0xED);
    r.data(0x07);
    assert_eq!(r.drain(), [0xFA, 0xFA]);
    assert_eq!(r.kbc.keyboard().leds(), 7);
    r.data(0xF3);
    r.data(0x20);
    assert_eq!(r.drain(), [0xFA, 0xFA]);
    assert_eq!(r.kbc.keyboard().typematic(), 0x20);
    r.data(0xEE);
    assert_eq!(r.drain(), [0xEE]);
    r.data(0xF5);
    assert_eq!(r.drain(), [0xFA]);
    assert!(!r.kbc.key_event("KeyA", true), "scanning off");
    r.data(0xF4);
    assert_eq!(r.drain(), [0xFA]);
    assert!(r.kbc.key_event("KeyA", true));
    assert_eq!(r.drain(), [0x1C]);
}

#[test]
fn typing_hi_newline_in_set_2_and_translated() {
    let mut r = Rig::new();
    assert_ne!(r.kbc.command_byte() & ccb::TRANSLATE, 0);
    let translated = r.type_keys(HI_NEWLINE);
    assert_eq!(translated, [0x2A, 0x23, 0xA3, 0xAA, 0x17, 0x97, 0x1C, 0x9C]);
    assert_eq!(r.sink.pulses(1), 8);

    r.cmd(0x60);
    r.data(DEFAULT_COMMAND_BYTE & !ccb::TRANSLATE);
    let raw = r.type_keys(HI_NEWLINE);
    assert_eq!(
        raw,
        [
            0x12, 0x33, 0xF0, 0x33, 0xF0, 0x12, 0x43, 0xF0, 0x43, 0x5A, 0xF0, 0x5A
        ]
    );
}

#[test]
fn extended_keys_and_the_translated_identify() {
    let mut r = Rig::new();
    let bytes = r.type_keys(&[
        ("ArrowUp", true),
        ("ArrowUp", false),
        ("ControlRight", true),
    ]);
    assert_eq!(bytes, [0xE0, 0x48, 0xE0, 0xC8, 0xE0, 0x1D]);
    r.data(0xF2);
    assert_eq!(r.drain(), [0xFA, 0xAB, 0x41]);
    // Native set 1 with translation off.
    r.cmd(0x60);
    r.data(DEFAULT_COMMAND_BYTE & !ccb::TRANSLATE);
    r.data(0xF0);
    r.data(0x01);
    assert_eq!(r.drain(), [0xFA, 0xFA]);
    assert_eq!(r.kbc.keyboard().scan_set(), 1);
    let bytes = r.type_keys(&[("Delete", true), ("Delete", false)]);
    assert_eq!(bytes, [0xE0, 0x53, 0xE0, 0xD3]);
    // Set 3 is refused.
    r.data(0xF0);
    r.data(0x03);
    assert_eq!(r.drain(), [0xFA, 0xFE]);
    assert!(!r.kbc.key_event("NoSuchKey", true));
}

#[test]
fn the_output_fifo_is_bounded_and_counts_drops() {
    let mut r = Rig::new();
    let mut accepted = 0;
    for _ in 0..(KEYBOARD_QUEUE_BYTES * 4) {
        if r.kbc.key_event("ArrowLeft", true) {
            accepted += 1;
        }
    }
    // One byte moved into the output buffer; the rest fill the queue in whole sequences.
    assert!(accepted > 0 && accepted < KEYBOARD_QUEUE_BYTES * 4);
    assert!(r.kbc.dropped() > 0);
    let bytes = r.drain();
    assert_eq!(bytes.len(), accepted * 2);
    assert!(
        bytes.chunks(2).all(|c| c == [0xE0, 0x4B]),
        "no cut sequence"
    );
    // After draining, keys flow again.
    assert!(r.kbc.key_event("KeyA", true));
    assert_eq!(r.drain(), [0x1E]);
}

#[test]
fn disabled_keyboard_holds_bytes_and_irq_follows_the_enable_bit() {
    let mut r = Rig::new();
    r.cmd(0xAD);
    assert!(r.kbc.key_event("KeyA", true));
    assert_eq!(r.status() & status::OUTPUT_FULL, 0);
    r.cmd(0xAE);
    assert_eq!(r.drain(), [0x1E]);

    r.cmd(0x60);
    r.data(DEFAULT_COMMAND_BYTE & !ccb::KBD_INTERRUPT);
    r.sink.clear_events();
    assert!(r.kbc.key_event("KeyB", true));
    assert_eq!(r.sink.pulses(1), 0);
    // Turning the interrupt on with a byte waiting is an edge.
    r.cmd(0x60);
    r.data(DEFAULT_COMMAND_BYTE);
    assert_eq!(r.sink.pulses(1), 1);
    assert_eq!(r.drain(), [0x30]);
}

#[test]
fn controller_odds_and_ends() {
    let mut r = Rig::new();
    r.cmd(0xD2);
    r.data(0x42);
    assert_eq!(r.drain(), [0x42]);
    assert_eq!(r.status() & status::COMMAND, 0);
    r.cmd(0x7F);
    assert_ne!(r.status() & status::COMMAND, 0);
    r.data(0x99);
    r.cmd(0x3F);
    assert_eq!(r.drain(), [0x99]);
    r.cmd(0xFE);
    assert_eq!(r.kbc.take_reset_requests(), 1);
    assert_eq!(r.kbc.take_reset_requests(), 0);
    r.cmd(0xD1);
    r.data(0x00);
    assert_eq!(r.kbc.take_reset_requests(), 1);
    assert!(!r.kbc.a20());
    r.cmd(0xDF);
    assert!(r.kbc.a20());
    // An empty buffer reads the last byte again.
    assert_eq!(r.kbc.port_read(DATA_PORT), 0x99);
    assert_eq!(r.kbc.port_read(0x61), 0xFF);
}

#[test]
fn bus_entries_share_one_controller() {
    let sink = Arc::new(RecordingSink::default());
    let kbc = Arc::new(Mutex::new(I8042::new(IrqLine::new(sink, 1))));
    let mut data = I8042Port {
        controller: kbc.clone(),
        port: Port::Data,
    };
    let mut command = I8042Port {
        controller: kbc,
        port: Port::Command,
    };
    command.write(0, &[0xAA]);
    let mut st = [0u8; 2];
    command.read(0, &mut st);
    assert_ne!(st[0] & status::OUTPUT_FULL, 0);
    assert_eq!(st[1], 0xFF);
    let mut b = [0u8; 1];
    data.read(0, &mut b);
    assert_eq!(b, [0x55]);
    data.read(3, &mut b);
    assert_eq!(b, [0xFF]);
    data.write(0, &[]);
}

/// A small deterministic generator (xorshift) for the garbage test.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn garbage_never_panics_and_stays_bounded() {
    let mut r = Rig::new();
    let codes = ["KeyA", "Pause", "PrintScreen", "ArrowUp", "Nope", ""];
    let mut s = 0x1234_5678_9abc_def0u64;
    for _ in 0..200_000 {
        let v = next(&mut s);
        let byte = (v >> 8) as u8;
        match v % 5 {
            0 => r.cmd(byte),
            1 => r.data(byte),
            2 => {
                r.kbc.port_read(DATA_PORT);
            }
            3 => {
                r.kbc.port_read(COMMAND_PORT);
            }
            _ => {
                let code = codes[(byte as usize) % codes.len()];
                r.kbc.key_event(code, v & 0x100 != 0);
            }
        }
        r.kbc.take_reset_requests();
    }
    // Whatever state it is in, a reset brings the keyboard back.
    r.cmd(0x60);
    r.data(DEFAULT_COMMAND_BYTE);
    r.drain();
    r.data(0xFF);
    let tail = r.drain();
    assert!(tail.ends_with(&[0xFA, 0xAA]), "{tail:x?}");
}
