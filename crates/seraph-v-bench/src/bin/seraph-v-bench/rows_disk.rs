//! Measurement 9: NVMe 4 KiB random reads and sequential writes at queue
//! depth 1 (issue #16), seraph-v's `--disk` against QEMU's `-device nvme`
//! on the same guest ELF and image.

use std::time::Duration;

use seraph_v_bench::disk::{self, Phase};
use seraph_v_bench::spawn::Invocation;
use seraph_v_bench::summary::ratio;
use seraph_v_bench::{BenchError, Goal, peers};

use crate::bench::{Bench, Paths};

/// The image both VMMs use.
const IMAGE_SIZE: u64 = 64 << 20;

impl Bench {
    /// Runs the nvme_bench guest on each VMM, interleaved.
    pub fn nvme(&mut self, paths: &Paths) -> Result<(), BenchError> {
        let image = paths.bench_dir.join("nvme_bench.img");
        disk::write_image(&image, IMAGE_SIZE)?;
        let mut sides: Vec<(&str, Invocation, i32)> = vec![(
            "seraph-v --disk",
            disk::seraph_v(&paths.seraph_v, &paths.nvme_bench, &image),
            0,
        )];
        match peers::find_qemu() {
            Some(qemu) => sides.push((
                "qemu -device nvme",
                disk::qemu(&qemu, &paths.nvme_bench, &image),
                peers::qemu_exit_code(0),
            )),
            None => self.skip(format!(
                "9 disk: QEMU column skipped, {} not found: {}",
                peers::QEMU,
                peers::QEMU_HINT
            )),
        }
        for (name, inv, _) in &sides {
            eprintln!("seraph-v-bench: disk ({name}): {}", inv.shown());
        }
        let hz = disk::tsc_hz(Duration::from_millis(200));
        let reps = self.reps(3, 1);
        let mut runs: Vec<Vec<Vec<Phase>>> = vec![Vec::new(); sides.len()];
        for rep in 0..reps {
            for k in 0..sides.len() {
                let slot = (k + rep) % sides.len();
                let (_, inv, code) = &sides[slot];
                runs[slot].push(disk::run_once(inv, *code)?);
            }
        }
        let (unit, scale): (&'static str, f64) = match hz {
            Some(hz) => ("us/cmd", 1e6 / hz),
            None => ("cycles/cmd", 1.0),
        };
        for (index, kind) in ["randread-4k", "seqwrite-4k"].into_iter().enumerate() {
            let group = format!("9 nvme {kind} QD1");
            let mut medians = Vec::new();
            for ((name, _, _), runs) in sides.iter().zip(&runs) {
                let per_op: Vec<f64> = runs
                    .iter()
                    .filter_map(|phases| phases.get(index))
                    .filter(|p| p.kind == kind)
                    .filter_map(Phase::cycles_per_op)
                    .map(|c| c * scale)
                    .collect();
                medians.push(self.row(&group, name, unit, &per_op).map(|s| s.median));
                if hz.is_some() {
                    let mib_s: Vec<f64> = per_op
                        .iter()
                        .filter(|us| **us > 0.0)
                        .map(|us| 4096.0 / (us * 1e-6) / (1024.0 * 1024.0))
                        .collect();
                    self.row(&group, &format!("{name} throughput"), "MiB/s", &mib_s);
                }
            }
            let at = |i: usize| medians.get(i).copied().flatten();
            self.check(
                &format!("nvme {kind}: seraph-v / qemu per command"),
                at(0).zip(at(1)).and_then(|(s, q)| ratio(s, q)),
                Goal::AtMost(1.0),
            );
        }
        self.report.notes.push(format!(
            "disk: nvme_bench, {} MiB image written before the runs, queue depth 1, polled; \
             per-command time from the guest's TSC ({}), seqwrite includes the final Flush",
            IMAGE_SIZE >> 20,
            match hz {
                Some(hz) => format!("host TSC {:.0} MHz", hz / 1e6),
                None => "TSC rate unknown: cycles".into(),
            }
        ));
        Ok(())
    }
}
