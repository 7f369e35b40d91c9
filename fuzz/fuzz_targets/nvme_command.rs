//! cargo-fuzz target `nvme_command`: see seraph_fuzz_harness::nvme_command.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::nvme_command(data);
});
