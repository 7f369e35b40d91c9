//! The Ethernet frame check sequence (CRC-32, IEEE 802.3, reflected).

/// CRC-32 of `data` as the FCS of an Ethernet frame.
pub(crate) fn fcs(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_standard_check_value() {
        assert_eq!(super::fcs(b"123456789"), 0xCBF4_3926);
        assert_eq!(super::fcs(b""), 0);
    }
}
