//! Resource hygiene: creating, running and dropping machines in a loop
//! through the library API leaks no file descriptors, no threads and no
//! memory. One test in this binary, so nothing else runs beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use seraph_v::vmm::{Machine, MachineConfig, RunOutcome};

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Threads of this process (/proc/self/status `Threads:`).
fn threads() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Resident set size in bytes (/proc/self/statm).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Cycles after the warm-up, measured.
const CYCLES: usize = 300;
/// Cycles first, so allocator pools and lazy statics settle.
const WARM_UP: usize = 20;
/// RSS samples over the measured cycles.
const SAMPLES: usize = 6;

#[test]
fn hundreds_of_machines_leak_no_fds_threads_or_memory() {
    let Some(kvm) = common::kvm_or_skip("hygiene") else {
        return;
    };
    // The smallest machine, with a timeout so the watchdog thread is
    // created (and must be joined) in every cycle too.
    let config = MachineConfig {
        memory_size: 64 << 20,
        timeout: Some(Duration::from_secs(60)),
        ..MachineConfig::quiet()
    };
    let cycle = || {
        let mut machine = Machine::new(&kvm, config.clone(), seraph_guests::EXIT_STATUS).unwrap();
        let report = machine.run().unwrap();
        assert_eq!(report.outcome, RunOutcome::GuestExit { status: 42 });
    };
    for _ in 0..WARM_UP {
        cycle();
    }
    let (fds, threads_before, rss_start) = (open_fds(), threads(), rss_bytes());
    let mut samples = vec![rss_start];
    for i in 1..=CYCLES {
        cycle();
        if i % (CYCLES / SAMPLES) == 0 {
            samples.push(rss_bytes());
        }
    }
    assert_eq!(
        open_fds(),
        fds,
        "file descriptors leaked over {CYCLES} machines"
    );
    assert_eq!(
        threads(),
        threads_before,
        "threads leaked over {CYCLES} machines"
    );
    // One leaked guest RAM (64 MiB, 16 MiB of it touched) or even 64 KiB a
    // cycle would show: allow 8 MiB of allocator noise overall, and no
    // steady climb (the last samples no higher than the first ones + 4 MiB).
    let mib = |b: u64| b >> 20;
    let end = *samples.last().unwrap();
    assert!(
        end.saturating_sub(rss_start) < 8 << 20,
        "RSS grew from {} MiB to {} MiB over {CYCLES} machines: {:?}",
        mib(rss_start),
        mib(end),
        samples.iter().map(|&s| mib(s)).collect::<Vec<_>>()
    );
    let early = samples[1].max(samples[2]);
    assert!(
        end <= early + (4 << 20),
        "RSS climbs steadily: {:?} MiB",
        samples.iter().map(|&s| mib(s)).collect::<Vec<_>>()
    );
}
