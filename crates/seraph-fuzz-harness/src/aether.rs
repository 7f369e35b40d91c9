//! The `aether_regs` and `aether_rings` targets: the Aether NIC (82540EM)
//! register decoding and its descriptor parsing.
//!
//! `aether_regs`: a card over 256 KiB of guest memory; the input is decoded
//! as operations, one selector byte `op`, then
//! - `op % 6 == 0`: a BAR0 read (u32 offset, width 1/2/4/8);
//! - `op % 6 == 1`: a BAR0 write (u32 offset, u32 value);
//! - `op % 6 == 2`: an I/O BAR access (u8 offset, u32 value, read or write);
//! - `op % 6 == 3`: a received frame (u16 length, filled from the input);
//! - `op % 6 == 4`: a clock step and a deadline call;
//! - `op % 6 == 5`: a PCI command register write (Bus Master, INTx disable).
//!
//! `aether_rings`: the first 16 KiB of the input become guest memory (the
//! descriptor rings and buffers), the next bytes ring registers, then
//! doorbells and frames alternate. Checked for both: nothing panics, every
//! call returns after bounded work, the receive queue stays within its
//! bound, ICR reads back 0 right after a read, no transmitted frame is
//! larger than 16 KiB, and a parsed transmit descriptor never claims more
//! than 20 bits of length.

use std::sync::{Arc, Mutex};

use seraph_aether::{Aether, AetherConfig, FrameSink, SinkError, TxDescriptor, regs};
use seraph_clock::FakeClock;
use seraph_irq::IrqLine;
use seraph_irq::testing::RecordingSink;
use seraph_pci::{GuestDma, PciDevice, command, dma::test_memory};

use crate::bytes::Bytes;

const MAX_OPS: usize = 1024;
const QUEUE: usize = 8;
const RAM: usize = 256 * 1024;

/// Records the largest frame sent; refuses every third one (a backed-up backend).
#[derive(Clone, Default)]
struct Sink {
    state: Arc<Mutex<(usize, u64)>>,
}

impl FrameSink for Sink {
    fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = s.0.max(frame.len());
        s.1 += 1;
        if s.1 % 3 == 0 {
            Err(SinkError::Full)
        } else {
            Ok(())
        }
    }
}

fn card(dma: &GuestDma, clock: &FakeClock) -> (Aether, Sink) {
    let mut card = Aether::new(
        AetherConfig {
            rx_queue_frames: QUEUE,
            ..AetherConfig::default()
        },
        dma.clone(),
        IrqLine::new(Arc::new(RecordingSink::default()), 11),
        Arc::new(clock.clone()),
    );
    let sink = Sink::default();
    card.set_frame_sink(Box::new(sink.clone()));
    (card, sink)
}

fn set_command(card: &mut Aether, value: u16) {
    card.config_mut().set_command(value);
    card.config_written(4, &value.to_le_bytes());
}

fn write32(card: &mut Aether, offset: u32, value: u32) {
    card.bar_write(0, u64::from(offset), &value.to_le_bytes());
}

fn read32(card: &mut Aether, offset: u32) -> u32 {
    let mut b = [0u8; 4];
    card.bar_read(0, u64::from(offset), &mut b);
    u32::from_le_bytes(b)
}

fn frame(input: &mut Bytes<'_>) -> Vec<u8> {
    let len = usize::from(input.u16()) % (seraph_aether::MAX_FRAME + 64);
    let mut f = input.take(len.min(64)).to_vec();
    f.resize(len, 0xA5);
    f
}

fn check(card: &mut Aether, sink: &Sink) {
    assert!(
        card.queued_frames() <= QUEUE,
        "receive queue over its bound"
    );
    read32(card, regs::ICR);
    assert_eq!(read32(card, regs::ICR), 0, "ICR is read-to-clear");
    let largest = sink.state.lock().unwrap_or_else(|p| p.into_inner()).0;
    assert!(
        largest <= seraph_aether::MAX_FRAME,
        "a {largest}-byte frame left the card"
    );
}

/// Register decoding: see the module docs.
pub fn aether_regs(data: &[u8]) {
    let mut input = Bytes::new(data);
    let clock = FakeClock::new();
    let dma = GuestDma::new(test_memory(RAM));
    let (mut card, sink) = card(&dma, &clock);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 6 {
            0 => {
                let offset = u64::from(input.u32());
                let mut buf = [0u8; 8];
                let len = [1, 2, 4, 8][usize::from(input.u8() % 4)];
                card.bar_read(0, offset, &mut buf[..len]);
            }
            1 => {
                let offset = u64::from(input.u32());
                let value = input.u32();
                card.bar_write(0, offset, &value.to_le_bytes());
            }
            2 => {
                let offset = u64::from(input.u8());
                let value = input.u32();
                if value & 1 == 0 {
                    card.bar_write(1, offset, &value.to_le_bytes());
                } else {
                    let mut buf = [0u8; 4];
                    card.bar_read(1, offset, &mut buf);
                }
            }
            3 => {
                let f = frame(&mut input);
                card.receive(&f);
            }
            4 => {
                clock.advance(input.duration_ns());
                card.on_deadline(seraph_clock::Clock::now_ns(&clock));
            }
            _ => {
                let mask = command::MEMORY_SPACE | command::BUS_MASTER | command::INTX_DISABLE;
                set_command(&mut card, input.u16() & mask);
            }
        }
    }
    check(&mut card, &sink);
}

/// Descriptor parsing and the rings: see the module docs.
pub fn aether_rings(data: &[u8]) {
    let mut input = Bytes::new(data);
    let clock = FakeClock::new();
    let dma = GuestDma::new(test_memory(RAM));
    let image = input.take(16 * 1024);
    let _ = dma.write(0, image);
    for raw in image.chunks_exact(16) {
        let mut d = [0u8; 16];
        d.copy_from_slice(raw);
        let parsed = TxDescriptor::parse(&d);
        assert!(parsed.len <= 0xF_FFFF);
        assert!(!parsed.context || parsed.len == 0);
    }
    let (mut card, sink) = card(&dma, &clock);
    set_command(&mut card, command::MEMORY_SPACE | command::BUS_MASTER);
    // Ring registers from the input (rings and buffers mostly inside the image).
    for reg in [
        regs::RDBAL,
        regs::RDLEN,
        regs::RDH,
        regs::TDBAL,
        regs::TDLEN,
        regs::TDH,
        regs::RCTL,
        regs::TCTL,
        regs::RDTR,
        regs::TIDV,
        regs::IMS,
    ] {
        let v = input.u32();
        let v = match reg {
            regs::RDBAL | regs::TDBAL => v % (32 * 1024),
            regs::RDLEN | regs::TDLEN => v % 4096,
            regs::RCTL => v | regs::rctl::EN,
            regs::TCTL => v | regs::tctl::EN,
            _ => v,
        };
        write32(&mut card, reg, v);
    }
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 4 {
            0 => {
                let v = u32::from(input.u16());
                write32(&mut card, regs::TDT, v);
            }
            1 => {
                let v = u32::from(input.u16());
                write32(&mut card, regs::RDT, v);
            }
            2 => {
                let f = frame(&mut input);
                card.receive(&f);
            }
            _ => {
                let at = u64::from(input.u16()) % (16 * 1024);
                let bytes = input.take(16);
                let _ = dma.write(at, bytes);
            }
        }
    }
    check(&mut card, &sink);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_that_loops_over_itself_is_bounded() {
        // Memory of all-ones descriptors (huge lengths, EOP never before 16 KiB).
        let mut input = vec![0xFF; 16 * 1024];
        input.extend_from_slice(&0u32.to_le_bytes()); // RDBAL
        input.extend_from_slice(&128u32.to_le_bytes()); // RDLEN
        input.extend_from_slice(&0u32.to_le_bytes()); // RDH
        input.extend_from_slice(&0x1000u32.to_le_bytes()); // TDBAL
        input.extend_from_slice(&4096u32.to_le_bytes()); // TDLEN
        input.extend_from_slice(&[0; 4 * 6]);
        input.extend_from_slice(&[0, 255, 0]); // TDT = 255
        aether_rings(&input);
        aether_regs(&input);
    }

    #[test]
    fn pseudo_random_inputs_never_panic() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..150 {
            let len = [64, 700, 17_000][round % 3];
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            aether_regs(&data);
            aether_rings(&data);
        }
    }
}
