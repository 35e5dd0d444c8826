//! SMS over the AT engine: the driver task that owns one modem, and the handle the rest of
//! smsgate uses to send parts and confirm received ones.
//!
//! [`spawn`] starts one task that opens the modem's port, initialises the modem ([`init`]),
//! reads SMS as `+CMTI`/`+CMT` announce them and sweeps the storage with `AT+CMGL=4` for any
//! whose notification was lost, sends parts with `AT+CMGS`, hands status reports over, keeps
//! [`Health`] up to date, and climbs the recovery ladder when the modem stops answering:
//! resync → reopen the port → wait for the device to come back → optional `AT+CFUN=1,1` →
//! report unhealthy. Each task owns its own state (no globals): a pool runs one per modem.
//!
//! The driver, bottom up: `connection` (one line: open, run a command with the timeout
//! bookkeeping, the busy back-off, the engine's counters), then beside each other `receive`
//! (URCs, `AT+CMGR`, the sweep, releasing what the caller committed), `send` (`AT+CMGS` and
//! its `+CMGS: <mr>`), `health` (what [`Health`] says) and `recovery` (the ladder), with
//! `driver` the loop that serves one initialised connection.
//!
//! It does not store anything, reassemble multipart messages or retry failed sends: a received
//! part or status report is deleted from the modem (or acknowledged to the network) only when
//! the caller [`ModemHandle::confirm`]s it, and given back with [`ModemHandle::reject`] when the
//! caller could not commit it; a send error comes back classified for the outbox to decide.
//! Replies are framed tolerantly ([`parse`]), PDUs decoded leniently ([`crate::pdu`]); a
//! received PDU that still does not decode is handed over as [`ModemEvent::Unreadable`] for the
//! caller to keep, never left to fill the storage.

mod calls;
mod connection;
mod driver;
pub mod endpoint;
pub(crate) mod error;
mod health;
pub(crate) mod init;
pub mod parse;
pub(crate) mod port;
mod receive;
mod recovery;
mod send;
mod ussd;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::at::AtConfig;

pub use error::{ModemError, SendError, SendErrorKind, explain_cme};
pub use health::{Health, ModemState};
pub use init::{InitReport, probe};
pub use ussd::{Balance, UssdAnswer, UssdError};

/// How to reach and drive the modem.
#[derive(Debug, Clone)]
pub struct ModemOptions {
    /// The serial device (prefer a `/dev/serial/by-id/…` link: it survives re-enumeration).
    pub port: PathBuf,
    /// Where the modem is when it is not `port`: a ser2net TCP port (`None`: the device `port`).
    pub endpoint: Option<endpoint::Endpoint>,
    pub baud: u32,
    /// SIM PIN, entered when the SIM asks (never a PUK).
    pub pin: Option<crate::config::Secret>,
    /// Ask the network for status reports and route them back.
    pub delivery_reports: bool,
    /// How often the storage is swept with `AT+CMGL=4`.
    pub sweep_interval: Duration,
    /// Timeout of an ordinary command.
    pub command_timeout: Duration,
    /// Timeout of `AT+CMGS` (the network may take minutes).
    pub send_timeout: Duration,
    /// Reset the modem with `AT+CFUN=1,1` when initialisation keeps failing.
    pub reset_on_failure: bool,
    /// Ask the network for the SIM's balance by USSD, on this schedule.
    pub balance: Option<crate::config::BalanceCheck>,
    /// Reject incoming calls (`AT+CHUP`, `ATH` where the modem has no `AT+CHUP`).
    pub hangup_calls: bool,
}

impl ModemOptions {
    /// The options of one modem of the pool, with the gateway's call policy.
    pub fn for_pool_modem(
        modem: &crate::config::PoolModem,
        calls: &crate::config::CallsConfig,
    ) -> Self {
        Self {
            balance: modem.balance.clone(),
            hangup_calls: calls.hangup,
            ..Self::from(modem)
        }
    }
}

impl From<&crate::config::ModemConfig> for ModemOptions {
    fn from(config: &crate::config::ModemConfig) -> Self {
        Self {
            port: config.port.clone(),
            endpoint: None,
            baud: config.baud,
            pin: config.pin.clone().filter(|pin| !pin.is_empty()),
            delivery_reports: config.delivery_reports,
            sweep_interval: config.sweep_interval,
            command_timeout: config.command_timeout,
            send_timeout: config.send_timeout,
            reset_on_failure: config.reset_on_failure,
            balance: None,
            hangup_calls: false,
        }
    }
}

impl From<&crate::config::PoolModem> for ModemOptions {
    fn from(member: &crate::config::PoolModem) -> Self {
        let mut options = ModemOptions::from(&member.modem);
        if let endpoint::Endpoint::Serial(path) = &member.endpoint {
            options.port = path.clone();
        }
        options.endpoint = Some(member.endpoint.clone());
        options
    }
}

impl ModemOptions {
    /// The endpoint the driver opens.
    pub fn endpoint(&self) -> endpoint::Endpoint {
        self.endpoint
            .clone()
            .unwrap_or_else(|| endpoint::Endpoint::Serial(self.port.clone()))
    }

    /// Whether the modem's device path is missing (unplugged). A TCP endpoint has no path:
    /// a failed connection is retried with back-off, never "gone".
    pub fn device_missing(&self) -> bool {
        match self.endpoint() {
            endpoint::Endpoint::Serial(path) => !path.exists(),
            endpoint::Endpoint::Tcp { .. } => false,
        }
    }
}

/// The recovery ladder's thresholds and other timings; the defaults suit real modems, tests
/// shorten them.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// The AT engine's own settings (cooldown, buffers, resync).
    pub at: AtConfig,
    /// Consecutive command timeouts before the port is closed and opened again.
    pub reopen_after_timeouts: u32,
    /// Failed initialisations before `AT+CFUN=1,1` (when `reset_on_failure`).
    pub reset_after_failures: u32,
    /// Failed initialisations before the modem is reported unhealthy.
    pub unhealthy_after_failures: u32,
    /// How long the device may stay away before the modem is reported unhealthy.
    pub unplugged_grace: Duration,
    /// How often a missing device path is looked for.
    pub device_poll: Duration,
    /// First and longest wait between failed initialisations.
    pub retry_backoff: (Duration, Duration),
    /// How often signal, registration and operator are refreshed.
    pub health_interval: Duration,
    /// Sweep interval while the storage is full (to drain it).
    pub full_sweep_interval: Duration,
    /// Attempts at a command the modem answers "busy", and the first pause between them.
    pub busy_retries: u32,
    pub busy_backoff: Duration,
    /// How long an initialisation query that got its answer waits for the final result
    /// before going on without it (Wavecom modems omit the `OK` after `+CPIN: READY`).
    pub final_grace: Duration,
    /// How long the network may take to answer a USSD request before it is cancelled
    /// (`AT+CUSD=2`). Sending waits at most this long behind it.
    pub ussd_timeout: Duration,
    /// How soon a failed balance check is tried again (never later than the interval).
    pub balance_retry: Duration,
    /// A `RING` this long after the last one starts a new call (rings come every 3–6 s).
    pub call_ring_gap: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            at: AtConfig::default(),
            reopen_after_timeouts: 3,
            reset_after_failures: 3,
            unhealthy_after_failures: 6,
            unplugged_grace: Duration::from_secs(120),
            device_poll: Duration::from_millis(250),
            retry_backoff: (Duration::from_secs(1), Duration::from_secs(30)),
            health_interval: Duration::from_secs(30),
            full_sweep_interval: Duration::from_secs(10),
            busy_retries: 5,
            busy_backoff: Duration::from_millis(500),
            final_grace: Duration::from_secs(2),
            ussd_timeout: Duration::from_secs(30),
            balance_retry: Duration::from_secs(600),
            call_ring_gap: Duration::from_secs(12),
        }
    }
}

/// Where a received SMS or status report is, so [`ModemHandle::confirm`] can release it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum StorageSlot {
    /// In the modem's storage: deleted with `AT+CMGD` once confirmed.
    Stored { memory: String, index: u32 },
    /// Routed directly (`+CMT`/`+CDS`): acknowledged with `AT+CNMA` where the modem needs it.
    Routed,
    /// Nothing to release.
    None,
}

impl std::fmt::Display for StorageSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageSlot::Stored { memory, index } => write!(f, "{memory}:{index}"),
            StorageSlot::Routed => f.write_str("routed"),
            StorageSlot::None => f.write_str("none"),
        }
    }
}

/// What the modem hands the caller.
#[derive(Debug, Clone)]
pub enum ModemEvent {
    /// One SMS part, decoded. `pdu` = the raw PDU bytes as read (SMSC in front).
    Received {
        deliver: crate::pdu::Deliver,
        pdu: Vec<u8>,
        slot: StorageSlot,
    },
    /// A status report for a part sent earlier (paired by TP-MR).
    StatusReport {
        report: crate::pdu::StatusReport,
        slot: StorageSlot,
    },
    /// A received PDU that does not decode, even leniently. The caller keeps it (nothing is
    /// dropped in silence) and then confirms the slot, so it cannot fill the storage.
    Unreadable {
        /// The PDU text as the modem printed it.
        pdu: String,
        /// Why it could not be read.
        reason: String,
        /// TP-OA, when the fields up to it could be read.
        sender: Option<crate::pdu::Address>,
        /// A status report, by its TP-MTI or by the URC that carried it.
        status_report: bool,
        slot: StorageSlot,
    },
    /// An incoming call, once per call however often it rings (nothing to release).
    Call {
        /// The caller as `+CLIP` gave it (`+60123456789`, or national digits); `None` when
        /// the number was withheld or the network did not give it.
        number: Option<String>,
    },
}

pub(crate) enum Request {
    Send {
        pdu_hex: String,
        tpdu_length: usize,
        more_to_follow: bool,
        reply: oneshot::Sender<Result<u8, SendError>>,
    },
    Confirm {
        slot: StorageSlot,
        reply: oneshot::Sender<Result<(), ModemError>>,
    },
    Reject {
        slot: StorageSlot,
        reply: oneshot::Sender<Result<(), ModemError>>,
    },
    Ussd {
        code: String,
        reply: oneshot::Sender<Result<UssdAnswer, UssdError>>,
    },
}

/// A cheap handle on the modem task.
#[derive(Clone, Debug)]
pub struct ModemHandle {
    requests: mpsc::Sender<Request>,
    health: watch::Receiver<Health>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Send { tpdu_length, .. } => write!(f, "Send({tpdu_length} octets)"),
            Request::Confirm { slot, .. } => write!(f, "Confirm({slot})"),
            Request::Reject { slot, .. } => write!(f, "Reject({slot})"),
            Request::Ussd { code, .. } => write!(f, "Ussd({code})"),
        }
    }
}

impl ModemHandle {
    /// Sends ONE part (`AT+CMGS=<len>`, prompt, PDU, Ctrl-Z). `more_to_follow` = another part of
    /// the same message comes next (the driver keeps the link with `AT+CMMS=2` where supported).
    /// Returns TP-MR from `+CMGS: <mr>`.
    pub async fn send_part(
        &self,
        part: &crate::pdu::EncodedPart,
        more_to_follow: bool,
    ) -> Result<u8, SendError> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Send {
            pdu_hex: part.hex(),
            tpdu_length: part.tpdu_length,
            more_to_follow,
            reply,
        };
        if self.requests.send(request).await.is_err() {
            return Err(SendError::temporary("the modem task has stopped"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(SendError::unknown("the modem task stopped during the send")))
    }

    /// Deletes a stored SMS or status report once the caller committed it (`AT+CMGD`), or
    /// acknowledges a directly routed one (`AT+CNMA`) — whichever the slot says.
    pub async fn confirm(&self, slot: StorageSlot) -> Result<(), ModemError> {
        if slot == StorageSlot::None {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Confirm { slot, reply })
            .await
            .map_err(|_| ModemError::Stopped)?;
        answer.await.map_err(|_| ModemError::Stopped)?
    }

    /// Gives back what the caller could not commit: a stored SMS or report stays in the
    /// modem's storage and the next sweep offers it again; a routed one is refused with
    /// `AT+CNMA=2` where the modem takes it, so the network delivers it again.
    pub async fn reject(&self, slot: StorageSlot) -> Result<(), ModemError> {
        if slot == StorageSlot::None {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Reject { slot, reply })
            .await
            .map_err(|_| ModemError::Stopped)?;
        answer.await.map_err(|_| ModemError::Stopped)?
    }

    /// Asks the network `code` by USSD (`AT+CUSD=1,"<code>",15`) and waits for its answer,
    /// decoded; cancelled (`AT+CUSD=2`) when none comes within [`Tuning::ussd_timeout`].
    pub async fn ussd(&self, code: &str) -> Result<UssdAnswer, UssdError> {
        crate::at::ussd::request(code, 15).map_err(UssdError::Invalid)?;
        let (reply, answer) = oneshot::channel();
        let request = Request::Ussd {
            code: code.trim().to_owned(),
            reply,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| UssdError::Stopped)?;
        answer.await.map_err(|_| UssdError::Stopped)?
    }

    /// A cheap snapshot (watch channel).
    pub fn health(&self) -> Health {
        self.health.borrow().clone()
    }

    /// The watch channel itself, to wait for changes.
    pub fn health_watch(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }
}

/// Spawns the task that owns the port (opens, initialises, recovers, reopens after unplug).
/// Returns at once; the modem initialises in the background and keeps retrying.
pub fn spawn(
    options: ModemOptions,
    shutdown: CancellationToken,
) -> (ModemHandle, mpsc::Receiver<ModemEvent>) {
    spawn_with(options, Tuning::default(), shutdown)
}

/// [`spawn`] with other thresholds and timings.
pub fn spawn_with(
    options: ModemOptions,
    tuning: Tuning,
    shutdown: CancellationToken,
) -> (ModemHandle, mpsc::Receiver<ModemEvent>) {
    let (requests, requests_rx) = mpsc::channel(32);
    let (events_tx, events) = mpsc::channel(64);
    let (health_tx, health) = watch::channel(Health {
        healthy: true,
        sim: "unknown".into(),
        registration: "unknown".into(),
        ..Health::default()
    });
    let driver = driver::Driver::new(options, tuning, shutdown, events_tx, health_tx);
    // In a pool every line the driver logs names its modem.
    tokio::spawn(tracing::Instrument::instrument(
        driver.run(requests_rx),
        tracing::Span::current(),
    ));
    (ModemHandle { requests, health }, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modem_options_never_show_the_pin() {
        let config = crate::config::ModemConfig {
            pin: Some("8642".into()),
            ..Default::default()
        };
        let shown = format!("{:?}", ModemOptions::from(&config));
        assert!(!shown.contains("8642"), "the PIN leaks: {shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
