//! The user data header (3GPP TS 23.040 §9.2.3.24): concatenation with 8-bit (IEI 0x00) and
//! 16-bit (IEI 0x08) references, application ports (0x04, 0x05), national language shifts
//! (0x24, 0x25, TS 23.038 §6.2.1.2.4).
//!
//! Unknown information elements are kept raw and otherwise skipped; a length that overruns
//! the header, or a known element of the wrong size, is an error. It does not reassemble
//! messages: that needs storage and lives above the codec.

use super::error::PduError;

/// Concatenation (TS 23.040 §9.2.3.24.1 and .8): which part of which message this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// The message reference, the same in every part of one message (8 or 16 bits).
    pub reference: u16,
    /// Number of parts, 1–255.
    pub total: u8,
    /// This part's number, 1-based.
    pub sequence: u8,
}

/// Application port addressing (TS 23.040 §9.2.3.24.3 and .4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ports {
    pub destination: u16,
    pub origin: u16,
}

/// One information element as it appeared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InformationElement {
    pub id: u8,
    pub data: Vec<u8>,
}

/// IEI: concatenated short messages, 8-bit reference.
pub(super) const IEI_CONCAT_8: u8 = 0x00;
/// IEI: application port addressing, 8-bit ports.
pub(super) const IEI_PORTS_8: u8 = 0x04;
/// IEI: application port addressing, 16-bit ports.
pub(super) const IEI_PORTS_16: u8 = 0x05;
/// IEI: concatenated short messages, 16-bit reference.
pub(super) const IEI_CONCAT_16: u8 = 0x08;
/// IEI: national language single shift.
pub(super) const IEI_SINGLE_SHIFT: u8 = 0x24;
/// IEI: national language locking shift.
pub(super) const IEI_LOCKING_SHIFT: u8 = 0x25;

/// What a user data header says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) concat: Option<Concat>,
    pub(crate) ports: Option<Ports>,
    pub(crate) single_shift: Option<u8>,
    pub(crate) locking_shift: Option<u8>,
    pub(crate) elements: Vec<InformationElement>,
}

fn expect_len(data: &[u8], len: usize, message: &'static str) -> Result<(), PduError> {
    if data.len() == len {
        Ok(())
    } else {
        Err(PduError::Header(message))
    }
}

/// Parses the header at the start of `user_data` (UDHL first). Returns it and its size in
/// octets, UDHL included.
pub(crate) fn parse(user_data: &[u8]) -> Result<(Header, usize), PduError> {
    let Some((&udhl, rest)) = user_data.split_first() else {
        return Err(PduError::Header("header indicated but user data is empty"));
    };
    let udhl = usize::from(udhl);
    let Some(mut body) = rest.get(..udhl) else {
        return Err(PduError::Header("header length overruns the user data"));
    };
    let mut header = Header::default();
    while let [id, length, tail @ ..] = body {
        let length = usize::from(*length);
        let Some(data) = tail.get(..length) else {
            return Err(PduError::Header("information element overruns the header"));
        };
        match *id {
            IEI_CONCAT_8 => {
                expect_len(data, 3, "8-bit concatenation element must be 3 octets")?;
                header.concat = concat(u16::from(data[0]), data[1], data[2]);
            }
            IEI_CONCAT_16 => {
                expect_len(data, 4, "16-bit concatenation element must be 4 octets")?;
                header.concat = concat(u16::from_be_bytes([data[0], data[1]]), data[2], data[3]);
            }
            IEI_PORTS_8 => {
                expect_len(data, 2, "8-bit port element must be 2 octets")?;
                header.ports = Some(Ports {
                    destination: u16::from(data[0]),
                    origin: u16::from(data[1]),
                });
            }
            IEI_PORTS_16 => {
                expect_len(data, 4, "16-bit port element must be 4 octets")?;
                header.ports = Some(Ports {
                    destination: u16::from_be_bytes([data[0], data[1]]),
                    origin: u16::from_be_bytes([data[2], data[3]]),
                });
            }
            IEI_SINGLE_SHIFT => {
                expect_len(data, 1, "national single shift element must be 1 octet")?;
                header.single_shift = Some(data[0]);
            }
            IEI_LOCKING_SHIFT => {
                expect_len(data, 1, "national locking shift element must be 1 octet")?;
                header.locking_shift = Some(data[0]);
            }
            _ => {}
        }
        header.elements.push(InformationElement {
            id: *id,
            data: data.to_vec(),
        });
        body = &tail[length..];
    }
    if !body.is_empty() {
        return Err(PduError::Header(
            "stray octet after the last information element",
        ));
    }
    Ok((header, 1 + udhl))
}

/// TS 23.040 §9.2.3.24.1: a sequence number of 0 or above the total means the element is
/// to be ignored, not the message.
fn concat(reference: u16, total: u8, sequence: u8) -> Option<Concat> {
    (total > 0 && sequence > 0 && sequence <= total).then_some(Concat {
        reference,
        total,
        sequence,
    })
}

/// The header for one part of a concatenated message (UDHL included): the 8-bit reference
/// element (6 octets; the low octet of the reference) or, if `wide`, the 16-bit one (7 octets).
pub(crate) fn concat_header(concat: Concat, wide: bool) -> Vec<u8> {
    match (wide, u8::try_from(concat.reference & 0xFF)) {
        (false, Ok(reference)) => {
            vec![5, IEI_CONCAT_8, 3, reference, concat.total, concat.sequence]
        }
        _ => {
            let [high, low] = concat.reference.to_be_bytes();
            vec![
                6,
                IEI_CONCAT_16,
                4,
                high,
                low,
                concat.total,
                concat.sequence,
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenation_with_8_and_16_bit_references() {
        let (header, len) = parse(&[0x05, 0x00, 0x03, 0xA7, 0x03, 0x02, 0x41]).unwrap();
        assert_eq!(len, 6);
        assert_eq!(
            header.concat,
            Some(Concat {
                reference: 0xA7,
                total: 3,
                sequence: 2
            })
        );
        let (header, len) = parse(&[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]).unwrap();
        assert_eq!(len, 7);
        assert_eq!(
            header.concat,
            Some(Concat {
                reference: 0x1234,
                total: 2,
                sequence: 1
            })
        );
        let built = concat_header(
            Concat {
                reference: 0x1234,
                total: 2,
                sequence: 1,
            },
            true,
        );
        assert_eq!(built, [0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]);
    }

    #[test]
    fn ports_shifts_and_unknown_elements() {
        // Unknown IE 0x70 (2 octets) skipped, 16-bit ports 2948 → 9200, Turkish locking shift.
        let udh = [
            0x0D, 0x70, 0x02, 0xAA, 0xBB, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x25, 0x01, 0x01,
        ];
        let (header, len) = parse(&udh).unwrap();
        assert_eq!(len, 14);
        assert_eq!(
            header.ports,
            Some(Ports {
                destination: 2948,
                origin: 9200
            })
        );
        assert_eq!(header.locking_shift, Some(1));
        assert_eq!(header.elements.len(), 3);
        assert_eq!(header.elements[0].data, [0xAA, 0xBB]);
        let (header, _) = parse(&[0x04, 0x04, 0x02, 0x10, 0x20]).unwrap();
        assert_eq!(
            header.ports,
            Some(Ports {
                destination: 0x10,
                origin: 0x20
            })
        );
    }

    #[test]
    fn sequence_out_of_range_ignores_the_element() {
        let (header, _) = parse(&[0x05, 0x00, 0x03, 0x01, 0x02, 0x03]).unwrap();
        assert_eq!(header.concat, None);
        let (header, _) = parse(&[0x05, 0x00, 0x03, 0x01, 0x02, 0x00]).unwrap();
        assert_eq!(header.concat, None);
    }

    #[test]
    fn bad_lengths_are_errors() {
        for udh in [
            &[][..],                               // nothing at all
            &[0x06, 0x00, 0x03, 0x01, 0x02, 0x01], // UDHL overruns
            &[0x03, 0x00, 0x03, 0x01],             // IE overruns the header
            &[0x04, 0x00, 0x02, 0x01, 0x02],       // concat of the wrong size
            &[0x04, 0x24, 0x01, 0x01, 0xFF],       // one stray octet
            &[0x02, 0x25, 0x02],                   // IE overruns (length 2, nothing left)
        ] {
            assert!(matches!(parse(udh), Err(PduError::Header(_))), "{udh:02X?}");
        }
    }
}
