//! Unit tests: a driver's view of the card through BAR accesses and test memory.

mod bringup;
mod hostile;
mod limits;
mod rxtx;
mod tso;

use std::sync::{Arc, Mutex};

use seraph_clock::FakeClock;
use seraph_irq::IrqLine;
use seraph_irq::testing::RecordingSink;
use seraph_pci::{GuestDma, PciDevice, command, dma::test_memory};

use crate::regs;
use crate::{Aether, AetherConfig, FrameSink, SinkError};

/// RAM size of the test machine.
pub(crate) const RAM: usize = 1 << 20;
/// Receive ring at 0x10000, buffers from 0x20000 (one 4 KiB slot each).
pub(crate) const RX_RING: u64 = 0x1_0000;
pub(crate) const RX_BUFS: u64 = 0x2_0000;
/// Transmit ring at 0x11000, buffers from 0x80000.
pub(crate) const TX_RING: u64 = 0x1_1000;
pub(crate) const TX_BUFS: u64 = 0x8_0000;
/// The INTx line number the tests wire.
pub(crate) const LINE: u32 = 11;

/// A sink that records frames, or refuses them when `full`.
#[derive(Clone, Default)]
pub(crate) struct Capture {
    pub frames: Arc<Mutex<Vec<Vec<u8>>>>,
    pub full: Arc<Mutex<bool>>,
}

impl FrameSink for Capture {
    fn send(&mut self, frame: &[u8]) -> Result<(), SinkError> {
        if *self.full.lock().unwrap() {
            return Err(SinkError::Full);
        }
        self.frames.lock().unwrap().push(frame.to_vec());
        Ok(())
    }
}

pub(crate) struct Rig {
    pub card: Aether,
    pub dma: GuestDma,
    pub irq: Arc<RecordingSink>,
    pub clock: FakeClock,
    pub out: Capture,
    pub tx_tail: u64,
    pub rx_count: u64,
    pub tx_count: u64,
}

impl Rig {
    pub fn new() -> Self {
        Self::with(AetherConfig::default())
    }

    pub fn with(config: AetherConfig) -> Self {
        let dma = GuestDma::new(test_memory(RAM));
        let irq = Arc::new(RecordingSink::default());
        let clock = FakeClock::new();
        let mut card = Aether::new(
            config,
            dma.clone(),
            IrqLine::new(irq.clone(), LINE),
            Arc::new(clock.clone()),
        );
        let out = Capture::default();
        card.set_frame_sink(Box::new(out.clone()));
        Self {
            card,
            dma,
            irq,
            clock,
            out,
            tx_tail: 0,
            rx_count: 0,
            tx_count: 0,
        }
    }

    pub fn w(&mut self, offset: u32, value: u32) {
        self.card
            .bar_write(0, u64::from(offset), &value.to_le_bytes());
    }

    pub fn r(&mut self, offset: u32) -> u32 {
        let mut b = [0u8; 4];
        self.card.bar_read(0, u64::from(offset), &mut b);
        u32::from_le_bytes(b)
    }

    pub fn bus_master(&mut self, on: bool) {
        let mut cmd = command::MEMORY_SPACE | command::IO_SPACE;
        if on {
            cmd |= command::BUS_MASTER;
        }
        self.card.config_mut().set_command(cmd);
        self.card.config_written(4, &cmd.to_le_bytes());
    }

    /// A receive ring of `count` descriptors, all but one given to the card.
    pub fn setup_rx(&mut self, count: u64, rctl: u32) {
        self.rx_count = count;
        for i in 0..count {
            self.dma
                .write_u64(RX_RING + 16 * i, RX_BUFS + 0x4000 * i)
                .unwrap();
            self.dma.write_u64(RX_RING + 16 * i + 8, 0).unwrap();
        }
        self.w(regs::RDBAL, RX_RING as u32);
        self.w(regs::RDBAH, 0);
        self.w(regs::RDLEN, (count * 16) as u32);
        self.w(regs::RDH, 0);
        self.w(regs::RDT, (count - 1) as u32);
        self.w(regs::RCTL, rctl | regs::rctl::EN);
    }

    pub fn setup_tx(&mut self, count: u64) {
        self.tx_count = count;
        self.tx_tail = 0;
        self.w(regs::TDBAL, TX_RING as u32);
        self.w(regs::TDBAH, 0);
        self.w(regs::TDLEN, (count * 16) as u32);
        self.w(regs::TDH, 0);
        self.w(regs::TDT, 0);
        self.w(regs::TCTL, regs::tctl::EN | regs::tctl::PSP);
    }

    /// Queues one descriptor (cmd bits as given) holding `data`; rings TDT if `doorbell`.
    pub fn tx_desc(&mut self, data: &[u8], cmd: u8, doorbell: bool) {
        let i = self.tx_tail;
        let buf = TX_BUFS + 0x4000 * i;
        self.dma.write(buf, data).unwrap();
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&buf.to_le_bytes());
        d[8..10].copy_from_slice(&(data.len() as u16).to_le_bytes());
        d[11] = cmd;
        self.dma.write(TX_RING + 16 * i, &d).unwrap();
        self.tx_tail = (i + 1) % self.tx_count;
        if doorbell {
            self.w(regs::TDT, self.tx_tail as u32);
        }
    }

    /// Sends a frame in one descriptor with EOP|RS.
    pub fn send(&mut self, data: &[u8]) {
        self.tx_desc(data, 0x01 | 0x08, true);
    }

    /// Receive descriptor `i`: (length, status, data).
    pub fn rx_desc(&self, i: u64) -> (usize, u8, Vec<u8>) {
        let mut d = [0u8; 16];
        self.dma.read(RX_RING + 16 * i, &mut d).unwrap();
        let len = usize::from(u16::from_le_bytes([d[8], d[9]]));
        let mut data = vec![0u8; len];
        self.dma.read(RX_BUFS + 0x4000 * i, &mut data).unwrap();
        (len, d[12], data)
    }

    pub fn line(&self) -> bool {
        self.irq.level(LINE)
    }
}

/// A frame to `dst` from 02:00:00:00:00:02, EtherType 0x88B5, `len` bytes in all.
pub(crate) fn frame(dst: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f.extend_from_slice(&crate::ETHERTYPE_AETHER.to_be_bytes());
    while f.len() < len {
        f.push(seed.wrapping_add(f.len() as u8));
    }
    f.truncate(len);
    f
}
