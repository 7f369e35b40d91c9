//! The transmit path: legacy descriptors (with CSO/CSS checksum
//! insertion), extended data descriptors and the offload context they use
//! for IP and TCP/UDP checksum insertion (POPTS IXSM/TXSM) and TCP
//! segmentation (TSE, in [`crate::tso`]).
//!
//! Work per call is bounded: after [`TX_FRAME_BUDGET`] frames or
//! [`TX_BYTE_BUDGET`] bytes the rest of the ring waits for the next
//! deadline (due at once) or register write (reads keep no side effect
//! beyond their own register's).

use crate::registers::{
    BPTC, DELAY_UNIT_NS, GOTCL, GPTC, MPTC, PTC64, TOTL, TPT, TSCTC, TSCTFC, size_bin,
};
use crate::regs::{self, int, tctl};
use crate::rx::Ring;
use crate::tso::{self, MAX_TSO_PAYLOAD, POPTS_IXSM, POPTS_TXSM, insert_checksum};
use crate::{Aether, MAX_FRAME};

/// Frames sent per call of the transmit path before the rest waits.
pub(crate) const TX_FRAME_BUDGET: u64 = 1024;
/// Descriptor data bytes read per call before the rest waits.
pub(crate) const TX_BYTE_BUDGET: usize = 4 << 20;

/// Command: end of packet.
const CMD_EOP: u8 = 1 << 0;
/// Command: insert checksum (legacy CSO/CSS); TSE in extended descriptors.
const CMD_IC: u8 = 1 << 2;
/// Command (extended data descriptors): TCP segmentation enable.
const CMD_TSE: u8 = 1 << 2;
/// Command: report status.
const CMD_RS: u8 = 1 << 3;
/// Command: report packet sent (treated as RS).
const CMD_RPS: u8 = 1 << 4;
/// Command: extended descriptor.
const CMD_DEXT: u8 = 1 << 5;
/// Command: interrupt delay enable.
const CMD_IDE: u8 = 1 << 7;
/// Status: descriptor done.
const STA_DD: u8 = 1 << 0;

/// The offload context a context descriptor sets: where each checksum
/// starts, ends (inclusive; 0 = end of frame) and is stored, and the
/// segmentation parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxContext {
    /// IP checksum start.
    pub ipcss: usize,
    /// IP checksum offset.
    pub ipcso: usize,
    /// IP checksum end (inclusive), 0 for the end of the frame.
    pub ipcse: usize,
    /// TCP/UDP checksum start.
    pub tucss: usize,
    /// TCP/UDP checksum offset.
    pub tucso: usize,
    /// TCP/UDP checksum end (inclusive), 0 for the end of the frame.
    pub tucse: usize,
    /// Segmentation payload length (PAYLEN, 20 bits).
    pub paylen: usize,
    /// Command bits (TUCMD): TCP, IP (IPv4), TSE, ...
    pub tucmd: u8,
    /// Header bytes copied to every segment (HDRLEN).
    pub hdrlen: usize,
    /// Maximum segment size: payload bytes per segment (MSS).
    pub mss: usize,
}

impl TxContext {
    /// Decodes a context descriptor's 16 bytes.
    pub fn parse(raw: &[u8; 16]) -> Self {
        let u16at = |i: usize| usize::from(u16::from_le_bytes([raw[i], raw[i + 1]]));
        Self {
            ipcss: usize::from(raw[0]),
            ipcso: usize::from(raw[1]),
            ipcse: u16at(2),
            tucss: usize::from(raw[4]),
            tucso: usize::from(raw[5]),
            tucse: u16at(6),
            paylen: (u32::from_le_bytes([raw[8], raw[9], raw[10], 0]) & 0xF_FFFF) as usize,
            tucmd: raw[11],
            hdrlen: usize::from(raw[13]),
            mss: u16at(14),
        }
    }
}

/// A transmit descriptor as the device reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxDescriptor {
    /// Buffer address.
    pub addr: u64,
    /// Data bytes in the buffer (0 for a context descriptor).
    pub len: usize,
    /// Command bits.
    pub cmd: u8,
    /// Legacy checksum offset and start (0 for extended descriptors).
    pub cso: usize,
    /// Legacy checksum start.
    pub css: usize,
    /// True for an extended context descriptor (no data).
    pub context: bool,
    /// Packet options of an extended data descriptor (IXSM, TXSM; 0 otherwise).
    pub popts: u8,
}

impl TxDescriptor {
    /// Decodes 16 descriptor bytes.
    pub fn parse(raw: &[u8; 16]) -> Self {
        let addr = u64::from_le_bytes([
            raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
        ]);
        let dw2 = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
        let cmd = raw[11];
        if cmd & CMD_DEXT == 0 {
            return Self {
                addr,
                len: (dw2 & 0xFFFF) as usize,
                cmd,
                cso: usize::from(raw[10]),
                css: usize::from(raw[13]),
                context: false,
                popts: 0,
            };
        }
        // Extended: DTYP in bits 23:20 of dword 2; 1 = data, others carry no data.
        let data = (dw2 >> 20) & 0xF == 1;
        Self {
            addr,
            len: if data { (dw2 & 0xF_FFFF) as usize } else { 0 },
            cmd,
            cso: 0,
            css: 0,
            context: !data,
            popts: if data { raw[13] } else { 0 },
        }
    }
}

impl Aether {
    /// Sends what the guest queued between TDH and TDT.
    pub(crate) fn process_tx(&mut self) {
        self.timers.tx_resume = None;
        if self.reg(regs::TCTL) & tctl::EN == 0 || !self.config.bus_master() || self.tx_halted {
            return;
        }
        let Some(mut ring) = Ring::check(self, regs::TDBAL) else {
            self.halt_tx();
            return;
        };
        let mut causes = 0;
        let mut delayed = false;
        let mut bytes = 0usize;
        self.tx_sent = 0;
        // Each descriptor at most once per doorbell: bounded work.
        for _ in 0..ring.count {
            if ring.head == ring.tail {
                break;
            }
            if self.tx_sent >= TX_FRAME_BUDGET || bytes >= TX_BYTE_BUDGET {
                self.timers.tx_resume = Some(self.now());
                break;
            }
            let at = ring.desc(ring.head);
            let mut raw = [0u8; 16];
            if self.dma.read(at, &mut raw).is_err() {
                self.halt_tx();
                return;
            }
            let d = TxDescriptor::parse(&raw);
            if d.context {
                self.tx_context = TxContext::parse(&raw);
            } else if self.tx_partial.is_empty() {
                // The first data descriptor of a frame carries its options.
                self.tx_popts = d.popts;
                self.tx_tse = d.cmd & (CMD_DEXT | CMD_TSE) == CMD_DEXT | CMD_TSE;
            }
            if !d.context && d.len > 0 {
                let limit = if self.tx_tse {
                    self.tx_context.hdrlen + MAX_TSO_PAYLOAD
                } else {
                    MAX_FRAME
                };
                if self.tx_partial.len() + d.len > limit {
                    if self.tx_tse {
                        self.stat_add(TSCTFC, 1);
                    }
                    self.halt_tx();
                    return;
                }
                bytes = bytes.saturating_add(d.len);
                let start = self.tx_partial.len();
                self.tx_partial.resize(start + d.len, 0);
                let ok = match self.tx_partial.get_mut(start..) {
                    Some(dst) => self.dma.read(d.addr, dst).is_ok(),
                    None => false,
                };
                if !ok {
                    self.halt_tx();
                    return;
                }
            }
            if !d.context && d.cmd & CMD_EOP != 0 && !self.finish_frame(&d) {
                return;
            }
            if d.cmd & (CMD_RS | CMD_RPS) != 0 {
                if self.dma.write(at + 12, &[raw[12] | STA_DD]).is_err() {
                    self.halt_tx();
                    return;
                }
                if d.cmd & CMD_IDE != 0 && self.reg(regs::TIDV) != 0 {
                    delayed = true;
                } else {
                    causes |= int::TXDW;
                }
            }
            ring.head = (ring.head + 1) % ring.count;
            self.set_reg(regs::TDH, ring.head as u32);
        }
        if ring.head == ring.tail {
            causes |= int::TXQE;
        }
        if delayed {
            let now = self.now();
            let tidv = u64::from(self.reg(regs::TIDV));
            self.timers.tx_packet = Some(now.saturating_add(tidv * DELAY_UNIT_NS));
            let tadv = u64::from(self.reg(regs::TADV));
            if tadv != 0 && self.timers.tx_absolute.is_none() {
                self.timers.tx_absolute = Some(now.saturating_add(tadv * DELAY_UNIT_NS));
            }
        }
        if causes != 0 {
            self.raise(causes);
        }
    }

    /// Continues a transmit pass that ran out of budget, if one is waiting.
    pub(crate) fn resume_tx(&mut self) {
        if self.timers.tx_resume.is_some() {
            self.process_tx();
        }
    }

    /// Sends the frame that `d` (its EOP descriptor) completes: segmented
    /// (TSE), or with the checksums its descriptors ask for. False if a bad
    /// TSO frame stopped the ring.
    fn finish_frame(&mut self, d: &TxDescriptor) -> bool {
        let mut frame = std::mem::take(&mut self.tx_partial);
        let c = self.tx_context;
        let popts = self.tx_popts;
        if self.tx_tse {
            if tso::segment(&frame, &c, popts, |seg| self.send_frame(seg)).is_err() {
                self.stat_add(TSCTFC, 1);
                self.halt_tx();
                return false;
            }
            self.stat_add(TSCTC, 1);
            return true;
        }
        if d.cmd & CMD_DEXT == 0 && d.cmd & CMD_IC != 0 {
            insert_checksum(&mut frame, d.css, 0, d.cso);
        }
        if d.cmd & CMD_DEXT != 0 && popts & POPTS_IXSM != 0 {
            insert_checksum(&mut frame, c.ipcss, c.ipcse, c.ipcso);
        }
        if d.cmd & CMD_DEXT != 0 && popts & POPTS_TXSM != 0 {
            insert_checksum(&mut frame, c.tucss, c.tucse, c.tucso);
        }
        self.send_frame(frame);
        true
    }

    /// Hands a complete frame to the backend and counts it.
    fn send_frame(&mut self, mut frame: Vec<u8>) {
        if frame.is_empty() {
            return;
        }
        if self.reg(regs::TCTL) & tctl::PSP != 0 && frame.len() < 60 {
            frame.resize(60, 0);
        }
        let octets = frame.len() as u64 + 4;
        self.tx_sent = self.tx_sent.saturating_add(1);
        match self.sink.send(&frame) {
            Ok(()) => self.counters.tx_frames += 1,
            Err(_) => self.counters.tx_backend_drops += 1,
        }
        self.stat_add(GPTC, 1);
        self.stat_add(TPT, 1);
        self.stat_add64(GOTCL, octets);
        self.stat_add64(TOTL, octets);
        self.stat_add(size_bin(PTC64, octets as usize), 1);
        if frame.get(..6) == Some(&[0xFF; 6][..]) {
            self.stat_add(BPTC, 1);
        } else if frame.first().is_some_and(|b| b & 1 != 0) {
            self.stat_add(MPTC, 1);
        }
    }

    fn halt_tx(&mut self) {
        self.tx_halted = true;
        self.tx_partial.clear();
        self.counters.tx_ring_errors += 1;
    }
}
