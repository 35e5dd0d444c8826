//! `smsgate pdu decode|encode`: the codec on the command line, for looking at what a modem
//! printed and for sending a PDU by hand with any serial terminal.
//!
//! Decoding prints one JSON object; encoding prints one `LENGTH HEX` line per part, exactly
//! what `AT+CMGS=LENGTH` and the PDU after the `> ` prompt would carry. Nothing here talks to
//! a modem. Decoding goes through the daemon's own path (the modem parser's framing, then the
//! codec's lenient decoder), so what it shows is what the daemon would make of the same PDU;
//! what had to be worked around is listed under `warnings`.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use super::CmdResult;
use crate::pdu::{self, Address, Pdu, SubmitOptions, UserData};

/// `smsgate pdu` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Decode a PDU given in hex (as the modem prints it) and print it as JSON.
    Decode {
        /// The PDU in hex.
        hex: String,
        /// The PDU has no SMSC field in front (modems always include it).
        #[arg(long)]
        no_smsc: bool,
    },
    /// Encode a text as SMS-SUBMIT parts: one `LENGTH HEX` line per part.
    Encode(EncodeArgs),
}

/// Arguments of `smsgate pdu encode`.
#[derive(clap::Args, Debug)]
pub struct EncodeArgs {
    /// Recipient: +international, national digits, or up to 11 characters of text.
    #[arg(long)]
    pub to: String,
    /// Ask the network for a status report.
    #[arg(long)]
    pub status_report: bool,
    /// Send as UCS-2 even if the text fits GSM 7-bit.
    #[arg(long)]
    pub ucs2: bool,
    /// Do not replace curly quotes, dashes and the like by GSM look-alikes.
    #[arg(long)]
    pub no_smart: bool,
    /// Refuse the text if it needs more parts than this.
    #[arg(long)]
    pub max_parts: Option<usize>,
    /// Concatenation reference for multipart texts (default: random).
    #[arg(long)]
    pub reference: Option<u8>,
    /// Relative validity period, e.g. `4d`, `12h` (default: the service centre's).
    #[arg(long, value_parser = humantime_serde::re::humantime::parse_duration)]
    pub validity: Option<std::time::Duration>,
    /// The message text.
    pub text: String,
}

/// Runs `smsgate pdu …`.
pub fn run(command: Command) -> CmdResult {
    match command {
        Command::Decode { hex, no_smsc } => {
            println!("{}", decode_json(&hex, !no_smsc)?);
        }
        Command::Encode(args) => {
            for line in encode_lines(&args)? {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `smsgate pdu decode` prints for `text`: the PDU framed as the modem parser frames a
/// `+CMGR` line, decoded as the daemon decodes it.
pub fn decode_json(text: &str, smsc_prefix: bool) -> anyhow::Result<Value> {
    let framed = crate::modem::parse::pdu_hex(text, None);
    let pdu = pdu::decode_hex(framed.hex, smsc_prefix).context("cannot decode PDU")?;
    let mut value = to_json(&pdu);
    if framed.dropped > 0 {
        let note = format!(
            "{} character(s) after the PDU ignored (framing, not PDU)",
            framed.dropped
        );
        let warnings = value
            .as_object_mut()
            .expect("to_json gives an object")
            .entry("warnings")
            .or_insert_with(|| json!([]));
        if let Some(list) = warnings.as_array_mut() {
            list.insert(0, json!(note));
        }
    }
    Ok(value)
}

/// The `LENGTH HEX` lines for `args`.
pub fn encode_lines(args: &EncodeArgs) -> anyhow::Result<Vec<String>> {
    let recipient = Address::parse(&args.to).context("invalid --to")?;
    let options = SubmitOptions {
        status_report: args.status_report,
        force_ucs2: args.ucs2,
        smart_encoding: !args.no_smart,
        max_parts: args.max_parts,
        concat_reference: u16::from(args.reference.unwrap_or_else(rand::random)),
        validity: args.validity,
    };
    let parts = pdu::encode_submit(&recipient, &args.text, &options).context("cannot encode")?;
    Ok(parts
        .iter()
        .map(|part| format!("{} {}", part.tpdu_length, part.hex()))
        .collect())
}

fn user_data_fields(user_data: &UserData, object: &mut Map<String, Value>) {
    object.insert("text".into(), json!(user_data.text));
    object.insert("encoding".into(), json!(user_data.encoding.as_str()));
    if let Some(concat) = user_data.concat {
        object.insert(
            "concat".into(),
            json!({
                "reference": concat.reference,
                "total": concat.total,
                "sequence": concat.sequence,
            }),
        );
    }
    if let Some(ports) = user_data.ports {
        object.insert(
            "ports".into(),
            json!({ "destination": ports.destination, "origin": ports.origin }),
        );
    }
}

/// The JSON object `smsgate pdu decode` prints: keys absent when they do not apply.
pub fn to_json(pdu: &Pdu) -> Value {
    let mut object = Map::new();
    let smsc = match pdu {
        Pdu::Deliver(d) => d.smsc.as_ref(),
        Pdu::Submit(s) => s.smsc.as_ref(),
        Pdu::StatusReport(r) => r.smsc.as_ref(),
    };
    if let Some(smsc) = smsc {
        object.insert("smsc".into(), json!(smsc.value));
    }
    match pdu {
        Pdu::Deliver(d) => {
            object.insert("type".into(), json!("deliver"));
            object.insert("sender".into(), json!(d.sender.value));
            if let Some(timestamp) = d.timestamp {
                object.insert("timestamp".into(), json!(timestamp.to_rfc3339()));
            }
            object.insert(
                "status_report_requested".into(),
                json!(d.status_report_indication),
            );
            object.insert("pid".into(), json!(d.pid));
            object.insert("dcs".into(), json!(d.dcs));
            if let Some(class) = d.message_class {
                object.insert("message_class".into(), json!(class));
            }
            user_data_fields(&d.user_data, &mut object);
        }
        Pdu::Submit(s) => {
            object.insert("type".into(), json!("submit"));
            object.insert("recipient".into(), json!(s.recipient.value));
            object.insert("message_reference".into(), json!(s.message_reference));
            object.insert(
                "status_report_requested".into(),
                json!(s.status_report_request),
            );
            object.insert("pid".into(), json!(s.pid));
            object.insert("dcs".into(), json!(s.dcs));
            match s.validity {
                Some(pdu::Validity::Relative(period)) => {
                    object.insert("validity_seconds".into(), json!(period.as_secs()));
                }
                Some(pdu::Validity::Absolute(until)) => {
                    object.insert("validity_until".into(), json!(until.to_rfc3339()));
                }
                Some(pdu::Validity::Enhanced(_)) | None => {}
            }
            user_data_fields(&s.user_data, &mut object);
        }
        Pdu::StatusReport(r) => {
            object.insert("type".into(), json!("status_report"));
            object.insert("recipient".into(), json!(r.recipient.value));
            object.insert("message_reference".into(), json!(r.message_reference));
            if let Some(timestamp) = r.timestamp {
                object.insert("timestamp".into(), json!(timestamp.to_rfc3339()));
            }
            if let Some(discharge_time) = r.discharge_time {
                object.insert("discharge_time".into(), json!(discharge_time.to_rfc3339()));
            }
            object.insert("status".into(), json!(r.status));
            object.insert("status_class".into(), json!(r.status_class().as_str()));
        }
    }
    let warnings = pdu.warnings();
    if !warnings.is_empty() {
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        object.insert("warnings".into(), json!(warnings));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_json_has_the_documented_keys() {
        let pdu = pdu::decode_hex(
            "07917283010010F5440BC87137485784F800002050629173140A09050003A702019069",
            true,
        )
        .unwrap();
        let value = to_json(&pdu);
        assert_eq!(value["type"], "deliver");
        assert_eq!(value["smsc"], "+27381000015");
        assert_eq!(value["sender"], "17738475488");
        assert_eq!(value["text"], "Hi");
        assert_eq!(value["encoding"], "gsm7");
        assert_eq!(value["timestamp"], "2002-05-26T19:37:41-05:00");
        assert_eq!(
            value["concat"],
            json!({"reference": 167, "total": 2, "sequence": 1})
        );
        assert!(value.get("status").is_none());
        assert!(value.get("recipient").is_none());
    }

    #[test]
    fn status_report_json() {
        let pdu =
            pdu::decode_hex("0006D60B911326880736F4111011719551401110117195714041", true).unwrap();
        let value = to_json(&pdu);
        assert_eq!(value["type"], "status_report");
        assert_eq!(value["message_reference"], 0xD6);
        assert_eq!(value["recipient"], "+31628870634");
        assert_eq!(value["status"], 0x41);
        assert_eq!(value["status_class"], "failed");
        assert_eq!(value["discharge_time"], "2011-01-11T17:59:17+01:00");
        assert!(value.get("smsc").is_none());
    }

    #[test]
    fn encode_prints_length_and_hex_per_part() {
        let mut args = EncodeArgs {
            to: "+46708251358".into(),
            status_report: false,
            ucs2: false,
            no_smart: false,
            max_parts: None,
            reference: Some(1),
            validity: Some(std::time::Duration::from_secs(4 * 86400)),
            text: "hellohello".into(),
        };
        assert_eq!(
            encode_lines(&args).unwrap(),
            ["23 0011000B916407281553F80000AA0AE8329BFD4697D9EC37"]
        );
        args.text = "z".repeat(300);
        args.max_parts = Some(1);
        let error = encode_lines(&args).unwrap_err();
        assert!(format!("{error:#}").contains("needs 2 parts"), "{error:#}");
        args.max_parts = None;
        let lines = encode_lines(&args).unwrap();
        assert_eq!(lines.len(), 2);
        let pdu = lines[1].split_once(' ').unwrap().1;
        let Ok(Pdu::Submit(part)) = pdu::decode_hex(pdu, true) else {
            panic!("second part");
        };
        assert_eq!(part.user_data.concat.map(|c| c.sequence), Some(2));
    }
}
