//! cargo-fuzz target `lapic`: see seraph_fuzz_harness::lapic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::lapic(data);
});
