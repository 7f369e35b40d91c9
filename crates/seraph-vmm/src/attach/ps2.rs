//! The i8042 PS/2 controller and keyboard (`seraph-ps2`) at ports 0x60 and
//! 0x64 on IRQ1, as on every PC. Keys come from the web display.

use std::sync::{Arc, Mutex};

use seraph_ps2::{I8042, I8042Port, Port};
use vm_memory::GuestMemoryMmap;

use crate::config::MachineConfig;
use crate::devices::{AccessHints, Devices};
use crate::error::VmmError;

/// The keyboard's interrupt line.
pub(crate) const IRQ_KEYBOARD: u32 = 1;

/// Puts the controller on the port bus (one entry per port: 0x61 between
/// them is the PIT's) and keeps its handle in `devices.keyboard`.
pub(crate) fn attach(
    devices: &mut Devices,
    _config: &MachineConfig,
    _mem: &GuestMemoryMmap,
) -> Result<(), VmmError> {
    let controller = Arc::new(Mutex::new(I8042::new(devices.line(IRQ_KEYBOARD))));
    for (port, base) in [(Port::Data, 0x60), (Port::Command, 0x64)] {
        let entry = Arc::new(Mutex::new(I8042Port {
            controller: controller.clone(),
            port,
        }));
        let name = if base == 0x60 {
            "i8042-data"
        } else {
            "i8042-command"
        };
        devices.add_pio(name, base, 1, entry, AccessHints::PLAIN)?;
    }
    devices.keyboard = Some(controller);
    Ok(())
}
