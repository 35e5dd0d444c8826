//! TP-UDL and TP-UD (3GPP TS 23.040 §9.2.3.16 and §9.2.3.24): the header, then the text in the
//! alphabet TP-DCS names.
//!
//! Decoding checks every length against what is actually there before reading. UCS-2 is read
//! as UTF-16 (a lone surrogate, as broken senders split emoji, becomes U+FFFD rather than an
//! error: the rest of the message is still worth delivering).

use std::fmt::Write as _;

use super::dcs::{DataCoding, Encoding};
use super::error::PduError;
use super::gsm7::Tables;
use super::reader::Reader;
use super::septet;
use super::udh::{self, Concat, InformationElement, Ports};

/// Most septets in one TP-UD (140 octets × 8 / 7).
pub const MAX_SEPTETS: usize = 160;
/// Most octets in one TP-UD.
pub const MAX_OCTETS: usize = 140;

/// The user data of one PDU, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    pub encoding: Encoding,
    /// The text; for 8-bit (and compressed) data, the data in upper-case hex.
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
}

/// Reads TP-UDL and TP-UD from `reader`.
pub(crate) fn read(
    reader: &mut Reader<'_>,
    coding: &DataCoding,
    has_header: bool,
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
    let ud = reader.take(octets, "TP-UD")?;
    let (header, header_octets) = if has_header {
        udh::parse(ud)?
    } else {
        (udh::Header::default(), 0)
    };
    let encoding = if coding.compressed {
        Encoding::EightBit
    } else {
        coding.encoding
    };
    let mut text = String::new();
    let data = if septets {
        let first = septet::header_septets(header_octets);
        if first > udl {
            return Err(PduError::Header("header longer than the user data"));
        }
        let mut data = Vec::new();
        septet::unpack_into(ud, first, udl, &mut data);
        text.reserve(data.len());
        Tables::national(header.locking_shift, header.single_shift)
            .decode_into(data.iter().copied(), &mut text);
        data
    } else {
        let data = ud[header_octets..].to_vec();
        match encoding {
            Encoding::Ucs2 => {
                if data.len() % 2 != 0 {
                    return Err(PduError::OddUcs2Length(data.len()));
                }
                let units = data
                    .chunks_exact(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
                text.extend(
                    char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)),
                );
            }
            _ => text = hex_upper(&data),
        }
        data
    };
    Ok(UserData {
        encoding,
        text,
        data,
        concat: header.concat,
        ports: header.ports,
        locking_shift: header.locking_shift,
        single_shift: header.single_shift,
        header: header.elements,
    })
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
        read(&mut Reader::new(bytes), &DataCoding::from_dcs(dcs), udhi)
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
        assert!(matches!(
            decode(0x00, false, &[10, 0x41]),
            Err(PduError::Truncated { .. })
        ));
        assert!(matches!(
            decode(0x08, false, &[3, 0, 0x41, 0]),
            Err(PduError::OddUcs2Length(3))
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
    }
}
