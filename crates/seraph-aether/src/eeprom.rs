//! The card's 64-word EEPROM: the MAC address in words 0-2, the PCI ids,
//! and a checksum word that makes words 0-0x3F sum to 0xBABA. Drivers read
//! it through EERD (one word per request, done at once) or by
//! bit-banging the Microwire interface in EECD.

use crate::regs::eecd;

/// Words in the EEPROM.
pub const WORDS: usize = 64;
/// What words 0-0x3F sum to in a valid image.
pub const CHECKSUM_TARGET: u16 = 0xBABA;
/// Word of the checksum.
const CHECKSUM_WORD: usize = 0x3F;
/// Microwire READ opcode (after the start bit).
const OP_READ: u16 = 0b10;

/// The EEPROM image and the Microwire state machine.
#[derive(Debug, Clone)]
pub struct Eeprom {
    words: [u16; WORDS],
    /// Last EECD value the driver wrote (SK, CS, DI, REQ).
    eecd: u32,
    wire: Wire,
}

/// Where a Microwire transaction stands.
#[derive(Debug, Clone, Copy, Default)]
struct Wire {
    /// The start bit was seen.
    started: bool,
    /// Command bits received after the start bit (opcode then address).
    bits_in: u32,
    command: u16,
    /// Data bits shifted out so far; `None` until a read command completes.
    bits_out: Option<u32>,
    /// The bit on DO right now.
    out: bool,
}

impl Eeprom {
    /// An image for `mac` with the 82540EM's ids and a valid checksum.
    pub fn new(mac: [u8; 6]) -> Self {
        let mut words = [0u16; WORDS];
        for (i, w) in words.iter_mut().take(3).enumerate() {
            *w = u16::from_le_bytes([mac[2 * i], mac[2 * i + 1]]);
        }
        // Initialization control 1 and the PCI identity words.
        words[0x0A] = 0x4408;
        words[0x0B] = 0x0000; // subsystem id
        words[0x0C] = 0x8086; // subsystem vendor
        words[0x0D] = 0x100E; // device id
        words[0x0E] = 0x8086; // vendor id
        let sum = words[..CHECKSUM_WORD]
            .iter()
            .fold(0u16, |a, &w| a.wrapping_add(w));
        words[CHECKSUM_WORD] = CHECKSUM_TARGET.wrapping_sub(sum);
        Self {
            words,
            eecd: 0,
            wire: Wire::default(),
        }
    }

    /// Word `index`, or 0 past the end.
    pub fn word(&self, index: usize) -> u16 {
        self.words.get(index).copied().unwrap_or(0)
    }

    /// The MAC address in words 0-2.
    pub fn mac(&self) -> [u8; 6] {
        let mut mac = [0u8; 6];
        for (i, pair) in mac.chunks_exact_mut(2).enumerate() {
            pair.copy_from_slice(&self.word(i).to_le_bytes());
        }
        mac
    }

    /// EECD as the driver reads it.
    pub fn read_eecd(&self) -> u32 {
        let kept = self.eecd & (eecd::SK | eecd::CS | eecd::DI | eecd::REQ);
        let grant = if self.eecd & eecd::REQ != 0 {
            eecd::GNT
        } else {
            0
        };
        let out = if self.wire.out { eecd::DO } else { 0 };
        kept | grant | out | eecd::PRES
    }

    /// A driver write of EECD: clock edges drive the Microwire machine.
    pub fn write_eecd(&mut self, value: u32) {
        let old = self.eecd;
        self.eecd = value;
        if value & eecd::CS == 0 {
            self.wire = Wire::default();
            return;
        }
        let rising = old & eecd::SK == 0 && value & eecd::SK != 0;
        if !rising {
            return;
        }
        let di = value & eecd::DI != 0;
        let w = &mut self.wire;
        if let Some(n) = w.bits_out {
            let word = usize::from(w.command & 0x3F) + (n / 16) as usize;
            let bit = 15 - (n % 16);
            w.out = (self.words.get(word % WORDS).copied().unwrap_or(0) >> bit) & 1 != 0;
            w.bits_out = Some(n.saturating_add(1));
        } else if !w.started {
            w.started = di;
        } else {
            w.command = (w.command << 1) | u16::from(di);
            w.bits_in += 1;
            if w.bits_in == 8 {
                if w.command >> 6 == OP_READ {
                    // The dummy zero bit goes out with the last address bit.
                    w.bits_out = Some(0);
                    w.out = false;
                } else {
                    // Writes and erases are not modelled: the image is read-only.
                    *w = Wire::default();
                }
            }
        }
    }

    /// An EERD write: a word read that completes at once. Returns the
    /// value EERD reads back (DONE, the address and the data).
    pub fn eerd(&self, value: u32) -> u32 {
        use crate::regs::eerd;
        if value & eerd::START == 0 {
            return value & !eerd::DONE;
        }
        let addr = (value >> eerd::ADDR_SHIFT) & 0xFF;
        let data = u32::from(self.word(addr as usize));
        (data << eerd::DATA_SHIFT) | (addr << eerd::ADDR_SHIFT) | eerd::DONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x53, 0x45, 0x52, 0x00, 0x01];

    #[test]
    fn image_holds_the_mac_and_a_valid_checksum() {
        let e = Eeprom::new(MAC);
        assert_eq!(e.word(0), 0x5302);
        assert_eq!(e.word(2), 0x0100);
        assert_eq!(e.mac(), MAC);
        let sum = (0..WORDS).fold(0u16, |a, i| a.wrapping_add(e.word(i)));
        assert_eq!(sum, CHECKSUM_TARGET);
        assert_eq!(e.word(1000), 0);
    }

    #[test]
    fn eerd_reads_complete_at_once() {
        let e = Eeprom::new(MAC);
        let v = e.eerd(1 | (1 << 8));
        assert_ne!(v & 0x10, 0);
        assert_eq!(v >> 16, 0x5245);
        assert_eq!(e.eerd(0x0d << 8) & 0x10, 0, "no START, no DONE");
    }

    /// Clocks one bit in the way Linux-style drivers do (raise, lower).
    fn clock(e: &mut Eeprom, di: bool) -> bool {
        let base = eecd::CS | eecd::REQ | if di { eecd::DI } else { 0 };
        e.write_eecd(base);
        e.write_eecd(base | eecd::SK);
        let out = e.read_eecd() & eecd::DO != 0;
        e.write_eecd(base);
        out
    }

    fn microwire_read(e: &mut Eeprom, addr: u16) -> u16 {
        e.write_eecd(eecd::REQ);
        assert_ne!(e.read_eecd() & eecd::GNT, 0);
        e.write_eecd(eecd::REQ | eecd::CS);
        for bit in (0..3).rev() {
            clock(e, (0b110 >> bit) & 1 != 0);
        }
        for bit in (0..6).rev() {
            clock(e, (addr >> bit) & 1 != 0);
        }
        let mut word = 0u16;
        for _ in 0..16 {
            word = (word << 1) | u16::from(clock(e, false));
        }
        e.write_eecd(eecd::REQ);
        word
    }

    #[test]
    fn microwire_bit_banging_reads_words() {
        let mut e = Eeprom::new(MAC);
        assert_ne!(e.read_eecd() & eecd::PRES, 0);
        for addr in [0u16, 1, 2, 0x0e, 0x3f] {
            assert_eq!(microwire_read(&mut e, addr), e.word(usize::from(addr)));
        }
    }

    #[test]
    fn microwire_ignores_other_opcodes_and_resets_on_cs_low() {
        let mut e = Eeprom::new(MAC);
        e.write_eecd(eecd::CS);
        // EWEN-style command 1 00 11xxxx: ignored, DO stays low.
        for bit in (0..9).rev() {
            let out = clock(&mut e, (0b1_0011_0000u16 >> bit) & 1 != 0);
            assert!(!out);
        }
        e.write_eecd(0);
        assert_eq!(microwire_read(&mut e, 1), 0x5245);
    }
}
