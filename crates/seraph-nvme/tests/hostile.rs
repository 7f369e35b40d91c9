//! Hostile guests: bad queues, bad doorbells, a guest that never reads its
//! completions, queues of 65536 entries. Each has a clean outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{DATA, Driver, IO_RINGS, cmd};
use seraph_nvme::Status;
use seraph_nvme::controller::COMMAND_BUDGET;
use seraph_pci::PciDevice;

fn create(op: u8, qid: u32, entries: u32, prp1: u64, cdw11: u32) -> seraph_nvme::Command {
    let mut c = cmd(op);
    c.prp1 = prp1;
    c.cdw[0] = qid | entries.wrapping_sub(1) << 16;
    c.cdw[1] = cdw11;
    c
}

#[test]
fn bad_queue_creation_and_deletion_get_their_statuses() {
    let mut d = Driver::memory_disk(64, 512, false);
    d.enable();
    let base = IO_RINGS;
    let cases = [
        (create(0x05, 0, 16, base, 1), Status::INVALID_QUEUE_ID),
        (create(0x05, 64, 16, base, 1), Status::INVALID_QUEUE_ID),
        (create(0x05, 0xFFFF, 16, base, 1), Status::INVALID_QUEUE_ID),
        (create(0x05, 1, 1, base, 1), Status::INVALID_QUEUE_SIZE),
        (create(0x05, 1, 16, base, 0), Status::INVALID_FIELD),
        (create(0x05, 1, 16, base + 8, 1), Status::INVALID_PRP_OFFSET),
        (
            create(0x05, 1, 16, 0x4000_0000, 1),
            Status::DATA_TRANSFER_ERROR,
        ),
        (
            create(0x05, 1, 65536, 0xFF_F000, 1),
            Status::DATA_TRANSFER_ERROR,
        ),
        (
            create(0x05, 1, 16, base, 1 | 64 << 16),
            Status::INVALID_VECTOR,
        ),
        (create(0x01, 1, 16, base, 1 | 1 << 16), Status::INVALID_CQ),
        (create(0x01, 1, 16, base, 1), Status::INVALID_CQ),
        (create(0x04, 1, 1, 0, 0), Status::INVALID_QUEUE_ID),
        (create(0x00, 1, 1, 0, 0), Status::INVALID_QUEUE_ID),
        (create(0x04, 0, 1, 0, 0), Status::INVALID_QUEUE_ID),
        (create(0x00, 0, 1, 0, 0), Status::INVALID_QUEUE_ID),
    ];
    for (c, want) in cases {
        assert_eq!(d.admin(c).status, want, "{c:?}");
    }
    d.create_pair(1, 16, 0);
    assert_eq!(
        d.admin(create(0x05, 1, 16, base, 1)).status,
        Status::INVALID_QUEUE_ID,
        "CQ 1 exists"
    );
    assert_eq!(
        d.admin(create(0x04, 1, 1, 0, 0)).status,
        Status::INVALID_QUEUE_DELETION,
        "SQ 1 still uses CQ 1"
    );
    assert_eq!(d.admin(create(0x00, 1, 1, 0, 0)).status, Status::SUCCESS);
    assert_eq!(d.admin(create(0x04, 1, 1, 0, 0)).status, Status::SUCCESS);
    // Doorbells of the deleted queues are ignored.
    let before = d.nvme.ignored_doorbells();
    d.write32(0x1008, 1);
    d.write32(0x100C, 1);
    assert_eq!(d.nvme.ignored_doorbells(), before + 2);
}

#[test]
fn doorbells_for_missing_queues_and_bad_values_are_ignored() {
    let mut d = Driver::memory_disk(64, 512, false);
    // Before enable: ignored.
    d.write32(0x1000, 1);
    d.enable();
    d.create_pair(1, 16, 0);
    let before = d.nvme.ignored_doorbells();
    for q in 2..64u64 {
        d.write32(0x1000 + 8 * q, 5);
        d.write32(0x1004 + 8 * q, 5);
    }
    // Past the doorbell array and inside it with values past the queue end.
    d.write32(0x1000 + 8 * 64, 1);
    d.write32(0x1008, 16);
    d.write32(0x100C, 0xFFFF_FFFF);
    assert_eq!(d.nvme.ignored_doorbells(), before + 62 * 2 + 2);
    // The queues still work.
    assert_eq!(
        d.io(1, Driver::rw(0x02, 0, 1, DATA, 0)).status,
        Status::SUCCESS
    );
    assert_eq!(d.admin(cmd(0x08)).status, Status::SUCCESS);
}

#[test]
fn a_guest_that_never_reads_completions_stalls_only_itself() {
    let mut d = Driver::memory_disk(64, 512, false);
    d.enable();
    // CQ of 4 entries (3 usable), SQ of 32.
    let mut c = create(0x05, 1, 4, IO_RINGS + 0x10_0000, 1);
    c.cdw[1] = 1;
    d.admin_ok(c);
    d.admin_ok(create(0x01, 1, 32, IO_RINGS, 1 | 1 << 16));
    d.sq[1] = Some(common::Ring {
        base: IO_RINGS,
        size: 32,
        index: 0,
        phase: true,
    });
    d.cq[1] = Some(common::Ring {
        base: IO_RINGS + 0x10_0000,
        size: 4,
        index: 0,
        phase: true,
    });
    let mut cids = Vec::new();
    for i in 0..20 {
        cids.push(d.queue(1, Driver::rw(0x02, i, 1, DATA, 0)));
    }
    d.ring(1);
    let mut got = Vec::new();
    while let Some(c) = d.peek(1) {
        got.push(c);
    }
    assert_eq!(got.len(), 3, "a full CQ stops processing");
    // The admin queue is not blocked by it.
    assert_eq!(d.admin(cmd(0x08)).status, Status::SUCCESS);
    // Freeing the entries lets the rest through, in order, phases flipping.
    loop {
        d.ack(1);
        let mut any = false;
        while let Some(c) = d.peek(1) {
            got.push(c);
            any = true;
        }
        if !any {
            break;
        }
    }
    assert_eq!(got.len(), 20);
    assert_eq!(got.iter().map(|c| c.cid).collect::<Vec<_>>(), cids);
    assert!(got.iter().all(|c| c.status == Status::SUCCESS));
    let heads: Vec<u16> = got.iter().map(|c| c.sq_head).collect();
    assert_eq!(heads, (1..=20).collect::<Vec<u16>>());
}

#[test]
fn queues_of_65536_entries_are_worked_through_in_bounded_batches() {
    let mut d = Driver::memory_disk(64, 512, false);
    d.enable();
    // SQ 4 MiB at 0x40_0000, CQ 1 MiB at 0xA0_0000.
    let (sq, cq) = (0x40_0000u64, 0xA0_0000u64);
    d.admin_ok(create(0x05, 1, 65536, cq, 1));
    d.admin_ok(create(0x01, 1, 65536, sq, 1 | 1 << 16));
    d.sq[1] = Some(common::Ring {
        base: sq,
        size: 65536,
        index: 0,
        phase: true,
    });
    d.cq[1] = Some(common::Ring {
        base: cq,
        size: 65536,
        index: 0,
        phase: true,
    });
    let mut flush = cmd(0x00);
    flush.nsid = 1;
    for _ in 0..65535 {
        d.queue(1, flush);
    }
    let started = Instant::now();
    d.ring(1);
    let first_batch = started.elapsed();
    let mut posted = 0usize;
    while d.peek(1).is_some() {
        posted += 1;
    }
    assert_eq!(
        posted, COMMAND_BUDGET as usize,
        "one batch per doorbell write"
    );
    assert!(first_batch < Duration::from_secs(1), "{first_batch:?}");
    assert!(d.nvme.has_pending_work());
    assert_eq!(d.nvme.next_deadline_ns(), Some(0), "the rest is due now");
    // A polling guest's register read also moves the backlog on.
    assert_eq!(d.read32(0x1C) & 1, 1);
    while d.peek(1).is_some() {
        posted += 1;
    }
    assert_eq!(posted, 2 * COMMAND_BUDGET as usize);
    let mut rounds = 0;
    while d.nvme.next_deadline_ns().is_some() {
        d.nvme.on_deadline(0);
        while d.peek(1).is_some() {
            posted += 1;
        }
        rounds += 1;
        assert!(rounds < 1000);
    }
    // 65535 fit: the CQ holds 65535 unacknowledged entries at most.
    assert_eq!(posted, 65535);
    d.ack(1);
    assert_eq!(d.io(1, flush).status, Status::SUCCESS);
}

#[test]
fn without_bus_mastering_nothing_is_fetched_until_it_is_turned_on() {
    let mut d = Driver::memory_disk(64, 512, false);
    d.enable();
    d.nvme.config_mut().set_command(0x2);
    let cid = d.queue(0, cmd(0x08));
    d.ring(0);
    assert!(d.peek(0).is_none());
    d.nvme.config_mut().set_command(0x6);
    d.nvme.config_written(4, &[6, 0]);
    assert_eq!(d.reap(0).map(|c| c.cid), Some(cid));
}

#[test]
fn garbage_commands_complete_with_errors_not_panics() {
    let mut d = Driver::memory_disk(64, 512, false);
    d.enable();
    d.create_pair(1, 64, 0);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..400 {
        let qid = if i % 2 == 0 { 0 } else { 1 };
        let mut bytes = [0u8; 64];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&next().to_le_bytes());
        }
        // Keep the queue-creation and deletion opcodes from tearing down
        // queue 1 under the driver's feet, and held AERs from leaving no completion.
        if qid == 0 && matches!(bytes[0], 0x00 | 0x04 | 0x0C) {
            bytes[0] = 0x7F;
        }
        let c = seraph_nvme::Command::parse(&bytes);
        let done = d.submit_on(qid, qid, c);
        let _ = done.status;
    }
    assert_eq!(d.read32(0x1C) & 3, 1, "still ready, no fatal status");
}

#[test]
fn a_cq_head_past_the_posted_entries_is_ignored_and_intx_stays_honest() {
    let mut d = Driver::memory_disk(64, 512, false);
    d.enable();
    d.create_pair(1, 16, 0);
    // One completion posted on CQ 1 (head 0, tail 1), consumed normally.
    assert_eq!(
        d.io(1, Driver::rw(0x02, 0, 1, DATA, 0)).status,
        Status::SUCCESS
    );
    assert!(!d.sink.level(common::INTX_LINE), "all completions read");
    // A head of 5 would consume entries never posted: ignored and counted
    // (it used to make the empty queue look full and hold INTx high).
    let before = d.nvme.ignored_doorbells();
    d.write32(0x1000 + 8 + 4, 5);
    assert_eq!(d.nvme.ignored_doorbells(), before + 1);
    assert!(!d.sink.level(common::INTX_LINE));
    // The queue still works.
    assert_eq!(
        d.io(1, Driver::rw(0x02, 0, 1, DATA, 0)).status,
        Status::SUCCESS
    );
}
