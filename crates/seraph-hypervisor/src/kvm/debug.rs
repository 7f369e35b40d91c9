//! KVM guest debugging (KVM_SET_GUEST_DEBUG), vCPU events
//! (KVM_GET_VCPU_EVENTS) and address translation (KVM_TRANSLATE).

use kvm_bindings::{
    KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP, KVM_GUESTDBG_USE_SW_BP,
    kvm_guest_debug,
};
use kvm_ioctls::VcpuFd;

use super::call_err;
use crate::Result;
use crate::debug::{self, GuestDebug, PendingException, VcpuEvents};

/// Builds the KVM guest-debug request for `cfg`.
pub(crate) fn guest_debug_struct(cfg: &GuestDebug) -> kvm_guest_debug {
    let mut dbg = kvm_guest_debug::default();
    if !cfg.enabled {
        return dbg;
    }
    dbg.control = KVM_GUESTDBG_ENABLE;
    if cfg.single_step {
        dbg.control |= KVM_GUESTDBG_SINGLESTEP;
    }
    if cfg.software_breakpoints {
        dbg.control |= KVM_GUESTDBG_USE_SW_BP;
    }
    if cfg.hw.iter().any(Option::is_some) {
        dbg.control |= KVM_GUESTDBG_USE_HW_BP;
        for (slot, bp) in cfg.hw.iter().enumerate() {
            if let Some(bp) = bp {
                dbg.arch.debugreg[slot] = bp.addr;
            }
        }
        dbg.arch.debugreg[7] = debug::x86_dr7(&cfg.hw);
    }
    dbg
}

/// Applies `cfg` to the vCPU.
pub(super) fn set_guest_debug(fd: &VcpuFd, cfg: &GuestDebug) -> Result<()> {
    fd.set_guest_debug(&guest_debug_struct(cfg))
        .map_err(call_err("KVM_SET_GUEST_DEBUG"))
}

/// Reads the vCPU's exception/interrupt state.
pub(super) fn events(fd: &VcpuFd) -> Result<VcpuEvents> {
    let e = fd
        .get_vcpu_events()
        .map_err(call_err("KVM_GET_VCPU_EVENTS"))?;
    let exception =
        (e.exception.injected != 0 || e.exception.pending != 0).then_some(PendingException {
            vector: e.exception.nr,
            error_code: (e.exception.has_error_code != 0).then_some(e.exception.error_code),
            injected: e.exception.injected != 0,
        });
    Ok(VcpuEvents {
        exception,
        interrupt: (e.interrupt.injected != 0).then_some(e.interrupt.nr),
        nmi_pending: e.nmi.pending != 0,
        interrupt_shadow: e.interrupt.shadow != 0,
    })
}

/// Translates a guest-virtual address with KVM_TRANSLATE.
pub(super) fn translate(fd: &VcpuFd, addr: u64) -> Result<Option<u64>> {
    let t = fd.translate_gva(addr).map_err(call_err("KVM_TRANSLATE"))?;
    Ok((t.valid != 0).then_some(t.physical_address))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debug::{HwBreakKind, HwBreakpoint};

    #[test]
    fn debug_request_sets_control_bits_and_registers() {
        assert_eq!(guest_debug_struct(&GuestDebug::default()).control, 0);
        let mut cfg = GuestDebug {
            enabled: true,
            single_step: true,
            ..Default::default()
        };
        cfg.hw[1] = Some(HwBreakpoint {
            addr: 0xffff_8000_0010_0000,
            kind: HwBreakKind::Execute,
            len: 1,
        });
        let d = guest_debug_struct(&cfg);
        assert_eq!(
            d.control,
            KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_HW_BP
        );
        assert_eq!(d.arch.debugreg[1], 0xffff_8000_0010_0000);
        assert_eq!(d.arch.debugreg[7] & 0b1100, 0b1000);
    }
}
