//! SMS-DELIVER (3GPP TS 23.040 §9.2.2.1): a message from the network to the handset. Decoded
//! for every incoming SMS; encoded for the simulated modem and tests.
//!
//! Decoding is lenient where a field can be left out without misreading the rest (see
//! [`super::warning`]): an unreadable TP-SCTS is `None`, user data cut short is decoded as far
//! as it goes.

use chrono::{DateTime, FixedOffset};

use super::address::{self, Address};
use super::dcs::DataCoding;
use super::error::PduError;
use super::reader::Reader;
use super::split::Payload;
use super::timestamp;
use super::user_data::{self, UserData};
use super::warning::{Repairs, Warning};

/// An SMS-DELIVER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    pub smsc: Option<Address>,
    /// TP-OA.
    pub sender: Address,
    /// TP-SCTS, with the offset the service centre gave; `None` when it is not a valid time
    /// (a warning says why).
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS, raw; [`DataCoding::from_dcs`] reads it.
    pub dcs: u8,
    /// Message class from TP-DCS (0 = flash).
    pub message_class: Option<u8>,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-MMS inverted: the centre has more messages waiting for this handset.
    pub more_messages: bool,
    /// TP-RP: a reply path is set.
    pub reply_path: bool,
    /// TP-LP: loop prevention.
    pub loop_prevention: bool,
    pub user_data: UserData,
    /// What could not be read and was worked around.
    pub warnings: Vec<Warning>,
}

/// Reads an SMS-DELIVER after its first octet.
pub(crate) fn read(
    reader: &mut Reader<'_>,
    smsc: Option<Address>,
    first: u8,
) -> Result<Deliver, PduError> {
    let sender = address::read_address(reader, "TP-OA")?;
    let pid = reader.u8("TP-PID")?;
    let dcs = reader.u8("TP-DCS")?;
    let mut repairs = Repairs::default();
    let timestamp = repairs.time(timestamp::read(reader, "TP-SCTS"))?;
    let coding = DataCoding::from_dcs(dcs);
    let user_data = user_data::read(reader, &coding, first & 0x40 != 0, &mut repairs)?;
    let warnings = repairs.finish()?;
    Ok(Deliver {
        smsc,
        sender,
        timestamp,
        pid,
        dcs,
        message_class: coding.message_class,
        status_report_indication: first & 0x20 != 0,
        more_messages: first & 0x04 == 0,
        reply_path: first & 0x80 != 0,
        loop_prevention: first & 0x08 != 0,
        user_data,
        warnings,
    })
}

/// Writes one SMS-DELIVER part, SMSC field in front.
pub(crate) fn write(
    smsc: &Address,
    sender: &Address,
    timestamp: &DateTime<FixedOffset>,
    part: &Payload<'_>,
) -> Result<Vec<u8>, PduError> {
    let mut out = Vec::with_capacity(176);
    address::write_smsc(smsc, &mut out)?;
    // TP-MTI 00, TP-MMS 1 (no more messages), TP-UDHI when there is a header.
    out.push(0x04 | if part.header.is_empty() { 0 } else { 0x40 });
    address::write_address(sender, &mut out)?;
    out.push(0x00);
    out.push(DataCoding::dcs_for(part.encoding));
    timestamp::write(timestamp, &mut out);
    user_data::write(part.encoding, &part.header, part.payload, &mut out);
    Ok(out)
}
