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
        let mut inbound = names(InboundState::ALL);
        inbound.sort();
        let mut listed = documented("inbound");
        listed.sort();
        assert_eq!(inbound, listed);
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
