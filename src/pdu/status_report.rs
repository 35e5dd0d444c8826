//! SMS-STATUS-REPORT (3GPP TS 23.040 §9.2.2.3): the service centre telling the sender what
//! became of a submitted part. Decoded for the modem; encoded for the simulated modem.
//!
//! Pairing a report with the part it answers (TP-MR wraps at 256) is done above the codec.
//! Decoding is lenient about the two time stamps (see [`super::warning`]): a report whose
//! TP-SCTS or TP-DT is not a valid time still says which part it is about and what happened.

use chrono::{DateTime, FixedOffset};

use super::address::{self, Address};
use super::dcs::DataCoding;
use super::error::PduError;
use super::reader::Reader;
use super::timestamp;
use super::user_data::{self, UserData};
use super::warning::{Repairs, Warning};

/// What TP-ST says happened (TS 23.040 §9.2.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// 0x00–0x1F: the transaction completed (delivered, forwarded, or replaced).
    Delivered,
    /// 0x20–0x3F: a temporary error; the centre is still trying.
    Pending,
    /// 0x40 and up: a permanent error, or a temporary one the centre gave up on.
    Failed,
}

impl StatusClass {
    /// The class of a TP-ST value.
    pub fn of(status: u8) -> StatusClass {
        match status {
            0x00..=0x1F => StatusClass::Delivered,
            0x20..=0x3F => StatusClass::Pending,
            _ => StatusClass::Failed,
        }
    }

    /// `delivered`, `pending` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Delivered => "delivered",
            StatusClass::Pending => "pending",
            StatusClass::Failed => "failed",
        }
    }
}

/// Why a part was not delivered, in words, with its TP-ST: what `failed` tells respond.io
/// (TS 23.040 §9.2.3.15; a value without words of its own is "a permanent failure").
pub fn failure_text(status: u8) -> String {
    let reason = match status {
        0x40 => "remote procedure error",
        0x41 => "incompatible destination",
        0x42 => "connection rejected by the recipient",
        0x43 => "not obtainable",
        0x44 | 0x64 => "quality of service not available",
        0x45 => "no interworking available",
        0x46 => "the message expired before it could be delivered",
        0x47 => "deleted by the sender",
        0x48 => "deleted by the service centre",
        0x49 => "the message does not exist",
        0x60 => "network congestion; the service centre gave up",
        0x61 => "the recipient was busy; the service centre gave up",
        0x62 => "no response from the recipient; the service centre gave up",
        0x63 => "service rejected",
        0x65 => "error in the recipient's phone",
        _ => "the network reported a permanent failure",
    };
    format!("not delivered: {reason} (TP-ST 0x{status:02X})")
}

impl std::fmt::Display for StatusClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An SMS-STATUS-REPORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub smsc: Option<Address>,
    /// TP-MR of the submitted part this report is about.
    pub message_reference: u8,
    /// TP-RA: the recipient of that part.
    pub recipient: Address,
    /// TP-SCTS: when the centre received the part (`None`: not a valid time).
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// TP-DT: when the status below was reached (`None`: not a valid time).
    pub discharge_time: Option<DateTime<FixedOffset>>,
    /// TP-ST.
    pub status: u8,
    /// TP-SRQ: this reports on an SMS-COMMAND rather than an SMS-SUBMIT.
    pub command_report: bool,
    /// Optional TP-PID, when TP-PI announces it.
    pub pid: Option<u8>,
    /// Optional TP-DCS, when TP-PI announces it.
    pub dcs: Option<u8>,
    /// Optional user data, when TP-PI announces it.
    pub user_data: Option<UserData>,
    /// What could not be read and was worked around.
    pub warnings: Vec<Warning>,
}

impl StatusReport {
    /// Delivered, pending or failed.
    pub fn status_class(&self) -> StatusClass {
        StatusClass::of(self.status)
    }
}

/// The optional tail after TP-ST: TP-PI and what it announces (TS 23.040 §9.2.3.27).
type Optional = (Option<u8>, Option<u8>, Option<UserData>);

fn read_optional(reader: &mut Reader<'_>, has_header: bool) -> Option<Optional> {
    let mut indicator = reader.u8("TP-PI").ok()?;
    let first = indicator;
    // Bit 7 extends TP-PI by another octet; only the first one defines fields.
    while indicator & 0x80 != 0 {
        indicator = reader.u8("TP-PI").ok()?;
    }
    let pid = if first & 0x01 != 0 {
        Some(reader.u8("TP-PID").ok()?)
    } else {
        None
    };
    let dcs = if first & 0x02 != 0 {
        Some(reader.u8("TP-DCS").ok()?)
    } else {
        None
    };
    let user_data = if first & 0x04 != 0 {
        let coding = DataCoding::from_dcs(dcs.unwrap_or(0));
        // The optional part is all or nothing: damaged user data drops it whole, as it
        // always has, rather than being repaired.
        let mut repairs = Repairs::default();
        let user_data = user_data::read(reader, &coding, has_header, &mut repairs).ok()?;
        if !repairs.finish().ok()?.is_empty() {
            return None;
        }
        Some(user_data)
    } else {
        None
    };
    Some((pid, dcs, user_data))
}

/// Reads an SMS-STATUS-REPORT after its first octet.
///
/// The optional parameters after TP-ST are read when present and well formed; when they are
/// not, they are dropped and the report still stands: its mandatory part is what matters.
pub(crate) fn read(
    reader: &mut Reader<'_>,
    smsc: Option<Address>,
    first: u8,
) -> Result<StatusReport, PduError> {
    let message_reference = reader.u8("TP-MR")?;
    let recipient = address::read_address(reader, "TP-RA")?;
    let mut repairs = Repairs::default();
    let timestamp = repairs.time(timestamp::read(reader, "TP-SCTS"))?;
    let discharge_time = repairs.time(timestamp::read(reader, "TP-DT"))?;
    let status = reader.u8("TP-ST")?;
    let (pid, dcs, user_data) = if reader.remaining() > 0 {
        read_optional(reader, first & 0x40 != 0).unwrap_or_default()
    } else {
        (None, None, None)
    };
    Ok(StatusReport {
        smsc,
        message_reference,
        recipient,
        timestamp,
        discharge_time,
        status,
        command_report: first & 0x20 != 0,
        pid,
        dcs,
        user_data,
        warnings: repairs.finish()?,
    })
}

/// Writes an SMS-STATUS-REPORT with the SMSC field in front. Addresses that cannot be
/// encoded are cleaned (see `address::write_address_lossy`).
pub(crate) fn write(
    smsc: &Address,
    message_reference: u8,
    recipient: &Address,
    timestamp: &DateTime<FixedOffset>,
    discharge_time: &DateTime<FixedOffset>,
    status: u8,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    address::write_smsc_lossy(smsc, &mut out);
    // TP-MTI 10, TP-MMS 1 (no more messages), TP-SRQ 0 (about an SMS-SUBMIT).
    out.push(0x06);
    out.push(message_reference);
    address::write_address_lossy(recipient, &mut out);
    timestamp::write(timestamp, &mut out);
    timestamp::write(discharge_time, &mut out);
    out.push(status);
    out
}
