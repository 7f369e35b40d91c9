//! Command lines for the contenders that boot the bench-hello guest in a
//! separate process: `seraph-v`, the `kvm-floor` program and QEMU microvm.

use std::path::{Path, PathBuf};

use crate::spawn::{Invocation, find_in_path};

/// The QEMU binary the peers column needs.
pub const QEMU: &str = "qemu-system-x86_64";

/// How to get QEMU when it is missing.
pub const QEMU_HINT: &str = "install it with scripts/setup.sh (Debian package qemu-system-x86)";

/// QEMU's arguments for the PC guests (the `pc.h` runtime, PVH entry):
/// `-M pc` with KVM, no display and no default devices, COM1 on stdio,
/// isa-debug-exit at 0xF4; add `-m`, devices and `-kernel`.
pub const QEMU_PC_ARGS: &[&str] = &[
    "-M",
    "pc",
    "-accel",
    "kvm",
    "-display",
    "none",
    "-nodefaults",
    "-no-user-config",
    "-serial",
    "stdio",
    "-no-reboot",
    "-device",
    "isa-debug-exit,iobase=0xf4,iosize=4",
];

/// The exit code QEMU gives for isa-debug-exit value `status`: `(status << 1) | 1`.
pub fn qemu_exit_code(status: u32) -> i32 {
    i32::try_from((status << 1) | 1).unwrap_or(i32::MAX)
}

/// `seraph-v <guest> --serial stdio` plus `--no-screenshot` or `--screenshot <shot>`.
pub fn seraph_v(binary: &Path, guest: &Path, screenshot: Option<&Path>) -> Invocation {
    let mut args = vec![
        guest.as_os_str().to_owned(),
        "--serial".into(),
        "stdio".into(),
    ];
    match screenshot {
        Some(path) => {
            args.push("--screenshot".into());
            args.push(path.as_os_str().to_owned());
        }
        None => args.push("--no-screenshot".into()),
    }
    Invocation::new(binary, args)
}

/// `seraph-v --boot pvh <pvh_guest> --serial stdio --no-screenshot`: the
/// file QEMU boots, through seraph-v's PVH loader.
pub fn seraph_v_pvh(binary: &Path, pvh_guest: &Path) -> Invocation {
    Invocation::new(
        binary,
        [
            "--boot".as_ref(),
            "pvh".as_ref(),
            pvh_guest.as_os_str(),
            "--serial".as_ref(),
            "stdio".as_ref(),
            "--no-screenshot".as_ref(),
        ],
    )
}

/// `kvm-floor <guest>`.
pub fn kvm_floor(binary: &Path, guest: &Path) -> Invocation {
    Invocation::new(binary, [guest.as_os_str()])
}

/// QEMU microvm booting the PVH twin with KVM, COM1 on stdout and
/// isa-debug-exit at 0xF4.
pub fn qemu_microvm(binary: &Path, pvh_guest: &Path) -> Invocation {
    let mut args: Vec<std::ffi::OsString> = [
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-M",
        "microvm,x-option-roms=off,isa-serial=on,rtc=off",
        "-accel",
        "kvm",
        "-m",
        "512M",
        "-serial",
        "stdio",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
        "-kernel",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    args.push(pvh_guest.as_os_str().to_owned());
    Invocation::new(binary, args)
}

/// Where QEMU is, if installed.
pub fn find_qemu() -> Option<PathBuf> {
    find_in_path(QEMU)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let s = seraph_v(Path::new("/b/seraph-v"), Path::new("/g/h.elf"), None);
        assert_eq!(
            s.shown(),
            "/b/seraph-v /g/h.elf --serial stdio --no-screenshot"
        );
        let s = seraph_v(
            Path::new("/b/seraph-v"),
            Path::new("/g/h.elf"),
            Some(Path::new("/t/s.bmp")),
        );
        assert_eq!(
            s.shown(),
            "/b/seraph-v /g/h.elf --serial stdio --screenshot /t/s.bmp"
        );
        let q = qemu_microvm(Path::new("qemu"), Path::new("p.elf"));
        assert!(q.shown().starts_with("qemu -nodefaults -no-user-config"));
        assert!(q.shown().ends_with("-accel kvm -m 512M -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel p.elf"));
        assert_eq!(kvm_floor(Path::new("f"), Path::new("g")).shown(), "f g");
        assert_eq!(
            seraph_v_pvh(Path::new("sv"), Path::new("p.elf")).shown(),
            "sv --boot pvh p.elf --serial stdio --no-screenshot"
        );
    }

    #[test]
    fn isa_debug_exit_codes() {
        assert_eq!(qemu_exit_code(5), 11);
        assert_eq!(qemu_exit_code(0), 1);
    }
}
