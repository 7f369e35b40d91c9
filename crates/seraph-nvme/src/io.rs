//! NVM I/O commands: Read, Write, Flush, Write Zeroes, Dataset Management.

use crate::command::Command;
use crate::controller::{NvmeController, Outcome};
use crate::prp;
use crate::spec::{Status, io};

/// Force Unit Access (CDW12 bit 30 of Read/Write/Write Zeroes).
const FUA: u32 = 1 << 30;
/// Dataset Management attribute: deallocate (CDW11 bit 2).
const DEALLOCATE: u32 = 1 << 2;

impl NvmeController {
    /// Executes an I/O command.
    pub(crate) fn io(&mut self, cmd: &Command) -> Outcome {
        if !matches!(
            cmd.opcode,
            io::FLUSH | io::WRITE | io::READ | io::WRITE_ZEROES | io::DATASET_MANAGEMENT
        ) {
            return Outcome::Done(Status::INVALID_OPCODE, 0);
        }
        if cmd.psdt != 0 || cmd.fuse != 0 {
            return Outcome::Done(Status::INVALID_FIELD, 0);
        }
        let result = match cmd.opcode {
            io::FLUSH => self.flush(cmd),
            io::READ => self.read(cmd),
            io::WRITE => self.write(cmd),
            io::WRITE_ZEROES => self.write_zeroes(cmd),
            _ => self.dataset_management(cmd),
        };
        result.map(|()| 0).into()
    }

    /// Checks the namespace and the LBA range; returns (byte offset, bytes).
    fn lba_range(&self, cmd: &Command) -> Result<(u64, u64), Status> {
        if cmd.nsid != 1 {
            return Err(Status::INVALID_NAMESPACE);
        }
        let nlb = u64::from(cmd.nlb());
        let end = cmd.slba().checked_add(nlb);
        if end.is_none_or(|e| e > self.disk.blocks()) {
            return Err(Status::LBA_OUT_OF_RANGE);
        }
        let lba = u64::from(self.disk.lba_size());
        Ok((cmd.slba() * lba, nlb * lba))
    }

    fn flush(&mut self, cmd: &Command) -> Result<(), Status> {
        if cmd.nsid != 1 && cmd.nsid != 0xFFFF_FFFF {
            return Err(Status::INVALID_NAMESPACE);
        }
        self.disk.flush().map_err(|_| Status::WRITE_FAULT)
    }

    fn read(&mut self, cmd: &Command) -> Result<(), Status> {
        let (offset, len) = self.lba_range(cmd)?;
        if len > self.max_transfer() {
            return Err(Status::INVALID_FIELD);
        }
        let segs = prp::segments(
            &self.dma,
            cmd.prp1,
            cmd.prp2,
            len as usize,
            self.page_size(),
        )?;
        let mut buf = vec![0u8; len as usize];
        self.disk
            .read_at(offset, &mut buf)
            .map_err(|_| Status::UNRECOVERED_READ_ERROR)?;
        prp::write_to_guest(&self.dma, &segs, &buf)?;
        self.moved += len;
        self.counters.units_read += len / 512;
        self.counters.read_commands += 1;
        Ok(())
    }

    fn write(&mut self, cmd: &Command) -> Result<(), Status> {
        let (offset, len) = self.lba_range(cmd)?;
        if len > self.max_transfer() {
            return Err(Status::INVALID_FIELD);
        }
        if self.disk.readonly() {
            return Err(Status::WRITE_PROTECTED);
        }
        let segs = prp::segments(
            &self.dma,
            cmd.prp1,
            cmd.prp2,
            len as usize,
            self.page_size(),
        )?;
        let mut buf = vec![0u8; len as usize];
        prp::read_from_guest(&self.dma, &segs, &mut buf)?;
        self.disk
            .write_at(offset, &buf)
            .map_err(|_| Status::WRITE_FAULT)?;
        self.write_through(cmd)?;
        self.moved += len;
        self.counters.units_written += len / 512;
        self.counters.write_commands += 1;
        Ok(())
    }

    /// With FUA, or the volatile write cache turned off, a write is made
    /// durable before it completes.
    fn write_through(&mut self, cmd: &Command) -> Result<(), Status> {
        if cmd.cdw(12) & FUA != 0 || !self.features.write_cache {
            self.disk.flush().map_err(|_| Status::WRITE_FAULT)?;
        }
        Ok(())
    }

    fn write_zeroes(&mut self, cmd: &Command) -> Result<(), Status> {
        let (offset, len) = self.lba_range(cmd)?;
        if self.disk.readonly() {
            return Err(Status::WRITE_PROTECTED);
        }
        self.disk
            .write_zeroes(offset, len)
            .map_err(|_| Status::WRITE_FAULT)?;
        self.write_through(cmd)?;
        self.moved += len;
        Ok(())
    }

    /// Ranges are checked; deallocation is a no-op (Identify Namespace
    /// reports DLFEAT 0: deallocated blocks read back unchanged).
    fn dataset_management(&mut self, cmd: &Command) -> Result<(), Status> {
        if cmd.nsid != 1 {
            return Err(Status::INVALID_NAMESPACE);
        }
        let ranges = (cmd.cdw(10) & 0xFF) as usize + 1;
        let segs = prp::segments(&self.dma, cmd.prp1, cmd.prp2, ranges * 16, self.page_size())?;
        let mut buf = vec![0u8; ranges * 16];
        prp::read_from_guest(&self.dma, &segs, &mut buf)?;
        for r in buf.chunks_exact(16) {
            let mut len = [0u8; 4];
            let mut slba = [0u8; 8];
            len.copy_from_slice(r.get(4..8).unwrap_or(&[0; 4]));
            slba.copy_from_slice(r.get(8..16).unwrap_or(&[0; 8]));
            let end = u64::from_le_bytes(slba).checked_add(u64::from(u32::from_le_bytes(len)));
            if end.is_none_or(|e| e > self.disk.blocks()) {
                return Err(Status::LBA_OUT_OF_RANGE);
            }
        }
        if cmd.cdw(11) & DEALLOCATE != 0 && self.disk.readonly() {
            return Err(Status::WRITE_PROTECTED);
        }
        Ok(())
    }
}
