//! One 8259A: registers, initialization sequence, priority resolution.

use crate::spec::{
    ICW1_IC4, ICW1_INIT, ICW1_LEVEL, ICW1_SINGLE, ICW2_VECTOR_MASK, ICW4_AUTO_EOI, ICW4_SFNM,
    OCW2_CLEAR_ROTATE_AEOI, OCW2_EOI, OCW2_ROTATE_EOI, OCW2_ROTATE_SPECIFIC_EOI, OCW2_SET_PRIORITY,
    OCW2_SET_ROTATE_AEOI, OCW2_SPECIFIC_EOI, OCW3_ESMM, OCW3_POLL, OCW3_READ_ISR,
    OCW3_READ_REGISTER, OCW3_SELECT, OCW3_SMM, POLL_INTERRUPT,
};

/// Which initialization word the chip expects next on its data port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A programmable interrupt controller.
#[derive(Debug, Clone)]
pub(crate) struct Chip {
    pub(crate) irr: u8,
    pub(crate) isr: u8,
    pub(crate) imr: u8,
    /// Input levels, for edge detection.
    lines: u8,
    level_mode: bool,
    /// Edge/level control (the PC's ELCR at 0x4D0/0x4D1): inputs set here
    /// are level-triggered whatever ICW1 says.
    pub(crate) elcr: u8,
    init: Init,
    icw4_needed: bool,
    single: bool,
    /// Completed an initialization sequence at least once.
    initialized: bool,
    vector_base: u8,
    icw3: u8,
    auto_eoi: bool,
    rotate_on_auto_eoi: bool,
    special_fully_nested: bool,
    /// The input that currently has the highest priority (0 unless rotated).
    highest_priority: u8,
    read_isr: bool,
    poll: bool,
    special_mask: bool,
    /// The master lets its cascade input be nested in special fully nested mode.
    is_master: bool,
}

fn bit(irq: u8) -> u8 {
    1 << (irq & 7)
}

impl Chip {
    pub(crate) fn new(is_master: bool) -> Self {
        Self {
            irr: 0,
            isr: 0,
            imr: 0,
            lines: 0,
            level_mode: false,
            elcr: 0,
            init: Init::Ready,
            icw4_needed: false,
            single: false,
            initialized: false,
            vector_base: 0,
            icw3: 0,
            auto_eoi: false,
            rotate_on_auto_eoi: false,
            special_fully_nested: false,
            highest_priority: 0,
            read_isr: false,
            poll: false,
            special_mask: false,
            is_master,
        }
    }

    /// True if input `b` (a bit mask) is level-triggered (ICW1 LTIM or ELCR).
    fn is_level(&self, b: u8) -> bool {
        self.level_mode || self.elcr & b != 0
    }

    /// True once an ICW sequence has completed and none is under way.
    pub(crate) fn ready(&self) -> bool {
        self.initialized && self.init == Init::Ready
    }

    pub(crate) fn vector(&self, irq: u8) -> u8 {
        self.vector_base | (irq & 7)
    }

    /// An input line changed level.
    pub(crate) fn set_line(&mut self, irq: u8, level: bool) {
        let b = bit(irq);
        if level {
            if self.is_level(b) || self.lines & b == 0 {
                self.irr |= b;
            }
            self.lines |= b;
        } else {
            // A request that goes away before INTA is lost (edge and level mode).
            self.irr &= !b;
            self.lines &= !b;
        }
    }

    /// A request pulse latched in IRR (an edge that lasts until acknowledged).
    pub(crate) fn latch_request(&mut self, irq: u8) {
        self.irr |= bit(irq);
    }

    /// Priority rank (0 = highest) of the best input set in `mask`.
    fn best_rank(&self, mask: u8) -> Option<u8> {
        (0..8).find(|rank| mask & bit(rank + self.highest_priority) != 0)
    }

    fn irq_of_rank(&self, rank: u8) -> u8 {
        (rank + self.highest_priority) & 7
    }

    /// The input this chip would deliver now, if any (drives its INT output).
    pub(crate) fn pending_irq(&self) -> Option<u8> {
        let request = self.best_rank(self.irr & !self.imr)?;
        let mut in_service = self.isr;
        if self.special_mask {
            in_service &= !self.imr;
        }
        if self.special_fully_nested && self.is_master {
            in_service &= !self.icw3;
        }
        let current = self.best_rank(in_service).unwrap_or(8);
        (request < current).then(|| self.irq_of_rank(request))
    }

    /// True if a new request on input `irq` could reach this chip's INT
    /// output: the chip is initialized, the input unmasked, and no input
    /// of the same or higher priority is in service (an in-service vector
    /// that is never EOI'd blocks it for good).
    pub(crate) fn can_deliver(&self, irq: u8) -> bool {
        if !self.ready() || self.imr & bit(irq) != 0 {
            return false;
        }
        let mut in_service = self.isr;
        if self.special_mask {
            in_service &= !self.imr;
        }
        if self.special_fully_nested && self.is_master {
            in_service &= !self.icw3;
        }
        let rank = (irq.wrapping_sub(self.highest_priority)) & 7;
        self.best_rank(in_service)
            .is_none_or(|current| rank < current)
    }

    /// INTA for `irq`: IRR to ISR (unless automatic EOI).
    pub(crate) fn acknowledge(&mut self, irq: u8) {
        let b = bit(irq);
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.highest_priority = (irq + 1) & 7;
            }
        } else {
            self.isr |= b;
        }
        self.irr &= !b;
        if self.is_level(b) && self.lines & b != 0 {
            self.irr |= b;
        }
    }

    fn highest_in_service(&self) -> Option<u8> {
        self.best_rank(self.isr).map(|r| self.irq_of_rank(r))
    }

    /// A byte read from the command (0) or data (1) port.
    pub(crate) fn read(&mut self, data_port: bool) -> u8 {
        if self.poll {
            self.poll = false;
            return match self.pending_irq() {
                Some(irq) => {
                    self.acknowledge(irq);
                    POLL_INTERRUPT | irq
                }
                None => 0,
            };
        }
        if data_port {
            self.imr
        } else if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }

    /// A byte written to the command (0) or data (1) port.
    pub(crate) fn write(&mut self, data_port: bool, value: u8) {
        if data_port {
            self.write_data(value);
        } else if value & ICW1_INIT != 0 {
            self.icw1(value);
        } else if value & OCW3_SELECT != 0 {
            self.ocw3(value);
        } else {
            self.ocw2(value);
        }
    }

    fn icw1(&mut self, value: u8) {
        // Edge sense reset, IMR cleared, IR7 lowest priority, special mask
        // mode cleared, status read set to IRR, ICW4 functions cleared.
        self.level_mode = value & ICW1_LEVEL != 0;
        self.single = value & ICW1_SINGLE != 0;
        self.icw4_needed = value & ICW1_IC4 != 0;
        self.irr = if self.level_mode {
            self.lines
        } else {
            self.lines & self.elcr
        };
        self.isr = 0;
        self.imr = 0;
        self.highest_priority = 0;
        self.special_mask = false;
        self.read_isr = false;
        self.poll = false;
        self.auto_eoi = false;
        self.rotate_on_auto_eoi = false;
        self.special_fully_nested = false;
        self.init = Init::Icw2;
    }

    fn write_data(&mut self, value: u8) {
        self.init = match self.init {
            Init::Ready => {
                self.imr = value; // OCW1
                Init::Ready
            }
            Init::Icw2 => {
                self.vector_base = value & ICW2_VECTOR_MASK;
                if !self.single {
                    Init::Icw3
                } else if self.icw4_needed {
                    Init::Icw4
                } else {
                    Init::Ready
                }
            }
            Init::Icw3 => {
                self.icw3 = value;
                if self.icw4_needed {
                    Init::Icw4
                } else {
                    Init::Ready
                }
            }
            Init::Icw4 => {
                // Bit 0 (8086 mode) and bits 3-2 (buffered mode) change
                // nothing a virtual CPU can see.
                self.auto_eoi = value & ICW4_AUTO_EOI != 0;
                self.special_fully_nested = value & ICW4_SFNM != 0;
                Init::Ready
            }
        };
        if self.init == Init::Ready {
            self.initialized = true;
        }
    }

    fn ocw2(&mut self, value: u8) {
        let level = value & 7;
        match value >> 5 {
            OCW2_EOI | OCW2_ROTATE_EOI => {
                if let Some(irq) = self.highest_in_service() {
                    self.isr &= !bit(irq);
                    if value >> 5 == OCW2_ROTATE_EOI {
                        self.highest_priority = (irq + 1) & 7;
                    }
                }
            }
            OCW2_SPECIFIC_EOI => self.isr &= !bit(level),
            OCW2_ROTATE_SPECIFIC_EOI => {
                self.isr &= !bit(level);
                self.highest_priority = (level + 1) & 7;
            }
            OCW2_SET_PRIORITY => self.highest_priority = (level + 1) & 7,
            OCW2_SET_ROTATE_AEOI => self.rotate_on_auto_eoi = true,
            OCW2_CLEAR_ROTATE_AEOI => self.rotate_on_auto_eoi = false,
            _ => {} // OCW2_NOP
        }
    }

    fn ocw3(&mut self, value: u8) {
        if value & OCW3_ESMM != 0 {
            self.special_mask = value & OCW3_SMM != 0;
        }
        if value & OCW3_READ_REGISTER != 0 {
            self.read_isr = value & OCW3_READ_ISR != 0;
        }
        if value & OCW3_POLL != 0 {
            self.poll = true;
        }
    }
}
