//! The hypercall targets: the dispatcher with arbitrary registers against a
//! fake guest (`hypercall`), and PRINT plus the page walker over real guest
//! memory whose page tables the input corrupts (`page_walk`).

use seraph_hypervisor::Hypercall;
use seraph_memory::layout::{MIB, PAGE_SIZE};
use seraph_memory::page_tables::{PageTableLayout, write_page_tables};
use seraph_memory::walk::{read_virt, translate};
use seraph_vmm::hypercall::{
    EFAULT, EINVAL, ENOSYS, EXIT, GET_TIME, GuestFault, HypercallAction, HypercallContext, PRINT,
    PRINT_MAX, dispatch,
};
use vm_memory::{Bytes as _, GuestAddress, GuestMemoryMmap};

use crate::bytes::Bytes;

/// At most this many hypercalls are decoded from one input.
const MAX_CALLS: usize = 256;
/// The fake guest's readable window.
const WINDOW_BASE: u64 = 0x10_0000;
/// Its length: a bit more than one maximal PRINT.
const WINDOW_LEN: u64 = PRINT_MAX + 0x1000;
/// What the fake clock answers GET_TIME with.
const FAKE_TIME: u64 = 1_700_000_000_123_456_789;

/// The byte the fake guest holds at `addr`.
fn fake_byte(addr: u64) -> u8 {
    (addr.wrapping_mul(0x9E37_79B9) >> 13) as u8
}

/// A guest whose virtual memory is one window of pattern bytes.
#[derive(Default)]
struct FakeGuest {
    printed: Vec<u8>,
}

impl HypercallContext for FakeGuest {
    fn read_guest_virtual(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        let end = addr.checked_add(buf.len() as u64).ok_or(GuestFault)?;
        if addr < WINDOW_BASE || end > WINDOW_BASE + WINDOW_LEN {
            return Err(GuestFault);
        }
        for (at, b) in (addr..).zip(buf.iter_mut()) {
            *b = fake_byte(at);
        }
        Ok(())
    }

    fn print(&mut self, bytes: &[u8]) {
        self.printed.clear();
        self.printed.extend_from_slice(bytes);
    }

    fn unix_time_ns(&self) -> u64 {
        FAKE_TIME
    }
}

/// Decodes one hypercall: the number (often a small one) and four arguments
/// (the PRINT pointer often near the window).
fn decode_call(input: &mut Bytes<'_>) -> Hypercall {
    let sel = input.u8();
    let nr = if sel & 0x80 == 0 {
        u64::from(sel % 4)
    } else {
        input.u64()
    };
    let mut args = [input.u64(), input.u64(), input.u64(), input.u64()];
    if sel & 0x40 != 0 {
        args[0] = WINDOW_BASE.wrapping_add(args[0] % (2 * WINDOW_LEN));
        args[1] %= 2 * PRINT_MAX;
    }
    Hypercall { nr, args }
}

/// A sequence of hypercalls through one dispatcher and one reused scratch
/// buffer. Checks each result against the ABI (docs/hypercalls.md): PRINT
/// returns its length and prints exactly the guest's bytes, or -14 / -22
/// and prints nothing; EXIT stops with RDI; GET_TIME returns the clock;
/// other numbers return -38. The scratch buffer never grows past
/// [`PRINT_MAX`], however the calls are ordered.
pub fn hypercall(data: &[u8]) {
    let mut input = Bytes::new(data);
    let mut guest = FakeGuest::default();
    let mut scratch = Vec::new();
    for _ in 0..MAX_CALLS {
        if input.is_empty() {
            break;
        }
        let call = decode_call(&mut input);
        guest.printed.clear();
        let action = dispatch(&call, &mut guest, &mut scratch);
        assert!(
            scratch.capacity() <= PRINT_MAX as usize,
            "scratch grew to {} bytes",
            scratch.capacity()
        );
        let [addr, len, ..] = call.args;
        match call.nr {
            PRINT => {
                let fits = addr >= WINDOW_BASE
                    && addr
                        .checked_add(len)
                        .is_some_and(|end| end <= WINDOW_BASE + WINDOW_LEN);
                let printed = len <= PRINT_MAX && fits;
                let want = if len > PRINT_MAX {
                    EINVAL
                } else if fits {
                    len
                } else {
                    EFAULT
                };
                assert_eq!(action, HypercallAction::Return(want));
                // Not `want == len`: a length of 2^64 - 22 equals EINVAL.
                if printed {
                    assert_eq!(guest.printed.len() as u64, len);
                    assert!(
                        (addr..)
                            .zip(&guest.printed)
                            .all(|(a, &b)| b == fake_byte(a))
                    );
                } else {
                    assert!(guest.printed.is_empty(), "a failed PRINT printed");
                }
            }
            EXIT => assert_eq!(action, HypercallAction::Exit(addr)),
            GET_TIME => assert_eq!(action, HypercallAction::Return(FAKE_TIME)),
            _ => assert_eq!(action, HypercallAction::Return(ENOSYS)),
        }
    }
}

/// Guest RAM for `page_walk`.
const WALK_RAM: u64 = 64 * MIB;
/// Where the boot page tables go.
const WALK_PML4: u64 = 0x1000;
/// A page the input fills with garbage and may use as a page table.
const GARBAGE_PAGE: u64 = 0x40_0000;

/// Real guest memory and the guest's registers, as the VMM's `GuestView`.
struct RealGuest<'a> {
    mem: &'a GuestMemoryMmap,
    cr3: u64,
    printed: usize,
}

impl HypercallContext for RealGuest<'_> {
    fn read_guest_virtual(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        read_virt(self.mem, self.cr3, addr, buf).map_err(|_| GuestFault)
    }

    fn print(&mut self, bytes: &[u8]) {
        self.printed = bytes.len();
    }

    fn unix_time_ns(&self) -> u64 {
        FAKE_TIME
    }
}

/// Fresh 64 MiB guest memory with the spec's page tables at 0x1000; the
/// input then overwrites page-table entries and fills a garbage page with
/// its own words, picks CR3 (the real tables, the garbage page, a table
/// whose entry 0 is the real PML4's, or any value) and reads guest-virtual
/// ranges of up to 3 pages directly and through PRINT. Any read that
/// succeeds agrees byte for byte with guest-physical memory at the
/// translated address of its first page; PRINT succeeds exactly when the
/// direct read does.
pub fn page_walk(data: &[u8]) {
    let Ok(mem) = seraph_memory::create_guest_memory(WALK_RAM) else {
        return;
    };
    let tables = PageTableLayout::new(WALK_PML4, WALK_RAM);
    if write_page_tables(&mem, &tables).is_err() {
        return;
    }
    let table_words = tables.size() / 8;
    let mut input = Bytes::new(data);
    // Corrupt some entries of the real tables, then fill the garbage page.
    for _ in 0..usize::from(input.u8() % 16) {
        let at = WALK_PML4 + (input.u64() % table_words) * 8;
        let _ = mem.write_obj(input.u64(), GuestAddress(at));
    }
    let mut pml4_0 = 0u64;
    let _ = mem
        .read_obj::<u64>(GuestAddress(WALK_PML4))
        .map(|e| pml4_0 = e);
    for i in 0..PAGE_SIZE / 8 {
        let word = if i < 16 && !input.is_empty() {
            input.u64()
        } else {
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
        };
        let _ = mem.write_obj(word, GuestAddress(GARBAGE_PAGE + i * 8));
    }
    let cr3 = match input.u8() % 4 {
        0 => WALK_PML4,
        1 => GARBAGE_PAGE,
        2 => {
            let _ = mem.write_obj(pml4_0, GuestAddress(GARBAGE_PAGE));
            GARBAGE_PAGE
        }
        _ => input.u64(),
    };
    let mut scratch = Vec::new();
    for _ in 0..8 {
        if input.is_empty() {
            break;
        }
        let virt = match input.u8() % 3 {
            0 => u64::from(input.u32()),
            1 => 0xFFFF_8000_0000_0000 | u64::from(input.u32()),
            _ => input.u64(),
        };
        let len = usize::from(input.u16()) % (3 * PAGE_SIZE as usize);
        let mut buf = vec![0u8; len];
        let direct = read_virt(&mem, cr3, virt, &mut buf);
        if direct.is_ok() && len > 0 {
            let Ok(phys) = translate(&mem, cr3, virt) else {
                panic!("a successful read of {virt:#x} must translate");
            };
            let first = len.min((PAGE_SIZE - (virt & 0xFFF)) as usize);
            let mut check = vec![0u8; first];
            assert!(mem.read_slice(&mut check, GuestAddress(phys)).is_ok());
            assert!(check[..] == buf[..first], "read agrees with memory");
        }
        let mut guest = RealGuest {
            mem: &mem,
            cr3,
            printed: 0,
        };
        let call = Hypercall {
            nr: PRINT,
            args: [virt, len as u64, 0, 0],
        };
        let want = if direct.is_ok() { len as u64 } else { EFAULT };
        assert_eq!(
            dispatch(&call, &mut guest, &mut scratch),
            HypercallAction::Return(want)
        );
        assert_eq!(
            guest.printed as u64,
            if direct.is_ok() { len as u64 } else { 0 }
        );
    }
}
