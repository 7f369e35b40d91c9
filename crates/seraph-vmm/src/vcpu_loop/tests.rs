//! The vCPU loop against a scripted fake vCPU: each test scripts the exits
//! a guest would cause and checks what the loop did with them.

use std::collections::VecDeque;
use std::sync::Arc;

use seraph_clock::{HostClock, OracleClock};
use seraph_hypervisor::x86::{RFLAGS_IF, RFLAGS_RESERVED};
use seraph_hypervisor::{
    Completion, CpuidEntry, DebugCause, GuestDebug, Hypercall, Regs, SpecialRegs, Vcpu, VcpuEvents,
    VcpuKick, VmExit,
};
use seraph_serial::{Serial, SerialOutput};

use super::*;
use crate::control;
use crate::interrupts::Wake;

/// One scripted exit (owned; `run` lends its data out).
#[derive(Debug, Clone)]
enum Step {
    Out(u16, Vec<u8>),
    In(u16, usize),
    Call(u64, [u64; 4]),
    Halt { rflags: u64 },
    Debug(DebugCause),
    Shutdown,
}

struct NoKick;
impl VcpuKick for NoKick {
    fn kick(&self) {}
}

#[derive(Default)]
struct FakeVcpu {
    script: VecDeque<Step>,
    buf: Vec<u8>,
    regs: Regs,
    completions: Vec<Completion>,
    injected: Vec<u8>,
    reads: Vec<Vec<u8>>,
    debug: Option<GuestDebug>,
    last_was_in: bool,
}

impl FakeVcpu {
    fn new(script: Vec<Step>) -> Self {
        Self {
            script: script.into(),
            regs: Regs {
                rip: 0x1000,
                rflags: RFLAGS_RESERVED,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

impl Vcpu for FakeVcpu {
    fn regs(&self) -> seraph_hypervisor::Result<Regs> {
        Ok(self.regs)
    }
    fn set_regs(&mut self, regs: &Regs) -> seraph_hypervisor::Result<()> {
        self.regs = *regs;
        Ok(())
    }
    fn special_regs(&self) -> seraph_hypervisor::Result<SpecialRegs> {
        Ok(SpecialRegs::default())
    }
    fn set_special_regs(&mut self, _: &SpecialRegs) -> seraph_hypervisor::Result<()> {
        Ok(())
    }
    fn set_cpuid(&mut self, _: &[CpuidEntry]) -> seraph_hypervisor::Result<()> {
        Ok(())
    }
    fn run(&mut self) -> seraph_hypervisor::Result<VmExit<'_>> {
        // Data read by the previous IoIn exit.
        if std::mem::take(&mut self.last_was_in) {
            self.reads.push(std::mem::take(&mut self.buf));
        }
        self.regs.rip += 1;
        Ok(match self.script.pop_front() {
            None => VmExit::Shutdown(seraph_hypervisor::ShutdownReason::TripleFault),
            Some(Step::Out(port, data)) => {
                self.buf = data;
                let exit = VmExit::IoOut {
                    port,
                    size: 1,
                    data: &self.buf,
                };
                return Ok(exit);
            }
            Some(Step::In(port, len)) => {
                self.buf = vec![0; len];
                self.last_was_in = true;
                return Ok(VmExit::IoIn {
                    port,
                    size: 1,
                    data: &mut self.buf,
                });
            }
            Some(Step::Call(nr, args)) => VmExit::Hypercall(Hypercall { nr, args }),
            Some(Step::Halt { rflags }) => {
                self.regs.rflags = rflags;
                VmExit::Halt
            }
            Some(Step::Debug(cause)) => VmExit::Debug {
                pc: self.regs.rip,
                cause,
            },
            Some(Step::Shutdown) => {
                VmExit::Shutdown(seraph_hypervisor::ShutdownReason::TripleFault)
            }
        })
    }
    fn complete(&mut self, completion: Completion) -> seraph_hypervisor::Result<()> {
        self.completions.push(completion);
        Ok(())
    }
    fn inject_interrupt(&mut self, vector: u8) -> seraph_hypervisor::Result<()> {
        self.injected.push(vector);
        Ok(())
    }
    fn can_inject_interrupt(&self) -> bool {
        self.regs.rflags & RFLAGS_IF != 0
    }
    fn request_interrupt_window(&mut self, _: bool) {}
    fn kicker(&self) -> Arc<dyn VcpuKick> {
        Arc::new(NoKick)
    }
    fn cr8(&mut self) -> seraph_hypervisor::Result<u8> {
        Ok(0)
    }
    fn set_cr8(&mut self, _: u8) -> seraph_hypervisor::Result<()> {
        Ok(())
    }
    fn set_guest_debug(&mut self, debug: &GuestDebug) -> seraph_hypervisor::Result<()> {
        self.debug = Some(*debug);
        Ok(())
    }
    fn events(&self) -> seraph_hypervisor::Result<VcpuEvents> {
        Ok(VcpuEvents::default())
    }
    fn translate(&self, addr: u64) -> seraph_hypervisor::Result<Option<u64>> {
        Ok(Some(addr))
    }
}

/// Runs `vcpu` through the loop on a fresh set of devices.
fn run_script(
    vcpu: &mut FakeVcpu,
    config: MachineConfig,
    control: Option<&ControlPort>,
    devices: &mut Devices,
) -> RunOutcome {
    let mem = seraph_pci::dma::test_memory(0x10000);
    let mut console = Console::new(None, 4096);
    let oracle = OracleClock::new();
    let stop = StopHandle::new(Arc::new(NoKick), devices.wake.clone());
    let mut tally = Tally::new(devices.pio.len(), devices.mmio.len());
    let mut timer = DeadlineKicker::new(Arc::new(NoKick));
    let mut scratch = Vec::new();
    let mut last_vector = None;
    let mut cx = LoopContext {
        devices,
        console: &mut console,
        mem: &mem,
        config: &config,
        clock: HostClock::new(),
        oracle: &oracle,
        stop: &stop,
        scratch: &mut scratch,
        last_vector: &mut last_vector,
        control,
        tally: &mut tally,
        timer: &mut timer,
        idle_observer: &|_| {},
    };
    match run(vcpu, &mut cx) {
        Ok(outcome) => outcome,
        Err(e) => panic!("loop failed: {e}"),
    }
}

fn devices() -> Devices {
    let serial = Serial::with_capture_limit(SerialOutput::Capture, 4096).unwrap();
    Devices::new(serial, HostClock::new(), 0x10000, false).unwrap()
}

#[test]
fn port_writes_reach_com1_and_exit_ends_the_run() {
    let mut vcpu = FakeVcpu::new(vec![
        Step::Out(0x3f8, b"h".to_vec()),
        Step::Out(0x3f8, b"i\n".to_vec()),
        Step::In(0x3fd, 1),
        Step::In(0x1234, 2),
        Step::Call(1, [7, 0, 0, 0]),
    ]);
    let mut devices = devices();
    let outcome = run_script(&mut vcpu, MachineConfig::quiet(), None, &mut devices);
    assert_eq!(outcome, RunOutcome::GuestExit { status: 7 });
    assert_eq!(devices.serial_tail(), b"hi\n");
    // LSR reads "transmitter empty"; an unclaimed port reads all-ones.
    assert_ne!(vcpu.reads[0][0] & 0x20, 0);
    assert_eq!(vcpu.reads[1], vec![0xff, 0xff]);
}

#[test]
fn hypercalls_are_answered_and_unknown_numbers_fail() {
    let mut vcpu = FakeVcpu::new(vec![
        Step::Call(2, [0; 4]),
        Step::Call(99, [0; 4]),
        Step::Shutdown,
    ]);
    let mut devices = devices();
    let outcome = run_script(&mut vcpu, MachineConfig::quiet(), None, &mut devices);
    assert!(matches!(outcome, RunOutcome::TripleFault { .. }));
    assert_eq!(vcpu.completions.len(), 2);
    assert!(
        matches!(vcpu.completions[0], Completion::Hypercall(t) if t > 1_600_000_000 * 1_000_000_000)
    );
    assert!(matches!(vcpu.completions[1], Completion::Hypercall(v) if (v as i64) < 0));
}

#[test]
fn device_mmio_writes_are_work_and_lapic_writes_are_not() {
    let mut devices = devices();
    let lapic = devices
        .mmio
        .device_index(seraph_memory::layout::LAPIC_BASE + 0xB0);
    assert!(lapic.is_some());
    assert!(!devices.mmio_write_is_work(lapic));
    assert!(!devices.mmio_write_is_work(None));
    let dev = Arc::new(std::sync::Mutex::new(seraph_pci::testdev::TestDevice::new(
        seraph_irq::IrqLine::disconnected(),
    )));
    let Devices { pio, mmio, pci, .. } = &mut devices;
    pci.add("testdev", dev, pio, mmio).unwrap();
    pci.assign(pio, mmio);
    let bar = devices
        .mmio
        .device_index(seraph_memory::layout::PCI_MMIO_BASE);
    assert!(bar.is_some());
    assert!(devices.mmio_write_is_work(bar));
}

#[test]
fn halts_end_dead_or_idle_by_the_policy() {
    let mut devices = devices();
    let mut vcpu = FakeVcpu::new(vec![Step::Halt {
        rflags: RFLAGS_RESERVED,
    }]);
    let outcome = run_script(&mut vcpu, MachineConfig::quiet(), None, &mut devices);
    assert!(matches!(outcome, RunOutcome::DeadHalt { .. }));
    // IF=1 and nothing (no timer, no input) can wake it: idle at once.
    let mut vcpu = FakeVcpu::new(vec![Step::Halt {
        rflags: RFLAGS_RESERVED | RFLAGS_IF,
    }]);
    let outcome = run_script(&mut vcpu, MachineConfig::quiet(), None, &mut devices);
    assert!(matches!(
        outcome,
        RunOutcome::Idle {
            kind: IdleKind::NothingCanWake,
            ..
        }
    ));
}

#[test]
fn a_line_raised_from_another_thread_wakes_the_halt_and_is_delivered() {
    let mut devices = devices();
    // Program the PIC (ICW1-4, vectors 0x20/0x28) and unmask IRQ4 only.
    let mut script: Vec<Step> = [
        (0x20, 0x11),
        (0xa0, 0x11),
        (0x21, 0x20),
        (0xa1, 0x28),
        (0x21, 0x04),
        (0xa1, 0x02),
        (0x21, 0x01),
        (0xa1, 0x01),
        (0x21, 0xef),
        (0xa1, 0xff),
    ]
    .iter()
    .map(|&(p, v)| Step::Out(p, vec![v]))
    .collect();
    script.push(Step::Halt {
        rflags: RFLAGS_RESERVED | RFLAGS_IF,
    });
    script.push(Step::Call(1, [0; 4]));
    let mut vcpu = FakeVcpu::new(script);
    let line = devices.line(4);
    // An input source that stays open, so the halt sleeps instead of ending.
    devices.add_input(InputSourceForTest::open(4));
    let raiser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        line.pulse();
    });
    let outcome = run_script(&mut vcpu, MachineConfig::quiet(), None, &mut devices);
    raiser.join().unwrap();
    assert_eq!(outcome, RunOutcome::GuestExit { status: 0 });
    assert_eq!(vcpu.injected, vec![0x24], "IRQ4 arrives at vector 0x24");
}

#[test]
fn debug_exits_pause_and_report_to_the_controller() {
    let mut devices = devices();
    let (handle, port, events) = control::channel(Arc::new(Wake::default()), false);
    let mut vcpu = FakeVcpu::new(vec![
        Step::Debug(DebugCause::HwBreakpoint(0)),
        Step::Call(1, [3, 0, 0, 0]),
    ]);
    let controller = std::thread::spawn(move || {
        let first = events.recv().unwrap();
        let rip = handle
            .with_vcpu(|p| {
                let regs = p.vcpu.regs().unwrap();
                p.vcpu.set_guest_debug(&GuestDebug::default()).unwrap();
                regs.rip
            })
            .unwrap();
        handle.resume();
        let last = events.recv().unwrap();
        (first, rip, last)
    });
    let outcome = run_script(&mut vcpu, MachineConfig::quiet(), Some(&port), &mut devices);
    let (first, rip, last) = controller.join().unwrap();
    assert_eq!(
        first,
        VcpuEvent::Debug {
            pc: 0x1001,
            cause: DebugCause::HwBreakpoint(0)
        }
    );
    assert_eq!(rip, 0x1001);
    assert_eq!(last, VcpuEvent::Exited(3));
    assert_eq!(outcome, RunOutcome::GuestExit { status: 3 });
    assert_eq!(vcpu.debug, Some(GuestDebug::default()));
}

/// Input sources for tests.
struct InputSourceForTest;

impl InputSourceForTest {
    fn open(line: u32) -> crate::devices::InputSource {
        crate::devices::InputSource {
            line,
            open: Box::new(|| true),
            enabled: None,
            interactive: false,
        }
    }
}

#[test]
fn a_pause_while_paused_is_answered_and_tasks_after_the_end_hear_gone() {
    let mut devices = devices();
    let (handle, port, events) = control::channel(Arc::new(Wake::default()), true);
    let mut vcpu = FakeVcpu::new(vec![Step::Call(1, [9, 0, 0, 0])]);
    let (done, results) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let held = events.recv().unwrap();
        // gdb's Ctrl-C while the vCPU is already held: it hears "paused".
        handle.pause();
        let again = events.recv().unwrap();
        handle.resume();
        let end = events.recv().unwrap();
        // The run is over: a request is refused, not left waiting.
        let late = handle.with_vcpu(|p| p.vcpu.regs().unwrap().rip);
        let _ = done.send((held, again, end, late));
    });
    let outcome = run_script(&mut vcpu, MachineConfig::quiet(), Some(&port), &mut devices);
    // The loop's end of the channel stays alive: only the run's closing of
    // the port can answer the late request.
    let (held, again, end, late) = results
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a request after the run's end must not wait");
    drop(port);
    assert!(matches!(held, VcpuEvent::Paused { .. }));
    assert!(matches!(again, VcpuEvent::Paused { .. }));
    assert_eq!(end, VcpuEvent::Exited(9));
    assert_eq!(late, None);
    assert_eq!(outcome, RunOutcome::GuestExit { status: 9 });
}
