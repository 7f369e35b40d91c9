//! The Seraph-V hypercall ABI and its dispatcher.
//!
//! Convention (the original tool's): RAX = number, arguments in RDI, RSI,
//! RDX, RCX, result in RAX. Transport: an `out` of EAX to port
//! [`HYPERCALL_PORT`] on every backend (KVM keeps VMCALL to itself), plus
//! native VMCALL/VMMCALL where the backend delivers it (WHP). The CPUID leaf
//! 0x4000_0001 announces the port. See docs/hypercalls.md.

use seraph_hypervisor::Hypercall;

/// The I/O port of the hypercall doorbell (`out 0xE4, eax`).
pub const HYPERCALL_PORT: u16 = 0xe4;
/// Version of this ABI, reported in CPUID leaf 0x4000_0001 EBX.
pub const ABI_VERSION: u32 = 1;

/// PRINT: RDI = guest-virtual address, RSI = length; returns bytes printed.
pub const PRINT: u64 = 0;
/// EXIT: RDI = status; the VM stops.
pub const EXIT: u64 = 1;
/// GET_TIME: returns nanoseconds since the Unix epoch.
pub const GET_TIME: u64 = 2;

/// Error: a pointer the guest's page tables do not map to guest RAM (-14, EFAULT).
pub const EFAULT: u64 = (-14i64) as u64;
/// Error: a length over [`PRINT_MAX`] (-22, EINVAL).
pub const EINVAL: u64 = (-22i64) as u64;
/// Error: no hypercall with that number (-38, ENOSYS).
pub const ENOSYS: u64 = (-38i64) as u64;

/// The most bytes one PRINT takes.
pub const PRINT_MAX: u64 = 64 * 1024;

/// A short name for a hypercall number, for statistics.
pub fn name(nr: u64) -> String {
    match nr {
        PRINT => "print".to_owned(),
        EXIT => "exit".to_owned(),
        GET_TIME => "get-time".to_owned(),
        other => format!("unknown {other:#x}"),
    }
}

/// A guest address that does not translate to guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFault;

/// What the dispatcher needs from the VM.
pub trait HypercallContext {
    /// Reads guest-virtual memory through the guest's current page tables;
    /// `Err` if any byte is unmapped or outside guest RAM.
    fn read_guest_virtual(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), GuestFault>;
    /// Writes PRINT output.
    fn print(&mut self, bytes: &[u8]);
    /// Nanoseconds since the Unix epoch (the oracle clock).
    fn unix_time_ns(&self) -> u64;
}

/// What to do after a hypercall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HypercallAction {
    /// Put this value in RAX and continue the guest.
    Return(u64),
    /// Stop the VM with this status.
    Exit(u64),
}

/// Runs one hypercall. `scratch` is a reusable buffer, so PRINT does not
/// allocate per call; it never grows past [`PRINT_MAX`].
pub fn dispatch(
    call: &Hypercall,
    ctx: &mut impl HypercallContext,
    scratch: &mut Vec<u8>,
) -> HypercallAction {
    match call.nr {
        PRINT => HypercallAction::Return(print(call.args[0], call.args[1], ctx, scratch)),
        EXIT => HypercallAction::Exit(call.args[0]),
        GET_TIME => HypercallAction::Return(ctx.unix_time_ns()),
        _ => HypercallAction::Return(ENOSYS),
    }
}

fn print(addr: u64, len: u64, ctx: &mut impl HypercallContext, scratch: &mut Vec<u8>) -> u64 {
    if len > PRINT_MAX {
        return EINVAL;
    }
    // The last byte must not wrap; an end of exactly 2^64 (the last bytes
    // of the address space) is fine, the page walk handles it.
    if len > 0 && addr.checked_add(len - 1).is_none() {
        return EFAULT;
    }
    // len <= PRINT_MAX, so this fits in usize on every host.
    let n = len as usize;
    scratch.clear();
    // Exactly n: `resize` alone grows by doubling, and a 40 KiB PRINT
    // followed by a 64 KiB one would leave an 80 KiB buffer behind.
    scratch.reserve_exact(n);
    scratch.resize(n, 0);
    // Read all of it before printing anything: a fault halfway prints nothing.
    if ctx.read_guest_virtual(addr, scratch).is_err() {
        return EFAULT;
    }
    ctx.print(scratch);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest memory: 0x1000..0x2000 readable, filled with 'a'..
    struct Fake {
        printed: Vec<u8>,
    }

    impl HypercallContext for Fake {
        fn read_guest_virtual(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
            let end = addr.checked_add(buf.len() as u64).ok_or(GuestFault)?;
            if addr < 0x1000 || end > 0x2000 {
                return Err(GuestFault);
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = b'a' + ((addr as usize + i) % 26) as u8;
            }
            Ok(())
        }
        fn print(&mut self, bytes: &[u8]) {
            self.printed.extend_from_slice(bytes);
        }
        fn unix_time_ns(&self) -> u64 {
            1_700_000_000_000_000_000
        }
    }

    fn call(nr: u64, a0: u64, a1: u64) -> (HypercallAction, Vec<u8>) {
        let mut ctx = Fake { printed: vec![] };
        let mut scratch = Vec::new();
        let action = dispatch(
            &Hypercall {
                nr,
                args: [a0, a1, 0, 0],
            },
            &mut ctx,
            &mut scratch,
        );
        assert!(scratch.capacity() <= PRINT_MAX as usize);
        (action, ctx.printed)
    }

    #[test]
    fn print_reads_guest_memory_and_returns_the_length() {
        let (action, printed) = call(PRINT, 0x1000, 3);
        assert_eq!(action, HypercallAction::Return(3));
        // 0x1000 % 26 = 14: the fake memory holds 'o' there.
        assert_eq!(printed, b"opq");
        assert_eq!(call(PRINT, 0x1000, 0), (HypercallAction::Return(0), vec![]));
    }

    #[test]
    fn bad_pointers_and_lengths_print_nothing() {
        assert_eq!(
            call(PRINT, 0x1ffe, 4),
            (HypercallAction::Return(EFAULT), vec![])
        );
        assert_eq!(
            call(PRINT, u64::MAX - 1, 4),
            (HypercallAction::Return(EFAULT), vec![])
        );
        assert_eq!(
            call(PRINT, 0x1000, PRINT_MAX + 1),
            (HypercallAction::Return(EINVAL), vec![])
        );
        assert_eq!(
            call(PRINT, 0x1000, u64::MAX),
            (HypercallAction::Return(EINVAL), vec![])
        );
    }

    /// Guest memory: only the last page of the address space, filled with 'z'.
    struct TopPage {
        printed: Vec<u8>,
    }

    impl HypercallContext for TopPage {
        fn read_guest_virtual(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
            if addr < 0xFFFF_FFFF_FFFF_F000 || u128::from(addr) + buf.len() as u128 > 1 << 64 {
                return Err(GuestFault);
            }
            buf.fill(b'z');
            Ok(())
        }
        fn print(&mut self, bytes: &[u8]) {
            self.printed.extend_from_slice(bytes);
        }
        fn unix_time_ns(&self) -> u64 {
            0
        }
    }

    #[test]
    fn print_may_end_at_the_top_of_the_address_space() {
        // Issue #14 item 13: an end of exactly 2^64 was refused with EFAULT.
        let mut ctx = TopPage { printed: vec![] };
        let mut scratch = Vec::new();
        let mut print = |addr: u64, len: u64| {
            let call = Hypercall {
                nr: PRINT,
                args: [addr, len, 0, 0],
            };
            dispatch(&call, &mut ctx, &mut scratch)
        };
        assert_eq!(print(u64::MAX - 15, 16), HypercallAction::Return(16));
        assert_eq!(print(u64::MAX, 1), HypercallAction::Return(1));
        assert_eq!(print(u64::MAX, 0), HypercallAction::Return(0));
        // One byte more wraps around to 0.
        assert_eq!(print(u64::MAX - 15, 17), HypercallAction::Return(EFAULT));
        assert_eq!(print(u64::MAX, 2), HypercallAction::Return(EFAULT));
        assert_eq!(ctx.printed, [b'z'; 17]);
    }

    #[test]
    fn scratch_never_grows_past_print_max() {
        // Found by the `hypercall` fuzz target: growing 40 000 -> 65 536
        // bytes doubled the buffer to 80 000.
        let mut ctx = Fake { printed: vec![] };
        let mut scratch = Vec::new();
        for len in [1, 0x1000, 40_000, PRINT_MAX, 3, PRINT_MAX] {
            let call = Hypercall {
                nr: PRINT,
                args: [0, len, 0, 0],
            };
            let _ = dispatch(&call, &mut ctx, &mut scratch);
            assert!(
                scratch.capacity() <= PRINT_MAX as usize,
                "{}",
                scratch.capacity()
            );
        }
        assert!(scratch.capacity() >= PRINT_MAX as usize);
    }

    #[test]
    fn exit_time_and_unknown_numbers() {
        assert_eq!(call(EXIT, 42, 0).0, HypercallAction::Exit(42));
        assert_eq!(
            call(GET_TIME, 0, 0).0,
            HypercallAction::Return(1_700_000_000_000_000_000)
        );
        assert_eq!(call(0x99, 0, 0).0, HypercallAction::Return(ENOSYS));
        assert_eq!(ENOSYS as i64, -38);
        assert_eq!(name(0x99), "unknown 0x99");
    }
}
