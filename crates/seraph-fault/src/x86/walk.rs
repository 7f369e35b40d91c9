//! The page-walk explainer: walks one guest-virtual address through the
//! guest's 4-level tables the way the CPU would for a given access, and
//! says which level was not present, which forbade the access (R/W, U/S,
//! NX with EFER.NXE, SMEP/SMAP) or had a reserved bit set.
//!
//! Like `seraph_memory::walk`, every entry is read with a bounds-checked
//! guest-memory access and nothing panics on garbage tables; unlike it,
//! access rights are checked.

use seraph_hypervisor::SpecialRegs;
use seraph_memory::vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::report::{Access, Cause, Denied, Level};

use seraph_memory::page_tables::{ADDR_MASK, NX as XD, P, PS, RW};
use seraph_memory::walk::{HUGE_ADDR_MASK, LARGE_ADDR_MASK, is_canonical};

/// User/supervisor: set, user mode may access (seraph-memory's own tables
/// never set it).
const US: u64 = 1 << 2;

const CR0_PG: u64 = 1 << 31;
const CR0_WP: u64 = 1 << 16;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const CR4_SMEP: u64 = 1 << 20;
const CR4_SMAP: u64 = 1 << 21;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// The paging controls a walk depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagingControls {
    /// CR0 (PG, WP).
    pub cr0: u64,
    /// CR3 (the PML4's address; PCID bits are ignored).
    pub cr3: u64,
    /// CR4 (PAE, LA57, SMEP, SMAP).
    pub cr4: u64,
    /// EFER (LMA, NXE).
    pub efer: u64,
    /// MAXPHYADDR: address bits above it in an entry are reserved (52 if unknown).
    pub max_phys_bits: u8,
}

impl PagingControls {
    /// The controls from a vCPU's special registers, MAXPHYADDR 52.
    pub fn from_sregs(sregs: &SpecialRegs) -> Self {
        Self {
            cr0: sregs.cr0,
            cr3: sregs.cr3,
            cr4: sregs.cr4,
            efer: sregs.efer,
            max_phys_bits: 52,
        }
    }

    fn reserved_address_bits(&self) -> u64 {
        let bits = u32::from(self.max_phys_bits.clamp(32, 52));
        // Bits 51:MAXPHYADDR.
        ((1u64 << 52) - 1) & !((1u64 << bits) - 1)
    }
}

/// Who makes the access, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessIntent {
    /// Read, write or instruction fetch.
    pub access: Access,
    /// True for CPL 3.
    pub user: bool,
}

/// Where a walk stopped, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkFault {
    /// The level whose entry caused the fault (for a permission fault, the
    /// highest level that withheld the right).
    pub level: Level,
    /// Why.
    pub cause: Cause,
    /// The offending entry's value (0 if it could not be read).
    pub entry: u64,
    /// The offending entry's guest-physical address.
    pub entry_addr: u64,
}

/// The result of explaining one access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkOutcome {
    /// The access is allowed and lands at `phys`.
    Mapped {
        /// The guest-physical address.
        phys: u64,
        /// The page size in bytes (4 KiB, 2 MiB or 1 GiB).
        page_size: u64,
    },
    /// Paging is off: the address is physical.
    PagingOff,
    /// The address is not canonical: the access raises #GP (or #SS), not #PF.
    NonCanonical,
    /// The walk fails: a #PF.
    Fault(WalkFault),
    /// A paging mode this explainer does not walk (32-bit, PAE, 5-level).
    UnsupportedMode,
}

impl WalkOutcome {
    /// True if the access would succeed.
    pub fn is_ok(&self) -> bool {
        matches!(self, WalkOutcome::Mapped { .. } | WalkOutcome::PagingOff)
    }
}

/// Walks `virt` for `intent` through the tables `ctl` names.
pub fn explain_access(
    mem: &GuestMemoryMmap,
    ctl: &PagingControls,
    virt: u64,
    intent: AccessIntent,
) -> WalkOutcome {
    if ctl.cr0 & CR0_PG == 0 {
        return WalkOutcome::PagingOff;
    }
    if ctl.efer & EFER_LMA == 0 || ctl.cr4 & CR4_PAE == 0 || ctl.cr4 & CR4_LA57 != 0 {
        return WalkOutcome::UnsupportedMode;
    }
    if !is_canonical(virt) {
        return WalkOutcome::NonCanonical;
    }
    let nxe = ctl.efer & EFER_NXE != 0;
    let reserved_addr = ctl.reserved_address_bits();
    let mut table = ctl.cr3 & ADDR_MASK;
    // The first (highest) level that withheld each right.
    let mut read_only: Option<(u8, u64, u64)> = None;
    let mut supervisor: Option<(u8, u64, u64)> = None;
    let mut no_exec: Option<(u8, u64, u64)> = None;
    for depth in (1..=4u8).rev() {
        let level = Level::x86(depth).unwrap_or(Level::Pt);
        let shift = 12 + 9 * u32::from(depth - 1);
        let entry_addr = table | (((virt >> shift) & 0x1FF) * 8);
        let Ok(entry) = mem.read_obj::<u64>(GuestAddress(entry_addr)) else {
            return WalkOutcome::Fault(WalkFault {
                level,
                cause: Cause::TableOutsideMemory,
                entry: 0,
                entry_addr,
            });
        };
        let fault = |cause| {
            WalkOutcome::Fault(WalkFault {
                level,
                cause,
                entry,
                entry_addr,
            })
        };
        if entry & P == 0 {
            return fault(Cause::NotPresent);
        }
        let leaf = depth == 1 || (entry & PS != 0 && depth <= 3);
        let mut reserved = entry & reserved_addr != 0 || (!nxe && entry & XD != 0);
        if depth == 4 && entry & PS != 0 {
            reserved = true;
        }
        if leaf && depth == 3 {
            reserved |= entry & 0x3FFF_E000 != 0; // 1 GiB page: bits 29:13
        }
        if leaf && depth == 2 {
            reserved |= entry & 0x001F_E000 != 0; // 2 MiB page: bits 20:13
        }
        if reserved {
            return fault(Cause::ReservedBit);
        }
        if entry & RW == 0 && read_only.is_none() {
            read_only = Some((depth, entry, entry_addr));
        }
        if entry & US == 0 && supervisor.is_none() {
            supervisor = Some((depth, entry, entry_addr));
        }
        if nxe && entry & XD != 0 && no_exec.is_none() {
            no_exec = Some((depth, entry, entry_addr));
        }
        if leaf {
            let (page_size, phys) = match depth {
                3 => (1 << 30, (entry & HUGE_ADDR_MASK) | (virt & 0x3FFF_FFFF)),
                2 => (1 << 21, (entry & LARGE_ADDR_MASK) | (virt & 0x1F_FFFF)),
                _ => (1 << 12, (entry & ADDR_MASK) | (virt & 0xFFF)),
            };
            let user_page = supervisor.is_none();
            let denied = check_rights(ctl, intent, user_page, read_only, supervisor, no_exec);
            return match denied {
                None => WalkOutcome::Mapped { phys, page_size },
                Some((denied, (d, entry, entry_addr))) => WalkOutcome::Fault(WalkFault {
                    level: Level::x86(d).unwrap_or(Level::Pt),
                    cause: Cause::Permission(denied),
                    entry,
                    entry_addr,
                }),
            };
        }
        table = entry & ADDR_MASK;
    }
    // Unreachable: depth 1 is always a leaf.
    WalkOutcome::UnsupportedMode
}

type Culprit = (u8, u64, u64);

fn check_rights(
    ctl: &PagingControls,
    intent: AccessIntent,
    user_page: bool,
    read_only: Option<Culprit>,
    supervisor: Option<Culprit>,
    no_exec: Option<Culprit>,
) -> Option<(Denied, Culprit)> {
    if intent.user {
        if let Some(c) = supervisor {
            return Some((Denied::SupervisorOnly, c));
        }
    }
    match intent.access {
        Access::Execute => {
            if let Some(c) = no_exec {
                return Some((Denied::NoExecute, c));
            }
            if !intent.user && user_page && ctl.cr4 & CR4_SMEP != 0 {
                // Every level is a user level: blame the leaf.
                return Some((Denied::SupervisorExecuteOfUserPage, (1, 0, 0)));
            }
        }
        Access::Write => {
            if let Some(c) = read_only {
                if intent.user || ctl.cr0 & CR0_WP != 0 {
                    return Some((Denied::ReadOnly, c));
                }
            }
            if !intent.user && user_page && ctl.cr4 & CR4_SMAP != 0 {
                return Some((Denied::SupervisorAccessOfUserPage, (1, 0, 0)));
            }
        }
        Access::Read => {
            if !intent.user && user_page && ctl.cr4 & CR4_SMAP != 0 {
                return Some((Denied::SupervisorAccessOfUserPage, (1, 0, 0)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_memory::vm_memory::GuestAddress as GA;

    const PML4: u64 = 0x1000;
    const PDPT: u64 = 0x2000;
    const PD: u64 = 0x3000;
    const PT: u64 = 0x4000;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GA(0), 0x40_0000)]).unwrap_or_default()
    }

    fn ctl() -> PagingControls {
        PagingControls {
            cr0: CR0_PG | CR0_WP | 1,
            cr3: PML4,
            cr4: CR4_PAE,
            efer: EFER_LMA | EFER_NXE | (1 << 8),
            max_phys_bits: 46,
        }
    }

    fn put(mem: &GuestMemoryMmap, addr: u64, value: u64) {
        assert!(mem.write_obj(value, GA(addr)).is_ok());
    }

    fn sup(access: Access) -> AccessIntent {
        AccessIntent {
            access,
            user: false,
        }
    }

    /// PML4\[0\] -> PDPT\[0\] -> PD\[0\] -> PT; PT\[1\] maps 0x1000 -> 0x20_0000.
    fn tables(mem: &GuestMemoryMmap, pt1_flags: u64) {
        put(mem, PML4, PDPT | 0x7);
        put(mem, PDPT, PD | 0x7);
        put(mem, PD, PT | 0x7);
        put(mem, PT + 8, 0x20_0000 | pt1_flags);
    }

    fn fault(outcome: WalkOutcome) -> (Level, Cause) {
        match outcome {
            WalkOutcome::Fault(f) => (f.level, f.cause),
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[test]
    fn mapped_and_not_present_levels() {
        let m = mem();
        tables(&m, 0x7);
        assert_eq!(
            explain_access(&m, &ctl(), 0x1234, sup(Access::Write)),
            WalkOutcome::Mapped {
                phys: 0x20_0234,
                page_size: 4096
            }
        );
        // PT[2] is empty.
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0x2000, sup(Access::Read))),
            (Level::Pt, Cause::NotPresent)
        );
        // PD[1] is empty (0x20_0000), PDPT[1] (0x4000_0000), PML4[1].
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0x20_0000, sup(Access::Read))).0,
            Level::Pd
        );
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0x4000_0000, sup(Access::Read))).0,
            Level::Pdpt
        );
        assert_eq!(
            fault(explain_access(
                &m,
                &ctl(),
                0x80_0000_0000,
                sup(Access::Read)
            ))
            .0,
            Level::Pml4
        );
        assert_eq!(
            explain_access(&m, &ctl(), 0x8000_0000_0000, sup(Access::Read)),
            WalkOutcome::NonCanonical
        );
        let mut off = ctl();
        off.cr0 = 1;
        assert_eq!(
            explain_access(&m, &off, 0x8000_0000_0000, sup(Access::Read)),
            WalkOutcome::PagingOff
        );
        off = ctl();
        off.cr4 |= CR4_LA57;
        assert_eq!(
            explain_access(&m, &off, 0, sup(Access::Read)),
            WalkOutcome::UnsupportedMode
        );
    }

    #[test]
    fn rights_are_checked_at_the_level_that_withholds_them() {
        let m = mem();
        tables(&m, 0x5); // PT[1]: present, user, read-only
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0x1000, sup(Access::Write))),
            (Level::Pt, Cause::Permission(Denied::ReadOnly))
        );
        // Without CR0.WP the supervisor may write.
        let mut no_wp = ctl();
        no_wp.cr0 &= !CR0_WP;
        assert!(explain_access(&m, &no_wp, 0x1000, sup(Access::Write)).is_ok());
        // The PD entry is supervisor-only: a user read fails there.
        put(&m, PD, PT | 0x3);
        let user_read = AccessIntent {
            access: Access::Read,
            user: true,
        };
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0x1000, user_read)),
            (Level::Pd, Cause::Permission(Denied::SupervisorOnly))
        );
        // NX in the PDPT entry stops a fetch; without EFER.NXE bit 63 is reserved.
        put(&m, PD, PT | 0x7);
        put(&m, PDPT, PD | 0x7 | XD);
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0x1000, sup(Access::Execute))),
            (Level::Pdpt, Cause::Permission(Denied::NoExecute))
        );
        assert!(explain_access(&m, &ctl(), 0x1000, sup(Access::Read)).is_ok());
        let mut no_nxe = ctl();
        no_nxe.efer &= !EFER_NXE;
        assert_eq!(
            fault(explain_access(&m, &no_nxe, 0x1000, sup(Access::Read))),
            (Level::Pdpt, Cause::ReservedBit)
        );
        // SMEP and SMAP on an all-user mapping.
        put(&m, PDPT, PD | 0x7);
        let mut smep = ctl();
        smep.cr4 |= CR4_SMEP | CR4_SMAP;
        assert_eq!(
            fault(explain_access(&m, &smep, 0x1000, sup(Access::Execute))).1,
            Cause::Permission(Denied::SupervisorExecuteOfUserPage)
        );
        assert_eq!(
            fault(explain_access(&m, &smep, 0x1000, sup(Access::Read))).1,
            Cause::Permission(Denied::SupervisorAccessOfUserPage)
        );
    }

    #[test]
    fn reserved_bits_large_pages_and_garbage() {
        let m = mem();
        tables(&m, 0x7);
        // An address bit above MAXPHYADDR 46 in the PT entry.
        put(&m, PT + 8, 0x20_0000 | 0x7 | (1 << 47));
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0x1000, sup(Access::Read))),
            (Level::Pt, Cause::ReservedBit)
        );
        // PS in the PML4 entry.
        put(&m, PML4, PDPT | 0x87);
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0, sup(Access::Read))),
            (Level::Pml4, Cause::ReservedBit)
        );
        // A 2 MiB page at PD[1] and a 1 GiB page at PDPT[1]; then a 2 MiB
        // page with bit 13 set (reserved).
        put(&m, PML4, PDPT | 0x7);
        put(&m, PD + 8, 0x20_0000 | 0x83);
        put(&m, PDPT + 8, 0x4000_0000 | 0x83);
        assert_eq!(
            explain_access(&m, &ctl(), 0x20_1234, sup(Access::Read)),
            WalkOutcome::Mapped {
                phys: 0x20_1234,
                page_size: 1 << 21
            }
        );
        assert_eq!(
            explain_access(&m, &ctl(), 0x4000_0010, sup(Access::Read)),
            WalkOutcome::Mapped {
                phys: 0x4000_0010,
                page_size: 1 << 30
            }
        );
        put(&m, PD + 8, 0x20_0000 | 0x83 | (1 << 13));
        assert_eq!(
            fault(explain_access(&m, &ctl(), 0x20_1234, sup(Access::Read))),
            (Level::Pd, Cause::ReservedBit)
        );
        // CR3 outside memory.
        let mut far = ctl();
        far.cr3 = 0x7_0000_0000;
        assert_eq!(
            fault(explain_access(&m, &far, 0, sup(Access::Read))),
            (Level::Pml4, Cause::TableOutsideMemory)
        );
        // Garbage tables: never a panic.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..512u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            put(&m, PML4 + i * 8, x);
            put(&m, PDPT + i * 8, x.rotate_left(7));
        }
        for i in 0..4000u64 {
            let virt = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for access in [Access::Read, Access::Write, Access::Execute] {
                let _ = explain_access(&m, &ctl(), virt, sup(access));
            }
        }
    }
}
