//! `WinHvPlatform.dll` and `WinHvEmulation.dll`, resolved at run time.
//!
//! `windows-sys` imports every function it declares at load time
//! (raw-dylib): a host without the Windows Hypervisor Platform feature
//! (no `WinHvPlatform.dll`), or an older Windows without a newer export
//! such as `WHvGetVirtualProcessorCpuidOutput`, would then fail to start
//! `seraph-v.exe` at all, with a loader dialog instead of our
//! "not available" message and exit code. So, as QEMU's WHPX does, the
//! backend loads both DLLs from System32 with `LoadLibraryExW` and takes
//! each function from `GetProcAddress`; a missing DLL or required function
//! becomes [`HypervisorError::Unavailable`] with a message naming the
//! Windows feature, and optional functions are `None`.

use std::ffi::c_void;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::System::Hypervisor::{
    WHV_CAPABILITY_CODE, WHV_CPUID_OUTPUT, WHV_EMULATOR_CALLBACKS, WHV_EMULATOR_STATUS,
    WHV_MAP_GPA_RANGE_FLAGS, WHV_MEMORY_ACCESS_CONTEXT, WHV_PARTITION_HANDLE,
    WHV_PARTITION_PROPERTY_CODE, WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHV_TRANSLATE_GVA_FLAGS,
    WHV_TRANSLATE_GVA_RESULT, WHV_VP_EXIT_CONTEXT, WHV_X64_IO_PORT_ACCESS_CONTEXT,
};
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LOAD_LIBRARY_SEARCH_SYSTEM32, LoadLibraryExW,
};
use windows_sys::core::HRESULT;

use crate::{HypervisorError, Result};

/// The platform DLL.
pub const PLATFORM_DLL: &str = "WinHvPlatform.dll";
/// The instruction-emulator DLL.
pub const EMULATION_DLL: &str = "WinHvEmulation.dll";

/// The message for a host where `dll` cannot be loaded.
pub fn missing_library_message(dll: &str) -> String {
    format!(
        "the Windows Hypervisor Platform is not available: {dll} cannot be loaded. \
         Enable the \"Windows Hypervisor Platform\" Windows feature \
         (Enable-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform, \
         as administrator) and reboot; see docs/windows.md"
    )
}

/// The message for a host whose `dll` lacks a function the backend needs.
pub fn missing_function_message(dll: &str, function: &str) -> String {
    format!(
        "the Windows Hypervisor Platform is too old: {dll} has no {function}. \
         Seraph-V needs Windows 10 version 1809 or Windows Server 2019 or later, \
         with the \"Windows Hypervisor Platform\" feature; see docs/windows.md"
    )
}

/// The message for an optional function this Windows lacks.
pub fn optional_function_message(function: &str, needs: &str) -> String {
    format!("{function} is not available on this Windows (it needs {needs})")
}

type GetCapability =
    unsafe extern "system" fn(WHV_CAPABILITY_CODE, *mut c_void, u32, *mut u32) -> HRESULT;
type CreatePartition = unsafe extern "system" fn(*mut WHV_PARTITION_HANDLE) -> HRESULT;
type PartitionOp = unsafe extern "system" fn(WHV_PARTITION_HANDLE) -> HRESULT;
type SetPartitionProperty = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    WHV_PARTITION_PROPERTY_CODE,
    *const c_void,
    u32,
) -> HRESULT;
type MapGpaRange = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    *const c_void,
    u64,
    u64,
    WHV_MAP_GPA_RANGE_FLAGS,
) -> HRESULT;
type UnmapGpaRange = unsafe extern "system" fn(WHV_PARTITION_HANDLE, u64, u64) -> HRESULT;
type TranslateGva = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    u32,
    u64,
    WHV_TRANSLATE_GVA_FLAGS,
    *mut WHV_TRANSLATE_GVA_RESULT,
    *mut u64,
) -> HRESULT;
type VpFlagsOp = unsafe extern "system" fn(WHV_PARTITION_HANDLE, u32, u32) -> HRESULT;
type VpOp = unsafe extern "system" fn(WHV_PARTITION_HANDLE, u32) -> HRESULT;
type RunVp = unsafe extern "system" fn(WHV_PARTITION_HANDLE, u32, *mut c_void, u32) -> HRESULT;
type GetRegisters = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    u32,
    *const WHV_REGISTER_NAME,
    u32,
    *mut WHV_REGISTER_VALUE,
) -> HRESULT;
type SetRegisters = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    u32,
    *const WHV_REGISTER_NAME,
    u32,
    *const WHV_REGISTER_VALUE,
) -> HRESULT;
type GetCpuidOutput = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    u32,
    u32,
    u32,
    *mut WHV_CPUID_OUTPUT,
) -> HRESULT;
type QueryDirtyBitmap =
    unsafe extern "system" fn(WHV_PARTITION_HANDLE, u64, u64, *mut u64, u32) -> HRESULT;
type EmulatorCreate =
    unsafe extern "system" fn(*const WHV_EMULATOR_CALLBACKS, *mut *mut c_void) -> HRESULT;
type EmulatorDestroy = unsafe extern "system" fn(*const c_void) -> HRESULT;
type EmulatorTryIo = unsafe extern "system" fn(
    *const c_void,
    *const c_void,
    *const WHV_VP_EXIT_CONTEXT,
    *const WHV_X64_IO_PORT_ACCESS_CONTEXT,
    *mut WHV_EMULATOR_STATUS,
) -> HRESULT;
type EmulatorTryMmio = unsafe extern "system" fn(
    *const c_void,
    *const c_void,
    *const WHV_VP_EXIT_CONTEXT,
    *const WHV_MEMORY_ACCESS_CONTEXT,
    *mut WHV_EMULATOR_STATUS,
) -> HRESULT;

/// The WHP functions this backend calls.
#[allow(missing_docs)] // each field is the WHP function of the same name
pub struct Api {
    pub get_capability: GetCapability,
    pub create_partition: CreatePartition,
    pub setup_partition: PartitionOp,
    pub delete_partition: PartitionOp,
    pub set_partition_property: SetPartitionProperty,
    pub map_gpa_range: MapGpaRange,
    pub unmap_gpa_range: UnmapGpaRange,
    pub translate_gva: TranslateGva,
    pub create_virtual_processor: VpFlagsOp,
    pub delete_virtual_processor: VpOp,
    pub run_virtual_processor: RunVp,
    pub cancel_run_virtual_processor: VpFlagsOp,
    pub get_registers: GetRegisters,
    pub set_registers: SetRegisters,
    /// Optional: Windows 10 builds before 20H2 lack this export.
    pub get_cpuid_output: Option<GetCpuidOutput>,
    /// Optional: `WHvQueryGpaRangeDirtyBitmap`, for `Vm::enable_dirty_log`.
    pub query_dirty_bitmap: Option<QueryDirtyBitmap>,
    pub emulator_create: EmulatorCreate,
    pub emulator_destroy: EmulatorDestroy,
    pub emulator_try_io: EmulatorTryIo,
    pub emulator_try_mmio: EmulatorTryMmio,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("get_cpuid_output", &self.get_cpuid_output.is_some())
            .field("query_dirty_bitmap", &self.query_dirty_bitmap.is_some())
            .finish_non_exhaustive()
    }
}

static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();

/// The WHP functions, loaded on first use. Errors are
/// [`HypervisorError::Unavailable`] with a message naming what is missing.
pub fn api() -> Result<&'static Api> {
    match API.get_or_init(load) {
        Ok(api) => Ok(api),
        Err(msg) => Err(HypervisorError::Unavailable(msg.clone())),
    }
}

/// Loads `dll` from System32 only (no DLL planting through the search path).
fn library(dll: &str) -> std::result::Result<HMODULE, String> {
    let wide: Vec<u16> = dll.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the
    // call; a null file handle is what the flags require.
    let module = unsafe {
        LoadLibraryExW(
            wide.as_ptr(),
            std::ptr::null_mut(),
            LOAD_LIBRARY_SEARCH_SYSTEM32,
        )
    };
    if module.is_null() {
        Err(missing_library_message(dll))
    } else {
        Ok(module)
    }
}

/// The address of `name` (NUL-terminated) in `module`, if exported.
fn symbol(module: HMODULE, name: &'static str) -> Option<unsafe extern "system" fn() -> isize> {
    // SAFETY: `module` is a loaded module that is never freed (the table
    // lives for the process); `name` is NUL-terminated ASCII.
    unsafe { GetProcAddress(module, name.as_ptr()) }
}

/// Resolves a function to its declared type.
macro_rules! resolve {
    ($module:expr, $dll:expr, $name:literal, $ty:ty) => {
        match symbol($module, concat!($name, "\0")) {
            // SAFETY: the export named `$name` has the signature `$ty`
            // (WinHvPlatform.h / WinHvEmulation.h, as windows-sys declares it).
            Some(f) => unsafe {
                std::mem::transmute::<unsafe extern "system" fn() -> isize, $ty>(f)
            },
            None => return Err(missing_function_message($dll, $name)),
        }
    };
}

fn load() -> std::result::Result<Api, String> {
    let p = library(PLATFORM_DLL)?;
    let e = library(EMULATION_DLL)?;
    let get_cpuid_output = symbol(p, "WHvGetVirtualProcessorCpuidOutput\0").map(|f| {
        // SAFETY: the export has the signature `GetCpuidOutput`.
        unsafe { std::mem::transmute::<unsafe extern "system" fn() -> isize, GetCpuidOutput>(f) }
    });
    let query_dirty_bitmap = symbol(p, "WHvQueryGpaRangeDirtyBitmap\0").map(|f| {
        // SAFETY: the export has the signature `QueryDirtyBitmap`.
        unsafe { std::mem::transmute::<unsafe extern "system" fn() -> isize, QueryDirtyBitmap>(f) }
    });
    Ok(Api {
        get_capability: resolve!(p, PLATFORM_DLL, "WHvGetCapability", GetCapability),
        create_partition: resolve!(p, PLATFORM_DLL, "WHvCreatePartition", CreatePartition),
        setup_partition: resolve!(p, PLATFORM_DLL, "WHvSetupPartition", PartitionOp),
        delete_partition: resolve!(p, PLATFORM_DLL, "WHvDeletePartition", PartitionOp),
        set_partition_property: resolve!(
            p,
            PLATFORM_DLL,
            "WHvSetPartitionProperty",
            SetPartitionProperty
        ),
        map_gpa_range: resolve!(p, PLATFORM_DLL, "WHvMapGpaRange", MapGpaRange),
        unmap_gpa_range: resolve!(p, PLATFORM_DLL, "WHvUnmapGpaRange", UnmapGpaRange),
        translate_gva: resolve!(p, PLATFORM_DLL, "WHvTranslateGva", TranslateGva),
        create_virtual_processor: resolve!(p, PLATFORM_DLL, "WHvCreateVirtualProcessor", VpFlagsOp),
        delete_virtual_processor: resolve!(p, PLATFORM_DLL, "WHvDeleteVirtualProcessor", VpOp),
        run_virtual_processor: resolve!(p, PLATFORM_DLL, "WHvRunVirtualProcessor", RunVp),
        cancel_run_virtual_processor: resolve!(
            p,
            PLATFORM_DLL,
            "WHvCancelRunVirtualProcessor",
            VpFlagsOp
        ),
        get_registers: resolve!(
            p,
            PLATFORM_DLL,
            "WHvGetVirtualProcessorRegisters",
            GetRegisters
        ),
        set_registers: resolve!(
            p,
            PLATFORM_DLL,
            "WHvSetVirtualProcessorRegisters",
            SetRegisters
        ),
        get_cpuid_output,
        query_dirty_bitmap,
        emulator_create: resolve!(
            e,
            EMULATION_DLL,
            "WHvEmulatorCreateEmulator",
            EmulatorCreate
        ),
        emulator_destroy: resolve!(
            e,
            EMULATION_DLL,
            "WHvEmulatorDestroyEmulator",
            EmulatorDestroy
        ),
        emulator_try_io: resolve!(e, EMULATION_DLL, "WHvEmulatorTryIoEmulation", EmulatorTryIo),
        emulator_try_mmio: resolve!(
            e,
            EMULATION_DLL,
            "WHvEmulatorTryMmioEmulation",
            EmulatorTryMmio
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_dll_names_the_windows_feature_to_enable() {
        let msg = missing_library_message(PLATFORM_DLL);
        assert!(msg.contains("WinHvPlatform.dll"), "{msg}");
        assert!(msg.contains("\"Windows Hypervisor Platform\""), "{msg}");
        assert!(msg.contains("-FeatureName HypervisorPlatform"), "{msg}");
        // It reaches the caller as Unavailable, which the CLI maps to exit 69.
        let err = HypervisorError::Unavailable(msg);
        assert!(matches!(err, HypervisorError::Unavailable(_)));
    }

    #[test]
    fn missing_functions_are_named() {
        let msg = missing_function_message(EMULATION_DLL, "WHvEmulatorTryIoEmulation");
        assert!(msg.contains("WinHvEmulation.dll has no WHvEmulatorTryIoEmulation"));
        let opt = optional_function_message("WHvGetVirtualProcessorCpuidOutput", "x");
        assert!(opt.starts_with("WHvGetVirtualProcessorCpuidOutput is not available"));
    }
}
