//! The bench's state while it measures: the report being filled, and the
//! helpers every measurement uses to add rows and goal checks.

use std::path::PathBuf;

use seraph_v_bench::{Check, Goal, Report, Row, Summary};

/// Paths of the programs and guest files the spawned measurements use.
pub struct Paths {
    /// `target/<profile>/../bench`: outputs, guests, images.
    pub bench_dir: PathBuf,
    /// The seraph-v binary.
    pub seraph_v: PathBuf,
    /// The kvm-floor binary.
    pub kvm_floor: PathBuf,
    /// bench_hello (Seraph boot protocol).
    pub hello: PathBuf,
    /// bench_pvh (the same work as a PVH ELF for QEMU).
    pub pvh: PathBuf,
    /// serial_echo (wake-up latency).
    pub echo: PathBuf,
    /// aether_pair_irq (the interrupt-driven pair guest, both ends).
    pub aether_pair_irq: PathBuf,
    /// nvme_bench.
    pub nvme_bench: PathBuf,
    /// display_redraw.
    pub display_redraw: PathBuf,
}

/// The report being built and how many repetitions to make.
pub struct Bench {
    /// Rows, checks, skips and notes so far.
    pub report: Report,
    /// A smoke run with fewer repetitions.
    pub quick: bool,
    /// Median peak RSS (MiB) of kvm-floor, seraph-v, seraph-v + BMP, QEMU.
    pub rss_med: [Option<f64>; 4],
}

impl Bench {
    /// Adds a row summarising `samples` (nothing if there are none).
    pub fn row(
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

    /// Adds a goal check for `value` (nothing if it is `None`).
    pub fn check(&mut self, name: &str, value: Option<f64>, goal: Goal) {
        if let Some(value) = value {
            self.report.checks.push(Check {
                name: name.into(),
                value,
                goal,
            });
        }
    }

    /// Records a measurement that was not taken, and why.
    pub fn skip(&mut self, what: String) {
        eprintln!("seraph-v-bench: skipped: {what}");
        self.report.skipped.push(what);
    }

    /// `full` repetitions, or `quick` in a smoke run.
    pub fn reps(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}
