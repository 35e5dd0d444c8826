//! A secret read from the configuration (the SIM PIN): it prints as `<redacted>` in every
//! `Debug` output, so a configuration or modem options logged at debug, or shown in a panic
//! message, never carry it. Only [`Secret::expose`] gives the text, at the one place that
//! sends it to the modem.

use std::fmt;

use serde::Deserialize;

/// Text that must not appear in logs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the configuration left it empty (`pin = ""`), which means "none".
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let pin = Secret::from("2468");
        let shown = format!("{pin:?} {:?}", Some(pin.clone()));
        assert!(!shown.contains("2468"), "{shown}");
        assert_eq!(pin.expose(), "2468");
    }
}
