//! Command-line arguments and their parsers.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// What a guest that still uses plain VMCALL gets under KVM, for --help.
const AFTER_HELP: &str = "\
Hypercalls: guests call PRINT/EXIT/GET_TIME with RAX = number, args in RDI, RSI,
RDX, RCX, then `out 0xE4, eax` (announced in CPUID leaf 0x40000001). Under KVM a
plain `vmcall` never reaches seraph-v: KVM answers it itself (RAX = 1 returns 0,
other numbers return -1000) and the guest carries on.

Exit codes: the guest's EXIT status; 0 idle; 2 usage; 65 bad kernel; 66 unreadable
input; 69 no /dev/kvm; 70 internal error; 71 cannot create a thread; 73 cannot
write output; 78 bad configuration; 80 HLT with interrupts off; 81 triple fault;
82 emulation failure; 83 hypervisor failure; 124 timeout; 129 SIGHUP; 130 Ctrl-C;
143 SIGTERM. See docs/exit-codes.md.";

/// Boot a Seraph OS (or other small x86_64) kernel on KVM.
#[derive(Debug, Parser)]
#[command(name = "seraph-v", version, about, after_help = AFTER_HELP)]
pub struct Args {
    /// The kernel ELF to boot; without it, the bundled demo kernel boots.
    pub kernel: Option<PathBuf>,

    /// Guest RAM, e.g. 512M, 1G, 65536K (a multiple of 2 MiB, at most 3G).
    #[arg(short = 'm', long, value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    pub memory: u64,

    /// Framebuffer geometry in pixels, WIDTHxHEIGHT (must fit the 16 MiB window).
    #[arg(long, value_name = "WxH", default_value = "1024x768", value_parser = parse_geometry)]
    pub framebuffer: (u32, u32),

    /// Where to save the framebuffer at the end of the run (.png for PNG, else BMP).
    #[arg(long, value_name = "PATH", default_value = "seraph_framebuffer.bmp")]
    pub screenshot: PathBuf,

    /// Do not save a screenshot.
    #[arg(long, conflicts_with = "screenshot")]
    pub no_screenshot: bool,

    /// Where COM1 output goes: stdio (which also reads stdin into COM1; on a
    /// terminal, raw, with Ctrl-A x to quit), file:PATH or none.
    #[arg(long, value_name = "SINK", default_value = "stdio", value_parser = parse_serial)]
    pub serial: SerialArg,

    /// Stop the guest after this long, e.g. 30s, 500ms, 2m (at least 1ms, whole milliseconds; exit code 124).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Log every HLT and unhandled exit to stderr.
    #[arg(long)]
    pub debug: bool,

    /// Print a text preview of the framebuffer at the end.
    #[arg(long)]
    pub ascii: bool,

    /// Consecutive HLTs at one RIP that end the run as idle (default 100,
    /// applied only while no terminal, display or network is attached;
    /// given explicitly, it always applies).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub idle_hlts: Option<u32>,

    /// Print exit, device, interrupt and timing statistics at the end.
    #[arg(long)]
    pub stats: bool,

    /// Pre-map the kernel heap at PML4[384] (the original Seraph-V layout).
    #[arg(long)]
    pub map_heap: bool,

    /// An NVMe disk backed by a raw image (namespace 1; the file must exist
    /// and be a multiple of the LBA size; locked against a second writer).
    #[arg(long, value_name = "PATH[,readonly][,lba=512|4096]", value_parser = parse_disk)]
    pub disk: Option<seraph_vmm::nvme::DiskSpec>,

    /// An Aether NIC (Intel 82540EM-compatible) on a packet backend; give it
    /// once per card. dgram: each frame one UDP datagram (as QEMU's -netdev
    /// dgram); tap: a host TAP device, created if missing. Default MAC
    /// 02:53:45:52:00:01.
    #[arg(
        long,
        value_name = "dgram,local=ADDR:PORT,remote=ADDR:PORT[,mac=MAC] | tap,ifname=NAME[,mac=MAC]",
        value_parser = parse_net
    )]
    pub net: Vec<seraph_vmm::net::NetSpec>,

    /// Write every NIC frame, in and out, to a pcap file (tcpdump -r, Wireshark).
    #[arg(long, value_name = "PATH")]
    pub net_capture: Option<PathBuf>,

    /// Boot protocol: seraph, pvh or linux (default: detected from the image;
    /// an ELF with both a Seraph entry and a PVH note boots as Seraph).
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_boot)]
    pub boot: Option<seraph_vmm::boot::BootProtocol>,

    /// Kernel command line (PVH and Linux kernels).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub cmdline: String,

    /// Initial ramdisk (Linux) or module (PVH).
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,

    /// Show the screen and the console live in a browser, and type into the
    /// guest (PS/2 keyboard, COM1); prints the URL. Loopback and a free port
    /// unless an address is given. The run then never ends at idle.
    #[arg(long, value_name = "web[,addr=ADDR:PORT]", value_parser = parse_display)]
    pub display: Option<seraph_vmm::display_server::DisplaySpec>,

    /// Serve the GDB remote protocol on tcp:ADDR:PORT (loopback unless another address is given).
    #[arg(long, value_name = "tcp:ADDR:PORT", value_parser = parse_gdb)]
    pub gdb: Option<std::net::SocketAddr>,

    /// Shorthand for --gdb tcp:127.0.0.1:1234 (as QEMU's -s).
    #[arg(short = 's')]
    pub gdb_default: bool,

    /// Hold the vCPU at the kernel's first instruction until gdb continues.
    #[arg(long)]
    pub gdb_wait: bool,

    /// Shorthand for --gdb-wait (as QEMU's -S).
    #[arg(short = 'S')]
    pub gdb_wait_short: bool,
}

impl Args {
    /// Where the gdb server listens, if one was asked for (`-S` alone
    /// implies the default address, as `--gdb-wait` does).
    pub fn gdb_addr(&self) -> Option<std::net::SocketAddr> {
        self.gdb.or_else(|| {
            (self.gdb_default || self.gdb_wait())
                .then_some(seraph_vmm::gdb_server::DEFAULT_GDB_ADDR)
        })
    }

    /// True if the vCPU waits for gdb at the first instruction.
    pub fn gdb_wait(&self) -> bool {
        self.gdb_wait || self.gdb_wait_short
    }
}

/// Parses `--boot seraph|pvh|linux`.
pub fn parse_boot(text: &str) -> Result<seraph_vmm::boot::BootProtocol, String> {
    seraph_vmm::boot::BootProtocol::from_name(text)
        .ok_or_else(|| format!("`{text}` is not a boot protocol: use seraph, pvh or linux"))
}

/// Parses `--display web[,addr=ADDR:PORT]`.
pub fn parse_display(text: &str) -> Result<seraph_vmm::display_server::DisplaySpec, String> {
    seraph_vmm::display_server::parse_display_spec(text).map_err(|e| e.to_string())
}

/// Parses `--gdb tcp:ADDR:PORT`.
pub fn parse_gdb(text: &str) -> Result<std::net::SocketAddr, String> {
    seraph_vmm::gdb_server::parse_gdb_addr(text).map_err(|e| e.to_string())
}

/// The --serial choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialArg {
    /// The terminal.
    Stdio,
    /// A file.
    File(PathBuf),
    /// Nowhere.
    None,
}

/// Parses `--disk PATH[,readonly][,lba=512|4096]`.
pub fn parse_disk(text: &str) -> Result<seraph_vmm::nvme::DiskSpec, String> {
    seraph_vmm::nvme::DiskSpec::parse(text).map_err(|e| e.to_string())
}

/// Parses `--net dgram,local=ADDR:PORT,remote=ADDR:PORT[,mac=MAC]` or `tap,ifname=NAME[,mac=MAC]`.
pub fn parse_net(text: &str) -> Result<seraph_vmm::net::NetSpec, String> {
    seraph_vmm::net::NetSpec::parse(text).map_err(|e| e.to_string())
}

/// Parses sizes like `512M`, `1G`, `2048K`, `536870912` (binary units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err("expected a number with an optional unit K, M or G, e.g. 512M".into());
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{digits}` is too large"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        other => return Err(format!("unknown unit `{other}`: use K, M or G")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_geometry(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or("expected WIDTHxHEIGHT, e.g. 1024x768")?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("width `{w}` is not a number"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("height `{h}` is not a number"))?;
    if w == 0 || h == 0 {
        return Err("width and height must be at least 1".into());
    }
    Ok((w, h))
}

/// Parses `stdio`, `file:PATH` or `none`.
pub fn parse_serial(text: &str) -> Result<SerialArg, String> {
    match text {
        "stdio" => Ok(SerialArg::Stdio),
        "none" => Ok(SerialArg::None),
        _ => match text.strip_prefix("file:") {
            Some("") => Err("file: needs a path, e.g. file:serial.log".into()),
            Some(path) => Ok(SerialArg::File(PathBuf::from(path))),
            None => Err("expected stdio, file:PATH or none".into()),
        },
    }
}

/// The longest `--timeout`, in seconds.
const MAX_TIMEOUT_SECS: u64 = 1_000_000_000;

/// Parses durations like `30s`, `500ms`, `2m`, `1h`, `1.5` (seconds), exactly
/// (no floating point): the timeout has a resolution of one millisecond, so
/// it must be a whole number of milliseconds, at least 1 ms and at most 1e9 s.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let malformed = || "expected a duration such as 30s, 500ms or 2m".to_owned();
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let unit_ns: u128 = match unit {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" => 1_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => return Err(format!("unknown unit `{other}`: use ms, s, m or h")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let fraction = fraction.trim_end_matches('0');
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(malformed());
    }
    let too_long = || format!("the duration must be at most {MAX_TIMEOUT_SECS} seconds");
    // value = whole + fraction / 10^digits, so
    // ns = (whole * 10^digits + fraction) * unit_ns / 10^digits.
    let digits = u32::try_from(fraction.len()).map_err(|_| too_long())?;
    let scale = 10u128.checked_pow(digits).ok_or_else(too_long)?;
    let parse = |s: &str| -> Result<u128, String> {
        if s.is_empty() {
            Ok(0)
        } else {
            s.parse::<u128>().map_err(|_| too_long())
        }
    };
    let scaled = parse(whole)?
        .checked_mul(scale)
        .and_then(|w| w.checked_add(parse(fraction).ok()?))
        .and_then(|v| v.checked_mul(unit_ns))
        .ok_or_else(too_long)?;
    // With 33 or more fraction digits `scale * 10^6` overflows; no nonzero
    // value that fits is then a whole number of milliseconds.
    let whole_ms = scale
        .checked_mul(1_000_000)
        .is_some_and(|ms| scaled % ms == 0);
    let ns = scaled / scale;
    if scaled == 0 {
        return Err("the duration must be more than 0".into());
    }
    if ns < 1_000_000 {
        return Err("the duration must be at least 1ms".into());
    }
    if !whole_ms {
        return Err(
            "the timeout has a resolution of 1 ms: give a whole number of milliseconds".into(),
        );
    }
    if ns > u128::from(MAX_TIMEOUT_SECS) * 1_000_000_000 {
        return Err(too_long());
    }
    let ms = u64::try_from(ns / 1_000_000).map_err(|_| too_long())?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("2048KiB"), Ok(2 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("M").is_err());
        assert!(parse_size("12X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("99999999999999999999G").is_err());
        assert!(parse_size("17179869184G").is_err()); // overflows u64
    }

    #[test]
    fn geometries() {
        assert_eq!(parse_geometry("1024x768"), Ok((1024, 768)));
        assert_eq!(parse_geometry("640X480"), Ok((640, 480)));
        assert!(parse_geometry("1024").is_err());
        assert!(parse_geometry("0x768").is_err());
        assert!(parse_geometry("axb").is_err());
    }

    #[test]
    fn serial_sinks() {
        assert_eq!(parse_serial("stdio"), Ok(SerialArg::Stdio));
        assert_eq!(parse_serial("none"), Ok(SerialArg::None));
        assert_eq!(
            parse_serial("file:/tmp/x.log"),
            Ok(SerialArg::File("/tmp/x.log".into()))
        );
        assert!(parse_serial("file:").is_err());
        assert!(parse_serial("tcp:1234").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("1e99").is_err());
    }

    #[test]
    fn durations_are_exact_and_at_least_a_millisecond() {
        // Issue #14 item 14: 1us and 1e-10 s were accepted (reported as 0.000s).
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("0.3"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("0.001"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("1000us"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.50000"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.5m"), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_duration("1000000000"),
            Ok(Duration::from_secs(1_000_000_000))
        );
        for bad in ["1us", "0.0000000001", "999us", "0.0005"] {
            assert!(
                parse_duration(bad).unwrap_err().contains("at least 1ms"),
                "{bad}"
            );
        }
        assert!(parse_duration("1.0005").unwrap_err().contains("resolution"));
        assert!(parse_duration("1500us").unwrap_err().contains("resolution"));
        for bad in ["0", "0.000", "0ms"] {
            assert!(
                parse_duration(bad).unwrap_err().contains("more than 0"),
                "{bad}"
            );
        }
        for bad in [
            "1000000001",
            "99999999999999999999999999999999999999999h",
            "1.2.3",
            ".",
            "",
            "1..",
            "x",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration(&format!("1.{}1", "0".repeat(60))).is_err());
        // 33-38 fraction digits: the scale fits, the millisecond check must not overflow.
        for digits in 33..=38 {
            let tiny = format!("0.{}1", "0".repeat(digits - 1));
            assert!(parse_duration(&tiny).is_err(), "{tiny}");
            assert!(parse_duration(&format!("1{tiny}")).is_err(), "1{tiny}");
        }
    }
}
