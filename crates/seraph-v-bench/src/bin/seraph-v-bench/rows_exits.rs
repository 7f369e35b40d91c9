//! Measurements 1 and 2: port-I/O and MMIO exit round trips against the
//! bare kvm-ioctls floor (the work is in `seraph_v_bench::exits`).

use kvm_ioctls::Kvm;
use seraph_hypervisor::kvm::KvmHypervisor;
use seraph_v_bench::exits::{self, ExitBench, ExitPlan};
use seraph_v_bench::summary::ratio;
use seraph_v_bench::{BenchError, Goal};

use crate::bench::Bench;

impl Bench {
    pub fn exit_round_trip(
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
}
