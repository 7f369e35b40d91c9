//! cargo-fuzz target `aether_regs`: see seraph_fuzz_harness::aether_regs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::aether_regs(data);
});
