//! Lenient decoding: what the decoder could not read and worked around, and the rule that
//! decides when a PDU is too damaged to be trusted at all.
//!
//! Real networks and phones send PDUs that break TS 23.040 in small ways: a time stamp with a
//! semi-octet that is not a decimal digit (usually in the zone octet), user data shorter than
//! TP-UDL, UCS-2 text under a TP-DCS that says GSM 7-bit. Each such field is read as well as
//! it can be and noted as a [`Warning`]; the rest of the PDU is used. Damage in two unrelated
//! places at once (an unreadable time stamp *and* user data that does not fit) is what a PDU
//! read from the wrong offset looks like, so the decoder then gives the strict error
//! instead of a confident wrong answer. Structural faults (the wrong TP-MTI, an address that
//! overruns, a broken header, non-hex text) are never repaired: they are errors as before.

use std::fmt;

use chrono::{DateTime, FixedOffset};

use super::error::PduError;

/// Something a decoded PDU did not say properly, and what the decoder did instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Warning {
    /// A time stamp (TP-SCTS, TP-DT, an absolute TP-VP) is not a valid time; it is left out.
    UnreadableTime {
        field: &'static str,
        reason: &'static str,
    },
    /// TP-UD ends before TP-UDL says it should; what is there was decoded and the text ends
    /// with [`TRUNCATED_MARKER`].
    TruncatedUserData { needed: usize, available: usize },
    /// UCS-2 user data with an odd number of octets; the stray last octet became U+FFFD.
    OddUcs2Length(usize),
    /// TP-DCS says GSM 7-bit but TP-UDL counts octets and the octets are UCS-2 text; read as
    /// UCS-2.
    Ucs2UnderGsm7Coding,
}

/// The visible mark at the end of a text whose user data was cut short.
pub const TRUNCATED_MARKER: &str = "…[truncated]";

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnreadableTime { field, reason } => {
                write!(f, "{field} is not a valid time ({reason}); left out")
            }
            Warning::TruncatedUserData { needed, available } => write!(
                f,
                "TP-UD truncated: TP-UDL needs {needed} octet(s), {available} present; \
                 decoded what is there"
            ),
            Warning::OddUcs2Length(octets) => write!(
                f,
                "UCS-2 user data has an odd number of octets ({octets}); the last one is shown \
                 as U+FFFD"
            ),
            Warning::Ucs2UnderGsm7Coding => f.write_str(
                "TP-DCS says GSM 7-bit, but TP-UDL counts octets of UCS-2 text; read as UCS-2",
            ),
        }
    }
}

/// The repairs made while reading one PDU.
#[derive(Debug, Default)]
pub(crate) struct Repairs {
    warnings: Vec<Warning>,
    /// The strict error the first unreadable field would have been.
    unreadable: Option<PduError>,
    /// The user data did not fit its length (cut short, or an odd UCS-2 octet).
    misfit: bool,
}

impl Repairs {
    /// A time stamp: its value, or `None` with a warning when it cannot be read. Any other
    /// error (the field is missing altogether) stays an error.
    pub(crate) fn time(
        &mut self,
        read: Result<DateTime<FixedOffset>, PduError>,
    ) -> Result<Option<DateTime<FixedOffset>>, PduError> {
        match read {
            Ok(time) => Ok(Some(time)),
            Err(PduError::Timestamp { field, reason }) => {
                self.warnings
                    .push(Warning::UnreadableTime { field, reason });
                self.unreadable
                    .get_or_insert(PduError::Timestamp { field, reason });
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// Notes a repair of the user data.
    pub(crate) fn user_data(&mut self, warning: Warning) {
        if matches!(
            warning,
            Warning::TruncatedUserData { .. } | Warning::OddUcs2Length(_)
        ) {
            self.misfit = true;
        }
        self.warnings.push(warning);
    }

    /// The warnings, or the strict error when the PDU is damaged in a way that suggests it
    /// is not being read from the right place (see the module documentation).
    pub(crate) fn finish(self) -> Result<Vec<Warning>, PduError> {
        match self.unreadable {
            Some(error) if self.misfit => Err(error),
            _ => Ok(self.warnings),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_time() -> Result<DateTime<FixedOffset>, PduError> {
        Err(PduError::Timestamp {
            field: "TP-SCTS",
            reason: "not a decimal digit",
        })
    }

    #[test]
    fn one_kind_of_damage_is_repaired() {
        let mut repairs = Repairs::default();
        assert_eq!(repairs.time(bad_time()), Ok(None));
        assert_eq!(
            repairs.finish().unwrap(),
            [Warning::UnreadableTime {
                field: "TP-SCTS",
                reason: "not a decimal digit"
            }]
        );
        let mut repairs = Repairs::default();
        repairs.user_data(Warning::TruncatedUserData {
            needed: 12,
            available: 3,
        });
        assert_eq!(repairs.finish().unwrap().len(), 1);
    }

    #[test]
    fn damage_in_two_places_is_the_strict_error() {
        let mut repairs = Repairs::default();
        repairs.time(bad_time()).unwrap();
        repairs.user_data(Warning::TruncatedUserData {
            needed: 12,
            available: 3,
        });
        assert!(matches!(
            repairs.finish(),
            Err(PduError::Timestamp {
                field: "TP-SCTS",
                ..
            })
        ));
        // A missing field is not a repair.
        let mut repairs = Repairs::default();
        let missing = Err(PduError::Truncated {
            field: "TP-DT",
            offset: 20,
            needed: 7,
            available: 2,
        });
        assert!(repairs.time(missing).is_err());
    }

    #[test]
    fn warnings_read_as_sentences() {
        let text = Warning::TruncatedUserData {
            needed: 82,
            available: 79,
        }
        .to_string();
        assert!(text.contains("82") && text.contains("79"), "{text}");
        assert!(Warning::Ucs2UnderGsm7Coding.to_string().contains("UCS-2"));
    }
}
