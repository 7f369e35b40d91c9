//! The machine's devices, how they are wired to the buses, and how their
//! interrupt outputs reach the CPU.
//!
//! Routing, as on a PC with one CPU: PIT channel 0 drives IRQ0 and COM1
//! IRQ4 of the 8259 pair; the pair's INTR reaches the CPU through the local
//! APIC's LINT0 when it is in ExtINT mode (the reset state); the LAPIC's own
//! timer and self-IPIs are delivered at their vectors. The LAPIC wins over
//! the PIC when both have something.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use seraph_bus::{Bus, BusDevice, DeviceIndex};
use seraph_clock::HostClock;
use seraph_lapic::Lapic;
use seraph_memory::layout::{LAPIC_BASE, LAPIC_SIZE};
use seraph_pic::{Chip, PicPair, PicPort};
use seraph_pit::{Pit, Port61};
use seraph_serial::{Serial, SerialIrq, SerialOutput};

use crate::config::{MachineConfig, SerialSink};
use crate::error::VmmError;

/// Devices whose register writes can change what interrupt is pending or
/// when the next one is due. COM1 is not among them: its interrupt request
/// is an atomic flag checked directly.
const INTERRUPT_DEVICES: &[&str] = &["pic-master", "pic-slave", "pit", "port61", "lapic"];

/// Devices whose register reads can too: an 8259 read in poll mode is an
/// interrupt acknowledge. A LAPIC read can also raise an interrupt (a
/// reserved register raises the error vector, an expired timer lands in
/// IRR), but those show in the LAPIC's IRR event counter, checked with one
/// atomic load, so LAPIC reads need no poll of their own.
const READ_SENSITIVE_DEVICES: &[&str] = &["pic-master", "pic-slave"];

/// Which bus an access went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// Port I/O.
    Pio,
    /// Memory-mapped I/O.
    Mmio,
}

/// PIT channel 0's line on the PIC.
const IRQ_PIT: u8 = 0;
/// COM1's line on the PIC.
const IRQ_COM1: u8 = 4;

/// Port 0x80, the POST/delay port: writes are accepted and dropped.
#[derive(Debug, Default)]
struct PostPort;

impl BusDevice for PostPort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn write(&mut self, _offset: u64, _data: &[u8]) {}
}

/// The interrupt ready for the CPU, and which controller it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingInterrupt {
    /// A vector the local APIC has ready.
    Lapic(u8),
    /// The 8259 pair raises INTR; its vector is known at acknowledge.
    Pic,
}

/// All devices of a machine.
pub struct Devices {
    /// The port-I/O bus.
    pub pio: Bus,
    /// The MMIO bus.
    pub mmio: Bus,
    serial: Arc<Mutex<Serial>>,
    pit: Arc<Mutex<Pit<HostClock>>>,
    pic: Arc<Mutex<PicPair>>,
    lapic: Arc<Mutex<Lapic<HostClock>>>,
    serial_irq: SerialIrq,
    /// The LAPIC's count of vectors set in IRR, and its value at the last poll.
    lapic_irr_events: Arc<AtomicU64>,
    lapic_irr_seen: u64,
    /// Per device position on each bus: does a write (`.0`) or a read
    /// (`.1`) there call for a poll?
    pio_sensitive: Vec<(bool, bool)>,
    mmio_sensitive: Vec<(bool, bool)>,
    /// Something may have changed the interrupt state since the last poll.
    dirty: bool,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("pio", &self.pio)
            .field("mmio", &self.mmio)
            .finish_non_exhaustive()
    }
}

/// Locks a device; a device that panicked while locked is still used as is.
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bus_err(e: seraph_bus::BusError) -> VmmError {
    VmmError::Internal(e.to_string())
}

/// IA32_APIC_BASE: the local APIC's base address and enable bits.
pub const MSR_IA32_APIC_BASE: u32 = 0x1b;

impl Devices {
    /// The MSRs the devices answer (the backend routes them to the VMM).
    pub const MSRS: &'static [u32] = &[MSR_IA32_APIC_BASE];

    /// Builds the devices for `config`, timed by `clock`.
    pub fn new(config: &MachineConfig, clock: HostClock) -> Result<Self, VmmError> {
        let output = match &config.serial {
            SerialSink::Stdout => SerialOutput::Stdout,
            SerialSink::File(path) => SerialOutput::File(path.clone()),
            SerialSink::None => SerialOutput::Capture,
        };
        let serial = Serial::with_capture_limit(output, config.capture_limit)
            .map_err(|e| VmmError::Output(e.to_string()))?;
        let serial = Arc::new(Mutex::new(serial));
        let pit = Arc::new(Mutex::new(Pit::new(clock)));
        let pic = Arc::new(Mutex::new(PicPair::new()));
        let lapic = Arc::new(Mutex::new(Lapic::new(clock)));

        let mut pio = Bus::new();
        pio.insert(
            "serial",
            seraph_serial::COM1_BASE,
            seraph_serial::COM1_LEN,
            serial.clone(),
        )
        .map_err(bus_err)?;
        pio.insert(
            "pic-master",
            0x20,
            2,
            Arc::new(Mutex::new(PicPort::new(pic.clone(), Chip::Master))),
        )
        .map_err(bus_err)?;
        pio.insert(
            "pic-slave",
            0xa0,
            2,
            Arc::new(Mutex::new(PicPort::new(pic.clone(), Chip::Slave))),
        )
        .map_err(bus_err)?;
        pio.insert("pit", 0x40, 4, pit.clone()).map_err(bus_err)?;
        pio.insert(
            "port61",
            0x61,
            1,
            Arc::new(Mutex::new(Port61::new(pit.clone()))),
        )
        .map_err(bus_err)?;
        pio.insert("post", 0x80, 1, Arc::new(Mutex::new(PostPort)))
            .map_err(bus_err)?;

        let mut mmio = Bus::new();
        mmio.insert("lapic", LAPIC_BASE, LAPIC_SIZE, lapic.clone())
            .map_err(bus_err)?;
        let serial_irq = lock(&serial).irq_line();
        let lapic_irr_events = lock(&lapic).irr_events();
        Ok(Self {
            pio_sensitive: sensitivity(&pio),
            mmio_sensitive: sensitivity(&mmio),
            pio,
            mmio,
            serial,
            pit,
            pic,
            lapic,
            serial_irq,
            lapic_irr_events,
            lapic_irr_seen: 0,
            dirty: true,
        })
    }

    /// Notes a bus access that `device` answered (or nobody, `None`): a
    /// write to an interrupt controller or timer, or a PIC read, calls for
    /// a poll.
    pub fn touched(&mut self, bus: BusKind, device: Option<DeviceIndex>, write: bool) {
        let map = match bus {
            BusKind::Pio => &self.pio_sensitive,
            BusKind::Mmio => &self.mmio_sensitive,
        };
        if let Some(&(on_write, on_read)) = device.and_then(|d| map.get(d.0)) {
            self.dirty |= if write { on_write } else { on_read };
        }
    }

    /// Notes an event after which the interrupt state must be looked at
    /// (a kick at a timer deadline, an interrupt window, a halt, an MSR).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// True if the interrupt state may have changed since the last poll:
    /// the run loop skips the controllers (and their locks) otherwise.
    pub fn needs_poll(&self) -> bool {
        self.dirty
            || self.serial_irq.is_pending()
            || self.lapic_irr_events.load(Ordering::Relaxed) != self.lapic_irr_seen
    }

    /// Records a finished poll; `still_pending` keeps the next one due.
    pub fn polled(&mut self, still_pending: bool) {
        self.dirty = still_pending;
        self.lapic_irr_seen = self.lapic_irr_events.load(Ordering::Relaxed);
    }

    /// Moves device interrupt outputs (PIT OUT0 edges, COM1) into the PIC.
    fn route_lines(&mut self) {
        let pit_edges = lock(&self.pit).take_irq0_edges();
        let com1 = lock(&self.serial).take_irq();
        if pit_edges > 0 || com1 {
            let mut pic = lock(&self.pic);
            if pit_edges > 0 {
                pic.raise_edge(IRQ_PIT);
            }
            if com1 {
                pic.raise_edge(IRQ_COM1);
            }
        }
    }

    /// The highest-priority interrupt ready for the CPU, if any (after
    /// moving device lines into the PIC).
    pub fn pending_interrupt(&mut self) -> Option<PendingInterrupt> {
        self.route_lines();
        let mut lapic = lock(&self.lapic);
        if let Some(vector) = lapic.pending_vector() {
            return Some(PendingInterrupt::Lapic(vector));
        }
        (lapic.accepts_pic_interrupts() && lock(&self.pic).has_interrupt())
            .then_some(PendingInterrupt::Pic)
    }

    /// The CPU takes `pending` (from [`Devices::pending_interrupt`] in the
    /// same poll): its controller moves it to in-service. Returns the
    /// vector to inject (`None` if the PIC's request vanished meanwhile).
    pub fn acknowledge(&mut self, pending: PendingInterrupt) -> Option<u8> {
        match pending {
            PendingInterrupt::Lapic(vector) => {
                lock(&self.lapic).acknowledge(vector);
                Some(vector)
            }
            PendingInterrupt::Pic => lock(&self.pic).acknowledge(),
        }
    }

    /// When the next interrupt-raising device event is due, on the machine
    /// clock, counting only events that can reach the CPU; `None` if no
    /// device will ever raise one by itself.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let lapic = lock(&self.lapic);
        let lapic_deadline = lapic.next_deadline_ns();
        let pit_deadline = if lapic.accepts_pic_interrupts()
            && lock(&self.pic).imr(Chip::Master) & (1 << IRQ_PIT) == 0
        {
            lock(&self.pit).next_deadline_ns()
        } else {
            None
        };
        match (lapic_deadline, pit_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Answers an MSR read; `None` means the MSR does not exist (#GP).
    pub fn read_msr(&self, index: u32) -> Option<u64> {
        (index == MSR_IA32_APIC_BASE).then(|| lock(&self.lapic).read_apic_base())
    }

    /// Takes an MSR write; `false` means #GP (unknown MSR or a value the
    /// SDM refuses, such as reserved bits or x2APIC mode).
    pub fn write_msr(&mut self, index: u32, value: u64) -> bool {
        self.dirty = true;
        index == MSR_IA32_APIC_BASE && lock(&self.lapic).write_apic_base(value).is_ok()
    }

    /// The value of IA32_APIC_BASE for the vCPU's initial state.
    pub fn apic_base(&self) -> u64 {
        lock(&self.lapic).read_apic_base()
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) {
        lock(&self.serial).flush();
    }

    /// The most recent serial output.
    pub fn serial_tail(&self) -> Vec<u8> {
        lock(&self.serial).captured()
    }
}

/// For each device position on `bus`: do its writes, and its reads, affect
/// interrupt state?
fn sensitivity(bus: &Bus) -> Vec<(bool, bool)> {
    (0..bus.len())
        .map(|i| {
            let name = bus.name(DeviceIndex(i)).unwrap_or("");
            (
                INTERRUPT_DEVICES.contains(&name),
                READ_SENSITIVE_DEVICES.contains(&name),
            )
        })
        .collect()
}
