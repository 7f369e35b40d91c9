//! `seraph-v-bench`: runs the Seraph-V measurements, prints the table with
//! the ratios against each goal and writes target/bench/seraph-v-bench.json.
//! `--help` lists the options; docs/performance.md explains each row.

mod bench;
mod machine;
mod rows_cold;
mod rows_disk;
mod rows_display;
mod rows_exits;
mod rows_net;
mod rows_rss;
mod rows_shot;
mod rows_wake;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use kvm_ioctls::Kvm;
use seraph_hypervisor::kvm::KvmHypervisor;
use seraph_v_bench::exits::ExitBench;
use seraph_v_bench::programs::Programs;
use seraph_v_bench::{BenchError, Report};

use crate::bench::{Bench, Paths};

/// Bytes in a MiB, for the memory rows.
pub const MIB: f64 = 1024.0 * 1024.0;

/// One measurement, as `--only` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Measure {
    /// 1: port-I/O exit round trip.
    Pio,
    /// 2: LAPIC MMIO exit round trip.
    Mmio,
    /// 3: cold start, spawn to first guest exit and to process exit.
    Cold,
    /// 4: QEMU microvm on the same work.
    Peers,
    /// 5: VMM resident memory.
    Rss,
    /// 6: BMP and PNG screenshots.
    Shot,
    /// 7: stdin byte to the halted guest's echo; CPU while halted.
    Wake,
    /// 8: VM-to-VM frames per second and round trip (seraph-v pair vs QEMU pair).
    Net,
    /// 9: NVMe 4 KiB random reads and sequential writes (seraph-v vs QEMU).
    Disk,
    /// 10: the web display's cost to a guest that redraws the whole screen.
    Display,
}

/// The measurements selected.
pub type Only = BTreeSet<Measure>;

/// Seraph-V against the bare-KVM floor and QEMU.
#[derive(Debug, Parser)]
#[command(
    name = "seraph-v-bench",
    about = "Seraph-V against the bare-KVM floor and QEMU (see docs/performance.md)",
    after_help = "Measurements: 1 pio, 2 mmio (exit round trips), 3 cold (start-up), \
                  4 peers (QEMU microvm), 5 rss (VMM memory), 6 shot (screenshots), \
                  7 wake (stdin to guest interrupt), 8 net (VM pair over dgram), \
                  9 disk (NVMe), 10 display (web display cost). QEMU columns need \
                  qemu-system-x86_64: scripts/setup.sh installs it."
)]
struct Options {
    /// Fewer repetitions (a smoke run, not for the record).
    #[arg(long)]
    quick: bool,
    /// Comma-separated subset of the measurements (default: all).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    only: Vec<Measure>,
    /// Where to write the JSON (default target/bench/seraph-v-bench.json).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Do not build seraph-v and kvm-floor first (they must exist).
    #[arg(long)]
    no_build: bool,
}

fn main() -> ExitCode {
    let options = match Options::try_parse() {
        Ok(o) => o,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seraph-v-bench: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Writes the guests the spawned measurements boot to `target/bench/guests`.
fn paths(programs: &Programs) -> Result<Paths, BenchError> {
    let target = programs.bin_dir.parent().unwrap_or(&programs.bin_dir);
    let bench_dir = target.join("bench");
    let guests = bench_dir.join("guests");
    std::fs::create_dir_all(&guests).map_err(BenchError::io(&guests))?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, BenchError> {
        let path = guests.join(name);
        std::fs::write(&path, bytes).map_err(BenchError::io(&path))?;
        Ok(path)
    };
    Ok(Paths {
        hello: write("bench_hello.elf", seraph_guests::BENCH_HELLO)?,
        pvh: write("bench_pvh.elf", seraph_guests::BENCH_PVH)?,
        echo: write("serial_echo.elf", seraph_guests::SERIAL_ECHO)?,
        aether_pair_irq: write("aether_pair_irq.elf", seraph_guests::AETHER_PAIR_IRQ)?,
        nvme_bench: write("nvme_bench.elf", seraph_guests::NVME_BENCH)?,
        display_redraw: write("display_redraw.elf", seraph_guests::DISPLAY_REDRAW)?,
        seraph_v: programs.seraph_v.clone(),
        kvm_floor: programs.kvm_floor.clone(),
        bench_dir,
    })
}

/// Measurements that spawn seraph-v or kvm-floor.
const SPAWNING: [Measure; 7] = [
    Measure::Cold,
    Measure::Peers,
    Measure::Rss,
    Measure::Wake,
    Measure::Net,
    Measure::Disk,
    Measure::Display,
];

fn run(options: Options) -> Result<(), BenchError> {
    let started = Instant::now();
    let only: Only = if options.only.is_empty() {
        Measure::value_variants().iter().copied().collect()
    } else {
        options.only.iter().copied().collect()
    };
    let programs = Programs::current()?;
    if SPAWNING.iter().any(|m| only.contains(m)) {
        let cargo = if options.no_build {
            None
        } else {
            let cargo = std::env::var_os("CARGO");
            if cargo.is_none() {
                eprintln!(
                    "seraph-v-bench: not run through cargo: using seraph-v and kvm-floor as they are"
                );
            }
            cargo
        };
        programs.ensure_built(cargo)?;
    }
    let paths = paths(&programs)?;
    let mut bench = Bench {
        report: Report {
            machine: machine::machine_description(),
            ..Report::default()
        },
        quick: options.quick,
        rss_med: [None; 4],
    };
    let kvm = Kvm::new().map_err(BenchError::kvm("open /dev/kvm"))?;
    let hv = KvmHypervisor::new().map_err(|e| BenchError::Vmm(e.into()))?;
    if only.contains(&Measure::Pio) {
        bench.exit_round_trip(&kvm, &hv, ExitBench::PortIo)?;
    }
    if only.contains(&Measure::Mmio) {
        bench.exit_round_trip(&kvm, &hv, ExitBench::Mmio)?;
    }
    if [Measure::Cold, Measure::Peers, Measure::Rss]
        .iter()
        .any(|m| only.contains(m))
    {
        bench.spawned(&paths, &only)?;
    }
    if only.contains(&Measure::Rss) {
        bench.guest_resident(&hv, &kvm)?;
    }
    if only.contains(&Measure::Shot) {
        eprintln!("seraph-v-bench: screenshots");
        bench.screenshots(&paths)?;
    }
    if only.contains(&Measure::Wake) {
        bench.wake_up(&paths)?;
    }
    if only.contains(&Measure::Net) {
        bench.net_pair(&paths)?;
    }
    if only.contains(&Measure::Disk) {
        bench.nvme(&paths)?;
    }
    if only.contains(&Measure::Display) {
        bench.display(&paths)?;
    }
    if only.contains(&Measure::Pio) || only.contains(&Measure::Mmio) {
        bench.report.notes.push(
            "exit costs: per exit = (T(N2) - T(N1)) / (N2 - N1) over whole runs of the same guest \
             with a short and a long loop; both sides use the seraph-boot memory layout, only the \
             run loop differs; the check is the median of the per-repetition paired ratios"
                .into(),
        );
    }
    bench.report.notes.push(format!(
        "quick = {}; the bench took {:.1} s",
        options.quick,
        started.elapsed().as_secs_f64()
    ));
    print!("{}", bench.report.render());
    let json_path = options
        .json
        .unwrap_or_else(|| paths.bench_dir.join("seraph-v-bench.json"));
    std::fs::write(&json_path, bench.report.to_json().render())
        .map_err(BenchError::io(&json_path))?;
    println!("\nJSON: {}", json_path.display());
    Ok(())
}
