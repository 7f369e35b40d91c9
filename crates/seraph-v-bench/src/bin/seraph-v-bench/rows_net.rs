//! Measurement 8: VM-to-VM frames per second and round trip (issue #15),
//! a seraph-v pair (`--net dgram`) against a QEMU pair (`-netdev dgram`,
//! e1000) running the same Aether pair ELFs.

use seraph_v_bench::netpair::{self, PairRun, PairSide};
use seraph_v_bench::summary::ratio;
use seraph_v_bench::{BenchError, Goal, peers};

use crate::bench::{Bench, Paths};

impl Bench {
    /// Runs both pairs `reps` times, alternating which goes first.
    pub fn net_pair(&mut self, paths: &Paths) -> Result<(), BenchError> {
        let mut sides = vec![(
            "seraph-v pair (--net dgram)",
            PairSide {
                command: netpair::seraph_v,
                binary: paths.seraph_v.clone(),
                ok_code: 0,
            },
        )];
        match peers::find_qemu() {
            Some(qemu) => sides.push((
                "qemu pair (e1000, dgram)",
                PairSide {
                    command: netpair::qemu,
                    binary: qemu,
                    ok_code: peers::qemu_exit_code(0),
                },
            )),
            None => self.skip(format!(
                "8 net: QEMU pair skipped, {} not found: {}",
                peers::QEMU,
                peers::QEMU_HINT
            )),
        }
        let reps = self.reps(3, 1);
        eprintln!(
            "seraph-v-bench: net: {} runs per pair of {} frames",
            reps,
            seraph_guests::AETHER_PAIR_FRAMES
        );
        let mut runs: Vec<Vec<PairRun>> = vec![Vec::new(); sides.len()];
        for rep in 0..reps {
            for k in 0..sides.len() {
                let slot = (k + rep) % sides.len();
                let run = netpair::run_pair(
                    &sides[slot].1,
                    &paths.aether_pair_irq,
                    &paths.aether_pair_irq,
                )?;
                runs[slot].push(run);
            }
        }
        let mut fps = Vec::new();
        let mut rtt = Vec::new();
        for ((name, _), runs) in sides.iter().zip(&runs) {
            let r: Vec<f64> = runs.iter().map(|r| r.round_trip_us).collect();
            let f: Vec<f64> = runs.iter().map(|r| r.frames_per_s).collect();
            rtt.push(
                self.row("8 net: round trip", name, "us", &r)
                    .map(|s| s.median),
            );
            fps.push(
                self.row("8 net: frames/s", name, "frames/s", &f)
                    .map(|s| s.median),
            );
            let resends: u64 = runs.iter().map(|r| r.resends).sum();
            if resends > 0 {
                self.report.notes.push(format!(
                    "net: the {name} sender resent {resends} frames over {} runs (each resend waits ~0.1 s of TSC time, which inflates that run)",
                    runs.len()
                ));
            }
        }
        let at = |v: &[Option<f64>], i: usize| v.get(i).copied().flatten();
        let r = |a: Option<f64>, b: Option<f64>| a.zip(b).and_then(|(a, b)| ratio(a, b));
        self.check(
            "net frames/s: seraph-v / qemu e1000",
            r(at(&fps, 0), at(&fps, 1)),
            Goal::AtLeast(1.0),
        );
        self.check(
            "net round trip: seraph-v / qemu e1000",
            r(at(&rtt, 0), at(&rtt, 1)),
            Goal::AtMost(1.0),
        );
        self.report.notes.push(format!(
            "net: stop-and-wait, {} frames of 60-1514 bytes, the interrupt-driven pair guest \
             (aether_pair_irq) at both ends, the same ELF on both VMMs; timed between the \
             sender's mac line and its ok line (boot and exit excluded)",
            seraph_guests::AETHER_PAIR_FRAMES
        ));
        Ok(())
    }
}
