//! `seraph-v`: boot a Seraph OS (or other small x86_64) kernel on KVM.
//!
//! A thin front end over `seraph-vmm`: parse arguments, load the kernel,
//! check the outputs, run the machine, print the report line, save the
//! screenshot, and exit with the documented code for how the run ended.

mod args;
mod kernel;
mod out;
mod paths;
mod signals;
#[cfg(unix)]
mod terminal;

use std::process::ExitCode;

use clap::Parser;
use seraph_vmm::framebuffer::{FRAMEBUFFER_WINDOW, Geometry, PixelFormat};
use seraph_vmm::{Machine, MachineConfig, RunOutcome, SerialSink, VmmError, exit_code};

use crate::args::{Args, SerialArg};
use crate::signals::Signals;

/// Exit code: a thread (or another operating-system resource) the CLI
/// needs could not be created (sysexits' EX_OSERR).
pub const OS_ERROR: i32 = 71;

/// A failure before or after the run: a one-line message and an exit code.
pub struct Failure {
    message: String,
    code: i32,
}

impl Failure {
    /// A failure with `code` and a one-line `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
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
            out::report(&format!("error: {}", failure.message));
            failure.code
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}

/// The arguments, or `Ok(None)` after printing help or the version.
fn parse_args() -> Result<Option<Args>, Failure> {
    match Args::try_parse() {
        Ok(args) if args.net_capture.is_some() && args.net.is_empty() => Err(Failure::new(
            exit_code::USAGE,
            "--net-capture needs at least one --net card (see seraph-v --help)".to_string(),
        )),
        Ok(args) => Ok(Some(args)),
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // Best effort, like every report: `--help >/dev/full` is still 0.
                out::stdout(&e.render().to_string());
                return Ok(None);
            }
            let rendered = e.to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            Err(Failure::new(
                exit_code::USAGE,
                format!("{first} (see seraph-v --help)"),
            ))
        }
    }
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
        idle_hlts: args.idle_hlts.unwrap_or(100),
        idle_hlts_explicit: args.idle_hlts.is_some(),
        stdin: match args.serial {
            SerialArg::Stdio if stdin_is_dev_null() => None,
            SerialArg::Stdio => {
                use std::io::IsTerminal;
                let tty = std::io::stdin().is_terminal();
                Some(seraph_vmm::io::StdinOptions {
                    escapes: tty,
                    interactive: tty,
                })
            }
            _ => None,
        },
        map_heap: args.map_heap,
        timing: args.stats,
        disk: args.disk.clone(),
        display: args.display,
        boot: args.boot,
        cmdline: args.cmdline.clone(),
        net: args.net.clone(),
        net_capture: args.net_capture.clone(),
        ..MachineConfig::default()
    }
}

/// True if stdin is /dev/null: it can never deliver a byte, so no reader
/// thread is started for it (a thread and a wake-up at its EOF saved on
/// every scripted run, e.g. CI or the benchmark).
#[cfg(unix)]
fn stdin_is_dev_null() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return false;
    };
    let (Ok(stdin), Ok(null)) = (
        std::fs::File::from(fd).metadata(),
        std::fs::metadata("/dev/null"),
    ) else {
        return false;
    };
    stdin.file_type().is_char_device() && stdin.rdev() == null.rdev()
}

/// Windows: stdin is always read.
#[cfg(not(unix))]
fn stdin_is_dev_null() -> bool {
    false
}

/// Checks the configuration before anything is read or created: memory
/// (with a suggestion that is itself valid) and the framebuffer size (with
/// exact byte counts).
fn check_config(config: &MachineConfig) -> Result<(), Failure> {
    const TWO_MIB: u64 = 2 << 20;
    /// 4 GiB in 2 MiB steps: further than any valid size can be.
    const MAX_SUGGESTION_STEPS: u64 = 2048;
    let memory = config.memory_size;
    let valid = |size: u64| {
        MachineConfig {
            memory_size: size,
            ..config.clone()
        }
        .validate()
        .is_ok()
    };
    if memory % TWO_MIB != 0 {
        // The nearest size that is valid in every respect (aligned, not too
        // small, not over the limit): 3073M suggests 3072M, not 3074M.
        // Sizes far beyond the limit search down from 4 GiB.
        let down = (memory / TWO_MIB * TWO_MIB).min(4 << 30);
        let nearest = (0..=MAX_SUGGESTION_STEPS)
            .flat_map(|k| {
                let up = down.checked_add((k + 1) * TWO_MIB);
                let below = down.checked_sub(k * TWO_MIB);
                [up, below]
            })
            .flatten()
            .find(|&m| valid(m));
        let hint = match nearest {
            Some(m) => format!(": use e.g. --memory {}M", m >> 20),
            None => String::new(),
        };
        return Err(Failure::new(
            exit_code::CONFIG,
            format!("guest memory: {memory} bytes is not a multiple of 2 MiB{hint}"),
        ));
    }
    config.validate()?;
    let (width, height) = (config.framebuffer_width, config.framebuffer_height);
    Geometry::packed(width, height, PixelFormat::Bgra8, FRAMEBUFFER_WINDOW)
        .map_err(|e| Failure::from(VmmError::from(e)))?;
    Ok(())
}

fn run() -> Result<i32, Failure> {
    let Some(args) = parse_args()? else {
        return Ok(0);
    };
    let config = config_from(&args);
    check_config(&config)?;
    // First of all threads: without it, Ctrl-C, SIGTERM and SIGHUP would
    // lose the report, so a thread limit is an error, not a silent default.
    let signals = Signals::install().map_err(|e| {
        Failure::new(
            OS_ERROR,
            format!("cannot start the signal-watcher thread: {e} (is a process or thread limit such as ulimit -u reached?)"),
        )
    })?;
    let kernel = kernel::read_kernel(args.kernel.as_deref(), args.memory)?;
    let config = MachineConfig {
        initrd: match &args.initrd {
            Some(path) => Some(kernel::read_initrd(path, args.memory)?),
            None => None,
        },
        ..config
    };
    let serial_path = match &args.serial {
        SerialArg::File(p) => Some(p.as_path()),
        _ => None,
    };
    if let Some(p) = serial_path {
        paths::check_serial(p)?;
    }
    let screenshot = if args.no_screenshot {
        None
    } else {
        Some(paths::check_screenshot(&args.screenshot)?)
    };
    paths::check_no_clobber(
        args.kernel.as_deref(),
        serial_path,
        screenshot.as_deref(),
        args.net_capture.as_deref(),
    )?;
    let new_outputs =
        paths::NewOutputs::of(serial_path.into_iter().chain(args.net_capture.as_deref()));
    let hypervisor = seraph_vmm::host_hypervisor().map_err(|e| Failure::from(VmmError::from(e)))?;
    #[cfg(unix)]
    let raw_terminal = (config.stdin.is_some()).then(terminal::RawTerminal::enter);
    let mut machine = Machine::new(&hypervisor, config, &kernel)?;
    signals.attach(machine.stop_handle());
    if let Some(url) = machine.display_url() {
        out::report(&format!("display on {url}"));
    }
    let _gdb = match args.gdb_addr() {
        Some(addr) => Some(start_gdb(
            &mut machine,
            addr,
            args.gdb_wait(),
            seraph_vmm::hypervisor::Hypervisor::data_breakpoints(&hypervisor),
        )?),
        None => None,
    };
    new_outputs.keep();
    let report = machine.run()?;
    #[cfg(unix)]
    drop(raw_terminal);

    let (line, code) = match (&report.outcome, signals.received()) {
        (RunOutcome::Interrupted, Some(signal)) => (signal.report().to_owned(), signal.exit_code()),
        (outcome, _) => (outcome.to_string(), report.exit_code()),
    };
    out::report(&line);
    if let Some(fault) = &report.fault {
        out::report(&format!("fault: {fault}"));
    }
    let code = output_problems(&report, code);
    if args.stats {
        out::stderr(&report.stats.to_string());
    }
    if args.ascii || !args.no_screenshot {
        write_framebuffer_outputs(&args, &machine)?;
    }
    Ok(code)
}

/// Binds the gdb server, says where to connect, and serves it on its own
/// thread; with `wait`, the vCPU holds at its first instruction until gdb
/// lets it go.
fn start_gdb<H: seraph_vmm::hypervisor::Hypervisor>(
    machine: &mut Machine<H>,
    addr: std::net::SocketAddr,
    wait: bool,
    hw_watchpoints: bool,
) -> Result<std::thread::JoinHandle<()>, Failure> {
    let stub = seraph_vmm::gdb::GdbStub::listen(addr)?;
    out::stderr(&format!(
        "{}\n",
        seraph_vmm::gdb_server::waiting_message(stub.local_addr())
    ));
    let (control, events) = machine.attach_control(wait);
    let target = seraph_vmm::gdb::VmmDebugTarget::new(
        control,
        events,
        machine.stop_handle(),
        hw_watchpoints,
    );
    Ok(stub.spawn(target)?)
}

/// Reports output that could not be written (a serial log on a full disk,
/// a reader too slow for the queue); a run that otherwise succeeded then
/// exits 73, any other code is kept.
fn output_problems(report: &seraph_vmm::RunReport, code: i32) -> i32 {
    let o = &report.output;
    if o.dropped > 0 {
        out::report(&format!(
            "warning: {} bytes of guest output dropped: stdout or the serial log did not keep up",
            o.dropped
        ));
    }
    // A closed stdout (`| head`) is the reader's choice, not an error.
    let Some((bytes, error)) = &o.serial_log_failed else {
        return code;
    };
    out::report(&format!(
        "error: {bytes} bytes of the serial log could not be written ({error})"
    ));
    if code == 0 {
        exit_code::CANT_CREATE
    } else {
        code
    }
}

/// The `--ascii` preview and the screenshot. The 3 MiB framebuffer is
/// copied out of guest memory only if the guest touched it: a guest that
/// never drew gets its black screenshot written without a copy.
fn write_framebuffer_outputs<H: seraph_vmm::hypervisor::Hypervisor>(
    args: &Args,
    machine: &Machine<H>,
) -> Result<(), Failure> {
    let geometry = machine.framebuffer_geometry();
    let saving = |e: seraph_vmm::framebuffer::FramebufferError| {
        Failure::new(
            exit_code::CANT_CREATE,
            format!("saving the screenshot: {e}"),
        )
    };
    if !args.ascii && machine.framebuffer_untouched() {
        seraph_vmm::framebuffer::save_black_screenshot(&args.screenshot, geometry)
            .map_err(saving)?;
        return Ok(());
    }
    let pixels = machine.framebuffer()?;
    if args.ascii {
        out::stdout(&seraph_vmm::framebuffer::ascii_preview(
            &pixels, geometry, 80,
        ));
    }
    if !args.no_screenshot {
        seraph_vmm::framebuffer::save_screenshot(&args.screenshot, &pixels, geometry)
            .map_err(saving)?;
    }
    Ok(())
}
