//! cargo-fuzz target `pci_config`: see seraph_fuzz_harness::pci_config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    seraph_fuzz_harness::pci_config(data);
});
