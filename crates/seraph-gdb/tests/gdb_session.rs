//! The real `gdb` (Debian package `gdb`) in batch mode against the fake
//! guest: the session a kernel developer runs. These tests fail, not
//! skip, when gdb is missing.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use seraph_gdb::SessionEnd;

#[test]
fn kernel_developer_session_from_entry_to_exit() {
    let (addr, server) = start(FakeTarget::new(Ending::Exit));
    let skip_to = ENTRY + 15 * INSN;
    let out = gdb(
        addr,
        &[
            "p/x $pc".into(),
            format!("hbreak *{FUNC:#x}"),
            "continue".into(),
            "p/x $rip".into(),
            "info registers cr3".into(),
            "p/x $cr3".into(),
            "p/x $efer".into(),
            "p/x $cr0".into(),
            "p/x $fs_base".into(),
            "p/x $gs_base".into(),
            "p/x $cs".into(),
            format!("x/s {GREETING:#x}"),
            "stepi".into(),
            "p/x $rip".into(),
            format!("set var *(long *){COUNTER:#x} = 41"),
            format!("p *(long *){COUNTER:#x}"),
            format!("set $rip = {skip_to:#x}"),
            "p/x $rip".into(),
            "delete".into(),
            format!("watch *(long *){COUNTER:#x}"),
            "continue".into(),
            "p/x $rip".into(),
            "delete".into(),
            "continue".into(),
        ],
    );
    // Stopped at the entry point.
    has(&out, &format!("$1 = {ENTRY:#x}"));
    // The hardware breakpoint is hit.
    has(
        &out,
        &format!("Hardware assisted breakpoint 1 at {FUNC:#x}"),
    );
    has(&out, &format!("Breakpoint 1, {FUNC:#x} in ?? ()"));
    has(&out, &format!("$2 = {FUNC:#x}"));
    // System registers, from the target description.
    assert!(
        out.lines()
            .any(|l| l.starts_with("cr3 ") && l.contains(&format!("{CR3:#x}"))),
        "info registers cr3"
    );
    has(&out, &format!("$3 = {CR3:#x}"));
    has(&out, "$4 = 0xd01");
    has(&out, "$5 = 0x80000011");
    has(&out, "$6 = 0x12345678");
    has(&out, "$7 = 0xffff800000001000");
    has(&out, "$8 = 0x8");
    // A string in guest memory.
    has(&out, &format!("{GREETING:#x}:\t\"{GREETING_TEXT}\""));
    // One instruction stepped.
    has(&out, &format!("$9 = {:#x}", FUNC + INSN));
    // A variable and RIP written.
    has(&out, "$10 = 41");
    has(&out, &format!("$11 = {skip_to:#x}"));
    // The watchpoint fires on the guest's write.
    has(
        &out,
        &format!("Hardware watchpoint 2: *(long *){COUNTER:#x}"),
    );
    before(&out, "Old value = 41", "New value = 42");
    has(
        &out,
        &format!("$12 = {:#x}", ENTRY + (BUMP_INDEX + 1) * INSN),
    );
    // The guest's EXIT reaches gdb (the status in octal, as gdb prints it).
    has(&out, "[Inferior 1 (process 1) exited with code 052]");
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Exited(42));
    assert_eq!(fake.counter(), 42);
}

#[test]
fn break_uses_hardware_slots_and_explains_when_they_run_out() {
    let (addr, server) = start(FakeTarget::new(Ending::TripleFault));
    let mut commands: Vec<String> = (0..5)
        .map(|i| format!("break *{:#x}", FUNC + i * INSN))
        .collect();
    commands.extend([
        "continue".into(),
        "p/x $pc".into(),
        "delete 5".into(),
        "continue".into(),
        "p/x $pc".into(),
        "delete".into(),
        "continue".into(),
    ]);
    let out = gdb(addr, &commands);
    // Five `break`s, four slots: the resume is refused with the reason.
    has(
        &out,
        "seraph-v: no free hardware slot for a `break` breakpoint",
    );
    has(&out, "use `hbreak`");
    has(&out, &format!("Not inserted: {:#x}.", FUNC + 4 * INSN));
    has(&out, "Program stopped.");
    has(&out, &format!("$1 = {ENTRY:#x}"));
    // With one deleted, the four others (in hardware slots) work.
    has(&out, &format!("Breakpoint 1, {FUNC:#x} in ?? ()"));
    has(&out, &format!("$2 = {FUNC:#x}"));
    // A triple fault ends the program with a signal.
    has(&out, "Program terminated with signal SIGSEGV");
    let (_, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Terminated(11));
}

#[test]
fn detach_lets_the_guest_run_on_and_kill_ends_it() {
    let (addr, server) = start(FakeTarget::new(Ending::Spin));
    let out = gdb(
        addr,
        &[
            format!("hbreak *{FUNC:#x}"),
            format!("awatch *(long *){COUNTER:#x}"),
            "continue".into(),
            "detach".into(),
        ],
    );
    has(&out, &format!("Breakpoint 1, {FUNC:#x}"));
    has(&out, "[Inferior 1 (process 1) detached]");
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Detached);
    assert!(fake.detached && !fake.killed);
    assert_eq!(fake.debug, Default::default(), "no breakpoints left behind");

    let (addr, server) = start(FakeTarget::new(Ending::Spin));
    let out = gdb(addr, &["stepi".into(), "kill".into()]);
    // gdb does not wait for a reply to `k`: the server closes the connection.
    assert!(
        out.contains("[Inferior 1 (process 1) killed]") || out.contains("Remote connection closed"),
        "gdb saw the kill"
    );
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Killed);
    assert!(fake.killed);
}

#[test]
fn ctrl_c_in_gdb_stops_the_running_guest() {
    let fake = FakeTarget::new(Ending::Spin);
    let resumed = fake.resumed.clone();
    let (addr, server) = start(fake);
    let mut args: Vec<String> = ["-batch", "-nx"].map(String::from).to_vec();
    for c in [
        "set architecture i386:x86-64".to_string(),
        format!("target remote {addr}"),
        "continue".into(),
        "p/x $pc".into(),
        "detach".into(),
    ] {
        args.push("-ex".into());
        args.push(c);
    }
    let child = Command::new("gdb")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run gdb ({e}): install it (Debian package `gdb`)"));
    // A watchdog: a hung gdb fails the test rather than hanging it.
    let pid = child.id().to_string();
    let watchdog_pid = pid.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(u64::from(GDB_TIMEOUT_SECS)));
        let _ = Command::new("kill").args(["-KILL", &watchdog_pid]).status();
    });
    // Once the guest runs, Ctrl-C (SIGINT) the gdb process, as a user would.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !resumed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "gdb never continued the guest");
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200));
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
    assert!(status.success());
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("gdb: {e}"));
    let out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("--- gdb output ---\n{out}\n---");
    has(&out, "Program received signal SIGINT, Interrupt.");
    has(&out, &format!("$1 = {:#x}", ENTRY + EXIT_INDEX * INSN));
    has(&out, "[Inferior 1 (process 1) detached]");
    let (fake, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Detached);
    assert!(fake.detached);
}

/// The fake guest's layout as an ELF with symbols (`_start`, `kmain`,
/// `counter`, `banner`), assembled and linked with binutils (which the
/// workspace needs for its test kernels anyway).
fn fake_kernel_elf() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("seraph-gdb-fake-kernel");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let source = format!(
        "    .section .text, \"ax\"
    .globl _start, kmain
    .type _start, @function
_start:
    .skip {func_off:#x}, 0x90
    .size _start, {func_off:#x}
    .type kmain, @function
kmain:
    .skip 0x100, 0x90
    .size kmain, 0x100
    .section .data, \"aw\"
    .globl counter, banner
    .type counter, @object
counter:
    .quad {COUNTER_START}
    .size counter, 8
    .skip {banner_off:#x}
    .type banner, @object
banner:
    .asciz \"{GREETING_TEXT}\"
",
        func_off = FUNC - ENTRY,
        banner_off = GREETING - COUNTER - 8,
    );
    let script = format!(
        "ENTRY(_start)\nSECTIONS {{\n  .text {ENTRY:#x} : {{ *(.text) }}\n  .data {COUNTER:#x} : {{ *(.data) }}\n}}\n"
    );
    let (src, lds, obj, elf) = (
        dir.join("fake.S"),
        dir.join("fake.ld"),
        dir.join("fake.o"),
        dir.join("fake.elf"),
    );
    std::fs::write(&src, source).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    std::fs::write(&lds, script).unwrap_or_else(|e| panic!("{}: {e}", lds.display()));
    let run = |cmd: &mut Command| {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e} (binutils needed)"));
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("as").arg("--64").arg("-o").arg(&obj).arg(&src));
    run(Command::new("ld")
        .args(["-m", "elf_x86_64", "-nostdlib", "-T"])
        .arg(&lds)
        .arg("-o")
        .arg(&elf)
        .arg(&obj));
    elf
}

#[test]
fn a_kernel_elf_gives_gdb_the_symbols() {
    let elf = fake_kernel_elf();
    let (addr, server) = start(FakeTarget::new(Ending::Exit));
    let out = gdb_with_file(
        addr,
        Some(&elf),
        &[
            "hbreak kmain".into(),
            "continue".into(),
            "x/s &banner".into(),
            "p (long)counter".into(),
            "set var *(long *)&counter = 41".into(),
            "watch *(long *)&counter".into(),
            "continue".into(),
            "delete".into(),
            "continue".into(),
        ],
    );
    has(
        &out,
        &format!("Hardware assisted breakpoint 1 at {FUNC:#x}"),
    );
    has(&out, &format!("Breakpoint 1, {FUNC:#x} in kmain ()"));
    has(&out, &format!("{GREETING:#x}:\t\"{GREETING_TEXT}\""));
    has(&out, &format!("$1 = {COUNTER_START}"));
    before(&out, "Old value = 41", "New value = 42");
    has(&out, "[Inferior 1 (process 1) exited with code 052]");
    let (_, end) = finish(server);
    assert_eq!(end.unwrap(), SessionEnd::Exited(42));
}
