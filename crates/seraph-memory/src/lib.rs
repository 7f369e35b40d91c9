//! Guest memory for Seraph-V.
//!
//! This crate knows the guest-physical layout of the Seraph boot contract
//! ([`layout`]), creates the guest's RAM and framebuffer regions
//! ([`guest_ram`]), writes the boot page tables ([`page_tables`]) and the
//! GDT/TSS ([`gdt`]) into guest memory, and walks the guest's own page tables
//! to read guest-virtual memory safely ([`walk`]).
//!
//! Nothing here touches KVM or WHP: everything works on a
//! [`GuestMemoryMmap`] and is testable on any host.

#![forbid(unsafe_code)]

pub mod error;
pub mod gdt;
pub mod guest_ram;
pub mod layout;
pub mod page_tables;
pub mod walk;

pub use error::{MemoryError, WalkError};
pub use gdt::{GdtLayout, write_gdt_and_tss};
pub use guest_ram::{create_guest_memory, validate_ram_size, write_guest};
pub use page_tables::{HeapMapping, PageTableLayout, write_page_tables};
pub use walk::{read_virt, translate};

/// The vm-memory crate this crate is built on, re-exported so that users get
/// the same version (and the same traits) without a second dependency line.
pub use vm_memory;
pub use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
