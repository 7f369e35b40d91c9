//! The Atlas disk (`--disk`): a `seraph-nvme` controller on bus 0 serving
//! the image as namespace 1, INTx on the PCI line, MSI-X into the router,
//! DMA through a bounds-checked `GuestDma`.

use std::sync::{Arc, Mutex};

use seraph_nvme::{DiskImage, NvmeController};
use seraph_pci::GuestDma;
use vm_memory::GuestMemoryMmap;

use crate::config::MachineConfig;
use crate::devices::Devices;
use crate::error::VmmError;

/// Opens and locks the image `config.disk` names and puts the controller on
/// bus 0; nothing without `--disk`. A missing, badly sized or locked image
/// is a configuration error (exit code 78) with the backend's message.
pub(crate) fn attach(
    devices: &mut Devices,
    config: &MachineConfig,
    mem: &GuestMemoryMmap,
) -> Result<(), VmmError> {
    let Some(spec) = &config.disk else {
        return Ok(());
    };
    let disk = DiskImage::open(spec)?;
    let nvme = NvmeController::new(
        disk,
        GuestDma::new(mem.clone()),
        devices.pci_intx(),
        devices.router.clone(),
    );
    devices.add_pci("nvme", Arc::new(Mutex::new(nvme)))?;
    Ok(())
}
