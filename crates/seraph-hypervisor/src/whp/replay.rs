//! Bridging WHP's synchronous instruction emulator to the VMM's exit model.
//!
//! `WHvEmulatorTryIoEmulation` / `TryMmioEmulation` call back for every
//! port or memory access of the instruction and want a read's data at once,
//! while this crate hands reads to the VMM as a [`crate::VmExit`] and gets
//! the data at the next `run`. Memory that a RAM slot backs never reaches
//! the log: `emulator.rs` serves it from the host mapping. For ports and
//! unbacked (MMIO) addresses the bridge is replay:
//!
//! 1. An emulation pass runs with a [`Replay`] log. A write the log has not
//!    seen is recorded and succeeds. A read the log has not seen is recorded
//!    (with a batch of expected follow-ups for `rep ins`) and fails the pass:
//!    the emulator stops without committing registers.
//! 2. `run` hands the recorded accesses to the VMM in order, one exit each
//!    (consecutive same-port accesses coalesced, as `rep ins`/`rep outs`
//!    exits carry `size * count` bytes); reads come back filled.
//! 3. The next pass replays: logged accesses get their logged data, in
//!    order, and emulation goes on until it needs something new or succeeds.
//!    After success the remaining writes are handed out, then the guest runs.
//!
//! Limits: an instruction that reads N MMIO elements (e.g. `rep movs` from
//! MMIO) takes N passes of growing length; a log beyond [`MAX_LOG`] accesses
//! fails the emulation; reads batched for `rep ins` that the emulator does
//! not consume are dropped; writes reach the VMM after the instruction
//! retired (RIP already advanced); RAM writes of a pass that stops at a new
//! read are made again, with the same data, by the next pass.

/// Most accesses one emulated instruction may make.
pub const MAX_LOG: usize = 65_536;

/// What kind of access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    /// `in`/`ins`.
    PortRead,
    /// `out`/`outs`.
    PortWrite,
    /// Memory read of unbacked guest-physical memory.
    MmioRead,
    /// Memory write to unbacked guest-physical memory.
    MmioWrite,
}

impl AccessKind {
    fn is_read(self) -> bool {
        matches!(self, AccessKind::PortRead | AccessKind::MmioRead)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Access {
    kind: AccessKind,
    addr: u64,
    size: u8,
    data: [u8; 8],
    filled: bool,
}

/// One exit to hand to the VMM: accesses `start..end` of the log, all of
/// the same kind, address and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The kind of every access in it.
    pub kind: AccessKind,
    /// Port or guest-physical address.
    pub addr: u64,
    /// Bytes per access.
    pub size: u8,
    /// Total bytes (element size times count).
    pub len: usize,
    start: usize,
    end: usize,
}

/// The replay log of one emulated instruction.
#[derive(Debug, Clone)]
pub struct Replay {
    log: Vec<Access>,
    cursor: usize,
    delivered: usize,
    awaiting: Option<(usize, usize)>,
    read_budget: u64,
    max_bytes: usize,
    finished: bool,
    failure: Option<&'static str>,
}

impl Replay {
    /// A log for one instruction. `expected_reads` is how many elements a
    /// string read is expected to move (RCX for `rep ins`, else 1): that many
    /// reads are requested in one exit, up to `max_bytes` bytes.
    pub fn new(expected_reads: u64, max_bytes: usize) -> Self {
        Replay {
            log: Vec::new(),
            cursor: 0,
            delivered: 0,
            awaiting: None,
            read_budget: expected_reads.max(1),
            max_bytes: max_bytes.max(8),
            finished: false,
            failure: None,
        }
    }

    /// Starts an emulation pass (replays from the first access).
    pub fn begin_pass(&mut self) {
        self.cursor = 0;
    }

    /// The emulator's callback: returns true if the access is answered
    /// (`data` filled for a read), false to fail the pass.
    pub fn on_access(&mut self, kind: AccessKind, addr: u64, data: &mut [u8]) -> bool {
        let size = data.len();
        if size == 0 || size > 8 {
            self.failure = Some("access size outside 1-8 bytes");
            return false;
        }
        if let Some(entry) = self.log.get(self.cursor) {
            if entry.kind != kind || entry.addr != addr || usize::from(entry.size) != size {
                self.failure = Some("the emulator's accesses changed between passes");
                return false;
            }
            if kind.is_read() {
                if !entry.filled {
                    return false; // still waiting for the VMM
                }
                data.copy_from_slice(&entry.data[..size]);
            }
            self.cursor += 1;
            return true;
        }
        if self.log.len() >= MAX_LOG {
            self.failure = Some("the instruction made too many accesses");
            return false;
        }
        let mut entry = Access {
            kind,
            addr,
            size: size as u8,
            data: [0; 8],
            filled: false,
        };
        if !kind.is_read() {
            entry.data[..size].copy_from_slice(data);
            entry.filled = true;
            self.log.push(entry);
            self.cursor += 1;
            return true;
        }
        // A new read: request a batch and fail this pass.
        let per_exit = (self.max_bytes / size).max(1) as u64;
        let batch = if kind == AccessKind::PortRead {
            self.read_budget.clamp(1, per_exit)
        } else {
            1
        };
        let room = (MAX_LOG - self.log.len()) as u64;
        for _ in 0..batch.min(room) {
            self.log.push(entry);
        }
        self.read_budget = self.read_budget.saturating_sub(batch).max(1);
        false
    }

    /// Ends a pass; `success` is the emulator's verdict.
    pub fn end_pass(&mut self, success: bool) {
        if success {
            self.finished = true;
        }
    }

    /// Why the log refused an access, if it did.
    pub fn failure(&self) -> Option<&'static str> {
        self.failure
    }

    /// The emulator finished the instruction.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Reads handed out whose data has not come back yet.
    pub fn awaiting(&self) -> bool {
        self.awaiting.is_some()
    }

    /// The next exit to hand out, if any.
    pub fn next_delivery(&self) -> Option<Delivery> {
        let first = self.log.get(self.delivered)?;
        let mut end = self.delivered + 1;
        let mut len = usize::from(first.size);
        let coalesce = matches!(first.kind, AccessKind::PortRead | AccessKind::PortWrite);
        while coalesce && end < self.log.len() {
            match self.log.get(end) {
                Some(a)
                    if a.kind == first.kind
                        && a.addr == first.addr
                        && a.size == first.size
                        && a.filled == first.filled
                        && len + usize::from(a.size) <= self.max_bytes =>
                {
                    len += usize::from(a.size);
                    end += 1;
                }
                _ => break,
            }
        }
        Some(Delivery {
            kind: first.kind,
            addr: first.addr,
            size: first.size,
            len,
            start: self.delivered,
            end,
        })
    }

    /// Marks `d` handed out. For writes, copies the bytes into `buf`
    /// (which must hold `d.len` bytes); for reads, waits for [`Replay::supply`].
    pub fn deliver(&mut self, d: &Delivery, buf: &mut [u8]) {
        if d.kind.is_read() {
            self.awaiting = Some((d.start, d.end));
        } else {
            let mut off = 0;
            for a in self.log.get(d.start..d.end).unwrap_or(&[]) {
                let n = usize::from(a.size);
                if let Some(dst) = buf.get_mut(off..off + n) {
                    dst.copy_from_slice(&a.data[..n]);
                }
                off += n;
            }
        }
        self.delivered = d.end;
    }

    /// The VMM's answer to the reads handed out last, from `buf`.
    pub fn supply(&mut self, buf: &[u8]) {
        let Some((start, end)) = self.awaiting.take() else {
            return;
        };
        let mut off = 0;
        for a in self.log.get_mut(start..end).unwrap_or(&mut []) {
            let n = usize::from(a.size);
            if let Some(src) = buf.get(off..off + n) {
                a.data[..n].copy_from_slice(src);
            }
            a.filled = true;
            off += n;
        }
    }

    /// True while a pass would need data no one has asked the VMM for yet.
    pub fn has_undelivered(&self) -> bool {
        self.delivered < self.log.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmio_read_fails_first_pass_then_replays_the_vmm_data() {
        let mut r = Replay::new(1, 4096);
        r.begin_pass();
        let mut d = [0u8; 4];
        assert!(!r.on_access(AccessKind::MmioRead, 0xFEE0_0390, &mut d));
        r.end_pass(false);
        let del = r.next_delivery().unwrap();
        assert_eq!(
            (del.kind, del.addr, del.len),
            (AccessKind::MmioRead, 0xFEE0_0390, 4)
        );
        let mut buf = [0u8; 16];
        r.deliver(&del, &mut buf);
        assert!(r.awaiting());
        assert!(r.next_delivery().is_none());
        r.supply(&[0x78, 0x56, 0x34, 0x12]);
        r.begin_pass();
        assert!(r.on_access(AccessKind::MmioRead, 0xFEE0_0390, &mut d));
        assert_eq!(u32::from_le_bytes(d), 0x1234_5678);
        r.end_pass(true);
        assert!(r.finished());
        assert!(!r.has_undelivered());
    }

    #[test]
    fn writes_succeed_at_once_and_are_delivered_after() {
        let mut r = Replay::new(1, 4096);
        r.begin_pass();
        let mut d = [0xB0, 0, 0, 0];
        assert!(r.on_access(AccessKind::MmioWrite, 0xFEE0_00B0, &mut d));
        r.end_pass(true);
        let del = r.next_delivery().unwrap();
        assert_eq!((del.kind, del.len), (AccessKind::MmioWrite, 4));
        let mut buf = [0u8; 8];
        r.deliver(&del, &mut buf);
        assert_eq!(&buf[..4], &[0xB0, 0, 0, 0]);
        assert!(r.next_delivery().is_none());
    }

    #[test]
    fn rep_outsb_coalesces_into_one_io_out() {
        let mut r = Replay::new(5, 4096);
        r.begin_pass();
        for b in b"hello" {
            assert!(r.on_access(AccessKind::PortWrite, 0x3F8, &mut [*b]));
        }
        r.end_pass(true);
        let del = r.next_delivery().unwrap();
        assert_eq!(
            (del.kind, del.addr, del.len),
            (AccessKind::PortWrite, 0x3F8, 5)
        );
        let mut buf = [0u8; 8];
        r.deliver(&del, &mut buf);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn rep_insw_asks_for_the_whole_count_in_one_exit() {
        let mut r = Replay::new(3, 4096);
        r.begin_pass();
        let mut d = [0u8; 2];
        assert!(!r.on_access(AccessKind::PortRead, 0x1F0, &mut d));
        let del = r.next_delivery().unwrap();
        assert_eq!(del.len, 6);
        let mut buf = [0u8; 6];
        r.deliver(&del, &mut buf);
        r.supply(&[1, 0, 2, 0, 3, 0]);
        r.begin_pass();
        let mut got = Vec::new();
        for _ in 0..3 {
            assert!(r.on_access(AccessKind::PortRead, 0x1F0, &mut d));
            got.push(u16::from_le_bytes(d));
        }
        assert_eq!(got, [1, 2, 3]);
    }

    #[test]
    fn batches_are_capped_by_the_buffer() {
        let mut r = Replay::new(10_000, 16);
        r.begin_pass();
        assert!(!r.on_access(AccessKind::PortRead, 0x60, &mut [0u8; 4]));
        assert_eq!(r.next_delivery().unwrap().len, 16);
    }

    #[test]
    fn write_then_read_in_one_instruction_keeps_order() {
        let mut r = Replay::new(1, 4096);
        r.begin_pass();
        assert!(r.on_access(AccessKind::MmioWrite, 0x1000, &mut [7]));
        assert!(!r.on_access(AccessKind::MmioRead, 0x2000, &mut [0]));
        let mut buf = [0u8; 8];
        let first = r.next_delivery().unwrap();
        assert_eq!(first.kind, AccessKind::MmioWrite);
        r.deliver(&first, &mut buf);
        let second = r.next_delivery().unwrap();
        assert_eq!(second.kind, AccessKind::MmioRead);
        r.deliver(&second, &mut buf);
        r.supply(&[9]);
        r.begin_pass();
        assert!(r.on_access(AccessKind::MmioWrite, 0x1000, &mut [7]));
        let mut d = [0u8];
        assert!(r.on_access(AccessKind::MmioRead, 0x2000, &mut d));
        assert_eq!(d, [9]);
    }

    #[test]
    fn a_changed_access_pattern_fails_with_a_reason() {
        let mut r = Replay::new(1, 4096);
        r.begin_pass();
        assert!(r.on_access(AccessKind::MmioWrite, 0x1000, &mut [1]));
        r.begin_pass();
        assert!(!r.on_access(AccessKind::MmioWrite, 0x1004, &mut [1]));
        assert!(r.failure().is_some());
    }

    #[test]
    fn oversized_accesses_are_refused() {
        let mut r = Replay::new(1, 4096);
        assert!(!r.on_access(AccessKind::MmioRead, 0, &mut [0u8; 16]));
        assert!(!r.on_access(AccessKind::MmioRead, 0, &mut []));
        assert!(r.failure().is_some());
    }

    #[test]
    fn the_log_is_bounded() {
        let mut r = Replay::new(1, 4096);
        r.begin_pass();
        for _ in 0..MAX_LOG {
            assert!(r.on_access(AccessKind::PortWrite, 0x80, &mut [0]));
        }
        assert!(!r.on_access(AccessKind::PortWrite, 0x80, &mut [0]));
        assert_eq!(r.failure(), Some("the instruction made too many accesses"));
    }
}
