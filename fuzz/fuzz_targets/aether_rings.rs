//! cargo-fuzz target `aether_rings`: see seraph_fuzz_harness::aether_rings.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::aether_rings(data);
});
