//! Register offsets and bit fields of the 82540EM, as the Intel 8254x
//! software developer's manual names them.

/// Device control.
pub const CTRL: u32 = 0x0000;
/// Device status (read-only).
pub const STATUS: u32 = 0x0008;
/// EEPROM/flash control (bit-banged Microwire).
pub const EECD: u32 = 0x0010;
/// EEPROM read (start a word read, poll DONE).
pub const EERD: u32 = 0x0014;
/// Extended device control.
pub const CTRL_EXT: u32 = 0x0018;
/// MDI control: PHY register access.
pub const MDIC: u32 = 0x0020;
/// Interrupt cause read (read-to-clear).
pub const ICR: u32 = 0x00C0;
/// Interrupt throttling (stored, not modelled).
pub const ITR: u32 = 0x00C4;
/// Interrupt cause set.
pub const ICS: u32 = 0x00C8;
/// Interrupt mask set (reads return the mask).
pub const IMS: u32 = 0x00D0;
/// Interrupt mask clear.
pub const IMC: u32 = 0x00D8;
/// Receive control.
pub const RCTL: u32 = 0x0100;
/// Transmit control.
pub const TCTL: u32 = 0x0400;
/// Transmit inter-packet gap (stored).
pub const TIPG: u32 = 0x0410;
/// Receive descriptor base, low 32 bits.
pub const RDBAL: u32 = 0x2800;
/// Receive descriptor base, high 32 bits.
pub const RDBAH: u32 = 0x2804;
/// Receive descriptor ring length in bytes.
pub const RDLEN: u32 = 0x2808;
/// Receive descriptor head.
pub const RDH: u32 = 0x2810;
/// Receive descriptor tail.
pub const RDT: u32 = 0x2818;
/// Receive delay timer (packet timer, 1.024 us units; bit 31 flushes).
pub const RDTR: u32 = 0x2820;
/// Receive absolute interrupt delay (1.024 us units).
pub const RADV: u32 = 0x282C;
/// Transmit descriptor base, low 32 bits.
pub const TDBAL: u32 = 0x3800;
/// Transmit descriptor base, high 32 bits.
pub const TDBAH: u32 = 0x3804;
/// Transmit descriptor ring length in bytes.
pub const TDLEN: u32 = 0x3808;
/// Transmit descriptor head.
pub const TDH: u32 = 0x3810;
/// Transmit descriptor tail.
pub const TDT: u32 = 0x3818;
/// Transmit interrupt delay (1.024 us units).
pub const TIDV: u32 = 0x3820;
/// Transmit absolute interrupt delay (1.024 us units).
pub const TADV: u32 = 0x382C;
/// First statistics register.
pub const STATS_START: u32 = 0x4000;
/// One past the last statistics register.
pub const STATS_END: u32 = 0x4100;
/// Multicast table array: 128 dwords.
pub const MTA: u32 = 0x5200;
/// Receive address low, entry 0 (16 entries, 8 bytes apart).
pub const RAL0: u32 = 0x5400;
/// Receive address high, entry 0.
pub const RAH0: u32 = 0x5404;
/// Number of receive address entries.
pub const RA_ENTRIES: u32 = 16;
/// Size of the register window (BAR0).
pub const MMIO_SIZE: u64 = 0x2_0000;
/// Size of the I/O BAR (IOADDR at 0, IODATA at 4).
pub const IO_SIZE: u64 = 0x40;

/// Statistics counters (all read-to-clear).
pub mod stat {
    /// CRC errors.
    pub const CRCERRS: u32 = 0x4000;
    /// Missed packets (no room in the receive queue).
    pub const MPC: u32 = 0x4010;
    /// Receive no buffers (a frame waited for descriptors).
    pub const RNBC: u32 = 0x40A0;
    /// Receive oversize.
    pub const ROC: u32 = 0x40AC;
    /// Packets received, 64 bytes.
    pub const PRC64: u32 = 0x405C;
    /// Good packets received.
    pub const GPRC: u32 = 0x4074;
    /// Broadcast packets received.
    pub const BPRC: u32 = 0x4078;
    /// Multicast packets received.
    pub const MPRC: u32 = 0x407C;
    /// Good packets transmitted.
    pub const GPTC: u32 = 0x4080;
    /// Good octets received, low.
    pub const GORCL: u32 = 0x4088;
    /// Good octets transmitted, low.
    pub const GOTCL: u32 = 0x4090;
    /// Total octets received, low.
    pub const TORL: u32 = 0x40C0;
    /// Total octets transmitted, low.
    pub const TOTL: u32 = 0x40C8;
    /// Total packets received.
    pub const TPR: u32 = 0x40D0;
    /// Total packets transmitted.
    pub const TPT: u32 = 0x40D4;
    /// Packets transmitted, 64 bytes.
    pub const PTC64: u32 = 0x40D8;
    /// Multicast packets transmitted.
    pub const MPTC: u32 = 0x40F0;
    /// Broadcast packets transmitted.
    pub const BPTC: u32 = 0x40F4;
    /// TCP segmentation contexts transmitted (TSO frames segmented).
    pub const TSCTC: u32 = 0x40F8;
    /// TCP segmentation contexts that failed (bad MSS, HDRLEN or length).
    pub const TSCTFC: u32 = 0x40FC;
}

/// CTRL bits.
pub mod ctrl {
    /// Full duplex.
    pub const FD: u32 = 1 << 0;
    /// Set link up.
    pub const SLU: u32 = 1 << 6;
    /// Device reset (self-clearing).
    pub const RST: u32 = 1 << 26;
    /// PHY reset.
    pub const PHY_RST: u32 = 1 << 31;
}

/// STATUS bits.
pub mod status {
    /// Full duplex.
    pub const FD: u32 = 1 << 0;
    /// Link up.
    pub const LU: u32 = 1 << 1;
    /// Speed 1000 Mb/s (bits 7:6 = 10b).
    pub const SPEED_1000: u32 = 1 << 7;
}

/// Interrupt causes (ICR, ICS, IMS, IMC).
pub mod int {
    /// Transmit descriptor written back.
    pub const TXDW: u32 = 1 << 0;
    /// Transmit queue empty.
    pub const TXQE: u32 = 1 << 1;
    /// Link status change.
    pub const LSC: u32 = 1 << 2;
    /// Receive descriptor minimum threshold reached.
    pub const RXDMT0: u32 = 1 << 4;
    /// Receiver overrun.
    pub const RXO: u32 = 1 << 6;
    /// Receiver timer interrupt.
    pub const RXT0: u32 = 1 << 7;
    /// MDI access complete.
    pub const MDAC: u32 = 1 << 9;
    /// Every cause bit the 82540EM defines (bits 0-16 less reserved ones).
    pub const ALL: u32 = 0x0001_FFFF;
}

/// RCTL bits.
pub mod rctl {
    /// Receiver enable.
    pub const EN: u32 = 1 << 1;
    /// Store bad packets.
    pub const SBP: u32 = 1 << 2;
    /// Unicast promiscuous.
    pub const UPE: u32 = 1 << 3;
    /// Multicast promiscuous.
    pub const MPE: u32 = 1 << 4;
    /// Long packet enable.
    pub const LPE: u32 = 1 << 5;
    /// Descriptor minimum threshold size shift (bits 9:8).
    pub const RDMTS_SHIFT: u32 = 8;
    /// Multicast offset shift (bits 13:12).
    pub const MO_SHIFT: u32 = 12;
    /// Broadcast accept mode.
    pub const BAM: u32 = 1 << 15;
    /// Buffer size shift (bits 17:16).
    pub const BSIZE_SHIFT: u32 = 16;
    /// Buffer size extension.
    pub const BSEX: u32 = 1 << 25;
    /// Strip the Ethernet CRC.
    pub const SECRC: u32 = 1 << 26;
}

/// TCTL bits.
pub mod tctl {
    /// Transmitter enable.
    pub const EN: u32 = 1 << 1;
    /// Pad short packets.
    pub const PSP: u32 = 1 << 3;
}

/// EECD bits (Microwire bit-banging).
pub mod eecd {
    /// Clock input.
    pub const SK: u32 = 1 << 0;
    /// Chip select.
    pub const CS: u32 = 1 << 1;
    /// Data input (to the EEPROM).
    pub const DI: u32 = 1 << 2;
    /// Data output (from the EEPROM).
    pub const DO: u32 = 1 << 3;
    /// Software request for the EEPROM interface.
    pub const REQ: u32 = 1 << 6;
    /// Grant of the EEPROM interface.
    pub const GNT: u32 = 1 << 7;
    /// An EEPROM is present.
    pub const PRES: u32 = 1 << 8;
}

/// EERD fields (82540EM layout).
pub mod eerd {
    /// Start a read.
    pub const START: u32 = 1 << 0;
    /// The read is done.
    pub const DONE: u32 = 1 << 4;
    /// Word address shift.
    pub const ADDR_SHIFT: u32 = 8;
    /// Data shift.
    pub const DATA_SHIFT: u32 = 16;
}

/// MDIC fields.
pub mod mdic {
    /// Register address shift (bits 20:16).
    pub const REG_SHIFT: u32 = 16;
    /// PHY address shift (bits 25:21).
    pub const PHY_SHIFT: u32 = 21;
    /// Opcode: write.
    pub const OP_WRITE: u32 = 1 << 26;
    /// Opcode: read.
    pub const OP_READ: u32 = 2 << 26;
    /// Ready: the access is complete.
    pub const READY: u32 = 1 << 28;
    /// Interrupt when complete.
    pub const INT_EN: u32 = 1 << 29;
    /// Error: no such PHY.
    pub const ERROR: u32 = 1 << 30;
}

/// Receive address high: address valid.
pub const RAH_AV: u32 = 1 << 31;
