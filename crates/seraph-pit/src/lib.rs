//! 8254 programmable interval timer for Seraph-V, plus PC port 0x61.
//!
//! [`Pit`] is a pure state machine: guest port accesses and a
//! [`Clock`] go in; register values, the number of IRQ0 edges and the next
//! deadline come out. Nothing here sleeps or starts a thread: the VMM calls
//! [`Pit::take_irq0_edges`] before each guest entry and
//! [`Pit::next_deadline_ns`] when the vCPU halts.
//!
//! Bus layout: [`Pit`] answers the 4-port range 0x40-0x43 (offsets 0-3) and
//! [`Port61`] answers port 0x61 (offset 0), sharing the [`Pit`] through an
//! `Arc<Mutex<_>>`. Multi-byte accesses are split into byte accesses at
//! consecutive offsets, as an ISA bus does.

#![forbid(unsafe_code)]

mod channel;
mod port61;
pub mod spec;

#[cfg(test)]
mod tests;

use seraph_bus::BusDevice;
use seraph_clock::Clock;

use channel::Channel;
pub use port61::Port61;
use spec::{
    CW_ACCESS_SHIFT, CW_SELECT_READ_BACK, CW_SELECT_SHIFT, OFFSET_CONTROL, P61_CHECK_ENABLES,
    P61_GATE2, P61_OUT2, P61_REFRESH, P61_SPEAKER, RB_COUNTER_SHIFT, RB_NO_COUNT, RB_NO_STATUS,
    REFRESH_TOGGLE_NS,
};

/// Value read from an offset nothing drives (the control port is write-only).
const FLOATING_BUS: u8 = 0xFF;

/// The three-channel 8254 (channel 0 drives IRQ0, channel 2 the speaker).
#[derive(Debug)]
pub struct Pit<C> {
    clock: C,
    channels: [Channel; 3],
    /// Port 0x61 bits that are only stored (speaker data, check enables).
    port61_stored: u8,
}

impl<C: Clock> Pit<C> {
    /// A PIT as after power-up: no channel programmed, channel 2's gate low.
    pub fn new(clock: C) -> Self {
        Self {
            clock,
            channels: [Channel::new(true), Channel::new(true), Channel::new(false)],
            port61_stored: 0,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Reads one byte at `offset` (0-2: counters, 3: control, reads 0xFF).
    pub fn read_byte(&mut self, offset: u64) -> u8 {
        let now = self.now();
        match usize::try_from(offset)
            .ok()
            .and_then(|i| self.channels.get_mut(i))
        {
            Some(channel) => channel.read_data(now),
            None => FLOATING_BUS,
        }
    }

    /// Writes one byte at `offset` (0-2: counters, 3: control word).
    pub fn write_byte(&mut self, offset: u64, value: u8) {
        let now = self.now();
        if offset == OFFSET_CONTROL {
            self.write_control(value, now);
        } else if let Some(channel) = usize::try_from(offset)
            .ok()
            .and_then(|i| self.channels.get_mut(i))
        {
            channel.write_data(value, now);
        }
    }

    fn write_control(&mut self, value: u8, now: u64) {
        let select = value >> CW_SELECT_SHIFT;
        if select == CW_SELECT_READ_BACK {
            for (i, channel) in self.channels.iter_mut().enumerate() {
                if value & (1 << (RB_COUNTER_SHIFT as usize + i)) == 0 {
                    continue;
                }
                // Status first: when both are latched, the status is read first.
                if value & RB_NO_STATUS == 0 {
                    channel.latch_status(now);
                }
                if value & RB_NO_COUNT == 0 {
                    channel.latch_count(now);
                }
            }
            return;
        }
        let Some(channel) = self.channels.get_mut(usize::from(select)) else {
            return;
        };
        if (value >> CW_ACCESS_SHIFT) & 3 == 0 {
            channel.latch_count(now);
        } else {
            channel.program(value);
        }
    }

    /// The OUT pin of channel `index` (0-2) now; false for other indices.
    pub fn out(&self, index: usize) -> bool {
        let now = self.now();
        self.channels.get(index).is_some_and(|c| c.out(now))
    }

    /// Rising edges of OUT0 (IRQ0) since the last call, computed from the clock.
    ///
    /// The exact number is returned (saturating at `u64::MAX`); an
    /// edge-triggered PIC coalesces them, so the VMM raises IRQ0 once if the
    /// result is non-zero. A new control word or count restarts the count of
    /// edges; the rising edge a control word itself may cause (mode 0 with
    /// OUT low reprogrammed to a mode whose OUT starts high) is not reported.
    pub fn take_irq0_edges(&mut self) -> u64 {
        let now = self.now();
        self.channels[0].take_edges(now)
    }

    /// Clock time of the next rising edge of OUT0 not yet taken by
    /// [`Pit::take_irq0_edges`] (in the past if one is pending), or `None` if
    /// none will come.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.channels[0].next_edge_ns()
    }

    /// Reads port 0x61: bit 0 gate 2, bit 1 speaker data, bits 3-2 as
    /// written, bit 4 refresh toggle, bit 5 OUT2.
    pub fn read_port61(&mut self) -> u8 {
        let now = self.now();
        let mut value = self.port61_stored;
        if self.channels[2].gate() {
            value |= P61_GATE2;
        }
        if (now / REFRESH_TOGGLE_NS) & 1 == 1 {
            value |= P61_REFRESH;
        }
        if self.channels[2].out(now) {
            value |= P61_OUT2;
        }
        value
    }

    /// Writes port 0x61: bit 0 drives gate 2; bits 1-3 are stored.
    pub fn write_port61(&mut self, value: u8) {
        let now = self.now();
        self.port61_stored = value & (P61_SPEAKER | P61_CHECK_ENABLES);
        self.channels[2].set_gate(value & P61_GATE2 != 0, now);
    }
}

impl<C: Clock> BusDevice for Pit<C> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset
                .checked_add(i as u64)
                .map_or(FLOATING_BUS, |o| self.read_byte(o));
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        for (i, &byte) in data.iter().enumerate() {
            if let Some(o) = offset.checked_add(i as u64) {
                self.write_byte(o, byte);
            }
        }
    }
}
