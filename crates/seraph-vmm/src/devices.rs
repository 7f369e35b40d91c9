//! The machine's devices and how they are wired to the buses.

use std::sync::{Arc, Mutex};

use seraph_bus::{Bus, BusDevice};
use seraph_clock::HostClock;
use seraph_serial::{Serial, SerialOutput};

use crate::config::{MachineConfig, SerialSink};
use crate::error::VmmError;

/// Port 0x80, the POST/delay port: writes are accepted and dropped.
#[derive(Debug, Default)]
struct PostPort;

impl BusDevice for PostPort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn write(&mut self, _offset: u64, _data: &[u8]) {}
}

/// All devices of a machine.
pub struct Devices {
    /// The port-I/O bus.
    pub pio: Bus,
    /// The MMIO bus.
    pub mmio: Bus,
    serial: Arc<Mutex<Serial>>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("pio", &self.pio)
            .field("mmio", &self.mmio)
            .finish_non_exhaustive()
    }
}

fn bus_err(e: seraph_bus::BusError) -> VmmError {
    VmmError::Internal(e.to_string())
}

impl Devices {
    /// Builds the devices for `config`.
    pub fn new(config: &MachineConfig, _clock: HostClock) -> Result<Self, VmmError> {
        let output = match &config.serial {
            SerialSink::Stdout => SerialOutput::Stdout,
            SerialSink::File(path) => SerialOutput::File(path.clone()),
            SerialSink::None => SerialOutput::Capture,
        };
        let serial = Serial::with_capture_limit(output, config.capture_limit)
            .map_err(|e| VmmError::Output(e.to_string()))?;
        let serial = Arc::new(Mutex::new(serial));
        let mut pio = Bus::new();
        pio.insert(
            "serial",
            seraph_serial::COM1_BASE,
            seraph_serial::COM1_LEN,
            serial.clone(),
        )
        .map_err(bus_err)?;
        pio.insert("post", 0x80, 1, Arc::new(Mutex::new(PostPort)))
            .map_err(bus_err)?;
        Ok(Self {
            pio,
            mmio: Bus::new(),
            serial,
        })
    }

    /// The highest-priority interrupt ready for the CPU, if any.
    pub fn pending_interrupt(&mut self) -> Option<u8> {
        None
    }

    /// Tells the interrupt controllers the CPU took `vector`.
    pub fn acknowledge(&mut self, _vector: u8) {}

    /// When the next device event (timer) is due, on the machine clock.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) {
        self.serial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .flush();
    }

    /// The most recent serial output.
    pub fn serial_tail(&self) -> Vec<u8> {
        self.serial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .captured()
    }
}
