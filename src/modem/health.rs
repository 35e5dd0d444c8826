//! The modem's health as the rest of smsgate sees it ([`Health`] on a watch channel), and the
//! driver's bookkeeping of it ([`HealthBook`]): where the modem is on the recovery ladder
//! ([`ModemState`]), what initialisation and the periodic refresh found (identity, SIM,
//! registration, signal, storage), and the counters (timeouts, resyncs, reopens, resets,
//! bytes, parts).
//!
//! It only records and publishes; the ladder that moves the state is `recovery`.

use tokio::sync::watch;
use tracing::info;

use super::connection::EngineTotals;
use super::init::InitReport;
use super::parse;
use crate::at::{AtHandle, AtStats};

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

impl ModemState {
    /// The state's name, as `/health` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModemState::Starting => "starting",
            ModemState::Ready => "ready",
            ModemState::Degraded => "degraded",
            ModemState::Unplugged => "unplugged",
            ModemState::Unhealthy => "unhealthy",
        }
    }
}

impl std::fmt::Display for ModemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// The SIM's balance as last read by USSD (`balance_ussd`).
    pub balance: Option<super::Balance>,
    /// Why the last balance check failed, or found no amount; `None` after a good one.
    pub balance_error: Option<String>,
    /// Incoming calls (one per call, not per ring), and those among them with no number.
    pub calls: u64,
    pub calls_withheld: u64,
}

/// The driver's copy of its [`Health`], published on every change.
pub(super) struct HealthBook {
    pub(super) health: Health,
    tx: watch::Sender<Health>,
    /// The engine counters of the connections that ended.
    engine: EngineTotals,
}

impl HealthBook {
    /// A book publishing on `tx`, starting from what `tx` holds.
    pub(super) fn new(tx: watch::Sender<Health>) -> Self {
        let health = tx.borrow().clone();
        Self {
            health,
            tx,
            engine: EngineTotals::default(),
        }
    }

    /// Adds an ended connection's engine counters to the totals.
    pub(super) fn retire(&mut self, at: &AtHandle) {
        let totals = self.engine.retire(at);
        self.set_engine(totals);
        self.publish();
    }

    /// The counters with the live connection's so far.
    pub(super) fn count_live(&mut self, at: &AtHandle) {
        let totals = self.engine.with(at);
        self.set_engine(totals);
    }

    fn set_engine(&mut self, totals: AtStats) {
        self.health.timeouts = totals.timeouts;
        self.health.resyncs = totals.resyncs;
        self.health.garbage_bytes = totals.garbage_bytes;
        self.health.bytes_sent = totals.bytes_out;
        self.health.bytes_received = totals.bytes_in;
    }

    /// What initialisation or a refresh found.
    pub(super) fn apply_report(&mut self, report: &InitReport) {
        let health = &mut self.health;
        health.manufacturer = report.manufacturer.clone().or(health.manufacturer.take());
        health.model = report.model.clone().or(health.model.take());
        health.revision = report.revision.clone().or(health.revision.take());
        health.imei = report.imei.clone().or(health.imei.take());
        if let Some(sim) = &report.sim {
            health.sim = sim.clone();
        }
        health.registered = report.registered;
        health.registration = report
            .registration
            .map_or("unknown", parse::registration_word)
            .to_owned();
        health.operator = report.operator.clone();
        health.signal_dbm = report.signal_dbm;
        health.storage_used = report.storage_used;
        health.storage_total = report.storage_total;
        self.publish();
    }

    /// A served connection's state: ready when registered, degraded otherwise. A full storage
    /// only delays receiving (the network holds SMS back until the caller's confirmations free
    /// slots); sending works, so it does not make the modem degraded.
    pub(super) fn serving(&mut self, report: &InitReport, storage_full: bool) {
        self.health.state = if report.registered {
            ModemState::Ready
        } else {
            ModemState::Degraded
        };
        self.health.healthy = true;
        if storage_full {
            self.health.last_error = Some("message storage full".into());
        }
        self.apply_report(report);
    }

    pub(super) fn set_state(&mut self, state: ModemState, healthy: bool) {
        if self.health.state != state {
            info!(?state, healthy, "modem state");
        }
        self.health.state = state;
        self.health.healthy = healthy;
        self.publish();
    }

    pub(super) fn note_error(&mut self, error: String) {
        self.health.last_error = Some(error);
        self.publish();
    }

    /// Why requests are refused now, in words ("unplugged: the modem port … does not exist").
    pub(super) fn why_not_ready(&self) -> String {
        let state = self.health.state.to_string();
        match &self.health.last_error {
            Some(error) => format!("{state}: {error}"),
            None => state,
        }
    }

    pub(super) fn publish(&self) {
        self.tx.send_replace(self.health.clone());
    }
}
