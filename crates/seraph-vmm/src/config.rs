//! What a machine is built from.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::VmmError;

/// Where the guest's COM1 output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialSink {
    /// The host's standard output.
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
    /// Nowhere (still captured for the report).
    None,
}

/// The machine configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// Guest RAM in bytes (a multiple of 2 MiB).
    pub memory_size: u64,
    /// Framebuffer width in pixels.
    pub framebuffer_width: u32,
    /// Framebuffer height in pixels.
    pub framebuffer_height: u32,
    /// COM1 output.
    pub serial: SerialSink,
    /// Echo PRINT hypercall output to stdout.
    pub print_to_stdout: bool,
    /// Stop the run after this long.
    pub timeout: Option<Duration>,
    /// Log every HLT and unhandled exit to stderr.
    pub debug: bool,
    /// Consecutive HLTs at one RIP that count as idle (a heuristic applied
    /// only while nothing interactive is attached, unless `idle_hlts_explicit`).
    pub idle_hlts: u32,
    /// The user gave `idle_hlts`: apply the heuristic even with stdin, a
    /// display or a network attached.
    pub idle_hlts_explicit: bool,
    /// Never end the run at "idle" or at a halt that cannot wake (a display
    /// is attached: the user is still looking at the last screen).
    pub keep_alive: bool,
    /// Put the PCI test device on bus 0 (for tests of the PCI plumbing).
    pub pci_testdev: bool,
    /// Serve the live web display (`--display web[,addr=ADDR:PORT]`); while
    /// it is attached the run never ends at idle.
    pub display: Option<seraph_display::DisplaySpec>,
    /// Boot with this protocol instead of the detected one (`--boot`).
    pub boot: Option<seraph_boot::BootProtocol>,
    /// The kernel command line (PVH and Linux kernels; `--cmdline`).
    pub cmdline: String,
    /// The initial ramdisk / PVH module (`--initrd`).
    pub initrd: Option<Vec<u8>>,
    /// Read the host's stdin into COM1's receive FIFO (`--serial stdio`).
    pub stdin: Option<crate::io::StdinOptions>,
    /// Pre-map the kernel heap at `PML4[384]` (the original layout).
    pub map_heap: bool,
    /// Bytes of serial and PRINT output kept for the report.
    pub capture_limit: usize,
    /// Measure time in the guest versus in the VMM (two clock reads per exit).
    pub timing: bool,
    /// The CMOS real-time clock at ports 0x70-0x71 (IRQ8), as on every PC.
    pub rtc: bool,
    /// The Atlas disk: an NVMe controller on bus 0 serving this image as
    /// namespace 1 (`--disk PATH[,readonly][,lba=512|4096]`).
    pub disk: Option<seraph_nvme::DiskSpec>,
    /// Aether NICs (82540EM-compatible), one per entry, in order on bus 0
    /// (`--net dgram,...` / `--net tap,...`).
    pub net: Vec<seraph_net::NetSpec>,
    /// Every frame of every NIC, in and out, as a pcap file (`--net-capture PATH`).
    pub net_capture: Option<PathBuf>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            memory_size: 512 << 20,
            framebuffer_width: 1024,
            framebuffer_height: 768,
            serial: SerialSink::Stdout,
            print_to_stdout: true,
            timeout: None,
            debug: false,
            idle_hlts: 100,
            idle_hlts_explicit: false,
            keep_alive: false,
            pci_testdev: false,
            stdin: None,
            display: None,
            boot: None,
            cmdline: String::new(),
            initrd: None,
            map_heap: false,
            capture_limit: 64 * 1024,
            timing: false,
            rtc: true,
            disk: None,
            net: Vec::new(),
            net_capture: None,
        }
    }
}

impl MachineConfig {
    /// A configuration for tests and embedders: output captured, not printed.
    pub fn quiet() -> Self {
        Self {
            serial: SerialSink::None,
            print_to_stdout: false,
            ..Self::default()
        }
    }

    /// True if the run must not end at idle or at a dead halt (a display is
    /// attached, or `keep_alive` was asked for).
    pub fn keeps_alive(&self) -> bool {
        self.keep_alive || self.display.is_some()
    }

    /// Checks the values that do not depend on the kernel.
    pub fn validate(&self) -> Result<(), VmmError> {
        if self.idle_hlts == 0 {
            return Err(VmmError::Config(
                "the idle HLT count must be at least 1".into(),
            ));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(VmmError::Config("the timeout must be longer than 0".into()));
        }
        seraph_memory::validate_ram_size(self.memory_size)?;
        Ok(())
    }
}
