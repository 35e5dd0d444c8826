//! The text a received part contributes to its message, so that respond.io never gets an
//! empty one: decoded GSM 7-bit and UCS-2 text as it is; 8-bit data as text when it is plain
//! text (some phones and gateways send it so), otherwise a visible placeholder saying how many
//! octets arrived. Port-addressed messages (WAP push, vCards to an application port) keep
//! their hex form: they are for applications, not people. A message whose text ends up empty
//! becomes [`super::finish::EMPTY_SMS`] when it is finished.

use crate::pdu::{Encoding, TRUNCATED_MARKER, UserData, printable_text};

/// What an SMS that cannot be decoded is forwarded as, from its sender.
pub const UNREADABLE_SMS: &str = "(an SMS that could not be read)";

/// The placeholder for 8-bit data that is not text.
pub fn binary_placeholder(octets: usize) -> String {
    format!("(binary SMS, {octets} bytes)")
}

/// The text of one part (see the module documentation).
pub fn part_text(user_data: &UserData) -> String {
    if user_data.encoding != Encoding::EightBit || user_data.ports.is_some() {
        return user_data.text.clone();
    }
    if user_data.data.is_empty() && !user_data.truncated {
        return String::new();
    }
    let mut text =
        printable_text(&user_data.data).unwrap_or_else(|| binary_placeholder(user_data.data.len()));
    if user_data.truncated {
        text.push_str(TRUNCATED_MARKER);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::Ports;

    fn eight_bit(data: &[u8]) -> UserData {
        UserData {
            encoding: Encoding::EightBit,
            text: data.iter().map(|b| format!("{b:02X}")).collect(),
            data: data.to_vec(),
            concat: None,
            ports: None,
            locking_shift: None,
            single_shift: None,
            header: Vec::new(),
            truncated: false,
        }
    }

    #[test]
    fn eight_bit_text_binary_and_empty() {
        assert_eq!(part_text(&eight_bit(b"Meet at 5pm")), "Meet at 5pm");
        assert_eq!(
            part_text(&eight_bit(&[0x00, 0x01, 0xFE])),
            "(binary SMS, 3 bytes)"
        );
        assert_eq!(part_text(&eight_bit(&[])), "");
        let mut cut = eight_bit(b"Meet at");
        cut.truncated = true;
        assert_eq!(part_text(&cut), "Meet at…[truncated]");
    }

    #[test]
    fn port_addressed_data_keeps_its_hex() {
        let mut wap = eight_bit(b"text");
        wap.ports = Some(Ports {
            destination: 2948,
            origin: 9200,
        });
        assert_eq!(part_text(&wap), "74657874");
    }
}
