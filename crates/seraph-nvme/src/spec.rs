//! Numbers from the NVMe base specification (1.4) that the model uses:
//! register offsets and fields, opcodes and status codes.

/// Controller register offsets in BAR0.
pub mod reg {
    /// Controller Capabilities (64 bits).
    pub const CAP: u64 = 0x00;
    /// Version (32 bits).
    pub const VS: u64 = 0x08;
    /// Interrupt Mask Set (32 bits).
    pub const INTMS: u64 = 0x0C;
    /// Interrupt Mask Clear (32 bits).
    pub const INTMC: u64 = 0x10;
    /// Controller Configuration (32 bits).
    pub const CC: u64 = 0x14;
    /// Controller Status (32 bits).
    pub const CSTS: u64 = 0x1C;
    /// Admin Queue Attributes (32 bits).
    pub const AQA: u64 = 0x24;
    /// Admin Submission Queue base address (64 bits).
    pub const ASQ: u64 = 0x28;
    /// Admin Completion Queue base address (64 bits).
    pub const ACQ: u64 = 0x30;
    /// First doorbell (SQ 0 tail); with CAP.DSTRD = 0 each is 4 bytes:
    /// SQ y tail at 0x1000 + 8y, CQ y head at 0x1000 + 8y + 4.
    pub const DOORBELLS: u64 = 0x1000;
}

/// CC (Controller Configuration) fields.
pub mod cc {
    /// Enable.
    pub const EN: u32 = 1 << 0;
    /// I/O command set selected (bits 6:4; 0 = NVM).
    pub fn css(cc: u32) -> u32 {
        (cc >> 4) & 0x7
    }
    /// Memory page size: 2^(12 + MPS) (bits 10:7).
    pub fn mps(cc: u32) -> u32 {
        (cc >> 7) & 0xF
    }
    /// Arbitration mechanism (bits 13:11; 0 = round robin).
    pub fn ams(cc: u32) -> u32 {
        (cc >> 11) & 0x7
    }
    /// Shutdown notification (bits 15:14; 0 = none).
    pub fn shn(cc: u32) -> u32 {
        (cc >> 14) & 0x3
    }
    /// I/O submission queue entry size, log2 (bits 19:16).
    pub fn iosqes(cc: u32) -> u32 {
        (cc >> 16) & 0xF
    }
    /// I/O completion queue entry size, log2 (bits 23:20).
    pub fn iocqes(cc: u32) -> u32 {
        (cc >> 20) & 0xF
    }
}

/// CSTS (Controller Status) fields.
pub mod csts {
    /// Ready.
    pub const RDY: u32 = 1 << 0;
    /// Controller Fatal Status.
    pub const CFS: u32 = 1 << 1;
    /// Shutdown status: shutdown processing complete (bits 3:2 = 10b).
    pub const SHST_COMPLETE: u32 = 2 << 2;
}

/// Admin command opcodes.
pub mod admin {
    /// Delete I/O Submission Queue.
    pub const DELETE_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_SQ: u8 = 0x01;
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Delete I/O Completion Queue.
    pub const DELETE_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0A;
    /// Asynchronous Event Request.
    pub const ASYNC_EVENT: u8 = 0x0C;
}

/// NVM I/O command opcodes.
pub mod io {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u8 = 0x08;
    /// Dataset Management.
    pub const DATASET_MANAGEMENT: u8 = 0x09;
}

/// Feature identifiers (Get/Set Features, CDW10 bits 7:0).
pub mod feature {
    /// Arbitration.
    pub const ARBITRATION: u8 = 0x01;
    /// Power Management.
    pub const POWER_MANAGEMENT: u8 = 0x02;
    /// Temperature Threshold.
    pub const TEMPERATURE_THRESHOLD: u8 = 0x04;
    /// Error Recovery.
    pub const ERROR_RECOVERY: u8 = 0x05;
    /// Volatile Write Cache.
    pub const VOLATILE_WRITE_CACHE: u8 = 0x06;
    /// Number of Queues.
    pub const NUMBER_OF_QUEUES: u8 = 0x07;
    /// Interrupt Coalescing.
    pub const INTERRUPT_COALESCING: u8 = 0x08;
    /// Interrupt Vector Configuration.
    pub const INTERRUPT_VECTOR_CONFIG: u8 = 0x09;
    /// Write Atomicity Normal.
    pub const WRITE_ATOMICITY: u8 = 0x0A;
    /// Asynchronous Event Configuration.
    pub const ASYNC_EVENT_CONFIG: u8 = 0x0B;
}

/// A completion status: status code type, status code and Do Not Retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// Status Code Type (0 generic, 1 command specific, 2 media errors).
    pub sct: u8,
    /// Status Code.
    pub sc: u8,
    /// Do Not Retry.
    pub dnr: bool,
}

impl Status {
    const fn new(sct: u8, sc: u8, dnr: bool) -> Self {
        Self { sct, sc, dnr }
    }

    /// Successful Completion.
    pub const SUCCESS: Self = Self::new(0, 0x00, false);
    /// Invalid Command Opcode.
    pub const INVALID_OPCODE: Self = Self::new(0, 0x01, true);
    /// Invalid Field in Command.
    pub const INVALID_FIELD: Self = Self::new(0, 0x02, true);
    /// Data Transfer Error (DMA outside guest memory).
    pub const DATA_TRANSFER_ERROR: Self = Self::new(0, 0x04, false);
    /// Internal Error (the host file failed).
    pub const INTERNAL_ERROR: Self = Self::new(0, 0x06, false);
    /// Command Aborted due to SQ Deletion.
    pub const ABORTED_SQ_DELETION: Self = Self::new(0, 0x08, false);
    /// Invalid Namespace or Format.
    pub const INVALID_NAMESPACE: Self = Self::new(0, 0x0B, true);
    /// PRP Offset Invalid.
    pub const INVALID_PRP_OFFSET: Self = Self::new(0, 0x13, true);
    /// Namespace is Write Protected.
    pub const WRITE_PROTECTED: Self = Self::new(0, 0x20, true);
    /// LBA Out of Range.
    pub const LBA_OUT_OF_RANGE: Self = Self::new(0, 0x80, true);
    /// Namespace Not Ready.
    pub const NAMESPACE_NOT_READY: Self = Self::new(0, 0x82, false);
    /// Completion Queue Invalid (Create I/O SQ).
    pub const INVALID_CQ: Self = Self::new(1, 0x00, true);
    /// Invalid Queue Identifier.
    pub const INVALID_QUEUE_ID: Self = Self::new(1, 0x01, true);
    /// Invalid Queue Size.
    pub const INVALID_QUEUE_SIZE: Self = Self::new(1, 0x02, true);
    /// Asynchronous Event Request Limit Exceeded.
    pub const AER_LIMIT_EXCEEDED: Self = Self::new(1, 0x05, true);
    /// Invalid Interrupt Vector.
    pub const INVALID_VECTOR: Self = Self::new(1, 0x08, true);
    /// Invalid Log Page.
    pub const INVALID_LOG_PAGE: Self = Self::new(1, 0x09, true);
    /// Invalid Queue Deletion (a CQ that SQs still use).
    pub const INVALID_QUEUE_DELETION: Self = Self::new(1, 0x0C, true);
    /// Feature Identifier Not Saveable.
    pub const FEATURE_NOT_SAVEABLE: Self = Self::new(1, 0x0D, true);
    /// Write Fault (media error: the host file refused a write).
    pub const WRITE_FAULT: Self = Self::new(2, 0x80, false);
    /// Unrecovered Read Error (media error: the host file refused a read).
    pub const UNRECOVERED_READ_ERROR: Self = Self::new(2, 0x81, false);

    /// The 15-bit status field as completion DW3 bits 31:17 hold it.
    pub fn field(self) -> u16 {
        u16::from(self.sc) | (u16::from(self.sct & 0x7) << 8) | (u16::from(self.dnr) << 14)
    }

    /// Decodes a status field (completion DW3 >> 17).
    pub fn from_field(field: u16) -> Self {
        Self::new(
            (field >> 8) as u8 & 0x7,
            field as u8,
            field & (1 << 14) != 0,
        )
    }

    /// True for Successful Completion.
    pub fn is_success(self) -> bool {
        self.sct == 0 && self.sc == 0
    }
}
