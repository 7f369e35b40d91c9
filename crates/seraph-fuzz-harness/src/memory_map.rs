//! The `memory_map` target: the memory-map builder from arbitrary claims,
//! the validator on arbitrary descriptors, and the boot-info encoding.

use seraph_boot::boot_info::{BootInfo, DESC_SIZE, MAGIC, MemoryDescriptor};
use seraph_boot::{Claim, build_memory_map, validate};
use seraph_memory::layout::{MAX_RAM, PAGE_SIZE};

use crate::bytes::Bytes;

/// At most this many claims or descriptors are decoded from one input.
const MAX_ENTRIES: usize = 64;

/// Decodes a page-aligned RAM size (up to the 3 GiB maximum) and a list of
/// claims, builds the map and, if it was built, checks that the validator
/// accepts it, that it stays small, and that each claim is described with
/// its own type. Then feeds the rest of the input to the validator as raw
/// descriptors (it must not panic) and encodes a boot info made of input
/// bytes (every field must land at its offset).
pub fn memory_map(data: &[u8]) {
    let mut input = Bytes::new(data);
    let ram = (u64::from(input.u32()) % (MAX_RAM / PAGE_SIZE + 1)) * PAGE_SIZE;
    let count = usize::from(input.u8()) % MAX_ENTRIES;
    let mut claims = Vec::with_capacity(count);
    for _ in 0..count {
        // Scale so small inputs reach interesting addresses in 64 MiB-3 GiB.
        let shift = u32::from(input.u8() % 13);
        let start = u64::from(input.u32()) << shift;
        let end = start.wrapping_add(u64::from(input.u32()) << shift);
        claims.push(Claim {
            what: "fuzz",
            start,
            end,
            memory_type: input.u32(),
        });
    }
    if let Ok(map) = build_memory_map(ram, &claims) {
        assert_eq!(validate(&map, ram), Ok(()), "built map validates");
        // Each claim and the gap before it, the gap at the end, and the
        // three MMIO windows (framebuffer, PCI, LAPIC).
        assert!(map.len() <= 2 * claims.len() + 4, "map size bounded");
        for claim in &claims {
            let covered = map.iter().any(|d| {
                d.memory_type == claim.memory_type
                    && d.phys_start <= claim.start
                    && d.phys_end() >= claim.end
            });
            assert!(covered, "claim {claim:?} described with its type");
        }
        for d in &map {
            let bytes = d.to_bytes();
            assert_eq!(bytes.len() as u64, DESC_SIZE);
            assert_eq!(bytes[8..16], d.phys_start.to_le_bytes());
        }
    }

    let mut raw = Vec::new();
    while raw.len() < MAX_ENTRIES && !input.is_empty() {
        raw.push(MemoryDescriptor {
            memory_type: input.u32(),
            phys_start: input.u64(),
            virt_start: 0,
            page_count: input.u64(),
            attribute: input.u64(),
        });
    }
    let _ = validate(&raw, ram);

    let mut words = Bytes::new(data);
    let info = BootInfo {
        magic: MAGIC,
        memory_map_base: words.u64(),
        memory_map_count: words.u32(),
        kernel_size: words.u64(),
        pml4_phys: words.u64(),
        ..BootInfo::default()
    };
    let bytes = info.to_bytes();
    assert_eq!(bytes[0..8], MAGIC.to_le_bytes());
    assert_eq!(bytes[48..56], info.memory_map_base.to_le_bytes());
    assert_eq!(bytes[76..80], info.memory_map_count.to_le_bytes());
    assert_eq!(bytes[96..104], info.kernel_size.to_le_bytes());
    assert_eq!(bytes[152..160], info.pml4_phys.to_le_bytes());
    assert!(bytes[160..].iter().all(|&b| b == 0));
}
