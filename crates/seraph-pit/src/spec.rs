//! 8254 register layout and constants (Intel 82C54 datasheet), plus the
//! PC's port 0x61 bits that belong to channel 2.

/// Input clock of every channel, in Hz (the PC's 14.31818 MHz / 12).
pub const PIT_FREQUENCY_HZ: u64 = 1_193_182;

/// First I/O port of the PIT (channel 0 data); the range is 0x40-0x43.
pub const PIT_PORT_BASE: u16 = 0x40;
/// Number of I/O ports the PIT decodes.
pub const PIT_PORT_COUNT: u16 = 4;
/// The PC's "system control port B" (speaker gate, OUT2, refresh toggle).
pub const PORT_61: u16 = 0x61;

/// Offset of the control-word register within the PIT range.
pub const OFFSET_CONTROL: u64 = 3;

/// Control word: counter select, bits 7-6 (3 = read-back command).
pub const CW_SELECT_SHIFT: u8 = 6;
/// Counter-select value that means "read-back command".
pub const CW_SELECT_READ_BACK: u8 = 3;
/// Control word: read/write access, bits 5-4 (0 = counter latch command).
pub const CW_ACCESS_SHIFT: u8 = 4;
/// Control word: mode, bits 3-1.
pub const CW_MODE_SHIFT: u8 = 1;
/// Control word: BCD counting, bit 0.
pub const CW_BCD: u8 = 0x01;

/// Read-back: bit 5 clear means "latch the count" (active low).
pub const RB_NO_COUNT: u8 = 1 << 5;
/// Read-back: bit 4 clear means "latch the status" (active low).
pub const RB_NO_STATUS: u8 = 1 << 4;
/// Read-back: bit 1 selects counter 0, bit 2 counter 1, bit 3 counter 2.
pub const RB_COUNTER_SHIFT: u8 = 1;

/// Status byte: bit 7 is the OUT pin.
pub const STATUS_OUT: u8 = 0x80;
/// Status byte: bit 6 is "null count" (a count written, not yet loaded).
pub const STATUS_NULL_COUNT: u8 = 0x40;

/// Port 0x61 bit 0: gate of channel 2 (read/write).
pub const P61_GATE2: u8 = 0x01;
/// Port 0x61 bit 1: speaker data enable (read/write, stored only).
pub const P61_SPEAKER: u8 = 0x02;
/// Port 0x61 bits 3-2: parity / channel-check enables (read/write, stored only).
pub const P61_CHECK_ENABLES: u8 = 0x0C;
/// Port 0x61 bit 4: memory refresh toggle (read-only).
pub const P61_REFRESH: u8 = 0x10;
/// Port 0x61 bit 5: OUT of channel 2 (read-only).
pub const P61_OUT2: u8 = 0x20;
/// Half period of the refresh toggle in ns (it flips every 15.085 us on a PC).
pub const REFRESH_TOGGLE_NS: u64 = 15_085;

/// Nanoseconds per second.
pub(crate) const NS_PER_SEC: u128 = 1_000_000_000;
