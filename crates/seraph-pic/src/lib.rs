//! The PC's cascaded 8259A programmable interrupt controller pair.
//!
//! [`PicPair`] is a pure state machine: port accesses and IRQ line changes
//! go in; the INT line ([`PicPair::has_interrupt`]) and, on an INTA cycle
//! ([`PicPair::acknowledge`]), a vector come out. The slave's INT output is
//! wired to the master's IR2, as on a PC/AT. [`PicPort`] puts one chip of a
//! shared pair on a bus (offset 0 = command port, 1 = data port).
//!
//! Edge-triggered mode is the one PCs use and is complete; level-triggered
//! mode (ICW1 LTIM) is accepted: IRR then follows the input level.

#![forbid(unsafe_code)]

mod chip;
pub mod spec;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use seraph_bus::BusDevice;

use chip::Chip as Chip8259;
use spec::{
    CASCADE_IRQ, IRQ_COUNT, MASTER_COMMAND, MASTER_DATA, SLAVE_COMMAND, SLAVE_DATA, SPURIOUS_IRQ,
};

/// One chip of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chip {
    /// The master at ports 0x20-0x21 (IRQ 0-7).
    Master,
    /// The slave at ports 0xA0-0xA1 (IRQ 8-15), cascaded on the master's IR2.
    Slave,
}

impl Chip {
    /// The chip's command port (its data port is one above).
    pub fn base_port(self) -> u16 {
        match self {
            Self::Master => MASTER_COMMAND,
            Self::Slave => SLAVE_COMMAND,
        }
    }
}

/// Master and slave 8259A, cascaded on IRQ2.
#[derive(Debug, Clone)]
pub struct PicPair {
    master: Chip8259,
    slave: Chip8259,
    /// Slave INT as last seen by the master's IR2 edge detector.
    slave_int_seen: bool,
}

impl Default for PicPair {
    fn default() -> Self {
        Self::new()
    }
}

impl PicPair {
    /// Both chips as after power-up: not initialized, nothing pending.
    pub fn new() -> Self {
        Self {
            master: Chip8259::new(true),
            slave: Chip8259::new(false),
            slave_int_seen: false,
        }
    }

    /// Feeds the slave's INT output to the master's IR2. A rising INT
    /// latches IR2; it stays latched until the master acknowledges it, even
    /// if the slave's request goes away (that gives the slave's spurious
    /// IRQ15, as on real hardware).
    fn sync_cascade(&mut self) {
        let int = self.slave.pending_irq().is_some();
        if int && !self.slave_int_seen {
            self.master.latch_request(CASCADE_IRQ);
        }
        self.slave_int_seen = int;
    }

    /// Reads a PIC port (0x20, 0x21, 0xA0, 0xA1); other ports read 0xFF.
    pub fn port_read(&mut self, port: u16) -> u8 {
        let value = match port {
            MASTER_COMMAND => self.master.read(false),
            MASTER_DATA => self.master.read(true),
            SLAVE_COMMAND => self.slave.read(false),
            SLAVE_DATA => self.slave.read(true),
            _ => 0xFF,
        };
        self.sync_cascade();
        value
    }

    /// Writes a PIC port (0x20, 0x21, 0xA0, 0xA1); other ports are ignored.
    pub fn port_write(&mut self, port: u16, value: u8) {
        match port {
            MASTER_COMMAND => self.master.write(false, value),
            MASTER_DATA => self.master.write(true, value),
            SLAVE_COMMAND => self.slave.write(false, value),
            SLAVE_DATA => self.slave.write(true, value),
            _ => {}
        }
        self.sync_cascade();
    }

    /// Sets the level of IRQ line `irq` (0-15). A rising level latches a
    /// request; a falling one withdraws a request not yet acknowledged.
    /// IRQ2 is the cascade input and is ignored here; lines above 15 too.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            CASCADE_IRQ => {}
            0..8 => self.master.set_line(irq, level),
            8..IRQ_COUNT => self.slave.set_line(irq - 8, level),
            _ => {}
        }
        self.sync_cascade();
    }

    /// Latches a request on `irq` (0-15) as a pulse that lasts until it is
    /// acknowledged: what the VMM calls for each IRQ0 edge of the PIT.
    /// IRQ2 and lines above 15 are ignored.
    pub fn raise_edge(&mut self, irq: u8) {
        match irq {
            CASCADE_IRQ => {}
            0..8 => self.master.latch_request(irq),
            8..IRQ_COUNT => self.slave.latch_request(irq - 8),
            _ => {}
        }
        self.sync_cascade();
    }

    /// The master's INT line to the CPU. False until the master has been
    /// through an ICW sequence (it has no vector base before that).
    pub fn has_interrupt(&self) -> bool {
        self.master.ready() && self.master.pending_irq().is_some()
    }

    /// An INTA cycle: the vector the pair puts on the bus, with IRR moved to
    /// ISR (unless automatic EOI). If the request went away, the vector of
    /// IR7 of the chip concerned (spurious; no ISR bit set on that chip, but
    /// a slave's spurious IRQ15 still leaves IR2 in service on the master).
    /// `None` only while the master has not been initialized.
    pub fn acknowledge(&mut self) -> Option<u8> {
        if !self.master.ready() {
            return None;
        }
        let vector = match self.master.pending_irq() {
            None => self.master.vector(SPURIOUS_IRQ),
            Some(CASCADE_IRQ) => {
                self.master.acknowledge(CASCADE_IRQ);
                match self.slave.pending_irq() {
                    Some(irq) => {
                        self.slave.acknowledge(irq);
                        self.slave.vector(irq)
                    }
                    None => self.slave.vector(SPURIOUS_IRQ),
                }
            }
            Some(irq) => {
                self.master.acknowledge(irq);
                self.master.vector(irq)
            }
        };
        // The INTA cycle ends: the master's IR2 sees the slave's INT afresh.
        self.slave_int_seen = false;
        self.sync_cascade();
        Some(vector)
    }

    /// True if a request raised on `irq` (0-15) now could reach the CPU's
    /// INTR: both chips involved initialized, the line (and, for the slave,
    /// the cascade) unmasked and not blocked behind an in-service input of
    /// the same or higher priority. The VMM uses it to tell whether a timer
    /// or an input source can still wake a halted guest.
    pub fn can_deliver(&self, irq: u8) -> bool {
        match irq {
            CASCADE_IRQ => false,
            0..8 => self.master.can_deliver(irq),
            8..IRQ_COUNT => self.slave.can_deliver(irq - 8) && self.master.can_deliver(CASCADE_IRQ),
            _ => false,
        }
    }

    /// Sets `chip`'s edge/level control register (ELCR): a set bit makes
    /// that input level-triggered, as PC firmware does for PCI INTx lines.
    /// Inputs that are always edge-triggered on a PC (IRQ 0, 1, 2, 8, 13)
    /// keep their bit clear.
    pub fn set_elcr(&mut self, chip: Chip, value: u8) {
        let fixed_edge = match chip {
            Chip::Master => 0b0000_0111,
            Chip::Slave => 0b0010_0001,
        };
        let c = match chip {
            Chip::Master => &mut self.master,
            Chip::Slave => &mut self.slave,
        };
        c.elcr = value & !fixed_edge;
        self.sync_cascade();
    }

    /// `chip`'s edge/level control register.
    pub fn elcr(&self, chip: Chip) -> u8 {
        self.chip(chip).elcr
    }

    /// The interrupt request register of `chip` (what OCW3 "read IRR" shows).
    pub fn irr(&self, chip: Chip) -> u8 {
        self.chip(chip).irr
    }

    /// The in-service register of `chip`.
    pub fn isr(&self, chip: Chip) -> u8 {
        self.chip(chip).isr
    }

    /// The interrupt mask register of `chip`.
    pub fn imr(&self, chip: Chip) -> u8 {
        self.chip(chip).imr
    }

    fn chip(&self, chip: Chip) -> &Chip8259 {
        match chip {
            Chip::Master => &self.master,
            Chip::Slave => &self.slave,
        }
    }
}

/// The edge/level control registers on a port bus: offset 0 (port 0x4D0)
/// is the master's ELCR, offset 1 (0x4D1) the slave's.
#[derive(Debug, Clone)]
pub struct ElcrPort {
    pic: Arc<Mutex<PicPair>>,
}

/// The first ELCR port.
pub const ELCR_PORT: u16 = 0x4D0;

impl ElcrPort {
    /// The ELCR pair of `pic`.
    pub fn new(pic: Arc<Mutex<PicPair>>) -> Self {
        Self { pic }
    }
}

impl BusDevice for ElcrPort {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let pic = self.pic.lock().unwrap_or_else(|p| p.into_inner());
        for (i, b) in data.iter_mut().enumerate() {
            *b = match offset.checked_add(i as u64) {
                Some(0) => pic.elcr(Chip::Master),
                Some(1) => pic.elcr(Chip::Slave),
                _ => 0xFF,
            };
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pic = self.pic.lock().unwrap_or_else(|p| p.into_inner());
        for (i, &b) in data.iter().enumerate() {
            match offset.checked_add(i as u64) {
                Some(0) => pic.set_elcr(Chip::Master, b),
                Some(1) => pic.set_elcr(Chip::Slave, b),
                _ => {}
            }
        }
    }
}

/// One chip of a shared [`PicPair`] on a port bus: offset 0 is the command
/// port, offset 1 the data port. Multi-byte accesses are split into bytes.
#[derive(Debug, Clone)]
pub struct PicPort {
    /// The pair both bus entries share.
    pub pic: Arc<Mutex<PicPair>>,
    /// Which chip this entry decodes.
    pub chip: Chip,
}

impl PicPort {
    /// A bus entry for `chip` of `pic`.
    pub fn new(pic: Arc<Mutex<PicPair>>, chip: Chip) -> Self {
        Self { pic, chip }
    }

    fn port(&self, offset: u64, i: usize) -> Option<u16> {
        let offset = offset.checked_add(i as u64).filter(|&o| o < 2)?;
        u16::try_from(offset)
            .ok()
            .map(|o| self.chip.base_port() + o)
    }
}

impl BusDevice for PicPort {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let mut pic = self.pic.lock().unwrap_or_else(|p| p.into_inner());
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = self.port(offset, i).map_or(0xFF, |p| pic.port_read(p));
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pic = self.pic.lock().unwrap_or_else(|p| p.into_inner());
        for (i, &byte) in data.iter().enumerate() {
            if let Some(p) = self.port(offset, i) {
                pic.port_write(p, byte);
            }
        }
    }
}
