//! The bottom of the driver: one open line to one modem with the AT engine on it, and the
//! bookkeeping every command on it needs.
//!
//! - [`open`] opens the modem's endpoint and starts the engine on it.
//! - [`Connection::call`] runs one command and counts what went wrong: a command timeout is
//!   followed at once by a resynchronisation (so a late reply is never taken for the next
//!   command's answer, and a silent modem climbs the ladder without waiting for traffic), and
//!   [`Tuning::reopen_after_timeouts`] timeouts in a row, or a port that broke, mark the
//!   connection broken for the recovery ladder.
//! - [`patiently`] asks again while the modem answers "busy" (`+CME ERROR: 515` and the like,
//!   DESIGN.md §3): not a fault. The one copy of the back-off, for initialisation (over the bare
//!   engine) and the driver (over [`Connection::call`]).
//! - [`EngineTotals`] adds up the engine's counters over every connection the driver opened.
//!
//! It knows nothing of SMS; the files above it (`receive`, `send`, `recovery`, `health`) do.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::endpoint::{self, EndpointError, TcpOptions};
use super::error::{ModemError, is_busy};
use super::{ModemOptions, Tuning};
use crate::at::{self, AtError, AtHandle, AtStats, Command, Response, Urc};

/// Opens the modem's endpoint (8N1, no flow control for a serial device) and starts the AT
/// engine on it. Returns the engine and its URCs.
pub(super) async fn open(
    options: &ModemOptions,
    tuning: &Tuning,
) -> Result<(AtHandle, mpsc::Receiver<Urc>), ModemError> {
    let endpoint = options.endpoint();
    let transport = endpoint::open(&endpoint, options.baud, &TcpOptions::default())
        .await
        .map_err(|error| match error {
            EndpointError::Serial(error) => error,
            other => ModemError::Open {
                path: endpoint.to_string(),
                message: other.to_string(),
            },
        })?;
    // The engine task ends on its own when the port breaks or every handle is gone.
    let (at, urcs, _task) = at::spawn(transport, tuning.at.clone());
    Ok((at, urcs))
}

/// What runs one command: the bare engine (initialisation) or a [`Connection`] (the driver,
/// with its bookkeeping).
pub(super) trait RunCommand {
    fn run_command(
        &mut self,
        command: Command,
    ) -> impl Future<Output = Result<Response, AtError>> + Send;
}

impl RunCommand for &AtHandle {
    fn run_command(
        &mut self,
        command: Command,
    ) -> impl Future<Output = Result<Response, AtError>> + Send {
        let at: &AtHandle = self;
        at.run(command)
    }
}

impl RunCommand for Connection {
    fn run_command(
        &mut self,
        command: Command,
    ) -> impl Future<Output = Result<Response, AtError>> + Send {
        self.call(command)
    }
}

/// Runs `command` on `runner`, asking again while the modem answers "busy": up to
/// [`Tuning::busy_retries`] attempts, the pause doubling from [`Tuning::busy_backoff`].
pub(super) async fn patiently(
    tuning: &Tuning,
    command: &Command,
    runner: &mut impl RunCommand,
) -> Result<Response, AtError> {
    let mut pause = tuning.busy_backoff;
    let mut attempt = 1;
    loop {
        match runner.run_command(command.clone()).await {
            Err(AtError::Rejected { result, .. })
                if is_busy(&result) && attempt < tuning.busy_retries =>
            {
                debug!(command = command.text(), %result, "modem busy; backing off");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One open line to an initialised (or initialising) modem.
pub(super) struct Connection {
    at: AtHandle,
    tuning: Tuning,
    /// Timeout of an ordinary command.
    command_timeout: Duration,
    consecutive_timeouts: u32,
    /// Set when the connection must be given up (port gone, too many timeouts, reboot).
    broken: Option<String>,
}

impl Connection {
    pub(super) fn new(at: AtHandle, options: &ModemOptions, tuning: &Tuning) -> Self {
        Self {
            at,
            tuning: tuning.clone(),
            command_timeout: options.command_timeout,
            consecutive_timeouts: 0,
            broken: None,
        }
    }

    /// The engine, for what runs on it without this bookkeeping (initialisation).
    pub(super) fn at(&self) -> &AtHandle {
        &self.at
    }

    /// A command with the ordinary timeout.
    pub(super) fn plain(&self, text: impl Into<String>) -> Command {
        Command::new(text).timeout(self.command_timeout)
    }

    /// Runs one command and keeps the recovery bookkeeping. After a timeout the modem is
    /// resynchronised at once, not when the next command happens to come: the ladder climbs
    /// without waiting when the modem stays silent, and the next part goes as soon as it
    /// answers again.
    pub(super) async fn call(&mut self, command: Command) -> Result<Response, AtError> {
        self.call_marked(command).await.0
    }

    /// [`Self::call`], and where in the port's stream its exchange ended
    /// ([`AtHandle::run_marked`]).
    pub(super) async fn call_marked(
        &mut self,
        command: Command,
    ) -> (Result<Response, AtError>, u64) {
        let (result, mark) = self.at.run_marked(command).await;
        match &result {
            Ok(_) | Err(AtError::Rejected { .. }) => self.consecutive_timeouts = 0,
            Err(error) => {
                self.count(error);
                if matches!(error, AtError::Timeout { .. }) && self.broken.is_none() {
                    self.resync_now().await;
                }
            }
        }
        (result, mark)
    }

    /// [`Self::call`], asking again while the modem answers "busy".
    pub(super) async fn patiently(&mut self, command: Command) -> Result<Response, AtError> {
        let tuning = self.tuning.clone();
        patiently(&tuning, &command, self).await
    }

    /// A plain `AT`, which the engine precedes with its resynchronisation (`ESC`, then `AT`
    /// until `OK` and silence). Its success does not clear the timeout count: a modem that
    /// answers `AT` but times out on everything else must still reach the next rung.
    async fn resync_now(&mut self) {
        match self.at.run(self.plain("AT")).await {
            Ok(_) | Err(AtError::Rejected { .. }) => {
                debug!("the modem answers again after a timeout");
            }
            Err(error) => {
                warn!(%error, "the modem did not answer after a timeout");
                self.count(&error);
            }
        }
    }

    /// Counts a failed command: a broken port breaks the connection at once, timeouts after
    /// [`Tuning::reopen_after_timeouts`] in a row.
    pub(super) fn count(&mut self, error: &AtError) {
        if error.is_fatal() {
            self.broken = Some(error.to_string());
            return;
        }
        if matches!(
            error,
            AtError::Timeout { .. } | AtError::ResyncFailed { .. }
        ) {
            self.consecutive_timeouts += 1;
            if self.consecutive_timeouts >= self.tuning.reopen_after_timeouts {
                self.broken = Some(format!(
                    "{} commands in a row timed out",
                    self.consecutive_timeouts
                ));
            }
        }
    }

    /// Marks the connection broken (the modem restarted, the port closed …).
    pub(super) fn break_off(&mut self, reason: impl Into<String>) {
        self.broken = Some(reason.into());
    }

    /// Why the connection must be given up, if it must (taken once).
    pub(super) fn take_broken(&mut self) -> Option<String> {
        self.broken.take()
    }
}

/// The engine's counters over every connection: those that ended, plus the live one.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct EngineTotals {
    ended: AtStats,
}

impl EngineTotals {
    /// The totals with `live`'s counters so far.
    pub(super) fn with(&self, live: &AtHandle) -> AtStats {
        add(self.ended, live.stats())
    }

    /// Adds the counters of an engine whose connection ended; returns the new totals.
    pub(super) fn retire(&mut self, ended: &AtHandle) -> AtStats {
        self.ended = add(self.ended, ended.stats());
        self.ended
    }
}

fn add(a: AtStats, b: AtStats) -> AtStats {
    AtStats {
        bytes_in: a.bytes_in + b.bytes_in,
        bytes_out: a.bytes_out + b.bytes_out,
        garbage_bytes: a.garbage_bytes + b.garbage_bytes,
        commands: a.commands + b.commands,
        timeouts: a.timeouts + b.timeouts,
        resyncs: a.resyncs + b.resyncs,
        urcs: a.urcs + b.urcs,
        urcs_dropped: a.urcs_dropped + b.urcs_dropped,
        stray_lines: a.stray_lines + b.stray_lines,
    }
}
