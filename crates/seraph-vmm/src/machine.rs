//! A Seraph-V machine: one VM, one vCPU, guest memory, devices, and the
//! run that drives the vCPU loop until the run ends.
//!
//! Building is in `builder.rs`, the vCPU state at entry in `entry.rs`, the
//! loop in `vcpu_loop.rs`; this file holds the machine and its run.

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use seraph_boot::BootPlan;
use seraph_clock::{HostClock, OracleClock};
use seraph_framebuffer::Geometry;
use seraph_hypervisor::{Hypervisor, HypervisorError, Vcpu, Vm};
use seraph_memory::layout;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::config::MachineConfig;
use crate::console::Console;
use crate::control::{self, ControlPort, VcpuControl, VcpuEvent};
use crate::deadline::DeadlineKicker;
use crate::devices::Devices;
use crate::error::VmmError;
use crate::interrupts::VcpuThreadGuard;
use crate::io::{InputHandle, OutputQueue, OutputStats, SinkId};
use crate::report::RunOutcome;
use crate::stats::RunStats;
pub use crate::stop::{StopHandle, StopReason};
use crate::tally::Tally;
use crate::vcpu_loop::{self, LoopContext};

/// How long the end of a run waits for queued output to reach a slow reader.
const OUTPUT_DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// How it ended.
    pub outcome: RunOutcome,
    /// Counters.
    pub stats: RunStats,
    /// The most recent serial output (bounded).
    pub serial: Vec<u8>,
    /// The most recent PRINT hypercall output (bounded).
    pub print: Vec<u8>,
    /// Output dropped (a reader too slow) or refused (write errors).
    pub output: OutputReport,
    /// The guest fault behind the ending, explained: the exception that
    /// started a triple fault, or the exception whose handler a halted
    /// guest sits in.
    pub fault: Option<seraph_fault::FaultReport>,
}

/// What became of the guest's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputReport {
    /// Bytes dropped because stdout or the serial log did not keep up.
    pub dropped: u64,
    /// Bytes stdout refused (a closed pipe: not an error for the run).
    pub stdout_failed: u64,
    /// Bytes the serial log file refused, and the last error (a full disk).
    pub serial_log_failed: Option<(u64, String)>,
}

impl RunReport {
    /// The process exit code for this run.
    pub fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }
}

/// A booted, ready-to-run Seraph-V machine on hypervisor `H`.
pub struct Machine<H: Hypervisor> {
    // Field order is drop order: the vCPU before the VM before guest memory.
    pub(crate) vcpu: <H::Vm as Vm>::Vcpu,
    pub(crate) vm: H::Vm,
    pub(crate) mem: GuestMemoryMmap,
    pub(crate) config: MachineConfig,
    pub(crate) plan: Option<BootPlan>,
    pub(crate) loaded: seraph_boot::LoadedKernel,
    pub(crate) geometry: Geometry,
    pub(crate) devices: Devices,
    pub(crate) console: Console,
    pub(crate) output: Option<OutputQueue>,
    pub(crate) stdout_sink: Option<SinkId>,
    pub(crate) serial_log_sink: Option<SinkId>,
    pub(crate) input: Option<InputHandle>,
    pub(crate) display: Option<seraph_display::DisplayHandle>,
    pub(crate) oracle: OracleClock,
    pub(crate) clock: HostClock,
    pub(crate) stop: StopHandle,
    pub(crate) control: Option<ControlPort>,
    pub(crate) scratch: Vec<u8>,
    pub(crate) last_vector: Option<u8>,
}

impl<H: Hypervisor> std::fmt::Debug for Machine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("config", &self.config)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl<H: Hypervisor> Machine<H> {
    /// A handle that stops `run` from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Attaches a controller (a debugger): returns the handle that pauses,
    /// inspects and resumes the vCPU, and the channel of its stop events.
    /// With `start_paused`, the run pauses before the first instruction.
    /// The channel serves one run: when it ends, requests are refused.
    pub fn attach_control(&mut self, start_paused: bool) -> (VcpuControl, Receiver<VcpuEvent>) {
        let (handle, port, events) = control::channel(self.devices.wake.clone(), start_paused);
        self.control = Some(port);
        (handle, events)
    }

    /// Where the Seraph boot structures went (`None` for a PVH or Linux kernel).
    pub fn boot_plan(&self) -> Option<&BootPlan> {
        self.plan.as_ref()
    }

    /// How the kernel was loaded: its protocol, entry state and placements.
    pub fn loaded_kernel(&self) -> &seraph_boot::LoadedKernel {
        &self.loaded
    }

    /// The framebuffer's geometry.
    pub fn framebuffer_geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// A copy of the framebuffer's bytes as the guest left them.
    pub fn framebuffer(&self) -> Result<Vec<u8>, VmmError> {
        let len = usize::try_from(self.geometry.byte_len())
            .map_err(|_| VmmError::Internal("framebuffer larger than host memory".into()))?;
        let mut pixels = vec![0u8; len];
        self.mem
            .read_slice(&mut pixels, GuestAddress(layout::FRAMEBUFFER_BASE))
            .map_err(|e| VmmError::Internal(format!("reading the framebuffer: {e}")))?;
        Ok(pixels)
    }

    /// True if the guest never touched the framebuffer, so it is all black
    /// and need not be copied (the VMM asks the host which framebuffer pages
    /// were ever touched).
    pub fn framebuffer_untouched(&self) -> bool {
        crate::residency::untouched(
            &self.mem,
            layout::FRAMEBUFFER_BASE,
            self.geometry.byte_len(),
        )
    }

    /// Guest memory (for embedders and tests that inspect what the guest did).
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// The machine's devices (to add or inspect devices before a run).
    pub fn devices_mut(&mut self) -> &mut Devices {
        &mut self.devices
    }

    /// The stdin reader feeding COM1, if `MachineConfig::stdin` asked for one.
    pub fn input(&self) -> Option<&InputHandle> {
        self.input.as_ref()
    }

    /// Starts tracking which framebuffer pages the guest writes (the
    /// hypervisor's dirty log on the framebuffer's memory slot) and returns
    /// the handle a display polls from its own thread.
    pub fn framebuffer_dirty_log(
        &mut self,
    ) -> Result<std::sync::Arc<dyn seraph_hypervisor::DirtyLog>, VmmError> {
        use vm_memory::{Address, GuestMemoryBackend, GuestMemoryRegion};
        let slot = self
            .mem
            .iter()
            .position(|r| r.start_addr().raw_value() == layout::FRAMEBUFFER_BASE)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| VmmError::Internal("no framebuffer memory slot".into()))?;
        Ok(self.vm.enable_dirty_log(slot)?)
    }

    /// The web display's address (`http://ADDR:PORT/`), if one is attached.
    pub fn display_url(&self) -> Option<String> {
        self.display
            .as_ref()
            .map(seraph_display::DisplayHandle::url)
    }

    /// The VM (for backend features an embedder needs).
    pub fn vm(&self) -> &H::Vm {
        &self.vm
    }

    /// Runs the guest until the run ends, and reports how. A stop requested
    /// while no run is in progress ends the next run at once; after a run
    /// returns, no stop request is pending.
    pub fn run(&mut self) -> Result<RunReport, VmmError> {
        let started = Instant::now();
        let watchdog = match self.config.timeout {
            None => None,
            Some(limit) => Some(spawn_watchdog(self.stop.clone(), limit)?),
        };
        let mut tally = Tally::new(self.devices.pio.len(), self.devices.mmio.len());
        let mut timer = DeadlineKicker::new(self.vcpu.kicker());
        self.devices.wake.set_kick(self.vcpu.kicker());
        let result = {
            let _on_vcpu = VcpuThreadGuard::enter();
            let display = self.display.as_ref();
            let idle_observer = |idle: bool| {
                if let Some(d) = display {
                    d.set_status(if idle {
                        seraph_display::Status::Idle
                    } else {
                        seraph_display::Status::Running
                    });
                }
            };
            let mut cx = LoopContext {
                devices: &mut self.devices,
                console: &mut self.console,
                mem: &self.mem,
                config: &self.config,
                clock: self.clock,
                oracle: &self.oracle,
                stop: &self.stop,
                scratch: &mut self.scratch,
                last_vector: &mut self.last_vector,
                control: self.control.as_ref(),
                tally: &mut tally,
                timer: &mut timer,
                idle_observer: &idle_observer,
            };
            vcpu_loop::run(&mut self.vcpu, &mut cx)
        };
        drop(timer);
        if let Some((cancel, thread)) = watchdog {
            drop(cancel);
            let _ = thread.join();
        }
        // A stop asked for this run (or racing its end) must not end the next.
        self.stop.clear();
        let mut stats = tally.into_stats(&self.devices.pio, &self.devices.mmio, started.elapsed());
        stats.refused_bars = self.devices.pci.refused();
        stats.dropped_msi = self.devices.router.dropped_msi();
        stats.ignored_lines = self.devices.router.ignored_lines();
        self.devices.flush();
        let output = match &self.output {
            Some(queue) => {
                queue.drain(OUTPUT_DRAIN_LIMIT);
                let stats: OutputStats = queue.stats();
                OutputReport {
                    dropped: stats.dropped,
                    stdout_failed: self
                        .stdout_sink
                        .and_then(|s| stats.failure(s))
                        .map_or(0, |f| f.bytes),
                    serial_log_failed: self
                        .serial_log_sink
                        .and_then(|s| stats.failure(s))
                        .map(|f| (f.bytes, f.last_error.clone())),
                }
            }
            None => OutputReport::default(),
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            // A failed vCPU call mid-run (reading registers, injecting an
            // interrupt, answering a hypercall) ends the run with a report,
            // not a bare error: the output and counters so far are kept.
            Err(VmmError::Hypervisor(HypervisorError::Call { call, source })) => {
                RunOutcome::HypervisorFailure {
                    detail: format!("{call} failed: {source}"),
                }
            }
            Err(e) => return Err(e),
        };
        let fault = self.explain_fault(&outcome);
        if let Some(d) = &self.display {
            d.set_status(seraph_display::Status::Exited(outcome.exit_code()));
        }
        Ok(RunReport {
            outcome,
            fault,
            stats,
            serial: self.devices.serial_tail(),
            print: self.console.captured(),
            output,
        })
    }
}

impl<H: Hypervisor> Machine<H> {
    /// Explains the guest fault behind `outcome`, where there is one: the
    /// first fault of a triple fault (from the event state, or worked out
    /// from RIP, CR2 and the tables), or, for a guest halted for good, the
    /// exception handler it halts in.
    fn explain_fault(&self, outcome: &RunOutcome) -> Option<seraph_fault::FaultReport> {
        use seraph_fault::x86::{X86FaultState, explain_halted_handler, explain_x86};
        match outcome {
            RunOutcome::TripleFault { cpu: Some(cpu) } => Some(explain_x86(
                &self.mem,
                &X86FaultState {
                    regs: &cpu.regs,
                    sregs: &cpu.sregs,
                    events: cpu.events.as_ref(),
                    instruction: None,
                },
            )),
            RunOutcome::Idle { .. } | RunOutcome::DeadHalt { .. } => {
                let regs = self.vcpu.regs().ok()?;
                let sregs = self.vcpu.special_regs().ok()?;
                explain_halted_handler(&self.mem, &regs, &sregs)
                    .filter(|report| report.mnemonic != "INT")
            }
            _ => None,
        }
    }
}

type Watchdog = (mpsc::Sender<()>, std::thread::JoinHandle<()>);

/// A thread that stops the run with [`StopReason::Timeout`] after `limit`.
fn spawn_watchdog(stop: StopHandle, limit: Duration) -> Result<Watchdog, VmmError> {
    let (cancel, cancelled) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("seraph-v-timeout".into())
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                stop.stop(StopReason::Timeout);
            }
        })
        .map_err(VmmError::Thread)?;
    Ok((cancel, thread))
}
