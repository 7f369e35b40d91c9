//! cargo-fuzz target `pit`: see seraph_fuzz_harness::pit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::pit(data);
});
