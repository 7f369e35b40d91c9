//! WHP failures as errors that say what failed: the hex HRESULT and, for
//! the codes WHP documents, the `WHV_E_*` (or common `E_*`) name, instead of
//! an OS error lookup that prints "Unknown error" for HRESULTs.

use windows_sys::core::HRESULT;

use crate::{HypervisorError, Result};

/// A failed HRESULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HresultError(pub HRESULT);

/// HRESULT facility of Win32 errors (`HRESULT_FROM_WIN32`).
const FACILITY_WIN32: u32 = 7;

/// The symbolic name of `hr`, if it is one WHP documents or a common COM code.
pub fn hresult_name(hr: HRESULT) -> Option<&'static str> {
    Some(match hr as u32 {
        0x8037_0300 => "WHV_E_UNKNOWN_CAPABILITY",
        0x8037_0301 => "WHV_E_INSUFFICIENT_BUFFER",
        0x8037_0302 => "WHV_E_UNKNOWN_PROPERTY",
        0x8037_0303 => "WHV_E_UNSUPPORTED_HYPERVISOR_CONFIG",
        0x8037_0304 => "WHV_E_INVALID_PARTITION_CONFIG",
        0x8037_0305 => "WHV_E_GPA_RANGE_NOT_FOUND",
        0x8037_0306 => "WHV_E_VP_ALREADY_EXISTS",
        0x8037_0307 => "WHV_E_VP_DOES_NOT_EXIST",
        0x8037_0308 => "WHV_E_INVALID_VP_STATE",
        0x8037_0309 => "WHV_E_INVALID_VP_REGISTER_NAME",
        0x8037_0310 => "WHV_E_UNSUPPORTED_PROCESSOR_CONFIG",
        0x8000_4001 => "E_NOTIMPL",
        0x8000_4004 => "E_ABORT",
        0x8000_4005 => "E_FAIL",
        0x8000_FFFF => "E_UNEXPECTED",
        0x8007_0005 => "E_ACCESSDENIED",
        0x8007_000E => "E_OUTOFMEMORY",
        0x8007_0057 => "E_INVALIDARG",
        _ => return None,
    })
}

impl std::fmt::Display for HresultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.0 as u32;
        write!(f, "HRESULT {code:#010x}")?;
        if let Some(name) = hresult_name(self.0) {
            write!(f, " ({name})")
        } else if (code >> 16) & 0x1FFF == FACILITY_WIN32 {
            write!(f, " (Win32 error {})", code & 0xFFFF)
        } else {
            Ok(())
        }
    }
}

impl std::error::Error for HresultError {}

/// `Ok` for a success HRESULT, else [`HypervisorError::Call`] naming `call`
/// and carrying the [`HresultError`] as its source.
pub fn check(hr: HRESULT, call: &'static str) -> Result<()> {
    if hr >= 0 {
        Ok(())
    } else {
        Err(HypervisorError::Call {
            call,
            source: std::io::Error::other(HresultError(hr)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_print_the_hex_hresult_and_its_whv_name() {
        let err = check(0x8037_0305_u32 as HRESULT, "WHvUnmapGpaRange").unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text,
            "WHvUnmapGpaRange failed: HRESULT 0x80370305 (WHV_E_GPA_RANGE_NOT_FOUND)"
        );
        assert!(!text.contains("Unknown error"), "{text}");
        // The HRESULT stays reachable as the error's source.
        let HypervisorError::Call { source, .. } = err else {
            panic!("not a Call error");
        };
        let inner = source
            .get_ref()
            .and_then(|e| e.downcast_ref::<HresultError>());
        assert_eq!(inner, Some(&HresultError(0x8037_0305_u32 as HRESULT)));
    }

    #[test]
    fn win32_and_unknown_codes_still_print_in_hex() {
        assert_eq!(
            HresultError(0x8007_0032_u32 as HRESULT).to_string(),
            "HRESULT 0x80070032 (Win32 error 50)"
        );
        assert_eq!(
            HresultError(0xC035_0005_u32 as HRESULT).to_string(),
            "HRESULT 0xc0350005"
        );
        assert_eq!(
            HresultError(0x8000_4005_u32 as HRESULT).to_string(),
            "HRESULT 0x80004005 (E_FAIL)"
        );
        assert!(check(0, "x").is_ok());
        assert!(check(1, "x").is_ok());
    }
}
