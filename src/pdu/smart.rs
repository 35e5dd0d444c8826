//! Smart encoding: typographic characters that GSM 7-bit lacks (curly quotes, dashes, the
//! ellipsis, odd spaces, invisible format characters) replaced by GSM look-alikes, so that a
//! text pasted from a word processor goes out at 160 characters per part instead of 70.
//!
//! Letters are never changed (`ç`, `ő`, Cyrillic … stay, and the message goes as UCS-2): a
//! replacement must not change what a word says. The caller gets the list of replacements so
//! it can tell the user what changed.

/// One kind of character that smart encoding replaced.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Replacement {
    pub from: char,
    /// The GSM text written instead (may be empty for invisible characters).
    pub to: &'static str,
}

/// The GSM look-alike of `c`, if smart encoding replaces it.
pub fn look_alike(c: char) -> Option<&'static str> {
    Some(match c {
        // Quotes and primes.
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{2035}'
        | '\u{00B4}' | '\u{0060}' | '\u{2039}' | '\u{203A}' | '\u{02BC}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{2036}'
        | '\u{00AB}' | '\u{00BB}' => "\"",
        // Hyphens, dashes and the minus sign.
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' | '\u{2043}' => "-",
        '\u{2026}' => "...",
        '\u{2022}' | '\u{00B7}' => "-",
        '\u{2044}' | '\u{2215}' => "/",
        '\u{02C6}' => "^",
        '\u{02DC}' => "~",
        // Spaces of every width, and the tab.
        '\t' | '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => " ",
        // Invisible format characters: zero-width space and joiners, word joiner, soft
        // hyphen, byte-order mark.
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{00AD}' | '\u{FEFF}' => "",
        _ => return None,
    })
}

/// `text` with every look-alike applied, and the distinct replacements in order of first
/// appearance. `None` when nothing was replaced.
pub(crate) fn replace(text: &str) -> Option<(String, Vec<Replacement>)> {
    if !text.chars().any(|c| look_alike(c).is_some()) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut replacements: Vec<Replacement> = Vec::new();
    for c in text.chars() {
        match look_alike(c) {
            Some(to) => {
                out.push_str(to);
                if !replacements.iter().any(|r| r.from == c) {
                    replacements.push(Replacement { from: c, to });
                }
            }
            None => out.push(c),
        }
    }
    Some((out, replacements))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::gsm7;

    #[test]
    fn replaces_typography_and_reports_each_kind_once() {
        let (text, replacements) =
            replace("\u{201C}Hi\u{201D} \u{2014} it\u{2019}s 5\u{00A0}pm\u{2026} it\u{2019}s")
                .unwrap();
        assert_eq!(text, "\"Hi\" - it's 5 pm... it's");
        let from: Vec<char> = replacements.iter().map(|r| r.from).collect();
        assert_eq!(
            from,
            [
                '\u{201C}', '\u{201D}', '\u{2014}', '\u{2019}', '\u{00A0}', '\u{2026}'
            ]
        );
        assert!(gsm7::is_gsm7(&text));
    }

    #[test]
    fn leaves_letters_and_plain_text_alone() {
        assert_eq!(replace("plain text"), None);
        let (text, _) = replace("ç\u{2019}ő").unwrap();
        assert_eq!(text, "ç'ő");
    }

    #[test]
    fn every_look_alike_is_gsm() {
        for code in 0..=0xFFFF_u32 {
            if let Some(to) = char::from_u32(code).and_then(look_alike) {
                assert!(gsm7::is_gsm7(to), "U+{code:04X} → {to:?}");
            }
        }
    }
}
