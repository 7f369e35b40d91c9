//! cargo-fuzz target `serial`: see seraph_fuzz_harness::serial.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::serial(data);
});
