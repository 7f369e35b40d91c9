//! A GDB remote-protocol server for debugging Seraph-V guests, built on gdbstub.
