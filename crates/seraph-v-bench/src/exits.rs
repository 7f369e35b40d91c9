//! Measurements 1 and 2: the cost of one port-I/O or MMIO exit round trip,
//! through Seraph-V's full run loop and bus versus the bare KVM floor.
//!
//! Method: each side runs the guest twice, with a short and a long loop
//! (N1 and N2 exits); per-exit cost = (T(N2) - T(N1)) / (N2 - N1). That
//! cancels what both runs share (first entry, guest page faults, the EXIT),
//! needs no TSC calibration, and times only the run (VM creation and memory
//! layout are outside the timed region on both sides). Runs alternate
//! floor/subject and flip the order every repetition (ABBA) against drift.

use std::time::Instant;

use kvm_ioctls::Kvm;
use seraph_hypervisor::ExitKind;
use seraph_hypervisor::kvm::KvmHypervisor;
use seraph_vmm::{Machine, MachineConfig, RunOutcome};

use crate::error::BenchError;
use crate::floor::{FloorVm, Layout};
use crate::patch::{exits_for, with_blocks};
use crate::summary::per_item;

/// Which exit the guest makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitBench {
    /// `outb` to COM1's THR.
    PortIo,
    /// 32-bit reads of LAPIC 0xFEE0_0030.
    Mmio,
}

impl ExitBench {
    /// The guest ELF for this benchmark.
    pub fn guest(self) -> &'static [u8] {
        match self {
            Self::PortIo => seraph_guests::BENCH_PIO,
            Self::Mmio => seraph_guests::BENCH_MMIO,
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::PortIo => "pio-exit",
            Self::Mmio => "mmio-exit",
        }
    }
}

/// Loop sizes and repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitPlan {
    /// Blocks of 16 exits in the short run.
    pub short_blocks: u64,
    /// Blocks of 16 exits in the long run.
    pub long_blocks: u64,
    /// Repetitions (each gives one per-exit sample per side).
    pub reps: usize,
}

/// Per-exit samples in nanoseconds, one per repetition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExitSamples {
    /// Seraph-V (`seraph_vmm::Machine::run`).
    pub seraph: Vec<f64>,
    /// The bare kvm-ioctls floor.
    pub floor: Vec<f64>,
    /// How many exits of the benchmarked kind Seraph-V counted in the last long run.
    pub seraph_exits_seen: u64,
    /// Accesses Seraph-V's bus left unanswered in the last long run (MMIO: no LAPIC on the bus yet).
    pub seraph_unhandled: u64,
}

/// Runs the floor once; returns the run's wall time in ns.
pub fn floor_once(
    kvm: &Kvm,
    kernel: &[u8],
    bench: ExitBench,
    exits: u64,
) -> Result<f64, BenchError> {
    let mut vm = FloorVm::new(
        kvm,
        kernel,
        Layout::SeraphBoot,
        seraph_memory::layout::DEFAULT_RAM,
    )?;
    let started = Instant::now();
    let run = vm.run_exit_loop()?;
    let ns = started.elapsed().as_nanos() as f64;
    let seen = match bench {
        ExitBench::PortIo => run.port_writes,
        ExitBench::Mmio => run.mmio_reads,
    };
    if seen != exits {
        return Err(BenchError::Guest(format!(
            "floor saw {seen} exits, expected {exits}"
        )));
    }
    Ok(ns)
}

/// Runs Seraph-V's machine once; returns (wall ns of `run()`, exits seen, unhandled).
pub fn seraph_once(
    hv: &KvmHypervisor,
    kernel: &[u8],
    bench: ExitBench,
    exits: u64,
) -> Result<(f64, u64, u64), BenchError> {
    let mut machine = Machine::new(hv, MachineConfig::quiet(), kernel)?;
    let started = Instant::now();
    let report = machine.run()?;
    let ns = started.elapsed().as_nanos() as f64;
    if report.outcome != (RunOutcome::GuestExit { status: 0 }) {
        return Err(BenchError::Guest(format!(
            "seraph-v run ended with {}",
            report.outcome
        )));
    }
    let kind = match bench {
        ExitBench::PortIo => ExitKind::IoOut,
        ExitBench::Mmio => ExitKind::MmioRead,
    };
    let seen = report.stats.exits.get(&kind).copied().unwrap_or(0);
    if seen != exits {
        return Err(BenchError::Guest(format!(
            "seraph-v saw {seen} exits, expected {exits}"
        )));
    }
    let unhandled = report.stats.unhandled.values().sum();
    Ok((ns, seen, unhandled))
}

/// Measures `bench` per [`ExitPlan`].
pub fn measure(
    kvm: &Kvm,
    hv: &KvmHypervisor,
    bench: ExitBench,
    plan: ExitPlan,
) -> Result<ExitSamples, BenchError> {
    let short = with_blocks(bench.guest(), plan.short_blocks)?;
    let long = with_blocks(bench.guest(), plan.long_blocks)?;
    let (n1, n2) = (exits_for(plan.short_blocks), exits_for(plan.long_blocks));
    let mut samples = ExitSamples::default();
    // One untimed warm-up of each side (page cache, KVM module paths).
    floor_once(kvm, &short, bench, n1)?;
    seraph_once(hv, &short, bench, n1)?;
    for rep in 0..plan.reps {
        let floor = |k: &[u8], n| floor_once(kvm, k, bench, n);
        let (f1, f2, s1, s2, seen, unhandled);
        if rep % 2 == 0 {
            f1 = floor(&short, n1)?;
            s1 = seraph_once(hv, &short, bench, n1)?.0;
            f2 = floor(&long, n2)?;
            (s2, seen, unhandled) = seraph_once(hv, &long, bench, n2)?;
        } else {
            (s2, seen, unhandled) = seraph_once(hv, &long, bench, n2)?;
            f2 = floor(&long, n2)?;
            s1 = seraph_once(hv, &short, bench, n1)?.0;
            f1 = floor(&short, n1)?;
        }
        samples.seraph_exits_seen = seen;
        samples.seraph_unhandled = unhandled;
        if let (Some(f), Some(s)) = (per_item(f1, f2, n1, n2), per_item(s1, s2, n1, n2)) {
            samples.floor.push(f);
            samples.seraph.push(s);
        }
    }
    Ok(samples)
}

/// Start-up parts timed in this process (ns each), to show where a cold
/// start goes: Seraph-V's memory + boot plan, the floor's minimal layout,
/// zeroing 16 MiB of fresh anonymous memory (what the plan does for the
/// primordial arena), and copying the 3 MiB framebuffer out of the guest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartupParts {
    /// `create_guest_memory` + `BootPlan::write` for bench-hello.
    pub seraph_layout: Vec<f64>,
    /// The floor's minimal layout for bench-hello.
    pub minimal_layout: Vec<f64>,
    /// Writing 16 MiB of zeroes into freshly mapped memory.
    pub zero_16mib: Vec<f64>,
    /// Reading the untouched 1024x768 framebuffer into a new `Vec`.
    pub framebuffer_copy: Vec<f64>,
}

/// Times each start-up part `reps` times.
pub fn startup_parts(reps: usize) -> Result<StartupParts, BenchError> {
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
    let kernel = seraph_guests::BENCH_HELLO;
    let ram = seraph_memory::layout::DEFAULT_RAM;
    let mut parts = StartupParts::default();
    let mem_err = |e: vm_memory::GuestMemoryError| BenchError::Memory(e.to_string());
    for _ in 0..reps {
        let started = Instant::now();
        let image = seraph_boot::KernelImage::parse(kernel, ram)
            .map_err(|e| BenchError::Boot(e.to_string()))?;
        let plan = seraph_boot::BootPlan::new(&image, &seraph_boot::BootConfig::default())
            .map_err(|e| BenchError::Boot(e.to_string()))?;
        let mem = seraph_memory::create_guest_memory(ram)
            .map_err(|e| BenchError::Memory(e.to_string()))?;
        plan.write(&mem, &image, kernel)
            .map_err(|e| BenchError::Boot(e.to_string()))?;
        parts
            .seraph_layout
            .push(started.elapsed().as_nanos() as f64);

        let started = Instant::now();
        let fb_len = 1024 * 768 * 4;
        let mut pixels = vec![0u8; fb_len];
        mem.read_slice(
            &mut pixels,
            GuestAddress(seraph_memory::layout::FRAMEBUFFER_BASE),
        )
        .map_err(mem_err)?;
        parts
            .framebuffer_copy
            .push(started.elapsed().as_nanos() as f64);
        drop(mem);

        let started = Instant::now();
        crate::floor::minimal_memory(kernel, ram)?;
        parts
            .minimal_layout
            .push(started.elapsed().as_nanos() as f64);

        let fresh: GuestMemoryMmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 32 << 20)])
            .map_err(|e| BenchError::Memory(e.to_string()))?;
        let zeros = vec![0u8; 0x1_0000];
        let started = Instant::now();
        for chunk in 0..256u64 {
            fresh
                .write_slice(&zeros, GuestAddress(0x100_0000 + chunk * 0x1_0000))
                .map_err(mem_err)?;
        }
        parts.zero_16mib.push(started.elapsed().as_nanos() as f64);
    }
    Ok(parts)
}
