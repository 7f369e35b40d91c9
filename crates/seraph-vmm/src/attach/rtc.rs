//! The CMOS real-time clock (`seraph-rtc`) at ports 0x70-0x71 on IRQ8,
//! started at the oracle clock's wall time and timed by the machine clock.

use std::sync::{Arc, Mutex};

use seraph_clock::{HostClock, OracleClock};
use seraph_rtc::{RTC_IRQ, RTC_PORT_BASE, RTC_PORT_LEN, Rtc, RtcConfig};
use vm_memory::GuestMemoryMmap;

use crate::config::MachineConfig;
use crate::devices::{AccessHints, Devices, TimedDevice, lock};
use crate::error::VmmError;

/// The RTC's periodic, alarm and update interrupts, as a timed device.
struct RtcTimer {
    rtc: Arc<Mutex<Rtc<HostClock>>>,
}

impl TimedDevice for RtcTimer {
    fn next_deadline_ns(&self) -> Option<u64> {
        lock(&self.rtc).next_deadline_ns()
    }

    fn on_deadline(&mut self, now_ns: u64) {
        lock(&self.rtc).on_deadline(now_ns);
    }

    fn line(&self) -> Option<u32> {
        Some(RTC_IRQ)
    }
}

/// Puts the RTC on the port bus (unless `config.rtc` is off).
pub(crate) fn attach(
    devices: &mut Devices,
    config: &MachineConfig,
    _mem: &GuestMemoryMmap,
) -> Result<(), VmmError> {
    if !config.rtc {
        return Ok(());
    }
    let rtc = Rtc::new(
        devices.clock(),
        RtcConfig {
            unix_time_ns: OracleClock::new().unix_time_ns(),
            ram_bytes: config.memory_size,
        },
        devices.line(RTC_IRQ),
    );
    let rtc = Arc::new(Mutex::new(rtc));
    // Reading register C lowers IRQ8; writing B can raise it.
    let hints = AccessHints {
        poll_on_write: true,
        poll_on_read: true,
    };
    devices.add_pio(
        "rtc",
        u64::from(RTC_PORT_BASE),
        RTC_PORT_LEN,
        rtc.clone(),
        hints,
    )?;
    devices.add_timed(Box::new(RtcTimer { rtc }));
    Ok(())
}
