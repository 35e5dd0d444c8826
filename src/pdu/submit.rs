//! SMS-SUBMIT (3GPP TS 23.040 §9.2.2.2): a message from the handset to the network. Encoded
//! for every part smsgate sends; decoded for the simulated modem and `smsgate pdu decode`.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use super::address::{self, Address};
use super::dcs::DataCoding;
use super::error::PduError;
use super::reader::Reader;
use super::split::Payload;
use super::timestamp;
use super::user_data::{self, UserData};
use super::warning::{Repairs, Warning};

/// TP-VP, the validity period (TS 23.040 §9.2.3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    /// Relative format: how long after submission the centre keeps trying.
    Relative(Duration),
    /// Absolute format: until when.
    Absolute(DateTime<FixedOffset>),
    /// Enhanced format (§9.2.3.12.3), kept raw.
    Enhanced([u8; 7]),
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// The period a relative TP-VP octet stands for (TS 23.040 §9.2.3.12.1).
pub fn relative_validity(vp: u8) -> Duration {
    let vp = u64::from(vp);
    Duration::from_secs(match vp {
        0..=143 => (vp + 1) * 5 * MINUTE,
        144..=167 => 12 * HOUR + (vp - 143) * 30 * MINUTE,
        168..=196 => (vp - 166) * DAY,
        _ => (vp - 192) * WEEK,
    })
}

/// The smallest relative TP-VP octet whose period is at least `period` (63 weeks at most).
pub fn relative_vp(period: Duration) -> u8 {
    let secs = period
        .as_secs()
        .saturating_add(u64::from(period.subsec_nanos() > 0));
    let vp = if secs <= 12 * HOUR {
        secs.div_ceil(5 * MINUTE).max(1) - 1
    } else if secs <= DAY {
        143 + (secs - 12 * HOUR).div_ceil(30 * MINUTE)
    } else if secs <= 30 * DAY {
        166 + secs.div_ceil(DAY)
    } else {
        192 + secs.div_ceil(WEEK)
    };
    u8::try_from(vp.min(255)).expect("clamped to 255")
}

/// An SMS-SUBMIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub smsc: Option<Address>,
    /// TP-MR (0 when the modem fills it in).
    pub message_reference: u8,
    /// TP-DA.
    pub recipient: Address,
    /// TP-SRR.
    pub status_report_request: bool,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS, raw.
    pub dcs: u8,
    /// TP-VP, when TP-VPF says there is one.
    pub validity: Option<Validity>,
    /// TP-RD: the centre should reject a duplicate of a message it still holds.
    pub reject_duplicates: bool,
    /// TP-RP.
    pub reply_path: bool,
    pub user_data: UserData,
    /// What could not be read and was worked around (an absolute TP-VP that is no valid
    /// time is left out).
    pub warnings: Vec<Warning>,
}

/// Reads an SMS-SUBMIT after its first octet.
pub(crate) fn read(
    reader: &mut Reader<'_>,
    smsc: Option<Address>,
    first: u8,
) -> Result<Submit, PduError> {
    let message_reference = reader.u8("TP-MR")?;
    let recipient = address::read_address(reader, "TP-DA")?;
    let pid = reader.u8("TP-PID")?;
    let dcs = reader.u8("TP-DCS")?;
    let mut repairs = Repairs::default();
    // TP-VPF, bits 4–3 (TS 23.040 §9.2.3.3).
    let validity = match (first >> 3) & 0x03 {
        0b10 => Some(Validity::Relative(relative_validity(reader.u8("TP-VP")?))),
        0b11 => repairs
            .time(timestamp::read(reader, "TP-VP"))?
            .map(Validity::Absolute),
        0b01 => {
            let octets = reader.take(7, "TP-VP")?;
            let mut raw = [0; 7];
            raw.copy_from_slice(octets);
            Some(Validity::Enhanced(raw))
        }
        _ => None,
    };
    let coding = DataCoding::from_dcs(dcs);
    let user_data = user_data::read(reader, &coding, first & 0x40 != 0, &mut repairs)?;
    let warnings = repairs.finish()?;
    Ok(Submit {
        smsc,
        message_reference,
        recipient,
        status_report_request: first & 0x20 != 0,
        pid,
        dcs,
        validity,
        reject_duplicates: first & 0x04 != 0,
        reply_path: first & 0x80 != 0,
        user_data,
        warnings,
    })
}

/// Writes one SMS-SUBMIT part with an empty SMSC field in front (the modem uses the SIM's).
pub(crate) fn write(
    recipient: &Address,
    part: &Payload<'_>,
    status_report: bool,
    validity: Option<Duration>,
) -> Result<Vec<u8>, PduError> {
    let mut out = Vec::with_capacity(176);
    out.push(0x00);
    let mut first = 0x01; // TP-MTI 01
    if validity.is_some() {
        first |= 0x10; // TP-VPF 10: relative
    }
    if status_report {
        first |= 0x20;
    }
    if !part.header.is_empty() {
        first |= 0x40;
    }
    out.push(first);
    out.push(0x00); // TP-MR: the modem assigns it (+CMGS: <mr>)
    address::write_address(recipient, &mut out)?;
    out.push(0x00);
    out.push(DataCoding::dcs_for(part.encoding));
    if let Some(period) = validity {
        out.push(relative_vp(period));
    }
    user_data::write(part.encoding, &part.header, part.payload, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_validity_table() {
        assert_eq!(relative_validity(0), Duration::from_secs(5 * 60));
        assert_eq!(relative_validity(143), Duration::from_secs(12 * 3600));
        assert_eq!(
            relative_validity(144),
            Duration::from_secs(12 * 3600 + 1800)
        );
        assert_eq!(relative_validity(167), Duration::from_secs(24 * 3600));
        assert_eq!(relative_validity(168), Duration::from_secs(2 * 86400));
        assert_eq!(relative_validity(196), Duration::from_secs(30 * 86400));
        assert_eq!(relative_validity(197), Duration::from_secs(5 * 7 * 86400));
        assert_eq!(relative_validity(255), Duration::from_secs(63 * 7 * 86400));
        for vp in 0..=255u8 {
            assert_eq!(relative_vp(relative_validity(vp)), vp, "{vp}");
        }
        assert_eq!(relative_vp(Duration::from_secs(1)), 0);
        assert_eq!(relative_vp(Duration::from_secs(301)), 1);
        assert_eq!(relative_vp(Duration::from_secs(86400 + 1)), 168);
        assert_eq!(relative_vp(Duration::from_secs(u64::MAX / 2)), 255);
    }
}
