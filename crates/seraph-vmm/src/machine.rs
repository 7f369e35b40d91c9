//! A Seraph-V machine: one VM, one vCPU, guest memory, devices, and the run
//! loop that dispatches exits until the run ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use seraph_boot::{BootConfig, BootPlan, FramebufferConfig, KernelImage};
use seraph_clock::{Clock, HostClock, OracleClock};
use seraph_framebuffer::{Geometry, PixelFormat};
use seraph_hypervisor::x86::RFLAGS_IF;
use seraph_hypervisor::{
    Completion, Hypervisor, HypervisorError, InstructionBytes, MemoryRegion, Regs, Segment,
    SpecialRegs, Vcpu, VcpuKick, Vm, VmConfig, VmExit,
};
use seraph_memory::layout;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

use crate::config::MachineConfig;
use crate::console::Console;
use crate::cpuid::guest_cpuid;
use crate::deadline::DeadlineKicker;
use crate::devices::BusKind;
use crate::devices::Devices;
use crate::error::VmmError;
use crate::hypercall::{self, GuestFault, HYPERCALL_PORT, HypercallAction, HypercallContext};
use crate::report::{CpuSnapshot, IdleKind, RunOutcome};
use crate::stats::RunStats;
use crate::tally::Tally;

// CR0, CR4 and EFER bits of the spec's entry state.
const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_LA57: u64 = 1 << 12;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// Why a run was asked to stop from outside the vCPU loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StopReason {
    /// `--timeout` expired.
    Timeout = 1,
    /// Ctrl-C or an embedding program asked to stop.
    Interrupted = 2,
}

/// Stops a running machine from another thread (a signal watcher, a timer).
#[derive(Clone)]
pub struct StopHandle {
    reason: Arc<AtomicU8>,
    kicker: Arc<dyn VcpuKick>,
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("reason", &self.reason.load(Ordering::SeqCst))
            .finish()
    }
}

impl StopHandle {
    /// Asks the run to end with `reason` (the first reason asked wins).
    pub fn stop(&self, reason: StopReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.kicker.kick();
    }

    fn requested(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::SeqCst) {
            1 => Some(StopReason::Timeout),
            2 => Some(StopReason::Interrupted),
            _ => None,
        }
    }
}

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
    vcpu: <H::Vm as Vm>::Vcpu,
    _vm: H::Vm,
    mem: GuestMemoryMmap,
    config: MachineConfig,
    plan: BootPlan,
    geometry: Geometry,
    devices: Devices,
    console: Console,
    oracle: OracleClock,
    clock: HostClock,
    stop: StopHandle,
    scratch: Vec<u8>,
    last_vector: Option<u8>,
}

impl<H: Hypervisor> std::fmt::Debug for Machine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("config", &self.config)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

fn flat_segment(selector: u16, code: bool) -> Segment {
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: true,
        dpl: 0,
        db: !code,
        s: true,
        l: code,
        g: true,
        avl: false,
        unusable: false,
    }
}

impl<H: Hypervisor> Machine<H> {
    /// Builds the machine: checks the kernel, lays out memory, loads the
    /// kernel, writes the boot structures and sets the vCPU's entry state.
    pub fn new(hypervisor: &H, config: MachineConfig, kernel: &[u8]) -> Result<Self, VmmError> {
        config.validate()?;
        let image = KernelImage::parse(kernel, config.memory_size)?;
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
        let plan = BootPlan::new(&image, &boot_config)?;
        let mem = seraph_memory::create_guest_memory(config.memory_size)?;
        let entry = plan.write(&mem, &image, kernel)?;

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

        let clock = HostClock::new();
        let devices = Devices::new(&config, clock)?;
        let mut sregs: SpecialRegs = vcpu.special_regs()?;
        sregs.apic_base = devices.apic_base();
        let gdt = &entry.gdt;
        sregs.cs = flat_segment(gdt.code_selector, true);
        let data = flat_segment(gdt.data_selector, false);
        sregs.ds = data;
        sregs.es = data;
        sregs.fs = data;
        sregs.gs = data;
        sregs.ss = data;
        sregs.tr = Segment {
            base: gdt.tss_base,
            limit: gdt.tss_limit,
            selector: gdt.tss_selector,
            type_: 0xb, // 64-bit busy TSS
            present: true,
            ..Default::default()
        };
        sregs.gdt.base = gdt.gdt_base;
        sregs.gdt.limit = gdt.gdt_limit;
        sregs.idt.base = 0;
        sregs.idt.limit = 0;
        sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        sregs.cr3 = entry.cr3;
        sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
        sregs.efer = EFER_LME | EFER_LMA | EFER_NXE;
        vcpu.set_special_regs(&sregs)?;
        vcpu.set_regs(&Regs {
            rip: entry.rip,
            rsp: entry.rsp,
            rdi: entry.rdi,
            rflags: seraph_hypervisor::x86::RFLAGS_RESERVED,
            ..Default::default()
        })?;

        let stop = StopHandle {
            reason: Arc::new(AtomicU8::new(0)),
            kicker: vcpu.kicker(),
        };
        Ok(Self {
            vcpu,
            _vm: vm,
            mem,
            console: Console::new(config.print_to_stdout, config.capture_limit),
            config,
            plan,
            geometry,
            devices,
            oracle: OracleClock::new(),
            clock,
            stop,
            scratch: Vec::new(),
            last_vector: None,
        })
    }

    /// A handle that stops `run` from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Where the boot structures went.
    pub fn boot_plan(&self) -> &BootPlan {
        &self.plan
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
    /// and need not be copied (see [`crate::residency`]).
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

    /// Runs the guest until the run ends, and reports how. A stop requested
    /// while no run is in progress ends the next run at once; after a run
    /// returns, no stop request is pending.
    pub fn run(&mut self) -> Result<RunReport, VmmError> {
        let started = Instant::now();
        let watchdog = self.config.timeout.map(|limit| {
            let (cancel, cancelled) = mpsc::channel::<()>();
            let stop = self.stop.clone();
            let thread = std::thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                    stop.stop(StopReason::Timeout);
                }
            });
            (cancel, thread)
        });
        let mut tally = Tally::new(self.devices.pio.len(), self.devices.mmio.len());
        let mut timer = DeadlineKicker::new(self.vcpu.kicker());
        let result = self.run_loop(&mut tally, &mut timer);
        drop(timer);
        if let Some((cancel, thread)) = watchdog {
            drop(cancel);
            let _ = thread.join();
        }
        // A stop asked for this run (or racing its end) must not end the next.
        self.stop.reason.store(0, Ordering::SeqCst);
        let stats = tally.into_stats(&self.devices.pio, &self.devices.mmio, started.elapsed());
        self.devices.flush();
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
        Ok(RunReport {
            outcome,
            stats,
            serial: self.devices.serial_tail(),
            print: self.console.captured(),
        })
    }

    fn debug(&self, what: std::fmt::Arguments<'_>) {
        if self.config.debug {
            eprintln!("[seraph-v] {what}");
        }
    }

    fn stopped_outcome(&self, reason: StopReason) -> RunOutcome {
        match reason {
            StopReason::Timeout => RunOutcome::Timeout {
                after: self.config.timeout.unwrap_or_default(),
                rip: self.vcpu.regs().ok().map(|r| r.rip),
            },
            StopReason::Interrupted => RunOutcome::Interrupted,
        }
    }

    fn snapshot(&self) -> Option<Box<CpuSnapshot>> {
        let regs = self.vcpu.regs().ok()?;
        let sregs = self.vcpu.special_regs().ok()?;
        Some(Box::new(CpuSnapshot { regs, sregs }))
    }

    /// Reads up to 15 instruction bytes at RIP through the guest's page tables.
    fn instruction_at(&self, rip: u64) -> Option<InstructionBytes> {
        let sregs = self.vcpu.special_regs().ok()?;
        let mut bytes = [0u8; 15];
        // Try the full length, then shorter, so an instruction at the end of
        // a mapped page still shows what is readable.
        for len in (1..=15).rev() {
            if read_guest(&self.mem, &sregs, rip, &mut bytes[..len]).is_ok() {
                return Some(InstructionBytes::from_slice(&bytes[..len]));
            }
        }
        None
    }

    /// If the interrupt state may have changed: delivers the highest ready
    /// interrupt if the guest can take it now (else asks for an interrupt
    /// window) and re-arms the deadline kick. Skipped, lock-free, otherwise.
    fn service_interrupts(
        &mut self,
        tally: &mut Tally,
        timer: &mut DeadlineKicker,
    ) -> Result<(), VmmError> {
        if !self.devices.needs_poll() {
            return Ok(());
        }
        let pending = self.devices.pending_interrupt();
        match pending {
            None => self.vcpu.request_interrupt_window(false),
            Some(_) if !self.vcpu.can_inject_interrupt() => {
                self.vcpu.request_interrupt_window(true);
            }
            Some(source) => {
                self.vcpu.request_interrupt_window(false);
                if let Some(vector) = self.devices.acknowledge(source) {
                    self.vcpu.inject_interrupt(vector)?;
                    self.last_vector = Some(vector);
                    tally.interrupt(vector);
                }
            }
        }
        let deadline = self.devices.next_deadline_ns();
        timer
            .arm(deadline.map(|ns| self.clock.instant_at(ns)))
            .map_err(|e| VmmError::Internal(format!("starting the timer thread: {e}")))?;
        // While something is pending, look again after the next exit.
        self.devices.polled(pending.is_some());
        Ok(())
    }

    /// Decides what a HLT means: the end of the run if the guest is idle or
    /// can never wake, else how long to wait for the next device event.
    fn on_halt(&mut self, hlt: &mut HltTracker) -> Result<HaltAction, VmmError> {
        let regs = self.vcpu.regs()?;
        let interrupts_on = regs.rflags & RFLAGS_IF != 0;
        self.debug(format_args!(
            "HLT at rip {:#x} (IF={})",
            regs.rip,
            u8::from(interrupts_on)
        ));
        if !interrupts_on {
            // Nothing maskable can wake it, and Seraph-V raises no NMI.
            return Ok(HaltAction::End(RunOutcome::DeadHalt { rip: regs.rip }));
        }
        let count = hlt.record(regs.rip);
        if count >= self.config.idle_hlts {
            return Ok(HaltAction::End(RunOutcome::Idle {
                kind: IdleKind::HltCount(count),
                rip: regs.rip,
                last_vector: self.last_vector,
            }));
        }
        if self.devices.pending_interrupt().is_some() {
            return Ok(HaltAction::Resume);
        }
        Ok(match self.devices.next_deadline_ns() {
            None => HaltAction::End(RunOutcome::Idle {
                kind: IdleKind::NothingCanWake,
                rip: regs.rip,
                last_vector: self.last_vector,
            }),
            Some(deadline) => HaltAction::SleepUntil(deadline),
        })
    }

    /// Sleeps until clock time `deadline`, or until a stop is requested.
    fn sleep_until(&self, deadline: u64) {
        loop {
            if self.stop.requested().is_some() {
                return;
            }
            let now = self.clock.now_ns();
            if now >= deadline {
                return;
            }
            // Wake at least every 10 ms to notice a stop request.
            let nap = Duration::from_nanos((deadline - now).min(10_000_000));
            std::thread::sleep(nap);
        }
    }

    fn run_loop(
        &mut self,
        tally: &mut Tally,
        timer: &mut DeadlineKicker,
    ) -> Result<RunOutcome, VmmError> {
        let mut hlt = HltTracker::default();
        let timing = self.config.timing;
        loop {
            if let Some(reason) = self.stop.requested() {
                return Ok(self.stopped_outcome(reason));
            }
            self.service_interrupts(tally, timer)?;
            let entered = timing.then(Instant::now);
            let exit = self.vcpu.run();
            if let Some(entered) = entered {
                tally.in_guest += entered.elapsed();
            }
            let exit = match exit {
                Ok(exit) => exit,
                Err(HypervisorError::Call { call, source }) => {
                    return Ok(RunOutcome::HypervisorFailure {
                        detail: format!("{call} failed: {source}"),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            tally.exit(exit.kind());
            match exit {
                VmExit::IoIn { port, size, data } => {
                    // One access per `size` bytes: `rep insb` reads the
                    // same port again and again.
                    for chunk in data.chunks_mut(usize::from(size.max(1))) {
                        let device = self.devices.pio.read(u64::from(port), chunk);
                        if device.is_none() {
                            chunk.fill(0xff);
                            if self.config.debug {
                                eprintln!("[seraph-v] unhandled port read {port:#x}");
                            }
                        }
                        tally.access(BusKind::Pio, device);
                        self.devices.touched(BusKind::Pio, device, false);
                    }
                }
                VmExit::IoOut { port, size, data } => {
                    hlt.reset();
                    // One access per `size` bytes: `rep outsb` writes the
                    // same port again and again.
                    for chunk in data.chunks(usize::from(size.max(1))) {
                        let device = self.devices.pio.write(u64::from(port), chunk);
                        if device.is_none() && self.config.debug {
                            eprintln!(
                                "[seraph-v] unhandled port write {port:#x} <- {:#x}",
                                seraph_bus::le_value(chunk)
                            );
                        }
                        tally.access(BusKind::Pio, device);
                        self.devices.touched(BusKind::Pio, device, true);
                    }
                }
                VmExit::MmioRead { addr, data } => {
                    let device = self.devices.mmio.read(addr, data);
                    if device.is_none() {
                        data.fill(0xff);
                        self.debug(format_args!("unhandled MMIO read {addr:#x}"));
                    }
                    tally.access(BusKind::Mmio, device);
                    self.devices.touched(BusKind::Mmio, device, false);
                }
                VmExit::MmioWrite { addr, data } => {
                    let device = self.devices.mmio.write(addr, data);
                    if device.is_none() && self.config.debug {
                        eprintln!(
                            "[seraph-v] unhandled MMIO write {addr:#x} <- {:#x}",
                            seraph_bus::le_value(data)
                        );
                    }
                    tally.access(BusKind::Mmio, device);
                    self.devices.touched(BusKind::Mmio, device, true);
                }
                VmExit::Hypercall(call) => {
                    hlt.reset();
                    tally.hypercall(call.nr);
                    let mut scratch = std::mem::take(&mut self.scratch);
                    let action = hypercall::dispatch(&call, &mut GuestView(self), &mut scratch);
                    self.scratch = scratch;
                    match action {
                        HypercallAction::Return(value) => {
                            self.vcpu.complete(Completion::Hypercall(value))?;
                        }
                        HypercallAction::Exit(status) => {
                            return Ok(RunOutcome::GuestExit { status });
                        }
                    }
                }
                VmExit::Halt => {
                    self.devices.mark_dirty();
                    match self.on_halt(&mut hlt)? {
                        HaltAction::End(outcome) => return Ok(outcome),
                        HaltAction::Resume => {}
                        HaltAction::SleepUntil(deadline) => {
                            // The vCPU is not running: no kick needed while we wait.
                            timer
                                .arm(None)
                                .map_err(|e| VmmError::Internal(format!("timer thread: {e}")))?;
                            let slept = Instant::now();
                            self.sleep_until(deadline);
                            tally.halted += slept.elapsed();
                        }
                    }
                }
                VmExit::InterruptWindow | VmExit::Interrupted => self.devices.mark_dirty(),
                VmExit::Shutdown(reason) => {
                    self.debug(format_args!("shutdown: {reason:?}"));
                    return Ok(RunOutcome::TripleFault {
                        cpu: self.snapshot(),
                    });
                }
                VmExit::EmulationFailure { instruction } => {
                    let rip = self.vcpu.regs()?.rip;
                    let instruction = instruction.or_else(|| self.instruction_at(rip));
                    return Ok(RunOutcome::EmulationFailure { rip, instruction });
                }
                VmExit::FailedEntry { reason } => {
                    return Ok(RunOutcome::HypervisorFailure {
                        detail: format!("the CPU refused to enter the guest (reason {reason:#x})"),
                    });
                }
                VmExit::InternalError { detail, .. } => {
                    return Ok(RunOutcome::HypervisorFailure { detail });
                }
                VmExit::Debug { pc, .. } => {
                    self.debug(format_args!("debug exit at {pc:#x}"));
                }
                VmExit::MsrRead { index } => {
                    let value = self.devices.read_msr(index);
                    if value.is_none() {
                        tally.unhandled_msr();
                        self.debug(format_args!("unhandled MSR read {index:#x}: #GP"));
                    }
                    self.vcpu.complete(Completion::MsrRead(value))?;
                }
                VmExit::MsrWrite { index, value } => {
                    let accepted = self.devices.write_msr(index, value);
                    if !accepted {
                        tally.unhandled_msr();
                        self.debug(format_args!(
                            "refused MSR write {index:#x} <- {value:#x}: #GP"
                        ));
                    }
                    self.vcpu.complete(Completion::MsrWrite(accepted))?;
                }
                VmExit::Cpuid { leaf, subleaf } => {
                    self.debug(format_args!("CPUID exit {leaf:#x}/{subleaf:#x}"));
                    self.vcpu.complete(Completion::Cpuid([0; 4]))?;
                }
                VmExit::Unknown { reason } => {
                    return Ok(RunOutcome::HypervisorFailure {
                        detail: format!("unexpected exit reason {reason}"),
                    });
                }
            }
        }
    }
}

/// Reads guest memory at `addr` as the guest sees it: physical with paging
/// off, through its page tables in 4-level long mode. Other paging modes
/// (32-bit, PAE without long mode, 5-level) are refused: the walker only
/// knows the mode Seraph-V boots guests in.
fn read_guest(
    mem: &GuestMemoryMmap,
    sregs: &SpecialRegs,
    addr: u64,
    buf: &mut [u8],
) -> Result<(), GuestFault> {
    if sregs.cr0 & CR0_PG == 0 {
        return mem
            .read_slice(buf, GuestAddress(addr))
            .map_err(|_| GuestFault);
    }
    if sregs.efer & EFER_LMA == 0 || sregs.cr4 & CR4_LA57 != 0 {
        return Err(GuestFault);
    }
    seraph_memory::walk::read_virt(mem, sregs.cr3, addr, buf).map_err(|_| GuestFault)
}

/// What to do after a HLT exit.
#[derive(Debug)]
enum HaltAction {
    /// The run is over.
    End(RunOutcome),
    /// An interrupt is ready: enter the guest again to deliver it.
    Resume,
    /// Nothing is ready; the next device event is due at this clock time.
    SleepUntil(u64),
}

/// Counts consecutive HLT exits at one RIP.
#[derive(Debug, Default)]
struct HltTracker {
    rip: Option<u64>,
    count: u32,
}

impl HltTracker {
    /// Records a HLT at `rip`; returns how many in a row at that RIP.
    fn record(&mut self, rip: u64) -> u32 {
        if self.rip == Some(rip) {
            self.count = self.count.saturating_add(1);
        } else {
            self.rip = Some(rip);
            self.count = 1;
        }
        self.count
    }

    /// Forgets the run of HLTs (the guest did real work in between).
    fn reset(&mut self) {
        self.rip = None;
        self.count = 0;
    }
}

/// The machine as the hypercall dispatcher sees it.
struct GuestView<'a, H: Hypervisor>(&'a mut Machine<H>);

impl<H: Hypervisor> HypercallContext for GuestView<'_, H> {
    fn read_guest_virtual(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        let sregs = self.0.vcpu.special_regs().map_err(|_| GuestFault)?;
        read_guest(&self.0.mem, &sregs, addr, buf).map_err(|_| GuestFault)
    }

    fn print(&mut self, bytes: &[u8]) {
        self.0.console.write(bytes);
    }

    fn unix_time_ns(&self) -> u64 {
        self.0.oracle.unix_time_ns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlt_tracker_counts_runs_at_one_rip() {
        let mut t = HltTracker::default();
        assert_eq!(t.record(0x10), 1);
        assert_eq!(t.record(0x10), 2);
        assert_eq!(t.record(0x20), 1);
        t.reset();
        assert_eq!(t.record(0x20), 1);
    }

    #[test]
    fn entry_segments_are_flat_long_mode() {
        let cs = flat_segment(0x08, true);
        assert!(cs.l && !cs.db && cs.present && cs.s && cs.g);
        assert_eq!(cs.type_, 0xb);
        let ds = flat_segment(0x10, false);
        assert!(!ds.l && ds.db);
        assert_eq!(ds.type_, 0x3);
    }
}
