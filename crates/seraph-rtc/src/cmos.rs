//! The CMOS bytes a PC's firmware leaves behind, beyond the clock: the
//! equipment byte, base and extended memory sizes, and the checksum.

/// Bytes of CMOS memory, clock registers included.
pub const CMOS_SIZE: usize = 128;

/// CMOS index of the century (in the clock's data mode).
pub const CENTURY: usize = 0x32;

/// The equipment byte (0x14): no floppy, a math coprocessor, an EGA/VGA
/// display (bits 5:4 = 00), no extra drives.
pub const EQUIPMENT: u8 = 0x02;

/// Base memory in KiB (0x15-0x16): the classic 640.
const BASE_MEMORY_KIB: u16 = 640;

const MIB: u64 = 1 << 20;

/// Fills the memory-size, equipment and checksum bytes for a guest with
/// `ram_bytes` of RAM below 4 GiB:
/// - 0x15/0x16: base memory in KiB (640);
/// - 0x17/0x18 and 0x30/0x31: memory above 1 MiB in KiB, at most 0xFFFF;
/// - 0x34/0x35: memory above 16 MiB in 64 KiB blocks, at most 0xFFFF;
/// - 0x14: [`EQUIPMENT`]; 0x2E/0x2F: the sum of 0x10-0x2D, big-endian.
pub fn fill_firmware_bytes(cmos: &mut [u8; CMOS_SIZE], ram_bytes: u64) {
    let put16 = |cmos: &mut [u8; CMOS_SIZE], at: usize, value: u16| {
        let [lo, hi] = value.to_le_bytes();
        cmos[at] = lo;
        cmos[at + 1] = hi;
    };
    put16(cmos, 0x15, BASE_MEMORY_KIB);
    let extended_kib = (ram_bytes.saturating_sub(MIB) / 1024).min(0xFFFF) as u16;
    put16(cmos, 0x17, extended_kib);
    put16(cmos, 0x30, extended_kib);
    let above_16m = (ram_bytes.saturating_sub(16 * MIB) / (64 * 1024)).min(0xFFFF) as u16;
    put16(cmos, 0x34, above_16m);
    cmos[0x14] = EQUIPMENT;
    let sum: u16 = cmos[0x10..=0x2D]
        .iter()
        .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
    let [hi, lo] = sum.to_be_bytes();
    cmos[0x2E] = hi;
    cmos[0x2F] = lo;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_for_common_ram_sizes() {
        let mut cmos = [0u8; CMOS_SIZE];
        fill_firmware_bytes(&mut cmos, 512 * MIB);
        assert_eq!(u16::from_le_bytes([cmos[0x15], cmos[0x16]]), 640);
        assert_eq!(u16::from_le_bytes([cmos[0x17], cmos[0x18]]), 0xFFFF);
        assert_eq!(u16::from_le_bytes([cmos[0x30], cmos[0x31]]), 0xFFFF);
        // (512 - 16) MiB / 64 KiB = 7936.
        assert_eq!(u16::from_le_bytes([cmos[0x34], cmos[0x35]]), 7936);
        let mut small = [0u8; CMOS_SIZE];
        fill_firmware_bytes(&mut small, 8 * MIB);
        assert_eq!(u16::from_le_bytes([small[0x17], small[0x18]]), 7 * 1024);
        assert_eq!(u16::from_le_bytes([small[0x34], small[0x35]]), 0);
        let sum: u16 = small[0x10..=0x2D].iter().map(|&b| u16::from(b)).sum();
        assert_eq!(u16::from_be_bytes([small[0x2E], small[0x2F]]), sum);
        assert_eq!(small[0x14], EQUIPMENT);
    }
}
