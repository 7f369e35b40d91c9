//! Browser key codes to PS/2 scan codes, and the i8042's set 2 -> set 1 translation.
//!
//! Keys are named by the W3C UI Events `KeyboardEvent.code` values ("KeyA",
//! "Enter", "ArrowUp", "ShiftLeft", ...), which name a physical key
//! position, not the character it types: exactly what a scan code is.

/// Where a key's codes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// One base code; set 2 breaks with `F0 code`, set 1 with `code | 0x80`.
    Plain,
    /// The base code prefixed with `E0` (make and break).
    Extended,
    /// Print Screen: two extended codes (fake Left Shift then the key).
    PrintScreen,
    /// Pause: a make-only `E1` sequence; no break code.
    Pause,
}

/// One key of the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The `KeyboardEvent.code` name.
    pub code: &'static str,
    /// How the key's sequences are built.
    pub kind: KeyKind,
    /// Base scan code in set 2.
    pub set2: u8,
    /// Base scan code in set 1.
    pub set1: u8,
}

const fn k(code: &'static str, set2: u8, set1: u8) -> Key {
    Key {
        code,
        kind: KeyKind::Plain,
        set2,
        set1,
    }
}

const fn e(code: &'static str, set2: u8, set1: u8) -> Key {
    Key {
        code,
        kind: KeyKind::Extended,
        set2,
        set1,
    }
}

/// Every key the keyboard has.
pub const KEYS: &[Key] = &[
    k("Escape", 0x76, 0x01),
    k("F1", 0x05, 0x3B),
    k("F2", 0x06, 0x3C),
    k("F3", 0x04, 0x3D),
    k("F4", 0x0C, 0x3E),
    k("F5", 0x03, 0x3F),
    k("F6", 0x0B, 0x40),
    k("F7", 0x83, 0x41),
    k("F8", 0x0A, 0x42),
    k("F9", 0x01, 0x43),
    k("F10", 0x09, 0x44),
    k("F11", 0x78, 0x57),
    k("F12", 0x07, 0x58),
    k("Backquote", 0x0E, 0x29),
    k("Digit1", 0x16, 0x02),
    k("Digit2", 0x1E, 0x03),
    k("Digit3", 0x26, 0x04),
    k("Digit4", 0x25, 0x05),
    k("Digit5", 0x2E, 0x06),
    k("Digit6", 0x36, 0x07),
    k("Digit7", 0x3D, 0x08),
    k("Digit8", 0x3E, 0x09),
    k("Digit9", 0x46, 0x0A),
    k("Digit0", 0x45, 0x0B),
    k("Minus", 0x4E, 0x0C),
    k("Equal", 0x55, 0x0D),
    k("Backspace", 0x66, 0x0E),
    k("Tab", 0x0D, 0x0F),
    k("KeyQ", 0x15, 0x10),
    k("KeyW", 0x1D, 0x11),
    k("KeyE", 0x24, 0x12),
    k("KeyR", 0x2D, 0x13),
    k("KeyT", 0x2C, 0x14),
    k("KeyY", 0x35, 0x15),
    k("KeyU", 0x3C, 0x16),
    k("KeyI", 0x43, 0x17),
    k("KeyO", 0x44, 0x18),
    k("KeyP", 0x4D, 0x19),
    k("BracketLeft", 0x54, 0x1A),
    k("BracketRight", 0x5B, 0x1B),
    k("Enter", 0x5A, 0x1C),
    k("ControlLeft", 0x14, 0x1D),
    k("KeyA", 0x1C, 0x1E),
    k("KeyS", 0x1B, 0x1F),
    k("KeyD", 0x23, 0x20),
    k("KeyF", 0x2B, 0x21),
    k("KeyG", 0x34, 0x22),
    k("KeyH", 0x33, 0x23),
    k("KeyJ", 0x3B, 0x24),
    k("KeyK", 0x42, 0x25),
    k("KeyL", 0x4B, 0x26),
    k("Semicolon", 0x4C, 0x27),
    k("Quote", 0x52, 0x28),
    k("ShiftLeft", 0x12, 0x2A),
    k("Backslash", 0x5D, 0x2B),
    k("KeyZ", 0x1A, 0x2C),
    k("KeyX", 0x22, 0x2D),
    k("KeyC", 0x21, 0x2E),
    k("KeyV", 0x2A, 0x2F),
    k("KeyB", 0x32, 0x30),
    k("KeyN", 0x31, 0x31),
    k("KeyM", 0x3A, 0x32),
    k("Comma", 0x41, 0x33),
    k("Period", 0x49, 0x34),
    k("Slash", 0x4A, 0x35),
    k("ShiftRight", 0x59, 0x36),
    k("NumpadMultiply", 0x7C, 0x37),
    k("AltLeft", 0x11, 0x38),
    k("Space", 0x29, 0x39),
    k("CapsLock", 0x58, 0x3A),
    k("NumLock", 0x77, 0x45),
    k("ScrollLock", 0x7E, 0x46),
    k("Numpad7", 0x6C, 0x47),
    k("Numpad8", 0x75, 0x48),
    k("Numpad9", 0x7D, 0x49),
    k("NumpadSubtract", 0x7B, 0x4A),
    k("Numpad4", 0x6B, 0x4B),
    k("Numpad5", 0x73, 0x4C),
    k("Numpad6", 0x74, 0x4D),
    k("NumpadAdd", 0x79, 0x4E),
    k("Numpad1", 0x69, 0x4F),
    k("Numpad2", 0x72, 0x50),
    k("Numpad3", 0x7A, 0x51),
    k("Numpad0", 0x70, 0x52),
    k("NumpadDecimal", 0x71, 0x53),
    k("IntlBackslash", 0x61, 0x56),
    k("KanaMode", 0x13, 0x70),
    k("IntlRo", 0x51, 0x73),
    k("Convert", 0x64, 0x79),
    k("NonConvert", 0x67, 0x7B),
    k("IntlYen", 0x6A, 0x7D),
    k("NumpadComma", 0x6D, 0x7E),
    e("NumpadEnter", 0x5A, 0x1C),
    e("ControlRight", 0x14, 0x1D),
    e("NumpadDivide", 0x4A, 0x35),
    e("AltRight", 0x11, 0x38),
    e("Home", 0x6C, 0x47),
    e("ArrowUp", 0x75, 0x48),
    e("PageUp", 0x7D, 0x49),
    e("ArrowLeft", 0x6B, 0x4B),
    e("ArrowRight", 0x74, 0x4D),
    e("End", 0x69, 0x4F),
    e("ArrowDown", 0x72, 0x50),
    e("PageDown", 0x7A, 0x51),
    e("Insert", 0x70, 0x52),
    e("Delete", 0x71, 0x53),
    e("MetaLeft", 0x1F, 0x5B),
    e("MetaRight", 0x27, 0x5C),
    e("ContextMenu", 0x2F, 0x5D),
    e("Power", 0x37, 0x5E),
    e("Sleep", 0x3F, 0x5F),
    e("WakeUp", 0x5E, 0x63),
    e("AudioVolumeMute", 0x23, 0x20),
    e("AudioVolumeDown", 0x21, 0x2E),
    e("AudioVolumeUp", 0x32, 0x30),
    e("MediaPlayPause", 0x34, 0x22),
    e("MediaStop", 0x3B, 0x24),
    e("MediaTrackPrevious", 0x15, 0x10),
    e("MediaTrackNext", 0x4D, 0x19),
    e("BrowserHome", 0x3A, 0x32),
    Key {
        code: "PrintScreen",
        kind: KeyKind::PrintScreen,
        set2: 0x7C,
        set1: 0x37,
    },
    Key {
        code: "Pause",
        kind: KeyKind::Pause,
        set2: 0x77,
        set1: 0x45,
    },
];

/// The key named `code`, if the keyboard has it.
pub fn lookup(code: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.code == code)
}

/// The scan code set a sequence is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanSet {
    /// Set 1 (the XT codes; what translation produces).
    Set1,
    /// Set 2 (the AT default).
    Set2,
}

/// Appends the bytes `key` sends when pressed (`pressed`) or released to `out`.
pub fn sequence(key: &Key, set: ScanSet, pressed: bool, out: &mut Vec<u8>) {
    match (set, key.kind) {
        (ScanSet::Set2, KeyKind::Pause) | (ScanSet::Set1, KeyKind::Pause) if !pressed => {}
        (ScanSet::Set2, KeyKind::Pause) => {
            out.extend_from_slice(&[0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77]);
        }
        (ScanSet::Set1, KeyKind::Pause) => {
            out.extend_from_slice(&[0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]);
        }
        (ScanSet::Set2, KeyKind::PrintScreen) if pressed => {
            out.extend_from_slice(&[0xE0, 0x12, 0xE0, 0x7C]);
        }
        (ScanSet::Set2, KeyKind::PrintScreen) => {
            out.extend_from_slice(&[0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12]);
        }
        (ScanSet::Set1, KeyKind::PrintScreen) if pressed => {
            out.extend_from_slice(&[0xE0, 0x2A, 0xE0, 0x37]);
        }
        (ScanSet::Set1, KeyKind::PrintScreen) => {
            out.extend_from_slice(&[0xE0, 0xB7, 0xE0, 0xAA]);
        }
        (ScanSet::Set2, kind) => {
            if kind == KeyKind::Extended {
                out.push(0xE0);
            }
            if !pressed {
                out.push(0xF0);
            }
            out.push(key.set2);
        }
        (ScanSet::Set1, kind) => {
            if kind == KeyKind::Extended {
                out.push(0xE0);
            }
            out.push(if pressed { key.set1 } else { key.set1 | 0x80 });
        }
    }
}

/// The i8042's translation of one set-2 byte (without the `F0` release
/// prefix, which the controller folds into bit 7 of the next byte).
///
/// Built from the key table, plus the few non-key bytes a driver sees
/// translated: `00` (overrun) becomes `FF`, and the "get scan code set"
/// answers 1/2/3 become `43`/`41`/`3F`. Bytes of 0x80 and above pass
/// unchanged except `83` (F7), which becomes `41` (so the translated
/// identify answer is `AB 41`, as on a PC). Set-2 bytes no key sends
/// pass unchanged.
pub fn translate(byte: u8) -> u8 {
    match byte {
        0x00 => 0xFF,
        0x02 => 0x41,
        _ => KEYS
            .iter()
            .find(|key| key.set2 == byte && key.kind != KeyKind::Pause)
            .map_or(byte, |key| key.set1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate_stream(set2: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut release = false;
        for &b in set2 {
            if b == 0xF0 {
                release = true;
                continue;
            }
            let t = translate(b);
            out.push(if release { t | 0x80 } else { t });
            release = false;
        }
        out
    }

    #[test]
    fn translation_of_every_set2_sequence_is_the_set1_sequence() {
        for key in KEYS {
            for pressed in [true, false] {
                let mut s2 = Vec::new();
                let mut s1 = Vec::new();
                sequence(key, ScanSet::Set2, pressed, &mut s2);
                sequence(key, ScanSet::Set1, pressed, &mut s1);
                assert_eq!(translate_stream(&s2), s1, "{} pressed={pressed}", key.code);
            }
        }
    }

    #[test]
    fn codes_are_unique_per_kind() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                assert_ne!(a.code, b.code);
                if a.kind == b.kind {
                    assert_ne!(a.set2, b.set2, "{} vs {}", a.code, b.code);
                    assert_ne!(a.set1, b.set1, "{} vs {}", a.code, b.code);
                }
            }
        }
    }

    #[test]
    fn known_sequences() {
        let mut out = Vec::new();
        let up = lookup("ArrowUp").copied();
        assert!(up.is_some());
        if let Some(up) = up {
            sequence(&up, ScanSet::Set2, false, &mut out);
        }
        assert_eq!(out, [0xE0, 0xF0, 0x75]);
        assert!(lookup("NoSuchKey").is_none());
        assert_eq!(translate(0x83), 0x41);
        assert_eq!(translate(0xFA), 0xFA);
    }
}
