//! Guest fault reports: x86 exceptions decoded and explained, and the AArch64 trap (ESR_EL2) decoder.
