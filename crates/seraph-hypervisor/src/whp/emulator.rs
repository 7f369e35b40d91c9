//! The WHP instruction emulator (`WinHvEmulation.dll`) for MMIO and
//! string port I/O, bridged to the exit model by [`super::replay`].
//!
//! The emulator reaches memory through one callback for everything: the
//! instruction bytes it fetches, the RAM side of `rep outsb`/`insb` and
//! `movs`, and the MMIO access that caused the exit. Only guest-physical
//! addresses that no RAM slot backs are MMIO ([`memory_access`]); RAM is
//! read and written in the host mapping directly, under the partition's
//! memory-map lock, so it can never be handed to the VMM as a device access.

use std::ffi::c_void;

use windows_sys::Win32::System::Hypervisor::{
    WHV_EMULATOR_IO_ACCESS_INFO, WHV_EMULATOR_MEMORY_ACCESS_INFO, WHV_EMULATOR_STATUS,
    WHV_PARTITION_HANDLE, WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHV_TRANSLATE_GVA_FLAGS,
    WHV_TRANSLATE_GVA_RESULT, WHV_TRANSLATE_GVA_RESULT_CODE,
};
use windows_sys::core::HRESULT;

use super::api::Api;
use super::hresult::check;
use super::regions::Regions;
use super::replay::{AccessKind, Replay};
use super::vcpu::WhpVcpu;
use super::{ExitBuffer, plan};
use crate::Result;
use crate::exit::InstructionBytes;

/// `E_FAIL`, returned by emulator callbacks to stop a pass.
const E_FAIL: HRESULT = 0x8000_4005_u32 as HRESULT;

/// An instruction being emulated across several `run` calls.
pub(super) struct Emulation {
    pub(super) replay: Replay,
    pub(super) exit: Box<ExitBuffer>,
    pub(super) is_io: bool,
    pub(super) instruction: InstructionBytes,
}

/// The outcome of driving an emulated instruction.
pub(super) enum EmuStep {
    /// Nothing left: run the guest.
    Done,
    /// The emulator could not finish the instruction.
    Failed(InstructionBytes),
    /// Hand this access to the VMM (data in the vCPU buffer's first `len`
    /// bytes: `len / size` accesses of `size` bytes).
    Deliver {
        kind: AccessKind,
        addr: u64,
        size: u8,
        len: usize,
    },
}

/// What the emulator callbacks see (through their context pointer).
struct EmulatorContext<'a> {
    api: &'static Api,
    partition: WHV_PARTITION_HANDLE,
    index: u32,
    replay: &'a mut Replay,
    ram: &'a Regions,
}

/// The emulator's memory access at `gpa`: RAM is served from the host
/// mapping at once; anything else is MMIO for the replay log (a new read
/// fails the pass until the VMM has answered it). Returns whether the
/// access succeeded.
pub fn memory_access(
    ram: &Regions,
    replay: &mut Replay,
    is_write: bool,
    gpa: u64,
    data: &mut [u8],
) -> bool {
    let served = if is_write {
        ram.write(gpa, data)
    } else {
        ram.read(gpa, data)
    };
    if served {
        return true;
    }
    let kind = if is_write {
        AccessKind::MmioWrite
    } else {
        AccessKind::MmioRead
    };
    replay.on_access(kind, gpa, data)
}

impl WhpVcpu {
    /// One emulator pass over the instruction of `em`; returns the status bits.
    fn emulate_pass(&self, em: &mut Emulation) -> Result<u32> {
        em.replay.begin_pass();
        let ram = match self.partition.regions.read() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut ctx = EmulatorContext {
            api: self.api,
            partition: self.partition.handle,
            index: self.index,
            replay: &mut em.replay,
            ram: &ram,
        };
        let ctx_ptr: *const c_void = (&mut ctx as *mut EmulatorContext<'_>).cast_const().cast();
        let mut status = WHV_EMULATOR_STATUS { AsUINT32: 0 };
        let exit = &em.exit.0;
        let (hr, call) = if em.is_io {
            (
                // SAFETY: the emulator handle is live; `ctx_ptr` points to a
                // context that outlives this synchronous call; the exit
                // context is the one WHP produced for this instruction
                // (IoPortAccess live).
                unsafe {
                    (self.api.emulator_try_io)(
                        self.emulator,
                        ctx_ptr,
                        &exit.VpContext,
                        &exit.Anonymous.IoPortAccess,
                        &mut status,
                    )
                },
                "WHvEmulatorTryIoEmulation",
            )
        } else {
            (
                // SAFETY: as above, with MemoryAccess the live variant.
                unsafe {
                    (self.api.emulator_try_mmio)(
                        self.emulator,
                        ctx_ptr,
                        &exit.VpContext,
                        &exit.Anonymous.MemoryAccess,
                        &mut status,
                    )
                },
                "WHvEmulatorTryMmioEmulation",
            )
        };
        check(hr, call)?;
        // SAFETY: a union of a u32 bitfield struct and a u32.
        Ok(unsafe { status.AsUINT32 })
    }

    /// Drives an instruction under emulation: hands out its next access
    /// (copying write data into the buffer), or runs passes until there is
    /// one, the instruction is done, or it fails.
    pub(super) fn step_emulation(&mut self) -> Result<EmuStep> {
        let Some(mut em) = self.emulation.take() else {
            return Ok(EmuStep::Done);
        };
        loop {
            if let Some(d) = em.replay.next_delivery() {
                let len = d.len.min(self.buf.len());
                em.replay
                    .deliver(&d, self.buf.get_mut(..len).unwrap_or(&mut []));
                self.emulation = Some(em);
                return Ok(EmuStep::Deliver {
                    kind: d.kind,
                    addr: d.addr,
                    size: d.size,
                    len,
                });
            }
            if em.replay.finished() {
                return Ok(EmuStep::Done);
            }
            let status = self.emulate_pass(&mut em)?;
            let ok = plan::emulation_succeeded(status);
            em.replay.end_pass(ok);
            if em.replay.failure().is_some() || (!ok && !em.replay.has_undelivered()) {
                return Ok(EmuStep::Failed(em.instruction));
            }
        }
    }
}

/// Recovers the callback context.
///
/// # Safety
/// `context` must be the pointer `emulate_pass` passed, during that call.
unsafe fn context<'a>(context: *const c_void) -> &'a mut EmulatorContext<'a> {
    // SAFETY: per the function contract, `context` points to a live
    // EmulatorContext that nothing else touches during the emulator call.
    unsafe { &mut *(context.cast_mut().cast::<EmulatorContext<'a>>()) }
}

pub(super) unsafe extern "system" fn emu_io_port(
    ctx: *const c_void,
    access: *mut WHV_EMULATOR_IO_ACCESS_INFO,
) -> HRESULT {
    // SAFETY: WHP passes back the context of the running emulate_pass call
    // and a valid access record.
    let (ctx, access) = unsafe { (context(ctx), &mut *access) };
    let size = usize::from(access.AccessSize).min(4);
    let mut bytes = access.Data.to_le_bytes();
    let kind = if access.Direction == 0 {
        AccessKind::PortRead
    } else {
        AccessKind::PortWrite
    };
    let Some(data) = bytes.get_mut(..size) else {
        return E_FAIL;
    };
    if !ctx.replay.on_access(kind, u64::from(access.Port), data) {
        return E_FAIL;
    }
    if kind == AccessKind::PortRead {
        access.Data = u32::from_le_bytes(bytes);
    }
    0
}

pub(super) unsafe extern "system" fn emu_memory(
    ctx: *const c_void,
    access: *mut WHV_EMULATOR_MEMORY_ACCESS_INFO,
) -> HRESULT {
    // SAFETY: as in emu_io_port.
    let (ctx, access) = unsafe { (context(ctx), &mut *access) };
    let size = usize::from(access.AccessSize).min(8);
    let Some(data) = access.Data.get_mut(..size) else {
        return E_FAIL;
    };
    if memory_access(
        ctx.ram,
        ctx.replay,
        access.Direction != 0,
        access.GpaAddress,
        data,
    ) {
        0
    } else {
        E_FAIL
    }
}

pub(super) unsafe extern "system" fn emu_get_registers(
    ctx: *const c_void,
    names: *const WHV_REGISTER_NAME,
    count: u32,
    values: *mut WHV_REGISTER_VALUE,
) -> HRESULT {
    // SAFETY: as in emu_io_port; WHP passes arrays of `count` elements.
    unsafe {
        let ctx = context(ctx);
        (ctx.api.get_registers)(ctx.partition, ctx.index, names, count, values)
    }
}

pub(super) unsafe extern "system" fn emu_set_registers(
    ctx: *const c_void,
    names: *const WHV_REGISTER_NAME,
    count: u32,
    values: *const WHV_REGISTER_VALUE,
) -> HRESULT {
    // SAFETY: as in emu_get_registers.
    unsafe {
        let ctx = context(ctx);
        (ctx.api.set_registers)(ctx.partition, ctx.index, names, count, values)
    }
}

pub(super) unsafe extern "system" fn emu_translate_gva(
    ctx: *const c_void,
    gva: u64,
    flags: WHV_TRANSLATE_GVA_FLAGS,
    result_code: *mut WHV_TRANSLATE_GVA_RESULT_CODE,
    gpa: *mut u64,
) -> HRESULT {
    // SAFETY: as in emu_io_port; `result_code` and `gpa` are valid
    // out-pointers for the duration of the callback.
    unsafe {
        let ctx = context(ctx);
        let mut result = WHV_TRANSLATE_GVA_RESULT::default();
        let hr = (ctx.api.translate_gva)(ctx.partition, ctx.index, gva, flags, &mut result, gpa);
        *result_code = result.ResultCode;
        hr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryRegion;

    /// One page of "guest RAM" at 0x1000, holding `rep outsb` source bytes.
    fn ram(page: &mut [u8; 4096]) -> Regions {
        let mut r = Regions::default();
        let region = MemoryRegion {
            slot: 0,
            guest_addr: 0x1000,
            size: 4096,
            host_addr: page.as_mut_ptr(),
        };
        // SAFETY: `page` outlives the table in each test.
        unsafe { r.insert(&region, false) };
        r
    }

    #[test]
    fn instruction_fetches_and_string_sources_in_ram_are_not_mmio() {
        let mut page = [0u8; 4096];
        page[..2].copy_from_slice(&[0xF3, 0x6E]); // rep outsb
        page[0x100..0x105].copy_from_slice(b"hello");
        let regions = ram(&mut page);
        let mut replay = Replay::new(5, 4096);
        replay.begin_pass();
        // The emulator fetches the instruction, then reads the source bytes.
        let mut insn = [0u8; 2];
        assert!(memory_access(
            &regions,
            &mut replay,
            false,
            0x1000,
            &mut insn
        ));
        assert_eq!(insn, [0xF3, 0x6E]);
        for (i, want) in b"hello".iter().enumerate() {
            let mut b = [0u8];
            assert!(memory_access(
                &regions,
                &mut replay,
                false,
                0x1100 + i as u64,
                &mut b
            ));
            assert_eq!(b[0], *want);
            assert!(replay.on_access(AccessKind::PortWrite, 0x3F8, &mut b));
        }
        replay.end_pass(true);
        // The VMM sees exactly one exit: the port write, no MMIO reads.
        let d = replay.next_delivery();
        assert_eq!(
            d.map(|d| (d.kind, d.addr, d.len)),
            Some((AccessKind::PortWrite, 0x3F8, 5))
        );
    }

    #[test]
    fn rep_insb_destinations_in_ram_are_written_to_host_memory() {
        let mut page = [0u8; 4096];
        let regions = ram(&mut page);
        let mut replay = Replay::new(1, 4096);
        assert!(memory_access(
            &regions,
            &mut replay,
            true,
            0x1200,
            &mut [0x5A, 0xA5]
        ));
        assert!(replay.next_delivery().is_none());
        drop(regions);
        assert_eq!(page[0x200..0x202], [0x5A, 0xA5]);
    }

    #[test]
    fn unbacked_addresses_are_mmio_for_the_vmm() {
        let mut page = [0u8; 4096];
        let regions = ram(&mut page);
        let mut replay = Replay::new(1, 4096);
        replay.begin_pass();
        let mut d = [0u8; 4];
        // A read of the LAPIC page fails the pass and waits for the VMM.
        assert!(!memory_access(
            &regions,
            &mut replay,
            false,
            0xFEE0_0030,
            &mut d
        ));
        let del = replay.next_delivery();
        assert_eq!(
            del.map(|d| (d.kind, d.addr, d.len)),
            Some((AccessKind::MmioRead, 0xFEE0_0030, 4))
        );
        // A write straddling the end of RAM is MMIO too (not split).
        let mut replay = Replay::new(1, 4096);
        assert!(memory_access(
            &regions,
            &mut replay,
            true,
            0x1FFE,
            &mut [1, 2, 3, 4]
        ));
        assert_eq!(
            replay.next_delivery().map(|d| (d.kind, d.addr)),
            Some((AccessKind::MmioWrite, 0x1FFE))
        );
    }
}
