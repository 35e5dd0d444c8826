//! TP-UDL and TP-UD (3GPP TS 23.040 §9.2.3.16 and §9.2.3.24): the header, then the text in the
//! alphabet TP-DCS names.
//!
//! Decoding checks every length against what is actually there before reading. UCS-2 is read
//! as UTF-16 (a lone surrogate, as broken senders split emoji, becomes U+FFFD rather than an
//! error: the rest of the message is still worth delivering). In the same spirit, and noted as
//! a [`Warning`]: user data shorter than TP-UDL is decoded as far as it goes and the text ends
//! with [`TRUNCATED_MARKER`]; a stray odd UCS-2 octet becomes U+FFFD; and UCS-2 sent under a
//! TP-DCS that claims GSM 7-bit (TP-UDL then counts octets, and the octets are UCS-2 text) is
//! read as UCS-2. A header that cannot be read stays an error.

use std::fmt::Write as _;

use super::dcs::{DataCoding, Encoding};
use super::error::PduError;
use super::gsm7::Tables;
use super::reader::Reader;
use super::septet;
use super::udh::{self, Concat, InformationElement, Ports};
use super::warning::{Repairs, TRUNCATED_MARKER, Warning};

/// Most septets in one TP-UD (140 octets × 8 / 7).
pub const MAX_SEPTETS: usize = 160;
/// Most octets in one TP-UD.
pub const MAX_OCTETS: usize = 140;

/// The user data of one PDU, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    pub encoding: Encoding,
    /// The text; for 8-bit (and compressed) data, the data in upper-case hex. Ends with
    /// [`TRUNCATED_MARKER`] when `truncated`.
    pub text: String,
    /// The user data after the header: octets for 8-bit and UCS-2, one septet per octet
    /// (unpacked, fill bits dropped) for GSM 7-bit.
    pub data: Vec<u8>,
    pub concat: Option<Concat>,
    pub ports: Option<Ports>,
    /// National language locking / single shift tables in use (TS 23.038 §6.2.1.2.4).
    pub locking_shift: Option<u8>,
    pub single_shift: Option<u8>,
    /// Every information element of the header, in order, known ones included.
    pub header: Vec<InformationElement>,
    /// The PDU ended before TP-UDL said it would: `data` is what arrived.
    pub truncated: bool,
}

/// Reads TP-UDL and TP-UD from `reader`, noting what it had to work around in `repairs`.
pub(crate) fn read(
    reader: &mut Reader<'_>,
    coding: &DataCoding,
    has_header: bool,
    repairs: &mut Repairs,
) -> Result<UserData, PduError> {
    let udl = usize::from(reader.u8("TP-UDL")?);
    let septets = coding.encoding == Encoding::Gsm7 && !coding.compressed;
    let (octets, max) = if septets {
        (septet::octets_for(udl), MAX_SEPTETS)
    } else {
        (udl, MAX_OCTETS)
    };
    if udl > max {
        return Err(PduError::UserDataLength { length: udl, max });
    }
    if septets && ucs2_counted_in_octets(reader.rest(), udl, has_header) {
        let ud = reader.take(udl, "TP-UD")?;
        repairs.user_data(Warning::Ucs2UnderGsm7Coding);
        return octets_user_data(ud, Encoding::Ucs2, has_header, false, repairs);
    }
    let offset = reader.offset();
    let available = reader.remaining();
    let truncated = octets > available;
    let strict = PduError::Truncated {
        field: "TP-UD",
        offset,
        needed: octets,
        available,
    };
    let ud = reader.take(octets.min(available), "TP-UD")?;
    // A header that does not fit in what arrived cannot be read: nothing to repair then.
    if truncated && has_header && !header_fits(ud) {
        return Err(strict);
    }
    if truncated {
        repairs.user_data(Warning::TruncatedUserData {
            needed: octets,
            available,
        });
    }
    let encoding = if coding.compressed {
        Encoding::EightBit
    } else {
        coding.encoding
    };
    if !septets {
        return octets_user_data(ud, encoding, has_header, truncated, repairs);
    }
    let (header, header_octets) = if has_header {
        udh::parse(ud)?
    } else {
        (udh::Header::default(), 0)
    };
    let first = septet::header_septets(header_octets);
    if first > udl {
        return Err(PduError::Header("header longer than the user data"));
    }
    // Only whole septets that arrived: a cut-off one would be a wrong character.
    let end = if truncated {
        (ud.len() * 8 / 7).clamp(first, udl)
    } else {
        udl
    };
    let mut data = Vec::new();
    septet::unpack_into(ud, first, end, &mut data);
    let mut text = String::with_capacity(data.len());
    Tables::national(header.locking_shift, header.single_shift)
        .decode_into(data.iter().copied(), &mut text);
    if truncated {
        text.push_str(TRUNCATED_MARKER);
    }
    Ok(assemble(encoding, text, data, header, truncated))
}

/// Whether the UDHL octet and the header it announces are all in `ud`.
fn header_fits(ud: &[u8]) -> bool {
    ud.first().is_some_and(|&udhl| usize::from(udhl) < ud.len())
}

/// 8-bit and UCS-2 user data: octets after the header.
fn octets_user_data(
    ud: &[u8],
    encoding: Encoding,
    has_header: bool,
    truncated: bool,
    repairs: &mut Repairs,
) -> Result<UserData, PduError> {
    let (header, header_octets) = if has_header {
        udh::parse(ud)?
    } else {
        (udh::Header::default(), 0)
    };
    let mut data = ud[header_octets..].to_vec();
    let mut text = match encoding {
        Encoding::Ucs2 => {
            let odd = data.len() % 2 != 0;
            if odd && truncated {
                // Half of a character that did not arrive: part of the gap.
                data.pop();
            } else if odd {
                repairs.user_data(Warning::OddUcs2Length(data.len()));
            }
            let mut text = ucs2_text(&data);
            if odd && !truncated {
                text.push(char::REPLACEMENT_CHARACTER);
            }
            text
        }
        _ => hex_upper(&data),
    };
    if truncated {
        text.push_str(TRUNCATED_MARKER);
    }
    Ok(assemble(encoding, text, data, header, truncated))
}

fn assemble(
    encoding: Encoding,
    text: String,
    data: Vec<u8>,
    header: udh::Header,
    truncated: bool,
) -> UserData {
    UserData {
        encoding,
        text,
        data,
        concat: header.concat,
        ports: header.ports,
        locking_shift: header.locking_shift,
        single_shift: header.single_shift,
        header: header.elements,
        truncated,
    }
}

/// UTF-16 big-endian, a lone surrogate shown as U+FFFD; an odd last octet is ignored.
fn ucs2_text(data: &[u8]) -> String {
    let units = data
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Whether user data under a GSM 7-bit TP-DCS is evidently UCS-2 with TP-UDL counting octets,
/// as some phones send Cyrillic or Arabic text: the user data is exactly TP-UDL octets long
/// (septets would take fewer: the rest would be left over), and those octets read as UCS-2
/// text from at most three 256-character blocks, with no control characters, no
/// noncharacters and no private-use characters. Packed septets read as UTF-16 spread over
/// many blocks, so real GSM 7-bit text does not pass.
fn ucs2_counted_in_octets(rest: &[u8], udl: usize, has_header: bool) -> bool {
    if rest.len() != udl || septet::octets_for(udl) >= udl {
        return false;
    }
    let payload = if has_header {
        match udh::parse(rest) {
            Ok((_, header_octets)) => &rest[header_octets..],
            Err(_) => return false,
        }
    } else {
        rest
    };
    if payload.len() < 4 || payload.len() % 2 != 0 {
        return false;
    }
    let units = payload
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    let mut blocks: Vec<u8> = Vec::with_capacity(3);
    for decoded in char::decode_utf16(units) {
        let Ok(c) = decoded else {
            return false;
        };
        let code = u32::from(c);
        let control = c.is_control() && !matches!(c, '\n' | '\r');
        let noncharacter = (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE;
        let private = (0xE000..=0xF8FF).contains(&code) || code >= 0xF0000;
        if control || noncharacter || private {
            return false;
        }
        if code <= 0xFFFF {
            let block = (code >> 8) as u8;
            if !blocks.contains(&block) {
                if blocks.len() == 3 {
                    return false;
                }
                blocks.push(block);
            }
        }
    }
    true
}

/// The 8-bit data as text, when it is text: UTF-8 (ASCII included) with no control
/// characters other than line breaks and tabs. `None` for empty or binary data.
pub fn printable_text(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let printable = !text.trim().is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        && !text.contains(char::REPLACEMENT_CHARACTER);
    printable.then(|| text.to_owned())
}

/// Appends TP-UDL and TP-UD: `header` (UDHL included, or empty) then `payload`, which is
/// septets for GSM 7-bit and octets otherwise.
pub(crate) fn write(encoding: Encoding, header: &[u8], payload: &[u8], out: &mut Vec<u8>) {
    let udl_at = out.len();
    out.push(0);
    let udl = match encoding {
        Encoding::Gsm7 => septet::pack(header, payload, out),
        Encoding::Ucs2 | Encoding::EightBit => {
            out.extend_from_slice(header);
            out.extend_from_slice(payload);
            header.len() + payload.len()
        }
    };
    out[udl_at] = u8::try_from(udl).expect("parts are split to fit TP-UDL");
}

/// Upper-case hex of `bytes`.
pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        write!(out, "{byte:02X}").expect("writing to a String cannot fail");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(dcs: u8, udhi: bool, bytes: &[u8]) -> Result<UserData, PduError> {
        decode_noting(dcs, udhi, bytes).map(|(ud, _)| ud)
    }

    fn decode_noting(
        dcs: u8,
        udhi: bool,
        bytes: &[u8],
    ) -> Result<(UserData, Vec<Warning>), PduError> {
        let mut repairs = Repairs::default();
        let ud = read(
            &mut Reader::new(bytes),
            &DataCoding::from_dcs(dcs),
            udhi,
            &mut repairs,
        )?;
        Ok((ud, repairs.finish()?))
    }

    #[test]
    fn gsm7_with_extension_table() {
        // "€5 [x]" = 1B65 35 20 1B3C 78 1B3E: 9 septets.
        let mut out = Vec::new();
        write(
            Encoding::Gsm7,
            &[],
            &[0x1B, 0x65, 0x35, 0x20, 0x1B, 0x3C, 0x78, 0x1B, 0x3E],
            &mut out,
        );
        assert_eq!(out[0], 9);
        let ud = decode(0x00, false, &out).unwrap();
        assert_eq!(ud.text, "€5 [x]");
        assert_eq!(ud.encoding, Encoding::Gsm7);
    }

    #[test]
    fn ucs2_emoji_is_a_surrogate_pair() {
        // "Hi 😀": 0048 0069 0020 D83D DE00.
        let bytes = [
            10, 0x00, 0x48, 0x00, 0x69, 0x00, 0x20, 0xD8, 0x3D, 0xDE, 0x00,
        ];
        let ud = decode(0x08, false, &bytes).unwrap();
        assert_eq!(ud.text, "Hi 😀");
        // A lone high surrogate (half an emoji) becomes U+FFFD.
        let ud = decode(0x08, false, &[4, 0x00, 0x41, 0xD8, 0x3D]).unwrap();
        assert_eq!(ud.text, "A\u{FFFD}");
    }

    #[test]
    fn eight_bit_is_hex() {
        let ud = decode(0xF4, false, &[3, 0x01, 0xAB, 0xFF]).unwrap();
        assert_eq!(ud.encoding, Encoding::EightBit);
        assert_eq!(ud.text, "01ABFF");
        assert_eq!(ud.data, [0x01, 0xAB, 0xFF]);
    }

    #[test]
    fn eight_bit_with_ports() {
        // WAP push style: 16-bit ports 2948 ← 9200, then two octets of data.
        let bytes = [9, 0x06, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0xCA, 0xFE];
        let ud = decode(0x04, true, &bytes).unwrap();
        assert_eq!(
            ud.ports,
            Some(Ports {
                destination: 2948,
                origin: 9200
            })
        );
        assert_eq!(ud.data, [0xCA, 0xFE]);
    }

    #[test]
    fn malformed_user_data() {
        assert!(matches!(
            decode(0x00, false, &[161]),
            Err(PduError::UserDataLength {
                length: 161,
                max: 160
            })
        ));
        assert!(matches!(
            decode(0x08, false, &[141]),
            Err(PduError::UserDataLength {
                length: 141,
                max: 140
            })
        ));
        // UDHL 5 but TP-UDL says only 2 septets.
        assert!(matches!(
            decode(0x00, true, &[2, 0x05, 0x00]),
            Err(PduError::Header(_))
        ));
        // Header of 6 octets = 7 septets, TP-UDL 6.
        assert!(matches!(
            decode(0x00, true, &[6, 0x05, 0x00, 0x03, 0x01, 0x02, 0x01]),
            Err(PduError::Header(_))
        ));
        assert!(matches!(
            decode(0x00, false, &[]),
            Err(PduError::Truncated { .. })
        ));
        // A header cut off by the end of the PDU cannot be read: the strict error.
        assert!(matches!(
            decode(0x00, true, &[40, 0x05, 0x00, 0x03]),
            Err(PduError::Truncated { field: "TP-UD", .. })
        ));
    }

    #[test]
    fn truncated_user_data_keeps_what_arrived() {
        // "hellohello" (10 septets, 9 octets) with only 5 octets left: 40 bits = 5 septets.
        let (ud, warnings) =
            decode_noting(0x00, false, &[10, 0xE8, 0x32, 0x9B, 0xFD, 0x46]).unwrap();
        assert_eq!(ud.text, "hello…[truncated]");
        assert!(ud.truncated);
        assert_eq!(
            warnings,
            [Warning::TruncatedUserData {
                needed: 9,
                available: 5
            }]
        );
        // UCS-2 "Hi" cut inside its second character: the half character is part of the gap.
        let (ud, _) = decode_noting(0x08, false, &[4, 0x00, 0x48, 0x00]).unwrap();
        assert_eq!(ud.text, "H…[truncated]");
        // 8-bit: the octets that came, and the marker after the hex.
        let (ud, _) = decode_noting(0x04, false, &[3, 0xCA, 0xFE]).unwrap();
        assert_eq!(
            (ud.data.as_slice(), ud.text.as_str()),
            (&[0xCA, 0xFE][..], "CAFE…[truncated]")
        );
        // Nothing at all after TP-UDL: only the marker.
        let (ud, _) = decode_noting(0x00, false, &[12]).unwrap();
        assert_eq!(ud.text, "…[truncated]");
        // With a concatenation header that did arrive whole: the header is still read.
        let (ud, _) = decode_noting(
            0x00,
            true,
            &[20, 0x05, 0x00, 0x03, 0xA7, 0x02, 0x01, 0x90, 0x69],
        )
        .unwrap();
        assert_eq!(ud.text, "Hi…[truncated]");
        assert_eq!(ud.concat.map(|c| c.sequence), Some(1));
    }

    #[test]
    fn odd_ucs2_length_shows_the_stray_octet() {
        let (ud, warnings) = decode_noting(0x08, false, &[3, 0, 0x41, 0]).unwrap();
        assert_eq!(ud.text, "A\u{FFFD}");
        assert_eq!(warnings, [Warning::OddUcs2Length(3)]);
        assert!(!ud.truncated);
    }

    #[test]
    fn ucs2_under_a_gsm7_coding_is_read_as_ucs2() {
        // "Привет" in UCS-2, TP-UDL 12 counting octets, TP-DCS 00 (GSM 7-bit).
        let cyrillic = [
            12, 0x04, 0x1F, 0x04, 0x40, 0x04, 0x38, 0x04, 0x32, 0x04, 0x35, 0x04, 0x42,
        ];
        let (ud, warnings) = decode_noting(0x00, false, &cyrillic).unwrap();
        assert_eq!((ud.text.as_str(), ud.encoding), ("Привет", Encoding::Ucs2));
        assert_eq!(warnings, [Warning::Ucs2UnderGsm7Coding]);
        // Real GSM 7-bit text is left alone, even with spare octets after it.
        let mut gsm = vec![10, 0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37];
        gsm.push(0x00);
        let (ud, warnings) = decode_noting(0x00, false, &gsm).unwrap();
        assert_eq!((ud.text.as_str(), warnings.len()), ("hellohello", 0));
        // FF padding after GSM 7-bit text is not UCS-2 (U+FFFF is no character).
        let mut padded = vec![8, 0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9];
        padded.push(0xFF);
        let (ud, _) = decode_noting(0x00, false, &padded).unwrap();
        assert_eq!(
            (ud.text.as_str(), ud.encoding),
            ("hellohel", Encoding::Gsm7)
        );
    }

    #[test]
    fn printable_eight_bit_data() {
        assert_eq!(
            printable_text(b"Hello\r\nworld").as_deref(),
            Some("Hello\r\nworld")
        );
        assert_eq!(printable_text("café".as_bytes()).as_deref(), Some("café"));
        assert_eq!(printable_text(&[0x01, 0xAB, 0xFF]), None);
        assert_eq!(printable_text(b"ab\x00cd"), None);
        assert_eq!(printable_text(b""), None);
        assert_eq!(printable_text(b"  "), None);
    }
}
