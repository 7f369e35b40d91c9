use seraph_clock::FakeClock;

use super::*;

fn lapic() -> (FakeClock, Lapic<FakeClock>) {
    let clock = FakeClock::new();
    (clock.clone(), Lapic::new(clock))
}

fn rd(l: &mut Lapic<FakeClock>, reg: u32) -> u32 {
    read_u32(l, u64::from(reg))
}

fn wr(l: &mut Lapic<FakeClock>, reg: u32, value: u32) {
    write_u32(l, u64::from(reg), value);
}

/// Accept, inject and return the vector the VMM would inject now.
fn inject(l: &mut Lapic<FakeClock>) -> Option<u8> {
    let v = l.pending_vector()?;
    l.acknowledge(v);
    Some(v)
}

#[test]
fn reset_values() {
    let (_, mut l) = lapic();
    assert_eq!(rd(&mut l, 0x20), 0);
    assert_eq!(rd(&mut l, 0x30), 0x0005_0014);
    assert_eq!(rd(&mut l, 0xF0), 0x1FF);
    assert_eq!(rd(&mut l, 0xE0), 0xFFFF_FFFF);
    assert_eq!(rd(&mut l, 0x320), 0x0001_0000);
    assert_eq!(rd(&mut l, 0x350), 0x0000_0700);
    assert_eq!(rd(&mut l, 0x360), 0x0000_0400);
    assert_eq!(rd(&mut l, 0x370), 0x0001_0000);
    assert_eq!(rd(&mut l, 0x3E0), 0);
    assert_eq!(rd(&mut l, 0x390), 0);
    assert_eq!(l.read_apic_base(), 0xFEE0_0900);
    let (_, mut other) = {
        let clock = FakeClock::new();
        (clock.clone(), Lapic::with_id(clock, 3, false))
    };
    assert_eq!(rd(&mut other, 0x20), 0x0300_0000);
    assert_eq!(other.read_apic_base(), 0xFEE0_0800);
    assert_eq!(other.apic_id(), 3);
}

#[test]
fn esr_write_then_read() {
    let (_, mut l) = lapic();
    assert_eq!(rd(&mut l, 0x280), 0);
    let _ = rd(&mut l, 0x40); // reserved register
    assert_eq!(rd(&mut l, 0x280), 0); // not visible before a write
    wr(&mut l, 0x280, 0);
    assert_eq!(rd(&mut l, 0x280), 0x80);
    assert_eq!(rd(&mut l, 0x280), 0x80); // reads do not clear
    wr(&mut l, 0x280, 0xFFFF_FFFF); // the value written does not matter
    assert_eq!(rd(&mut l, 0x280), 0);
    // A self-IPI with vector 5 is a send-illegal-vector error.
    wr(&mut l, 0x300, 0x0004_0005);
    wr(&mut l, 0x280, 0);
    assert_eq!(rd(&mut l, 0x280), 0x20);
}

#[test]
fn one_shot_fires_exactly_at_initial_times_divide() {
    let (clock, mut l) = lapic();
    wr(&mut l, 0x3E0, 0xB); // divide by 1
    wr(&mut l, 0x320, 0x30); // one-shot, vector 0x30, unmasked
    wr(&mut l, 0x380, 1000);
    assert_eq!(l.next_deadline_ns(), Some(1000));
    clock.set(999);
    assert_eq!(rd(&mut l, 0x390), 1);
    assert_eq!(l.pending_vector(), None);
    clock.set(1000);
    assert_eq!(l.pending_vector(), Some(0x30));
    assert_eq!(rd(&mut l, 0x390), 0);
    assert_eq!(l.next_deadline_ns(), None);
    assert_eq!(rd(&mut l, 0x200 + 0x10), 1 << 16); // IRR bit 0x30
    l.acknowledge(0x30);
    wr(&mut l, 0xB0, 0);
    clock.set(1_000_000);
    assert_eq!(l.pending_vector(), None); // one-shot: once only
    // Divide by 16: initial 100 fires after 1600 ns.
    wr(&mut l, 0x3E0, 0x3);
    wr(&mut l, 0x380, 100);
    assert_eq!(l.next_deadline_ns(), Some(1_001_600));
    clock.set(1_001_599);
    assert_eq!(rd(&mut l, 0x390), 1);
    assert_eq!(l.pending_vector(), None);
    clock.set(1_001_600);
    assert_eq!(l.pending_vector(), Some(0x30));
}

#[test]
fn current_count_follows_the_clock() {
    let (clock, mut l) = lapic();
    wr(&mut l, 0x3E0, 0x3); // 16: 62.5 MHz
    wr(&mut l, 0x380, 0xFFFF_FFFF);
    for (t, expect) in [
        (0, 0xFFFF_FFFF),
        (15, 0xFFFF_FFFF),
        (16, 0xFFFF_FFFE),
        (1_000_000, 0xFFFF_FFFF - 62_500),
        (10_000_000, 0xFFFF_FFFF - 625_000),
        (1_000_000_000, 0xFFFF_FFFF - 62_500_000),
    ] {
        clock.set(t);
        assert_eq!(rd(&mut l, 0x390), expect, "at {t} ns");
    }
    // Writing 0 stops the timer.
    wr(&mut l, 0x380, 0);
    assert_eq!(rd(&mut l, 0x390), 0);
    assert_eq!(l.next_deadline_ns(), None);
}

#[test]
fn divide_encodings() {
    for (config, divide) in [
        (0x0, 2u32),
        (0x1, 4),
        (0x2, 8),
        (0x3, 16),
        (0x8, 32),
        (0x9, 64),
        (0xA, 128),
        (0xB, 1),
        (0xF4, 2), // bits 2 and 4-7 are reserved: 0xF4 & 0xB = 0 -> 2
    ] {
        let (clock, mut l) = lapic();
        wr(&mut l, 0x3E0, config);
        assert_eq!(rd(&mut l, 0x3E0), config & 0xB);
        wr(&mut l, 0x380, 1_000_000);
        clock.set(12_800);
        assert_eq!(
            rd(&mut l, 0x390),
            1_000_000 - 12_800 / divide,
            "config {config:#x}"
        );
        assert_eq!(timer::divisor(config), u64::from(divide));
    }
}

#[test]
fn periodic_reloads_over_many_periods() {
    let (clock, mut l) = lapic();
    wr(&mut l, 0x3E0, 0x0); // divide by 2
    wr(&mut l, 0x320, 0x0002_0040); // periodic, vector 0x40
    wr(&mut l, 0x380, 1000); // period 2000 ns
    let mut delivered = 0;
    for period in 1..=500u64 {
        clock.set(period * 2000 - 1);
        assert_eq!(l.pending_vector(), None, "early in period {period}");
        assert_eq!(rd(&mut l, 0x390), 1);
        assert_eq!(l.next_deadline_ns(), Some(period * 2000));
        clock.set(period * 2000);
        assert_eq!(rd(&mut l, 0x390), 1000); // reloaded
        assert_eq!(inject(&mut l), Some(0x40));
        wr(&mut l, 0xB0, 0);
        delivered += 1;
    }
    assert_eq!(delivered, 500);
    clock.set(500 * 2000 + 500);
    assert_eq!(rd(&mut l, 0x390), 750);
    // Many periods without service coalesce into one request.
    clock.set(2_000_000);
    assert_eq!(inject(&mut l), Some(0x40));
    wr(&mut l, 0xB0, 0);
    assert_eq!(l.pending_vector(), None);
    assert_eq!(l.next_deadline_ns(), Some(2_002_000));
}

#[test]
fn a_requested_timer_vector_has_no_deadline_until_it_is_taken() {
    // The interrupt storm of tests/hostile.rs: count 1, divide by 1,
    // periodic. While the handler runs (0x20 in service, the next expiry
    // already in IRR), further expiries change nothing, so there is no
    // deadline to kick the vCPU for; EOI and injection bring it back.
    let (clock, mut l) = lapic();
    wr(&mut l, 0x3E0, 0xB);
    wr(&mut l, 0x320, 0x0002_0020);
    wr(&mut l, 0x380, 1);
    assert_eq!(l.next_deadline_ns(), Some(1));
    clock.set(1);
    assert_eq!(inject(&mut l), Some(0x20));
    assert_eq!(l.next_deadline_ns(), None, "blocked by its own ISR bit");
    clock.set(5);
    assert_eq!(l.pending_vector(), None, "blocked by its own ISR bit");
    assert_eq!(l.next_deadline_ns(), None, "and 0x20 already requested");
    clock.set(1_000_000);
    wr(&mut l, 0xB0, 0);
    assert_eq!(l.next_deadline_ns(), None, "requested, not yet taken");
    assert_eq!(inject(&mut l), Some(0x20));
    wr(&mut l, 0xB0, 0);
    assert_eq!(l.next_deadline_ns(), Some(1_000_001), "free again");
    // TPR at the timer's class blocks it the same way.
    wr(&mut l, 0x80, 0x20);
    assert_eq!(l.next_deadline_ns(), None, "TPR class 2 blocks vector 0x20");
    wr(&mut l, 0x80, 0x10);
    assert_eq!(l.next_deadline_ns(), Some(1_000_001));
}

#[test]
fn masked_timer_counts_but_raises_nothing() {
    let (clock, mut l) = lapic();
    wr(&mut l, 0x3E0, 0xB);
    wr(&mut l, 0x320, 0x0003_0040); // periodic, masked
    wr(&mut l, 0x380, 100);
    assert_eq!(l.next_deadline_ns(), None);
    clock.set(1050);
    assert_eq!(rd(&mut l, 0x390), 50);
    assert_eq!(l.pending_vector(), None);
    assert_eq!(rd(&mut l, 0x200 + 0x20), 0);
    // Unmasked: the next expiry raises it; the masked ones are gone.
    wr(&mut l, 0x320, 0x0002_0040);
    assert_eq!(l.pending_vector(), None);
    assert_eq!(l.next_deadline_ns(), Some(1100));
    clock.set(1100);
    assert_eq!(l.pending_vector(), Some(0x40));
}

#[test]
fn isr_eoi_ordering_and_priority_classes() {
    let (_, mut l) = lapic();
    l.accept_interrupt(0x40);
    assert_eq!(inject(&mut l), Some(0x40));
    // A higher class preempts.
    l.accept_interrupt(0x50);
    assert_eq!(inject(&mut l), Some(0x50));
    assert_eq!(rd(&mut l, 0xA0), 0x50); // PPR
    // Same class as the one in service, and lower: wait.
    l.accept_interrupt(0x45);
    l.accept_interrupt(0x5F);
    assert_eq!(l.pending_vector(), None);
    assert_eq!(rd(&mut l, 0x100 + 0x20), 0x0001_0001); // ISR 0x40 and 0x50
    assert_eq!(rd(&mut l, 0x200 + 0x20), 0x8000_0020); // IRR 0x45 and 0x5F
    // EOI ends 0x50 (highest in service); 0x5F (class 5) is now above PPR 0x40.
    wr(&mut l, 0xB0, 0);
    assert_eq!(inject(&mut l), Some(0x5F));
    wr(&mut l, 0xB0, 0);
    assert_eq!(l.pending_vector(), None); // 0x45 is class 4, 0x40 still in service
    wr(&mut l, 0xB0, 0);
    assert_eq!(inject(&mut l), Some(0x45));
    wr(&mut l, 0xB0, 0);
    assert_eq!(rd(&mut l, 0xA0), 0);
    assert_eq!(l.pending_vector(), None);
    // EOI with nothing in service is harmless; EOI reads 0.
    wr(&mut l, 0xB0, 0);
    assert_eq!(rd(&mut l, 0xB0), 0);
}

#[test]
fn tpr_blocks_lower_and_equal_classes() {
    let (_, mut l) = lapic();
    wr(&mut l, 0x80, 0x55);
    assert_eq!(rd(&mut l, 0x80), 0x55);
    assert_eq!(rd(&mut l, 0xA0), 0x55);
    l.accept_interrupt(0x5A);
    assert_eq!(l.pending_vector(), None);
    assert_eq!(rd(&mut l, 0x90), 0x55); // APR = TPR when TPR class >= IRRV and > ISRV
    l.accept_interrupt(0x61);
    assert_eq!(inject(&mut l), Some(0x61));
    assert_eq!(rd(&mut l, 0xA0), 0x60);
    assert_eq!(rd(&mut l, 0x90), 0x60); // APR: highest class of TPR, ISRV, IRRV
    wr(&mut l, 0xB0, 0);
    wr(&mut l, 0x80, 0x00);
    assert_eq!(inject(&mut l), Some(0x5A));
}

#[test]
fn self_ipi_through_icr() {
    let (_, mut l) = lapic();
    // Shorthand self, fixed, vector 0x31.
    wr(&mut l, 0x300, 0x0004_0031);
    assert_eq!(rd(&mut l, 0x300), 0x0004_0031); // delivery status idle
    assert_eq!(inject(&mut l), Some(0x31));
    wr(&mut l, 0xB0, 0);
    // Physical destination = own ID 0.
    wr(&mut l, 0x310, 0x0000_0000);
    wr(&mut l, 0x300, 0x0000_0032);
    assert_eq!(inject(&mut l), Some(0x32));
    wr(&mut l, 0xB0, 0);
    // Another APIC ID, and all-excluding-self: nothing arrives.
    wr(&mut l, 0x310, 0x0500_0000);
    assert_eq!(rd(&mut l, 0x310), 0x0500_0000);
    wr(&mut l, 0x300, 0x0000_0033);
    wr(&mut l, 0x300, 0x000C_0034);
    assert_eq!(l.pending_vector(), None);
    // Logical flat: LDR bit 1 matches destination 0x02.
    wr(&mut l, 0xD0, 0x0200_0000);
    wr(&mut l, 0x310, 0x0200_0000);
    wr(&mut l, 0x300, 0x0000_0835);
    assert_eq!(inject(&mut l), Some(0x35));
    wr(&mut l, 0xB0, 0);
    // INIT and SIPI are accepted and recorded, not carried out.
    wr(&mut l, 0x300, 0x000C_4500);
    wr(&mut l, 0x300, 0x000C_4608);
    assert_eq!(l.unsupported_ipi_count(), 2);
    assert_eq!(l.last_unsupported_ipi(), Some(0x0200_0000_000C_4608));
    assert_eq!(l.pending_vector(), None);
}

#[test]
fn seraph_os_sequence() {
    let (clock, mut l) = lapic();
    // IA32_APIC_BASE is read; the enable bit is already set, so no write.
    assert_ne!(l.read_apic_base() & (1 << 11), 0);
    let svr = rd(&mut l, 0xF0);
    wr(&mut l, 0xF0, svr | 0x1FF);
    assert_eq!(rd(&mut l, 0xF0), 0x1FF);
    wr(&mut l, 0x80, 0);
    wr(&mut l, 0x280, 0);
    wr(&mut l, 0x280, 0);
    assert_eq!(rd(&mut l, 0x280), 0);
    for lvt in [0x320, 0x350, 0x360, 0x370] {
        wr(&mut l, lvt, 0x10000);
        assert_eq!(rd(&mut l, lvt), 0x10000);
    }
    assert!(!l.accepts_pic_interrupts()); // LINT0 masked: the PIC is cut off
    wr(&mut l, 0x3E0, 3);
    wr(&mut l, 0x380, 0xFFFF_FFFF);
    clock.advance(10_000_000); // the PIT wait
    let current = rd(&mut l, 0x390);
    assert_eq!(current, 0xFFFF_FFFF - 625_000);
    let per_10ms = 0xFFFF_FFFF - current;
    // Periodic at vector 0x20, 1 ms.
    wr(&mut l, 0x320, 0x20000 | 0x20);
    wr(&mut l, 0x380, per_10ms / 10);
    let start = clock.now_ns();
    assert_eq!(l.next_deadline_ns(), Some(start + 1_000_000));
    clock.set(start + 1_000_000);
    assert_eq!(inject(&mut l), Some(0x20));
    // The kernel never writes EOI: later periods set IRR but stay blocked.
    for ms in 2..=10 {
        clock.set(start + ms * 1_000_000);
        assert_eq!(l.pending_vector(), None);
    }
    assert_eq!(rd(&mut l, 0x200), 0); // IRR word 0 holds 0x00-0x1F
    assert_eq!(rd(&mut l, 0x210), 1); // IRR bit 0x20
    assert_eq!(rd(&mut l, 0x110), 1); // ISR bit 0x20
    // Once EOI comes, the next one is delivered.
    wr(&mut l, 0xB0, 0);
    assert_eq!(inject(&mut l), Some(0x20));
}

#[test]
fn apic_base_msr_rules() {
    let (_, mut l) = lapic();
    assert_eq!(l.write_apic_base(0xFEE0_0900), Ok(()));
    assert_eq!(
        l.write_apic_base(0xFEE0_0D00),
        Err(ApicError::X2ApicUnsupported { value: 0xFEE0_0D00 })
    );
    assert_eq!(
        l.write_apic_base(0xFEE0_0901),
        Err(ApicError::ReservedBits { value: 0xFEE0_0901 })
    );
    assert_eq!(
        l.write_apic_base(1 << 60 | 0xFEE0_0900),
        Err(ApicError::ReservedBits {
            value: 1 << 60 | 0xFEE0_0900
        })
    );
    assert_eq!(
        l.write_apic_base(0xFED0_0900),
        Err(ApicError::Relocation { base: 0xFED0_0000 })
    );
    // Global disable: INTR goes straight to the CPU, the page reads all-ones.
    wr(&mut l, 0x350, 0x10000);
    wr(&mut l, 0x80, 0x30);
    l.accept_interrupt(0x80);
    assert!(!l.accepts_pic_interrupts());
    assert_eq!(l.write_apic_base(0xFEE0_0000), Ok(()));
    assert_eq!(l.read_apic_base(), 0xFEE0_0100); // BSP bit is read-only
    assert!(l.accepts_pic_interrupts());
    assert_eq!(l.pending_vector(), None);
    assert_eq!(rd(&mut l, 0x30), 0xFFFF_FFFF);
    wr(&mut l, 0x80, 0x20); // ignored
    // Re-enabled: registers are back at their reset values.
    assert_eq!(l.write_apic_base(0xFEE0_0800), Ok(()));
    assert_eq!(rd(&mut l, 0x80), 0);
    assert_eq!(rd(&mut l, 0x350), 0x700);
    assert_eq!(l.pending_vector(), None);
}

#[test]
fn software_disable_masks_lvts_and_drops_new_interrupts() {
    let (_, mut l) = lapic();
    assert!(l.accepts_pic_interrupts()); // LINT0 ExtINT at reset
    l.accept_interrupt(0x70);
    wr(&mut l, 0xF0, 0xFF);
    assert_eq!(rd(&mut l, 0xF0), 0xFF);
    assert_eq!(rd(&mut l, 0x350), 0x10700);
    assert!(!l.accepts_pic_interrupts());
    wr(&mut l, 0x350, 0x700);
    assert_eq!(rd(&mut l, 0x350), 0x10700); // mask cannot be cleared
    wr(&mut l, 0x300, 0x0004_0031);
    assert_eq!(rd(&mut l, 0x210), 0); // self-IPI dropped
    assert_eq!(inject(&mut l), Some(0x70)); // held request still delivered
    wr(&mut l, 0xF0, 0x1FF);
    wr(&mut l, 0x350, 0x700);
    assert_eq!(rd(&mut l, 0x350), 0x700);
    assert!(l.accepts_pic_interrupts());
}

#[test]
fn odd_accesses_behave_and_never_panic() {
    let (_, mut l) = lapic();
    let mut b = [0u8; 1];
    l.read(0x30, &mut b);
    assert_eq!(b, [0x14]);
    l.read(0x32, &mut b);
    assert_eq!(b, [0x05]);
    l.read(0x34, &mut b);
    assert_eq!(b, [0x00]);
    let mut q = [0u8; 8];
    l.read(0x30, &mut q);
    assert_eq!(q, [0x14, 0, 5, 0, 0, 0, 0, 0]);
    // Narrow and misaligned writes are dropped.
    l.write(0x80, &[0x50, 0]);
    l.write(0x84, &[0x50, 0, 0, 0]);
    l.write(0x80, &[0x50, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(rd(&mut l, 0x80), 0);
    // Writes to read-only registers are ignored without an error.
    wr(&mut l, 0x30, 0);
    wr(&mut l, 0xA0, 0xFF);
    wr(&mut l, 0x390, 5);
    wr(&mut l, 0x100, 0xFFFF_FFFF);
    wr(&mut l, 0x280, 0);
    assert_eq!(rd(&mut l, 0x280), 0);
    assert_eq!(rd(&mut l, 0x30), 0x0005_0014);
    assert_eq!(rd(&mut l, 0x100), 0);
    // Reserved registers (including CMCI, absent with max LVT 5): ESR bit 7,
    // and the LVT error interrupt if unmasked.
    wr(&mut l, 0x370, 0x33);
    wr(&mut l, 0x2F0, 0x1234);
    assert_eq!(rd(&mut l, 0x2F0), 0);
    wr(&mut l, 0x280, 0);
    assert_eq!(rd(&mut l, 0x280), 0x80);
    assert_eq!(l.pending_vector(), Some(0x33));
    // Illegal error vector: logged, not delivered.
    let (_, mut l) = lapic();
    wr(&mut l, 0x370, 0x03);
    let _ = rd(&mut l, 0xFF0);
    wr(&mut l, 0x280, 0);
    assert_eq!(rd(&mut l, 0x280), 0xC0);
    assert_eq!(l.pending_vector(), None);
    // Timer with an illegal vector: receive illegal vector.
    wr(&mut l, 0x280, 0);
    wr(&mut l, 0x320, 0x05);
    wr(&mut l, 0x3E0, 0xB);
    wr(&mut l, 0x380, 1);
    let mut big = [0u8; 64];
    for offset in [0u64, 0xFC0, 0xFFF, 0x1000, u64::MAX - 3, u64::MAX] {
        l.read(offset, &mut big);
        l.write(offset, &big[..4]);
    }
    for reg in (0..0x1000).step_by(16) {
        wr(&mut l, reg, 0xFFFF_FFFF);
        let _ = rd(&mut l, reg);
    }
    let _ = l.pending_vector();
    let _ = l.next_deadline_ns();
}

#[test]
fn irr_events_count_every_vector_requested_without_locking() {
    let (clock, mut l) = lapic();
    let events = l.irr_events();
    assert_eq!(events.load(Ordering::Relaxed), 0);
    // A reserved-register read with LVT error unmasked raises the error vector.
    wr(&mut l, REG_LVT_ERROR, 0x41);
    let _ = rd(&mut l, 0x040);
    assert_eq!(events.load(Ordering::Relaxed), 1);
    assert_eq!(inject(&mut l), Some(0x41));
    // A one-shot timer expiring is seen on the next access.
    wr(&mut l, REG_LVT_TIMER, 0x30);
    wr(&mut l, REG_TIMER_DIVIDE, 0xB); // divide by 1
    wr(&mut l, REG_TIMER_INITIAL, 10);
    clock.advance(1_000);
    let _ = rd(&mut l, REG_TIMER_CURRENT);
    assert_eq!(events.load(Ordering::Relaxed), 2);
}
