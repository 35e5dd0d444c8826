//! The GSM 7-bit alphabets of 3GPP TS 23.038: the default alphabet (§6.2.1), its extension
//! table (§6.2.1.1), and the Turkish, Spanish and Portuguese national language tables
//! (annex A.2 single shift, A.3 locking shift).
//!
//! Septets here are one per `u8`; packing them into octets is the `septet` module's job. Sending
//! uses only the default alphabet and its extension table (every handset reads those); the
//! national tables are for reading what others send.

/// The escape septet: the next septet is read from the single-shift (extension) table.
pub(crate) const ESCAPE: u8 = 0x1B;

/// Written in place of [`ESCAPE`] in the locking-shift tables: it is never a character.
const ESC: char = '\u{1B}';

/// TS 23.038 §6.2.1: the default alphabet.
const DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ESC, 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// TS 23.038 §6.2.1.1: the extension table reached with [`ESCAPE`].
const DEFAULT_EXTENSION: &[(u8, char)] = &[
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// TS 23.038 A.3.1: Turkish locking shift table.
const TURKISH_LOCKING: [char; 128] = [
    '@', '£', '$', '¥', '€', 'é', 'ù', 'ı', 'ò', 'Ç', '\n', 'Ğ', 'ğ', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ESC, 'Ş', 'ş', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    'İ', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    'ç', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// TS 23.038 A.2.1: Turkish single shift table.
const TURKISH_SINGLE: &[(u8, char)] = &[
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x47, 'Ğ'),
    (0x49, 'İ'),
    (0x53, 'Ş'),
    (0x63, 'ç'),
    (0x65, '€'),
    (0x67, 'ğ'),
    (0x69, 'ı'),
    (0x73, 'ş'),
];

/// TS 23.038 A.2.2: Spanish single shift table (Spanish has no locking shift table).
const SPANISH_SINGLE: &[(u8, char)] = &[
    (0x09, 'ç'),
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x41, 'Á'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x61, 'á'),
    (0x65, '€'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
];

/// TS 23.038 A.3.3: Portuguese locking shift table.
const PORTUGUESE_LOCKING: [char; 128] = [
    '@', '£', '$', '¥', 'ê', 'é', 'ú', 'í', 'ó', 'ç', '\n', 'Ô', 'ô', '\r', 'Á', 'á', //
    'Δ', '_', 'ª', 'Ç', 'À', '∞', '^', '\\', '€', 'Ó', '|', ESC, 'Â', 'â', 'Ê', 'É', //
    ' ', '!', '"', '#', 'º', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    'Í', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ã', 'Õ', 'Ú', 'Ü', '§', //
    '~', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ã', 'õ', '`', 'ü', 'à', //
];

/// TS 23.038 A.2.3: Portuguese single shift table.
const PORTUGUESE_SINGLE: &[(u8, char)] = &[
    (0x05, 'ê'),
    (0x09, 'ç'),
    (0x0A, '\u{0C}'),
    (0x0B, 'Ô'),
    (0x0C, 'ô'),
    (0x0E, 'Á'),
    (0x0F, 'á'),
    (0x12, 'Φ'),
    (0x13, 'Γ'),
    (0x14, '^'),
    (0x15, 'Ω'),
    (0x16, 'Π'),
    (0x17, 'Ψ'),
    (0x18, 'Σ'),
    (0x19, 'Θ'),
    (0x1F, 'Ê'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x41, 'À'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x5B, 'Ã'),
    (0x5C, 'Õ'),
    (0x61, 'Â'),
    (0x65, '€'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
    (0x7B, 'ã'),
    (0x7C, 'õ'),
    (0x7F, 'â'),
];

/// A national language identifier of TS 23.038 §6.2.1.2.4 (UDH IEs 0x24 and 0x25).
pub const TURKISH: u8 = 1;
/// Spanish: single shift table only.
pub const SPANISH: u8 = 2;
/// Portuguese.
pub const PORTUGUESE: u8 = 3;

/// The pair of tables one message is read with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    locking: &'static [char; 128],
    single: &'static [(u8, char)],
}

impl Tables {
    /// The default alphabet and its extension table.
    pub(crate) const DEFAULT: Tables = Tables {
        locking: &DEFAULT,
        single: DEFAULT_EXTENSION,
    };

    /// The tables named by the UDH's national language IEs. An identifier this codec does not
    /// know falls back to the default table, as TS 23.038 §6.2.1.2.4 asks of a receiver.
    pub(crate) fn national(locking: Option<u8>, single: Option<u8>) -> Tables {
        let locking = match locking {
            Some(TURKISH) => &TURKISH_LOCKING,
            Some(PORTUGUESE) => &PORTUGUESE_LOCKING,
            _ => &DEFAULT,
        };
        let single = match single {
            Some(TURKISH) => TURKISH_SINGLE,
            Some(SPANISH) => SPANISH_SINGLE,
            Some(PORTUGUESE) => PORTUGUESE_SINGLE,
            _ => DEFAULT_EXTENSION,
        };
        Tables { locking, single }
    }

    /// Appends the text of `septets` (one septet per octet, high bit ignored) to `out`.
    ///
    /// An escape followed by a code the single-shift table lacks shows the locking table's
    /// character for that code; an escape followed by another escape, or at the very end,
    /// shows a space (TS 23.038 §6.2.1.1).
    pub(crate) fn decode_into(&self, septets: impl IntoIterator<Item = u8>, out: &mut String) {
        let mut escaped = false;
        for septet in septets {
            let septet = septet & 0x7F;
            if escaped {
                escaped = false;
                if septet == ESCAPE {
                    out.push(' ');
                } else {
                    let shifted = self.single.iter().find(|(code, _)| *code == septet);
                    out.push(shifted.map_or(self.locking[usize::from(septet)], |(_, c)| *c));
                }
            } else if septet == ESCAPE {
                escaped = true;
            } else {
                out.push(self.locking[usize::from(septet)]);
            }
        }
        if escaped {
            out.push(' ');
        }
    }
}

/// Latin-1 characters of the default alphabet → septet; 0xFF where there is none.
const LATIN1_TO_DEFAULT: [u8; 256] = {
    let mut table = [0xFF_u8; 256];
    let mut septet = 0;
    while septet < 128 {
        let c = DEFAULT[septet] as u32;
        if c < 256 && septet != ESCAPE as usize {
            table[c as usize] = septet as u8;
        }
        septet += 1;
    }
    table
};

/// The default-alphabet septet for `c`, if it has one.
pub(crate) fn default_septet(c: char) -> Option<u8> {
    let code = c as u32;
    if code < 256 {
        let septet = LATIN1_TO_DEFAULT[code as usize];
        return (septet != 0xFF).then_some(septet);
    }
    match c {
        'Δ' => Some(0x10),
        'Φ' => Some(0x12),
        'Γ' => Some(0x13),
        'Λ' => Some(0x14),
        'Ω' => Some(0x15),
        'Π' => Some(0x16),
        'Ψ' => Some(0x17),
        'Σ' => Some(0x18),
        'Θ' => Some(0x19),
        'Ξ' => Some(0x1A),
        _ => None,
    }
}

/// The extension-table septet (sent after [`ESCAPE`]) for `c`, if it has one.
pub(crate) fn extension_septet(c: char) -> Option<u8> {
    DEFAULT_EXTENSION
        .iter()
        .find(|(_, shifted)| *shifted == c)
        .map(|(code, _)| *code)
}

/// How many septets `c` takes in the default alphabet with its extension table: 1, 2
/// (escape + code), or `None` when it cannot be written in GSM 7-bit at all.
pub(crate) fn septet_len(c: char) -> Option<usize> {
    if default_septet(c).is_some() {
        Some(1)
    } else if extension_septet(c).is_some() {
        Some(2)
    } else {
        None
    }
}

/// Appends the septets of `c` to `out`; returns false (and appends nothing) when `c` has none.
pub(crate) fn encode_char(c: char, out: &mut Vec<u8>) -> bool {
    if let Some(septet) = default_septet(c) {
        out.push(septet);
        true
    } else if let Some(septet) = extension_septet(c) {
        out.push(ESCAPE);
        out.push(septet);
        true
    } else {
        false
    }
}

/// Whether all of `text` can be written in the default alphabet with its extension table.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| septet_len(c).is_some())
}

/// The number of septets `text` takes, or `None` if some character has no GSM 7-bit form.
pub fn septet_count(text: &str) -> Option<usize> {
    text.chars().map(septet_len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(tables: Tables, septets: &[u8]) -> String {
        let mut out = String::new();
        tables.decode_into(septets.iter().copied(), &mut out);
        out
    }

    #[test]
    fn every_default_character_round_trips() {
        for (septet, &c) in DEFAULT.iter().enumerate() {
            if septet == usize::from(ESCAPE) {
                continue;
            }
            assert_eq!(default_septet(c), Some(septet as u8), "{c:?}");
        }
        for &(code, c) in DEFAULT_EXTENSION {
            assert_eq!(default_septet(c), None, "{c:?} is in both tables");
            assert_eq!(extension_septet(c), Some(code));
        }
    }

    #[test]
    fn extension_characters_take_two_septets() {
        assert_eq!(septet_count("€[]{}|^~\\\u{0C}"), Some(20));
        assert_eq!(septet_count("Hello @£$"), Some(9));
        assert_eq!(septet_count("naïve"), None);
        assert!(!is_gsm7("😀"));
        let mut out = Vec::new();
        assert!(encode_char('€', &mut out));
        assert_eq!(out, [0x1B, 0x65]);
    }

    #[test]
    fn escape_quirks_follow_ts_23_038() {
        // Unknown extension code: the default character; escape-escape and a trailing escape:
        // a space.
        assert_eq!(decode(Tables::DEFAULT, &[0x1B, 0x41]), "A");
        assert_eq!(decode(Tables::DEFAULT, &[0x1B, 0x1B, 0x41]), " A");
        assert_eq!(decode(Tables::DEFAULT, &[0x41, 0x1B]), "A ");
    }

    #[test]
    fn turkish_tables() {
        // "Şişli" with the Turkish locking table: Ş=0x1C i=0x69 ş=0x1D l=0x6C i=0x69.
        let tables = Tables::national(Some(TURKISH), Some(TURKISH));
        assert_eq!(decode(tables, &[0x1C, 0x69, 0x1D, 0x6C, 0x69]), "Şişli");
        // Single shift only: ğ = ESC 0x67, ı = ESC 0x69, on the default locking table.
        let tables = Tables::national(None, Some(TURKISH));
        assert_eq!(decode(tables, &[0x64, 0x1B, 0x67, 0x1B, 0x69]), "dğı");
        assert_eq!(decode(tables, &[0x1B, 0x65, 0x40]), "€¡");
    }

    #[test]
    fn spanish_single_shift() {
        // "Cómo está" with Spanish single shift: ó = ESC 0x6F, á = ESC 0x61.
        let tables = Tables::national(None, Some(SPANISH));
        let septets = [
            0x43, 0x1B, 0x6F, 0x6D, 0x6F, 0x20, 0x65, 0x73, 0x74, 0x1B, 0x61,
        ];
        assert_eq!(decode(tables, &septets), "Cómo está");
        // Spanish has no locking table: the default one is used.
        let tables = Tables::national(Some(SPANISH), Some(SPANISH));
        assert_eq!(decode(tables, &[0x7D]), "ñ");
    }

    #[test]
    fn portuguese_tables() {
        // "Não" on the Portuguese locking table: N ã=0x7B o.
        let tables = Tables::national(Some(PORTUGUESE), None);
        assert_eq!(decode(tables, &[0x4E, 0x7B, 0x6F]), "Não");
        assert_eq!(decode(tables, &[0x04, 0x18, 0x12]), "ê€ª");
        // Single shift: "ação" = a ESC 0x09 (ç) ESC 0x7B (ã) o.
        let tables = Tables::national(None, Some(PORTUGUESE));
        assert_eq!(
            decode(tables, &[0x61, 0x1B, 0x09, 0x1B, 0x7B, 0x6F]),
            "ação"
        );
    }
}
