//! The 6-bit fault status code of data and instruction aborts (DFSC /
//! IFSC, ESR_ELx.ISS\[5:0\]; Arm ARM D24.2.40, "ISS encoding for an
//! exception from a Data Abort").

use std::fmt;

use crate::report::Cause;

/// A decoded DFSC / IFSC. Levels run from -1 (FEAT_LPA2) to 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStatus {
    /// 0b0000LL, 0x29 (level -1): output or table address too wide.
    AddressSize(i8),
    /// 0b0001LL, 0x2B (level -1): no valid descriptor.
    Translation(i8),
    /// 0b0010LL: the access flag is clear (level 0 needs FEAT_LPA2).
    AccessFlag(i8),
    /// 0b0011LL: the descriptor forbids the access (level 0 needs FEAT_LPA2).
    Permission(i8),
    /// 0x10: synchronous external abort, not on a table walk.
    SyncExternal,
    /// 0x11: synchronous tag check fault (MTE).
    TagCheck,
    /// 0x13 (level -1), 0x14-0x17: synchronous external abort on a table walk.
    SyncExternalOnWalk(i8),
    /// 0x18: synchronous parity or ECC error on the access.
    ParityEcc,
    /// 0x1B (level -1), 0x1C-0x1F: parity or ECC error on a table walk.
    ParityEccOnWalk(i8),
    /// 0x21: alignment fault.
    Alignment,
    /// 0x22: debug exception (watchpoint, breakpoint).
    Debug,
    /// 0x23 (level -1), 0x24-0x27: granule protection fault on a walk.
    GranuleProtectionOnWalk(i8),
    /// 0x28: granule protection fault, not on a walk.
    GranuleProtection,
    /// 0x30: TLB conflict abort.
    TlbConflict,
    /// 0x31: unsupported atomic hardware update.
    UnsupportedAtomicUpdate,
    /// 0x34: IMPLEMENTATION DEFINED (lockdown).
    Lockdown,
    /// 0x35: IMPLEMENTATION DEFINED (unsupported exclusive or atomic access).
    UnsupportedExclusive,
    /// Any other (reserved) code, kept raw.
    Reserved(u8),
}

impl FaultStatus {
    /// Decodes the low 6 bits of `code`.
    pub fn decode(code: u8) -> Self {
        let code = code & 0x3F;
        let level = (code & 3) as i8;
        match code {
            0x00..=0x03 => FaultStatus::AddressSize(level),
            0x04..=0x07 => FaultStatus::Translation(level),
            0x08..=0x0B => FaultStatus::AccessFlag(level),
            0x0C..=0x0F => FaultStatus::Permission(level),
            0x10 => FaultStatus::SyncExternal,
            0x11 => FaultStatus::TagCheck,
            0x13 => FaultStatus::SyncExternalOnWalk(-1),
            0x14..=0x17 => FaultStatus::SyncExternalOnWalk(level),
            0x18 => FaultStatus::ParityEcc,
            0x1B => FaultStatus::ParityEccOnWalk(-1),
            0x1C..=0x1F => FaultStatus::ParityEccOnWalk(level),
            0x21 => FaultStatus::Alignment,
            0x22 => FaultStatus::Debug,
            0x23 => FaultStatus::GranuleProtectionOnWalk(-1),
            0x24..=0x27 => FaultStatus::GranuleProtectionOnWalk(level),
            0x28 => FaultStatus::GranuleProtection,
            0x29 => FaultStatus::AddressSize(-1),
            0x2B => FaultStatus::Translation(-1),
            0x30 => FaultStatus::TlbConflict,
            0x31 => FaultStatus::UnsupportedAtomicUpdate,
            0x34 => FaultStatus::Lockdown,
            0x35 => FaultStatus::UnsupportedExclusive,
            other => FaultStatus::Reserved(other),
        }
    }

    /// The 6-bit code. Levels outside a kind's range, and `Reserved` codes
    /// that name a defined kind, encode as best they can; `decode(encode(x))
    /// == x` for every value `decode` returns.
    pub fn encode(&self) -> u8 {
        let lvl = |base: u8, minus_one: u8, l: i8| {
            if l < 0 {
                minus_one
            } else {
                base | (l.clamp(0, 3) as u8)
            }
        };
        match *self {
            FaultStatus::AddressSize(l) => lvl(0x00, 0x29, l),
            FaultStatus::Translation(l) => lvl(0x04, 0x2B, l),
            FaultStatus::AccessFlag(l) => 0x08 | (l.clamp(0, 3) as u8),
            FaultStatus::Permission(l) => 0x0C | (l.clamp(0, 3) as u8),
            FaultStatus::SyncExternal => 0x10,
            FaultStatus::TagCheck => 0x11,
            FaultStatus::SyncExternalOnWalk(l) => lvl(0x14, 0x13, l),
            FaultStatus::ParityEcc => 0x18,
            FaultStatus::ParityEccOnWalk(l) => lvl(0x1C, 0x1B, l),
            FaultStatus::Alignment => 0x21,
            FaultStatus::Debug => 0x22,
            FaultStatus::GranuleProtectionOnWalk(l) => lvl(0x24, 0x23, l),
            FaultStatus::GranuleProtection => 0x28,
            FaultStatus::TlbConflict => 0x30,
            FaultStatus::UnsupportedAtomicUpdate => 0x31,
            FaultStatus::Lockdown => 0x34,
            FaultStatus::UnsupportedExclusive => 0x35,
            FaultStatus::Reserved(code) => code & 0x3F,
        }
    }

    /// The lookup level, for the kinds that have one.
    pub fn level(&self) -> Option<i8> {
        match *self {
            FaultStatus::AddressSize(l)
            | FaultStatus::Translation(l)
            | FaultStatus::AccessFlag(l)
            | FaultStatus::Permission(l)
            | FaultStatus::SyncExternalOnWalk(l)
            | FaultStatus::ParityEccOnWalk(l)
            | FaultStatus::GranuleProtectionOnWalk(l) => Some(l),
            _ => None,
        }
    }

    /// The arch-neutral cause, for the kinds that have one.
    pub fn cause(&self) -> Option<Cause> {
        Some(match self {
            FaultStatus::AddressSize(_) => Cause::AddressSize,
            FaultStatus::Translation(_) => Cause::NotPresent,
            FaultStatus::AccessFlag(_) => Cause::AccessFlag,
            FaultStatus::Permission(_) => Cause::Permission(crate::report::Denied::Unspecified),
            FaultStatus::SyncExternal
            | FaultStatus::SyncExternalOnWalk(_)
            | FaultStatus::ParityEcc
            | FaultStatus::ParityEccOnWalk(_) => Cause::ExternalAbort,
            FaultStatus::Alignment => Cause::Alignment,
            _ => return None,
        })
    }
}

impl fmt::Display for FaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultStatus::AddressSize(l) => write!(f, "address size fault, level {l}"),
            FaultStatus::Translation(l) => write!(f, "translation fault, level {l}"),
            FaultStatus::AccessFlag(l) => write!(f, "access flag fault, level {l}"),
            FaultStatus::Permission(l) => write!(f, "permission fault, level {l}"),
            FaultStatus::SyncExternal => f.write_str("synchronous external abort"),
            FaultStatus::TagCheck => f.write_str("tag check fault"),
            FaultStatus::SyncExternalOnWalk(l) => {
                write!(f, "synchronous external abort on table walk, level {l}")
            }
            FaultStatus::ParityEcc => f.write_str("parity/ECC error"),
            FaultStatus::ParityEccOnWalk(l) => {
                write!(f, "parity/ECC error on table walk, level {l}")
            }
            FaultStatus::Alignment => f.write_str("alignment fault"),
            FaultStatus::Debug => f.write_str("debug exception"),
            FaultStatus::GranuleProtectionOnWalk(l) => {
                write!(f, "granule protection fault on table walk, level {l}")
            }
            FaultStatus::GranuleProtection => f.write_str("granule protection fault"),
            FaultStatus::TlbConflict => f.write_str("TLB conflict abort"),
            FaultStatus::UnsupportedAtomicUpdate => {
                f.write_str("unsupported atomic hardware update")
            }
            FaultStatus::Lockdown => f.write_str("lockdown (implementation defined)"),
            FaultStatus::UnsupportedExclusive => {
                f.write_str("unsupported exclusive or atomic access (implementation defined)")
            }
            FaultStatus::Reserved(c) => write!(f, "reserved fault status {c:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_levels_decode() {
        for code in 0u8..64 {
            assert_eq!(FaultStatus::decode(code).encode(), code, "code {code:#x}");
        }
        // 0b000110: translation fault at level 2.
        assert_eq!(FaultStatus::decode(0x06), FaultStatus::Translation(2));
        assert_eq!(
            FaultStatus::decode(0x06).to_string(),
            "translation fault, level 2"
        );
        // 0b001111: permission fault at level 3.
        assert_eq!(FaultStatus::decode(0x0F).level(), Some(3));
        assert_eq!(FaultStatus::decode(0x2B), FaultStatus::Translation(-1));
        assert_eq!(FaultStatus::decode(0x0B), FaultStatus::AccessFlag(3));
        assert_eq!(
            FaultStatus::decode(0x15),
            FaultStatus::SyncExternalOnWalk(1)
        );
        assert_eq!(FaultStatus::decode(0x21), FaultStatus::Alignment);
        assert_eq!(FaultStatus::decode(0x22), FaultStatus::Debug);
        assert_eq!(FaultStatus::decode(0x12), FaultStatus::Reserved(0x12));
        assert_eq!(FaultStatus::decode(0x06).cause(), Some(Cause::NotPresent));
        assert_eq!(FaultStatus::Debug.cause(), None);
        assert_eq!(FaultStatus::Debug.level(), None);
    }
}
