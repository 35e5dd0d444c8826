//! TP-SCTS and TP-DT (3GPP TS 23.040 §9.2.3.11): seven semi-octet-swapped BCD octets, year to
//! second, then the time zone in signed quarter hours.
//!
//! The offset is kept as the PDU states it (`DateTime<FixedOffset>`); converting to UTC or to
//! Unix milliseconds is the caller's choice. Years are 2000–2099: the field has two digits.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike};

use super::error::PduError;
use super::reader::Reader;

/// Octets of a TP-SCTS / TP-DT / absolute TP-VP field.
pub(crate) const LENGTH: usize = 7;

/// A semi-octet swapped BCD pair: low nibble tens, high nibble units.
fn bcd(octet: u8, field: &'static str) -> Result<u32, PduError> {
    let tens = octet & 0x0F;
    let units = octet >> 4;
    if tens > 9 || units > 9 {
        return Err(PduError::Timestamp {
            field,
            reason: "not a decimal digit",
        });
    }
    Ok(u32::from(tens) * 10 + u32::from(units))
}

fn to_bcd(value: u32) -> u8 {
    let value = (value % 100) as u8;
    (value / 10) | ((value % 10) << 4)
}

/// Reads a seven-octet time stamp.
pub(crate) fn read(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<DateTime<FixedOffset>, PduError> {
    let octets = reader.take(LENGTH, field)?;
    decode(octets, field)
}

/// Decodes seven octets (the caller checked the length).
pub(crate) fn decode(
    octets: &[u8],
    field: &'static str,
) -> Result<DateTime<FixedOffset>, PduError> {
    let invalid = |reason| PduError::Timestamp { field, reason };
    let [year, month, day, hour, minute, second, zone] = octets else {
        return Err(invalid("not seven octets"));
    };
    let year = 2000 + bcd(*year, field)? as i32;
    let date = NaiveDate::from_ymd_opt(year, bcd(*month, field)?, bcd(*day, field)?)
        .ok_or_else(|| invalid("no such date"))?;
    let time = date
        .and_hms_opt(
            bcd(*hour, field)?,
            bcd(*minute, field)?,
            bcd(*second, field)?,
        )
        .ok_or_else(|| invalid("no such time of day"))?;
    // Time zone: quarter hours as two BCD digits, swapped; bit 3 of the octet (the tens
    // digit's top bit) is the sign (TS 23.040 §9.2.3.11).
    let negative = zone & 0x08 != 0;
    let quarters = bcd(zone & !0x08, field)? as i32;
    let seconds = quarters * 15 * 60;
    let offset = if negative {
        FixedOffset::west_opt(seconds)
    } else {
        FixedOffset::east_opt(seconds)
    }
    .ok_or_else(|| invalid("time zone out of range"))?;
    offset
        .from_local_datetime(&time)
        .single()
        .ok_or_else(|| invalid("ambiguous local time"))
}

/// Encodes a time stamp; the offset is rounded towards zero to whole quarter hours.
pub(crate) fn write(timestamp: &DateTime<FixedOffset>, out: &mut Vec<u8>) {
    let offset = timestamp.offset().local_minus_utc();
    let quarters = (offset.unsigned_abs() / (15 * 60)).min(79);
    let mut zone = to_bcd(quarters);
    if offset < 0 {
        zone |= 0x08;
    }
    out.extend_from_slice(&[
        to_bcd(timestamp.year().rem_euclid(100) as u32),
        to_bcd(timestamp.month()),
        to_bcd(timestamp.day()),
        to_bcd(timestamp.hour()),
        to_bcd(timestamp.minute()),
        to_bcd(timestamp.second()),
        zone,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_ok(octets: [u8; 7]) -> DateTime<FixedOffset> {
        decode(&octets, "TP-SCTS").unwrap()
    }

    #[test]
    fn positive_zone() {
        // 2021-12-31 23:59:58 +08:00 = 32 quarters → "23" swapped = 0x23.
        let t = decode_ok([0x12, 0x21, 0x13, 0x32, 0x95, 0x85, 0x23]);
        assert_eq!(t.to_rfc3339(), "2021-12-31T23:59:58+08:00");
        let mut out = Vec::new();
        write(&t, &mut out);
        assert_eq!(out, [0x12, 0x21, 0x13, 0x32, 0x95, 0x85, 0x23]);
    }

    #[test]
    fn negative_zone() {
        // -05:00 = 20 quarters: tens 2 with the sign bit = 0xA, units 0 → 0x0A.
        let t = decode_ok([0x42, 0x70, 0x40, 0x31, 0x00, 0x00, 0x0A]);
        assert_eq!(t.to_rfc3339(), "2024-07-04T13:00:00-05:00");
        let mut out = Vec::new();
        write(&t, &mut out);
        assert_eq!(out[6], 0x0A);
        // -03:30 = 14 quarters → 0x49 (tens 1|8 = 9, units 4).
        let t = decode_ok([0x42, 0x70, 0x40, 0x31, 0x00, 0x00, 0x49]);
        assert_eq!(t.offset().local_minus_utc(), -(3 * 3600 + 1800));
    }

    #[test]
    fn impossible_values_are_errors() {
        for octets in [
            [0x42, 0x31, 0x40, 0x31, 0x00, 0x00, 0x00], // month 13
            [0x42, 0x20, 0x03, 0x31, 0x00, 0x00, 0x00], // 30 February
            [0x42, 0x70, 0x40, 0x52, 0x00, 0x00, 0x00], // hour 25
            [0x4A, 0x70, 0x40, 0x31, 0x00, 0x00, 0x00], // not BCD
            [0x42, 0x70, 0x40, 0x31, 0x00, 0x00, 0xA0], // zone not BCD
        ] {
            assert!(
                matches!(decode(&octets, "TP-SCTS"), Err(PduError::Timestamp { .. })),
                "{octets:02X?}"
            );
        }
        assert!(decode(&[0x42], "TP-SCTS").is_err());
    }
}
