//! Embedding Seraph-V: boot a guest through the library, without the CLI.
//!
//! Builds a machine on KVM with a quiet configuration (serial and PRINT
//! output captured instead of printed), runs it, and reports what the guest
//! did. Run with `cargo run --example embed [KERNEL.elf]`; without an
//! argument it boots the higher-half Seraph test kernel.

use std::process::ExitCode;
use std::time::Duration;

use seraph_v::hypervisor::kvm::KvmHypervisor;
use seraph_v::vmm::{Machine, MachineConfig};

fn main() -> ExitCode {
    let kernel = match std::env::args_os().nth(1) {
        Some(path) => match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("embed: cannot read {}: {e}", path.to_string_lossy());
                return ExitCode::from(66);
            }
        },
        None => seraph_guests::TEST_KERNEL_HIGHER_HALF.to_vec(),
    };
    let kvm = match KvmHypervisor::new() {
        Ok(kvm) => kvm,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::from(69);
        }
    };
    let config = MachineConfig {
        memory_size: 256 << 20,
        timeout: Some(Duration::from_secs(30)),
        ..MachineConfig::quiet()
    };
    let mut machine = match Machine::new(&kvm, config, &kernel) {
        Ok(machine) => machine,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(70));
        }
    };
    match machine.boot_plan() {
        Some(plan) => println!(
            "kernel at physical {:#x}, page tables at {:#x}, entry {:#x}",
            plan.kernel_phys_base,
            plan.page_tables.pml4(),
            plan.entry
        ),
        None => println!(
            "kernel booted with the {} protocol",
            machine.loaded_kernel().protocol.name()
        ),
    }
    let report = match machine.run() {
        Ok(report) => report,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::from(70);
        }
    };
    println!("outcome: {}", report.outcome);
    println!("serial:\n{}", String::from_utf8_lossy(&report.serial));
    println!("PRINT:\n{}", String::from_utf8_lossy(&report.print));
    print!("{}", report.stats);
    ExitCode::from(u8::try_from(report.exit_code()).unwrap_or(70))
}
