//! SMS over the AT engine: the driver task that owns the modem, and the handle the rest of
//! smsgate uses to send parts and confirm received ones.
//!
//! [`spawn`] starts one task that opens the serial port by path, initialises the modem
//! ([`init`]), reads SMS as `+CMTI`/`+CMT` announce them and sweeps the storage with
//! `AT+CMGL=4` for any whose notification was lost, sends parts with `AT+CMGS`, hands status
//! reports over, keeps [`Health`] up to date, and climbs the recovery ladder when the modem
//! stops answering: resync → reopen the port → wait for the device to come back → optional
//! `AT+CFUN=1,1` → report unhealthy.
//!
//! It does not store anything, reassemble multipart messages or retry failed sends: a received
//! part or status report is deleted from the modem (or acknowledged to the network) only when
//! the caller [`ModemHandle::confirm`]s it, and given back with [`ModemHandle::reject`] when the
//! caller could not commit it; a send error comes back classified for the outbox to decide.
//! Replies are framed tolerantly ([`parse`]), PDUs decoded leniently ([`crate::pdu`]); a
//! received PDU that still does not decode is handed over as [`ModemEvent::Unreadable`] for the
//! caller to keep, never left to fill the storage.

mod driver;
pub mod endpoint;
pub mod error;
pub mod init;
pub mod parse;
pub mod port;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::at::AtConfig;

pub use error::{ModemError, SendError, SendErrorKind, explain_cme, explain_cms};
pub use init::{InitReport, probe};

/// How to reach and drive the modem.
#[derive(Debug, Clone)]
pub struct ModemOptions {
    /// The serial device (prefer a `/dev/serial/by-id/…` link: it survives re-enumeration).
    pub port: PathBuf,
    pub baud: u32,
    /// SIM PIN, entered when the SIM asks (never a PUK).
    pub pin: Option<String>,
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
}

impl From<&crate::config::ModemConfig> for ModemOptions {
    fn from(config: &crate::config::ModemConfig) -> Self {
        Self {
            port: config.port.clone(),
            baud: config.baud,
            pin: config.pin.clone().filter(|pin| !pin.is_empty()),
            delivery_reports: config.delivery_reports,
            sweep_interval: config.sweep_interval,
            command_timeout: config.command_timeout,
            send_timeout: config.send_timeout,
            reset_on_failure: config.reset_on_failure,
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
}

/// Where the modem is on its way up or down the recovery ladder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModemState {
    /// Opening and initialising.
    #[default]
    Starting,
    /// Initialised and registered.
    Ready,
    /// Initialised, but not registered (see `registration` and `last_error`).
    Degraded,
    /// The device path is gone (unplugged, re-enumerating).
    Unplugged,
    /// Recovery failed; the daemon should stop pinging the watchdog.
    Unhealthy,
}

/// A snapshot of the modem, published on a watch channel.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Health {
    pub state: ModemState,
    /// `false` ⇒ the daemon stops pinging the systemd watchdog.
    pub healthy: bool,
    pub registered: bool,
    /// Registration in words ("registered, home network").
    pub registration: String,
    pub operator: Option<String>,
    pub signal_dbm: Option<i32>,
    /// SIM state in words ("READY", "SIM PIN", …).
    pub sim: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub revision: Option<String>,
    pub imei: Option<String>,
    pub resets: u64,
    pub reopens: u64,
    pub timeouts: u64,
    pub resyncs: u64,
    pub garbage_bytes: u64,
    pub last_error: Option<String>,
    /// Messages in the receive storage, and its size (`AT+CPMS`).
    pub storage_used: Option<u32>,
    pub storage_total: Option<u32>,
    /// Bytes written to and read from the port since start (all connections).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Parts accepted with `+CMGS`, and SMS parts handed over.
    pub parts_sent: u64,
    pub parts_received: u64,
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
    tokio::spawn(driver.run(requests_rx));
    (ModemHandle { requests, health }, events)
}

/// Opens the serial device at `baud` (8N1, no flow control: what USB modems expect).
pub fn open_port(path: &std::path::Path, baud: u32) -> Result<port::SerialPort, ModemError> {
    port::open(path, baud)
}
