//! The states rows move through, as types: the `state` columns hold their names (the words
//! the migrations list), and Rust code compares these enums, never the words.
//!
//! The queries name states in their SQL text (`WHERE state = 'queued'`) where that is the
//! clearest way to write them; a unit test checks that every name here is one the schema's
//! comments list, so the two cannot drift apart.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// Declares a state enum with the name each variant has in its column.
macro_rules! states {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every state, in the order of the life of a row.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name in the column.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                Self::parse(text).ok_or_else(|| {
                    FromSqlError::Other(format!("{text:?} is not a {} state", stringify!($name)).into())
                })
            }
        }
    };
}

states! {
    /// An outbound message (`outbound.state`): `queued → sending → sent → delivered | failed`,
    /// with `unknown` while a part's outcome is in doubt.
    OutboundState {
        /// Waiting to be sent (a first attempt, or a retry after a temporary error).
        Queued = "queued",
        /// Handed to the sender for an attempt.
        Sending = "sending",
        /// A part got no answer from the modem; a report or `sms.unknown_policy` settles it.
        Unknown = "unknown",
        /// Every part accepted by the network (`+CMGS: <mr>`).
        Sent = "sent",
        /// Every part's report says delivered.
        Delivered = "delivered",
        /// Failed for good, with a reason.
        Failed = "failed",
    }
}

states! {
    /// One part of the current attempt (`outbound_part.state`).
    PartState {
        /// About to be handed to the modem (committed before `AT+CMGS`).
        Submitting = "submitting",
        /// No `+CMGS` answer: it may or may not have gone.
        Unknown = "unknown",
        /// The network took it (`+CMGS: <mr>`); a report may follow.
        Accepted = "accepted",
        /// Its report says delivered.
        Delivered = "delivered",
        /// Its report says it failed.
        Failed = "failed",
    }
}

impl PartState {
    /// A part's outcome once a status report of `class` came: final states stay final; a
    /// report of the centre still trying leaves (or makes: the modem did send it) the part
    /// accepted.
    pub(crate) fn after_report(self, class: crate::pdu::StatusClass) -> PartState {
        use crate::pdu::StatusClass;
        match (self, class) {
            (PartState::Delivered | PartState::Failed, _) => self,
            (_, StatusClass::Delivered) => PartState::Delivered,
            (_, StatusClass::Pending) => PartState::Accepted,
            (_, StatusClass::Failed) => PartState::Failed,
        }
    }
}

states! {
    /// An inbound message (`inbound.state`).
    InboundState {
        /// Parts are still awaited.
        Assembling = "assembling",
        /// Every part arrived; finished.
        Complete = "complete",
        /// Finished after the reassembly timeout with parts missing.
        Partial = "partial",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The states a migration's comment lists for `table`: "-- state: a | b | c".
    fn documented(table: &str) -> Vec<String> {
        let schema = include_str!("../../migrations/0001_initial.sql");
        let at = schema
            .find(&format!("CREATE TABLE {table} ("))
            .expect("the table");
        let before = &schema[..at];
        let comment = before
            .rfind("state:")
            .map(|start| &before[start + "state:".len()..])
            .expect("a state comment");
        comment
            .lines()
            .next()
            .expect("a line")
            .split('|')
            .map(|word| word.trim().to_owned())
            .collect()
    }

    fn names(all: &[impl std::fmt::Display]) -> Vec<String> {
        all.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_names_are_the_schemas() {
        for (table, mut states) in [
            ("outbound", names(OutboundState::ALL)),
            ("outbound_part", names(PartState::ALL)),
            ("inbound", names(InboundState::ALL)),
        ] {
            states.sort();
            let mut listed = documented(table);
            listed.sort();
            assert_eq!(states, listed, "{table}");
        }
    }

    #[test]
    fn a_part_outcome_is_final_once_known() {
        use crate::pdu::StatusClass;
        assert_eq!(
            PartState::Accepted.after_report(StatusClass::Pending),
            PartState::Accepted
        );
        assert_eq!(
            PartState::Unknown.after_report(StatusClass::Pending),
            PartState::Accepted,
            "a report settles the doubt: the part went"
        );
        assert_eq!(
            PartState::Accepted.after_report(StatusClass::Delivered),
            PartState::Delivered
        );
        assert_eq!(
            PartState::Delivered.after_report(StatusClass::Failed),
            PartState::Delivered
        );
        assert_eq!(
            PartState::Failed.after_report(StatusClass::Delivered),
            PartState::Failed
        );
    }

    #[test]
    fn states_read_back_and_a_foreign_word_is_an_error() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        for state in InboundState::ALL {
            let back: InboundState = conn
                .query_row("SELECT ?1", [state], |r| r.get(0))
                .expect("reads");
            assert_eq!(back, *state);
        }
        let foreign: rusqlite::Result<InboundState> =
            conn.query_row("SELECT 'lost'", [], |r| r.get(0));
        assert!(foreign.is_err());
    }
}
