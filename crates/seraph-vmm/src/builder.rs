//! Building a machine: check the kernel, plan and write guest memory,
//! create the VM and vCPU, build the devices and the I/O thread.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};

use seraph_boot::{BootConfig, BootRequest, FramebufferConfig};
use seraph_clock::{HostClock, OracleClock};
use seraph_framebuffer::{Geometry, PixelFormat};
use seraph_hypervisor::{Hypervisor, MemoryRegion, Vcpu, Vm, VmConfig};
use seraph_memory::layout;
use seraph_pci::testdev::TestDevice;
use seraph_serial::{Serial, SerialOutput};
use vm_memory::{Address, GuestMemoryBackend, GuestMemoryRegion};

use crate::config::{MachineConfig, SerialSink};
use crate::console::Console;
use crate::cpuid::guest_cpuid;
use crate::devices::Devices;
use crate::entry::entry_registers;
use crate::error::VmmError;
use crate::hypercall::HYPERCALL_PORT;
use crate::io::{InputEvent, OutputQueue, Sink, SinkId, spawn_serial_input};
use crate::machine::Machine;
use crate::stop::{StopHandle, StopReason};

/// The sinks output goes to, and which is which.
struct Sinks {
    queue: Option<OutputQueue>,
    stdout: Option<SinkId>,
    serial_file: Option<SinkId>,
}

/// Opens the serial log without blocking on a FIFO that has no reader.
fn open_serial_file(path: &std::path::Path) -> Result<File, VmmError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path).map_err(|source| VmmError::OpenOutput {
        path: path.to_owned(),
        source,
    })
}

/// The host's stdout as an output sink: written directly (no thread) when
/// it cannot block, which is a regular file, or a pipe, FIFO or terminal
/// reopened non-blocking through /proc/self/fd/1 (a description of its
/// own, so the flag does not touch anyone else's); otherwise, e.g. a
/// socket, written by the I/O thread.
fn stdout_sink() -> Sink {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::FileTypeExt;
        let dup = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from);
        if let Ok(file) = dup {
            if let Ok(meta) = file.metadata() {
                let t = meta.file_type();
                if t.is_file() {
                    return Sink {
                        out: Box::new(file),
                        never_blocks: true,
                    };
                }
                if t.is_fifo() || t.is_char_device() {
                    let mut options = OpenOptions::new();
                    options.write(true);
                    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
                    if let Ok(own) = options.open("/proc/self/fd/1") {
                        return Sink {
                            out: Box::new(own),
                            never_blocks: true,
                        };
                    }
                }
            }
        }
    }
    Sink::blocking(Box::new(std::io::stdout()))
}

fn start_sinks(config: &MachineConfig) -> Result<Sinks, VmmError> {
    let mut outs: Vec<Sink> = Vec::new();
    let mut stdout = None;
    let mut serial_file = None;
    if config.print_to_stdout || config.serial == SerialSink::Stdout {
        stdout = Some(SinkId(outs.len()));
        outs.push(stdout_sink());
    }
    if let SerialSink::File(path) = &config.serial {
        serial_file = Some(SinkId(outs.len()));
        // Opened non-blocking on unix: it never blocks the pusher.
        outs.push(Sink {
            out: Box::new(open_serial_file(path)?),
            never_blocks: cfg!(unix),
        });
    }
    let queue = if outs.is_empty() {
        None
    } else {
        Some(OutputQueue::new(outs))
    };
    Ok(Sinks {
        queue,
        stdout,
        serial_file,
    })
}

impl<H: Hypervisor> Machine<H> {
    /// Builds the machine: checks the kernel, lays out memory, loads the
    /// kernel, writes the boot structures and sets the vCPU's entry state.
    pub fn new(hypervisor: &H, config: MachineConfig, kernel: &[u8]) -> Result<Self, VmmError> {
        config.validate()?;
        let geometry = Geometry::packed(
            config.framebuffer_width,
            config.framebuffer_height,
            PixelFormat::Bgra8,
            layout::FRAMEBUFFER_WINDOW,
        )?;
        let boot_config = BootConfig {
            ram_size: config.memory_size,
            framebuffer: FramebufferConfig {
                width: geometry.width(),
                height: geometry.height(),
                stride: geometry.stride(),
                format: geometry.format().spec_value(),
            },
            map_heap: config.map_heap,
        };
        let mem = seraph_memory::create_guest_memory(config.memory_size)?;
        let loaded = seraph_boot::load_kernel(
            &mem,
            kernel,
            &BootRequest {
                config: boot_config,
                cmdline: &config.cmdline,
                initrd: config.initrd.as_deref(),
                force: config.boot,
            },
        )
        .map_err(|e| {
            use seraph_boot::{DetectError, LoadError};
            // Neither ELF nor bzImage, or a 64-bit ELF that is neither a
            // loadable Seraph kernel nor a PVH one: unless PVH was asked
            // for, say what the Seraph ELF loader says (empty, truncated,
            // bad magic, no PT_LOAD...), the common case's message.
            let elf64 = kernel.get(4) == Some(&2) || !kernel.starts_with(b"\x7fELF");
            let unexplained = matches!(
                e,
                LoadError::Detect(DetectError::Unknown { .. } | DetectError::Pvh(_))
            );
            match seraph_boot::KernelImage::parse(kernel, config.memory_size) {
                Err(elf) if unexplained && elf64 && config.boot.is_none() => VmmError::Kernel(elf),
                _ => VmmError::from_load(e),
            }
        })?;
        if config.debug {
            crate::debug_line!(
                "kernel: {} (booting with the {} protocol)",
                loaded.detection,
                loaded.protocol.name()
            );
        }

        let mut vm = hypervisor.create_vm(&VmConfig {
            hypercall_port: Some(HYPERCALL_PORT),
            vmm_msrs: Devices::MSRS.to_vec(),
        })?;
        for (slot, region) in mem.iter().enumerate() {
            let region = MemoryRegion {
                slot: u32::try_from(slot)
                    .map_err(|_| VmmError::Internal("too many memory regions".into()))?,
                guest_addr: region.start_addr().raw_value(),
                size: region.len(),
                host_addr: region.as_ptr(),
            };
            // SAFETY: the region belongs to `mem`, which the machine owns and
            // drops only after the VM (field order), and vm-memory never
            // remaps a region while it is alive.
            unsafe { vm.map_memory(region)? };
        }
        let mut vcpu = vm.create_vcpu(0)?;
        let cpuid = guest_cpuid(
            &hypervisor.supported_cpuid()?,
            hypervisor.hypercall_instruction_exits(),
        );
        vcpu.set_cpuid(&cpuid)?;

        let sinks = start_sinks(&config)?;
        // With a display, COM1 and PRINT output also reach its console pane
        // (the feed is connected once the server runs, below).
        let feed = crate::display::FeedSlot::default();
        let tee = |first: Option<Box<dyn Write + Send>>| -> Box<dyn Write + Send> {
            if config.display.is_some() {
                Box::new(crate::display::Tee {
                    first,
                    feed: feed.clone(),
                })
            } else {
                first.unwrap_or_else(|| Box::new(std::io::sink()))
            }
        };
        let serial_out: Option<Box<dyn Write + Send>> = match (&config.serial, &sinks.queue) {
            (SerialSink::Stdout, Some(q)) => {
                Some(Box::new(q.writer(sinks.stdout.unwrap_or(SinkId(0)))))
            }
            (SerialSink::File(_), Some(q)) => {
                Some(Box::new(q.writer(sinks.serial_file.unwrap_or(SinkId(0)))))
            }
            _ => None,
        };
        let serial = if serial_out.is_some() || config.display.is_some() {
            Serial::with_writer(tee(serial_out), config.capture_limit)
        } else {
            Serial::with_capture_limit(SerialOutput::Capture, config.capture_limit)
                .map_err(|e| VmmError::Output(e.to_string()))?
        };
        let console_out: Option<Box<dyn Write + Send>> = match (&sinks.queue, sinks.stdout) {
            (Some(q), Some(id)) if config.print_to_stdout => Some(Box::new(q.writer(id))),
            _ => None,
        };
        let console_out = if config.display.is_some() {
            Some(tee(console_out))
        } else {
            console_out
        };
        let clock = HostClock::new();
        let mut devices = Devices::new(serial, clock, config.memory_size, config.debug)?;
        if config.pci_testdev {
            let dev = Arc::new(Mutex::new(TestDevice::new(devices.pci_intx())));
            devices.add_pci("pci-testdev", dev)?;
        }
        crate::attach::attach_all(&mut devices, &config, &mem)?;
        devices.assign_pci()?;

        let (regs, sregs) =
            entry_registers(&loaded.entry, &vcpu.special_regs()?, devices.apic_base());
        vcpu.set_special_regs(&sregs)?;
        vcpu.set_regs(&regs)?;

        let stop = StopHandle::new(vcpu.kicker(), devices.wake.clone());
        let mut machine = Self {
            vcpu,
            vm,
            mem,
            console: Console::new(console_out, config.capture_limit),
            output: sinks.queue,
            stdout_sink: sinks.stdout,
            serial_log_sink: sinks.serial_file,
            input: None,
            display: None,
            config,
            plan: loaded.plan.clone(),
            loaded,
            geometry,
            devices,
            oracle: OracleClock::new(),
            clock,
            stop,
            control: None,
            scratch: Vec::new(),
            last_vector: None,
        };
        if let Some(options) = machine.config.stdin {
            machine.attach_serial_input(Box::new(std::io::stdin()), options)?;
        }
        if let Some(spec) = machine.config.display {
            machine.start_display(spec, &feed)?;
        }
        Ok(machine)
    }

    /// Starts the web display: the framebuffer (through the dirty log), the
    /// keyboard, COM1 typing and the power button; the guest's console
    /// output reaches the page through `feed`.
    fn start_display(
        &mut self,
        spec: seraph_display::DisplaySpec,
        feed: &crate::display::FeedSlot,
    ) -> Result<(), VmmError> {
        use seraph_display::{DisplayConfig, DisplayServer, Geometry, serial_pipe};
        let dirty = self.framebuffer_dirty_log().ok();
        let source = crate::display::FramebufferSource {
            mem: self.mem.clone(),
            geometry: Geometry {
                width: self.geometry.width(),
                height: self.geometry.height(),
                stride: self.geometry.stride(),
            },
            dirty,
        };
        let (pipe_writer, pipe_reader) = serial_pipe(4096);
        let input = crate::display::MachineInput {
            keyboard: self.devices.keyboard.clone(),
            serial: pipe_writer,
            stop: self.stop.clone(),
        };
        let handle = DisplayServer::start(
            DisplayConfig::from_spec(&spec),
            Arc::new(source),
            Arc::new(input),
        )
        .map_err(VmmError::Display)?;
        let _ = feed.set(handle.feed());
        self.attach_serial_input(
            Box::new(pipe_reader),
            crate::io::StdinOptions {
                escapes: false,
                interactive: true,
            },
        )?;
        if let Some(keyboard) = self.devices.keyboard.clone() {
            self.devices.add_input(crate::devices::InputSource {
                line: crate::attach::IRQ_KEYBOARD,
                open: Box::new(|| true),
                enabled: Some(Box::new(move || {
                    crate::devices::lock(&keyboard).command_byte() & 1 != 0
                })),
                interactive: true,
            });
        }
        self.display = Some(handle);
        Ok(())
    }

    /// Feeds `source` into COM1's receive FIFO from an I/O thread (what
    /// `MachineConfig::stdin` does with the host's stdin). The guest is
    /// woken by COM1's interrupt; the source counts as something that can
    /// wake it until its end.
    pub fn attach_serial_input(
        &mut self,
        source: Box<dyn std::io::Read + Send>,
        options: crate::io::StdinOptions,
    ) -> Result<crate::io::InputHandle, VmmError> {
        let stop = self.stop.clone();
        let wake = self.devices.wake.clone();
        let on_event = Arc::new(move |event: InputEvent| match event {
            InputEvent::Quit => stop.stop(StopReason::Interrupted),
            InputEvent::Closed => wake.wake(),
        });
        let handle = spawn_serial_input(source, self.devices.serial.clone(), options, on_event)
            .map_err(VmmError::Thread)?;
        self.devices
            .add_serial_input(handle.clone(), options.interactive);
        if self.input.is_none() {
            self.input = Some(handle.clone());
        }
        Ok(handle)
    }
}
