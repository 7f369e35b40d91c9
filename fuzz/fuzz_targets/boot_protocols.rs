//! cargo-fuzz target `boot_protocols`: see seraph_fuzz_harness::boot_protocols.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::boot_protocols(data);
});
