//! Submission and completion queue entries.

use crate::spec::Status;

/// Size of a submission queue entry.
pub const SQE_SIZE: usize = 64;
/// Size of a completion queue entry.
pub const CQE_SIZE: usize = 16;

/// A decoded 64-byte submission queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Command {
    /// Opcode (CDW0 bits 7:0).
    pub opcode: u8,
    /// Fused operation (CDW0 bits 9:8).
    pub fuse: u8,
    /// PRP or SGL selection (CDW0 bits 15:14; 0 = PRPs).
    pub psdt: u8,
    /// Command identifier (CDW0 bits 31:16).
    pub cid: u16,
    /// Namespace identifier.
    pub nsid: u32,
    /// Metadata pointer.
    pub mptr: u64,
    /// PRP entry 1.
    pub prp1: u64,
    /// PRP entry 2.
    pub prp2: u64,
    /// Command dwords 10 to 15.
    pub cdw: [u32; 6],
}

fn dword(bytes: &[u8; SQE_SIZE], index: usize) -> u32 {
    let mut d = [0u8; 4];
    if let Some(src) = bytes.get(index * 4..index * 4 + 4) {
        d.copy_from_slice(src);
    }
    u32::from_le_bytes(d)
}

fn qword(bytes: &[u8; SQE_SIZE], index: usize) -> u64 {
    u64::from(dword(bytes, index)) | u64::from(dword(bytes, index + 1)) << 32
}

impl Command {
    /// Decodes an entry; every bit pattern is a command (validation is the
    /// handlers' job).
    pub fn parse(bytes: &[u8; SQE_SIZE]) -> Self {
        let cdw0 = dword(bytes, 0);
        Self {
            opcode: cdw0 as u8,
            fuse: ((cdw0 >> 8) & 0x3) as u8,
            psdt: ((cdw0 >> 14) & 0x3) as u8,
            cid: (cdw0 >> 16) as u16,
            nsid: dword(bytes, 1),
            mptr: qword(bytes, 4),
            prp1: qword(bytes, 6),
            prp2: qword(bytes, 8),
            cdw: [
                dword(bytes, 10),
                dword(bytes, 11),
                dword(bytes, 12),
                dword(bytes, 13),
                dword(bytes, 14),
                dword(bytes, 15),
            ],
        }
    }

    /// Encodes the entry (what a driver writes into its submission queue).
    pub fn to_bytes(&self) -> [u8; SQE_SIZE] {
        let mut out = [0u8; SQE_SIZE];
        let cdw0 = u32::from(self.opcode)
            | u32::from(self.fuse & 0x3) << 8
            | u32::from(self.psdt & 0x3) << 14
            | u32::from(self.cid) << 16;
        let mut put = |index: usize, value: u32| {
            if let Some(dst) = out.get_mut(index * 4..index * 4 + 4) {
                dst.copy_from_slice(&value.to_le_bytes());
            }
        };
        put(0, cdw0);
        put(1, self.nsid);
        put(4, self.mptr as u32);
        put(5, (self.mptr >> 32) as u32);
        put(6, self.prp1 as u32);
        put(7, (self.prp1 >> 32) as u32);
        put(8, self.prp2 as u32);
        put(9, (self.prp2 >> 32) as u32);
        for (i, v) in self.cdw.iter().enumerate() {
            put(10 + i, *v);
        }
        out
    }

    /// Command dword 10 + `i` (0 for i > 5).
    pub fn cdw(&self, dword: usize) -> u32 {
        dword
            .checked_sub(10)
            .and_then(|i| self.cdw.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// The starting LBA of a Read/Write/Write Zeroes (CDW11:CDW10).
    pub fn slba(&self) -> u64 {
        u64::from(self.cdw(10)) | u64::from(self.cdw(11)) << 32
    }

    /// The number of logical blocks of a Read/Write/Write Zeroes (CDW12
    /// bits 15:0 plus one).
    pub fn nlb(&self) -> u32 {
        (self.cdw(12) & 0xFFFF) + 1
    }
}

/// A completion queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// Command specific result (DW0).
    pub result: u32,
    /// Submission queue head pointer after the command was consumed.
    pub sq_head: u16,
    /// Submission queue the command came from.
    pub sq_id: u16,
    /// The command's identifier.
    pub cid: u16,
    /// Phase tag.
    pub phase: bool,
    /// Status.
    pub status: Status,
}

impl Completion {
    /// Encodes the 16-byte entry.
    pub fn to_bytes(&self) -> [u8; CQE_SIZE] {
        let mut out = [0u8; CQE_SIZE];
        let dw2 = u32::from(self.sq_head) | u32::from(self.sq_id) << 16;
        let dw3 = u32::from(self.cid)
            | u32::from(self.phase) << 16
            | u32::from(self.status.field()) << 17;
        out[0..4].copy_from_slice(&self.result.to_le_bytes());
        out[8..12].copy_from_slice(&dw2.to_le_bytes());
        out[12..16].copy_from_slice(&dw3.to_le_bytes());
        out
    }

    /// Decodes a 16-byte entry.
    pub fn parse(bytes: &[u8; CQE_SIZE]) -> Self {
        let d = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let dw2 = d(8);
        let dw3 = d(12);
        Self {
            result: d(0),
            sq_head: dw2 as u16,
            sq_id: (dw2 >> 16) as u16,
            cid: dw3 as u16,
            phase: dw3 & (1 << 16) != 0,
            status: Status::from_field((dw3 >> 17) as u16),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_bytes() {
        let c = Command {
            opcode: 0x02,
            fuse: 0,
            psdt: 0,
            cid: 0xBEEF,
            nsid: 1,
            mptr: 0,
            prp1: 0x1234_5000,
            prp2: 0xFFFF_0000_0000_1000,
            cdw: [7, 1, 0x4000_0003, 0, 0, 9],
        };
        let b = c.to_bytes();
        assert_eq!(b[0], 0x02);
        assert_eq!(&b[2..4], &0xBEEFu16.to_le_bytes());
        assert_eq!(Command::parse(&b), c);
        assert_eq!(c.slba(), (1u64 << 32) | 7);
        assert_eq!(c.nlb(), 4);
        assert_eq!(c.cdw(15), 9);
        assert_eq!(c.cdw(16), 0);
        assert_eq!(c.cdw(3), 0);
    }

    #[test]
    fn completions_carry_status_phase_and_ids() {
        let c = Completion {
            result: 5,
            sq_head: 17,
            sq_id: 3,
            cid: 99,
            phase: true,
            status: Status::LBA_OUT_OF_RANGE,
        };
        let b = c.to_bytes();
        let dw3 = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        assert_eq!(dw3 & 0xFFFF, 99);
        assert_eq!((dw3 >> 16) & 1, 1);
        assert_eq!((dw3 >> 17) & 0xFF, 0x80);
        assert_eq!(dw3 >> 31, 1, "DNR");
        assert_eq!(Completion::parse(&b), c);
    }
}
