//! cargo-fuzz target `page_walk`: see seraph_fuzz_harness::page_walk.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::page_walk(data);
});
