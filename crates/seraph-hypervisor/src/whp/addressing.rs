//! The address size of a string I/O instruction, and its repeat count.
//!
//! `rep ins`/`rep outs` count in CX, ECX or RCX by the instruction's
//! address size, not always RCX: a 32-bit guest's `rep outsb` with stale
//! upper RCX bits must not ask for billions of elements. WHP's port-access
//! exit does not report the address size, so it comes from the code
//! segment (CS.L in long mode, else CS.D) and an address-size prefix
//! (0x67) among the instruction's legacy prefixes.

/// Legacy prefixes an I/O string instruction can carry.
fn is_legacy_prefix(b: u8) -> bool {
    matches!(
        b,
        0xF0 | 0xF2 | 0xF3 | 0x2E | 0x36 | 0x3E | 0x26 | 0x64 | 0x65 | 0x66 | 0x67
    )
}

/// The address size in bytes (2, 4 or 8) of the instruction `bytes`
/// executing with the given mode: `long_mode` = EFER.LMA, `cs_l` / `cs_db`
/// the code segment's L and D/B bits.
pub fn address_size(bytes: &[u8], long_mode: bool, cs_l: bool, cs_db: bool) -> u8 {
    let override_prefix = bytes
        .iter()
        .take_while(|b| is_legacy_prefix(**b))
        .any(|b| *b == 0x67);
    match (long_mode && cs_l, cs_db, override_prefix) {
        (true, _, false) => 8,
        (true, _, true) => 4,
        (false, true, false) | (false, false, true) => 4,
        (false, true, true) | (false, false, false) => 2,
    }
}

/// The repeat count in RCX for an instruction of `address_size` bytes.
pub fn repeat_count(rcx: u64, address_size: u8) -> u64 {
    match address_size {
        2 => rcx & 0xFFFF,
        4 => rcx & 0xFFFF_FFFF,
        _ => rcx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REP_OUTSB: [u8; 2] = [0xF3, 0x6E];

    #[test]
    fn the_count_register_follows_the_address_size() {
        // 64-bit code: RCX, or ECX with an address-size prefix.
        assert_eq!(address_size(&REP_OUTSB, true, true, false), 8);
        assert_eq!(address_size(&[0x67, 0xF3, 0x6E], true, true, false), 4);
        assert_eq!(address_size(&[0xF3, 0x67, 0x6E], true, true, false), 4);
        // 32-bit code (also a compatibility-mode segment): ECX, or CX with 0x67.
        assert_eq!(address_size(&REP_OUTSB, false, false, true), 4);
        assert_eq!(address_size(&REP_OUTSB, true, false, true), 4);
        assert_eq!(address_size(&[0x67, 0xF3, 0x6E], false, false, true), 2);
        // 16-bit code: CX, or ECX with 0x67.
        assert_eq!(address_size(&REP_OUTSB, false, false, false), 2);
        assert_eq!(address_size(&[0x67, 0xF3, 0x6E], false, false, false), 4);
        // A 0x67 after the opcode is not a prefix.
        assert_eq!(address_size(&[0xF3, 0x6E, 0x67], true, true, false), 8);
    }

    #[test]
    fn upper_rcx_bits_do_not_count_in_32_and_16_bit_code() {
        let rcx = 0xFFFF_FFFF_0001_0003;
        assert_eq!(repeat_count(rcx, 8), rcx);
        assert_eq!(repeat_count(rcx, 4), 0x1_0003);
        assert_eq!(repeat_count(rcx, 2), 3);
    }
}
