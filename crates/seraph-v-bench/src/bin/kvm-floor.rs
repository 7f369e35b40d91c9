//! `kvm-floor <guest.elf>`: the least a program can do to run a Seraph-V
//! bench guest on KVM, as the floor for Seraph-V's cold start: open
//! /dev/kvm, map 512 MiB, copy the PT_LOADs, three page-table pages, one
//! vCPU in long mode, run until the EXIT hypercall. PRINT bytes go to
//! stdout at once, COM1 bytes at the exit; the process exits with the
//! guest's status.

use std::process::ExitCode;

use kvm_ioctls::Kvm;
use seraph_v_bench::floor::{FloorVm, Layout};

const RAM: u64 = 512 << 20;

fn run() -> Result<u8, String> {
    let mut args = std::env::args_os().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        return Err("usage: kvm-floor <guest.elf>".into());
    };
    let kernel = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.to_string_lossy()))?;
    let kvm = Kvm::new().map_err(|e| format!("/dev/kvm: {e}"))?;
    let mut vm = FloorVm::new(&kvm, &kernel, Layout::Minimal, RAM).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let run = vm.run_guest(&mut out).map_err(|e| e.to_string())?;
    Ok((run.status & 0xff) as u8)
}

fn main() -> ExitCode {
    match run() {
        Ok(status) => ExitCode::from(status),
        Err(message) => {
            eprintln!("kvm-floor: {message}");
            ExitCode::from(70)
        }
    }
}
