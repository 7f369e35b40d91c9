//! Guests at the edges of what the VMM accepts, run through the `seraph-v`
//! binary (issue #14): PRINT from the top of the address space, and a
//! guest that PRINTs with a new hypercall number each time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TempDir, kvm_available, seraph_v, stderr, stdout, write_guest};

#[test]
fn print_from_the_last_bytes_of_the_address_space_works() {
    if !kvm_available("print_top_of_address_space") {
        return;
    }
    let dir = TempDir::new();
    let kernel = write_guest(&dir, "top.elf", seraph_guests::HOSTILE_PRINT_TOP);
    let out = seraph_v(&dir, &[kernel.to_str().unwrap(), "--no-screenshot"]);
    // Before the fix the first PRINT returned -14 and the guest EXITed 1.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let want = format!("{}\n", seraph_guests::HOSTILE_PRINT_TOP_TEXT);
    assert_eq!(text, want, "stdout: {text:?}");
}
