//! TP-DCS, the data coding scheme (3GPP TS 23.038 §4): which alphabet the user data uses,
//! its message class, compression, and message-waiting indications.
//!
//! Every coding group is read; reserved groups and the reserved alphabet are read as GSM 7-bit,
//! as TS 23.038 §4 asks of a receiver. Compressed text (TS 23.042) is not decompressed: it is
//! reported as 8-bit data.

use std::fmt;
use std::str::FromStr;

/// The alphabet of the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Encoding {
    /// GSM 7-bit default alphabet (TS 23.038 §6.2.1), septets packed.
    #[serde(rename = "gsm7")]
    Gsm7,
    /// UCS-2, read and written as UTF-16 big-endian so that emoji survive.
    #[serde(rename = "ucs2")]
    Ucs2,
    /// 8-bit data: not text; kept as bytes and shown as hex.
    #[serde(rename = "8bit")]
    EightBit,
}

impl Encoding {
    /// The name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
            Encoding::EightBit => "8bit",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`Encoding::from_str`] was given a name it does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown encoding {0:?} (expected gsm7, ucs2 or 8bit)")]
pub struct UnknownEncoding(pub String);

impl FromStr for Encoding {
    type Err = UnknownEncoding;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gsm7" => Ok(Encoding::Gsm7),
            "ucs2" => Ok(Encoding::Ucs2),
            "8bit" => Ok(Encoding::EightBit),
            other => Err(UnknownEncoding(other.to_owned())),
        }
    }
}

/// A message-waiting indication (TS 23.038 §4, coding groups 1100–1110).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageWaiting {
    /// Group 1100 asks the handset to discard the message after updating the indicator.
    pub store: bool,
    /// Indication active (something waits) or inactive (cleared).
    pub active: bool,
    /// 0 voicemail, 1 fax, 2 e-mail, 3 other.
    pub kind: u8,
}

/// What a TP-DCS octet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataCoding {
    pub encoding: Encoding,
    /// Message class 0–3 (0 = flash SMS), when the DCS gives one.
    pub message_class: Option<u8>,
    /// Compressed with TS 23.042 (then TP-UDL counts octets whatever the alphabet).
    pub compressed: bool,
    /// Coding group 01xx: delete after reading.
    pub auto_delete: bool,
    pub message_waiting: Option<MessageWaiting>,
}

impl DataCoding {
    /// Reads a TP-DCS octet (TS 23.038 §4).
    pub fn from_dcs(dcs: u8) -> DataCoding {
        let plain = |encoding| DataCoding {
            encoding,
            message_class: None,
            compressed: false,
            auto_delete: false,
            message_waiting: None,
        };
        match dcs >> 4 {
            // 00xx general data coding, 01xx the same marked for automatic deletion.
            0x0..=0x7 => {
                let encoding = match (dcs >> 2) & 0x03 {
                    0b01 => Encoding::EightBit,
                    0b10 => Encoding::Ucs2,
                    _ => Encoding::Gsm7,
                };
                DataCoding {
                    encoding,
                    message_class: (dcs & 0x10 != 0).then_some(dcs & 0x03),
                    compressed: dcs & 0x20 != 0,
                    auto_delete: dcs & 0x40 != 0,
                    message_waiting: None,
                }
            }
            // 1100 discard, 1101 store (GSM 7-bit), 1110 store (UCS-2).
            group @ 0xC..=0xE => DataCoding {
                message_waiting: Some(MessageWaiting {
                    store: group != 0xC,
                    active: dcs & 0x08 != 0,
                    kind: dcs & 0x03,
                }),
                ..plain(if group == 0xE {
                    Encoding::Ucs2
                } else {
                    Encoding::Gsm7
                })
            },
            // 1111 data coding / message class.
            0xF => DataCoding {
                message_class: Some(dcs & 0x03),
                ..plain(if dcs & 0x04 != 0 {
                    Encoding::EightBit
                } else {
                    Encoding::Gsm7
                })
            },
            // 1000–1011 reserved: read as GSM 7-bit.
            _ => plain(Encoding::Gsm7),
        }
    }

    /// The TP-DCS this codec sends: general group, no class, uncompressed.
    pub(crate) fn dcs_for(encoding: Encoding) -> u8 {
        match encoding {
            Encoding::Gsm7 => 0x00,
            Encoding::EightBit => 0x04,
            Encoding::Ucs2 => 0x08,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_coding_group() {
        let cases: &[(u8, Encoding, Option<u8>)] = &[
            (0x00, Encoding::Gsm7, None),
            (0x04, Encoding::EightBit, None),
            (0x08, Encoding::Ucs2, None),
            (0x0C, Encoding::Gsm7, None), // reserved alphabet
            (0x10, Encoding::Gsm7, Some(0)),
            (0x18, Encoding::Ucs2, Some(0)),
            (0x11, Encoding::Gsm7, Some(1)),
            (0x16, Encoding::EightBit, Some(2)),
            (0x48, Encoding::Ucs2, None),
            (0x80, Encoding::Gsm7, None), // reserved group
            (0xC8, Encoding::Gsm7, None),
            (0xD0, Encoding::Gsm7, None),
            (0xE0, Encoding::Ucs2, None),
            (0xF0, Encoding::Gsm7, Some(0)),
            (0xF5, Encoding::EightBit, Some(1)),
            (0xF6, Encoding::EightBit, Some(2)),
            (0xF3, Encoding::Gsm7, Some(3)),
        ];
        for &(dcs, encoding, class) in cases {
            let coding = DataCoding::from_dcs(dcs);
            assert_eq!(
                (coding.encoding, coding.message_class),
                (encoding, class),
                "{dcs:#04X}"
            );
        }
        assert!(DataCoding::from_dcs(0x48).auto_delete);
        assert!(DataCoding::from_dcs(0x20).compressed);
        let waiting = DataCoding::from_dcs(0xC8).message_waiting.unwrap();
        assert_eq!(
            (waiting.store, waiting.active, waiting.kind),
            (false, true, 0)
        );
        let waiting = DataCoding::from_dcs(0xE2).message_waiting.unwrap();
        assert_eq!(
            (waiting.store, waiting.active, waiting.kind),
            (true, false, 2)
        );
    }

    #[test]
    fn encoding_names() {
        for encoding in [Encoding::Gsm7, Encoding::Ucs2, Encoding::EightBit] {
            assert_eq!(encoding.to_string().parse::<Encoding>(), Ok(encoding));
        }
        assert_eq!(Encoding::EightBit.to_string(), "8bit");
        assert!("utf8".parse::<Encoding>().is_err());
    }
}
