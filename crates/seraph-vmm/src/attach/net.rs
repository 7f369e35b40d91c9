//! The Aether NIC (`--net`, `--net-capture`): one `seraph-aether` 82540EM
//! per `--net`, in order on bus 0, INTx on the PCI line, DMA through a
//! bounds-checked `GuestDma`, its packet backend (`seraph-net`) on its own
//! reader thread. All cards share one pcap capture file.

use std::sync::{Arc, Mutex};

use seraph_aether::Aether;
use seraph_net::Capture;
use seraph_pci::{GuestDma, PciDevice};
use vm_memory::GuestMemoryMmap;

use crate::config::MachineConfig;
use crate::devices::{Devices, IRQ_PCI, InputSource, lock};
use crate::error::VmmError;

/// Puts a card on bus 0 for each `config.net` entry and starts its backend;
/// nothing without `--net`. The backends live as long as the machine (their
/// handles are owned by the input sources registered here).
pub(crate) fn attach(
    devices: &mut Devices,
    config: &MachineConfig,
    mem: &GuestMemoryMmap,
) -> Result<(), VmmError> {
    if config.net.is_empty() {
        return Ok(());
    }
    let capture = match &config.net_capture {
        Some(path) => Some(Capture::create(path)?),
        None => None,
    };
    for spec in &config.net {
        let card = Arc::new(Mutex::new(Aether::new(
            seraph_net::card_config(spec),
            GuestDma::new(mem.clone()),
            devices.pci_intx(),
            Arc::new(devices.clock()),
        )));
        devices.add_pci("aether", card.clone())?;
        // A frame may arm a delayed interrupt (RDTR/RADV): wake the vCPU so
        // the deadline is seen; without one, a raised line wakes it anyway.
        let wake = devices.wake.clone();
        let watched = card.clone();
        let notify: seraph_net::Notify = Arc::new(move || {
            if lock(&watched).next_deadline_ns().is_some() {
                wake.wake();
            }
        });
        let handle = seraph_net::attach_with_notify(spec, capture.clone(), card.clone(), notify)?;
        let irq_card = card.clone();
        devices.add_input(InputSource {
            line: IRQ_PCI,
            // Owning the handle here keeps the backend running while the
            // machine exists; dropping the machine stops its thread.
            open: Box::new(move || handle.is_open()),
            enabled: Some(Box::new(move || {
                lock(&irq_card).receive_interrupts_enabled()
            })),
            interactive: true,
        });
    }
    Ok(())
}
