//! Reading the guest's IDT: one gate, why a vector could not be delivered,
//! which handler a RIP belongs to, and the exception frame a handler that
//! halts without touching its stack sits on.

use seraph_hypervisor::{DescriptorTable, SpecialRegs};
use seraph_memory::vm_memory::GuestMemoryMmap;

use super::exceptions;
use super::walk::{AccessIntent, PagingControls, WalkOutcome, explain_access};
use crate::report::Access;

/// A 64-bit IDT gate descriptor (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdtGate {
    /// The handler's address.
    pub offset: u64,
    /// The code segment selector.
    pub selector: u16,
    /// The interrupt-stack-table slot (0 = none).
    pub ist: u8,
    /// Gate type: 0xE interrupt gate, 0xF trap gate.
    pub gate_type: u8,
    /// Descriptor privilege level.
    pub dpl: u8,
    /// Present bit.
    pub present: bool,
}

impl IdtGate {
    /// Decodes the 16 bytes of a gate.
    pub fn decode(bytes: &[u8; 16]) -> Self {
        let w = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let offset = u64::from(w(0))
            | u64::from(w(6)) << 16
            | u64::from(u32::from_le_bytes([
                bytes[8], bytes[9], bytes[10], bytes[11],
            ])) << 32;
        Self {
            offset,
            selector: w(2),
            ist: bytes[4] & 0x7,
            gate_type: bytes[5] & 0xF,
            dpl: (bytes[5] >> 5) & 0x3,
            present: bytes[5] & 0x80 != 0,
        }
    }

    /// True for a present 64-bit interrupt or trap gate.
    pub fn usable(&self) -> bool {
        self.present && (self.gate_type == 0xE || self.gate_type == 0xF)
    }
}

/// Why the CPU could not deliver a vector through the IDT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdtProblem {
    /// The IDT limit is 0: no vector can be delivered.
    #[error("the IDT is empty (limit 0)")]
    Empty,
    /// The vector's gate lies beyond the IDT limit.
    #[error("vector {vector:#04x} is beyond the IDT limit {limit:#x}")]
    BeyondLimit {
        /// The vector.
        vector: u8,
        /// The IDT limit.
        limit: u16,
    },
    /// The gate's bytes cannot be read (the IDT is not mapped or outside RAM).
    #[error("the IDT gate for vector {vector:#04x} at {addr:#x} is unreadable")]
    Unreadable {
        /// The vector.
        vector: u8,
        /// The gate's linear address.
        addr: u64,
    },
    /// The gate is not present (or not an interrupt or trap gate).
    #[error("the IDT gate for vector {vector:#04x} is not present")]
    NotPresent {
        /// The vector.
        vector: u8,
    },
}

/// Reads `len` bytes at linear `virt` through the guest's tables (or
/// physically with paging off); `None` if any byte is unreadable.
pub(crate) fn read_linear(
    mem: &GuestMemoryMmap,
    ctl: &PagingControls,
    virt: u64,
    buf: &mut [u8],
) -> Option<()> {
    use seraph_memory::vm_memory::{Bytes, GuestAddress};
    let mut done = 0usize;
    while done < buf.len() {
        let cur = virt.checked_add(done as u64)?;
        let in_page = (0x1000 - (cur & 0xFFF)) as usize;
        let chunk = in_page.min(buf.len() - done);
        let intent = AccessIntent {
            access: Access::Read,
            user: false,
        };
        let phys = match explain_access(mem, ctl, cur, intent) {
            WalkOutcome::Mapped { phys, .. } => phys,
            WalkOutcome::PagingOff => cur,
            _ => return None,
        };
        let dst = buf.get_mut(done..done + chunk)?;
        mem.read_slice(dst, GuestAddress(phys)).ok()?;
        done += chunk;
    }
    Some(())
}

/// The gate for `vector`, or why the CPU could not use it.
pub fn read_gate(
    mem: &GuestMemoryMmap,
    ctl: &PagingControls,
    idt: &DescriptorTable,
    vector: u8,
) -> Result<IdtGate, IdtProblem> {
    if idt.limit == 0 {
        return Err(IdtProblem::Empty);
    }
    let offset = u64::from(vector) * 16;
    if offset + 15 > u64::from(idt.limit) {
        return Err(IdtProblem::BeyondLimit {
            vector,
            limit: idt.limit,
        });
    }
    let addr = idt.base.wrapping_add(offset);
    let mut bytes = [0u8; 16];
    read_linear(mem, ctl, addr, &mut bytes).ok_or(IdtProblem::Unreadable { vector, addr })?;
    let gate = IdtGate::decode(&bytes);
    if !gate.usable() {
        return Err(IdtProblem::NotPresent { vector });
    }
    Ok(gate)
}

/// The IDT handler a halted RIP sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerMatch {
    /// The handler's entry address (the nearest gate offset at or below RIP).
    pub handler: u64,
    /// Every vector whose gate points at that handler, lowest first.
    pub vectors: Vec<u8>,
}

impl HandlerMatch {
    /// The lowest exception vector (0-31) among the handler's vectors, if any.
    pub fn exception(&self) -> Option<u8> {
        self.vectors.iter().copied().find(|v| *v < 32)
    }
}

/// How far past a handler's entry a RIP may be and still count as inside it.
pub const HANDLER_REACH: u64 = 64 * 1024;

/// The handler whose entry is the nearest at or below `rip`, among the
/// present gates of the IDT; `None` if no gate's entry is within
/// [`HANDLER_REACH`] below `rip`.
pub fn handler_containing(
    mem: &GuestMemoryMmap,
    ctl: &PagingControls,
    idt: &DescriptorTable,
    rip: u64,
) -> Option<HandlerMatch> {
    let mut gates = Vec::new();
    for vector in 0..=255u8 {
        if let Ok(gate) = read_gate(mem, ctl, idt, vector) {
            gates.push((vector, gate.offset));
        }
    }
    let handler = gates
        .iter()
        .map(|&(_, offset)| offset)
        .filter(|&offset| offset <= rip && rip - offset < HANDLER_REACH)
        .max()?;
    let vectors = gates
        .iter()
        .filter(|&&(_, offset)| offset == handler)
        .map(|&(vector, _)| vector)
        .collect();
    Some(HandlerMatch { handler, vectors })
}

/// What the CPU pushed when it delivered an exception in 64-bit mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionFrame {
    /// The error code, for vectors that push one.
    pub error_code: Option<u64>,
    /// The interrupted RIP (the faulting instruction, for faults).
    pub rip: u64,
    /// The interrupted CS.
    pub cs: u64,
    /// The interrupted RFLAGS.
    pub rflags: u64,
    /// The interrupted RSP.
    pub rsp: u64,
    /// The interrupted SS.
    pub ss: u64,
}

/// Reads the frame of `vector` at `rsp`, as a handler that has not touched
/// its stack sees it. `None` if it cannot be read or does not look like a
/// frame (RIP not canonical, CS not a ring-0/3 code selector in the GDT,
/// RFLAGS bit 1 clear or reserved bits set): then the handler has moved RSP
/// and the frame is not reliable.
pub fn read_frame(
    mem: &GuestMemoryMmap,
    sregs: &SpecialRegs,
    rsp: u64,
    vector: u8,
) -> Option<ExceptionFrame> {
    let ctl = PagingControls::from_sregs(sregs);
    let has_code = exceptions::exception(vector).is_some_and(|e| e.error_code);
    let words = if has_code { 6 } else { 5 };
    let mut raw = [0u8; 48];
    let buf = raw.get_mut(..words * 8)?;
    read_linear(mem, &ctl, rsp, buf)?;
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(raw.get(i * 8..i * 8 + 8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(w)
    };
    let base = usize::from(has_code);
    let frame = ExceptionFrame {
        error_code: has_code.then(|| word(0)),
        rip: word(base),
        cs: word(base + 1),
        rflags: word(base + 2),
        rsp: word(base + 3),
        ss: word(base + 4),
    };
    let canonical = |v: u64| {
        let top = v >> 47;
        top == 0 || top == 0x1_FFFF
    };
    let cs_ok = frame.cs <= 0xFFFF
        && frame.cs & 0b100 == 0
        && frame.cs & !0x7 != 0
        && (frame.cs & !0x7) <= u64::from(sregs.gdt.limit);
    let rflags_ok = frame.rflags & 0b10 != 0 && frame.rflags >> 22 == 0;
    let code_ok = frame.error_code.is_none_or(|c| c <= 0xFFFF_FFFF);
    (canonical(frame.rip) && cs_ok && rflags_ok && code_ok && frame.ss <= 0xFFFF).then_some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seraph_memory::vm_memory::{Bytes, GuestAddress};

    fn gate(offset: u64, present: bool) -> [u8; 16] {
        let mut g = [0u8; 16];
        g[0..2].copy_from_slice(&(offset as u16).to_le_bytes());
        g[2..4].copy_from_slice(&8u16.to_le_bytes());
        g[5] = if present { 0x8E } else { 0x0E };
        g[6..8].copy_from_slice(&((offset >> 16) as u16).to_le_bytes());
        g[8..12].copy_from_slice(&((offset >> 32) as u32).to_le_bytes());
        g
    }

    fn setup() -> (GuestMemoryMmap, SpecialRegs) {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap_or_default();
        let sregs = SpecialRegs {
            idt: DescriptorTable {
                base: 0x8000,
                limit: 32 * 16 - 1,
            },
            gdt: DescriptorTable {
                base: 0,
                limit: 0x17,
            },
            ..Default::default()
        };
        for v in 0..32u64 {
            let handler = if v == 14 { 0x5100 } else { 0x5000 };
            let bytes = gate(handler, v != 13);
            assert!(
                mem.write_slice(&bytes, GuestAddress(0x8000 + v * 16))
                    .is_ok()
            );
        }
        (mem, sregs)
    }

    #[test]
    fn gates_and_delivery_problems() {
        let (mem, sregs) = setup();
        let ctl = PagingControls::from_sregs(&sregs); // paging off: linear = physical
        let g = read_gate(&mem, &ctl, &sregs.idt, 14);
        assert_eq!(
            g.map(|g| (g.offset, g.selector, g.gate_type)),
            Ok((0x5100, 8, 0xE))
        );
        assert_eq!(
            read_gate(&mem, &ctl, &sregs.idt, 13),
            Err(IdtProblem::NotPresent { vector: 13 })
        );
        assert_eq!(
            read_gate(&mem, &ctl, &sregs.idt, 32),
            Err(IdtProblem::BeyondLimit {
                vector: 32,
                limit: 511
            })
        );
        let empty = DescriptorTable { base: 0, limit: 0 };
        assert_eq!(read_gate(&mem, &ctl, &empty, 14), Err(IdtProblem::Empty));
        let far = DescriptorTable {
            base: 0x7_0000_0000,
            limit: 0xFFF,
        };
        assert!(matches!(
            read_gate(&mem, &ctl, &far, 1),
            Err(IdtProblem::Unreadable { vector: 1, .. })
        ));
        assert_eq!(
            IdtGate::decode(&gate(0xFFFF_8000_1234_5678, true)).offset,
            0xFFFF_8000_1234_5678
        );
    }

    #[test]
    fn the_nearest_handler_below_rip_names_its_vectors() {
        let (mem, sregs) = setup();
        let ctl = PagingControls::from_sregs(&sregs);
        let m = handler_containing(&mem, &ctl, &sregs.idt, 0x5104);
        assert_eq!(m.as_ref().map(|m| m.handler), Some(0x5100));
        assert_eq!(m.as_ref().and_then(HandlerMatch::exception), Some(14));
        // 0x5000 serves every vector but 13 (absent) and 14.
        let m = handler_containing(&mem, &ctl, &sregs.idt, 0x50F0);
        assert_eq!(m.as_ref().map(|m| m.vectors.len()), Some(30));
        assert_eq!(m.and_then(|m| m.exception()), Some(0));
        assert_eq!(handler_containing(&mem, &ctl, &sregs.idt, 0x4FFF), None);
        assert_eq!(
            handler_containing(&mem, &ctl, &sregs.idt, 0x5100 + HANDLER_REACH),
            None
        );
    }

    #[test]
    fn frames_are_read_and_checked() {
        let (mem, sregs) = setup();
        let words: [u64; 6] = [0x2, 0x10_0040, 0x8, 0x202, 0x9_FFF0, 0x10];
        let mut bytes = Vec::new();
        for w in words {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        assert!(mem.write_slice(&bytes, GuestAddress(0x9_0000)).is_ok());
        let f = read_frame(&mem, &sregs, 0x9_0000, 14);
        assert_eq!(
            f,
            Some(ExceptionFrame {
                error_code: Some(2),
                rip: 0x10_0040,
                cs: 8,
                rflags: 0x202,
                rsp: 0x9_FFF0,
                ss: 0x10
            })
        );
        // Read as a vector without an error code, the words shift: CS would
        // be 0x100040, not a selector, so the frame is refused.
        assert_eq!(read_frame(&mem, &sregs, 0x9_0000, 0), None);
        // Unreadable stack.
        assert_eq!(read_frame(&mem, &sregs, 0xFFFF_FFF0, 14), None);
    }
}
