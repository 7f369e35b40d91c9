//! gdbstub's `Target` over a [`DebugTarget`]: register and memory access,
//! resume and step, and the four hardware slots shared by `hbreak`,
//! `break` (which falls back to a free hardware slot) and watchpoints.

use gdbstub::common::Signal;
use gdbstub::stub::SingleThreadStopReason;
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint as GdbHwBreakpoint, HwBreakpointOps, HwWatchpoint,
    HwWatchpointOps, SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use seraph_hypervisor::{GuestDebug, HwBreakKind, HwBreakpoint};

use crate::arch::{GdbRegId, GdbRegs, Reg, SeraphX86_64, le_value};
use crate::target::{DebugError, DebugTarget, ResumeMode, SLOTS, StopEvent};

/// Guest pages are 4 KiB: memory requests are split at page boundaries.
const PAGE: u64 = 4096;

/// Who asked for a hardware slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `hbreak` (Z1).
    Hardware,
    /// `break` (Z0), placed in a hardware slot.
    Software,
    /// `watch` / `awatch` (Z2 / Z4); the request's address and length.
    Watch {
        addr: u64,
        len: u64,
        kind: WatchKind,
    },
}

/// One used hardware slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub bp: HwBreakpoint,
    pub origin: Origin,
}

/// The message gdb gets when `break` finds no free hardware slot.
pub(crate) const NO_SLOT_FOR_BREAK: &str = "seraph-v: no free hardware slot for a `break` \
    breakpoint: this host cannot run int3 in a ring-0 guest, so `break` takes one of the 4 \
    hardware slots (DR0-DR3), shared with `hbreak`, `watch` and `awatch`. Delete some \
    (`info breakpoints`, `delete N`) and use `hbreak` for the ones you keep";

/// At most this many `break` requests wait without a slot.
const MAX_UNARMED: usize = 64;

/// The message gdb gets for `rwatch`.
pub(crate) const NO_READ_WATCH: &str =
    "seraph-v: read-only watchpoints are not supported by x86 debug registers; use `awatch`";

/// gdbstub's target: the debug target plus the slot table.
pub(crate) struct Adapter<'a> {
    pub target: &'a mut dyn DebugTarget,
    pub slots: [Option<Slot>; SLOTS],
    /// `break` addresses that found no free hardware slot: while there are
    /// any, a resume does not run the guest but stops with an explanation.
    pub unarmed: Vec<u64>,
    /// Set by a resume refused for `unarmed` breakpoints: the explanation
    /// for the server to print in gdb before it reports the stop.
    pub blocked: Option<String>,
}

fn nonfatal(e: DebugError) -> TargetError<DebugError> {
    match e {
        DebugError::Gone => TargetError::Fatal(DebugError::Gone),
        other => TargetError::Errno(other.errno()),
    }
}

impl<'a> Adapter<'a> {
    /// A new adapter with no slots in use.
    pub fn new(target: &'a mut dyn DebugTarget) -> Adapter<'a> {
        Adapter {
            target,
            slots: [None; SLOTS],
            unarmed: Vec::new(),
            blocked: None,
        }
    }

    /// The guest-debug configuration for the current slots.
    pub fn guest_debug(&self, single_step: bool) -> GuestDebug {
        let mut hw = [None; SLOTS];
        for (out, slot) in hw.iter_mut().zip(self.slots.iter()) {
            *out = slot.map(|s| s.bp);
        }
        GuestDebug {
            enabled: true,
            single_step,
            software_breakpoints: false,
            hw,
        }
    }

    /// If `packet` (framed) asks for something this adapter refuses, the
    /// message that says why (`rwatch`).
    pub fn refuse(&self, packet: &[u8]) -> Option<&'static str> {
        packet.starts_with(b"$Z3,").then_some(NO_READ_WATCH)
    }

    fn free_slots(&self) -> usize {
        self.slots.iter().filter(|s| s.is_none()).count()
    }

    fn take_slot(&mut self, slot: Slot) -> bool {
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(free) => {
                *free = Some(slot);
                true
            }
            None => false,
        }
    }

    fn release(&mut self, keep: impl Fn(&Slot) -> bool) -> bool {
        let mut found = false;
        for s in self.slots.iter_mut() {
            if let Some(slot) = s {
                if !keep(slot) {
                    *s = None;
                    found = true;
                }
            }
        }
        found
    }

    fn add_exec(&mut self, addr: u64, origin: Origin) -> bool {
        let bp = HwBreakpoint {
            addr,
            kind: HwBreakKind::Execute,
            len: 1,
        };
        self.take_slot(Slot { bp, origin })
    }

    /// Converts a target stop event into gdbstub's stop reason.
    pub fn stop_reason(&mut self, event: StopEvent) -> SingleThreadStopReason<u64> {
        match event {
            StopEvent::Breakpoint => {
                let rip = self.target.read_registers().map(|s| s.regs.rip).ok();
                let software = self
                    .slots
                    .iter()
                    .flatten()
                    .any(|s| s.origin == Origin::Software && Some(s.bp.addr) == rip);
                if software {
                    SingleThreadStopReason::SwBreak(())
                } else {
                    SingleThreadStopReason::HwBreak(())
                }
            }
            StopEvent::Watchpoint { addr, kind } => {
                let kind = self
                    .slots
                    .iter()
                    .flatten()
                    .find_map(|s| match s.origin {
                        Origin::Watch { addr: a, len, kind } if addr >= a && addr - a < len => {
                            Some(kind)
                        }
                        _ => None,
                    })
                    .unwrap_or(match kind {
                        HwBreakKind::Write => WatchKind::Write,
                        _ => WatchKind::ReadWrite,
                    });
                SingleThreadStopReason::Watch {
                    tid: (),
                    kind,
                    addr,
                }
            }
            StopEvent::Step => SingleThreadStopReason::DoneStep,
            StopEvent::Interrupted => SingleThreadStopReason::Signal(Signal::SIGINT),
            StopEvent::Exited(code) => SingleThreadStopReason::Exited(code),
            StopEvent::Terminated(reason) => {
                SingleThreadStopReason::Terminated(Signal(reason.signal()))
            }
        }
    }

    fn go(&mut self, mode: ResumeMode) -> Result<(), DebugError> {
        if !self.unarmed.is_empty() {
            let list: Vec<String> = self.unarmed.iter().map(|a| format!("{a:#x}")).collect();
            self.blocked = Some(format!(
                "{NO_SLOT_FOR_BREAK}. Not inserted: {}. The guest did not run.\n",
                list.join(", ")
            ));
            return Ok(());
        }
        let debug = self.guest_debug(mode == ResumeMode::Step);
        self.target.set_guest_debug(&debug)?;
        self.target.resume(mode)
    }
}

/// Splits `addr..addr+len` into naturally aligned pieces of 1, 2, 4 or 8 bytes.
pub(crate) fn watch_pieces(addr: u64, len: u64) -> Option<Vec<(u64, u8)>> {
    let mut pieces = Vec::new();
    let mut at = addr;
    let end = addr.checked_add(len)?;
    while at < end {
        let size = [8u64, 4, 2, 1]
            .into_iter()
            .find(|&s| at % s == 0 && at.checked_add(s).is_some_and(|e| e <= end))?;
        pieces.push((at, size as u8));
        if pieces.len() > SLOTS {
            return None;
        }
        at += size;
    }
    Some(pieces)
}

impl Target for Adapter<'_> {
    type Arch = SeraphX86_64;
    type Error = DebugError;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadBase for Adapter<'_> {
    fn read_registers(&mut self, regs: &mut GdbRegs) -> TargetResult<(), Self> {
        regs.state = self.target.read_registers().map_err(nonfatal)?;
        Ok(())
    }

    fn write_registers(&mut self, regs: &GdbRegs) -> TargetResult<(), Self> {
        let mut state = self.target.read_registers().map_err(nonfatal)?;
        let new = &regs.state;
        let selectors = |s: &seraph_hypervisor::SpecialRegs| {
            [s.cs, s.ss, s.ds, s.es, s.fs, s.gs].map(|seg| seg.selector)
        };
        if selectors(&state.sregs) != selectors(&new.sregs) {
            return Err(TargetError::Errno(22));
        }
        let rflags = new.regs.rflags;
        state.regs = new.regs;
        state.regs.rflags = rflags | 0b10;
        state.sregs.fs.base = new.sregs.fs.base;
        state.sregs.gs.base = new.sregs.gs.base;
        state.sregs.cr0 = new.sregs.cr0;
        state.sregs.cr2 = new.sregs.cr2;
        state.sregs.cr3 = new.sregs.cr3;
        state.sregs.cr4 = new.sregs.cr4;
        state.sregs.cr8 = new.sregs.cr8;
        state.sregs.efer = new.sregs.efer;
        self.target.write_registers(&state).map_err(nonfatal)
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, (), Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        let mut done = 0usize;
        while done < data.len() {
            let Some(addr) = start.checked_add(done as u64) else {
                break;
            };
            let in_page = (PAGE - addr % PAGE) as usize;
            let n = in_page.min(data.len() - done);
            let Some(chunk) = data.get_mut(done..done + n) else {
                break;
            };
            match self.target.read_memory(addr, chunk) {
                Ok(()) => done += n,
                Err(DebugError::Gone) => return Err(TargetError::Fatal(DebugError::Gone)),
                Err(e) if done == 0 => return Err(nonfatal(e)),
                Err(_) => break,
            }
        }
        if done == 0 && !data.is_empty() {
            return Err(TargetError::Errno(14));
        }
        Ok(done)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        let mut done = 0usize;
        while done < data.len() {
            let addr = start
                .checked_add(done as u64)
                .ok_or(TargetError::Errno(14))?;
            let in_page = (PAGE - addr % PAGE) as usize;
            let n = in_page.min(data.len() - done);
            let chunk = data.get(done..done + n).ok_or(TargetError::Errno(14))?;
            self.target.write_memory(addr, chunk).map_err(nonfatal)?;
            done += n;
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<()> for Adapter<'_> {
    fn read_register(&mut self, _: (), reg: GdbRegId, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let state = self.target.read_registers().map_err(nonfatal)?;
        let size = reg.0.size();
        match reg.0.get(&state) {
            Some(v) => {
                let bytes = v.to_le_bytes();
                let src = bytes.get(..size).ok_or(TargetError::Errno(22))?;
                let dst = buf.get_mut(..size).ok_or(TargetError::Errno(22))?;
                dst.copy_from_slice(src);
                Ok(size)
            }
            None => Ok(0),
        }
    }

    fn write_register(&mut self, _: (), reg: GdbRegId, val: &[u8]) -> TargetResult<(), Self> {
        if val.len() != reg.0.size() {
            return Err(TargetError::Errno(22));
        }
        if let Reg::Unavailable(_) = reg.0 {
            return Err(TargetError::Errno(22));
        }
        let value = le_value(val).ok_or(TargetError::Errno(22))?;
        let mut state = self.target.read_registers().map_err(nonfatal)?;
        reg.0
            .set(&mut state, value)
            .map_err(|_| TargetError::Errno(22))?;
        self.target.write_registers(&state).map_err(nonfatal)
    }
}

impl SingleThreadResume for Adapter<'_> {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), DebugError> {
        self.go(ResumeMode::Continue)
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for Adapter<'_> {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), DebugError> {
        self.go(ResumeMode::Step)
    }
}

impl Breakpoints for Adapter<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for Adapter<'_> {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if self.add_exec(addr, Origin::Software) {
            return Ok(true);
        }
        // No slot: accepted, so that gdb does not fall back to writing int3
        // into memory, but the next resume explains and stops instead.
        if !self.unarmed.contains(&addr) {
            if self.unarmed.len() >= MAX_UNARMED {
                return Err(TargetError::Errno(28)); // ENOSPC
            }
            self.unarmed.push(addr);
        }
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let before = self.unarmed.len();
        self.unarmed.retain(|&a| a != addr);
        let released = self.release(|s| !(s.origin == Origin::Software && s.bp.addr == addr));
        Ok(released || self.unarmed.len() != before)
    }
}

impl GdbHwBreakpoint for Adapter<'_> {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_exec(addr, Origin::Hardware))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.release(|s| !(s.origin == Origin::Hardware && s.bp.addr == addr)))
    }
}

impl HwWatchpoint for Adapter<'_> {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let hw_kind = match kind {
            WatchKind::Write => HwBreakKind::Write,
            WatchKind::ReadWrite => HwBreakKind::ReadWrite,
            // Refused with an explanation before it gets here (`refuse`).
            WatchKind::Read => return Ok(false),
        };
        let Some(pieces) = watch_pieces(addr, len) else {
            return Ok(false);
        };
        if pieces.is_empty() || pieces.len() > self.free_slots() {
            return Ok(false);
        }
        let origin = Origin::Watch { addr, len, kind };
        for (at, size) in pieces {
            let bp = HwBreakpoint {
                addr: at,
                kind: hw_kind,
                len: size,
            };
            self.take_slot(Slot { bp, origin });
        }
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let origin = Origin::Watch { addr, len, kind };
        Ok(self.release(|s| s.origin != origin))
    }
}

#[cfg(test)]
mod tests {
    use super::watch_pieces;

    #[test]
    fn watch_ranges_split_into_aligned_pieces() {
        assert_eq!(watch_pieces(0x1000, 8), Some(vec![(0x1000, 8)]));
        assert_eq!(watch_pieces(0x1004, 4), Some(vec![(0x1004, 4)]));
        assert_eq!(
            watch_pieces(0x1001, 7),
            Some(vec![(0x1001, 1), (0x1002, 2), (0x1004, 4)])
        );
        // More pieces than slots, or a wrapping range: refused.
        assert_eq!(watch_pieces(0x1001, 64), None);
        assert_eq!(watch_pieces(u64::MAX, 2), None);
        assert_eq!(watch_pieces(0x1000, 0), Some(vec![]));
    }
}
