//! The i8042 PS/2 controller and keyboard as a pure device model.
//!
//! [`I8042`] is the controller at ports 0x60 (data) and 0x64 (status on
//! read, command on write) with a PS/2 keyboard on its first port. Key
//! events come in as browser `KeyboardEvent.code` names
//! ([`I8042::key_event`]); the keyboard makes scan code set 2 (or set 1 if a
//! driver asks for it), and the controller translates to set 1 when bit 6
//! of its command byte says so, as on a PC. Each byte that enters the
//! output buffer pulses IRQ1 when bit 0 of the command byte enables it.
//!
//! The second (aux/mouse) port is absent: this is a single-channel
//! controller (see `docs/display.md`).
//!
//! On the bus, [`I8042Port`] puts one shared controller at two one-port
//! ranges: [`Port::Data`] at 0x60 and [`Port::Command`] at 0x64 (0x61 to
//! 0x63 belong to other devices).

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use seraph_bus::BusDevice;
use seraph_irq::IrqLine;

mod keyboard;
pub mod keymap;

pub use keyboard::{KEYBOARD_QUEUE_BYTES, Keyboard};

/// The data port.
pub const DATA_PORT: u16 = 0x60;
/// The status (read) / command (write) port.
pub const COMMAND_PORT: u16 = 0x64;
/// The ISA interrupt of the keyboard.
pub const KEYBOARD_IRQ: u32 = 1;
/// How many controller answers wait before more are dropped.
pub const CONTROLLER_QUEUE_BYTES: usize = 16;

/// Command byte bits.
pub mod ccb {
    /// IRQ1 when the keyboard's byte is in the output buffer.
    pub const KBD_INTERRUPT: u8 = 1 << 0;
    /// IRQ12 for the aux port (absent here; stored only).
    pub const AUX_INTERRUPT: u8 = 1 << 1;
    /// The system flag (POST passed).
    pub const SYSTEM: u8 = 1 << 2;
    /// The keyboard clock is disabled (0xAD sets, 0xAE clears).
    pub const KBD_DISABLED: u8 = 1 << 4;
    /// The aux clock is disabled; always set on this single-channel controller.
    pub const AUX_DISABLED: u8 = 1 << 5;
    /// Translate keyboard bytes from set 2 to set 1.
    pub const TRANSLATE: u8 = 1 << 6;
}

/// Status register bits.
pub mod status {
    /// The output buffer holds a byte for the host.
    pub const OUTPUT_FULL: u8 = 1 << 0;
    /// The input buffer holds a byte for the controller (never: it is taken at once).
    pub const INPUT_FULL: u8 = 1 << 1;
    /// The system flag (command byte bit 2).
    pub const SYSTEM: u8 = 1 << 2;
    /// The last write went to the command port (1) or the data port (0).
    pub const COMMAND: u8 = 1 << 3;
    /// The keyboard is not inhibited by the key lock.
    pub const UNLOCKED: u8 = 1 << 4;
}

/// The command byte a driver finds, as firmware leaves it: keyboard
/// interrupt on, system flag, translation on, no aux.
pub const DEFAULT_COMMAND_BYTE: u8 =
    ccb::KBD_INTERRUPT | ccb::SYSTEM | ccb::AUX_DISABLED | ccb::TRANSLATE;

/// Which register of the controller a bus entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Port 0x60.
    Data,
    /// Port 0x64.
    Command,
}

/// A controller command waiting for its data byte on port 0x60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Keyboard,
    RamWrite(u8),
    OutputPort,
    KbdOutputBuffer,
    AuxDiscard,
}

/// The i8042 controller with its keyboard.
#[derive(Debug)]
pub struct I8042 {
    ram: [u8; 32],
    irq: IrqLine,
    keyboard: Keyboard,
    controller_out: VecDeque<u8>,
    output: Option<u8>,
    last_read: u8,
    expect: Expect,
    last_write_command: bool,
    translate_release: bool,
    output_port: u8,
    reset_requests: u64,
    dropped: u64,
}

impl I8042 {
    /// A controller after firmware, its keyboard interrupt on `irq` (IRQ1).
    pub fn new(irq: IrqLine) -> Self {
        let mut ram = [0; 32];
        ram[0] = DEFAULT_COMMAND_BYTE;
        Self {
            ram,
            irq,
            keyboard: Keyboard::new(),
            controller_out: VecDeque::with_capacity(CONTROLLER_QUEUE_BYTES),
            output: None,
            last_read: 0,
            expect: Expect::Keyboard,
            last_write_command: false,
            translate_release: false,
            output_port: 0x03,
            reset_requests: 0,
            dropped: 0,
        }
    }

    /// The command byte (controller RAM byte 0).
    pub fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    fn set_command_byte(&mut self, value: u8) {
        let was_enabled = self.ram[0] & ccb::KBD_INTERRUPT != 0;
        // Single channel: the aux clock stays off and its interrupt unused.
        self.ram[0] = (value | ccb::AUX_DISABLED) & !ccb::AUX_INTERRUPT;
        // Enabling the interrupt with a byte waiting raises the line: an edge.
        if !was_enabled && self.ram[0] & ccb::KBD_INTERRUPT != 0 && self.output.is_some() {
            self.irq.pulse();
        }
        self.fill();
    }

    /// The keyboard (LEDs, scan set, counters).
    pub fn keyboard(&self) -> &Keyboard {
        &self.keyboard
    }

    /// Bytes dropped because a queue was full (keyboard and controller).
    pub fn dropped(&self) -> u64 {
        self.dropped.saturating_add(self.keyboard.dropped())
    }

    /// How many times the guest asked for a CPU reset (0xFE, or 0xD1 with
    /// bit 0 clear) since the last call. The VMM may act on it or ignore it.
    pub fn take_reset_requests(&mut self) -> u64 {
        std::mem::take(&mut self.reset_requests)
    }

    /// Whether the A20 gate (output port bit 1) is on.
    pub fn a20(&self) -> bool {
        self.output_port & 0x02 != 0
    }

    /// A key pressed or released, named by its `KeyboardEvent.code`.
    ///
    /// Returns false when the key is unknown, the keyboard does not scan
    /// (0xF5), or its queue is full (the event is dropped and counted).
    pub fn key_event(&mut self, code: &str, pressed: bool) -> bool {
        let queued = self.keyboard.key_event(code, pressed);
        self.fill();
        queued
    }

    /// The status register.
    pub fn status(&self) -> u8 {
        let mut s = status::UNLOCKED;
        if self.output.is_some() {
            s |= status::OUTPUT_FULL;
        }
        if self.ram[0] & ccb::SYSTEM != 0 {
            s |= status::SYSTEM;
        }
        if self.last_write_command {
            s |= status::COMMAND;
        }
        s
    }

    /// Moves the next byte into an empty output buffer and raises IRQ1 for it.
    fn fill(&mut self) {
        if self.output.is_some() {
            return;
        }
        let byte = if let Some(b) = self.controller_out.pop_front() {
            Some(b)
        } else if self.ram[0] & ccb::KBD_DISABLED == 0 {
            self.next_keyboard_byte()
        } else {
            None
        };
        if let Some(b) = byte {
            self.output = Some(b);
            if self.ram[0] & ccb::KBD_INTERRUPT != 0 {
                self.irq.pulse();
            }
        }
    }

    /// The keyboard's next byte as the host sees it (translated if asked).
    fn next_keyboard_byte(&mut self) -> Option<u8> {
        loop {
            let raw = self.keyboard.pop()?;
            if self.ram[0] & ccb::TRANSLATE == 0 {
                return Some(raw);
            }
            if raw == 0xF0 {
                self.translate_release = true;
                continue;
            }
            let t = keymap::translate(raw);
            return Some(if std::mem::take(&mut self.translate_release) {
                t | 0x80
            } else {
                t
            });
        }
    }

    fn answer(&mut self, byte: u8) {
        if self.controller_out.len() >= CONTROLLER_QUEUE_BYTES {
            self.dropped = self.dropped.saturating_add(1);
        } else {
            self.controller_out.push_back(byte);
        }
        self.fill();
    }

    /// A read of port 0x60 (data) or 0x64 (status); other ports read 0xFF.
    pub fn port_read(&mut self, port: u16) -> u8 {
        match port {
            DATA_PORT => {
                if let Some(b) = self.output.take() {
                    self.last_read = b;
                    self.fill();
                }
                // An empty buffer reads the last byte again, as on a PC.
                self.last_read
            }
            COMMAND_PORT => self.status(),
            _ => 0xFF,
        }
    }

    /// A write of port 0x60 (data) or 0x64 (command); other ports are ignored.
    pub fn port_write(&mut self, port: u16, value: u8) {
        match port {
            DATA_PORT => {
                self.last_write_command = false;
                let expect = std::mem::replace(&mut self.expect, Expect::Keyboard);
                self.data_write(expect, value);
            }
            COMMAND_PORT => {
                self.last_write_command = true;
                self.expect = Expect::Keyboard;
                self.command(value);
            }
            _ => {}
        }
    }

    fn data_write(&mut self, expect: Expect, value: u8) {
        match expect {
            Expect::Keyboard => {
                // Talking to the keyboard enables its clock, as on a PC.
                self.ram[0] &= !ccb::KBD_DISABLED;
                self.keyboard.write(value);
                self.fill();
            }
            Expect::RamWrite(0) => self.set_command_byte(value),
            Expect::RamWrite(index) => {
                if let Some(cell) = self.ram.get_mut(usize::from(index)) {
                    *cell = value;
                }
            }
            Expect::OutputPort => {
                self.output_port = value;
                if value & 0x01 == 0 {
                    self.reset_requests = self.reset_requests.saturating_add(1);
                }
            }
            Expect::KbdOutputBuffer => self.answer(value),
            Expect::AuxDiscard => {}
        }
    }

    fn command(&mut self, value: u8) {
        match value {
            0x20..=0x3F => {
                let byte = self.ram.get(usize::from(value - 0x20)).copied();
                self.answer(byte.unwrap_or(0));
            }
            0x60..=0x7F => self.expect = Expect::RamWrite(value - 0x60),
            // Aux port: absent. Disable/enable are accepted without effect.
            0xA7 | 0xA8 => {}
            // Aux interface test: "clock line stuck high", nothing there.
            0xA9 => self.answer(0x02),
            0xAA => {
                self.ram[0] |= ccb::SYSTEM;
                self.answer(0x55);
            }
            0xAB => self.answer(0x00),
            0xAD => self.ram[0] |= ccb::KBD_DISABLED,
            0xAE => {
                self.ram[0] &= !ccb::KBD_DISABLED;
                self.fill();
            }
            // Input port: keyboard not inhibited.
            0xC0 => self.answer(0x80),
            0xD0 => {
                let mut port = self.output_port & 0x03;
                if self.output.is_some() {
                    port |= 0x10;
                }
                self.answer(port);
            }
            0xD1 => self.expect = Expect::OutputPort,
            0xD2 => self.expect = Expect::KbdOutputBuffer,
            0xD3 | 0xD4 => self.expect = Expect::AuxDiscard,
            0xDD => self.output_port &= !0x02,
            0xDF => self.output_port |= 0x02,
            0xE0 => self.answer(0x00),
            // Pulse output lines; bit 0 clear pulses the CPU reset line.
            0xF0..=0xFF if value & 0x01 == 0 => {
                self.reset_requests = self.reset_requests.saturating_add(1);
            }
            _ => {}
        }
    }
}

/// One register of a shared [`I8042`] as a bus device (a one-port range).
#[derive(Debug, Clone)]
pub struct I8042Port {
    /// The controller both ports share.
    pub controller: Arc<Mutex<I8042>>,
    /// Which register this entry is.
    pub port: Port,
}

impl I8042Port {
    fn port_number(&self) -> u16 {
        match self.port {
            Port::Data => DATA_PORT,
            Port::Command => COMMAND_PORT,
        }
    }
}

impl BusDevice for I8042Port {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xFF);
        if offset != 0 {
            return;
        }
        let port = self.port_number();
        if let Some(first) = data.first_mut() {
            let mut c = self.controller.lock().unwrap_or_else(|p| p.into_inner());
            *first = c.port_read(port);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset != 0 {
            return;
        }
        let port = self.port_number();
        if let Some(&first) = data.first() {
            let mut c = self.controller.lock().unwrap_or_else(|p| p.into_inner());
            c.port_write(port, first);
        }
    }
}
