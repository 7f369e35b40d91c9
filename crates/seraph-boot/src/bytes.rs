//! Little-endian field readers for untrusted image bytes: `None` when the
//! field runs past the end of the slice (or its offset overflows), never a
//! panic.

/// The `N` bytes at `off`, if they are all inside `b`.
fn array_at<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// The byte at `off`.
pub(crate) fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

/// The little-endian u16 at `off`.
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    array_at(b, off).map(u16::from_le_bytes)
}

/// The little-endian u32 at `off`.
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    array_at(b, off).map(u32::from_le_bytes)
}

/// The little-endian u64 at `off`.
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    array_at(b, off).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_inside_the_slice() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u8_at(&b, 8), Some(9));
        assert_eq!(u16_at(&b, 1), Some(0x0302));
        assert_eq!(u32_at(&b, 5), Some(0x0908_0706));
        assert_eq!(u64_at(&b, 1), Some(0x0908_0706_0504_0302));
    }

    #[test]
    fn past_the_end_or_overflowing_offsets_are_none() {
        let b = [0u8; 8];
        assert_eq!(u8_at(&b, 8), None);
        assert_eq!(u16_at(&b, 7), None);
        assert_eq!(u32_at(&b, 5), None);
        assert_eq!(u64_at(&b, 1), None);
        assert_eq!(u16_at(&b, usize::MAX), None);
        assert_eq!(u32_at(&b, usize::MAX - 2), None);
        assert_eq!(u64_at(&[], 0), None);
    }
}
