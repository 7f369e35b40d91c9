//! 8259A register bits (Intel 8259A datasheet) and the PC's port layout.

/// Master PIC command port (ICW1, OCW2, OCW3; reads IRR/ISR).
pub const MASTER_COMMAND: u16 = 0x20;
/// Master PIC data port (ICW2-4, OCW1; reads IMR).
pub const MASTER_DATA: u16 = 0x21;
/// Slave PIC command port.
pub const SLAVE_COMMAND: u16 = 0xA0;
/// Slave PIC data port.
pub const SLAVE_DATA: u16 = 0xA1;
/// Master input the slave's INT output is wired to.
pub const CASCADE_IRQ: u8 = 2;
/// Number of IRQ lines of the pair.
pub const IRQ_COUNT: u8 = 16;
/// Lowest-priority input of a chip, also the spurious-interrupt level.
pub const SPURIOUS_IRQ: u8 = 7;

/// A write to the command port with bit 4 set is ICW1.
pub const ICW1_INIT: u8 = 0x10;
/// ICW1: level-triggered mode (LTIM).
pub const ICW1_LEVEL: u8 = 0x08;
/// ICW1: single (no cascade, no ICW3).
pub const ICW1_SINGLE: u8 = 0x02;
/// ICW1: ICW4 follows.
pub const ICW1_IC4: u8 = 0x01;
/// ICW2: bits 7-3 are the vector base.
pub const ICW2_VECTOR_MASK: u8 = 0xF8;
/// ICW4: automatic end of interrupt.
pub const ICW4_AUTO_EOI: u8 = 0x02;
/// ICW4: special fully nested mode.
pub const ICW4_SFNM: u8 = 0x10;

/// A command-port write with bit 4 clear and bit 3 set is OCW3 (else OCW2).
pub const OCW3_SELECT: u8 = 0x08;
/// OCW3: poll command.
pub const OCW3_POLL: u8 = 0x04;
/// OCW3: act on RIS (bit 0).
pub const OCW3_READ_REGISTER: u8 = 0x02;
/// OCW3: read ISR (1) or IRR (0) on the next command-port read.
pub const OCW3_READ_ISR: u8 = 0x01;
/// OCW3: act on SMM (bit 5).
pub const OCW3_ESMM: u8 = 0x40;
/// OCW3: set (1) or reset (0) special mask mode.
pub const OCW3_SMM: u8 = 0x20;

/// OCW2 command field (bits 7-5): rotate in automatic EOI mode, clear.
pub const OCW2_CLEAR_ROTATE_AEOI: u8 = 0b000;
/// OCW2: non-specific EOI.
pub const OCW2_EOI: u8 = 0b001;
/// OCW2: no operation.
pub const OCW2_NOP: u8 = 0b010;
/// OCW2: specific EOI (level in bits 2-0).
pub const OCW2_SPECIFIC_EOI: u8 = 0b011;
/// OCW2: rotate in automatic EOI mode, set.
pub const OCW2_SET_ROTATE_AEOI: u8 = 0b100;
/// OCW2: rotate on non-specific EOI.
pub const OCW2_ROTATE_EOI: u8 = 0b101;
/// OCW2: set priority (level in bits 2-0 becomes the lowest).
pub const OCW2_SET_PRIORITY: u8 = 0b110;
/// OCW2: rotate on specific EOI.
pub const OCW2_ROTATE_SPECIFIC_EOI: u8 = 0b111;

/// Poll-mode read: bit 7 set if an interrupt was pending, bits 2-0 its level.
pub const POLL_INTERRUPT: u8 = 0x80;
