//! `Seraph_BootInfo` (280 bytes) and the 40-byte memory descriptor, encoded
//! little-endian at the boot protocol's offsets.

/// "TBHPARES": bytes 54 42 48 50 41 52 45 53 in memory.
pub const MAGIC: u64 = 0x5345_5241_5048_4254;
/// Boot-info version.
pub const VERSION: u32 = 1;

/// Flag: a framebuffer is described.
pub const FLAG_FRAMEBUFFER: u32 = 0x1;
/// Flag: ACPI 1.0 RSDP given (never set today).
pub const FLAG_ACPI_V1: u32 = 0x2;
/// Flag: ACPI 2.0+ RSDP given (never set today).
pub const FLAG_ACPI_V2: u32 = 0x4;
/// Flag: SMBIOS given (never set today).
pub const FLAG_SMBIOS: u32 = 0x8;
/// Flag: a serial port (COM1) is present.
pub const FLAG_SERIAL: u32 = 0x10;
/// Flag: EFI runtime services (never set).
pub const FLAG_EFI_RUNTIME: u32 = 0x20;

/// Framebuffer format: blue, green, red, alpha bytes.
pub const FB_FORMAT_BGRA8: u32 = 0;
/// Framebuffer format: red, green, blue, alpha bytes.
pub const FB_FORMAT_RGBA8: u32 = 1;
/// Framebuffer format: blue, green, red bytes.
pub const FB_FORMAT_BGR8: u32 = 2;
/// Framebuffer format: red, green, blue bytes.
pub const FB_FORMAT_RGB8: u32 = 3;

/// Size of a memory descriptor in bytes.
pub const DESC_SIZE: u64 = 40;
/// Memory descriptor version.
pub const DESC_VERSION: u32 = 1;

/// Memory type: reserved.
pub const MEM_RESERVED: u32 = 0;
/// Memory type: loader code.
pub const MEM_LOADER_CODE: u32 = 1;
/// Memory type: loader data.
pub const MEM_LOADER_DATA: u32 = 2;
/// Memory type: boot services.
pub const MEM_BOOT_SERVICES: u32 = 3;
/// Memory type: runtime services.
pub const MEM_RUNTIME_SERVICES: u32 = 4;
/// Memory type: conventional (free) memory.
pub const MEM_CONVENTIONAL: u32 = 7;
/// Memory type: unusable.
pub const MEM_UNUSABLE: u32 = 8;
/// Memory type: ACPI reclaimable.
pub const MEM_ACPI_RECLAIM: u32 = 9;
/// Memory type: ACPI NVS.
pub const MEM_ACPI_NVS: u32 = 10;
/// Memory type: memory-mapped I/O.
pub const MEM_MMIO: u32 = 11;
/// Memory type: memory-mapped I/O port space.
pub const MEM_MMIO_PORT: u32 = 12;
/// Memory type: persistent memory.
pub const MEM_PERSISTENT: u32 = 14;
/// Memory type: the kernel image.
pub const MEM_KERNEL_IMAGE: u32 = 0x8000_0000;
/// Memory type: the initial kernel stack.
pub const MEM_KERNEL_STACK: u32 = 0x8000_0001;
/// Memory type: the boot info and memory map.
pub const MEM_BOOT_INFO: u32 = 0x8000_0002;

/// Attribute: uncacheable.
pub const ATTR_UC: u64 = 0x1;
/// Attribute: write-combining.
pub const ATTR_WC: u64 = 0x2;
/// Attribute: write-through.
pub const ATTR_WT: u64 = 0x4;
/// Attribute: write-back.
pub const ATTR_WB: u64 = 0x8;

/// `Seraph_BootInfo`: what the kernel receives in RDI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootInfo {
    /// Offset 0: [`MAGIC`].
    pub magic: u64,
    /// Offset 8: [`VERSION`].
    pub version: u32,
    /// Offset 12: `FLAG_*` bits.
    pub flags: u32,
    /// Offset 16: framebuffer guest-physical base.
    pub framebuffer_base: u64,
    /// Offset 24: width * height * 4.
    pub framebuffer_size: u64,
    /// Offset 32: pixels per line.
    pub fb_width: u32,
    /// Offset 36: lines.
    pub fb_height: u32,
    /// Offset 40: bytes per line.
    pub fb_stride: u32,
    /// Offset 44: `FB_FORMAT_*`.
    pub fb_format: u32,
    /// Offset 48: physical address of the descriptor array.
    pub memory_map_base: u64,
    /// Offset 56: count * desc_size.
    pub memory_map_size: u64,
    /// Offset 64: [`DESC_SIZE`].
    pub memory_desc_size: u64,
    /// Offset 72: [`DESC_VERSION`].
    pub memory_desc_version: u32,
    /// Offset 76: number of descriptors.
    pub memory_map_count: u32,
    /// Offset 80: lowest physical address of the kernel.
    pub kernel_phys_base: u64,
    /// Offset 88: lowest virtual address of the kernel.
    pub kernel_virt_base: u64,
    /// Offset 96: bytes from the lowest to the highest loaded address.
    pub kernel_size: u64,
    /// Offset 104: ACPI RSDP, 0 when none.
    pub rsdp_address: u64,
    /// Offset 112: SMBIOS entry point, 0.
    pub smbios_address: u64,
    /// Offset 120: base of the initial stack.
    pub stack_phys: u64,
    /// Offset 128: size of the initial stack.
    pub stack_size: u64,
    /// Offset 136: primordial arena base.
    pub primordial_arena_phys: u64,
    /// Offset 144: primordial arena size.
    pub primordial_arena_size: u64,
    /// Offset 152: the PML4 (CR3).
    pub pml4_phys: u64,
}

impl BootInfo {
    /// Encoded size in bytes (the last 120 are reserved, zero).
    pub const SIZE: usize = 280;

    /// Encodes the boot info little-endian at the protocol's offsets.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &self.magic.to_le_bytes());
        put(8, &self.version.to_le_bytes());
        put(12, &self.flags.to_le_bytes());
        put(16, &self.framebuffer_base.to_le_bytes());
        put(24, &self.framebuffer_size.to_le_bytes());
        put(32, &self.fb_width.to_le_bytes());
        put(36, &self.fb_height.to_le_bytes());
        put(40, &self.fb_stride.to_le_bytes());
        put(44, &self.fb_format.to_le_bytes());
        put(48, &self.memory_map_base.to_le_bytes());
        put(56, &self.memory_map_size.to_le_bytes());
        put(64, &self.memory_desc_size.to_le_bytes());
        put(72, &self.memory_desc_version.to_le_bytes());
        put(76, &self.memory_map_count.to_le_bytes());
        put(80, &self.kernel_phys_base.to_le_bytes());
        put(88, &self.kernel_virt_base.to_le_bytes());
        put(96, &self.kernel_size.to_le_bytes());
        put(104, &self.rsdp_address.to_le_bytes());
        put(112, &self.smbios_address.to_le_bytes());
        put(120, &self.stack_phys.to_le_bytes());
        put(128, &self.stack_size.to_le_bytes());
        put(136, &self.primordial_arena_phys.to_le_bytes());
        put(144, &self.primordial_arena_size.to_le_bytes());
        put(152, &self.pml4_phys.to_le_bytes());
        b
    }
}

/// One memory-map entry (UEFI-like, 40 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryDescriptor {
    /// `MEM_*` type.
    pub memory_type: u32,
    /// First byte, 4 KiB aligned.
    pub phys_start: u64,
    /// Always 0.
    pub virt_start: u64,
    /// Length in 4 KiB pages.
    pub page_count: u64,
    /// `ATTR_*` bits.
    pub attribute: u64,
}

impl MemoryDescriptor {
    /// One past the last byte described (saturating).
    pub fn phys_end(&self) -> u64 {
        self.phys_start.saturating_add(
            self.page_count
                .saturating_mul(seraph_memory::layout::PAGE_SIZE),
        )
    }

    /// Encodes the descriptor: type, 4 bytes of zero padding, then four u64s.
    pub fn to_bytes(&self) -> [u8; DESC_SIZE as usize] {
        let mut b = [0u8; DESC_SIZE as usize];
        b[0..4].copy_from_slice(&self.memory_type.to_le_bytes());
        b[8..16].copy_from_slice(&self.phys_start.to_le_bytes());
        b[16..24].copy_from_slice(&self.virt_start.to_le_bytes());
        b[24..32].copy_from_slice(&self.page_count.to_le_bytes());
        b[32..40].copy_from_slice(&self.attribute.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }
    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn every_field_at_its_offset() {
        let info = BootInfo {
            magic: MAGIC,
            version: 0x0B0B_0B01,
            flags: 0x0C0C_0C02,
            framebuffer_base: 0x1010_1010_1010_1003,
            framebuffer_size: 0x1818_1818_1818_1804,
            fb_width: 0x2020_2005,
            fb_height: 0x2424_2406,
            fb_stride: 0x2828_2807,
            fb_format: 0x2C2C_2C08,
            memory_map_base: 0x3030_3030_3030_3009,
            memory_map_size: 0x3838_3838_3838_380A,
            memory_desc_size: 0x4040_4040_4040_400B,
            memory_desc_version: 0x4848_480C,
            memory_map_count: 0x4C4C_4C0D,
            kernel_phys_base: 0x5050_5050_5050_500E,
            kernel_virt_base: 0x5858_5858_5858_580F,
            kernel_size: 0x6060_6060_6060_6010,
            rsdp_address: 0x6868_6868_6868_6811,
            smbios_address: 0x7070_7070_7070_7012,
            stack_phys: 0x7878_7878_7878_7813,
            stack_size: 0x8080_8080_8080_8014,
            primordial_arena_phys: 0x8888_8888_8888_8815,
            primordial_arena_size: 0x9090_9090_9090_9016,
            pml4_phys: 0x9898_9898_9898_9817,
        };
        let b = info.to_bytes();
        assert_eq!(b.len(), 280);
        assert_eq!(b[0..8], [0x54, 0x42, 0x48, 0x50, 0x41, 0x52, 0x45, 0x53]);
        assert_eq!(u32_at(&b, 8), 0x0B0B_0B01);
        assert_eq!(u32_at(&b, 12), 0x0C0C_0C02);
        assert_eq!(u64_at(&b, 16), 0x1010_1010_1010_1003);
        assert_eq!(u64_at(&b, 24), 0x1818_1818_1818_1804);
        assert_eq!(u32_at(&b, 32), 0x2020_2005);
        assert_eq!(u32_at(&b, 36), 0x2424_2406);
        assert_eq!(u32_at(&b, 40), 0x2828_2807);
        assert_eq!(u32_at(&b, 44), 0x2C2C_2C08);
        assert_eq!(u64_at(&b, 48), 0x3030_3030_3030_3009);
        assert_eq!(u64_at(&b, 56), 0x3838_3838_3838_380A);
        assert_eq!(u64_at(&b, 64), 0x4040_4040_4040_400B);
        assert_eq!(u32_at(&b, 72), 0x4848_480C);
        assert_eq!(u32_at(&b, 76), 0x4C4C_4C0D);
        assert_eq!(u64_at(&b, 80), 0x5050_5050_5050_500E);
        assert_eq!(u64_at(&b, 88), 0x5858_5858_5858_580F);
        assert_eq!(u64_at(&b, 96), 0x6060_6060_6060_6010);
        assert_eq!(u64_at(&b, 104), 0x6868_6868_6868_6811);
        assert_eq!(u64_at(&b, 112), 0x7070_7070_7070_7012);
        assert_eq!(u64_at(&b, 120), 0x7878_7878_7878_7813);
        assert_eq!(u64_at(&b, 128), 0x8080_8080_8080_8014);
        assert_eq!(u64_at(&b, 136), 0x8888_8888_8888_8815);
        assert_eq!(u64_at(&b, 144), 0x9090_9090_9090_9016);
        assert_eq!(u64_at(&b, 152), 0x9898_9898_9898_9817);
        assert!(b[160..280].iter().all(|&x| x == 0), "reserved tail is zero");
    }

    #[test]
    fn descriptor_layout() {
        let d = MemoryDescriptor {
            memory_type: MEM_BOOT_INFO,
            phys_start: 0x8_0000,
            virt_start: 0,
            page_count: 0x10,
            attribute: ATTR_WB,
        };
        let b = d.to_bytes();
        assert_eq!(b[0..8], [0x02, 0x00, 0x00, 0x80, 0, 0, 0, 0]);
        assert_eq!(u64_at(&b, 8), 0x8_0000);
        assert_eq!(u64_at(&b, 16), 0);
        assert_eq!(u64_at(&b, 24), 0x10);
        assert_eq!(u64_at(&b, 32), 0x8);
        assert_eq!(d.phys_end(), 0x9_0000);
    }
}
