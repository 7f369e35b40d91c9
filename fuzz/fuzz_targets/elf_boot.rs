//! cargo-fuzz target `elf_boot`: see seraph_fuzz_harness::elf_boot.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::elf_boot(data);
});
