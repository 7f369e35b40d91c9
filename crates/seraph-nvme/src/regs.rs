//! BAR0 registers: CAP/VS/INTMS/INTMC/CC/CSTS/AQA/ASQ/ACQ by dwords, the
//! enable, reset and shutdown handshakes, doorbells and the MSI-X window.

use crate::command::{CQE_SIZE, SQE_SIZE};
use crate::controller::{BAR0_SIZE, Features, MAX_QUEUES, MSIX_PBA, MSIX_TABLE, NvmeController};
use crate::queue::{CompQueue, SubQueue};
use crate::spec::{cc, csts, reg};

impl NvmeController {
    pub(crate) fn read_dword(&self, offset: u64) -> u32 {
        let cap = Self::cap();
        match offset {
            0x00 => cap as u32,
            0x04 => (cap >> 32) as u32,
            reg::VS => 0x0001_0400,
            reg::INTMS | reg::INTMC => self.intms,
            reg::CC => self.cc,
            reg::CSTS => self.csts,
            reg::AQA => self.aqa,
            0x28 => self.asq as u32,
            0x2C => (self.asq >> 32) as u32,
            0x30 => self.acq as u32,
            0x34 => (self.acq >> 32) as u32,
            o if (MSIX_TABLE..MSIX_PBA).contains(&o) => self.msix.table_read(o - MSIX_TABLE),
            o if (MSIX_PBA..BAR0_SIZE).contains(&o) => self.msix.pba_read(o - MSIX_PBA),
            _ => 0,
        }
    }

    /// A write of `value` to the dword at `offset`; `mask` marks the bytes
    /// the access covered.
    pub(crate) fn write_dword(&mut self, offset: u64, value: u32, mask: u32) {
        let merge = |old: u32| (old & !mask) | (value & mask);
        match offset {
            // INTMS/INTMC are ignored while MSI-X is on.
            reg::INTMS if !self.msix_enabled() => {
                self.intms |= value & mask;
                self.update_intx();
            }
            reg::INTMC if !self.msix_enabled() => {
                self.intms &= !(value & mask);
                self.update_intx();
            }
            reg::CC => self.write_cc(merge(self.cc)),
            reg::AQA => self.aqa = merge(self.aqa) & 0x0FFF_0FFF,
            0x28 => {
                self.asq = (self.asq & !0xFFFF_FFFF) | u64::from(merge(self.asq as u32) & !0xFFF)
            }
            0x2C => {
                self.asq =
                    (self.asq & 0xFFFF_FFFF) | u64::from(merge((self.asq >> 32) as u32)) << 32
            }
            0x30 => {
                self.acq = (self.acq & !0xFFFF_FFFF) | u64::from(merge(self.acq as u32) & !0xFFF)
            }
            0x34 => {
                self.acq =
                    (self.acq & 0xFFFF_FFFF) | u64::from(merge((self.acq >> 32) as u32)) << 32
            }
            o if (reg::DOORBELLS..reg::DOORBELLS + 8 * MAX_QUEUES as u64).contains(&o) => {
                self.doorbell((o - reg::DOORBELLS) / 4, value, mask)
            }
            o if (MSIX_TABLE..MSIX_PBA).contains(&o) => {
                let old = self.msix.table_read(o - MSIX_TABLE);
                let config = &self.config;
                self.msix.table_write(config, o - MSIX_TABLE, merge(old));
            }
            _ => {}
        }
    }

    fn write_cc(&mut self, new: u32) {
        let old = self.cc;
        self.cc = new;
        if old & cc::EN == 0 && new & cc::EN != 0 {
            self.enable();
        } else if old & cc::EN != 0 && new & cc::EN == 0 {
            self.reset();
        }
        if cc::shn(new) != 0 {
            if self.csts & csts::SHST_COMPLETE == 0 {
                // Shutdown: every completed write becomes durable first.
                let _ = self.disk.flush();
            }
            self.csts |= csts::SHST_COMPLETE;
        } else {
            self.csts &= !(3 << 2);
        }
    }

    fn enable(&mut self) {
        let asqs = (self.aqa & 0xFFF) + 1;
        let acqs = ((self.aqa >> 16) & 0xFFF) + 1;
        let page = self.page_size();
        let ok = cc::css(self.cc) == 0
            && cc::ams(self.cc) == 0
            && cc::mps(self.cc) <= 4
            && asqs >= 2
            && acqs >= 2
            && self.asq & (page - 1) == 0
            && self.acq & (page - 1) == 0
            && self.dma.contains(self.asq, asqs as usize * SQE_SIZE)
            && self.dma.contains(self.acq, acqs as usize * CQE_SIZE);
        if !ok {
            self.csts |= csts::CFS;
            return;
        }
        if let Some(slot) = self.sqs.get_mut(0) {
            *slot = Some(SubQueue::new(self.asq, asqs, 0));
        }
        if let Some(slot) = self.cqs.get_mut(0) {
            *slot = Some(CompQueue::new(self.acq, acqs, true, 0));
        }
        self.csts = (self.csts & !csts::CFS) | csts::RDY;
    }

    /// Controller reset (CC.EN 1 -> 0): queues deleted, held commands
    /// dropped, features back to defaults; AQA/ASQ/ACQ kept.
    fn reset(&mut self) {
        self.sqs.fill(None);
        self.cqs.fill(None);
        self.aers.clear();
        self.features = Features::default();
        self.intms = 0;
        self.pending_work = false;
        self.csts &= !(csts::RDY | csts::CFS);
        self.update_intx();
    }

    fn doorbell(&mut self, index: u64, value: u32, mask: u32) {
        let qid = (index / 2) as usize;
        if !self.ready() {
            self.ignored_doorbells += 1;
            return;
        }
        if index % 2 == 1 {
            let Some(cq) = self.cqs.get_mut(qid).and_then(Option::as_mut) else {
                self.ignored_doorbells += 1;
                return;
            };
            let head = (cq.head & !mask) | (value & mask);
            // The new head may only consume posted entries: it must lie
            // between the old head and the tail (with wrap-around). A head
            // past the tail would make the queue look full of unread
            // entries for ever and keep INTx asserted (NVMe: "Invalid
            // Doorbell Write Value"; the write is ignored and counted).
            if head >= cq.size {
                self.ignored_doorbells += 1;
                return;
            }
            let size = u64::from(cq.size.max(1));
            let (old, tail) = (u64::from(cq.head), u64::from(cq.tail));
            let posted = (tail + size - old) % size;
            let consumed = (u64::from(head) + size - old) % size;
            if consumed > posted {
                self.ignored_doorbells += 1;
                return;
            }
            cq.head = head;
            self.update_intx();
        } else {
            let Some(sq) = self.sqs.get_mut(qid).and_then(Option::as_mut) else {
                self.ignored_doorbells += 1;
                return;
            };
            let tail = (sq.tail & !mask) | (value & mask);
            if tail >= sq.size {
                self.ignored_doorbells += 1;
                return;
            }
            sq.tail = tail;
        }
        self.process();
    }
}
