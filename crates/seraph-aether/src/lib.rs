//! The Aether NIC: an Intel 82540EM (e1000) compatible network card model.
//!
//! [`Aether`] is a [`PciDevice`] (8086:100E, class 02/00): BAR0 is the
//! 128 KiB register window, BAR1 the I/O window (IOADDR/IODATA), and INTA#
//! is an [`IrqLine`] driven by `ICR & IMS`. It models what e1000 drivers
//! use: reset, link, the EEPROM (EERD and Microwire), the PHY behind MDIC,
//! interrupt causes with the receive/transmit delay timers, address
//! filtering, legacy receive and transmit descriptor rings and the
//! read-to-clear statistics. Transmit checksum offload (legacy CSO/CSS and
//! the IP/TCP/UDP context) and TCP segmentation offload (TSE, which Linux's
//! e1000 driver enables on this card) are modelled.
//!
//! The model is pure: frames leave through a [`FrameSink`] the owner gives
//! it and arrive through [`Aether::receive`]; guest memory is reached only
//! through [`GuestDma`], and only while the guest has set Bus Master.
//! Anything a guest or a peer controls is checked: a bad ring stops that
//! ring and moves a counter ([`Aether::counters`]), never a panic.

#![forbid(unsafe_code)]

mod crc;
pub mod eeprom;
pub mod phy;
mod registers;
pub mod regs;
mod rx;
mod tso;
mod tx;
mod window;

pub use tx::{TxContext, TxDescriptor};

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use seraph_clock::Clock;
use seraph_irq::IrqLine;
use seraph_pci::{BarSpec, ConfigSpace, GuestDma, PciDevice, PciIds};

use eeprom::Eeprom;
use phy::Phy;
use seraph_pci::dword::{byte_mask, split_dwords};

/// The default MAC address: 02:53:45:52:00:01 (locally administered, "SER", node 1).
pub const DEFAULT_MAC: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x01];
/// The largest frame either direction handles (without FCS).
pub const MAX_FRAME: usize = 16 * 1024;
/// Default number of received frames held while the guest has no free descriptor.
pub const DEFAULT_RX_QUEUE: usize = 256;
/// The EtherType of Seraph OS's Aether protocol.
pub const ETHERTYPE_AETHER: u16 = 0x88B5;

/// Why a frame could not be handed to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The backend is backed up; the frame is dropped.
    #[error("the packet backend is full")]
    Full,
    /// The backend is gone (closed socket, removed device).
    #[error("the packet backend is closed")]
    Closed,
}

/// Where transmitted frames go: a packet backend's writer path. `send`
/// must not block: a backend that cannot take a frame now says [`SinkError::Full`].
pub trait FrameSink: Send {
    /// Sends one Ethernet frame (no FCS).
    fn send(&mut self, frame: &[u8]) -> Result<(), SinkError>;
}

/// A sink that drops every frame (a card with no backend, the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl FrameSink for NullSink {
    fn send(&mut self, _frame: &[u8]) -> Result<(), SinkError> {
        Ok(())
    }
}

/// What happened to a frame given to [`Aether::receive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxOutcome {
    /// Written to guest memory.
    Delivered,
    /// Held until the guest frees descriptors (or turns on Bus Master).
    Queued,
    /// Dropped, and why.
    Dropped(RxDrop),
}

/// Why a received frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxDrop {
    /// RCTL.EN is clear.
    ReceiverDisabled,
    /// Shorter than an Ethernet header (counted in RUC).
    Undersize,
    /// Longer than RCTL.LPE allows (counted in ROC).
    Oversize,
    /// The address filters reject it.
    Filtered,
    /// The receive queue is full (counted in MPC).
    QueueFull,
    /// The receive ring is broken (counted in [`AetherCounters::rx_ring_errors`]).
    RingError,
}

/// Host-side counters: what the guest cannot see in the statistics registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AetherCounters {
    /// Frames written to guest memory.
    pub rx_delivered: u64,
    /// Frames that waited in the receive queue.
    pub rx_queued: u64,
    /// Frames dropped for any reason.
    pub rx_dropped: u64,
    /// Receive ring faults (bad length, head/tail, address outside RAM); each halts the ring.
    pub rx_ring_errors: u64,
    /// Frames handed to the backend.
    pub tx_frames: u64,
    /// Frames the backend refused (full or closed).
    pub tx_backend_drops: u64,
    /// Transmit ring faults (bad length, head/tail, address outside RAM,
    /// frame over 16 KiB, bad TSO frame: MSS 0, HDRLEN beyond the data,
    /// payload over 64 KiB); each halts the ring.
    pub tx_ring_errors: u64,
}

/// How to build a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AetherConfig {
    /// The MAC address the EEPROM holds.
    pub mac: [u8; 6],
    /// Received frames held while no descriptor is free (at least 1).
    pub rx_queue_frames: usize,
}

impl Default for AetherConfig {
    fn default() -> Self {
        Self {
            mac: DEFAULT_MAC,
            rx_queue_frames: DEFAULT_RX_QUEUE,
        }
    }
}

/// Pending delayed-interrupt deadlines (machine-clock ns).
#[derive(Debug, Clone, Copy, Default)]
struct Timers {
    rx_packet: Option<u64>,
    rx_absolute: Option<u64>,
    tx_packet: Option<u64>,
    tx_absolute: Option<u64>,
    /// When a transmit pass that ran out of budget continues.
    tx_resume: Option<u64>,
}

/// The 82540EM model.
pub struct Aether {
    config: ConfigSpace,
    regs: Vec<u32>,
    eeprom: Eeprom,
    phy: Phy,
    dma: GuestDma,
    irq: IrqLine,
    irq_level: bool,
    clock: Arc<dyn Clock>,
    sink: Box<dyn FrameSink>,
    rx_queue: VecDeque<Vec<u8>>,
    rx_queue_limit: usize,
    rx_halted: bool,
    tx_halted: bool,
    /// Bytes of a frame whose descriptors have no EOP yet.
    tx_partial: Vec<u8>,
    /// The checksum offload context of the last context descriptor.
    tx_context: TxContext,
    /// Packet options (IXSM/TXSM) of the frame in progress.
    tx_popts: u8,
    /// True if the frame in progress is segmented (TSE).
    tx_tse: bool,
    /// Frames sent during the current transmit pass (for its budget).
    tx_sent: u64,
    timers: Timers,
    io_addr: u32,
    link_up: bool,
    counters: AetherCounters,
}

impl fmt::Debug for Aether {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aether")
            .field("mac", &self.eeprom.mac())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Aether {
    /// A card with `config`, reaching guest memory through `dma`, INTA# on
    /// `irq`, delays timed by `clock`. Frames go to a [`NullSink`] until
    /// [`Aether::set_frame_sink`].
    pub fn new(config: AetherConfig, dma: GuestDma, irq: IrqLine, clock: Arc<dyn Clock>) -> Self {
        let mut pci = ConfigSpace::new(PciIds {
            vendor: 0x8086,
            device: 0x100E,
            subsystem_vendor: 0x8086,
            subsystem: 0x001E,
            revision: 0x03,
            class: 0x02,
            subclass: 0x00,
            prog_if: 0x00,
        });
        // Both BARs are fixed, valid specs: these cannot fail.
        let _ = pci.add_bar(0, BarSpec::memory32(regs::MMIO_SIZE));
        let _ = pci.add_bar(1, BarSpec::io(regs::IO_SIZE));
        pci.set_interrupt_pin(1);
        let mut card = Self {
            config: pci,
            regs: vec![0; (regs::MMIO_SIZE / 4) as usize],
            eeprom: Eeprom::new(config.mac),
            phy: Phy::default(),
            dma,
            irq,
            irq_level: false,
            clock,
            sink: Box::new(NullSink),
            rx_queue: VecDeque::new(),
            rx_queue_limit: config.rx_queue_frames.max(1),
            rx_halted: false,
            tx_halted: false,
            tx_partial: Vec::new(),
            tx_context: TxContext::default(),
            tx_popts: 0,
            tx_tse: false,
            tx_sent: 0,
            timers: Timers::default(),
            io_addr: 0,
            link_up: true,
            counters: AetherCounters::default(),
        };
        card.reset();
        card
    }

    /// Sets where transmitted frames go.
    pub fn set_frame_sink(&mut self, sink: Box<dyn FrameSink>) {
        self.sink = sink;
    }

    /// The MAC address in the EEPROM.
    pub fn mac(&self) -> [u8; 6] {
        self.eeprom.mac()
    }

    /// Host-side counters.
    pub fn counters(&self) -> AetherCounters {
        self.counters
    }

    /// Frames waiting for free receive descriptors.
    pub fn queued_frames(&self) -> usize {
        self.rx_queue.len()
    }

    /// True if INTA# is asserted.
    pub fn irq_asserted(&self) -> bool {
        self.irq_level
    }

    /// True if a received frame would raise INTA#: the receiver is on, a
    /// receive cause (RXT0, RXDMT0, RXO) is unmasked and INTx is enabled.
    pub fn receive_interrupts_enabled(&self) -> bool {
        let rx_causes = regs::int::RXT0 | regs::int::RXDMT0 | regs::int::RXO;
        self.reg(regs::RCTL) & regs::rctl::EN != 0
            && self.reg(regs::IMS) & rx_causes != 0
            && !self.config.intx_disabled()
    }

    /// Sets the link state (STATUS.LU); a change raises LSC.
    pub fn set_link_up(&mut self, up: bool) {
        if self.link_up != up {
            self.link_up = up;
            self.raise(regs::int::LSC);
        }
    }

    /// A device reset: registers to their defaults, RAL0/RAH0 reloaded from
    /// the EEPROM, queues and timers emptied. PCI configuration space stays.
    fn reset(&mut self) {
        self.regs.fill(0);
        self.set_reg(regs::CTRL, regs::ctrl::FD | regs::ctrl::SLU | (1 << 5));
        let mac = self.eeprom.mac();
        self.set_reg(
            regs::RAL0,
            u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        );
        self.set_reg(
            regs::RAH0,
            u32::from(u16::from_le_bytes([mac[4], mac[5]])) | regs::RAH_AV,
        );
        self.set_reg(0x1000, 0x0030); // PBA: 48 KiB receive, 16 KiB transmit
        self.set_reg(regs::TIPG, 0x0060_200A);
        self.set_reg(0x0E00, 0x0706_8302); // LEDCTL
        self.eeprom = Eeprom::new(mac);
        self.phy = Phy::default();
        self.rx_queue.clear();
        self.rx_halted = false;
        self.tx_halted = false;
        self.tx_partial.clear();
        self.tx_context = TxContext::default();
        self.tx_popts = 0;
        self.tx_tse = false;
        self.timers = Timers::default();
        self.update_irq();
    }

    fn reg(&self, offset: u32) -> u32 {
        self.regs.get((offset / 4) as usize).copied().unwrap_or(0)
    }

    fn set_reg(&mut self, offset: u32, value: u32) {
        if let Some(r) = self.regs.get_mut((offset / 4) as usize) {
            *r = value;
        }
    }

    /// Adds `n` to the 32-bit statistics counter at `offset` (saturating).
    fn stat_add(&mut self, offset: u32, n: u64) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let v = self.reg(offset).saturating_add(n);
        self.set_reg(offset, v);
    }

    /// Adds `n` to the 64-bit statistics pair whose low half is at `offset`.
    fn stat_add64(&mut self, offset: u32, n: u64) {
        let v =
            (u64::from(self.reg(offset + 4)) << 32 | u64::from(self.reg(offset))).saturating_add(n);
        self.set_reg(offset, v as u32);
        self.set_reg(offset + 4, (v >> 32) as u32);
    }

    /// Sets interrupt causes and updates INTA#.
    fn raise(&mut self, causes: u32) {
        let icr = self.reg(regs::ICR) | causes;
        self.set_reg(regs::ICR, icr);
        self.update_irq();
    }

    /// Drives INTA# from `ICR & IMS` and the command register's INTx disable.
    fn update_irq(&mut self) {
        let pending = self.reg(regs::ICR) & self.reg(regs::IMS) != 0;
        self.config.set_interrupt_status(pending);
        let level = pending && !self.config.intx_disabled();
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set_level(level);
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }
}

impl PciDevice for Aether {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn config_written(&mut self, offset: u16, data: &[u8]) {
        let cmd = seraph_pci::config::reg::COMMAND;
        let end = offset.saturating_add(data.len() as u16);
        if offset <= cmd + 1 && end > cmd {
            self.update_irq();
            if self.config.bus_master() {
                self.process_tx();
                self.drain_rx_queue();
            }
        }
    }

    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8]) {
        for (dw, in_dw, in_buf, n) in split_dwords(offset, data.len()) {
            let mask = byte_mask(in_dw, n);
            let bytes = self.read_dword(bar, dw, mask).to_le_bytes();
            if let (Some(dst), Some(src)) = (
                data.get_mut(in_buf..in_buf + n),
                bytes.get(in_dw..in_dw + n),
            ) {
                dst.copy_from_slice(src);
            }
        }
    }

    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8]) {
        self.resume_tx();
        for (dw, in_dw, in_buf, n) in split_dwords(offset, data.len()) {
            let mut bytes = self.peek_dword(bar, dw).to_le_bytes();
            if let (Some(dst), Some(src)) = (
                bytes.get_mut(in_dw..in_dw + n),
                data.get(in_buf..in_buf + n),
            ) {
                dst.copy_from_slice(src);
            }
            self.write_dword(bar, dw, u32::from_le_bytes(bytes));
        }
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        let t = self.timers;
        [
            t.rx_packet,
            t.rx_absolute,
            t.tx_packet,
            t.tx_absolute,
            t.tx_resume,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_deadline(&mut self, now_ns: u64) {
        let due = |t: Option<u64>| t.is_some_and(|d| d <= now_ns);
        let mut causes = 0;
        if due(self.timers.rx_packet) || due(self.timers.rx_absolute) {
            self.timers.rx_packet = None;
            self.timers.rx_absolute = None;
            causes |= regs::int::RXT0;
        }
        if due(self.timers.tx_packet) || due(self.timers.tx_absolute) {
            self.timers.tx_packet = None;
            self.timers.tx_absolute = None;
            causes |= regs::int::TXDW;
        }
        if causes != 0 {
            self.raise(causes);
        }
        if due(self.timers.tx_resume) {
            self.process_tx();
        }
    }
}

#[cfg(test)]
mod tests;
