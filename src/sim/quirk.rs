//! Ways real devices and networks bend the standards, each a switch of the simulated modem,
//! so that smsgate's tolerance of them is driven end to end: framing quirks of the modem's
//! replies (TS 27.005 §3.1 puts a PDU alone on its line, CR LF after its header), a final
//! result left out, time stamps that are not BCD (TS 23.040 §9.2.3.11), a missing `AT+CHUP`
//! and a USSD refusal as `+CME ERROR` rather than `+CUSD: 4` (TS 27.007 §7.15).
//!
//! This file only shapes output; the interpreter and the device decide when it applies.

use std::fmt;
use std::str::FromStr;

use super::interpreter::hex;

/// Octets of a SIM's SMS record after its status octet (TS 51.011 §10.5.3): what `FF`
/// padding fills a PDU up to.
const RECORD_PDU_OCTETS: usize = 175;

/// The quirks in force; all off by default (a well-behaved modem).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// A `"` and a stray CR after the PDU hex on its line (`+CMGR`, `+CMGL`, `+CMT`, `+CDS`),
    /// as some phones answer.
    pub trailing_quote: bool,
    /// A space instead of CR LF between a header (`+CMGR:`, `+CMGL:`, `+CMT:`, `+CDS:`) and
    /// its PDU, which then shares the header's line.
    pub space_separator: bool,
    /// Stored PDUs read back padded with `FF` to the SIM record's size.
    pub ff_padding: bool,
    /// `AT+CPIN?` answered with `+CPIN: <state>` and no `OK` after it (Wavecom modems).
    pub no_ok_after_cpin: bool,
    /// SMS and status reports from the network carry TP-SCTS (and TP-DT) whose zone octet
    /// has a semi-octet that is not a decimal digit, as some networks send.
    pub non_bcd_timestamps: bool,
    /// `AT+CHUP` answered `ERROR`: some modems (older SIMCom and Wavecom firmware) hang up
    /// only with `ATH`.
    pub no_chup: bool,
    /// A USSD code the network does not know is refused with `+CME ERROR: 100` instead of
    /// `OK` and `+CUSD: 4` (Quectel and SIMCom firmware differ here).
    pub ussd_cme_error: bool,
}

/// One quirk, by name (`trailing-quote`, `space-separator`, `ff-padding`, `no-ok-after-cpin`,
/// `non-bcd-timestamps`, `no-chup`, `ussd-cme-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    TrailingQuote,
    SpaceSeparator,
    FfPadding,
    NoOkAfterCpin,
    NonBcdTimestamps,
    NoChup,
    UssdCmeError,
}

impl Quirk {
    /// Every quirk, in the order `help` lists them.
    pub const ALL: [Quirk; 7] = [
        Quirk::TrailingQuote,
        Quirk::SpaceSeparator,
        Quirk::FfPadding,
        Quirk::NoOkAfterCpin,
        Quirk::NonBcdTimestamps,
        Quirk::NoChup,
        Quirk::UssdCmeError,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Quirk::TrailingQuote => "trailing-quote",
            Quirk::SpaceSeparator => "space-separator",
            Quirk::FfPadding => "ff-padding",
            Quirk::NoOkAfterCpin => "no-ok-after-cpin",
            Quirk::NonBcdTimestamps => "non-bcd-timestamps",
            Quirk::NoChup => "no-chup",
            Quirk::UssdCmeError => "ussd-cme-error",
        }
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Quirk {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Quirk::ALL
            .into_iter()
            .find(|quirk| quirk.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Quirk::ALL.iter().map(|q| q.name()).collect();
                format!("unknown quirk `{text}` (one of {})", names.join(", "))
            })
    }
}

impl Quirks {
    /// Switches one quirk.
    pub fn set(&mut self, quirk: Quirk, on: bool) {
        let flag = match quirk {
            Quirk::TrailingQuote => &mut self.trailing_quote,
            Quirk::SpaceSeparator => &mut self.space_separator,
            Quirk::FfPadding => &mut self.ff_padding,
            Quirk::NoOkAfterCpin => &mut self.no_ok_after_cpin,
            Quirk::NonBcdTimestamps => &mut self.non_bcd_timestamps,
            Quirk::NoChup => &mut self.no_chup,
            Quirk::UssdCmeError => &mut self.ussd_cme_error,
        };
        *flag = on;
    }

    /// The quirks with `quirk` switched `on`.
    pub fn with(mut self, quirk: Quirk, on: bool) -> Self {
        self.set(quirk, on);
        self
    }

    /// The hex of a stored PDU as a read gives it back (padded when `ff_padding`).
    pub fn stored_pdu(&self, pdu: &[u8]) -> String {
        let mut text = hex(pdu);
        if self.ff_padding {
            for _ in pdu.len()..RECORD_PDU_OCTETS {
                text.push_str("FF");
            }
        }
        text
    }

    /// The lines of a header and its PDU, as the quirks frame them (joined with CR LF by the
    /// caller).
    pub fn framed(&self, header: String, mut pdu: String) -> Vec<String> {
        if self.trailing_quote {
            pdu.push_str("\"\r");
        }
        if self.space_separator {
            vec![format!("{header} {pdu}")]
        } else {
            vec![header, pdu]
        }
    }

    /// Makes the time stamps of a network PDU (SMSC field in front) non-BCD when
    /// `non_bcd_timestamps` is on: the units semi-octet of each zone octet becomes `F`.
    pub fn network_pdu(&self, mut pdu: Vec<u8>) -> Vec<u8> {
        if self.non_bcd_timestamps {
            for at in zone_offsets(&pdu) {
                if let Some(octet) = pdu.get_mut(at) {
                    *octet |= 0xF0;
                }
            }
        }
        pdu
    }
}

/// Where the zone octets of TP-SCTS (and TP-DT) are in an SMS-DELIVER or SMS-STATUS-REPORT
/// with its SMSC field in front (TS 23.040 §9.2.2.1, §9.2.2.3).
fn zone_offsets(pdu: &[u8]) -> Vec<usize> {
    let Some(&smsc) = pdu.first() else {
        return Vec::new();
    };
    let mut at = 1 + usize::from(smsc);
    let Some(&first) = pdu.get(at) else {
        return Vec::new();
    };
    at += 1;
    // An address: its length in semi-octets, the type octet, the semi-octets.
    let address = |at: usize| pdu.get(at).map(|&len| 2 + usize::from(len).div_ceil(2));
    match first & 0x03 {
        0b00 => match address(at) {
            // TP-OA, TP-PID, TP-DCS, then TP-SCTS.
            Some(octets) => vec![at + octets + 2 + 6],
            None => Vec::new(),
        },
        0b10 => match address(at + 1) {
            // TP-MR, TP-RA, then TP-SCTS and TP-DT.
            Some(octets) => {
                let scts = at + 1 + octets;
                vec![scts + 6, scts + 13]
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{self, Address, Pdu};

    #[test]
    fn names_round_trip() {
        for quirk in Quirk::ALL {
            assert_eq!(quirk.name().parse::<Quirk>(), Ok(quirk));
        }
        assert!("loud".parse::<Quirk>().is_err());
    }

    #[test]
    fn framing() {
        let quirks = Quirks::default();
        assert_eq!(
            quirks.framed("+CMGR: 0,,3".into(), "00AABB".into()),
            ["+CMGR: 0,,3", "00AABB"]
        );
        let quirks = quirks
            .with(Quirk::TrailingQuote, true)
            .with(Quirk::SpaceSeparator, true);
        assert_eq!(
            quirks.framed("+CMGR: 0,,3".into(), "00AABB".into()),
            ["+CMGR: 0,,3 00AABB\"\r"]
        );
        let padded = Quirks::default()
            .with(Quirk::FfPadding, true)
            .stored_pdu(&[0x00, 0x04]);
        assert_eq!(padded.len(), 2 * RECORD_PDU_OCTETS);
        assert!(padded.starts_with("0004FFFF"));
    }

    #[test]
    fn non_bcd_zones_make_time_stamps_unreadable() {
        let quirks = Quirks::default().with(Quirk::NonBcdTimestamps, true);
        let smsc = Address::parse("+60120000015").unwrap();
        let sender = Address::parse("+60123456789").unwrap();
        let time = chrono::DateTime::parse_from_rfc3339("2026-05-01T10:00:00+03:00").unwrap();
        let deliver = pdu::encode_deliver(&smsc, &sender, "hi", time, 0).unwrap();
        let garbled = quirks.network_pdu(deliver[0].clone());
        let Ok(Pdu::Deliver(d)) = pdu::decode(&garbled, true) else {
            panic!("still decodes");
        };
        assert_eq!((d.timestamp, d.user_data.text.as_str()), (None, "hi"));
        assert!(matches!(
            pdu::decode(&garbled, true).map(|p| p.warnings().len()),
            Ok(1)
        ));
        let report = pdu::encode_status_report(&smsc, 7, &sender, time, time, 0);
        let garbled = quirks.network_pdu(report);
        let Ok(Pdu::StatusReport(r)) = pdu::decode(&garbled, true) else {
            panic!("still decodes");
        };
        assert_eq!((r.timestamp, r.discharge_time, r.status), (None, None, 0));
        // Off, nothing changes.
        let clean = Quirks::default().network_pdu(deliver[0].clone());
        assert_eq!(clean, deliver[0]);
    }
}
