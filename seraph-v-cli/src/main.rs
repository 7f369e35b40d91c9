//! `seraph-v`: boot a Seraph OS (or other small x86_64) kernel on KVM.
//!
//! A thin front end over `seraph-vmm`: parse arguments, load the kernel,
//! run the machine, print the report line, save the screenshot, and exit
//! with the documented code for how the run ended.

mod args;
mod interrupt;

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use seraph_vmm::{Machine, MachineConfig, SerialSink, VmmError, exit_code};

use crate::args::{Args, SerialArg};

/// A failure before or after the run: a one-line message and an exit code.
struct Failure {
    message: String,
    code: i32,
}

impl Failure {
    fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }
}

impl From<VmmError> for Failure {
    fn from(e: VmmError) -> Self {
        Self::new(e.exit_code(), e.to_string())
    }
}

fn main() -> ExitCode {
    let code = match run() {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("seraph-v: error: {}", failure.message);
            failure.code
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}

fn parse_args() -> Result<Args, Failure> {
    Args::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            print!("{e}");
            return Failure::new(0, "");
        }
        let rendered = e.to_string();
        let first = rendered
            .lines()
            .next()
            .unwrap_or("bad arguments")
            .trim_start_matches("error: ");
        Failure::new(exit_code::USAGE, format!("{first} (see seraph-v --help)"))
    })
}

fn read_kernel(path: Option<&Path>, memory: u64) -> Result<Vec<u8>, Failure> {
    let Some(path) = path else {
        return Ok(seraph_guests::DEMO_KERNEL.to_vec());
    };
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        Failure::new(
            exit_code::NO_INPUT,
            format!("cannot read kernel {shown}: {e}"),
        )
    })?;
    if meta.is_dir() {
        return Err(Failure::new(
            exit_code::NO_INPUT,
            format!("kernel {shown} is a directory: give the path of an ELF file"),
        ));
    }
    if meta.len() > memory {
        return Err(Failure::new(
            exit_code::BAD_KERNEL,
            format!(
                "kernel {shown} is {} bytes, more than the guest's {} bytes of RAM: raise --memory",
                meta.len(),
                memory
            ),
        ));
    }
    // Read at most one byte more than RAM: a device or pipe reports length
    // 0 above, and /dev/zero must not fill the host's memory.
    let unreadable = |e: std::io::Error| {
        Failure::new(
            exit_code::NO_INPUT,
            format!("cannot read kernel {shown}: {e}"),
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(memory.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > memory {
        return Err(Failure::new(
            exit_code::BAD_KERNEL,
            format!(
                "kernel {shown} is more than the guest's {memory} bytes of RAM: raise --memory"
            ),
        ));
    }
    Ok(bytes)
}

/// Checks, before the guest runs, that the screenshot can be written.
fn check_screenshot_path(path: &Path) -> Result<(), Failure> {
    let shown = path.display();
    if path.is_dir() {
        return Err(Failure::new(
            exit_code::CANT_CREATE,
            format!(
                "screenshot path {shown} is a directory: give a file name ending in .bmp or .png"
            ),
        ));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let probe = dir.join(format!(".seraph-v-probe-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(|e| {
        Failure::new(
            exit_code::CANT_CREATE,
            format!("cannot write the screenshot {shown}: {e} (choose another --screenshot or use --no-screenshot)"),
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The host's hypervisor: KVM on Linux.
#[cfg(target_os = "linux")]
fn open_hypervisor()
-> Result<seraph_hypervisor::kvm::KvmHypervisor, seraph_hypervisor::HypervisorError> {
    seraph_hypervisor::kvm::KvmHypervisor::new()
}

/// The host's hypervisor: the Windows Hypervisor Platform on Windows.
#[cfg(windows)]
fn open_hypervisor()
-> Result<seraph_hypervisor::whp::WhpHypervisor, seraph_hypervisor::HypervisorError> {
    seraph_hypervisor::whp::WhpHypervisor::new()
}

fn config_from(args: &Args) -> MachineConfig {
    MachineConfig {
        memory_size: args.memory,
        framebuffer_width: args.framebuffer.0,
        framebuffer_height: args.framebuffer.1,
        serial: match &args.serial {
            SerialArg::Stdio => SerialSink::Stdout,
            SerialArg::File(p) => SerialSink::File(p.clone()),
            SerialArg::None => SerialSink::None,
        },
        print_to_stdout: true,
        timeout: args.timeout,
        debug: args.debug,
        idle_hlts: args.idle_hlts,
        map_heap: args.map_heap,
        timing: args.stats,
        ..MachineConfig::default()
    }
}

fn run() -> Result<i32, Failure> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(f) if f.code == 0 => return Ok(0),
        Err(f) => return Err(f),
    };
    let config = config_from(&args);
    config.validate()?;
    let kernel = read_kernel(args.kernel.as_deref(), args.memory)?;
    if !args.no_screenshot {
        check_screenshot_path(&args.screenshot)?;
    }
    let hypervisor = open_hypervisor().map_err(|e| Failure::from(VmmError::from(e)))?;
    let mut machine = Machine::new(&hypervisor, config, &kernel)?;
    let _ctrl_c = interrupt::on_ctrl_c(machine.stop_handle());
    let report = machine.run()?;

    // One write for the report line (stderr is unbuffered).
    let line = format!("seraph-v: {}\n", report.outcome);
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    if args.stats {
        eprint!("{}", report.stats);
    }
    if args.ascii || !args.no_screenshot {
        write_framebuffer_outputs(&args, &machine)?;
    }
    Ok(report.exit_code())
}

/// The `--ascii` preview and the screenshot. The 3 MiB framebuffer is
/// copied out of guest memory only if the guest touched it: a guest that
/// never drew gets its black screenshot written without a copy.
fn write_framebuffer_outputs<H: seraph_hypervisor::Hypervisor>(
    args: &Args,
    machine: &Machine<H>,
) -> Result<(), Failure> {
    let geometry = machine.framebuffer_geometry();
    let saving = |e: seraph_framebuffer::FramebufferError| {
        Failure::new(
            exit_code::CANT_CREATE,
            format!("saving the screenshot: {e}"),
        )
    };
    if !args.ascii && machine.framebuffer_untouched() {
        seraph_framebuffer::save_black_screenshot(&args.screenshot, geometry).map_err(saving)?;
        return Ok(());
    }
    let pixels = machine.framebuffer()?;
    if args.ascii {
        print!(
            "{}",
            seraph_framebuffer::ascii_preview(&pixels, geometry, 80)
        );
    }
    if !args.no_screenshot {
        seraph_framebuffer::save_screenshot(&args.screenshot, &pixels, geometry).map_err(saving)?;
    }
    Ok(())
}
