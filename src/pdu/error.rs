//! The one error type of the PDU codec: what could not be read or written, and where.
//!
//! Every decoding error names the field (in the words of 3GPP TS 23.040) and, where it helps,
//! the octet offset into the input, so a log line is enough to find the fault in a capture.
//! It does not carry the input itself: PDUs hold message text and phone numbers.

/// Why a PDU could not be decoded, or a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// The input ended before a field was complete.
    #[error("PDU truncated: {field} needs {needed} octet(s) at offset {offset}, {available} left")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// The input is empty.
    #[error("empty PDU")]
    Empty,
    /// A character of the hex text is not a hex digit.
    #[error("not hex: character {character:?} at position {position}")]
    NotHex { position: usize, character: char },
    /// The hex text has an odd number of digits.
    #[error("odd number of hex digits ({0})")]
    OddHexLength(usize),
    /// An address length field is impossible (TS 23.040 §9.1.2.5: at most 20 digits).
    #[error("{field} length {length} is impossible")]
    AddressLength { field: &'static str, length: usize },
    /// A semi-octet of an address is the end mark where a digit must be.
    #[error("{field} has a filler semi-octet in the middle")]
    AddressFiller { field: &'static str },
    /// A timestamp field is not a valid date, time or zone (TS 23.040 §9.2.3.11).
    #[error("{field} is not a valid time ({reason})")]
    Timestamp {
        field: &'static str,
        reason: &'static str,
    },
    /// TP-UDL says more than a PDU can carry (TS 23.040 §9.2.3.16).
    #[error("user data length {length} exceeds the maximum of {max}")]
    UserDataLength { length: usize, max: usize },
    /// The user data header is inconsistent (TS 23.040 §9.2.3.24).
    #[error("user data header: {0}")]
    Header(&'static str),
    /// UCS-2 user data with an odd number of octets (TS 23.038 §6.2.3).
    #[error("UCS-2 user data has an odd number of octets ({0})")]
    OddUcs2Length(usize),
    /// An address given for sending cannot be encoded.
    #[error("invalid address {text:?}: {reason}")]
    InvalidAddress { text: String, reason: &'static str },
    /// A message would need more parts than the configured cap.
    #[error("message needs {parts} parts, more than the maximum of {max}")]
    TooManyParts { parts: usize, max: usize },
}
