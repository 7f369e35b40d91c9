//! The machine's devices, how they sit on the buses, and how their
//! interrupt lines reach the CPU.
//!
//! Devices push their interrupt lines into the [`InterruptRouter`]
//! (`crate::interrupts`); at each poll the run loop moves line changes into
//! the 8259 pair and MSI vectors into the local APIC, then asks both for
//! the highest ready vector. Routing, as on a PC with one CPU: line N is
//! the PIC's IRQ N (PIT 0, keyboard 1, COM1 4, RTC 8, PCI INTx on the line
//! the VMM assigned); the pair's INTR reaches the CPU through the LAPIC's
//! LINT0 in ExtINT mode; the LAPIC wins over the PIC when both have one.
//! Nothing here depends on a device's name.

mod pci;
mod timed;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use seraph_bus::{Bus, BusDevice, DeviceIndex, SharedDevice};
use seraph_clock::{Clock, HostClock};
use seraph_irq::IrqLine;
use seraph_lapic::Lapic;
use seraph_memory::layout::{LAPIC_BASE, LAPIC_SIZE};
use seraph_pci::host::{CONFIG_ADDRESS_PORT, CONFIG_PORTS_LEN, SharedPciDevice};
use seraph_pic::{Chip, PicPair, PicPort};
use seraph_pit::{Pit, Port61};
use seraph_serial::Serial;

pub use pci::{PCI_IO_BASE, PCI_IO_SIZE, PCI_MMIO_BASE, PCI_MMIO_SIZE, PciBus};
pub use timed::TimedDevice;

use crate::error::VmmError;
use crate::interrupts::{self, InterruptRouter, Wake};
use crate::io::InputHandle;

/// Which bus an access went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// Port I/O.
    Pio,
    /// Memory-mapped I/O.
    Mmio,
}

/// PIT channel 0's line.
pub const IRQ_PIT: u32 = 0;
/// COM1's line.
pub const IRQ_COM1: u32 = seraph_serial::COM1_IRQ;
/// The line the VMM gives PCI INTx (as a BIOS would route INTA#).
pub const IRQ_PCI: u32 = 11;

/// What an access to a device may change: a write to an interrupt
/// controller or timer, or a read of a PIC in poll mode, calls for a poll
/// of the interrupt state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessHints {
    /// Writes may change the interrupt state.
    pub poll_on_write: bool,
    /// Reads may change the interrupt state.
    pub poll_on_read: bool,
}

impl AccessHints {
    /// A device whose accesses never change interrupt state by themselves
    /// (its lines mark the router dirty when they change).
    pub const PLAIN: Self = Self {
        poll_on_write: false,
        poll_on_read: false,
    };
    /// A device whose writes may change interrupt state (a controller, a timer).
    pub const CONTROLLER: Self = Self {
        poll_on_write: true,
        poll_on_read: false,
    };
}

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

/// Something outside the guest that can raise an interrupt at any time
/// (stdin into COM1, a NIC backend, a display's keyboard).
pub struct InputSource {
    /// The controller input its interrupts arrive on.
    pub line: u32,
    /// True while the source can still deliver (stdin: until EOF).
    pub open: Box<dyn Fn() -> bool + Send>,
    /// True while the device would raise its interrupt for new input (the
    /// guest enabled it); `None` = always.
    pub enabled: Option<Box<dyn Fn() -> bool + Send>>,
    /// A person (a terminal, a display) or a network peer is on the other
    /// end: while it is open the `--idle-hlts` heuristic does not apply.
    pub interactive: bool,
}

/// All devices of a machine.
pub struct Devices {
    /// The port-I/O bus.
    pub pio: Bus,
    /// The MMIO bus.
    pub mmio: Bus,
    /// PCI bus 0.
    pub pci: PciBus,
    /// Where device lines end up.
    pub router: Arc<InterruptRouter>,
    /// Wakes the halted vCPU.
    pub wake: Arc<Wake>,
    /// The PCI INTx line all PCI functions share (wired-OR).
    pci_intx: Arc<interrupts::SharedLine>,
    /// COM1.
    pub serial: Arc<Mutex<Serial>>,
    /// The PS/2 keyboard controller, once attached.
    pub keyboard: Option<Arc<Mutex<seraph_ps2::I8042>>>,
    clock: HostClock,
    pic: Arc<Mutex<PicPair>>,
    lapic: Arc<Mutex<Lapic<HostClock>>>,
    timed: Vec<Box<dyn TimedDevice>>,
    inputs: Vec<InputSource>,
    /// Lines as last moved into the PIC.
    applied_levels: u64,
    /// The LAPIC's count of vectors set in IRR, and its value at the last poll.
    lapic_irr_events: Arc<AtomicU64>,
    lapic_irr_seen: u64,
    /// Per device id on each bus: what its accesses may change.
    pio_hints: Vec<AccessHints>,
    mmio_hints: Vec<AccessHints>,
    pci_host_id: DeviceIndex,
    lapic_id: DeviceIndex,
    /// Something may have changed the interrupt state since the last poll.
    dirty: bool,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("pio", &self.pio)
            .field("mmio", &self.mmio)
            .field("pci", &self.pci)
            .finish_non_exhaustive()
    }
}

/// Locks a device; a device that panicked while locked is still used as is.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bus_err(e: seraph_bus::BusError) -> VmmError {
    VmmError::Bus(e)
}

/// IA32_APIC_BASE: the local APIC's base address and enable bits.
pub const MSR_IA32_APIC_BASE: u32 = 0x1b;

impl Devices {
    /// The MSRs the devices answer (the backend routes them to the VMM).
    pub const MSRS: &'static [u32] = &[MSR_IA32_APIC_BASE];

    /// Builds the PC devices: COM1 (writing to `serial`), the PIC pair, the
    /// PIT and port 0x61, port 0x80, the LAPIC and the PCI host bridge.
    pub fn new(
        serial: Serial,
        clock: HostClock,
        ram_size: u64,
        debug: bool,
    ) -> Result<Self, VmmError> {
        let wake = Arc::new(Wake::default());
        let router = Arc::new(InterruptRouter::new(wake.clone()));
        let line = |n: u32| IrqLine::new(router.clone(), n);
        serial.connect_irq(line(IRQ_COM1));
        let serial = Arc::new(Mutex::new(serial));
        let pit = Arc::new(Mutex::new(Pit::new(clock)));
        let pic = Arc::new(Mutex::new(PicPair::new()));
        let lapic = Arc::new(Mutex::new(Lapic::new(clock)));
        let lapic_irr_events = lock(&lapic).irr_events();
        let pci = PciBus::new(ram_size, debug);
        let host: SharedDevice = pci.host.clone();

        let mut devices = Self {
            pio: Bus::new(),
            mmio: Bus::new(),
            pci,
            router: router.clone(),
            pci_intx: interrupts::SharedLine::new(router.clone(), IRQ_PCI),
            wake,
            serial: serial.clone(),
            keyboard: None,
            clock,
            pic: pic.clone(),
            lapic: lapic.clone(),
            timed: Vec::new(),
            inputs: Vec::new(),
            applied_levels: 0,
            lapic_irr_events,
            lapic_irr_seen: 0,
            pio_hints: Vec::new(),
            mmio_hints: Vec::new(),
            pci_host_id: DeviceIndex(usize::MAX),
            lapic_id: DeviceIndex(usize::MAX),
            dirty: true,
        };
        let read_sensitive = AccessHints {
            poll_on_write: true,
            poll_on_read: true,
        };
        devices.add_pio(
            "serial",
            seraph_serial::COM1_BASE,
            seraph_serial::COM1_LEN,
            serial,
            AccessHints::PLAIN,
        )?;
        let master = Arc::new(Mutex::new(PicPort::new(pic.clone(), Chip::Master)));
        devices.add_pio("pic-master", 0x20, 2, master, read_sensitive)?;
        let slave = Arc::new(Mutex::new(PicPort::new(pic.clone(), Chip::Slave)));
        devices.add_pio("pic-slave", 0xa0, 2, slave, read_sensitive)?;
        // PCI INTx is level-triggered, as firmware leaves the ELCR.
        lock(&pic).set_elcr(Chip::Slave, 1 << (IRQ_PCI - 8));
        let elcr = Arc::new(Mutex::new(seraph_pic::ElcrPort::new(pic)));
        devices.add_pio(
            "elcr",
            u64::from(seraph_pic::ELCR_PORT),
            2,
            elcr,
            AccessHints::CONTROLLER,
        )?;
        devices.add_pio("pit", 0x40, 4, pit.clone(), AccessHints::CONTROLLER)?;
        let port61 = Arc::new(Mutex::new(Port61::new(pit.clone())));
        devices.add_pio("port61", 0x61, 1, port61, AccessHints::CONTROLLER)?;
        devices.add_pio(
            "post",
            0x80,
            1,
            Arc::new(Mutex::new(PostPort)),
            AccessHints::PLAIN,
        )?;
        devices.pci_host_id = devices.add_pio(
            "pci-host",
            CONFIG_ADDRESS_PORT,
            CONFIG_PORTS_LEN,
            host,
            AccessHints::PLAIN,
        )?;
        devices.lapic_id = devices.add_mmio(
            "lapic",
            LAPIC_BASE,
            LAPIC_SIZE,
            lapic,
            AccessHints::CONTROLLER,
        )?;
        devices.add_timed(Box::new(timed::PitTimer {
            pit,
            line: line(IRQ_PIT),
        }));
        Ok(devices)
    }

    /// An interrupt line into controller input `n` (0-15: the PIC's IRQ n).
    pub fn line(&self, n: u32) -> IrqLine {
        IrqLine::new(self.router.clone(), n)
    }

    /// A new PCI function's INTx output: [`IRQ_PCI`], wired-OR with every
    /// other function's and level-triggered at the PIC (ELCR), as PC
    /// firmware sets up INTA#.
    pub fn pci_intx(&self) -> IrqLine {
        self.pci_intx.connect()
    }

    /// The machine clock devices are timed by.
    pub fn clock(&self) -> HostClock {
        self.clock
    }

    fn record_hints(&mut self, bus: BusKind, id: DeviceIndex, hints: AccessHints) {
        let table = match bus {
            BusKind::Pio => &mut self.pio_hints,
            BusKind::Mmio => &mut self.mmio_hints,
        };
        if table.len() <= id.0 {
            table.resize(id.0 + 1, AccessHints::PLAIN);
        }
        table[id.0] = hints;
    }

    /// Puts `device` on `bus` at `base..base + len`.
    pub fn add(
        &mut self,
        bus: BusKind,
        name: &str,
        (base, len): (u64, u64),
        device: SharedDevice,
        hints: AccessHints,
    ) -> Result<DeviceIndex, VmmError> {
        let target = match bus {
            BusKind::Pio => &mut self.pio,
            BusKind::Mmio => &mut self.mmio,
        };
        let id = target.insert(name, base, len, device).map_err(bus_err)?;
        self.record_hints(bus, id, hints);
        Ok(id)
    }

    /// Puts `device` on the port bus at `base..base + len`.
    pub fn add_pio(
        &mut self,
        name: &str,
        base: u64,
        len: u64,
        device: SharedDevice,
        hints: AccessHints,
    ) -> Result<DeviceIndex, VmmError> {
        self.add(BusKind::Pio, name, (base, len), device, hints)
    }

    /// Puts `device` on the MMIO bus at `base..base + len`.
    pub fn add_mmio(
        &mut self,
        name: &str,
        base: u64,
        len: u64,
        device: SharedDevice,
        hints: AccessHints,
    ) -> Result<DeviceIndex, VmmError> {
        self.add(BusKind::Mmio, name, (base, len), device, hints)
    }

    /// Registers a device with time-driven interrupts.
    pub fn add_timed(&mut self, device: Box<dyn TimedDevice>) {
        self.timed.push(device);
    }

    /// Registers an input source that can wake the guest from outside.
    pub fn add_input(&mut self, source: InputSource) {
        self.inputs.push(source);
    }

    /// Registers stdin (or another reader) feeding COM1.
    pub fn add_serial_input(&mut self, handle: InputHandle, interactive: bool) {
        let serial = self.serial.clone();
        self.add_input(InputSource {
            line: IRQ_COM1,
            open: Box::new(move || handle.is_open()),
            enabled: Some(Box::new(move || lock(&serial).receive_interrupt_enabled())),
            interactive,
        });
    }

    /// Puts a PCI function on bus 0 with its INTx on [`IRQ_PCI`]; its BARs
    /// get addresses when the machine is built. Returns its slot.
    pub fn add_pci(&mut self, name: &str, device: SharedPciDevice) -> Result<u8, VmmError> {
        let slot = self
            .pci
            .add(name, device.clone(), &mut self.pio, &mut self.mmio)
            .ok_or_else(|| VmmError::Config("PCI bus 0 is full (32 slots)".into()))?;
        // A BAR write may arm a delayed interrupt or a deadline: poll after it.
        let bar_hints = AccessHints::CONTROLLER;
        for (kind, id) in self.pci.bar_ids(slot) {
            let bus = if kind == seraph_pci::BarKind::Io {
                BusKind::Pio
            } else {
                BusKind::Mmio
            };
            self.record_hints(bus, id, bar_hints);
        }
        {
            let mut dev = seraph_pci::host::lock_device(&device);
            if dev.config().interrupt_pin() != 0 {
                dev.config_mut().set_interrupt_line(IRQ_PCI as u8);
            }
        }
        self.add_timed(Box::new(timed::PciTimer { device }));
        Ok(slot)
    }

    /// Assigns PCI BARs as firmware would (call once all devices are added).
    pub fn assign_pci(&mut self) -> Result<(), VmmError> {
        if self.pci.assign(&mut self.pio, &mut self.mmio) {
            Ok(())
        } else {
            Err(VmmError::Config(
                "the PCI devices' BARs do not fit the PCI windows".into(),
            ))
        }
    }

    /// Notes a bus access that `device` answered (or nobody, `None`).
    pub fn touched(&mut self, bus: BusKind, device: Option<DeviceIndex>, write: bool) {
        let Some(device) = device else { return };
        let table = match bus {
            BusKind::Pio => &self.pio_hints,
            BusKind::Mmio => &self.mmio_hints,
        };
        if let Some(h) = table.get(device.0) {
            self.dirty |= if write {
                h.poll_on_write
            } else {
                h.poll_on_read
            };
        }
        if write && bus == BusKind::Pio && device == self.pci_host_id && self.pci.has_changes() {
            self.pci.apply_changes(&mut self.pio, &mut self.mmio);
        }
    }

    /// True if an MMIO write to `device` is the guest's own work (a device
    /// register, a doorbell), not interrupt housekeeping (the local APIC's
    /// EOI and timer): such a write ends a run of idle HLTs, as port
    /// output does.
    pub fn mmio_write_is_work(&self, device: Option<DeviceIndex>) -> bool {
        device.is_some_and(|d| d != self.lapic_id)
    }

    /// Notes an event after which the interrupt state must be looked at
    /// (a kick at a timer deadline, an interrupt window, a halt, an MSR).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// True if the interrupt state may have changed since the last poll:
    /// the run loop skips the controllers (and their locks) otherwise.
    /// Two atomic loads: the router's dirty flag and the LAPIC's IRR count.
    pub fn needs_poll(&self) -> bool {
        self.dirty
            || self.router.is_dirty()
            || self.lapic_irr_events.load(Ordering::Relaxed) != self.lapic_irr_seen
    }

    /// Records a finished poll; `still_pending` keeps the next one due.
    pub fn polled(&mut self, still_pending: bool) {
        self.dirty = still_pending;
        self.lapic_irr_seen = self.lapic_irr_events.load(Ordering::Relaxed);
    }

    /// Brings timed devices up to now and moves line changes and MSI
    /// vectors into the controllers.
    fn route_lines(&mut self) {
        let now = self.clock.now_ns();
        for device in &mut self.timed {
            if device.next_deadline_ns().is_some_and(|at| at <= now) {
                device.on_deadline(now);
            }
        }
        if !self.router.is_dirty() {
            return;
        }
        let changes = self.router.take();
        let changed = changes.levels ^ self.applied_levels;
        // High before and now, but it fell and rose in between: a new edge
        // the PIC must see (an edge-triggered input latches only rising edges).
        let re_raised = changes.rose & self.applied_levels & changes.levels;
        self.applied_levels = changes.levels;
        if changed | changes.pulses | re_raised != 0 {
            let mut pic = lock(&self.pic);
            for l in interrupts::lines(re_raised).filter(|&l| l < 16) {
                pic.set_irq(l as u8, false);
                pic.set_irq(l as u8, true);
            }
            for l in interrupts::lines(changed).filter(|&l| l < 16) {
                pic.set_irq(l as u8, changes.levels & (1 << l) != 0);
            }
            for l in interrupts::lines(changes.pulses).filter(|&l| l < 16) {
                pic.raise_edge(l as u8);
            }
        }
        if changes.msi_vectors.iter().any(|&w| w != 0) {
            let mut lapic = lock(&self.lapic);
            for v in interrupts::msi_vectors(&changes.msi_vectors) {
                lapic.accept_interrupt(v);
            }
        }
    }

    /// The highest-priority interrupt ready for the CPU, if any.
    pub fn pending_interrupt(&mut self) -> Option<PendingInterrupt> {
        self.route_lines();
        let mut lapic = lock(&self.lapic);
        if let Some(vector) = lapic.pending_vector() {
            return Some(PendingInterrupt::Lapic(vector));
        }
        (lapic.accepts_pic_interrupts() && lock(&self.pic).has_interrupt())
            .then_some(PendingInterrupt::Pic)
    }

    /// The CPU takes `pending`: its controller moves it to in-service.
    /// Returns the vector to inject (`None` if the PIC's request vanished).
    pub fn acknowledge(&mut self, pending: PendingInterrupt) -> Option<u8> {
        match pending {
            PendingInterrupt::Lapic(vector) => {
                lock(&self.lapic).acknowledge(vector);
                Some(vector)
            }
            PendingInterrupt::Pic => lock(&self.pic).acknowledge(),
        }
    }

    /// True if a new request on controller input `line` could reach the CPU now.
    pub fn line_can_reach_cpu(&self, line: u32) -> bool {
        line < 16
            && lock(&self.lapic).accepts_pic_interrupts()
            && lock(&self.pic).can_deliver(line as u8)
    }

    /// When the next interrupt-raising device event is due, on the machine
    /// clock, counting only events that can reach the CPU; `None` if no
    /// device will ever raise one by itself.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let lapic_deadline = lock(&self.lapic).next_deadline_ns();
        self.timed
            .iter()
            .filter(|d| d.line().is_none_or(|l| self.line_can_reach_cpu(l)))
            .filter_map(|d| d.next_deadline_ns())
            .chain(lapic_deadline)
            .min()
    }

    /// True if an input source (stdin, a NIC, a keyboard) could still wake
    /// the guest: open, its device's interrupt enabled, its line deliverable.
    pub fn input_can_wake(&self) -> bool {
        self.inputs.iter().any(|s| {
            (s.open)() && s.enabled.as_ref().is_none_or(|f| f()) && self.line_can_reach_cpu(s.line)
        })
    }

    /// True if an interactive input source (a terminal, a display, a
    /// network peer) is attached and still open, whatever the guest did with
    /// its interrupt.
    pub fn has_interactive_input(&self) -> bool {
        self.inputs.iter().any(|s| s.interactive && (s.open)())
    }

    /// Answers an MSR read; `None` means the MSR does not exist (#GP).
    pub fn read_msr(&self, index: u32) -> Option<u64> {
        (index == MSR_IA32_APIC_BASE).then(|| lock(&self.lapic).read_apic_base())
    }

    /// Takes an MSR write; `false` means #GP.
    pub fn write_msr(&mut self, index: u32, value: u64) -> bool {
        self.dirty = true;
        index == MSR_IA32_APIC_BASE && lock(&self.lapic).write_apic_base(value).is_ok()
    }

    /// The value of IA32_APIC_BASE for the vCPU's initial state.
    pub fn apic_base(&self) -> u64 {
        lock(&self.lapic).read_apic_base()
    }

    /// The local APIC's task-priority register (CR8 = TPR bits 7:4).
    pub fn lapic_tpr(&self) -> u8 {
        lock(&self.lapic).tpr()
    }

    /// Sets the task-priority register from CR8 (TPR = CR8 << 4).
    pub fn set_lapic_tpr(&mut self, tpr: u8) {
        self.dirty = true;
        lock(&self.lapic).set_tpr(tpr);
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) {
        lock(&self.serial).flush();
    }

    /// The most recent serial output.
    pub fn serial_tail(&self) -> Vec<u8> {
        lock(&self.serial).captured()
    }

    /// The PIC pair (for diagnostics and tests).
    pub fn pic(&self) -> Arc<Mutex<PicPair>> {
        self.pic.clone()
    }
}
