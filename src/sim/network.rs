//! The network side of the simulated modem: the SMS centre that stamps and encodes what arrives
//! (SMS-DELIVER, SMS-STATUS-REPORT via [`crate::pdu`]), and the vendor noise a real modem emits
//! between everything else.
//!
//! Timing (network delay, report delay) is applied by the device loop; this module only builds
//! PDUs and noise lines.

use chrono::{DateTime, FixedOffset, Local};
use rand::Rng;

use crate::pdu::{self, Address, PduError};

/// The SMS centre's clock: local time with its UTC offset, as SCTS carries it
/// (TS 23.040 §9.2.3.11).
pub(crate) fn now() -> DateTime<FixedOffset> {
    Local::now().fixed_offset()
}

/// Encodes `text` from `from` as one SMS-DELIVER per part (SMSC field in front).
pub(crate) fn deliver(
    smsc: &str,
    from: &str,
    text: &str,
    concat_reference: u16,
) -> Result<Vec<Vec<u8>>, PduError> {
    let smsc = Address::parse(smsc)?;
    let sender = Address::parse(from)?;
    pdu::encode_deliver(&smsc, &sender, text, now(), concat_reference)
}

/// Encodes the status report for the part with TP-MR `mr` sent to `recipient`, with TP-ST
/// `status`; submitted and discharged now.
pub(crate) fn status_report(
    smsc: &str,
    mr: u8,
    recipient: &Address,
    status: u8,
) -> Result<Vec<u8>, PduError> {
    let smsc = Address::parse(smsc)?;
    let time = now();
    Ok(pdu::encode_status_report(
        &smsc, mr, recipient, time, time, status,
    ))
}

/// One line of vendor noise, as Huawei and Quectel modems emit unprompted: signal updates,
/// boot notices, a ring, a registration report.
pub(crate) fn noise_line(rng: &mut impl Rng) -> String {
    match rng.random_range(0..5) {
        0 => format!("^RSSI: {}", rng.random_range(5..31)),
        1 => format!(
            "^BOOT: {},0,0,0,72",
            rng.random_range(10_000_000..99_999_999)
        ),
        2 => "RING".to_string(),
        3 => "+CREG: 1".to_string(),
        _ => format!(
            "^HCSQ: \"LTE\",{},{},{},{}",
            rng.random_range(30..70),
            rng.random_range(30..90),
            rng.random_range(100..200),
            rng.random_range(10..30)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn noise_lines_look_like_urcs() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let line = noise_line(&mut rng);
            assert!(
                line.starts_with('^') || line.starts_with('+') || line == "RING",
                "{line}"
            );
            assert!(!line.contains('\r') && !line.contains('\n'));
        }
    }
}
