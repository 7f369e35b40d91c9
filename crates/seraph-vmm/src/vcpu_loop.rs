//! The per-vCPU loop: enter the guest, handle the exit, deliver
//! interrupts, sleep while halted, obey the control channel. One handler
//! per exit kind. Generic over the [`Vcpu`] so it runs (and is tested)
//! against a scripted fake as well as KVM or WHP.

use std::time::Instant;

use seraph_clock::{HostClock, OracleClock};
use seraph_hypervisor::x86::RFLAGS_IF;
use seraph_hypervisor::{Completion, DebugCause, HypervisorError, InstructionBytes, Vcpu, VmExit};
use vm_memory::GuestMemoryMmap;

use crate::config::MachineConfig;
use crate::console::Console;
use crate::control::{ControlPort, ControlRequest, Paused, VcpuEvent};
use crate::deadline::DeadlineKicker;
use crate::devices::{BusKind, Devices};
use crate::error::VmmError;
use crate::guest_view::{GuestView, read_guest};
use crate::hypercall::{self, HypercallAction};
use crate::report::{CpuSnapshot, IdleKind, RunOutcome};
use crate::stop::{StopHandle, StopReason};
use crate::tally::Tally;

/// Everything the loop works on besides the vCPU.
pub(crate) struct LoopContext<'a> {
    pub(crate) devices: &'a mut Devices,
    pub(crate) console: &'a mut Console,
    pub(crate) mem: &'a GuestMemoryMmap,
    pub(crate) config: &'a MachineConfig,
    pub(crate) clock: HostClock,
    pub(crate) oracle: &'a OracleClock,
    pub(crate) stop: &'a StopHandle,
    pub(crate) scratch: &'a mut Vec<u8>,
    pub(crate) last_vector: &'a mut Option<u8>,
    pub(crate) control: Option<&'a ControlPort>,
    pub(crate) tally: &'a mut Tally,
    pub(crate) timer: &'a mut DeadlineKicker,
    /// Told when the guest goes idle for good (a display keeps the run up)
    /// and when it wakes again.
    pub(crate) idle_observer: &'a dyn Fn(bool),
}

/// What to do after a HLT exit.
#[derive(Debug)]
enum HaltAction {
    /// The run is over.
    End(RunOutcome),
    /// An interrupt is ready: enter the guest again to deliver it.
    Resume,
    /// Nothing is ready; sleep until woken or this clock time (`None`: until woken).
    Sleep(Option<u64>),
}

/// Counts consecutive HLT exits at one RIP.
#[derive(Debug, Default)]
pub(crate) struct HltTracker {
    rip: Option<u64>,
    count: u32,
}

impl HltTracker {
    /// Records a HLT at `rip`; returns how many in a row at that RIP.
    pub(crate) fn record(&mut self, rip: u64) -> u32 {
        if self.rip == Some(rip) {
            self.count = self.count.saturating_add(1);
        } else {
            self.rip = Some(rip);
            self.count = 1;
        }
        self.count
    }

    /// Forgets the run of HLTs (the guest did real work in between).
    pub(crate) fn reset(&mut self) {
        self.rip = None;
        self.count = 0;
    }
}

/// The loop's own state for one run.
struct Loop<'c, 'a, V: Vcpu> {
    vcpu: &'c mut V,
    cx: &'c mut LoopContext<'a>,
    hlt: HltTracker,
    cr8_seen: u8,
    /// A controller asked to hold external interrupts (single-stepping).
    hold_interrupts: bool,
}

/// Runs `vcpu` until the run ends.
pub(crate) fn run<V: Vcpu>(vcpu: &mut V, cx: &mut LoopContext<'_>) -> Result<RunOutcome, VmmError> {
    let mut l = Loop {
        vcpu,
        cx,
        hlt: HltTracker::default(),
        cr8_seen: 0,
        hold_interrupts: false,
    };
    let outcome = l.run();
    if let Some(port) = l.cx.control {
        port.report(match &outcome {
            Ok(RunOutcome::GuestExit { status }) => VcpuEvent::Exited(*status),
            Ok(other) => VcpuEvent::Ended(other.clone()),
            Err(e) => VcpuEvent::Ended(RunOutcome::HypervisorFailure {
                detail: e.to_string(),
            }),
        });
        // Requests left over (a debugger's task sent as the run ended) are
        // dropped, so whoever waits for their answer hears "gone" instead
        // of waiting for ever, and none runs at the start of a later run.
        port.close();
    }
    outcome
}

impl<V: Vcpu> Loop<'_, '_, V> {
    fn debug(&self, what: std::fmt::Arguments<'_>) {
        if self.cx.config.debug {
            crate::debug_line!("{what}");
        }
    }

    fn run(&mut self) -> Result<RunOutcome, VmmError> {
        if self.cx.control.is_some_and(|p| p.start_paused) {
            let rip = self.vcpu.regs()?.rip;
            if let Some(end) = self.pause(VcpuEvent::Paused { rip })? {
                return Ok(end);
            }
        }
        loop {
            if let Some(reason) = self.cx.stop.requested() {
                return Ok(self.stopped_outcome(reason));
            }
            if self.cx.control.is_some_and(ControlPort::has_requests) {
                if let Some(end) = self.serve_requests()? {
                    return Ok(end);
                }
            }
            self.service_interrupts()?;
            let entered = self.cx.config.timing.then(Instant::now);
            let exit = self.vcpu.run();
            if let Some(entered) = entered {
                self.cx.tally.in_guest += entered.elapsed();
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
            self.cx.tally.exit(exit.kind());
            // Each arm finishes with the exit's data (which borrows the
            // vCPU) before it touches the vCPU again.
            let end: Result<Option<RunOutcome>, VmmError> = match exit {
                VmExit::IoIn { port, size, data } => {
                    io_in(self.cx, port, size, data);
                    Ok(None)
                }
                VmExit::IoOut { port, size, data } => {
                    self.hlt.reset();
                    io_out(self.cx, port, size, data);
                    Ok(None)
                }
                VmExit::MmioRead { addr, data } => {
                    mmio_read(self.cx, addr, data);
                    Ok(None)
                }
                VmExit::MmioWrite { addr, data } => {
                    if mmio_write(self.cx, addr, data) {
                        self.hlt.reset();
                    }
                    Ok(None)
                }
                VmExit::Hypercall(call) => {
                    self.hlt.reset();
                    self.cx.tally.hypercall(call.nr);
                    let mut view = GuestView {
                        vcpu: &*self.vcpu,
                        mem: self.cx.mem,
                        console: self.cx.console,
                        oracle: self.cx.oracle,
                    };
                    let action = hypercall::dispatch(&call, &mut view, self.cx.scratch);
                    match action {
                        HypercallAction::Return(value) => {
                            self.vcpu.complete(Completion::Hypercall(value))?;
                            Ok(None)
                        }
                        HypercallAction::Exit(status) => Ok(Some(RunOutcome::GuestExit { status })),
                    }
                }
                VmExit::Halt => self.on_halt(),
                VmExit::InterruptWindow | VmExit::Interrupted => {
                    self.cx.devices.mark_dirty();
                    Ok(None)
                }
                VmExit::Shutdown(reason) => {
                    self.debug(format_args!("shutdown: {reason:?}"));
                    Ok(Some(RunOutcome::TripleFault {
                        cpu: self.snapshot(),
                    }))
                }
                VmExit::EmulationFailure { instruction } => {
                    let rip = self.vcpu.regs()?.rip;
                    let instruction = instruction.or_else(|| self.instruction_at(rip));
                    Ok(Some(RunOutcome::EmulationFailure { rip, instruction }))
                }
                VmExit::FailedEntry { reason } => Ok(Some(RunOutcome::HypervisorFailure {
                    detail: format!("the CPU refused to enter the guest (reason {reason:#x})"),
                })),
                VmExit::InternalError { detail, .. } => {
                    Ok(Some(RunOutcome::HypervisorFailure { detail }))
                }
                VmExit::Debug { pc, cause } => self.on_debug(pc, cause),
                VmExit::MsrRead { index } => {
                    let value = self.cx.devices.read_msr(index);
                    if value.is_none() {
                        self.cx.tally.unhandled_msr();
                        self.debug(format_args!("unhandled MSR read {index:#x}: #GP"));
                    }
                    self.vcpu.complete(Completion::MsrRead(value))?;
                    Ok(None)
                }
                VmExit::MsrWrite { index, value } => {
                    let accepted = self.cx.devices.write_msr(index, value);
                    if !accepted {
                        self.cx.tally.unhandled_msr();
                        self.debug(format_args!(
                            "refused MSR write {index:#x} <- {value:#x}: #GP"
                        ));
                    }
                    self.vcpu.complete(Completion::MsrWrite(accepted))?;
                    Ok(None)
                }
                VmExit::Cpuid { leaf, subleaf } => {
                    self.debug(format_args!("CPUID exit {leaf:#x}/{subleaf:#x}"));
                    self.vcpu.complete(Completion::Cpuid([0; 4]))?;
                    Ok(None)
                }
                VmExit::Unknown { reason } => Ok(Some(RunOutcome::HypervisorFailure {
                    detail: format!("unexpected exit reason {reason}"),
                })),
            };
            if let Some(end) = end? {
                return Ok(end);
            }
        }
    }

    fn stopped_outcome(&self, reason: StopReason) -> RunOutcome {
        match reason {
            StopReason::Timeout => RunOutcome::Timeout {
                after: self.cx.config.timeout.unwrap_or_default(),
                rip: self.vcpu.regs().ok().map(|r| r.rip),
            },
            StopReason::Interrupted => RunOutcome::Interrupted,
            StopReason::Terminated(signal) => RunOutcome::Signalled { signal },
            StopReason::DebuggerKill => RunOutcome::Killed,
            StopReason::PowerOff => RunOutcome::PoweredOff,
        }
    }

    fn snapshot(&self) -> Option<Box<CpuSnapshot>> {
        let regs = self.vcpu.regs().ok()?;
        let sregs = self.vcpu.special_regs().ok()?;
        let events = self.vcpu.events().ok();
        Some(Box::new(CpuSnapshot {
            regs,
            sregs,
            events,
        }))
    }

    /// Reads up to 15 instruction bytes at RIP through the guest's page tables.
    fn instruction_at(&self, rip: u64) -> Option<InstructionBytes> {
        let sregs = self.vcpu.special_regs().ok()?;
        let mut bytes = [0u8; 15];
        // Full length first, then shorter, so an instruction at the end of
        // a mapped page still shows what is readable.
        (1..=15).rev().find_map(|len| {
            read_guest(self.cx.mem, &sregs, rip, &mut bytes[..len])
                .ok()
                .map(|()| InstructionBytes::from_slice(&bytes[..len]))
        })
    }

    /// Keeps CR8 and the LAPIC's TPR one value (SDM: CR8 = TPR bits 7:4): a
    /// guest MOV to CR8 shows in the exit state, an MMIO TPR write in the
    /// LAPIC; whichever moved since the last look wins.
    fn sync_tpr(&mut self) -> Result<(), VmmError> {
        let cr8 = self.vcpu.cr8()?;
        if cr8 != self.cr8_seen {
            self.cx.devices.set_lapic_tpr(cr8 << 4);
            self.cr8_seen = cr8;
        } else {
            let from_lapic = self.cx.devices.lapic_tpr() >> 4;
            if from_lapic != cr8 {
                self.vcpu.set_cr8(from_lapic)?;
                self.cr8_seen = from_lapic;
            }
        }
        Ok(())
    }

    /// If the interrupt state may have changed: delivers the highest ready
    /// interrupt if the guest can take it now (else asks for an interrupt
    /// window) and re-arms the deadline kick. Skipped, lock-free, otherwise.
    fn service_interrupts(&mut self) -> Result<(), VmmError> {
        if !self.cx.devices.needs_poll() || self.hold_interrupts {
            return Ok(());
        }
        self.sync_tpr()?;
        let devices = &mut *self.cx.devices;
        let pending = devices.pending_interrupt();
        match pending {
            None => self.vcpu.request_interrupt_window(false),
            Some(_) if !self.vcpu.can_inject_interrupt() => {
                self.vcpu.request_interrupt_window(true);
            }
            Some(source) => {
                self.vcpu.request_interrupt_window(false);
                if let Some(vector) = devices.acknowledge(source) {
                    self.vcpu.inject_interrupt(vector)?;
                    *self.cx.last_vector = Some(vector);
                    self.cx.tally.interrupt(vector);
                }
            }
        }
        let deadline = devices.next_deadline_ns();
        self.cx
            .timer
            .arm(deadline.map(|ns| self.cx.clock.instant_at(ns)))
            .map_err(VmmError::Thread)?;
        // While something is pending, look again after the next exit.
        devices.polled(pending.is_some());
        Ok(())
    }

    /// True if the N-HLTs-at-one-RIP heuristic applies: the user asked for
    /// it, or nothing interactive could still deliver to the guest.
    fn hlt_heuristic_applies(&self) -> bool {
        let cfg = self.cx.config;
        cfg.idle_hlts_explicit || !(cfg.keeps_alive() || self.cx.devices.has_interactive_input())
    }

    /// Decides what a HLT means: the end of the run if the guest is idle or
    /// can never wake, else how long to sleep.
    fn halt_action(&mut self) -> Result<HaltAction, VmmError> {
        let regs = self.vcpu.regs()?;
        let interrupts_on = regs.rflags & RFLAGS_IF != 0;
        self.debug(format_args!(
            "HLT at rip {:#x} (IF={})",
            regs.rip,
            u8::from(interrupts_on)
        ));
        let keep_alive = self.cx.config.keeps_alive();
        if !interrupts_on {
            // Nothing maskable can wake it, and Seraph-V raises no NMI.
            return Ok(if keep_alive {
                HaltAction::Sleep(None)
            } else {
                HaltAction::End(RunOutcome::DeadHalt { rip: regs.rip })
            });
        }
        let count = self.hlt.record(regs.rip);
        if count >= self.cx.config.idle_hlts && self.hlt_heuristic_applies() {
            return Ok(HaltAction::End(RunOutcome::Idle {
                kind: IdleKind::HltCount(count),
                rip: regs.rip,
                last_vector: *self.cx.last_vector,
            }));
        }
        self.sync_tpr()?;
        if self.cx.devices.pending_interrupt().is_some() {
            return Ok(HaltAction::Resume);
        }
        let deadline = self.cx.devices.next_deadline_ns();
        if deadline.is_none() && !self.cx.devices.input_can_wake() && !keep_alive {
            return Ok(HaltAction::End(RunOutcome::Idle {
                kind: IdleKind::NothingCanWake,
                rip: regs.rip,
                last_vector: *self.cx.last_vector,
            }));
        }
        Ok(HaltAction::Sleep(deadline))
    }

    fn on_halt(&mut self) -> Result<Option<RunOutcome>, VmmError> {
        self.cx.devices.mark_dirty();
        // A wake-up left from before (a line the last poll already saw) must
        // not end this sleep at once; anything raised from now on is seen by
        // the poll below or wakes the sleep.
        self.cx.devices.wake.clear();
        match self.halt_action()? {
            HaltAction::End(outcome) => Ok(Some(outcome)),
            HaltAction::Resume => Ok(None),
            HaltAction::Sleep(deadline) => {
                // The vCPU is not running: no kick needed while we wait.
                self.cx.timer.arm(None).map_err(VmmError::Thread)?;
                let slept = Instant::now();
                let until = deadline.map(|ns| self.cx.clock.instant_at(ns));
                // A wake-up (a line raised elsewhere, a stop, a control
                // request) or the deadline ends the sleep.
                if self.cx.stop.requested().is_none()
                    && !self.cx.control.is_some_and(ControlPort::has_requests)
                {
                    // Nothing can wake it but the user (a kept-alive run).
                    let idle_for_good = until.is_none() && !self.cx.devices.input_can_wake();
                    if idle_for_good {
                        (self.cx.idle_observer)(true);
                    }
                    self.cx.devices.wake.wait(until);
                    if idle_for_good {
                        (self.cx.idle_observer)(false);
                    }
                }
                self.cx.tally.halted += slept.elapsed();
                Ok(None)
            }
        }
    }

    fn on_debug(&mut self, pc: u64, cause: DebugCause) -> Result<Option<RunOutcome>, VmmError> {
        self.debug(format_args!("debug exit at {pc:#x}: {cause:?}"));
        if self.cx.control.is_none() {
            return Ok(None);
        }
        self.pause(VcpuEvent::Debug { pc, cause })
    }

    /// Serves control requests that arrived while running.
    fn serve_requests(&mut self) -> Result<Option<RunOutcome>, VmmError> {
        let Some(port) = self.cx.control else {
            return Ok(None);
        };
        port.pending
            .store(false, std::sync::atomic::Ordering::Release);
        while let Ok(request) = port.rx.try_recv() {
            match request {
                ControlRequest::Resume => {}
                ControlRequest::Pause => {
                    let rip = self.vcpu.regs()?.rip;
                    return self.pause(VcpuEvent::Paused { rip });
                }
                ControlRequest::Task(task) => self.run_task(task),
            }
        }
        Ok(None)
    }

    fn run_task(&mut self, task: crate::control::VcpuTask) {
        task(Paused {
            vcpu: &mut *self.vcpu,
            mem: self.cx.mem,
            hold_interrupts: &mut self.hold_interrupts,
        });
        // The task may have changed registers or debug state.
        self.cx.devices.mark_dirty();
    }

    /// Paused: reports `event`, then serves requests until Resume (or the
    /// controller goes away, or a stop is requested).
    fn pause(&mut self, event: VcpuEvent) -> Result<Option<RunOutcome>, VmmError> {
        let Some(port) = self.cx.control else {
            return Ok(None);
        };
        port.report(event);
        loop {
            if let Some(reason) = self.cx.stop.requested() {
                return Ok(Some(self.stopped_outcome(reason)));
            }
            match port.rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(ControlRequest::Resume) => return Ok(None),
                // Already paused: say so again, so a controller that asked
                // (gdb's Ctrl-C between two steps) gets its answer.
                Ok(ControlRequest::Pause) => {
                    let rip = self.vcpu.regs()?.rip;
                    port.report(VcpuEvent::Paused { rip });
                }
                Ok(ControlRequest::Task(task)) => self.run_task(task),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }
}

fn io_in(cx: &mut LoopContext<'_>, port: u16, size: u8, data: &mut [u8]) {
    // One access per `size` bytes: `rep insb` reads the same port again and again.
    for chunk in data.chunks_mut(usize::from(size.max(1))) {
        let device = cx.devices.pio.read(u64::from(port), chunk);
        if device.is_none() {
            chunk.fill(0xff);
            if cx.config.debug {
                crate::debug_line!("unhandled port read {port:#x}");
            }
        }
        cx.tally.access(BusKind::Pio, device);
        cx.devices.touched(BusKind::Pio, device, false);
    }
}

fn io_out(cx: &mut LoopContext<'_>, port: u16, size: u8, data: &[u8]) {
    // One access per `size` bytes: `rep outsb` writes the same port again and again.
    for chunk in data.chunks(usize::from(size.max(1))) {
        let device = cx.devices.pio.write(u64::from(port), chunk);
        if device.is_none() && cx.config.debug {
            crate::debug_line!(
                "unhandled port write {port:#x} <- {:#x}",
                seraph_bus::le_value(chunk)
            );
        }
        cx.tally.access(BusKind::Pio, device);
        cx.devices.touched(BusKind::Pio, device, true);
    }
}

fn mmio_read(cx: &mut LoopContext<'_>, addr: u64, data: &mut [u8]) {
    let device = cx.devices.mmio.read(addr, data);
    if device.is_none() {
        data.fill(0xff);
        if cx.config.debug {
            crate::debug_line!("unhandled MMIO read {addr:#x}");
        }
    }
    cx.tally.access(BusKind::Mmio, device);
    cx.devices.touched(BusKind::Mmio, device, false);
}

/// Performs an MMIO write; true if it was the guest's own work (see
/// [`Devices::mmio_write_is_work`]).
fn mmio_write(cx: &mut LoopContext<'_>, addr: u64, data: &[u8]) -> bool {
    let device = cx.devices.mmio.write(addr, data);
    if device.is_none() && cx.config.debug {
        crate::debug_line!(
            "unhandled MMIO write {addr:#x} <- {:#x}",
            seraph_bus::le_value(data)
        );
    }
    cx.tally.access(BusKind::Mmio, device);
    cx.devices.touched(BusKind::Mmio, device, true);
    cx.devices.mmio_write_is_work(device)
}

#[cfg(test)]
mod tests;
