//! The in-process half of measurement 5: guest pages resident after a
//! run, subtracted from the peak to give the VMM's own memory.

use kvm_ioctls::Kvm;
use seraph_hypervisor::kvm::KvmHypervisor;
use seraph_v_bench::floor::{FloorVm, Layout};
use seraph_v_bench::rss::resident_guest_bytes;
use seraph_v_bench::{BenchError, Goal};
use seraph_vmm::{Machine, MachineConfig, RunOutcome, SerialSink};

use crate::MIB;
use crate::bench::Bench;

impl Bench {
    pub fn guest_resident(&mut self, hv: &KvmHypervisor, kvm: &Kvm) -> Result<(), BenchError> {
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
}
