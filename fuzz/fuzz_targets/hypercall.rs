//! cargo-fuzz target `hypercall`: see seraph_fuzz_harness::hypercall.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::hypercall(data);
});
