//! AArch64: todo
