//! The `arm64_trap` target: arbitrary ESR_EL2, FAR_EL2 and HPFAR_EL2 values
//! (with a PC and x0-x4) through `seraph_fault::aarch64`: the ESR decoder,
//! the trap description, the mapping onto `VmExit` with MMIO completion,
//! and the fault report. Checked: nothing panics, a decoded syndrome
//! re-encodes to an ESR that decodes to it again (and to the same ESR when
//! IL = 1 and bits 63:32 are clear), MMIO data is 1 to 8 bytes, and the
//! report names the ESR.

use seraph_fault::aarch64::{
    Arm64Exit, Arm64Trap, Syndrome, describe, explain_aarch64, mmio_read_result, to_vm_exit,
};
use seraph_hypervisor::VmExit;

use crate::bytes::Bytes;

/// At most this many traps are decoded from one input.
const MAX_TRAPS: usize = 256;

/// One record: esr, far, hpfar, pc, a RAM limit for `is_ram`, x0-x4 (all
/// u64, little-endian; missing bytes read as zero).
pub fn arm64_trap(data: &[u8]) {
    let mut input = Bytes::new(data);
    for _ in 0..MAX_TRAPS {
        if input.is_empty() {
            break;
        }
        let trap = Arm64Trap {
            esr: input.u64(),
            far: input.u64(),
            hpfar: input.u64(),
        };
        let pc = input.u64();
        let ram_end = input.u64();
        let mut x = [0u64; 31];
        for reg in x.iter_mut().take(5) {
            *reg = input.u64();
        }
        check(&trap, pc, ram_end, &x);
    }
}

fn check(trap: &Arm64Trap, pc: u64, ram_end: u64, x: &[u64; 31]) {
    let syndrome = Syndrome::decode(trap.esr);
    let again = Syndrome::decode(syndrome.encode());
    assert_eq!(
        again, syndrome,
        "ESR {:#x}: decode(encode) differs",
        trap.esr
    );
    if trap.esr >> 32 == 0 && trap.esr & (1 << 25) != 0 {
        assert_eq!(
            syndrome.encode(),
            trap.esr,
            "ESR {:#x} does not re-encode",
            trap.esr
        );
    }
    let exit = describe(trap, |ipa| ipa < ram_end);
    let mut buf = [0u8; 8];
    let vm_exit = to_vm_exit(&exit, trap.esr, x, pc, None, &mut buf);
    let len = match vm_exit {
        VmExit::MmioRead { data, .. } => {
            data.fill(0xA5);
            Some(data.len())
        }
        VmExit::MmioWrite { data, .. } => Some(data.len()),
        _ => None,
    };
    if let Some(len) = len {
        assert!((1..=8).contains(&len), "MMIO of {len} bytes");
    }
    if let Arm64Exit::Mmio(access) = exit {
        if let Some((reg, value)) = mmio_read_result(&access, &buf) {
            assert!(reg < 31);
            if !access.sf {
                assert_eq!(value >> 32, 0, "a W register gets 32 bits");
            }
        }
    }
    let text = explain_aarch64(trap, pc).to_string();
    assert!(text.contains(&format!("ESR {:#x}", trap.esr)), "{text}");
    assert!(!syndrome.to_string().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_decode_and_short_input_pads_with_zero() {
        // One data-abort record (str w1 to 0x9000004, IPA not RAM), then a
        // truncated one.
        let mut input = Vec::new();
        for v in [
            0x9381_0046u64,
            0x0900_0004,
            0x9_0000,
            0x4008_0000,
            0x4000_0000,
        ] {
            input.extend_from_slice(&v.to_le_bytes());
        }
        input.extend_from_slice(&[0u8; 40]);
        input.extend_from_slice(&[0x5A, 0, 0]);
        arm64_trap(&input);
        arm64_trap(&[0xFF; 200]);
        arm64_trap(&[]);
    }
}
