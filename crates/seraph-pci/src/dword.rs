//! Splitting a BAR access into the 32-bit registers it touches: drivers
//! access registers with 1-, 2-, 4- or 8-byte moves, and a device model
//! keeps its registers as dwords.

/// The bits of bytes `first..first + n` of a dword.
pub fn byte_mask(first: usize, n: usize) -> u32 {
    (first..first.saturating_add(n).min(4)).fold(0, |m, b| m | 0xFF << (8 * b))
}

/// The dwords an access of `len` bytes at `offset` touches: (dword offset,
/// first byte inside the dword, first byte in the access buffer, byte count).
pub fn split_dwords(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
    let end = offset.saturating_add(len as u64);
    let first = offset & !3;
    (0..=(len as u64 / 4 + 1))
        .map_while(move |i| first.checked_add(4 * i))
        .take_while(move |&dw| dw < end)
        .map(move |dw| {
            let lo = offset.max(dw);
            let hi = end.min(dw.saturating_add(4));
            (
                dw,
                (lo - dw) as usize,
                (lo - offset) as usize,
                (hi - lo) as usize,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_8_byte_access_is_two_dwords_low_first_and_an_unaligned_one_spans_two() {
        let v: Vec<_> = split_dwords(0x28, 8).collect();
        assert_eq!(v, [(0x28, 0, 0, 4), (0x2C, 0, 4, 4)]);
        let v: Vec<_> = split_dwords(0x13, 2).collect();
        assert_eq!(v, [(0x10, 3, 0, 1), (0x14, 0, 1, 1)]);
        assert_eq!(split_dwords(u64::MAX - 1, 4).count(), 1);
        assert_eq!(byte_mask(1, 2), 0x00FF_FF00);
        assert_eq!(byte_mask(3, 4), 0xFF00_0000);
    }
}
