//! Seraph-V: one import for the whole set of Seraph-V crates.
//!
//! Each crate stands alone; this facade re-exports them under short names so
//! that an embedding VMM can depend on one crate. See `docs/architecture.md`.

pub use seraph_boot as boot;
pub use seraph_bus as bus;
pub use seraph_clock as clock;
pub use seraph_framebuffer as framebuffer;
pub use seraph_hypervisor as hypervisor;
pub use seraph_memory as memory;
pub use seraph_serial as serial;
pub use seraph_vmm as vmm;
