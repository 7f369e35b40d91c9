//! A minimal e1000 driver in Rust over test memory, for backend tests.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seraph_aether::{Aether, AetherConfig, regs};
use seraph_clock::HostClock;
use seraph_irq::IrqLine;
use seraph_pci::{GuestDma, PciDevice, command, dma::test_memory};

/// Descriptors per ring.
pub const N: u64 = 64;
const RX_RING: u64 = 0x1_0000;
const TX_RING: u64 = 0x1_1000;
const RX_BUFS: u64 = 0x2_0000;
const TX_BUFS: u64 = 0x6_0000;
const BUF: u64 = 2048;

/// Polls `f` every millisecond for at most `limit`; true once it held.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Two free UDP ports on 127.0.0.1.
pub fn two_ports() -> (SocketAddr, SocketAddr) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap(), b.local_addr().unwrap())
}

/// A card in its own 1 MiB of guest memory, driven like a guest driver would.
pub struct Driver {
    pub card: Arc<Mutex<Aether>>,
    pub dma: GuestDma,
    rx_next: u64,
    tx_tail: u64,
}

impl Driver {
    pub fn new(mac: [u8; 6]) -> Self {
        Self::with_queue(mac, seraph_aether::DEFAULT_RX_QUEUE)
    }

    pub fn with_queue(mac: [u8; 6], rx_queue_frames: usize) -> Self {
        let dma = GuestDma::new(test_memory(1 << 20));
        let card = Aether::new(
            AetherConfig {
                mac,
                rx_queue_frames,
            },
            dma.clone(),
            IrqLine::disconnected(),
            Arc::new(HostClock::new()),
        );
        Self {
            card: Arc::new(Mutex::new(card)),
            dma,
            rx_next: 0,
            tx_tail: 0,
        }
    }

    pub fn w(&self, offset: u32, value: u32) {
        self.card
            .lock()
            .unwrap()
            .bar_write(0, u64::from(offset), &value.to_le_bytes());
    }

    pub fn r(&self, offset: u32) -> u32 {
        let mut b = [0u8; 4];
        self.card
            .lock()
            .unwrap()
            .bar_read(0, u64::from(offset), &mut b);
        u32::from_le_bytes(b)
    }

    /// Bus Master on, both rings set up, receiver and transmitter enabled.
    /// With `rx_descriptors` false the receive ring gets no free descriptor.
    pub fn bring_up(&mut self, rx_descriptors: bool) {
        {
            let mut card = self.card.lock().unwrap();
            let cmd = command::MEMORY_SPACE | command::BUS_MASTER;
            card.config_mut().set_command(cmd);
            card.config_written(4, &cmd.to_le_bytes());
        }
        for i in 0..N {
            self.dma
                .write_u64(RX_RING + 16 * i, RX_BUFS + BUF * i)
                .unwrap();
            self.dma.write_u64(RX_RING + 16 * i + 8, 0).unwrap();
        }
        self.w(regs::RDBAL, RX_RING as u32);
        self.w(regs::RDLEN, (N * 16) as u32);
        self.w(regs::RDH, 0);
        self.w(regs::RDT, if rx_descriptors { (N - 1) as u32 } else { 0 });
        self.w(regs::TDBAL, TX_RING as u32);
        self.w(regs::TDLEN, (N * 16) as u32);
        self.w(regs::TDH, 0);
        self.w(regs::TDT, 0);
        self.w(
            regs::RCTL,
            regs::rctl::EN | regs::rctl::BAM | regs::rctl::SECRC,
        );
        self.w(regs::TCTL, regs::tctl::EN | regs::tctl::PSP);
    }

    /// Queues one frame; waits (bounded) while the transmit ring is full.
    pub fn send(&mut self, frame: &[u8]) {
        let next = (self.tx_tail + 1) % N;
        assert!(
            wait_for(Duration::from_secs(5), || u64::from(self.r(regs::TDH))
                != next),
            "transmit ring stays full"
        );
        let buf = TX_BUFS + BUF * self.tx_tail;
        self.dma.write(buf, frame).unwrap();
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&buf.to_le_bytes());
        d[8..10].copy_from_slice(&(frame.len() as u16).to_le_bytes());
        d[11] = 0x01 | 0x02 | 0x08;
        self.dma.write(TX_RING + 16 * self.tx_tail, &d).unwrap();
        self.tx_tail = next;
        self.w(regs::TDT, next as u32);
    }

    /// The next received frame, if one is there; gives its descriptor back.
    pub fn poll(&mut self) -> Option<Vec<u8>> {
        let desc = RX_RING + 16 * self.rx_next;
        let mut d = [0u8; 16];
        self.dma.read(desc, &mut d).unwrap();
        if d[12] & 1 == 0 {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([d[8], d[9]]));
        let mut data = vec![0u8; len];
        self.dma
            .read(RX_BUFS + BUF * self.rx_next, &mut data)
            .unwrap();
        self.dma.write_u64(desc + 8, 0).unwrap();
        self.w(regs::RDT, self.rx_next as u32);
        self.rx_next = (self.rx_next + 1) % N;
        Some(data)
    }

    /// Waits (bounded) for the next frame.
    pub fn recv(&mut self, limit: Duration) -> Option<Vec<u8>> {
        let mut got = None;
        wait_for(limit, || {
            got = self.poll();
            got.is_some()
        });
        got
    }
}

/// An Aether frame (EtherType 0x88B5) of `len` bytes carrying sequence `seq`.
pub fn aether_frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x88B5u16.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((seq as usize).wrapping_mul(31).wrapping_add(f.len()) as u8);
    }
    f
}
