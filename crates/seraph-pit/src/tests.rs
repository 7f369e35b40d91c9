use std::sync::{Arc, Mutex};

use seraph_bus::BusDevice;
use seraph_clock::FakeClock;

use super::*;

fn pit() -> (FakeClock, Pit<FakeClock>) {
    let clock = FakeClock::new();
    (clock.clone(), Pit::new(clock))
}

fn outb(pit: &mut Pit<FakeClock>, port: u16, value: u8) {
    pit.write(u64::from(port - 0x40), &[value]);
}

fn inb(pit: &mut Pit<FakeClock>, port: u16) -> u8 {
    let mut b = [0u8];
    pit.read(u64::from(port - 0x40), &mut b);
    b[0]
}

/// Ticks of 1.193182 MHz -> ns, rounded up, checked by hand: 1000 ticks = 838_095.7 ns.
const NS_1000_TICKS: u64 = 838_096;
/// 11932 ticks = 10_000_150.2 ns.
const NS_11932_TICKS: u64 = 10_000_151;

#[test]
fn seraph_kernel_mode0_readback_loop_sees_out_rise_at_terminal_count() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x30); // channel 0, lo/hi, mode 0, binary
    outb(&mut pit, 0x40, (11932 & 0xFF) as u8);
    outb(&mut pit, 0x40, (11932 >> 8) as u8);
    // The kernel's loop: read-back status of channel 0, read it, test bit 7.
    let mut iterations = 0u64;
    loop {
        outb(&mut pit, 0x43, 0xE2);
        let status = inb(&mut pit, 0x40);
        if status & 0x80 != 0 {
            assert_eq!(status, 0xB0); // OUT, lo/hi access, mode 0, binary, count loaded
            break;
        }
        assert_eq!(status, 0x30);
        iterations += 1;
        assert!(iterations < 20_000, "OUT never rose");
        clock.advance(1_000);
    }
    // 1 us per iteration: the 10_000_151 ns deadline is crossed at iteration 10_001.
    assert_eq!(iterations, 10_001);
    assert_eq!(clock.now_ns(), 10_001_000);
    assert_eq!(pit.take_irq0_edges(), 1);
    assert_eq!(pit.take_irq0_edges(), 0);
    assert_eq!(pit.next_deadline_ns(), None);
}

#[test]
fn seraph_readback_status_exact_nanosecond() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x30);
    outb(&mut pit, 0x40, 0x9C);
    outb(&mut pit, 0x40, 0x2E);
    assert_eq!(pit.next_deadline_ns(), Some(NS_11932_TICKS));
    clock.set(NS_11932_TICKS - 1);
    outb(&mut pit, 0x43, 0xE2);
    assert_eq!(inb(&mut pit, 0x40), 0x30);
    clock.set(NS_11932_TICKS);
    outb(&mut pit, 0x43, 0xE2);
    assert_eq!(inb(&mut pit, 0x40), 0xB0);
}

#[test]
fn mode0_out_low_after_programming_and_rises_exactly_at_terminal_count() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x30);
    assert!(!pit.out(0));
    outb(&mut pit, 0x40, 0xE8); // 1000
    assert!(!pit.out(0)); // only the low byte: still not counting
    outb(&mut pit, 0x40, 0x03);
    assert!(!pit.out(0));
    assert_eq!(pit.next_deadline_ns(), Some(NS_1000_TICKS));
    clock.set(NS_1000_TICKS - 1);
    assert!(!pit.out(0));
    assert_eq!(pit.take_irq0_edges(), 0);
    // Count 1 one tick before the end: low byte then high byte via the flip-flop.
    assert_eq!(inb(&mut pit, 0x40), 1);
    assert_eq!(inb(&mut pit, 0x40), 0);
    clock.set(NS_1000_TICKS);
    assert!(pit.out(0));
    assert_eq!(inb(&mut pit, 0x40), 0);
    assert_eq!(inb(&mut pit, 0x40), 0);
    assert_eq!(pit.take_irq0_edges(), 1);
    // The counter wraps to 0xFFFF and keeps counting; OUT stays high.
    clock.advance(839); // one more tick
    assert_eq!(inb(&mut pit, 0x40), 0xFF);
    assert_eq!(inb(&mut pit, 0x40), 0xFF);
    assert!(pit.out(0));
    // Reprogramming sets OUT low again.
    outb(&mut pit, 0x43, 0x30);
    assert!(!pit.out(0));
}

#[test]
fn count_reads_down_at_input_clock_rate() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x34); // mode 2
    outb(&mut pit, 0x40, 0x00);
    outb(&mut pit, 0x40, 0x00); // 0 = 65536
    assert_eq!((inb(&mut pit, 0x40), inb(&mut pit, 0x40)), (0, 0));
    clock.set(1_000_000); // 1 ms = 1193.182 ticks -> 1193 ticks
    let lo = inb(&mut pit, 0x40);
    let hi = inb(&mut pit, 0x40);
    assert_eq!(u16::from_le_bytes([lo, hi]), (65536u32 - 1193) as u16);
}

#[test]
fn readback_latches_status_and_count_until_read() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x30);
    // After the control word, before a count: null count set.
    outb(&mut pit, 0x43, 0xE2);
    assert_eq!(inb(&mut pit, 0x40), 0x70);
    outb(&mut pit, 0x40, 0xE8);
    outb(&mut pit, 0x40, 0x03);
    clock.set(10_000); // 11 ticks (10_000 ns * F / 1e9 = 11.9)
    outb(&mut pit, 0x43, 0xC2); // latch count and status of channel 0
    clock.set(500_000);
    // A second read-back does not overwrite what is latched.
    outb(&mut pit, 0x43, 0xC2);
    assert_eq!(inb(&mut pit, 0x40), 0x30); // status first
    assert_eq!(inb(&mut pit, 0x40), (989 & 0xFF) as u8);
    assert_eq!(inb(&mut pit, 0x40), (989 >> 8) as u8);
    // Now live again: 500 us = 596 ticks.
    assert_eq!(inb(&mut pit, 0x40), (1000 - 596) as u8);
    assert_eq!(inb(&mut pit, 0x40), ((1000 - 596) >> 8) as u8);
    // Count-only read-back of channels 1 and 2 (bits 2, 3) does not touch channel 0.
    outb(&mut pit, 0x43, 0xDC);
    assert_eq!(inb(&mut pit, 0x40), (1000 - 596) as u8);
}

#[test]
fn counter_latch_holds_value_until_both_bytes_read() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x30);
    outb(&mut pit, 0x40, 0x10);
    outb(&mut pit, 0x40, 0x27); // 10000
    clock.set(NS_1000_TICKS);
    outb(&mut pit, 0x43, 0x00); // latch channel 0
    clock.set(2 * NS_1000_TICKS);
    outb(&mut pit, 0x43, 0x00); // ignored: already latched
    assert_eq!(inb(&mut pit, 0x40), (9000 & 0xFF) as u8);
    clock.set(3 * NS_1000_TICKS);
    assert_eq!(inb(&mut pit, 0x40), (9000 >> 8) as u8);
    // Released: the live count is 7000 (3000 ticks, 3 * 838_096 ns >= 3000 ticks).
    assert_eq!(inb(&mut pit, 0x40), (7000 & 0xFF) as u8);
    assert_eq!(inb(&mut pit, 0x40), (7000 >> 8) as u8);
}

#[test]
fn lobyte_and_hibyte_access_modes() {
    let (clock, mut pit) = pit();
    // Channel 1, lobyte only, mode 2: count 100.
    outb(&mut pit, 0x43, 0x54);
    outb(&mut pit, 0x41, 100);
    clock.set(ns_for(10));
    assert_eq!(inb(&mut pit, 0x41), 90);
    assert_eq!(inb(&mut pit, 0x41), 90); // no flip-flop in lobyte mode
    outb(&mut pit, 0x43, 0x44);
    assert_eq!(inb(&mut pit, 0x41), 90); // latched, lobyte
    // Hibyte only, mode 2: count 0x0200 = 512.
    outb(&mut pit, 0x43, 0x64);
    outb(&mut pit, 0x41, 0x02);
    assert_eq!(inb(&mut pit, 0x41), 0x02);
    clock.advance(ns_for(256));
    assert_eq!(inb(&mut pit, 0x41), 0x01);
    // Status reports the access mode: hibyte (2), mode 2.
    outb(&mut pit, 0x43, 0xE4);
    assert_eq!(inb(&mut pit, 0x41), 0x80 | 0x20 | 0x04);
}

fn ns_for(ticks: u64) -> u64 {
    channel::ns_for_ticks(ticks)
}

#[test]
fn mode2_rate_generator_period_and_edges() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x34);
    outb(&mut pit, 0x40, (1193 & 0xFF) as u8);
    outb(&mut pit, 0x40, (1193 >> 8) as u8);
    assert!(pit.out(0));
    assert_eq!(pit.next_deadline_ns(), Some(ns_for(1193)));
    // OUT is low for exactly one tick when the count reaches 1.
    clock.set(ns_for(1192) - 1);
    assert!(pit.out(0));
    clock.set(ns_for(1192));
    assert!(!pit.out(0));
    clock.set(ns_for(1193));
    assert!(pit.out(0));
    assert_eq!(pit.take_irq0_edges(), 1);
    assert_eq!(pit.next_deadline_ns(), Some(ns_for(2 * 1193)));
    // One second: 1_193_182 ticks / 1193 = 1000 periods (1000 edges in total).
    clock.set(1_000_000_000);
    assert_eq!(pit.take_irq0_edges(), 999);
    assert_eq!(pit.next_deadline_ns(), Some(ns_for(1001 * 1193)));
    // A long advance: 1 hour.
    clock.set(3_600_000_000_000);
    let ticks = 3_600 * 1_193_182u64;
    assert_eq!(pit.take_irq0_edges(), ticks / 1193 - 1000);
}

#[test]
fn mode3_square_wave_halves_and_edges() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x36); // mode 3
    outb(&mut pit, 0x40, 4);
    outb(&mut pit, 0x40, 0);
    // Count 4: high for 2 ticks (count 4, 2), low for 2 ticks (4, 2).
    let expect = [(true, 4), (true, 2), (false, 4), (false, 2), (true, 4)];
    for (tick, (out, count)) in expect.into_iter().enumerate() {
        clock.set(ns_for(tick as u64));
        assert_eq!(pit.out(0), out, "tick {tick}");
        assert_eq!(inb(&mut pit, 0x40), count, "tick {tick}");
        assert_eq!(inb(&mut pit, 0x40), 0);
    }
    // Odd count 5: high for 3 ticks, low for 2.
    outb(&mut pit, 0x43, 0x36);
    outb(&mut pit, 0x40, 5);
    outb(&mut pit, 0x40, 0);
    let start = clock.now_ns();
    let outs: Vec<bool> = (0..6)
        .map(|t| {
            clock.set(start + ns_for(t));
            pit.out(0)
        })
        .collect();
    assert_eq!(outs, [true, true, true, false, false, true]);
    // The default 18.2 Hz square wave (count 0 = 65536) over 10 s: 182 edges.
    outb(&mut pit, 0x43, 0x36);
    outb(&mut pit, 0x40, 0);
    outb(&mut pit, 0x40, 0);
    let _ = pit.take_irq0_edges();
    clock.advance(10_000_000_000);
    assert_eq!(pit.take_irq0_edges(), 11_931_820 / 65_536);
}

#[test]
fn mode4_strobe_and_mode1_mode5_gate_triggers_on_channel2() {
    let (clock, mut pit) = pit();
    // Mode 4 on channel 0: one low tick at terminal count, edge one tick later.
    outb(&mut pit, 0x43, 0x38);
    outb(&mut pit, 0x40, 10);
    outb(&mut pit, 0x40, 0);
    assert!(pit.out(0));
    clock.set(ns_for(10));
    assert!(!pit.out(0));
    assert_eq!(pit.take_irq0_edges(), 0);
    assert_eq!(pit.next_deadline_ns(), Some(ns_for(11)));
    clock.set(ns_for(11));
    assert!(pit.out(0));
    assert_eq!(pit.take_irq0_edges(), 1);
    assert_eq!(pit.next_deadline_ns(), None);

    // Mode 1 on channel 2: nothing until the gate rises, then OUT low for N ticks.
    let t0 = clock.now_ns();
    outb(&mut pit, 0x43, 0xB2);
    outb(&mut pit, 0x42, 20);
    outb(&mut pit, 0x42, 0);
    assert!(pit.out(2));
    outb(&mut pit, 0x43, 0xE8);
    assert_eq!(inb(&mut pit, 0x42) & 0x40, 0x40); // null count until triggered
    clock.set(t0 + ns_for(100));
    assert!(pit.out(2));
    pit.write_port61(0x01);
    assert!(!pit.out(2));
    let t1 = clock.now_ns();
    clock.set(t1 + ns_for(20) - 1);
    assert!(!pit.out(2));
    clock.set(t1 + ns_for(20));
    assert!(pit.out(2));

    // Mode 5: strobe after the gate trigger.
    pit.write_port61(0x00);
    outb(&mut pit, 0x43, 0xBA);
    outb(&mut pit, 0x42, 5);
    outb(&mut pit, 0x42, 0);
    pit.write_port61(0x01);
    let t2 = clock.now_ns();
    clock.set(t2 + ns_for(5));
    assert!(!pit.out(2));
    clock.set(t2 + ns_for(6));
    assert!(pit.out(2));
}

#[test]
fn port61_gate2_and_out2_through_the_bus_adapter() {
    let clock = FakeClock::new();
    let pit = Arc::new(Mutex::new(Pit::new(clock.clone())));
    let mut port61 = Port61::new(pit.clone());
    let read61 = |p: &mut Port61<FakeClock>| {
        let mut b = [0u8];
        p.read(0, &mut b);
        b[0]
    };
    // Channel 2 mode 0, count 100, gate low: it does not count.
    {
        let mut pit = pit.lock().unwrap();
        outb(&mut pit, 0x43, 0xB0);
        outb(&mut pit, 0x42, 100);
        outb(&mut pit, 0x42, 0);
    }
    assert_eq!(read61(&mut port61), 0x00);
    clock.set(ns_for(500));
    assert_eq!(read61(&mut port61) & 0x20, 0); // OUT2 still low: gate low
    port61.write(0, &[0x03]); // gate on, speaker on
    let t0 = clock.now_ns();
    clock.set(t0 + ns_for(100) - 1);
    // The refresh bit depends on the time; mask it off.
    assert_eq!(read61(&mut port61) & !0x10, 0x03);
    clock.set(t0 + ns_for(100));
    assert_eq!(read61(&mut port61) & !0x10, 0x23);
    // Gate low in mode 0 pauses the count: the frozen value stays.
    port61.write(0, &[0x00]);
    {
        let mut pit = pit.lock().unwrap();
        outb(&mut pit, 0x43, 0xB0);
        outb(&mut pit, 0x42, 50);
        outb(&mut pit, 0x42, 0);
        clock.advance(1_000_000);
        outb(&mut pit, 0x43, 0x80);
        assert_eq!(inb(&mut pit, 0x42), 50);
        assert_eq!(inb(&mut pit, 0x42), 0);
    }
    // The refresh toggle flips every 15.085 us.
    clock.set(15_085 * 1_000);
    let a = read61(&mut port61) & 0x10;
    clock.advance(15_085);
    let b = read61(&mut port61) & 0x10;
    assert_eq!(a ^ b, 0x10);
    // Other offsets of the adapter float.
    let mut two = [0u8; 2];
    port61.read(0, &mut two);
    assert_eq!(two[1], 0xFF);
}

#[test]
fn bcd_counting_counts_in_decimal() {
    let (clock, mut pit) = pit();
    outb(&mut pit, 0x43, 0x31); // lo/hi, mode 0, BCD
    outb(&mut pit, 0x40, 0x00);
    outb(&mut pit, 0x40, 0x10); // 1000 decimal
    clock.set(ns_for(1));
    assert_eq!(inb(&mut pit, 0x40), 0x99);
    assert_eq!(inb(&mut pit, 0x40), 0x09);
    assert_eq!(pit.next_deadline_ns(), Some(NS_1000_TICKS));
    // 0 means 10000 in BCD, and nonsense digits do not crash.
    outb(&mut pit, 0x43, 0x35);
    outb(&mut pit, 0x40, 0xFF);
    outb(&mut pit, 0x40, 0xFF);
    clock.advance(1_000_000_000);
    let _ = (inb(&mut pit, 0x40), inb(&mut pit, 0x40));
    let _ = pit.take_irq0_edges();
}

#[test]
fn hostile_accesses_do_not_panic() {
    let (clock, mut pit) = pit();
    let mut buf = [0u8; 8];
    pit.read(0, &mut buf);
    pit.read(u64::MAX, &mut buf);
    pit.write(u64::MAX - 2, &[0xFF; 8]);
    pit.write(3, &[0xC0]); // read-back selecting no counter
    pit.write(3, &[0xFE]);
    assert_eq!(inb(&mut pit, 0x43), 0xFF);
    for cw in 0..=255u8 {
        outb(&mut pit, 0x43, cw);
        outb(&mut pit, 0x40, cw);
        outb(&mut pit, 0x41, 0);
        outb(&mut pit, 0x42, 1);
        clock.advance(u64::from(cw) * 12_345);
        let _ = (
            inb(&mut pit, 0x40),
            inb(&mut pit, 0x41),
            inb(&mut pit, 0x42),
        );
        let _ = pit.take_irq0_edges();
        let _ = pit.next_deadline_ns();
        pit.write_port61(cw);
        let _ = pit.read_port61();
    }
    clock.set(u64::MAX);
    let _ = pit.take_irq0_edges();
    let _ = pit.next_deadline_ns();
    assert!(!pit.out(7));
}
