//! cargo-fuzz target `arm64_trap`: see seraph_fuzz_harness::arm64_trap.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::arm64_trap(data);
});
