//! Names of the AArch64 system registers and instructions a guest kernel
//! commonly touches, by encoding (Op0, Op1, CRn, CRm, Op2), from the Arm
//! ARM's register descriptions ("Accessing ..." tables).

use super::iss::SysRegIss;

/// A system register encoding: (Op0, Op1, CRn, CRm, Op2).
pub type Encoding = (u8, u8, u8, u8, u8);

/// Encoding -> name.
const NAMES: &[(Encoding, &str)] = &[
    // Debug (Op0 = 2).
    ((2, 0, 0, 2, 2), "MDSCR_EL1"),
    ((2, 0, 1, 0, 4), "OSLAR_EL1"),
    ((2, 0, 1, 1, 4), "OSLSR_EL1"),
    ((2, 0, 1, 3, 4), "OSDLR_EL1"),
    // Identification.
    ((3, 0, 0, 0, 0), "MIDR_EL1"),
    ((3, 0, 0, 0, 5), "MPIDR_EL1"),
    ((3, 0, 0, 0, 6), "REVIDR_EL1"),
    ((3, 0, 0, 4, 0), "ID_AA64PFR0_EL1"),
    ((3, 0, 0, 4, 1), "ID_AA64PFR1_EL1"),
    ((3, 0, 0, 5, 0), "ID_AA64DFR0_EL1"),
    ((3, 0, 0, 5, 1), "ID_AA64DFR1_EL1"),
    ((3, 0, 0, 6, 0), "ID_AA64ISAR0_EL1"),
    ((3, 0, 0, 6, 1), "ID_AA64ISAR1_EL1"),
    ((3, 0, 0, 6, 2), "ID_AA64ISAR2_EL1"),
    ((3, 0, 0, 7, 0), "ID_AA64MMFR0_EL1"),
    ((3, 0, 0, 7, 1), "ID_AA64MMFR1_EL1"),
    ((3, 0, 0, 7, 2), "ID_AA64MMFR2_EL1"),
    ((3, 1, 0, 0, 0), "CCSIDR_EL1"),
    ((3, 1, 0, 0, 1), "CLIDR_EL1"),
    ((3, 2, 0, 0, 0), "CSSELR_EL1"),
    ((3, 3, 0, 0, 1), "CTR_EL0"),
    ((3, 3, 0, 0, 7), "DCZID_EL0"),
    // System control and memory management.
    ((3, 0, 1, 0, 0), "SCTLR_EL1"),
    ((3, 0, 1, 0, 1), "ACTLR_EL1"),
    ((3, 0, 1, 0, 2), "CPACR_EL1"),
    ((3, 0, 2, 0, 0), "TTBR0_EL1"),
    ((3, 0, 2, 0, 1), "TTBR1_EL1"),
    ((3, 0, 2, 0, 2), "TCR_EL1"),
    ((3, 0, 4, 0, 0), "SPSR_EL1"),
    ((3, 0, 4, 0, 1), "ELR_EL1"),
    ((3, 0, 4, 1, 0), "SP_EL0"),
    ((3, 0, 5, 1, 0), "AFSR0_EL1"),
    ((3, 0, 5, 1, 1), "AFSR1_EL1"),
    ((3, 0, 5, 2, 0), "ESR_EL1"),
    ((3, 0, 6, 0, 0), "FAR_EL1"),
    ((3, 0, 7, 4, 0), "PAR_EL1"),
    ((3, 0, 10, 2, 0), "MAIR_EL1"),
    ((3, 0, 10, 3, 0), "AMAIR_EL1"),
    ((3, 0, 12, 0, 0), "VBAR_EL1"),
    ((3, 0, 13, 0, 1), "CONTEXTIDR_EL1"),
    ((3, 0, 13, 0, 4), "TPIDR_EL1"),
    ((3, 3, 13, 0, 2), "TPIDR_EL0"),
    ((3, 3, 13, 0, 3), "TPIDRRO_EL0"),
    // GICv3 CPU interface.
    ((3, 0, 4, 6, 0), "ICC_PMR_EL1"),
    ((3, 0, 12, 8, 0), "ICC_IAR0_EL1"),
    ((3, 0, 12, 11, 1), "ICC_DIR_EL1"),
    ((3, 0, 12, 11, 3), "ICC_RPR_EL1"),
    ((3, 0, 12, 11, 5), "ICC_SGI1R_EL1"),
    ((3, 0, 12, 12, 0), "ICC_IAR1_EL1"),
    ((3, 0, 12, 12, 1), "ICC_EOIR1_EL1"),
    ((3, 0, 12, 12, 3), "ICC_BPR1_EL1"),
    ((3, 0, 12, 12, 4), "ICC_CTLR_EL1"),
    ((3, 0, 12, 12, 5), "ICC_SRE_EL1"),
    ((3, 0, 12, 12, 6), "ICC_IGRPEN0_EL1"),
    ((3, 0, 12, 12, 7), "ICC_IGRPEN1_EL1"),
    // Generic timer.
    ((3, 0, 14, 1, 0), "CNTKCTL_EL1"),
    ((3, 3, 14, 0, 0), "CNTFRQ_EL0"),
    ((3, 3, 14, 0, 1), "CNTPCT_EL0"),
    ((3, 3, 14, 0, 2), "CNTVCT_EL0"),
    ((3, 3, 14, 2, 0), "CNTP_TVAL_EL0"),
    ((3, 3, 14, 2, 1), "CNTP_CTL_EL0"),
    ((3, 3, 14, 2, 2), "CNTP_CVAL_EL0"),
    ((3, 3, 14, 3, 0), "CNTV_TVAL_EL0"),
    ((3, 3, 14, 3, 1), "CNTV_CTL_EL0"),
    ((3, 3, 14, 3, 2), "CNTV_CVAL_EL0"),
    // Performance monitors.
    ((3, 3, 9, 12, 0), "PMCR_EL0"),
    ((3, 3, 9, 12, 1), "PMCNTENSET_EL0"),
    ((3, 3, 9, 13, 0), "PMCCNTR_EL0"),
    ((3, 0, 9, 14, 1), "PMINTENSET_EL1"),
    ((3, 3, 9, 14, 0), "PMUSERENR_EL0"),
    // System instructions (Op0 = 1): cache and TLB maintenance.
    ((1, 0, 7, 1, 0), "IC IALLUIS"),
    ((1, 0, 7, 5, 0), "IC IALLU"),
    ((1, 3, 7, 5, 1), "IC IVAU"),
    ((1, 0, 7, 6, 1), "DC IVAC"),
    ((1, 0, 7, 6, 2), "DC ISW"),
    ((1, 0, 7, 10, 2), "DC CSW"),
    ((1, 0, 7, 14, 2), "DC CISW"),
    ((1, 3, 7, 4, 1), "DC ZVA"),
    ((1, 3, 7, 10, 1), "DC CVAC"),
    ((1, 3, 7, 11, 1), "DC CVAU"),
    ((1, 3, 7, 14, 1), "DC CIVAC"),
    ((1, 0, 7, 8, 0), "AT S1E1R"),
    ((1, 0, 7, 8, 1), "AT S1E1W"),
    ((1, 0, 8, 3, 0), "TLBI VMALLE1IS"),
    ((1, 0, 8, 7, 0), "TLBI VMALLE1"),
    ((1, 0, 8, 7, 1), "TLBI VAE1"),
];

/// The name of the register or instruction with this encoding, if known.
pub fn name(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(enc, _)| *enc == (op0, op1, crn, crm, op2))
        .map(|(_, name)| *name)
}

/// The encoding of a named register or instruction, if known.
pub fn encoding(name: &str) -> Option<Encoding> {
    NAMES.iter().find(|(_, n)| *n == name).map(|(enc, _)| *enc)
}

/// The name, or the generic `S<op0>_<op1>_C<n>_C<m>_<op2>` form.
pub fn describe(iss: &SysRegIss) -> String {
    let (op0, op1, crn, crm, op2) = iss.encoding();
    match name(op0, op1, crn, crm, op2) {
        Some(n) => n.to_owned(),
        None => format!("S{op0}_{op1}_C{crn}_C{crm}_{op2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_both_ways() {
        for (i, (enc, n)) in NAMES.iter().enumerate() {
            assert_eq!(NAMES.iter().position(|(e, _)| e == enc), Some(i), "{n}");
            assert_eq!(encoding(n), Some(*enc));
            let (op0, op1, crn, crm, op2) = *enc;
            assert!(
                op0 <= 3 && op1 <= 7 && crn <= 15 && crm <= 15 && op2 <= 7,
                "{n}"
            );
        }
        assert_eq!(name(3, 3, 14, 0, 2), Some("CNTVCT_EL0"));
        assert_eq!(name(3, 0, 1, 0, 0), Some("SCTLR_EL1"));
        let odd = SysRegIss {
            op0: 3,
            op1: 7,
            crn: 15,
            crm: 2,
            op2: 5,
            rt: 0,
            read: true,
        };
        assert_eq!(describe(&odd), "S3_7_C15_C2_5");
    }
}
