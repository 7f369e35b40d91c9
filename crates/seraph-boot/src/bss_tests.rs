//! A huge bss costs nothing on fresh guest memory (issue #14 item 15): the
//! loader writes zeros only where memory may be non-zero.

use std::io::{Read, Seek, SeekFrom};
use std::time::Instant;

use seraph_memory::create_guest_memory;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::elf::KernelImage;
use crate::elf::test_elf::{build, load};
use crate::plan::{BootConfig, BootPlan};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const PAGE: u64 = 4096;

/// How many of the host pages behind guest-physical `[start, end)` are
/// resident, from /proc/self/pagemap (bit 63: present, bit 62: swapped).
fn resident_pages(mem: &GuestMemoryMmap, start: u64, end: u64) -> u64 {
    let host = mem.get_host_address(GuestAddress(start)).unwrap() as u64;
    let pages = (end - start) / PAGE;
    let mut map = std::fs::File::open("/proc/self/pagemap").unwrap();
    map.seek(SeekFrom::Start(host / PAGE * 8)).unwrap();
    let mut raw = vec![0u8; pages as usize * 8];
    map.read_exact(&mut raw).unwrap();
    raw.chunks_exact(8)
        .filter(|e| u64::from_le_bytes((*e).try_into().unwrap()) & (3 << 62) != 0)
        .count() as u64
}

#[test]
fn a_2_gib_bss_is_not_written_on_fresh_memory() {
    let ram = 3 * GIB;
    // Code at 1 MiB, then a data segment of 16 file bytes and a 2 GiB bss.
    let bytes = build(
        0x10_0000,
        &[
            load(0x10_0000, 0, 0x10, 0x1000, 5),
            load(0x20_0000, 0, 0x10, 2 * GIB, 6),
        ],
    );
    let kernel = KernelImage::parse(&bytes, ram).unwrap();
    let config = BootConfig {
        ram_size: ram,
        ..BootConfig::default()
    };
    let plan = BootPlan::new(&kernel, &config).unwrap();
    assert!(
        plan.arena.base >= 0x20_0000 + 2 * GIB,
        "arena above the bss"
    );
    let mem = create_guest_memory(ram).unwrap();
    let started = Instant::now();
    plan.write(&mem, &kernel, &bytes).unwrap();
    let took = started.elapsed();
    // Only the page holding the segment's 16 file bytes was touched.
    let bss = (0x20_0000, 0x20_0000 + 2 * GIB);
    assert_eq!(resident_pages(&mem, bss.0, bss.1), 1, "bss pages touched");
    assert!(took.as_secs() < 2, "writing the plan took {took:?}");
    // And it reads as zero.
    let mut tail = [0xFFu8; 64];
    mem.read_slice(&mut tail, GuestAddress(bss.1 - 64)).unwrap();
    assert_eq!(tail, [0; 64]);
    mem.read_slice(&mut tail, GuestAddress(0x20_0010)).unwrap();
    assert_eq!(tail, [0; 64]);
}

#[test]
fn memory_used_before_gets_its_bss_zeroed() {
    let bytes = build(
        0x10_0000,
        &[
            load(0x10_0000, 0, 0x10, 0x1000, 5),
            load(0x20_0000, 0, 0x10, 0x3000, 6),
        ],
    );
    let config = BootConfig {
        ram_size: 64 * MIB,
        ..BootConfig::default()
    };
    let kernel = KernelImage::parse(&bytes, config.ram_size).unwrap();
    let plan = BootPlan::new(&kernel, &config).unwrap();
    let mem = create_guest_memory(config.ram_size).unwrap();
    mem.write_slice(&[0xAB; 0x3000], GuestAddress(0x20_0000))
        .unwrap();
    plan.write_over_used(&mem, &kernel, &bytes).unwrap();
    let mut bss = vec![0xFFu8; 0x3000 - 0x10];
    mem.read_slice(&mut bss, GuestAddress(0x20_0010)).unwrap();
    assert!(bss.iter().all(|&b| b == 0));
    // The plain write leaves old bytes in a bss (it trusts fresh memory).
    mem.write_slice(&[0xAB; 0x3000], GuestAddress(0x20_0000))
        .unwrap();
    plan.write(&mem, &kernel, &bytes).unwrap();
    assert_eq!(mem.read_obj::<u8>(GuestAddress(0x20_2FFF)).unwrap(), 0xAB);
}
