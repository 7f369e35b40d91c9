//! cargo-fuzz target `memory_map`: see seraph_fuzz_harness::memory_map.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::memory_map(data);
});
