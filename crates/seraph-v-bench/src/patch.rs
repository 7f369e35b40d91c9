//! Setting the loop count of the exit-benchmark guests in their ELF bytes.

use seraph_guests::{BENCH_BLOCK, BENCH_COUNT_MAGIC};

use crate::error::BenchError;

/// A copy of `elf` whose block count (the u64 after [`BENCH_COUNT_MAGIC`])
/// is `blocks`: the guest then makes `blocks * 16` exits before its EXIT.
pub fn with_blocks(elf: &[u8], blocks: u64) -> Result<Vec<u8>, BenchError> {
    let magic = BENCH_COUNT_MAGIC.as_slice();
    let mut hits = elf
        .windows(magic.len())
        .enumerate()
        .filter(|(_, w)| *w == magic)
        .map(|(i, _)| i);
    let at = hits
        .next()
        .ok_or_else(|| BenchError::Elf("no SVBENCH1 count marker in the guest".into()))?;
    if hits.next().is_some() {
        return Err(BenchError::Elf("the SVBENCH1 marker appears twice".into()));
    }
    let start = at + magic.len();
    let end = start + 8;
    if end > elf.len() {
        return Err(BenchError::Elf(
            "the count after SVBENCH1 is cut off".into(),
        ));
    }
    let mut out = elf.to_vec();
    out[start..end].copy_from_slice(&blocks.to_le_bytes());
    Ok(out)
}

/// Exits a guest patched with `blocks` makes in its loop.
pub fn exits_for(blocks: u64) -> u64 {
    blocks.saturating_mul(BENCH_BLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_of(elf: &[u8]) -> u64 {
        let at = elf.windows(8).position(|w| w == BENCH_COUNT_MAGIC).unwrap();
        u64::from_le_bytes(elf[at + 8..at + 16].try_into().unwrap())
    }

    #[test]
    fn patches_the_count_and_nothing_else() {
        for guest in [seraph_guests::BENCH_PIO, seraph_guests::BENCH_MMIO] {
            assert_eq!(count_of(guest), 1000, "default count");
            let patched = with_blocks(guest, 0x1234_5678).unwrap();
            assert_eq!(count_of(&patched), 0x1234_5678);
            assert_eq!(patched.len(), guest.len());
            let differing = guest.iter().zip(&patched).filter(|(a, b)| a != b).count();
            assert!(differing <= 8 && differing > 0);
        }
        assert_eq!(exits_for(64), 1024);
    }

    #[test]
    fn rejects_guests_without_exactly_one_marker() {
        assert!(with_blocks(seraph_guests::BENCH_HELLO, 1).is_err());
        let mut twice = b"SVBENCH1\0\0\0\0\0\0\0\0".to_vec();
        twice.extend_from_slice(b"SVBENCH1\0\0\0\0\0\0\0\0");
        assert!(with_blocks(&twice, 1).is_err());
        assert!(with_blocks(b"xxSVBENCH1\x01\x02", 1).is_err());
        assert_eq!(
            with_blocks(b"SVBENCH1\0\0\0\0\0\0\0\0", 3).unwrap(),
            b"SVBENCH1\x03\0\0\0\0\0\0\0"
        );
    }
}
