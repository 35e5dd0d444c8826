//! The words for `+CME ERROR` and `+CMS ERROR` codes, as a modem prints them after `AT+CMEE=2`.
//!
//! Codes and wording from 3GPP TS 27.007 §9.2 (`+CME`), TS 27.005 §3.2.5 (`+CMS` 300–511) and the
//! RP/CP causes of TS 24.011 §8.2.5.4 and TS 23.040 §9.2.3.22 that modems pass through as
//! `+CMS ERROR` 0–255. Codes without an entry print as `unknown error`.

/// The words for a `+CME ERROR` code.
pub(super) fn cme(code: u16) -> &'static str {
    match code {
        0 => "phone failure",
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        16 => "incorrect password",
        30 => "no network service",
        31 => "network timeout",
        100 => "unknown",
        _ => "unknown error",
    }
}

/// The words for a `+CMS ERROR` code.
pub(super) fn cms(code: u16) -> &'static str {
    match code {
        1 => "unassigned (unallocated) number",
        8 => "operator determined barring",
        10 => "call barred",
        21 => "short message transfer rejected",
        27 => "destination out of service",
        28 => "unidentified subscriber",
        29 => "facility rejected",
        30 => "unknown subscriber",
        38 => "network out of order",
        41 => "temporary failure",
        42 => "congestion",
        47 => "resources unavailable, unspecified",
        50 => "requested facility not subscribed",
        69 => "requested facility not implemented",
        81 => "invalid short message transfer reference value",
        95 => "invalid message, unspecified",
        96 => "invalid mandatory information",
        97 => "message type non-existent or not implemented",
        98 => "message not compatible with short message protocol state",
        99 => "information element non-existent or not implemented",
        111 => "protocol error, unspecified",
        127 => "interworking, unspecified",
        300 => "ME failure",
        301 => "SMS service of ME reserved",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        312 => "PH-SIM PIN required",
        313 => "SIM failure",
        314 => "SIM busy",
        315 => "SIM wrong",
        316 => "SIM PUK required",
        320 => "memory failure",
        321 => "invalid memory index",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        500 => "unknown error",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_codes() {
        assert_eq!(cme(16), "incorrect password");
        assert_eq!(cms(322), "memory full");
        assert_eq!(cms(38), "network out of order");
        assert_eq!(cms(9999), "unknown error");
    }
}
