//! `[calls]`: what the gateway does when someone calls the SIM's number.
//!
//! It only holds the keys; the driver recognises calls (`crate::modem`), `crate::calls` turns
//! them into events and replies.

use serde::Deserialize;

/// `[calls]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    /// Each call becomes one `message` event to respond.io from the caller's number.
    #[serde(default = "default_true")]
    pub notify: bool,
    /// The text of that event.
    #[serde(default = "default_text")]
    pub text: String,
    /// Reject the call (`AT+CHUP`, `ATH` where the modem has no `AT+CHUP`).
    #[serde(default)]
    pub hangup: bool,
    /// An SMS sent back to the caller, at most once per caller per hour.
    #[serde(default)]
    pub auto_reply: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_text() -> String {
    "Missed call".to_owned()
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            notify: true,
            text: default_text(),
            hangup: false,
            auto_reply: None,
        }
    }
}

impl CallsConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.notify && self.text.trim().is_empty() {
            return Err(
                "calls.text is empty: give the text agents see for a call (the \
                        default is \"Missed call\"), or set calls.notify = false"
                    .to_owned(),
            );
        }
        if self
            .auto_reply
            .as_deref()
            .is_some_and(|text| text.trim().is_empty())
        {
            return Err("calls.auto_reply is empty: remove the key for no reply".to_owned());
        }
        Ok(())
    }
}
