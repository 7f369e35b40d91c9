//! cargo-fuzz target `pic`: see seraph_fuzz_harness::pic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::pic(data);
});
