//! The controller: BAR0 registers and doorbells, the enable/shutdown
//! handshakes, queue processing with a work budget, interrupts.

use std::sync::Arc;

use seraph_irq::{IrqLine, MsiSink};
use seraph_pci::{BarSpec, ConfigSpace, GuestDma, PciDevice, PciIds};

use crate::backend::DiskImage;
use crate::command::{Command, Completion, SQE_SIZE};
use crate::identify::Counters;
use crate::msix::Msix;
use crate::queue::{CompQueue, SubQueue};
use crate::spec::{Status, cc, csts};

/// PCI vendor id: not a registered vendor (drivers bind NVMe by class
/// code 01/08/02, so no quirks apply).
pub const VENDOR_ID: u16 = 0x5356;
/// PCI device id.
pub const DEVICE_ID: u16 = 0x0010;
/// BAR0 size: registers, doorbells, MSI-X table and PBA.
pub const BAR0_SIZE: u64 = 0x4000;
/// Queue ids 0 (admin) to `MAX_QUEUES - 1`.
pub const MAX_QUEUES: usize = 64;
/// MSI-X vectors (one per completion queue).
pub const MSIX_VECTORS: u16 = MAX_QUEUES as u16;
/// MSI-X table offset in BAR0.
pub const MSIX_TABLE: u64 = 0x2000;
/// MSI-X pending-bit array offset in BAR0.
pub const MSIX_PBA: u64 = 0x3000;
/// CAP.MQES: largest queue is 65536 entries (0-based 0xFFFF).
pub const MQES: u32 = 0xFFFF;
/// MDTS: largest transfer 2^7 x 4 KiB = 512 KiB.
pub const MDTS: u8 = 7;
/// Outstanding Asynchronous Event Requests allowed (AERL + 1).
pub const AER_LIMIT: usize = 4;
/// Commands executed per [`NvmeController::process`] call at most.
pub const COMMAND_BUDGET: u32 = 256;
/// Data bytes moved per [`NvmeController::process`] call (a command that
/// starts within budget always finishes).
pub const BYTE_BUDGET: u64 = 8 << 20;
/// Commands taken from one queue before moving to the next (round robin).
const BURST: u32 = 16;

/// Values Set Features changed (defaults after a controller reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Features {
    pub arbitration: u32,
    pub power_management: u32,
    pub temperature_threshold: u32,
    pub error_recovery: u32,
    pub write_cache: bool,
    pub coalescing: u32,
    pub vector_config: Vec<u32>,
    pub write_atomicity: u32,
    pub async_event_config: u32,
}

impl Default for Features {
    fn default() -> Self {
        Self {
            arbitration: 0,
            power_management: 0,
            temperature_threshold: 343,
            error_recovery: 0,
            write_cache: true,
            coalescing: 0,
            vector_config: (0..u32::from(MSIX_VECTORS)).collect(),
            write_atomicity: 0,
            async_event_config: 0,
        }
    }
}

/// What executing a command produced.
pub(crate) enum Outcome {
    /// Post a completion with this status and DW0.
    Done(Status, u32),
    /// No completion now (an Asynchronous Event Request).
    Held,
}

impl From<Result<u32, Status>> for Outcome {
    fn from(r: Result<u32, Status>) -> Self {
        match r {
            Ok(v) => Outcome::Done(Status::SUCCESS, v),
            Err(s) => Outcome::Done(s, 0),
        }
    }
}

/// An NVMe 1.4 controller with one namespace, as a PCI function.
pub struct NvmeController {
    pub(crate) config: ConfigSpace,
    pub(crate) msix: Msix,
    pub(crate) dma: GuestDma,
    intx: IrqLine,
    intx_level: bool,
    pub(crate) disk: DiskImage,
    pub(crate) cc: u32,
    pub(crate) csts: u32,
    pub(crate) aqa: u32,
    pub(crate) asq: u64,
    pub(crate) acq: u64,
    pub(crate) intms: u32,
    pub(crate) sqs: Vec<Option<SubQueue>>,
    pub(crate) cqs: Vec<Option<CompQueue>>,
    pub(crate) aers: Vec<u16>,
    pub(crate) features: Features,
    pub(crate) counters: Counters,
    /// Data bytes moved by the command being executed.
    pub(crate) moved: u64,
    pub(crate) pending_work: bool,
    pub(crate) ignored_doorbells: u64,
}

impl std::fmt::Debug for NvmeController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmeController")
            .field("disk", &self.disk.path())
            .field("cc", &format_args!("{:#x}", self.cc))
            .field("csts", &format_args!("{:#x}", self.csts))
            .finish()
    }
}

impl NvmeController {
    /// A controller serving `disk` as namespace 1, doing DMA through `dma`,
    /// raising INTx on `intx` (pin INTA#) and MSI-X messages into `msi`.
    pub fn new(disk: DiskImage, dma: GuestDma, intx: IrqLine, msi: Arc<dyn MsiSink>) -> Self {
        let mut config = ConfigSpace::new(PciIds {
            vendor: VENDOR_ID,
            device: DEVICE_ID,
            subsystem_vendor: VENDOR_ID,
            subsystem: DEVICE_ID,
            revision: 1,
            class: 0x01,
            subclass: 0x08,
            prog_if: 0x02,
        });
        // Slot 0 is free and the size a power of two: this cannot fail.
        let _ = config.add_bar(0, BarSpec::memory64(BAR0_SIZE));
        config.set_interrupt_pin(1);
        let msix = Msix::new(
            &mut config,
            MSIX_VECTORS,
            0,
            MSIX_TABLE as u32,
            MSIX_PBA as u32,
            msi,
        );
        Self {
            config,
            msix,
            dma,
            intx,
            intx_level: false,
            disk,
            cc: 0,
            csts: 0,
            aqa: 0,
            asq: 0,
            acq: 0,
            intms: 0,
            sqs: vec![None; MAX_QUEUES],
            cqs: vec![None; MAX_QUEUES],
            aers: Vec::new(),
            features: Features::default(),
            counters: Counters::default(),
            moved: 0,
            pending_work: false,
            ignored_doorbells: 0,
        }
    }

    /// The CAP register.
    pub fn cap() -> u64 {
        // MQES, CQR (contiguous queues required), TO = 1 (500 ms),
        // DSTRD 0, CSS bit 37 (NVM), MPSMIN 0 (4 KiB), MPSMAX 4 (64 KiB).
        u64::from(MQES) | 1 << 16 | 1 << 24 | 1 << 37 | 4 << 52
    }

    /// The disk behind namespace 1.
    pub fn disk(&self) -> &DiskImage {
        &self.disk
    }

    /// True when CSTS.RDY is set.
    pub fn ready(&self) -> bool {
        self.csts & csts::RDY != 0
    }

    /// Doorbell writes ignored so far (no such queue, or a value past its end).
    pub fn ignored_doorbells(&self) -> u64 {
        self.ignored_doorbells
    }

    /// Memory page size from CC.MPS.
    pub(crate) fn page_size(&self) -> u64 {
        1 << (12 + cc::mps(self.cc))
    }

    /// Largest data transfer in bytes (MDTS).
    pub(crate) fn max_transfer(&self) -> u64 {
        4096 << MDTS
    }

    /// True if submitted commands are waiting (the budget ran out or a full
    /// completion queue blocks them until the guest frees entries).
    pub fn has_pending_work(&self) -> bool {
        self.pending_work
    }

    pub(crate) fn msix_enabled(&self) -> bool {
        self.msix.enabled(&self.config)
    }

    // ---- processing -----------------------------------------------------

    /// Executes submitted commands, within [`COMMAND_BUDGET`] and
    /// [`BYTE_BUDGET`]; what is left waits for the next doorbell or
    /// [`PciDevice::on_deadline`]. A full completion queue stops its
    /// submission queues until the guest moves that queue's head.
    pub fn process(&mut self) {
        self.pending_work = false;
        if !self.ready() || !self.config.bus_master() || self.csts & csts::CFS != 0 {
            return;
        }
        let mut commands = 0u32;
        let mut bytes = 0u64;
        let mut posted = [false; MAX_QUEUES];
        'rounds: loop {
            let mut progress = false;
            for qid in 0..MAX_QUEUES {
                for _ in 0..BURST {
                    if commands >= COMMAND_BUDGET || bytes >= BYTE_BUDGET {
                        self.pending_work = true;
                        break 'rounds;
                    }
                    match self.step(qid, &mut posted) {
                        Some(moved) => {
                            commands += 1;
                            bytes += moved;
                            progress = true;
                        }
                        None => break,
                    }
                }
            }
            if !progress {
                break;
            }
        }
        self.signal(&posted);
    }

    /// Executes the head command of SQ `qid`; `None` if it is empty, its
    /// CQ is full, or memory failed (fatal).
    fn step(&mut self, qid: usize, posted: &mut [bool; MAX_QUEUES]) -> Option<u64> {
        let sq = (*self.sqs.get(qid)?)?;
        if sq.is_empty() || self.csts & csts::CFS != 0 {
            return None;
        }
        let cq = (*self.cqs.get(usize::from(sq.cqid))?)?;
        if cq.is_full() {
            return None;
        }
        let mut raw = [0u8; SQE_SIZE];
        if self.dma.read(sq.head_addr(), &mut raw).is_err() {
            // The queue left guest memory: a PCIe master abort, fatal.
            self.csts |= csts::CFS;
            return None;
        }
        let mut sq_now = sq;
        sq_now.advance();
        if let Some(Some(s)) = self.sqs.get_mut(qid) {
            s.head = sq_now.head;
        }
        let cmd = Command::parse(&raw);
        self.moved = 0;
        let outcome = if qid == 0 {
            self.admin(&cmd)
        } else {
            self.io(&cmd)
        };
        if let Outcome::Done(status, result) = outcome {
            self.post(
                usize::from(sq.cqid),
                Completion {
                    result,
                    sq_head: sq_now.head as u16,
                    sq_id: qid as u16,
                    cid: cmd.cid,
                    phase: false,
                    status,
                },
            );
            if let Some(p) = posted.get_mut(usize::from(sq.cqid)) {
                *p = true;
            }
        }
        Some(self.moved)
    }

    /// Writes a completion at CQ `cqid`'s tail (the phase is the queue's):
    /// DW0-DW2 first, then DW3 with the phase tag.
    fn post(&mut self, cqid: usize, mut c: Completion) {
        let Some(Some(cq)) = self.cqs.get_mut(cqid) else {
            return;
        };
        c.phase = cq.phase;
        let bytes = c.to_bytes();
        let addr = cq.tail_addr();
        let (body, dw3) = bytes.split_at(12);
        let ok = self.dma.write(addr, body).is_ok() && self.dma.write(addr + 12, dw3).is_ok();
        if !ok {
            self.csts |= csts::CFS;
            return;
        }
        cq.advance();
    }

    fn signal(&mut self, posted: &[bool; MAX_QUEUES]) {
        if self.msix_enabled() {
            for (cqid, _) in posted.iter().enumerate().filter(|(_, p)| **p) {
                if let Some(Some(cq)) = self.cqs.get(cqid)
                    && cq.interrupts
                {
                    let v = cq.vector;
                    self.msix.notify(&self.config, v);
                }
            }
        }
        self.update_intx();
    }

    /// Recomputes the INTx level: some interrupt-enabled CQ holds entries
    /// the guest has not acknowledged, MSI-X is off, INTMS bit 0 is clear
    /// and the command register allows INTx.
    pub(crate) fn update_intx(&mut self) {
        let pending = !self.msix_enabled()
            && self
                .cqs
                .iter()
                .flatten()
                .any(|cq| cq.interrupts && cq.has_unread());
        let asserted = pending && self.intms & 1 == 0;
        self.config.set_interrupt_status(asserted);
        let level = asserted && !self.config.intx_disabled();
        if level != self.intx_level {
            self.intx_level = level;
            self.intx.set_level(level);
        }
    }
}

impl PciDevice for NvmeController {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn config_written(&mut self, _offset: u16, _data: &[u8]) {
        // MSI-X enable/mask, INTx disable or bus mastering may have changed.
        self.msix.deliver_unmasked(&self.config);
        self.update_intx();
        if self.sqs.iter().flatten().any(|sq| !sq.is_empty()) {
            self.process();
        }
    }

    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8]) {
        // Any access continues a budget-limited backlog (a polling guest
        // reading CSTS makes progress even if no deadline is serviced).
        if self.pending_work {
            self.process();
        }
        data.fill(0);
        if bar != 0 || data.len() > 8 {
            return;
        }
        for (i, b) in data.iter_mut().enumerate() {
            let at = offset.wrapping_add(i as u64);
            let word = self.read_dword(at & !3);
            *b = (word >> (8 * (at & 3))) as u8;
        }
    }

    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8]) {
        if self.pending_work {
            self.process();
        }
        if bar != 0 || data.is_empty() || data.len() > 8 {
            return;
        }
        // The dwords the access covers, low address first (an 8-byte write
        // to ASQ is its low half, then its high half).
        for (dword, in_dw, in_buf, n) in seraph_pci::dword::split_dwords(offset, data.len()) {
            let mut bytes = [0u8; 4];
            if let (Some(dst), Some(src)) = (
                bytes.get_mut(in_dw..in_dw + n),
                data.get(in_buf..in_buf + n),
            ) {
                dst.copy_from_slice(src);
            }
            let mask = seraph_pci::dword::byte_mask(in_dw, n);
            self.write_dword(dword, u32::from_le_bytes(bytes), mask);
        }
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        // Work left over from a budget-limited batch is due at once.
        self.pending_work.then_some(0)
    }

    fn on_deadline(&mut self, _now_ns: u64) {
        if self.pending_work {
            self.process();
        }
    }
}
