//! The AT command engine: framing, classification, and the task that owns the port.
//!
//! Bytes become frames ([`frame`]: lines and the `> ` prompt), frames are classified
//! ([`classify`]: URC first, then final result, then information line), and one task
//! ([`engine`]) runs one command at a time over any `AsyncRead + AsyncWrite` — a serial port in
//! production, `tokio::io::duplex` in tests — handing URCs to a channel at every moment.
//!
//! This layer knows AT (ITU-T V.250, TS 27.007 result codes) and nothing of SMS beyond the
//! shape of the two-line URCs `+CMT`/`+CDS`. Meaning is given to lines in [`crate::modem`].

pub(crate) mod classify;
pub(crate) mod engine;
pub mod frame;
pub mod ussd;

use std::time::Duration;

pub use classify::{ErrorCode, FinalResult};
pub use engine::{AtConfig, AtHandle, AtStats, spawn};

/// One AT command: its text, its timeout, and optionally data sent after the `> ` prompt.
#[derive(Debug, Clone)]
pub struct Command {
    text: String,
    /// What the logs show instead of `text` (a PIN is never logged).
    shown: Option<String>,
    timeout: Duration,
    payload: Option<String>,
    cooldown: Option<Duration>,
    /// See [`Command::final_grace`].
    final_grace: Option<(String, Duration)>,
}

impl Command {
    /// A command such as `"AT+CSQ"` (no line end: the engine adds `\r`), with a 10 s timeout.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            shown: None,
            timeout: Duration::from_secs(10),
            payload: None,
            cooldown: None,
            final_grace: None,
        }
    }

    /// Builds the command text from an `at_commands` builder result (its `\r\n` is dropped).
    pub fn from_built(built: &[u8]) -> Self {
        let text = String::from_utf8_lossy(built);
        Self::new(text.trim_end())
    }

    /// How long the command may take to its final result.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Data written after the `> ` prompt, followed by Ctrl-Z (TS 27.005 §3.5.1).
    pub fn payload(mut self, payload: impl Into<String>) -> Self {
        self.payload = Some(payload.into());
        self
    }

    /// A cooldown other than the engine's default after this command's final result.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = Some(cooldown);
        self
    }

    /// For modems that give the answer and then omit the final result (a Wavecom answers
    /// `AT+CPIN?` with `+CPIN: READY` and no `OK`): once an information line starting with
    /// `prefix` has arrived, the final result is awaited for at most `grace` (or up to the
    /// command's timeout, if that comes first), then the command ends as if `OK` had come. The engine logs that the modem omitted it and resynchronises
    /// before the next command, so a late `OK` is never taken for the next command's answer.
    pub fn final_grace(mut self, prefix: impl Into<String>, grace: Duration) -> Self {
        self.final_grace = Some((prefix.into(), grace));
        self
    }

    /// Logs `shown` in place of the command text (for commands carrying a PIN).
    pub fn redacted(mut self, shown: impl Into<String>) -> Self {
        self.shown = Some(shown.into());
        self
    }

    /// The command text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The information lines of a command that ended with `OK`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub lines: Vec<String>,
}

impl Response {
    /// The first line starting with `prefix` (e.g. `"+CSQ:"`), after the prefix and spaces.
    pub fn value(&self, prefix: &str) -> Option<&str> {
        self.lines
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim_start)
    }

    /// The first line that is not a `+X:` answer (identity commands such as `AT+CGMI`).
    pub fn text(&self) -> Option<&str> {
        self.lines.first().map(String::as_str)
    }
}

/// An unsolicited result code; `data` is the second line of `+CMT:`/`+CDS:`/`+CBM:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urc {
    pub line: String,
    pub data: Option<String>,
    /// Where in the port's stream it was read: how many lines the engine had read when it
    /// handed the URC over. It orders URCs against command answers (see
    /// [`AtHandle::run_marked`]); it counts from the engine's start, so it means nothing
    /// across two engines.
    pub seq: u64,
}

/// Why a command did not end with `OK`: the port broke, or the modem said no.
#[derive(Debug, thiserror::Error)]
pub enum AtError {
    /// The modem answered with an error result.
    #[error("{command}: {result}")]
    Rejected {
        command: String,
        result: FinalResult,
        lines: Vec<String>,
    },
    /// No final result in time. The engine resynchronises before the next command.
    #[error("{command}: no answer within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    /// After a timeout the modem did not answer `AT` with `OK`.
    #[error("the modem did not answer AT after {attempts} attempts")]
    ResyncFailed { attempts: u32 },
    /// Reading or writing the port failed (unplugged, I/O error).
    #[error("serial port: {0}")]
    Io(#[source] std::io::Error),
    /// The port reached end of file, or the engine task has ended.
    #[error("the port is closed")]
    Closed,
}

impl AtError {
    /// The final result, when the modem said no.
    pub fn result(&self) -> Option<&FinalResult> {
        match self {
            AtError::Rejected { result, .. } => Some(result),
            _ => None,
        }
    }

    /// `true` when the port itself is gone (reopen it), not when a command failed.
    pub fn is_fatal(&self) -> bool {
        matches!(self, AtError::Io(_) | AtError::Closed)
    }
}
