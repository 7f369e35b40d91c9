//! Builds the guest kernels in `guests/` with the system C compiler (`gcc`,
//! or `$CC`) and `ld`, writing one ELF per guest into `OUT_DIR`.
//!
//! If the tools are missing or cannot build x86_64 freestanding code, the
//! build stops with one message saying what is missing and how to install it.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Flags for every C and assembly source.
const C_FLAGS: &[&str] = &[
    "-m64",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-mcmodel=large",
    "-mno-red-zone",
    "-mgeneral-regs-only",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-builtin",
    "-fno-tree-loop-distribute-patterns",
    "-fno-common",
    "-march=x86-64",
    "-O2",
    "-nostdlib",
    "-Wall",
    "-Wextra",
    "-Werror",
];

/// Flags for every link.
const LD_FLAGS: &[&str] = &[
    "-m",
    "elf_x86_64",
    "-nostdlib",
    "-static",
    "-z",
    "max-page-size=0x1000",
    "--build-id=none",
];

const INSTALL_HINT: &str = "install gcc and binutils with: apt-get install gcc binutils";

/// One guest: its output file, sources, linker script and preprocessor defines.
struct GuestBuild {
    output: &'static str,
    sources: &'static [&'static str],
    script: &'static str,
    defines: &'static [&'static str],
}

const GUESTS: &[GuestBuild] = &[
    GuestBuild {
        output: "test_kernel_identity.elf",
        sources: &["entry.S", "test_kernel.c"],
        script: "identity.ld",
        defines: &[],
    },
    GuestBuild {
        output: "test_kernel_higher_half.elf",
        sources: &["entry.S", "test_kernel.c"],
        script: "higher_half.ld",
        defines: &["-DSERAPH_HIGHER_HALF=1"],
    },
    GuestBuild {
        output: "demo_kernel.elf",
        sources: &["entry.S", "test_kernel.c"],
        script: "higher_half.ld",
        defines: &["-DSERAPH_HIGHER_HALF=1", "-DSERAPH_DEMO=1"],
    },
    GuestBuild {
        output: "exit_status.elf",
        sources: &["exit_status.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "triple_fault.elf",
        sources: &["triple_fault.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "emulation_failure.elf",
        sources: &["emulation_failure.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "hlt_no_irq.elf",
        sources: &["hlt_no_irq.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "idle_loop.elf",
        sources: &["idle_loop.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "spin.elf",
        sources: &["spin.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "serial_flood.elf",
        sources: &["serial_flood.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "serial_forever.elf",
        sources: &["serial_flood.S"],
        script: "tiny.ld",
        defines: &["-DFOREVER=1"],
    },
    GuestBuild {
        output: "timer_kernel.elf",
        sources: &["entry.S", "timer_kernel.c"],
        script: "identity.ld",
        defines: &[],
    },
    GuestBuild {
        output: "string_io.elf",
        sources: &["string_io.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "seraph_idle_kernel.elf",
        sources: &["entry.S", "timer_kernel.c"],
        script: "identity.ld",
        defines: &["-DSERAPH_IDLE=1"],
    },
    // Hostile guests (tests/hostile.rs, docs/robustness.md).
    GuestBuild {
        output: "hostile_print.elf",
        sources: &["hostile_print.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "hostile_hypercall.elf",
        sources: &["hostile_hypercall.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "hostile_unbacked.elf",
        sources: &["hostile_unbacked.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "hostile_registers.elf",
        sources: &["hostile_registers.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "hostile_storm.elf",
        sources: &["hostile_storm.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "hostile_storm_forever.elf",
        sources: &["hostile_storm.S"],
        script: "tiny.ld",
        defines: &["-DSTORM_FOREVER=1"],
    },
    GuestBuild {
        output: "hostile_print_flood.elf",
        sources: &["hostile_print_flood.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "hostile_pagewalk.elf",
        sources: &["hostile_pagewalk.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "hostile_print_top.elf",
        sources: &["hostile_print_top.S"],
        script: "tiny.ld",
        defines: &[],
    },
    // Fault guests (crates/seraph-fault/tests, issue #13).
    GuestBuild {
        output: "fault_pf_write.elf",
        sources: &["fault_pf_write.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "fault_gp.elf",
        sources: &["fault_gp.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "fault_gp_wrmsr.elf",
        sources: &["fault_gp.S"],
        script: "tiny.ld",
        defines: &["-DFAULT_GP_WRMSR=1"],
    },
    GuestBuild {
        output: "fault_pf_handler.elf",
        sources: &["fault_pf_handler.S"],
        script: "tiny.ld",
        defines: &[],
    },
    // The seraph-v-bench guests (see `seraph_guests::bench_guests`).
    GuestBuild {
        output: "bench_pio.elf",
        sources: &["bench_pio.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "bench_mmio.elf",
        sources: &["bench_mmio.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "bench_hello.elf",
        sources: &["bench_hello.S"],
        script: "tiny.ld",
        defines: &[],
    },
    GuestBuild {
        output: "bench_pvh.elf",
        sources: &["bench_pvh.S"],
        script: "bench_pvh.ld",
        defines: &[],
    },
    // The PC guest runtime (pc_entry.S, pc.h, pc.ld): Seraph and PVH entry.
    GuestBuild {
        output: "pc_selftest.elf",
        sources: &["pc_entry.S", "pc_selftest.c"],
        script: "pc.ld",
        defines: &[],
    },
    // The CMOS RTC guests (issue #12) on the PC runtime.
    GuestBuild {
        output: "rtc_date.elf",
        sources: &["pc_entry.S", "rtc_date.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "rtc_periodic.elf",
        sources: &["pc_entry.S", "rtc_periodic.c"],
        script: "pc.ld",
        defines: &[],
    },
    // Aether NIC guests (issue #15): an e1000 driver on the PC runtime.
    GuestBuild {
        output: "aether_pair.elf",
        sources: &["pc_entry.S", "aether_pair.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "aether_pair_irq.elf",
        sources: &["pc_entry.S", "aether_pair.c"],
        script: "pc.ld",
        defines: &["-DAETHER_IRQ=1"],
    },
    GuestBuild {
        output: "aether_ping.elf",
        sources: &["pc_entry.S", "aether_ping.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "aether_hostile.elf",
        sources: &["pc_entry.S", "aether_hostile.c"],
        script: "pc.ld",
        defines: &[],
    },
    // Boot-protocol guests (issue #17): a PVH guest on the PC runtime, and
    // the tiny bzImage kernel (made flat by OBJCOPIES below).
    GuestBuild {
        output: "pvh_check.elf",
        sources: &["pc_entry.S", "pvh_check.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "linux_check.elf",
        sources: &["bzimage_head.S", "linux_check.c"],
        script: "bzimage.ld",
        defines: &[],
    },
    // Issue #12: Seraph OS's allocator (frees types 1/2/3/7, scribbles).
    GuestBuild {
        output: "allocator_identity.elf",
        sources: &["entry.S", "allocator_kernel.c"],
        script: "identity.ld",
        defines: &[],
    },
    GuestBuild {
        output: "allocator_higher_half.elf",
        sources: &["entry.S", "allocator_kernel.c"],
        script: "higher_half.ld",
        defines: &["-DSERAPH_HIGHER_HALF=1"],
    },
    GuestBuild {
        output: "allocator_identity_sparse.elf",
        sources: &["entry.S", "allocator_kernel.c"],
        script: "identity.ld",
        defines: &["-DALLOCATOR_SPARSE=1"],
    },
    GuestBuild {
        output: "allocator_higher_half_sparse.elf",
        sources: &["entry.S", "allocator_kernel.c"],
        script: "higher_half.ld",
        defines: &["-DSERAPH_HIGHER_HALF=1", "-DALLOCATOR_SPARSE=1"],
    },
    // Platform v2: the PCI test device and typed input into COM1.
    GuestBuild {
        output: "pci_testdev.elf",
        sources: &["pc_entry.S", "pci_testdev.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "display_kbd.elf",
        sources: &["pc_entry.S", "display_kbd.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "display_redraw.elf",
        sources: &["pc_entry.S", "display_redraw.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "gdb_target.elf",
        sources: &["pc_entry.S", "gdb_target.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "serial_echo.elf",
        sources: &["pc_entry.S", "serial_echo.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "undeliverable_1.elf",
        sources: &["pc_entry.S", "undeliverable.c"],
        script: "pc.ld",
        defines: &["-DVARIANT=1"],
    },
    GuestBuild {
        output: "undeliverable_2.elf",
        sources: &["pc_entry.S", "undeliverable.c"],
        script: "pc.ld",
        defines: &["-DVARIANT=2"],
    },
    GuestBuild {
        output: "undeliverable_3.elf",
        sources: &["pc_entry.S", "undeliverable.c"],
        script: "pc.ld",
        defines: &["-DVARIANT=3"],
    },
    GuestBuild {
        output: "undeliverable_4.elf",
        sources: &["pc_entry.S", "undeliverable.c"],
        script: "pc.ld",
        defines: &["-DVARIANT=4"],
    },
    // Atlas disk (seraph-nvme): the NVMe driver guest and its variants.
    GuestBuild {
        output: "nvme_driver.elf",
        sources: &["pc_entry.S", "nvme_driver.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "nvme_driver_readonly.elf",
        sources: &["pc_entry.S", "nvme_driver.c"],
        script: "pc.ld",
        defines: &["-DNVME_READONLY=1"],
    },
    GuestBuild {
        output: "nvme_driver_msix.elf",
        sources: &["pc_entry.S", "nvme_driver.c"],
        script: "pc.ld",
        defines: &["-DNVME_MSIX=1"],
    },
    GuestBuild {
        output: "nvme_hostile.elf",
        sources: &["pc_entry.S", "nvme_stress.c"],
        script: "pc.ld",
        defines: &[],
    },
    GuestBuild {
        output: "nvme_stream.elf",
        sources: &["pc_entry.S", "nvme_stress.c"],
        script: "pc.ld",
        defines: &["-DNVME_STREAM=1"],
    },
    GuestBuild {
        output: "nvme_bench.elf",
        sources: &["pc_entry.S", "nvme_stress.c"],
        script: "pc.ld",
        defines: &["-DNVME_BENCH=1"],
    },
];

/// Print one clear message and stop the build (no panic backtrace).
fn fail(message: &str) -> ! {
    eprintln!("error: seraph-guests cannot build its guest kernels: {message}");
    std::process::exit(1);
}

fn output_text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    text.trim().to_owned()
}

/// Run a tool; a tool that cannot be started, or that fails, stops the build.
fn run(tool: &str, command: &mut Command, what: &str) -> Output {
    let output = match command.output() {
        Ok(output) => output,
        Err(error) => fail(&format!(
            "could not run `{tool}` ({error}) while {what}; the guest kernels need a C compiler \
             and binutils: {INSTALL_HINT}"
        )),
    };
    if !output.status.success() {
        fail(&format!(
            "`{tool}` failed while {what}:\n{}",
            output_text(&output)
        ));
    }
    output
}

/// Check that the compiler and linker exist and can build x86_64 freestanding code.
fn probe_tools(cc: &str, ld: &str, out_dir: &Path) {
    for (tool, package) in [(cc, "gcc"), (ld, "binutils")] {
        match Command::new(tool).arg("--version").output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => fail(&format!(
                "`{tool} --version` failed ({}); {INSTALL_HINT}",
                output_text(&output)
            )),
            Err(error) => fail(&format!(
                "`{tool}` ({package}) was not found ({error}); {INSTALL_HINT}"
            )),
        }
    }
    let probe_c = out_dir.join("probe.c");
    let probe_o = out_dir.join("probe.o");
    let probe_elf = out_dir.join("probe.elf");
    if let Err(error) = fs::write(&probe_c, "void _start(void) { for (;;) { } }\n") {
        fail(&format!("cannot write {}: {error}", probe_c.display()));
    }
    let compiled = Command::new(cc)
        .args(C_FLAGS)
        .arg("-c")
        .arg(&probe_c)
        .arg("-o")
        .arg(&probe_o)
        .output();
    match compiled {
        Ok(output) if output.status.success() => {}
        Ok(output) => fail(&format!(
            "`{cc}` cannot compile x86_64 freestanding code:\n{}\n{INSTALL_HINT} \
             (on a non-x86_64 host set CC to an x86_64 cross compiler, e.g. \
             CC=x86_64-linux-gnu-gcc)",
            output_text(&output)
        )),
        Err(error) => fail(&format!("could not run `{cc}` ({error}); {INSTALL_HINT}")),
    }
    let linked = Command::new(ld)
        .args(LD_FLAGS)
        .arg("-e")
        .arg("_start")
        .arg("-o")
        .arg(&probe_elf)
        .arg(&probe_o)
        .output();
    match linked {
        Ok(output) if output.status.success() => {}
        Ok(output) => fail(&format!(
            "`{ld}` cannot link x86_64 ELF files:\n{}\n{INSTALL_HINT}",
            output_text(&output)
        )),
        Err(error) => fail(&format!("could not run `{ld}` ({error}); {INSTALL_HINT}")),
    }
}

/// Pass a tool's warnings (if any) on to cargo.
fn forward_warnings(output: &Output) {
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        if !line.trim().is_empty() {
            println!("cargo:warning={line}");
        }
    }
}

fn build_guest(cc: &str, ld: &str, guests_dir: &Path, out_dir: &Path, guest: &GuestBuild) {
    let stem = guest.output.trim_end_matches(".elf");
    let mut objects = Vec::new();
    for source in guest.sources {
        let object = out_dir.join(format!("{stem}-{source}.o"));
        let mut command = Command::new(cc);
        command
            .args(C_FLAGS)
            .args(guest.defines)
            .arg("-I")
            .arg(guests_dir)
            .arg("-c")
            .arg(guests_dir.join(source))
            .arg("-o")
            .arg(&object);
        let output = run(cc, &mut command, &format!("compiling guests/{source}"));
        forward_warnings(&output);
        objects.push(object);
    }
    let elf = out_dir.join(guest.output);
    let mut command = Command::new(ld);
    command
        .args(LD_FLAGS)
        .arg("-L")
        .arg(guests_dir)
        .arg("-T")
        .arg(guests_dir.join(guest.script))
        .arg("-o")
        .arg(&elf)
        .args(&objects);
    let output = run(ld, &mut command, &format!("linking {}", guest.output));
    forward_warnings(&output);
}

fn main() {
    let manifest_dir = match env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => fail("CARGO_MANIFEST_DIR is not set (run through cargo)"),
    };
    let out_dir = match env::var_os("OUT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => fail("OUT_DIR is not set (run through cargo)"),
    };
    let guests_dir = manifest_dir.join("guests");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=guests");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=LD");
    println!("cargo:rerun-if-env-changed=OBJCOPY");
    match fs::read_dir(&guests_dir) {
        Ok(entries) => {
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .collect();
            files.sort();
            for file in files {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
        Err(error) => fail(&format!("cannot read {}: {error}", guests_dir.display())),
    }

    let cc = env::var("CC").unwrap_or_else(|_| "gcc".to_owned());
    let ld = env::var("LD").unwrap_or_else(|_| "ld".to_owned());
    probe_tools(&cc, &ld, &out_dir);
    for guest in GUESTS {
        build_guest(&cc, &ld, &guests_dir, &out_dir, guest);
    }
    let objcopy = env::var("OBJCOPY").unwrap_or_else(|_| "objcopy".to_owned());
    for (input, output, format) in OBJCOPIES {
        let mut command = Command::new(&objcopy);
        command
            .arg("-O")
            .arg(format)
            .arg(out_dir.join(input))
            .arg(out_dir.join(output));
        run(
            &objcopy,
            &mut command,
            &format!("making {output} from {input}"),
        );
    }
}

/// Files made from built guests with `objcopy -O <format>`: (input, output, format).
const OBJCOPIES: &[(&str, &str, &str)] = &[
    // The PVH guest as a 32-bit-class ELF (same code, PT_NOTE kept).
    ("pvh_check.elf", "pvh_check32.elf", "elf32-i386"),
    // The tiny bzImage: setup sectors, then the kernel loaded at 1 MiB.
    ("linux_check.elf", "linux_check.bzimage", "binary"),
];
