//! Optional devices, each wired in by its own file (see "Adding a device"
//! in docs/architecture.md): one `attach` function per device, called here.

use vm_memory::GuestMemoryMmap;

use crate::config::MachineConfig;
use crate::devices::Devices;
use crate::error::VmmError;

mod net;
mod nvme;
mod ps2;

pub(crate) use ps2::IRQ_KEYBOARD;
mod rtc;

/// Attaches every optional device `config` asks for, before PCI BARs are assigned.
pub(crate) fn attach_all(
    devices: &mut Devices,
    config: &MachineConfig,
    mem: &GuestMemoryMmap,
) -> Result<(), VmmError> {
    nvme::attach(devices, config, mem)?;
    net::attach(devices, config, mem)?;
    rtc::attach(devices, config, mem)?;
    ps2::attach(devices, config, mem)?;
    Ok(())
}
