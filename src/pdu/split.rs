//! Choosing the encoding and splitting a text into parts for sending.
//!
//! GSM 7-bit (default alphabet and extension table) when the text fits it, after optional
//! smart encoding; UCS-2 (UTF-16) otherwise. One part carries 160 septets or 70 UTF-16 units;
//! with a concatenation header (6 octets: TS 23.040 §9.2.3.24.1) 153 septets or 67 units.
//! A part never ends between an escape and its character, or between the two halves of a
//! surrogate pair. Splitting is greedy, which gives the fewest parts: each part takes as much
//! as fits. National language tables are not used for sending (not every handset has them).

use std::borrow::Cow;

use super::dcs::Encoding;
use super::gsm7;
use super::septet;
use super::smart::{self, Replacement};
use super::udh::{self, Concat};
use super::user_data::{MAX_OCTETS, MAX_SEPTETS};

/// How a text would be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub encoding: Encoding,
    /// Number of parts (at least 1: an empty text is one empty part).
    pub parts: usize,
    /// The text as it would be sent (after smart encoding).
    pub text: String,
    /// What smart encoding replaced; empty when it changed nothing or was not used.
    pub replacements: Vec<Replacement>,
}

/// Octets of the 8-bit concatenation header, UDHL included.
pub(crate) const CONCAT_HEADER_OCTETS: usize = 6;

/// The parts `text` would be sent in, and the text they carry (after smart encoding, if
/// that made it GSM), with what smart encoding replaced.
pub(crate) fn prepare(
    text: &str,
    smart_encoding: bool,
    force_ucs2: bool,
) -> (Split, Cow<'_, str>, Vec<Replacement>) {
    if !force_ucs2 {
        if let Some(septets) = gsm7_septets(text) {
            return (Split::gsm7(septets), Cow::Borrowed(text), Vec::new());
        }
        // Replacements are worth it only if they make the whole text GSM: UCS-2 carries
        // curly quotes as they are.
        if smart_encoding {
            if let Some((replaced, replacements)) = smart::replace(text) {
                if let Some(septets) = gsm7_septets(&replaced) {
                    return (Split::gsm7(septets), Cow::Owned(replaced), replacements);
                }
            }
        }
    }
    (Split::ucs2(text), Cow::Borrowed(text), Vec::new())
}

/// The septets of `text`, or `None` at the first character GSM 7-bit cannot write.
fn gsm7_septets(text: &str) -> Option<Vec<u8>> {
    let mut septets = Vec::with_capacity(text.len());
    for c in text.chars() {
        if !gsm7::encode_char(c, &mut septets) {
            return None;
        }
    }
    Some(septets)
}

/// A text encoded and cut into parts.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub(crate) encoding: Encoding,
    /// Septets (GSM 7-bit) or big-endian UTF-16 octets (UCS-2) of the whole text.
    units: Vec<u8>,
    /// Each part's range in `units`.
    ranges: Vec<(usize, usize)>,
}

/// One part, ready for TP-UD.
#[derive(Debug, Clone)]
pub(crate) struct Payload<'a> {
    pub(crate) encoding: Encoding,
    /// The UDH with UDHL, or empty for a single part.
    pub(crate) header: Vec<u8>,
    pub(crate) payload: &'a [u8],
}

impl Split {
    /// Cuts GSM septets into parts.
    fn gsm7(units: Vec<u8>) -> Split {
        let part = MAX_SEPTETS - septet::header_septets(CONCAT_HEADER_OCTETS);
        let ranges = cut(units.len(), MAX_SEPTETS, part, |end| {
            units[end - 1] == gsm7::ESCAPE
        });
        Split {
            encoding: Encoding::Gsm7,
            units,
            ranges,
        }
    }

    /// Encodes `text` as UTF-16 and cuts it into parts.
    fn ucs2(text: &str) -> Split {
        let mut units = Vec::with_capacity(text.len() * 2);
        for unit in text.encode_utf16() {
            units.extend_from_slice(&unit.to_be_bytes());
        }
        let part = (MAX_OCTETS - CONCAT_HEADER_OCTETS) / 2;
        let ranges = cut(units.len() / 2, MAX_OCTETS / 2, part, |end| {
            // A high surrogate (0xD800–0xDBFF) must stay with its low half.
            (0xD8..=0xDB).contains(&units[2 * (end - 1)])
        })
        .into_iter()
        .map(|(start, end)| (start * 2, end * 2))
        .collect();
        Split {
            encoding: Encoding::Ucs2,
            units,
            ranges,
        }
    }

    pub(crate) fn parts(&self) -> usize {
        self.ranges.len()
    }

    /// The parts, with a concatenation header (8-bit reference: the low octet of
    /// `reference`) when there is more than one.
    pub(crate) fn payloads(&self, reference: u16) -> impl Iterator<Item = Payload<'_>> + '_ {
        let total = self.parts();
        self.ranges
            .iter()
            .enumerate()
            .map(move |(index, &(start, end))| Payload {
                encoding: self.encoding,
                header: if total > 1 {
                    udh::concat_header(
                        Concat {
                            reference: reference & 0xFF,
                            total: u8::try_from(total).unwrap_or(u8::MAX),
                            sequence: u8::try_from(index + 1).unwrap_or(u8::MAX),
                        },
                        false,
                    )
                } else {
                    Vec::new()
                },
                payload: &self.units[start..end],
            })
    }
}

/// Greedy cut of `len` units: one part if it fits `whole`, else parts of at most `part`,
/// moving a cut back by one where `splits_pair(end)` says it would split a pair.
fn cut(
    len: usize,
    whole: usize,
    part: usize,
    splits_pair: impl Fn(usize) -> bool,
) -> Vec<(usize, usize)> {
    if len <= whole {
        return vec![(0, len)];
    }
    let mut ranges = Vec::with_capacity(len.div_ceil(part) + 1);
    let mut start = 0;
    while start < len {
        let mut end = (start + part).min(len);
        if end < len && splits_pair(end) {
            end -= 1;
        }
        ranges.push((start, end));
        start = end;
    }
    ranges
}

/// How `text` would be sent: the encoding, the number of parts, the text after smart
/// encoding and what it replaced. Pure; the gateway uses it to refuse a message over its part
/// cap before storing it. [`super::encode_submit`] produces exactly `parts` parts.
pub fn plan(text: &str, smart_encoding: bool, force_ucs2: bool) -> Plan {
    let (split, chosen, replacements) = prepare(text, smart_encoding, force_ucs2);
    Plan {
        encoding: split.encoding,
        parts: split.parts(),
        text: chosen.into_owned(),
        replacements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes() {
        let cases: &[(String, Encoding, usize)] = &[
            (String::new(), Encoding::Gsm7, 1),
            ("a".repeat(160), Encoding::Gsm7, 1),
            ("a".repeat(161), Encoding::Gsm7, 2),
            ("a".repeat(306), Encoding::Gsm7, 2),
            ("a".repeat(307), Encoding::Gsm7, 3),
            ("€".repeat(80), Encoding::Gsm7, 1),
            ("€".repeat(81), Encoding::Gsm7, 2),
            ("ж".repeat(70), Encoding::Ucs2, 1),
            ("ж".repeat(71), Encoding::Ucs2, 2),
            ("ж".repeat(134), Encoding::Ucs2, 2),
            ("ж".repeat(135), Encoding::Ucs2, 3),
            ("😀".repeat(35), Encoding::Ucs2, 1),
            ("😀".repeat(36), Encoding::Ucs2, 2),
        ];
        for (text, encoding, parts) in cases {
            let plan = plan(text, true, false);
            assert_eq!((plan.encoding, plan.parts), (*encoding, *parts), "{text}");
        }
    }

    #[test]
    fn never_splits_an_escape_or_a_surrogate_pair() {
        // 152 plain septets then '€' (2 septets): the escape would be septet 153.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let split = prepare(&text, false, false).0;
        let lengths: Vec<usize> = split.payloads(1).map(|p| p.payload.len()).collect();
        assert_eq!(lengths, [152, 12]);
        // 66 units then an emoji (2 units): the pair would straddle unit 67.
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        let split = prepare(&text, false, false).0;
        let lengths: Vec<usize> = split.payloads(1).map(|p| p.payload.len()).collect();
        assert_eq!(lengths, [132, 24]);
    }

    #[test]
    fn smart_encoding_only_when_it_makes_the_text_gsm() {
        let plan_smart = plan("It\u{2019}s \u{201C}fine\u{201D}", true, false);
        assert_eq!(plan_smart.encoding, Encoding::Gsm7);
        assert_eq!(plan_smart.text, "It's \"fine\"");
        assert_eq!(plan_smart.replacements.len(), 3);
        let plain = plan("It\u{2019}s", false, false);
        assert_eq!(
            (plain.encoding, plain.text.as_str()),
            (Encoding::Ucs2, "It\u{2019}s")
        );
        // An emoji forces UCS-2, which carries the curly quote as it is.
        let emoji = plan("It\u{2019}s 😀", true, false);
        assert_eq!(emoji.encoding, Encoding::Ucs2);
        assert_eq!(emoji.text, "It\u{2019}s 😀");
        assert!(emoji.replacements.is_empty());
        assert_eq!(plan("plain", true, true).encoding, Encoding::Ucs2);
    }
}
