//! The PS/2 keyboard behind the i8042's first port.

use std::collections::VecDeque;

use crate::keymap::{self, ScanSet};

/// How many bytes the keyboard holds before the controller takes them.
pub const KEYBOARD_QUEUE_BYTES: usize = 64;

/// A command byte that waits for a parameter byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Leds,
    ScanSet,
    Typematic,
}

/// The keyboard: commands from the host, scan codes from key events.
#[derive(Debug)]
pub struct Keyboard {
    queue: VecDeque<u8>,
    pending: Pending,
    scanning: bool,
    set: ScanSet,
    leds: u8,
    typematic: u8,
    last_sent: u8,
    dropped: u64,
}

impl Default for Keyboard {
    fn default() -> Self {
        Self::new()
    }
}

/// Keyboard answers (before the controller's translation).
const ACK: u8 = 0xFA;
const RESEND: u8 = 0xFE;
const BAT_OK: u8 = 0xAA;
const ECHO: u8 = 0xEE;

impl Keyboard {
    /// A keyboard after power-on: scanning, set 2, LEDs off.
    pub fn new() -> Self {
        Self {
            queue: VecDeque::with_capacity(KEYBOARD_QUEUE_BYTES),
            pending: Pending::None,
            scanning: true,
            set: ScanSet::Set2,
            leds: 0,
            typematic: 0x2B,
            last_sent: 0,
            dropped: 0,
        }
    }

    /// The next byte for the controller, if any.
    pub fn pop(&mut self) -> Option<u8> {
        let byte = self.queue.pop_front()?;
        self.last_sent = byte;
        Some(byte)
    }

    /// Bytes dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The LED state last set with 0xED (bit 0 Scroll, 1 Num, 2 Caps Lock).
    pub fn leds(&self) -> u8 {
        self.leds
    }

    /// The typematic byte last set with 0xF3.
    pub fn typematic(&self) -> u8 {
        self.typematic
    }

    /// Whether the keyboard sends scan codes (0xF4 / 0xF5).
    pub fn scanning(&self) -> bool {
        self.scanning
    }

    /// The scan code set the keyboard generates (1 or 2).
    pub fn scan_set(&self) -> u8 {
        match self.set {
            ScanSet::Set1 => 1,
            ScanSet::Set2 => 2,
        }
    }

    /// Queues `bytes` as one unit: all of them or, when they do not fit, none
    /// (a key's sequence is never cut in half); returns whether they fit.
    fn push_all(&mut self, bytes: &[u8]) -> bool {
        if self.queue.len() + bytes.len() > KEYBOARD_QUEUE_BYTES {
            self.dropped = self.dropped.saturating_add(bytes.len() as u64);
            return false;
        }
        self.queue.extend(bytes.iter().copied());
        true
    }

    /// A key pressed or released; false if the key is unknown, scanning is
    /// off, or the queue is full.
    pub fn key_event(&mut self, code: &str, pressed: bool) -> bool {
        let Some(key) = keymap::lookup(code) else {
            return false;
        };
        if !self.scanning {
            return false;
        }
        let mut seq = Vec::with_capacity(8);
        keymap::sequence(key, self.set, pressed, &mut seq);
        if seq.is_empty() {
            // Pause has no break code: nothing to send is not a failure.
            return true;
        }
        self.push_all(&seq)
    }

    fn reset_state(&mut self) {
        self.scanning = true;
        self.set = ScanSet::Set2;
        self.leds = 0;
        self.typematic = 0x2B;
        self.pending = Pending::None;
    }

    /// A byte the host wrote to the keyboard (port 0x60 with no controller
    /// command waiting for it).
    pub fn write(&mut self, byte: u8) {
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        // A parameter byte; a command byte (>= 0xED) instead starts a new command.
        if pending != Pending::None && byte < 0xED {
            self.parameter(pending, byte);
            return;
        }
        match byte {
            0xED => self.ack_then(Pending::Leds),
            0xEE => {
                self.push_all(&[ECHO]);
            }
            0xF0 => self.ack_then(Pending::ScanSet),
            0xF2 => {
                self.push_all(&[ACK, 0xAB, 0x83]);
            }
            0xF3 => self.ack_then(Pending::Typematic),
            0xF4 => {
                self.queue.clear();
                self.scanning = true;
                self.push_all(&[ACK]);
            }
            0xF5 => {
                self.reset_state();
                self.scanning = false;
                self.queue.clear();
                self.push_all(&[ACK]);
            }
            0xF6 => {
                self.reset_state();
                self.queue.clear();
                self.push_all(&[ACK]);
            }
            // Set-3 key type commands: accepted, no effect in sets 1 and 2.
            0xF7..=0xFD => {
                self.push_all(&[ACK]);
            }
            0xFE => {
                let last = self.last_sent;
                self.push_all(&[last]);
            }
            0xFF => {
                self.reset_state();
                self.queue.clear();
                self.push_all(&[ACK, BAT_OK]);
            }
            _ => {
                self.push_all(&[RESEND]);
            }
        }
    }

    fn ack_then(&mut self, pending: Pending) {
        self.pending = pending;
        self.push_all(&[ACK]);
    }

    fn parameter(&mut self, pending: Pending, byte: u8) {
        match pending {
            Pending::Leds => {
                self.leds = byte & 0x07;
                self.push_all(&[ACK]);
            }
            Pending::Typematic => {
                self.typematic = byte & 0x7F;
                self.push_all(&[ACK]);
            }
            Pending::ScanSet => match byte {
                0 => {
                    let set = self.scan_set();
                    self.push_all(&[ACK, set]);
                }
                1 => {
                    self.set = ScanSet::Set1;
                    self.push_all(&[ACK]);
                }
                2 => {
                    self.set = ScanSet::Set2;
                    self.push_all(&[ACK]);
                }
                // Set 3 is not implemented: ask again, as a keyboard does for
                // a value it does not take.
                _ => {
                    self.push_all(&[RESEND]);
                }
            },
            Pending::None => {}
        }
    }
}
