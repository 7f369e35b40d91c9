//! String port I/O on /dev/kvm: one `rep outsb` / `rep insb` exit carries
//! many accesses to one port, and each must reach the device as its own
//! access (a UART gets every byte; LSR is read once per byte read).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use seraph_guests::expected as want;
use seraph_v::vmm::RunOutcome;

#[test]
fn rep_outsb_and_rep_insb_reach_the_uart_byte_by_byte() {
    let Some(kvm) = common::kvm_or_skip("string_io") else {
        return;
    };
    let (_m, report) = common::boot(&kvm, common::quiet(), seraph_guests::STRING_IO);
    assert_eq!(common::text(&report.serial), want::STRING_IO_LINE);
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit {
            status: want::STRING_IO_EXIT
        }
    );
    // 7 init writes + one access per byte of the line + 4 LSR reads, none unhandled.
    let expected = 7 + want::STRING_IO_LINE.len() as u64 + 4;
    assert_eq!(report.stats.device_exits["serial"], expected);
    assert!(!report.stats.unhandled.contains_key("pio"));
}
