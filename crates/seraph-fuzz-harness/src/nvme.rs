//! The `nvme_command` target: NVMe command parsing and execution.
//!
//! A controller over a 64-block in-memory disk and 1 MiB of guest memory is
//! brought up (admin queues, one I/O queue pair, MSI-X on or off), then the
//! input is decoded as operations: one selector byte `op`, then
//! - `op % 4 == 0`: a 64-byte admin command, submitted and rung;
//! - `op % 4 == 1`: a 64-byte I/O command on queue 1, submitted and rung;
//! - `op % 4 == 2`: a BAR0 write (u16 offset, u32 value): registers,
//!   doorbells, the MSI-X table;
//! - `op % 4 == 3`: a deadline call (leftover work).
//!
//! After each operation new completions are drained and acknowledged.
//! Guest DMA may overwrite the rings themselves (a Read into a queue), so
//! completions prove nothing; checked: the controller never panics, every
//! call returns after bounded work, CAP never changes and CSTS only ever
//! shows RDY, CFS and the shutdown status.

use std::sync::Arc;

use seraph_irq::IrqLine;
use seraph_irq::testing::RecordingSink;
use seraph_nvme::command::{CQE_SIZE, SQE_SIZE};
use seraph_nvme::{Completion, DiskImage, NvmeController};
use seraph_pci::{GuestDma, PciDevice, dma::test_memory};

use crate::bytes::Bytes;

const MAX_OPS: usize = 512;
const ENTRIES: u32 = 16;
const ASQ: u64 = 0x1000;
const ACQ: u64 = 0x2000;
const IOSQ: u64 = 0x3000;
const IOCQ: u64 = 0x4000;

struct Ring {
    base: u64,
    index: u32,
    phase: bool,
}

fn write32(nvme: &mut NvmeController, offset: u64, value: u32) {
    nvme.bar_write(0, offset, &value.to_le_bytes());
}

fn read64(nvme: &mut NvmeController, offset: u64) -> u64 {
    let mut b = [0u8; 8];
    nvme.bar_read(0, offset, &mut b);
    u64::from_le_bytes(b)
}

/// Submits `raw` (with command id `cid`) on queue `qid` and rings it.
fn submit(
    nvme: &mut NvmeController,
    dma: &GuestDma,
    sq: &mut Ring,
    qid: u64,
    raw: &[u8],
    cid: u16,
) {
    let mut entry = [0u8; SQE_SIZE];
    for (d, s) in entry.iter_mut().zip(raw) {
        *d = *s;
    }
    entry[2..4].copy_from_slice(&cid.to_le_bytes());
    let _ = dma.write(sq.base + u64::from(sq.index) * SQE_SIZE as u64, &entry);
    sq.index = (sq.index + 1) % ENTRIES;
    write32(nvme, 0x1000 + 8 * qid, sq.index);
}

/// Takes new completions from `cq` (queue `qid`), acknowledging them.
fn drain(nvme: &mut NvmeController, dma: &GuestDma, cq: &mut Ring, qid: u64) {
    for _ in 0..ENTRIES {
        let mut b = [0u8; CQE_SIZE];
        if dma
            .read(cq.base + u64::from(cq.index) * CQE_SIZE as u64, &mut b)
            .is_err()
        {
            return;
        }
        let c = Completion::parse(&b);
        if c.phase != cq.phase {
            break;
        }
        cq.index += 1;
        if cq.index == ENTRIES {
            cq.index = 0;
            cq.phase = !cq.phase;
        }
        write32(nvme, 0x1000 + 8 * qid + 4, cq.index);
    }
}

/// Runs one input (see the module documentation).
pub fn nvme_command(data: &[u8]) {
    let mut input = Bytes::new(data);
    let flags = input.u8();
    let dma = GuestDma::new(test_memory(1 << 20));
    let sink = Arc::new(RecordingSink::default());
    let disk = DiskImage::in_memory(vec![0; 64 * 512], 512, flags & 1 != 0);
    let mut nvme = NvmeController::new(disk, dma.clone(), IrqLine::new(sink.clone(), 5), sink);
    nvme.config_mut().set_command(0x6);
    if flags & 2 != 0 {
        // MSI-X on: find the capability and set its enable bit.
        let cap = nvme.config().read_value(0x34, 1) as u16;
        nvme.config_mut().write(cap + 3, &[0x80]);
        nvme.config_written(cap + 3, &[0x80]);
    }
    write32(&mut nvme, 0x24, (ENTRIES - 1) | (ENTRIES - 1) << 16);
    nvme.bar_write(0, 0x28, &ASQ.to_le_bytes());
    nvme.bar_write(0, 0x30, &ACQ.to_le_bytes());
    write32(&mut nvme, 0x14, 1 | 6 << 16 | 4 << 20);
    let mut asq = Ring {
        base: ASQ,
        index: 0,
        phase: true,
    };
    let mut acq = Ring {
        base: ACQ,
        index: 0,
        phase: true,
    };
    let mut iosq = Ring {
        base: IOSQ,
        index: 0,
        phase: true,
    };
    let mut iocq = Ring {
        base: IOCQ,
        index: 0,
        phase: true,
    };
    let mut cid = 0u16;
    // Create I/O CQ 1 (vector 1, interrupts on) and SQ 1.
    let mut create = [0u8; 64];
    create[0] = 0x05;
    create[24..32].copy_from_slice(&IOCQ.to_le_bytes());
    create[40..44].copy_from_slice(&(1 | (ENTRIES - 1) << 16).to_le_bytes());
    create[44..48].copy_from_slice(&(3u32 | 1 << 16).to_le_bytes());
    submit(&mut nvme, &dma, &mut asq, 0, &create, cid);
    cid += 1;
    create[0] = 0x01;
    create[24..32].copy_from_slice(&IOSQ.to_le_bytes());
    create[44..48].copy_from_slice(&(1u32 | 1 << 16).to_le_bytes());
    submit(&mut nvme, &dma, &mut asq, 0, &create, cid);
    cid += 1;
    drain(&mut nvme, &dma, &mut acq, 0);
    let cap = read64(&mut nvme, 0);

    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 4 {
            0 => {
                let raw = input.take(64);
                submit(&mut nvme, &dma, &mut asq, 0, raw, cid);
                cid = cid.wrapping_add(1);
            }
            1 => {
                let raw = input.take(64);
                submit(&mut nvme, &dma, &mut iosq, 1, raw, cid);
                cid = cid.wrapping_add(1);
            }
            2 => {
                let offset = u64::from(input.u16()) % 0x4000;
                let value = input.u32();
                write32(&mut nvme, offset, value);
            }
            _ => {
                if nvme.next_deadline_ns().is_some() {
                    nvme.on_deadline(0);
                }
            }
        }
        drain(&mut nvme, &dma, &mut acq, 0);
        drain(&mut nvme, &dma, &mut iocq, 1);
        let mut regs = [0u8; 8];
        nvme.bar_read(0, u64::from(input.u8()) * 4, &mut regs);
        assert_eq!(read64(&mut nvme, 0), cap, "CAP is constant");
        let csts = read64(&mut nvme, 0x1C) as u32;
        assert_eq!(csts & !0xF, 0, "CSTS {csts:#x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_and_a_bad_command_run_clean() {
        let mut input = vec![0u8];
        // I/O Read of LBA 0 into 0x8000.
        let mut read = [0u8; 65];
        read[0] = 1;
        read[1] = 0x02;
        read[1 + 4] = 1;
        read[1 + 24..1 + 32].copy_from_slice(&0x8000u64.to_le_bytes());
        input.extend_from_slice(&read);
        // An admin command with a garbage opcode.
        let mut bad = [0xA5u8; 65];
        bad[0] = 0;
        input.extend_from_slice(&bad);
        nvme_command(&input);
        nvme_command(&[2]);
        nvme_command(&[3; 300]);
    }
}
