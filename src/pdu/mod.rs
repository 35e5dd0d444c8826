//! The SMS PDU codec: 3GPP TS 23.040 (SMS-DELIVER, SMS-SUBMIT, SMS-STATUS-REPORT) and
//! TS 23.038 (alphabets), in the PDU mode of TS 27.005.
//!
//! Pure, synchronous code with no I/O: bytes in, values out, and back. Every input is
//! untrusted: malformed PDUs give a [`PduError`] naming the field, never a panic or an
//! out-of-bounds read. Decoding is lenient where real networks are sloppy (an unreadable time
//! stamp, user data cut short): the field is reported as a [`Warning`] and the rest is used
//! ([`warning`] says where the line is drawn). It does not reassemble multipart messages, pair status reports with
//! sent parts, or normalise phone numbers; those need state or configuration and live above.
//!
//! Reading: [`decode`] / [`decode_hex`] → [`Pdu`]. Sending: [`plan`] tells how a text would
//! go; [`encode_submit`] produces the parts for `AT+CMGS`. The network side, for the simulated
//! modem and tests: [`encode_deliver`], [`encode_status_report`].

mod address;
mod dcs;
mod deliver;
mod error;
pub mod gsm7;
mod reader;
mod septet;
mod smart;
mod split;
mod status_report;
mod submit;
mod timestamp;
mod udh;
mod user_data;
pub mod ussd;
pub(crate) mod warning;

use std::time::Duration;

use chrono::{DateTime, FixedOffset};

pub use address::{Address, NPI_ISDN, TypeOfNumber};
pub use dcs::{DataCoding, Encoding, MessageWaiting, UnknownEncoding};
pub use deliver::Deliver;
pub use error::PduError;
pub use smart::{Replacement, look_alike};
pub use split::{Plan, plan};
pub use status_report::{StatusClass, StatusReport, failure_text};
pub use submit::{Submit, Validity, relative_validity, relative_vp};
pub use udh::{Concat, InformationElement, Ports};
pub use user_data::{MAX_OCTETS, MAX_SEPTETS, UserData, printable_text};
pub use warning::{TRUNCATED_MARKER, Warning};

use reader::Reader;

/// A decoded PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Deliver(Deliver),
    Submit(Submit),
    StatusReport(StatusReport),
}

impl Pdu {
    /// What the decoder could not read and worked around (empty for a clean PDU).
    pub fn warnings(&self) -> &[Warning] {
        match self {
            Pdu::Deliver(d) => &d.warnings,
            Pdu::Submit(s) => &s.warnings,
            Pdu::StatusReport(r) => &r.warnings,
        }
    }
}

/// Decodes a PDU. `bytes` as the modem gives them; `smsc_prefix`: the SMSC field is in front
/// (it is in everything a modem reports in PDU mode, TS 27.005 §3.1).
///
/// The direction is not known from the PDU alone; TP-MTI is read as the network side sends
/// it (00 DELIVER, 10 STATUS-REPORT) except 01, which only a SUBMIT uses. The reserved value
/// 11 is read as a DELIVER, as TS 23.040 §9.2.3.1 asks of a receiving handset.
pub fn decode(bytes: &[u8], smsc_prefix: bool) -> Result<Pdu, PduError> {
    if bytes.is_empty() {
        return Err(PduError::Empty);
    }
    let mut reader = Reader::new(bytes);
    let smsc = if smsc_prefix {
        address::read_smsc(&mut reader)?
    } else {
        None
    };
    let first = reader.u8("first octet")?;
    match first & 0x03 {
        0b01 => submit::read(&mut reader, smsc, first).map(Pdu::Submit),
        0b10 => status_report::read(&mut reader, smsc, first).map(Pdu::StatusReport),
        _ => deliver::read(&mut reader, smsc, first).map(Pdu::Deliver),
    }
}

/// What can still be told about a PDU that does not decode: whether its TP-MTI says
/// SMS-STATUS-REPORT, and the sender of an SMS-DELIVER when the fields up to TP-OA read
/// cleanly. For keeping a record of an SMS that cannot be read (and telling its sender so).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvage {
    pub status_report: bool,
    pub sender: Option<Address>,
}

/// Reads what it can of a PDU that [`decode`] refused (see [`Salvage`]).
pub fn salvage(bytes: &[u8], smsc_prefix: bool) -> Salvage {
    let mut reader = Reader::new(bytes);
    if smsc_prefix && address::read_smsc(&mut reader).is_err() {
        return Salvage::default();
    }
    let Ok(first) = reader.u8("first octet") else {
        return Salvage::default();
    };
    match first & 0x03 {
        0b10 => Salvage {
            status_report: true,
            sender: None,
        },
        0b00 | 0b11 => Salvage {
            status_report: false,
            sender: address::read_address(&mut reader, "TP-OA")
                .ok()
                .filter(|sender| !sender.is_empty()),
        },
        _ => Salvage::default(),
    }
}

/// [`decode`] from hex text as `AT+CMGL` / `+CMT` print it (either case; surrounding
/// whitespace ignored).
pub fn decode_hex(hex: &str, smsc_prefix: bool) -> Result<Pdu, PduError> {
    decode(&hex_to_bytes(hex)?, smsc_prefix)
}

/// Hex text to bytes.
pub fn hex_to_bytes(hex: &str) -> Result<Vec<u8>, PduError> {
    let hex = hex.trim();
    if hex.len() % 2 != 0 {
        return Err(PduError::OddHexLength(hex.len()));
    }
    let nibble = |position: usize, byte: u8| match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        b'A'..=b'F' => Ok(byte - b'A' + 10),
        _ => Err(PduError::NotHex {
            position,
            character: hex[position..].chars().next().unwrap_or('?'),
        }),
    };
    hex.as_bytes()
        .chunks_exact(2)
        .enumerate()
        .map(|(index, pair)| Ok(nibble(2 * index, pair[0])? << 4 | nibble(2 * index + 1, pair[1])?))
        .collect()
}

/// Options for [`encode_submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    /// Ask for a status report (TP-SRR).
    pub status_report: bool,
    /// Send as UCS-2 even if the text fits GSM 7-bit.
    pub force_ucs2: bool,
    /// Replace typographic characters by GSM look-alikes when that makes the text GSM.
    pub smart_encoding: bool,
    /// Refuse texts that need more parts than this.
    pub max_parts: Option<usize>,
    /// Concatenation reference, the same in every part of one message; only its low octet is
    /// sent (the 8-bit element, TS 23.040 §9.2.3.24.1). Used only when there is more than one
    /// part. A message resent whole should get a new one.
    pub concat_reference: u16,
    /// TP-VP in the relative format, rounded up to the next period it can express.
    pub validity: Option<Duration>,
}

impl Default for SubmitOptions {
    /// No status report, smart encoding on (as in the default configuration), no cap,
    /// reference 0, no validity period (the centre's default).
    fn default() -> Self {
        SubmitOptions {
            status_report: false,
            force_ucs2: false,
            smart_encoding: true,
            max_parts: None,
            concat_reference: 0,
            validity: None,
        }
    }
}

/// One SMS-SUBMIT part as `AT+CMGS` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPart {
    /// What `AT+CMGS=<n>` takes: the TPDU length in octets, without the SMSC field.
    pub tpdu_length: usize,
    /// The PDU with an empty SMSC field (0x00) in front.
    pub bytes: Vec<u8>,
}

impl EncodedPart {
    /// Upper-case hex of [`EncodedPart::bytes`], as written after the `> ` prompt.
    pub fn hex(&self) -> String {
        user_data::hex_upper(&self.bytes)
    }
}

/// Most parts a concatenated message can have (TS 23.040 §9.2.3.24.1: one octet).
pub const MAX_PARTS: usize = 255;

/// Encodes `text` to `recipient` as SMS-SUBMIT parts: exactly the parts [`plan`] counts.
///
/// Errors: [`PduError::InvalidAddress`] for an empty or unencodable recipient,
/// [`PduError::TooManyParts`] over `options.max_parts` (or 255).
pub fn encode_submit(
    recipient: &Address,
    text: &str,
    options: &SubmitOptions,
) -> Result<Vec<EncodedPart>, PduError> {
    if recipient.is_empty() {
        return Err(PduError::InvalidAddress {
            text: String::new(),
            reason: "no recipient",
        });
    }
    let (parts, _, _) = split::prepare(text, options.smart_encoding, options.force_ucs2);
    check_parts(parts.parts(), options.max_parts)?;
    parts
        .payloads(options.concat_reference)
        .map(|payload| {
            let bytes =
                submit::write(recipient, &payload, options.status_report, options.validity)?;
            Ok(EncodedPart {
                tpdu_length: bytes.len() - 1,
                bytes,
            })
        })
        .collect()
}

fn check_parts(parts: usize, max_parts: Option<usize>) -> Result<(), PduError> {
    let max = max_parts.unwrap_or(MAX_PARTS).min(MAX_PARTS);
    if parts > max {
        return Err(PduError::TooManyParts { parts, max });
    }
    Ok(())
}

/// Encodes `text` from `sender` as SMS-DELIVER parts, each a full PDU with the SMSC field in
/// front, as a modem would report them. No smart encoding: the network delivers what was sent.
pub fn encode_deliver(
    smsc: &Address,
    sender: &Address,
    text: &str,
    timestamp: DateTime<FixedOffset>,
    concat_reference: u16,
) -> Result<Vec<Vec<u8>>, PduError> {
    let (parts, _, _) = split::prepare(text, false, false);
    check_parts(parts.parts(), None)?;
    parts
        .payloads(concat_reference)
        .map(|payload| deliver::write(smsc, sender, &timestamp, &payload))
        .collect()
}

/// Encodes an SMS-STATUS-REPORT with the SMSC field in front. Characters the address fields
/// cannot hold are dropped (the simulated network never produces them).
pub fn encode_status_report(
    smsc: &Address,
    message_reference: u8,
    recipient: &Address,
    timestamp: DateTime<FixedOffset>,
    discharge_time: DateTime<FixedOffset>,
    status: u8,
) -> Vec<u8> {
    status_report::write(
        smsc,
        message_reference,
        recipient,
        &timestamp,
        &discharge_time,
        status,
    )
}

#[cfg(test)]
mod tests;
