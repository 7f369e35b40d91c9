//! Measurement 7: stdin byte to the halted guest's echo (issue #9), for
//! seraph-v, QEMU on the same ELF, and a `cat` pipe round trip as the
//! floor; and the VMM's CPU use while the guest sleeps in HLT.

use std::time::Duration;

use seraph_v_bench::summary::ratio;
use seraph_v_bench::wake::{self, Echoer, WakePlan, WakeRun};
use seraph_v_bench::{BenchError, Goal, peers};

use crate::bench::{Bench, Paths};

const GROUP: &str = "7 wake: stdin to echo";
const CPU_GROUP: &str = "7 wake: CPU while halted";

impl Bench {
    /// Runs each contender `reps` times, interleaved, `bytes` bytes each.
    pub fn wake_up(&mut self, paths: &Paths) -> Result<(), BenchError> {
        let plan = WakePlan {
            bytes: self.reps(50, 10),
            gap: Duration::from_millis(20),
            idle: Duration::from_millis(if self.quick { 300 } else { 1000 }),
        };
        let reps = self.reps(3, 1);
        let mut contenders = Vec::new();
        if let Some(cat) = seraph_v_bench::spawn::find_in_path("cat") {
            let inv = seraph_v_bench::spawn::Invocation::new(&cat, [""; 0]);
            contenders.push(("cat (pipe round trip, floor)", inv, Echoer::Cat));
        }
        contenders.push((
            "seraph-v",
            wake::seraph_v(&paths.seraph_v, &paths.echo),
            Echoer::Guest { exit_code: 0 },
        ));
        match peers::find_qemu() {
            Some(qemu) => contenders.push((
                "qemu pc (same ELF)",
                wake::qemu(&qemu, &paths.echo),
                Echoer::Guest {
                    exit_code: peers::qemu_exit_code(0),
                },
            )),
            None => self.skip(format!(
                "7 wake: QEMU column skipped, {} not found: {}",
                peers::QEMU,
                peers::QEMU_HINT
            )),
        }
        for (name, inv, _) in &contenders {
            eprintln!("seraph-v-bench: wake ({name}): {}", inv.shown());
        }
        let mut runs: Vec<Vec<WakeRun>> = vec![Vec::new(); contenders.len()];
        for rep in 0..reps {
            for k in 0..contenders.len() {
                let slot = (k + rep) % contenders.len();
                let (_, inv, echoer) = &contenders[slot];
                runs[slot].push(wake::measure(inv, *echoer, plan)?);
            }
        }
        let mut medians = Vec::new();
        for ((name, _, _), runs) in contenders.iter().zip(&runs) {
            let latencies: Vec<f64> = runs.iter().flat_map(|r| r.latency_us.clone()).collect();
            medians.push(self.row(GROUP, name, "us", &latencies).map(|s| s.median));
        }
        for ((name, _, echoer), runs) in contenders.iter().zip(&runs) {
            if *echoer == Echoer::Cat {
                continue;
            }
            let cpu: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.idle_cpu)
                .map(|f| f * 100.0)
                .collect();
            let s = self.row(CPU_GROUP, name, "% CPU", &cpu);
            if name.starts_with("seraph-v") {
                self.check(
                    "wake: seraph-v CPU while halted, % of a CPU",
                    s.map(|s| s.max),
                    Goal::AtMost(1.0),
                );
            }
        }
        let r = |a: Option<f64>, b: Option<f64>| a.zip(b).and_then(|(a, b)| ratio(a, b));
        let by_name = |prefix: &str| {
            contenders
                .iter()
                .position(|(n, _, _)| n.starts_with(prefix))
                .and_then(|i| medians.get(i).copied().flatten())
        };
        let (floor, seraph, qemu) = (by_name("cat"), by_name("seraph-v"), by_name("qemu"));
        if let Some(x) = r(seraph, floor) {
            self.row(GROUP, "ratio seraph-v / cat floor", "x", &[x]);
        }
        if let Some(x) = r(qemu, floor) {
            self.row(GROUP, "ratio qemu / cat floor", "x", &[x]);
        }
        self.check(
            "wake: seraph-v / qemu (median)",
            r(seraph, qemu),
            Goal::AtMost(1.0),
        );
        self.report.notes.push(format!(
            "wake: {} bytes per run, {} ms apart, {} runs per contender; the guest (serial_echo) \
             answers each byte with an 8-byte line written to COM1 by polling LSR, so the \
             latency includes about 16 guest exits of output besides the wake-up itself; \
             CPU while halted is all threads' schedstat time over {} ms of idle",
            plan.bytes,
            plan.gap.as_millis(),
            reps,
            plan.idle.as_millis()
        ));
        Ok(())
    }
}
