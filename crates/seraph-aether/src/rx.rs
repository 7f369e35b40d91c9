//! The receive path: address filtering, the bounded receive queue and
//! legacy receive descriptors.

use crate::registers::{
    BPRC, DELAY_UNIT_NS, GORCL, GPRC, MPC, MPRC, PRC64, RNBC, ROC, RUC, TORL, TPR, size_bin,
};
use crate::regs::{self, int, rctl};
use crate::{Aether, MAX_FRAME, RxDrop, RxOutcome, crc};

/// Descriptor status: descriptor done.
const STA_DD: u8 = 1 << 0;
/// Descriptor status: end of packet.
const STA_EOP: u8 = 1 << 1;
/// Descriptor status: ignore checksum indication (no offload modelled).
const STA_IXSM: u8 = 1 << 2;
/// Bytes per descriptor.
pub(crate) const DESC_SIZE: u64 = 16;
/// Ethernet minimum frame without FCS.
const MIN_FRAME: usize = 60;
/// Longest frame without LPE, FCS and a VLAN tag included.
const MAX_NORMAL_WITH_FCS: usize = 1522;

/// Why a frame could not be written to the ring now.
enum NotDelivered {
    /// Not enough free descriptors, or no Bus Master: try again later.
    Later,
    /// The ring is broken and now halted.
    Broken,
    /// The frame needs more descriptors than the ring can ever offer
    /// (its length less one): it can never be delivered.
    TooBig,
}

/// A checked view of a descriptor ring's registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring {
    pub base: u64,
    pub count: u64,
    pub head: u64,
    pub tail: u64,
}

impl Ring {
    /// The ring's registers if they describe a usable ring inside guest memory.
    pub(crate) fn check(card: &Aether, bal: u32) -> Option<Ring> {
        let base = u64::from(card.reg(bal + 4)) << 32 | u64::from(card.reg(bal));
        let len = u64::from(card.reg(bal + 8));
        let count = len / DESC_SIZE;
        let head = u64::from(card.reg(bal + 0x10));
        let tail = u64::from(card.reg(bal + 0x18));
        let ok = len != 0
            && len % 128 == 0
            && head < count
            && tail < count
            && card.dma.contains(base, len as usize);
        ok.then_some(Ring {
            base,
            count,
            head,
            tail,
        })
    }

    /// Descriptors between head and tail (owned by the device).
    pub(crate) fn available(&self) -> u64 {
        (self.tail + self.count - self.head) % self.count
    }

    /// Guest-physical address of descriptor `index`.
    pub(crate) fn desc(&self, index: u64) -> u64 {
        self.base + index * DESC_SIZE
    }
}

impl Aether {
    /// Offers a frame (destination MAC first, no FCS) from the network.
    pub fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        let rctl = self.reg(regs::RCTL);
        if rctl & rctl::EN == 0 {
            return self.drop_rx(RxDrop::ReceiverDisabled);
        }
        if frame.len() < 14 {
            self.stat_add(RUC, 1);
            return self.drop_rx(RxDrop::Undersize);
        }
        let limit = if rctl & rctl::LPE != 0 {
            MAX_FRAME
        } else {
            MAX_NORMAL_WITH_FCS - 4
        };
        if frame.len() > limit {
            self.stat_add(ROC, 1);
            return self.drop_rx(RxDrop::Oversize);
        }
        let octets = frame.len().max(MIN_FRAME) as u64 + 4;
        self.stat_add(TPR, 1);
        self.stat_add64(TORL, octets);
        if !self.accepts(frame) {
            return self.drop_rx(RxDrop::Filtered);
        }
        if self.rx_queue.is_empty() {
            match self.deliver(frame) {
                Ok(()) => return RxOutcome::Delivered,
                Err(NotDelivered::Broken) => return self.drop_rx(RxDrop::RingError),
                Err(NotDelivered::TooBig) => return self.drop_too_big(),
                Err(NotDelivered::Later) => {}
            }
        }
        if self.rx_queue.len() >= self.rx_queue_limit {
            self.stat_add(MPC, 1);
            self.raise(int::RXO);
            return self.drop_rx(RxDrop::QueueFull);
        }
        self.stat_add(RNBC, 1);
        self.rx_queue.push_back(frame.to_vec());
        self.counters.rx_queued += 1;
        RxOutcome::Queued
    }

    /// Drops a frame that no ring state could hold (counted in ROC).
    fn drop_too_big(&mut self) -> RxOutcome {
        self.stat_add(ROC, 1);
        self.drop_rx(RxDrop::Oversize)
    }

    fn drop_rx(&mut self, why: RxDrop) -> RxOutcome {
        self.counters.rx_dropped += 1;
        RxOutcome::Dropped(why)
    }

    /// Moves queued frames into the ring while descriptors are free.
    pub(crate) fn drain_rx_queue(&mut self) {
        if self.reg(regs::RCTL) & rctl::EN == 0 {
            return;
        }
        while let Some(frame) = self.rx_queue.pop_front() {
            match self.deliver(&frame) {
                Ok(()) => {}
                Err(NotDelivered::Later) => {
                    self.rx_queue.push_front(frame);
                    return;
                }
                Err(NotDelivered::Broken) => {
                    self.counters.rx_dropped += 1;
                    return;
                }
                // Drop it and go on with the frames behind it.
                Err(NotDelivered::TooBig) => {
                    self.drop_too_big();
                }
            }
        }
    }

    /// The unicast, multicast and broadcast filters of RCTL, RAL/RAH and the MTA.
    pub(crate) fn accepts(&self, frame: &[u8]) -> bool {
        let rctl = self.reg(regs::RCTL);
        let Some(dst) = frame.get(..6) else {
            return false;
        };
        let multicast = dst[0] & 1 != 0;
        if dst == [0xFF; 6] && rctl & rctl::BAM != 0 {
            return true;
        }
        if multicast && rctl & rctl::MPE != 0 || !multicast && rctl & rctl::UPE != 0 {
            return true;
        }
        let exact = (0..regs::RA_ENTRIES).any(|i| {
            let low = self.reg(regs::RAL0 + 8 * i);
            let high = self.reg(regs::RAH0 + 8 * i);
            // Address select 00 (destination) only.
            high & regs::RAH_AV != 0
                && high & 0x3_0000 == 0
                && dst[..4] == low.to_le_bytes()
                && dst[4..] == (high as u16).to_le_bytes()
        });
        if exact {
            return true;
        }
        if multicast {
            let shift = [4u32, 3, 2, 0][((rctl >> rctl::MO_SHIFT) & 3) as usize];
            let hash = ((u32::from(dst[4]) >> shift) | (u32::from(dst[5]) << (8 - shift))) & 0xFFF;
            let word = self.reg(regs::MTA + 4 * (hash >> 5));
            return word & (1 << (hash & 31)) != 0;
        }
        false
    }

    /// The receive buffer size RCTL.BSIZE/BSEX select.
    pub(crate) fn rx_buffer_size(&self) -> usize {
        let rctl = self.reg(regs::RCTL);
        let bsize = (rctl >> rctl::BSIZE_SHIFT) & 3;
        if rctl & rctl::BSEX != 0 {
            // 00 is reserved with BSEX: treat it as the largest.
            [16384, 16384, 8192, 4096][bsize as usize]
        } else {
            [2048, 1024, 512, 256][bsize as usize]
        }
    }

    /// Writes one frame into the ring (one or more descriptors).
    fn deliver(&mut self, frame: &[u8]) -> Result<(), NotDelivered> {
        if !self.config.bus_master() || self.rx_halted {
            return Err(NotDelivered::Later);
        }
        let Some(mut ring) = Ring::check(self, regs::RDBAL) else {
            return Err(self.halt_rx());
        };
        let rctl = self.reg(regs::RCTL);
        let mut data = frame.to_vec();
        if data.len() < MIN_FRAME {
            data.resize(MIN_FRAME, 0);
        }
        let octets = data.len() as u64 + 4;
        if rctl & rctl::SECRC == 0 {
            let fcs = crc::fcs(&data);
            data.extend_from_slice(&fcs.to_le_bytes());
        }
        let buf = self.rx_buffer_size();
        let needed = data.len().div_ceil(buf) as u64;
        // One descriptor always stays with the guest (head == tail is empty).
        if needed > ring.count - 1 {
            return Err(NotDelivered::TooBig);
        }
        if ring.available() < needed {
            return Err(NotDelivered::Later);
        }
        let chunks = data.chunks(buf).count();
        for (i, chunk) in data.chunks(buf).enumerate() {
            let desc = ring.desc(ring.head);
            let Ok(addr) = self.dma.read_u64(desc) else {
                return Err(self.halt_rx());
            };
            if self.dma.write(addr, chunk).is_err() {
                return Err(self.halt_rx());
            }
            let eop = if i + 1 == chunks { STA_EOP } else { 0 };
            let len = (chunk.len() as u16).to_le_bytes();
            let wb = [len[0], len[1], 0, 0, STA_DD | eop | STA_IXSM, 0, 0, 0];
            if self.dma.write(desc + 8, &wb).is_err() {
                return Err(self.halt_rx());
            }
            ring.head = (ring.head + 1) % ring.count;
            self.set_reg(regs::RDH, ring.head as u32);
        }
        self.counters.rx_delivered += 1;
        self.stat_add(GPRC, 1);
        self.stat_add64(GORCL, octets);
        self.stat_add(size_bin(PRC64, octets as usize), 1);
        if frame.get(..6) == Some(&[0xFF; 6][..]) {
            self.stat_add(BPRC, 1);
        } else if frame.first().is_some_and(|b| b & 1 != 0) {
            self.stat_add(MPRC, 1);
        }
        self.rx_interrupts(&ring);
        Ok(())
    }

    /// RXT0 (now or after RDTR/RADV) and RXDMT0 after a delivered frame.
    fn rx_interrupts(&mut self, ring: &Ring) {
        let mut causes = 0;
        let rdmts = (self.reg(regs::RCTL) >> rctl::RDMTS_SHIFT) & 3;
        let threshold = ring.count >> (rdmts.min(2) + 1);
        if ring.available() <= threshold {
            causes |= int::RXDMT0;
        }
        let rdtr = u64::from(self.reg(regs::RDTR));
        if rdtr == 0 {
            causes |= int::RXT0;
        } else {
            let now = self.now();
            self.timers.rx_packet = Some(now.saturating_add(rdtr * DELAY_UNIT_NS));
            let radv = u64::from(self.reg(regs::RADV));
            if radv != 0 && self.timers.rx_absolute.is_none() {
                self.timers.rx_absolute = Some(now.saturating_add(radv * DELAY_UNIT_NS));
            }
        }
        if causes != 0 {
            self.raise(causes);
        }
    }

    fn halt_rx(&mut self) -> NotDelivered {
        self.rx_halted = true;
        self.counters.rx_ring_errors += 1;
        NotDelivered::Broken
    }
}
