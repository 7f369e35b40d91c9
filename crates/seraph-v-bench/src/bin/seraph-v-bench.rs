//! `seraph-v-bench`: runs the six Seraph-V measurements, prints the table
//! with the ratios against each goal and writes target/bench/seraph-v-bench.json.
//! `--help` lists the options.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use kvm_ioctls::Kvm;
use seraph_hypervisor::kvm::KvmHypervisor;
use seraph_v_bench::exits::{self, ExitBench, ExitPlan};
use seraph_v_bench::floor::{FloorVm, Layout};
use seraph_v_bench::peers;
use seraph_v_bench::rss::resident_guest_bytes;
use seraph_v_bench::shot;
use seraph_v_bench::spawn::{ChildRun, Invocation, exit_memory, time_child};
use seraph_v_bench::summary::ratio;
use seraph_v_bench::{BenchError, Check, Goal, Report, Row, Summary};
use seraph_vmm::{Machine, MachineConfig, RunOutcome, SerialSink};

const HELP: &str = "\
seraph-v-bench: Seraph-V against the bare-KVM floor and QEMU microvm

usage: cargo run --release -p seraph-v-bench -- [options]

  --quick          fewer repetitions (a smoke run, not for the record)
  --only LIST      comma-separated subset of pio,mmio,cold,peers,rss,shot
  --json PATH      where to write the JSON (default target/bench/seraph-v-bench.json)
  --no-build       do not run `cargo build --release -p seraph-v-cli` first
  -h, --help       this text

Measurements: 1 pio (port-I/O exit round trip), 2 mmio (LAPIC MMIO exit round
trip), 3 cold (spawn to first guest exit and to process exit), 4 peers (QEMU
microvm, needs scripts/install-bench-peers.sh), 5 rss (VMM resident memory),
6 shot (BMP and PNG of 1024x768). See docs/performance.md.";

const ALL: [&str; 6] = ["pio", "mmio", "cold", "peers", "rss", "shot"];
const MIB: f64 = 1024.0 * 1024.0;

struct Options {
    quick: bool,
    only: BTreeSet<String>,
    json: Option<PathBuf>,
    build: bool,
}

fn parse_options() -> Result<Option<Options>, BenchError> {
    let mut options = Options {
        quick: false,
        only: ALL.iter().map(|s| (*s).to_owned()).collect(),
        json: None,
        build: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => options.quick = true,
            "--no-build" => options.build = false,
            "--json" => {
                let path = args
                    .next()
                    .ok_or_else(|| BenchError::Usage("--json needs a path".into()))?;
                options.json = Some(PathBuf::from(path));
            }
            "--only" => {
                let list = args
                    .next()
                    .ok_or_else(|| BenchError::Usage("--only needs a list".into()))?;
                options.only.clear();
                for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !ALL.contains(&item) {
                        return Err(BenchError::Usage(format!(
                            "unknown measurement `{item}`: choose from {}",
                            ALL.join(",")
                        )));
                    }
                    options.only.insert(item.to_owned());
                }
            }
            other => {
                return Err(BenchError::Usage(format!(
                    "unknown argument `{other}` (see --help)"
                )));
            }
        }
    }
    Ok(Some(options))
}

/// Paths of the programs and guest files the spawned measurements use.
struct Paths {
    bench_dir: PathBuf,
    seraph_v: PathBuf,
    kvm_floor: PathBuf,
    hello: PathBuf,
    pvh: PathBuf,
}

fn paths() -> Result<Paths, BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::io("current_exe"))?;
    let bin_dir = exe
        .parent()
        .ok_or_else(|| BenchError::Usage("the bench binary has no directory".into()))?;
    let target = bin_dir.parent().unwrap_or(bin_dir);
    let bench_dir = target.join("bench");
    let guests = bench_dir.join("guests");
    std::fs::create_dir_all(&guests).map_err(BenchError::io(&guests))?;
    let hello = guests.join("bench_hello.elf");
    let pvh = guests.join("bench_pvh.elf");
    std::fs::write(&hello, seraph_guests::BENCH_HELLO).map_err(BenchError::io(&hello))?;
    std::fs::write(&pvh, seraph_guests::BENCH_PVH).map_err(BenchError::io(&pvh))?;
    Ok(Paths {
        bench_dir,
        seraph_v: bin_dir.join("seraph-v"),
        kvm_floor: bin_dir.join("kvm-floor"),
        hello,
        pvh,
    })
}

/// Builds the seraph-v binary when run through cargo (CARGO is set).
fn build_seraph_v(quiet_about_missing_cargo: bool) {
    let Some(cargo) = std::env::var_os("CARGO") else {
        if !quiet_about_missing_cargo {
            eprintln!("seraph-v-bench: not run through cargo; using the seraph-v binary as it is");
        }
        return;
    };
    eprintln!("seraph-v-bench: cargo build --release -p seraph-v-cli");
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "seraph-v-cli"])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!(
            "seraph-v-bench: building seraph-v failed; the cold-start columns may be skipped"
        );
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn machine_description() -> Vec<(String, String)> {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let nested = std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| {
            t.lines()
                .any(|l| l.starts_with("flags") && l.contains(" hypervisor"))
        })
        .unwrap_or(false);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default();
    vec![
        ("nproc".into(), nproc),
        ("cpu".into(), cpu_model()),
        ("kernel".into(), kernel),
        (
            "kvm".into(),
            if nested {
                "nested (this host is itself a VM: CPU flag `hypervisor`)".into()
            } else {
                "bare metal".into()
            },
        ),
        ("unix_time".into(), unix),
    ]
}

struct Bench {
    report: Report,
    quick: bool,
    /// Median peak RSS (MiB) of kvm-floor, seraph-v, seraph-v + BMP, QEMU.
    rss_med: [Option<f64>; 4],
}

impl Bench {
    fn row(
        &mut self,
        group: &str,
        contender: &str,
        unit: &'static str,
        samples: &[f64],
    ) -> Option<Summary> {
        let summary = Summary::of(samples)?;
        self.report.rows.push(Row {
            group: group.into(),
            contender: contender.into(),
            unit,
            summary,
        });
        Some(summary)
    }

    fn check(&mut self, name: &str, value: Option<f64>, goal: Goal) {
        if let Some(value) = value {
            self.report.checks.push(Check {
                name: name.into(),
                value,
                goal,
            });
        }
    }

    fn reps(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    fn exit_round_trip(
        &mut self,
        kvm: &Kvm,
        hv: &KvmHypervisor,
        bench: ExitBench,
    ) -> Result<(), BenchError> {
        let plan = if self.quick {
            ExitPlan {
                short_blocks: 16,
                long_blocks: 128,
                reps: 3,
            }
        } else {
            ExitPlan {
                short_blocks: 64,
                long_blocks: 1024,
                reps: 15,
            }
        };
        eprintln!(
            "seraph-v-bench: {}: {} and {} exits, {} repetitions",
            bench.name(),
            plan.short_blocks * 16,
            plan.long_blocks * 16,
            plan.reps
        );
        let samples = exits::measure(kvm, hv, bench, plan)?;
        let (group, label) = match bench {
            ExitBench::PortIo => ("1 pio exit", "pio exit: seraph-v / kvm floor"),
            ExitBench::Mmio => ("2 mmio exit", "mmio exit: seraph-v / kvm floor"),
        };
        self.row(group, "seraph-v (Machine::run)", "ns/exit", &samples.seraph);
        self.row(group, "kvm floor (bare loop)", "ns/exit", &samples.floor);
        // Each repetition ran both sides back to back: its ratio cancels the
        // drift of this shared machine better than a ratio of medians.
        let paired: Vec<f64> = samples
            .seraph
            .iter()
            .zip(&samples.floor)
            .filter_map(|(s, f)| ratio(*s, *f))
            .collect();
        let r = self.row(group, "ratio seraph-v/floor, paired", "x", &paired);
        self.check(label, r.map(|r| r.median), Goal::AtMost(1.05));
        if bench == ExitBench::Mmio {
            self.report.notes.push(format!(
                "mmio: the guest reads LAPIC 0xFEE00030; seraph-v answered {} of the last long run's {} reads from its device bus ({} unhandled)",
                samples.seraph_exits_seen.saturating_sub(samples.seraph_unhandled),
                samples.seraph_exits_seen,
                samples.seraph_unhandled
            ));
        }
        Ok(())
    }

    fn verify_hello(
        run: &ChildRun,
        expected_code: i32,
        who: &str,
        with_start: bool,
    ) -> Result<(), BenchError> {
        let text = String::from_utf8_lossy(&run.stdout);
        let line_ok = text.contains(seraph_guests::BENCH_HELLO_LINE);
        let start_ok = !with_start || text.starts_with(seraph_guests::BENCH_HELLO_STARTED);
        if run.code != Some(expected_code) || !line_ok || !start_ok {
            return Err(BenchError::Child {
                program: who.into(),
                detail: format!(
                    "expected exit code {expected_code} and the hello line, got code {:?} and output {text:?}",
                    run.code
                ),
            });
        }
        Ok(())
    }

    /// Measurements 3, 4 and the process half of 5.
    fn spawned(&mut self, paths: &Paths, only: &BTreeSet<String>) -> Result<(), BenchError> {
        let status = i32::try_from(seraph_guests::BENCH_EXIT_STATUS).unwrap_or(0);
        let shot_path = paths.bench_dir.join("cold_start.bmp");
        let floor = peers::kvm_floor(&paths.kvm_floor, &paths.hello);
        let plain = peers::seraph_v(&paths.seraph_v, &paths.hello, None);
        let shot = peers::seraph_v(&paths.seraph_v, &paths.hello, Some(&shot_path));
        let qemu = if only.contains("peers") {
            match peers::find_qemu() {
                Some(q) => Some(peers::qemu_microvm(&q, &paths.pvh)),
                None => {
                    self.report.skipped.push(format!(
                        "4 peers: QEMU microvm column skipped, {} not found: {}",
                        peers::QEMU,
                        peers::QEMU_HINT
                    ));
                    None
                }
            }
        } else {
            None
        };
        if !paths.seraph_v.is_file() {
            self.report.skipped.push(format!(
                "3 cold / 4 peers / 5 rss: {} missing: run `cargo build --release -p seraph-v-cli`",
                paths.seraph_v.display()
            ));
            return Ok(());
        }
        eprintln!("seraph-v-bench: spawning {}", plain.shown());
        eprintln!("seraph-v-bench: spawning {}", shot.shown());
        eprintln!("seraph-v-bench: spawning {}", floor.shown());
        if let Some(q) = &qemu {
            eprintln!("seraph-v-bench: spawning {}", q.shown());
        }
        let reps = self.reps(15, 4);
        let qemu_every = 2; // QEMU is slow: run it every second repetition.
        let mut runs: [Vec<ChildRun>; 4] = Default::default();
        // Warm-up, untimed: page cache for the binaries and the guests.
        for inv in [&floor, &plain, &shot] {
            time_child(inv)?;
        }
        if let Some(q) = &qemu {
            time_child(q)?;
        }
        for rep in 0..reps {
            let mut order: Vec<(usize, &Invocation)> = vec![(0, &floor), (1, &plain), (2, &shot)];
            if let Some(q) = &qemu {
                if rep % qemu_every == 0 {
                    order.push((3, q));
                }
            }
            // Rotate the order every repetition against drift.
            let len = order.len();
            order.rotate_left(rep % len);
            for (slot, inv) in order {
                let run = time_child(inv)?;
                let (code, start, who) = match slot {
                    0 => (status, true, "kvm-floor"),
                    3 => (
                        peers::qemu_exit_code(seraph_guests::BENCH_EXIT_STATUS),
                        false,
                        "qemu",
                    ),
                    _ => (status, true, "seraph-v"),
                };
                Self::verify_hello(&run, code, who, start)?;
                runs[slot].push(run);
            }
        }
        let ms = |runs: &[ChildRun], f: &dyn Fn(&ChildRun) -> Option<f64>| -> Vec<f64> {
            runs.iter().filter_map(f).collect()
        };
        let first = |r: &ChildRun| r.first_output.map(|d| d.as_secs_f64() * 1e3);
        let exit = |r: &ChildRun| Some(r.exit.as_secs_f64() * 1e3);
        let names = [
            "kvm-floor",
            "seraph-v --no-screenshot",
            "seraph-v (BMP screenshot)",
            "qemu microvm",
        ];
        let mut first_med = [None; 4];
        let mut exit_med = [None; 4];
        let mut rss_med = [None; 4];
        if only.contains("cold") {
            for slot in 0..3 {
                first_med[slot] = self
                    .row(
                        "3 cold: 1st guest exit",
                        names[slot],
                        "ms",
                        &ms(&runs[slot], &first),
                    )
                    .map(|s| s.median);
            }
        }
        for slot in 0..4 {
            if slot == 3 && !only.contains("peers") {
                continue;
            }
            if slot < 3 && !only.contains("cold") && !(slot == 1 && only.contains("peers")) {
                continue;
            }
            let group = if slot == 3 {
                "4 peers: spawn to exit"
            } else {
                "3 cold: spawn to exit"
            };
            exit_med[slot] = self
                .row(group, names[slot], "ms", &ms(&runs[slot], &exit))
                .map(|s| s.median);
        }
        if only.contains("cold") {
            let parts = exits::startup_parts(self.reps(7, 2))?;
            let to_ms = |v: &[f64]| v.iter().map(|ns| ns / 1e6).collect::<Vec<_>>();
            let group = "3 cold: parts in-process";
            self.row(
                group,
                "seraph-v memory + BootPlan",
                "ms",
                &to_ms(&parts.seraph_layout),
            );
            self.row(
                group,
                "zeroing 16 MiB (boot skips it)",
                "ms",
                &to_ms(&parts.zero_16mib),
            );
            self.row(
                group,
                "floor minimal layout",
                "ms",
                &to_ms(&parts.minimal_layout),
            );
            self.row(
                group,
                "copy 3 MiB framebuffer",
                "ms",
                &to_ms(&parts.framebuffer_copy),
            );
        }
        if only.contains("rss") {
            let invocations = [Some(&floor), Some(&plain), Some(&shot), qemu.as_ref()];
            for (slot, inv) in invocations.into_iter().enumerate() {
                let Some(inv) = inv else { continue };
                let mut peaks = Vec::new();
                for _ in 0..self.reps(3, 1) {
                    peaks.push(exit_memory(inv)?.peak as f64 / MIB);
                }
                rss_med[slot] = self
                    .row("5 rss: peak (VmHWM)", names[slot], "MiB", &peaks)
                    .map(|s| s.median);
            }
        }
        let r = |a: Option<f64>, b: Option<f64>| a.zip(b).and_then(|(a, b)| ratio(a, b));
        if only.contains("cold") {
            self.check(
                "cold 1st exit: seraph-v / kvm-floor",
                r(first_med[1], first_med[0]),
                Goal::AtMost(1.5),
            );
            self.check(
                "cold exit: seraph-v / kvm-floor",
                r(exit_med[1], exit_med[0]),
                Goal::AtMost(1.5),
            );
            self.check(
                "cold exit: seraph-v+BMP / kvm-floor",
                r(exit_med[2], exit_med[0]),
                Goal::AtMost(1.5),
            );
        }
        if only.contains("peers") && qemu.is_some() {
            self.check(
                "peers exit: qemu microvm / seraph-v",
                r(exit_med[3], exit_med[1]),
                Goal::AtLeast(10.0),
            );
        }
        self.rss_med = rss_med;
        Ok(())
    }

    /// The in-process half of measurement 5: guest pages resident after a run.
    fn guest_resident(&mut self, hv: &KvmHypervisor, kvm: &Kvm) -> Result<(), BenchError> {
        let config = MachineConfig {
            serial: SerialSink::None,
            print_to_stdout: false,
            ..MachineConfig::default()
        };
        let mut machine = Machine::new(hv, config, seraph_guests::BENCH_HELLO)?;
        let before = resident_guest_bytes(machine.memory())?;
        let report = machine.run()?;
        let status = u64::from(seraph_guests::BENCH_EXIT_STATUS);
        if report.outcome != (RunOutcome::GuestExit { status }) {
            return Err(BenchError::Guest(format!(
                "bench-hello ended with {}",
                report.outcome
            )));
        }
        let after = resident_guest_bytes(machine.memory())?;
        drop(machine);
        let mut floor = FloorVm::new(kvm, seraph_guests::BENCH_HELLO, Layout::Minimal, 512 << 20)?;
        floor.run_guest(&mut std::io::sink())?;
        let floor_after = resident_guest_bytes(floor.memory())?;
        let (before, after, floor_after) = (
            before as f64 / MIB,
            after as f64 / MIB,
            floor_after as f64 / MIB,
        );
        self.row(
            "5 rss: guest resident",
            "seraph-v after boot setup",
            "MiB",
            &[before],
        );
        self.row(
            "5 rss: guest resident",
            "seraph-v after the run",
            "MiB",
            &[after],
        );
        self.row(
            "5 rss: guest resident",
            "kvm-floor after the run",
            "MiB",
            &[floor_after],
        );
        if let Some(peak) = self.rss_med[1] {
            let own = peak - after;
            self.row("5 rss: VMM own", "seraph-v --no-screenshot", "MiB", &[own]);
            self.check(
                "rss: seraph-v own (peak - guest) MiB",
                Some(own),
                Goal::AtMost(5.0),
            );
        }
        if let Some(peak) = self.rss_med[2] {
            self.row(
                "5 rss: VMM own",
                "seraph-v (BMP screenshot)",
                "MiB",
                &[peak - after],
            );
        }
        if let Some(peak) = self.rss_med[0] {
            self.row("5 rss: VMM own", "kvm-floor", "MiB", &[peak - floor_after]);
        }
        Ok(())
    }

    fn screenshots(&mut self, paths: &Paths) -> Result<(), BenchError> {
        let (pixels, geometry) = shot::test_picture()?;
        let bmp = paths.bench_dir.join("shot.bmp");
        let png = paths.bench_dir.join("shot.png");
        let reps = self.reps(11, 3);
        let (mut bmp_ms, mut png_ms) = (Vec::new(), Vec::new());
        let (mut bmp_size, mut png_size) = (0, 0);
        for rep in 0..reps {
            let one = |path: &Path| shot::save_once(path, &pixels, &geometry);
            if rep % 2 == 0 {
                let (ns, size) = one(&bmp)?;
                bmp_ms.push(ns / 1e6);
                bmp_size = size;
                let (ns, size) = one(&png)?;
                png_ms.push(ns / 1e6);
                png_size = size;
            } else {
                let (ns, size) = one(&png)?;
                png_ms.push(ns / 1e6);
                png_size = size;
                let (ns, size) = one(&bmp)?;
                bmp_ms.push(ns / 1e6);
                bmp_size = size;
            }
        }
        self.row(
            "6 screenshot 1024x768",
            "BMP (save_screenshot)",
            "ms",
            &bmp_ms,
        );
        self.row(
            "6 screenshot 1024x768",
            "PNG (save_screenshot)",
            "ms",
            &png_ms,
        );
        self.report.notes.push(format!(
            "screenshot files: BMP {bmp_size} bytes, PNG {png_size} bytes (the demo kernel's test picture)"
        ));
        Ok(())
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("seraph-v-bench: {e}");
            return ExitCode::from(2);
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

fn run(options: Options) -> Result<(), BenchError> {
    let started = Instant::now();
    if options.build
        && ["cold", "peers", "rss"]
            .iter()
            .any(|m| options.only.contains(*m))
    {
        build_seraph_v(false);
    }
    let paths = paths()?;
    let mut bench = Bench {
        report: Report {
            machine: machine_description(),
            ..Report::default()
        },
        quick: options.quick,
        rss_med: [None; 4],
    };
    let kvm = Kvm::new().map_err(BenchError::kvm("open /dev/kvm"))?;
    let hv = KvmHypervisor::new().map_err(|e| BenchError::Vmm(e.into()))?;
    let only = &options.only;
    if only.contains("pio") {
        bench.exit_round_trip(&kvm, &hv, ExitBench::PortIo)?;
    }
    if only.contains("mmio") {
        bench.exit_round_trip(&kvm, &hv, ExitBench::Mmio)?;
    }
    if ["cold", "peers", "rss"].iter().any(|m| only.contains(*m)) {
        bench.spawned(&paths, only)?;
    }
    if only.contains("rss") {
        bench.guest_resident(&hv, &kvm)?;
    }
    if only.contains("shot") {
        eprintln!("seraph-v-bench: screenshots");
        bench.screenshots(&paths)?;
    }
    if only.contains("pio") || only.contains("mmio") {
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
