//! Addresses: TP-OA, TP-DA and TP-RA of 3GPP TS 23.040 §9.1.2.5, and the SMSC address in
//! front of a PDU (TS 24.011 §8.2.5.1, as TS 27.005 §3.1 shows it).
//!
//! The value is kept exactly as the PDU states it: `+` only for international numbers, the
//! decoded text for alphanumeric senders, digits (and `*`, `#`, `a`–`c`) otherwise. Turning a
//! national number into E.164 needs the configured country and is not done here.

use std::fmt;

use super::error::PduError;
use super::gsm7::{self, Tables};
use super::reader::Reader;
use super::septet;

/// Type of number, bits 6–4 of the type-of-address octet (TS 23.040 §9.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeOfNumber {
    Unknown,
    International,
    National,
    NetworkSpecific,
    Subscriber,
    /// 7-bit text, e.g. a bank or an operator sending under a name.
    Alphanumeric,
    Abbreviated,
    Reserved,
}

impl TypeOfNumber {
    fn from_bits(bits: u8) -> Self {
        match bits & 0x07 {
            0 => TypeOfNumber::Unknown,
            1 => TypeOfNumber::International,
            2 => TypeOfNumber::National,
            3 => TypeOfNumber::NetworkSpecific,
            4 => TypeOfNumber::Subscriber,
            5 => TypeOfNumber::Alphanumeric,
            6 => TypeOfNumber::Abbreviated,
            _ => TypeOfNumber::Reserved,
        }
    }

    fn bits(self) -> u8 {
        match self {
            TypeOfNumber::Unknown => 0,
            TypeOfNumber::International => 1,
            TypeOfNumber::National => 2,
            TypeOfNumber::NetworkSpecific => 3,
            TypeOfNumber::Subscriber => 4,
            TypeOfNumber::Alphanumeric => 5,
            TypeOfNumber::Abbreviated => 6,
            TypeOfNumber::Reserved => 7,
        }
    }
}

/// Numbering plan identification: ISDN/telephone (E.164), the usual one.
pub const NPI_ISDN: u8 = 1;

/// Most digits an address field holds: 10 octets of semi-octets (TS 23.040 §9.1.2.5).
const MAX_DIGITS: usize = 20;
/// Most characters of an alphanumeric address: 10 octets hold 11 septets.
const MAX_ALPHANUMERIC_SEPTETS: usize = 11;

/// An address as the PDU states it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub ton: TypeOfNumber,
    /// Numbering plan identification, bits 3–0 of the type-of-address octet.
    pub npi: u8,
    pub value: String,
}

impl Address {
    /// The empty address (an SMSC field of length 0: "use the SIM's service centre").
    pub fn empty() -> Address {
        Address {
            ton: TypeOfNumber::Unknown,
            npi: NPI_ISDN,
            value: String::new(),
        }
    }

    /// Reads an address typed by a person or given by configuration.
    ///
    /// `+digits` is international (E.164), digits (with `*` and `#`) are unknown-type, any other
    /// text that fits 11 GSM septets is alphanumeric; the empty string is [`Address::empty`].
    pub fn parse(text: &str) -> Result<Address, PduError> {
        let invalid = |reason| PduError::InvalidAddress {
            text: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Ok(Address::empty());
        }
        if let Some(digits) = text.strip_prefix('+') {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("'+' must be followed by digits only"));
            }
            if digits.len() > MAX_DIGITS {
                return Err(invalid("more than 20 digits"));
            }
            return Ok(Address {
                ton: TypeOfNumber::International,
                npi: NPI_ISDN,
                value: text.to_owned(),
            });
        }
        if text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            if text.len() > MAX_DIGITS {
                return Err(invalid("more than 20 digits"));
            }
            return Ok(Address {
                ton: TypeOfNumber::Unknown,
                npi: NPI_ISDN,
                value: text.to_owned(),
            });
        }
        match gsm7::septet_count(text) {
            None => Err(invalid(
                "an alphanumeric address must use the GSM 7-bit alphabet",
            )),
            Some(n) if n > MAX_ALPHANUMERIC_SEPTETS => Err(invalid(
                "an alphanumeric address holds at most 11 characters",
            )),
            Some(_) => Ok(Address {
                ton: TypeOfNumber::Alphanumeric,
                npi: 0,
                value: text.to_owned(),
            }),
        }
    }

    /// Whether the address is empty.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    fn type_octet(&self) -> u8 {
        0x80 | (self.ton.bits() << 4) | (self.npi & 0x0F)
    }

    /// The digits as semi-octet codes, without the `+` of an international number.
    fn digit_codes(&self) -> Result<Vec<u8>, PduError> {
        let digits = if self.ton == TypeOfNumber::International {
            self.value.strip_prefix('+').unwrap_or(&self.value)
        } else {
            &self.value
        };
        let codes: Option<Vec<u8>> = digits.chars().map(digit_code).collect();
        let codes = codes.ok_or_else(|| PduError::InvalidAddress {
            text: self.value.clone(),
            reason: "only digits, '*', '#' and 'a'-'c' can be sent as a number",
        })?;
        if codes.len() > MAX_DIGITS {
            return Err(PduError::InvalidAddress {
                text: self.value.clone(),
                reason: "more than 20 digits",
            });
        }
        Ok(codes)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// Semi-octet code of a dialling digit (TS 23.040 §9.1.2.3).
fn digit_code(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(0xA),
        '#' => Some(0xB),
        'a' | 'A' => Some(0xC),
        'b' | 'B' => Some(0xD),
        'c' | 'C' => Some(0xE),
        _ => None,
    }
}

fn digit_char(code: u8) -> char {
    match code {
        0..=9 => char::from(b'0' + code),
        0xA => '*',
        0xB => '#',
        0xC => 'a',
        0xD => 'b',
        _ => 'c',
    }
}

/// Reads `count` semi-octets; 0xF is accepted only as the filler of an odd last octet. An
/// international number gets its `+` (unless it has no digits at all).
fn read_digits(
    octets: &[u8],
    count: usize,
    ton: TypeOfNumber,
    field: &'static str,
) -> Result<String, PduError> {
    let mut out = String::with_capacity(count + 1);
    if ton == TypeOfNumber::International && count > 0 {
        out.push('+');
    }
    for index in 0..count {
        let octet = octets.get(index / 2).copied().unwrap_or(0xFF);
        let code = if index % 2 == 0 {
            octet & 0x0F
        } else {
            octet >> 4
        };
        if code == 0x0F {
            return Err(PduError::AddressFiller { field });
        }
        out.push(digit_char(code));
    }
    Ok(out)
}

/// Decodes TP-OA / TP-DA / TP-RA: length in semi-octets, type of address, value.
pub(crate) fn read_address(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<Address, PduError> {
    let length = usize::from(reader.u8(field)?);
    if length > MAX_DIGITS {
        return Err(PduError::AddressLength { field, length });
    }
    let type_octet = reader.u8(field)?;
    let ton = TypeOfNumber::from_bits(type_octet >> 4);
    let npi = type_octet & 0x0F;
    let octets = reader.take(length.div_ceil(2), field)?;
    let value = if ton == TypeOfNumber::Alphanumeric {
        // The length counts the semi-octets the packed septets use (TS 23.040 §9.1.2.5).
        let septets = length * 4 / 7;
        let mut unpacked = Vec::with_capacity(septets);
        septet::unpack_into(octets, 0, septets, &mut unpacked);
        let mut text = String::with_capacity(septets);
        Tables::DEFAULT.decode_into(unpacked, &mut text);
        text
    } else {
        read_digits(octets, length, ton, field)?
    };
    Ok(Address { ton, npi, value })
}

/// Decodes the SMSC field: length in octets (type octet included), 0 for none.
pub(crate) fn read_smsc(reader: &mut Reader<'_>) -> Result<Option<Address>, PduError> {
    const FIELD: &str = "SMSC address";
    let length = usize::from(reader.u8(FIELD)?);
    if length == 0 {
        return Ok(None);
    }
    if length > 1 + MAX_DIGITS / 2 + 1 {
        return Err(PduError::AddressLength {
            field: FIELD,
            length,
        });
    }
    let type_octet = reader.u8(FIELD)?;
    let ton = TypeOfNumber::from_bits(type_octet >> 4);
    let octets = reader.take(length - 1, FIELD)?;
    let mut count = octets.len() * 2;
    if octets.last().is_some_and(|last| last >> 4 == 0x0F) {
        count -= 1;
    }
    Ok(Some(Address {
        ton,
        npi: type_octet & 0x0F,
        value: read_digits(octets, count, ton, FIELD)?,
    }))
}

fn push_semi_octets(codes: &[u8], out: &mut Vec<u8>) {
    for pair in codes.chunks(2) {
        let low = pair[0];
        let high = pair.get(1).copied().unwrap_or(0x0F);
        out.push(low | (high << 4));
    }
}

/// Encodes TP-DA / TP-OA / TP-RA.
pub(crate) fn write_address(address: &Address, out: &mut Vec<u8>) -> Result<(), PduError> {
    if address.ton == TypeOfNumber::Alphanumeric {
        let mut septets = Vec::with_capacity(MAX_ALPHANUMERIC_SEPTETS);
        for c in address.value.chars() {
            if !gsm7::encode_char(c, &mut septets) {
                return Err(PduError::InvalidAddress {
                    text: address.value.clone(),
                    reason: "an alphanumeric address must use the GSM 7-bit alphabet",
                });
            }
        }
        if septets.len() > MAX_ALPHANUMERIC_SEPTETS {
            return Err(PduError::InvalidAddress {
                text: address.value.clone(),
                reason: "an alphanumeric address holds at most 11 characters",
            });
        }
        let length_at = out.len();
        out.push(0);
        out.push(address.type_octet());
        let start = out.len();
        septet::pack(&[], &septets, out);
        // Semi-octets actually used by the septets (TS 23.040 §9.1.2.5).
        out[length_at] = u8::try_from((septets.len() * 7).div_ceil(4))
            .expect("at most 11 septets, so at most 20 semi-octets");
        debug_assert_eq!(out.len() - start, septet::octets_for(septets.len()));
        return Ok(());
    }
    let codes = address.digit_codes()?;
    out.push(u8::try_from(codes.len()).expect("at most 20 digits"));
    out.push(address.type_octet());
    push_semi_octets(&codes, out);
    Ok(())
}

/// Encodes the SMSC field; an empty address is the single octet 0x00.
pub(crate) fn write_smsc(address: &Address, out: &mut Vec<u8>) -> Result<(), PduError> {
    if address.is_empty() {
        out.push(0);
        return Ok(());
    }
    let codes = address.digit_codes()?;
    out.push(u8::try_from(1 + codes.len().div_ceil(2)).expect("at most 20 digits"));
    out.push(address.type_octet());
    push_semi_octets(&codes, out);
    Ok(())
}

/// Like [`write_address`], for callers with no way to report an error: characters that
/// cannot be encoded are dropped and the value is cut to what the field holds.
pub(crate) fn write_address_lossy(address: &Address, out: &mut Vec<u8>) {
    let cleaned = lossy(address, MAX_DIGITS);
    write_address(&cleaned, out).expect("a cleaned address always encodes");
}

/// Like [`write_smsc`], dropping what cannot be encoded.
pub(crate) fn write_smsc_lossy(address: &Address, out: &mut Vec<u8>) {
    let cleaned = lossy(address, MAX_DIGITS);
    write_smsc(&cleaned, out).expect("a cleaned address always encodes");
}

fn lossy(address: &Address, max_digits: usize) -> Address {
    let value = if address.ton == TypeOfNumber::Alphanumeric {
        let mut septets = 0;
        address
            .value
            .chars()
            .filter(|&c| gsm7::septet_len(c).is_some())
            .take_while(|&c| {
                septets += gsm7::septet_len(c).unwrap_or(0);
                septets <= MAX_ALPHANUMERIC_SEPTETS
            })
            .collect()
    } else {
        let prefix = if address.ton == TypeOfNumber::International && address.value.starts_with('+')
        {
            "+"
        } else {
            ""
        };
        let digits: String = address
            .value
            .chars()
            .filter(|&c| digit_code(c).is_some())
            .take(max_digits)
            .collect();
        format!("{prefix}{digits}")
    };
    Address {
        ton: address.ton,
        npi: address.npi,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Address, PduError> {
        read_address(&mut Reader::new(bytes), "TP-OA")
    }

    fn encode(address: &Address) -> Vec<u8> {
        let mut out = Vec::new();
        write_address(address, &mut out).unwrap();
        out
    }

    #[test]
    fn international_number_with_odd_digit_count() {
        // 11 digits "31641600986", TON 1 NPI 1: 0B 91 1346610089F6.
        let bytes = [0x0B, 0x91, 0x13, 0x46, 0x61, 0x00, 0x89, 0xF6];
        let address = decode(&bytes).unwrap();
        assert_eq!(address.ton, TypeOfNumber::International);
        assert_eq!(address.npi, 1);
        assert_eq!(address.value, "+31641600986");
        assert_eq!(encode(&Address::parse("+31641600986").unwrap()), bytes);
    }

    #[test]
    fn national_and_unknown_numbers_have_no_plus() {
        let address = decode(&[0x04, 0xA1, 0x10, 0x32]).unwrap();
        assert_eq!(address.ton, TypeOfNumber::National);
        assert_eq!(address.value, "0123");
        let address = decode(&[0x04, 0x81, 0x10, 0x32]).unwrap();
        assert_eq!(address.ton, TypeOfNumber::Unknown);
        assert_eq!(address.value, "0123");
    }

    #[test]
    fn star_hash_and_abc_digits() {
        // "*#ab" → codes A B C D → octets BA DC.
        let address = decode(&[0x04, 0x81, 0xBA, 0xDC]).unwrap();
        assert_eq!(address.value, "*#ab");
        let parsed = Address::parse("*100#").unwrap();
        assert_eq!(parsed.ton, TypeOfNumber::Unknown);
        assert_eq!(encode(&parsed), [0x05, 0x81, 0x1A, 0x00, 0xFB]);
    }

    #[test]
    fn alphanumeric_sender() {
        // "Design@Home" (11 septets = 77 bits = 20 semi-octets), worked example from
        // TS 23.040 implementations: 14 D0 C4F23C7D760390EF7619.
        let bytes = [
            0x14, 0xD0, 0xC4, 0xF2, 0x3C, 0x7D, 0x76, 0x03, 0x90, 0xEF, 0x76, 0x19,
        ];
        let address = decode(&bytes).unwrap();
        assert_eq!(address.ton, TypeOfNumber::Alphanumeric);
        assert_eq!(address.value, "Design@Home");
        assert_eq!(encode(&Address::parse("Design@Home").unwrap()), bytes);
        // "Bank" is 4 septets = 28 bits = 7 semi-octets.
        let bank = encode(&Address::parse("Bank").unwrap());
        assert_eq!(bank[0], 7);
        assert_eq!(decode(&bank).unwrap().value, "Bank");
    }

    #[test]
    fn empty_address() {
        let address = decode(&[0x00, 0x81]).unwrap();
        assert_eq!(address.value, "");
        assert!(Address::parse("").unwrap().is_empty());
        let mut out = Vec::new();
        write_smsc(&Address::empty(), &mut out).unwrap();
        assert_eq!(out, [0x00]);
    }

    #[test]
    fn smsc_field() {
        // 07 91 4477 0800 0050 → +447780000005 would be 12 digits; here +44778000000 (11).
        let bytes = [0x07, 0x91, 0x44, 0x77, 0x08, 0x00, 0x00, 0xF0];
        let smsc = read_smsc(&mut Reader::new(&bytes)).unwrap().unwrap();
        assert_eq!(smsc.value, "+44778000000");
        let mut out = Vec::new();
        write_smsc(&smsc, &mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(read_smsc(&mut Reader::new(&[0x00])).unwrap(), None);
    }

    #[test]
    fn malformed_addresses_are_errors() {
        assert!(matches!(
            decode(&[0x15, 0x91]),
            Err(PduError::AddressLength { length: 21, .. })
        ));
        assert!(matches!(
            decode(&[0x04, 0x91, 0x21]),
            Err(PduError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&[0x04, 0x91, 0xF1, 0x32]),
            Err(PduError::AddressFiller { .. })
        ));
        assert!(matches!(
            read_smsc(&mut Reader::new(&[0x30, 0x91])),
            Err(PduError::AddressLength { .. })
        ));
    }

    #[test]
    fn parse_rejects_what_cannot_be_sent() {
        assert!(Address::parse("+").is_err());
        assert!(Address::parse("+44 7700").is_err());
        assert!(Address::parse("+123456789012345678901").is_err());
        assert!(Address::parse("VeryLongSenderName").is_err());
        assert!(Address::parse("Emoji😀").is_err());
        let alpha = Address::parse("MyBank").unwrap();
        assert_eq!((alpha.ton, alpha.npi), (TypeOfNumber::Alphanumeric, 0));
        assert_eq!(alpha.to_string(), "MyBank");
    }

    #[test]
    fn lossy_encoding_never_fails() {
        let odd = Address {
            ton: TypeOfNumber::International,
            npi: 1,
            value: "+44 (7700) 900-123x".into(),
        };
        let mut out = Vec::new();
        write_address_lossy(&odd, &mut out);
        assert_eq!(decode(&out).unwrap().value, "+447700900123");
    }
}
