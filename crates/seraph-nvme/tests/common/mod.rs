//! A test driver: drives an `NvmeController` through BAR0 and a test
//! guest memory the way a guest's NVMe driver would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use seraph_irq::IrqLine;
use seraph_irq::testing::RecordingSink;
use seraph_nvme::command::{CQE_SIZE, SQE_SIZE};
use seraph_nvme::{Command, Completion, DiskImage, NvmeController, Status};
use seraph_pci::{GuestDma, PciDevice, dma::test_memory};

/// Guest RAM size of the test machine.
pub const RAM: usize = 16 << 20;
/// INTx input the controller drives.
pub const INTX_LINE: u32 = 11;
pub const ASQ: u64 = 0x10000;
pub const ACQ: u64 = 0x11000;
pub const ADMIN_ENTRIES: u32 = 32;
/// Scratch buffer for admin data (Identify etc.).
pub const ADMIN_BUF: u64 = 0x12000;
/// I/O queue rings: qid n at IO_RINGS + n * 0x10_0000 (SQ) and + 0x8_0000 (CQ).
pub const IO_RINGS: u64 = 0x40_0000;
/// Data buffers.
pub const DATA: u64 = 0x20_0000;
/// PRP lists.
pub const LISTS: u64 = 0x30_0000;

#[derive(Debug, Clone, Copy)]
pub struct Ring {
    pub base: u64,
    pub size: u32,
    pub index: u32,
    pub phase: bool,
}

pub struct Driver {
    pub nvme: NvmeController,
    pub dma: GuestDma,
    pub sink: Arc<RecordingSink>,
    pub sq: Vec<Option<Ring>>,
    pub cq: Vec<Option<Ring>>,
    next_cid: u16,
}

pub fn cmd(opcode: u8) -> Command {
    Command {
        opcode,
        ..Command::default()
    }
}

impl Driver {
    /// A controller over `disk` with bus mastering and memory decoding on.
    pub fn new(disk: DiskImage) -> Self {
        let dma = GuestDma::new(test_memory(RAM));
        let sink = Arc::new(RecordingSink::default());
        let mut nvme = NvmeController::new(
            disk,
            dma.clone(),
            IrqLine::new(sink.clone(), INTX_LINE),
            sink.clone(),
        );
        nvme.config_mut().set_command(0x6);
        Self {
            nvme,
            dma,
            sink,
            sq: vec![None; 64],
            cq: vec![None; 64],
            next_cid: 1,
        }
    }

    pub fn memory_disk(blocks: usize, lba: u32, readonly: bool) -> Self {
        Self::new(DiskImage::in_memory(
            vec![0; blocks * lba as usize],
            lba,
            readonly,
        ))
    }

    pub fn read32(&mut self, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        self.nvme.bar_read(0, offset, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn read64(&mut self, offset: u64) -> u64 {
        let mut b = [0u8; 8];
        self.nvme.bar_read(0, offset, &mut b);
        u64::from_le_bytes(b)
    }

    pub fn write32(&mut self, offset: u64, value: u32) {
        self.nvme.bar_write(0, offset, &value.to_le_bytes());
    }

    pub fn write64(&mut self, offset: u64, value: u64) {
        self.nvme.bar_write(0, offset, &value.to_le_bytes());
    }

    /// Programs the admin queues (ASQ/ACQ as one 8-byte write each) and
    /// sets CC.EN with 64/16-byte I/O entries; checks CSTS.RDY.
    pub fn enable(&mut self) {
        self.write32(0x24, (ADMIN_ENTRIES - 1) | (ADMIN_ENTRIES - 1) << 16);
        self.write64(0x28, ASQ);
        self.write64(0x30, ACQ);
        self.write32(0x14, 1 | 6 << 16 | 4 << 20);
        assert_eq!(self.read32(0x1C) & 3, 1, "CSTS.RDY without CFS");
        let ring = |base| Ring {
            base,
            size: ADMIN_ENTRIES,
            index: 0,
            phase: true,
        };
        self.sq[0] = Some(ring(ASQ));
        self.cq[0] = Some(ring(ACQ));
    }

    /// Writes `c` (with a fresh command id) into SQ `qid` without ringing.
    pub fn queue(&mut self, qid: usize, mut c: Command) -> u16 {
        c.cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        let sq = self.sq[qid].as_mut().expect("no such SQ");
        let addr = sq.base + u64::from(sq.index) * SQE_SIZE as u64;
        self.dma.write(addr, &c.to_bytes()).unwrap();
        sq.index = (sq.index + 1) % sq.size;
        c.cid
    }

    /// Rings SQ `qid`'s tail doorbell with the driver's tail.
    pub fn ring(&mut self, qid: usize) {
        let tail = self.sq[qid].unwrap().index;
        self.write32(0x1000 + 8 * qid as u64, tail);
    }

    /// Takes the next completion of CQ `qid` if its phase says it is new
    /// (without ringing the head doorbell).
    pub fn peek(&mut self, qid: usize) -> Option<Completion> {
        let cq = self.cq[qid].as_mut().expect("no such CQ");
        let addr = cq.base + u64::from(cq.index) * CQE_SIZE as u64;
        let mut b = [0u8; CQE_SIZE];
        self.dma.read(addr, &mut b).unwrap();
        let c = Completion::parse(&b);
        if c.phase != cq.phase {
            return None;
        }
        cq.index += 1;
        if cq.index == cq.size {
            cq.index = 0;
            cq.phase = !cq.phase;
        }
        Some(c)
    }

    /// Writes CQ `qid`'s head doorbell with the driver's head.
    pub fn ack(&mut self, qid: usize) {
        let head = self.cq[qid].unwrap().index;
        self.write32(0x1000 + 8 * qid as u64 + 4, head);
    }

    /// Takes and acknowledges one completion.
    pub fn reap(&mut self, qid: usize) -> Option<Completion> {
        let c = self.peek(qid)?;
        self.ack(qid);
        Some(c)
    }

    /// Submits on SQ `sqid` and returns the completion from CQ `cqid`.
    pub fn submit_on(&mut self, sqid: usize, cqid: usize, c: Command) -> Completion {
        let cid = self.queue(sqid, c);
        self.ring(sqid);
        let done = self.reap(cqid).expect("a completion");
        assert_eq!(done.cid, cid, "command id echoed");
        assert_eq!(done.sq_id as usize, sqid, "SQ id echoed");
        assert_eq!(
            u32::from(done.sq_head),
            self.sq[sqid].unwrap().index,
            "SQ head after the command"
        );
        done
    }

    pub fn admin(&mut self, c: Command) -> Completion {
        self.submit_on(0, 0, c)
    }

    pub fn admin_ok(&mut self, c: Command) -> u32 {
        let done = self.admin(c);
        assert_eq!(done.status, Status::SUCCESS, "{c:?}");
        done.result
    }

    /// Creates CQ and SQ `qid` with `entries` entries (CQ interrupts on
    /// with `vector`).
    pub fn create_pair(&mut self, qid: u16, entries: u32, vector: u16) {
        let base = IO_RINGS + u64::from(qid) * 0x20_0000;
        let cq_base = base + 0x10_0000;
        let mut c = cmd(0x05);
        c.prp1 = cq_base;
        c.cdw[0] = u32::from(qid) | (entries - 1) << 16;
        c.cdw[1] = 1 | 2 | u32::from(vector) << 16;
        self.admin_ok(c);
        let mut s = cmd(0x01);
        s.prp1 = base;
        s.cdw[0] = u32::from(qid) | (entries - 1) << 16;
        s.cdw[1] = 1 | u32::from(qid) << 16;
        self.admin_ok(s);
        let ring = |base| Ring {
            base,
            size: entries,
            index: 0,
            phase: true,
        };
        self.sq[usize::from(qid)] = Some(ring(base));
        self.cq[usize::from(qid)] = Some(ring(cq_base));
    }

    /// An I/O command on queue pair `qid`.
    pub fn io(&mut self, qid: usize, c: Command) -> Completion {
        self.submit_on(qid, qid, c)
    }

    /// A Read or Write of `nlb` blocks at `slba` with data at `prp1` / `prp2`.
    pub fn rw(opcode: u8, slba: u64, nlb: u32, prp1: u64, prp2: u64) -> Command {
        let mut c = cmd(opcode);
        c.nsid = 1;
        c.prp1 = prp1;
        c.prp2 = prp2;
        c.cdw[0] = slba as u32;
        c.cdw[1] = (slba >> 32) as u32;
        c.cdw[2] = nlb - 1;
        c
    }
}
