//! The recovery ladder around the serving loop (DESIGN.md §3): open the port → initialise →
//! serve → on trouble climb: a command timeout is resynchronised where it happens
//! (`connection`); too many in a row, or a port that broke, reopen the port; a device that went
//! away is waited for (`Unplugged`, then `Unhealthy` after [`super::Tuning::unplugged_grace`]);
//! initialisations that keep failing back off, then optionally reset the modem with
//! `AT+CFUN=1,1`, then report it unhealthy so the daemon stops petting the systemd watchdog.
//! Every step is logged and counted.
//!
//! While the modem is not being served, the caller's requests are refused at once with the
//! reason, and events already read still go to the caller.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::Request;
use super::connection::{self, Connection};
use super::driver::{Driver, Exit, Served};
use super::error::{ModemError, SendError};
use super::health::ModemState;
use super::init::{InitReport, Initialiser};
use crate::at::{AtHandle, Command};

impl Driver {
    /// Runs the ladder until shutdown or until the caller drops every handle.
    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut failures = 0u32;
        let mut reset_done = false;
        let mut backoff = self.tuning.retry_backoff.0;
        let mut away_since: Option<Instant> = None;
        // Said once per absence, and once per time another program holds the port, at `warn`,
        // not at every poll.
        let mut said_missing = false;
        let mut said_in_use = false;
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            debug!(port = %self.options.endpoint(), "opening the modem port");
            let (at, urcs) = match connection::open(&self.options, &self.tuning).await {
                Ok(opened) => opened,
                Err(error) => {
                    debug!(%error, "cannot open the modem port");
                    let since = *away_since.get_or_insert_with(Instant::now);
                    let gone = self.options.device_missing();
                    // Another program holding the port does not go away by itself: say so at
                    // once, at warn (once per episode), and keep polling in case it is closed.
                    let in_use = matches!(error, ModemError::InUse { .. });
                    if in_use && !said_in_use {
                        warn!("{error}");
                        said_in_use = true;
                    }
                    if in_use || since.elapsed() >= self.tuning.unplugged_grace {
                        self.health.set_state(ModemState::Unhealthy, false);
                    } else if gone {
                        self.health.set_state(ModemState::Unplugged, true);
                    }
                    let error = if gone {
                        let missing = format!(
                            "the modem port {} does not exist (unplugged, or modem.port names \
                             the wrong device)",
                            self.options.port.display()
                        );
                        if !said_missing {
                            warn!(port = %self.options.port.display(), "{missing}; waiting for it");
                            said_missing = true;
                        }
                        missing
                    } else {
                        error.to_string()
                    };
                    self.health.note_error(error);
                    let poll = self.tuning.device_poll;
                    if !self.pause(&mut requests, poll).await {
                        break;
                    }
                    continue;
                }
            };
            away_since = None;
            if said_in_use {
                info!(port = %self.options.port.display(), "the modem port is free again");
                said_in_use = false;
            }
            if said_missing {
                info!(port = %self.options.port.display(), "the modem port is there again");
                said_missing = false;
            }
            debug!("port open; initialising");
            let line = Connection::new(at, &self.options, &self.tuning);
            if self.health.health.state != ModemState::Unhealthy {
                self.health.set_state(ModemState::Starting, true);
            }
            let mut report = InitReport::default();
            let initialiser = Initialiser {
                at: line.at(),
                options: &self.options,
                tuning: &self.tuning,
                pin_allowed: self.pin_allowed,
                probe: false,
            };
            let result = tokio::select! {
                result = initialiser.initialise(&mut report) => result,
                () = self.shutdown.cancelled() => break,
            };
            self.health.apply_report(&report);
            match result {
                Ok(()) => {
                    info!(
                        model = report.model.as_deref().unwrap_or("?"),
                        notify = ?report.notify(),
                        reports = ?report.reports(),
                        registered = report.registered,
                        "modem ready"
                    );
                    failures = 0;
                    reset_done = false;
                    backoff = self.tuning.retry_backoff.0;
                    self.health.health.last_error = None;
                    match self
                        .serve(Served::new(line, report), urcs, &mut requests)
                        .await
                    {
                        Exit::Shutdown => break,
                        Exit::Reopen(reason) => {
                            warn!(reason, "reopening the modem port");
                            self.health.health.reopens += 1;
                            self.health.health.last_error =
                                Some(format!("reopened the port: {reason}"));
                            self.health.set_state(ModemState::Starting, true);
                            let poll = self.tuning.device_poll;
                            if !self.pause(&mut requests, poll).await {
                                break;
                            }
                        }
                    }
                }
                Err(error) => {
                    failures += 1;
                    warn!(%error, failures, "modem initialisation failed");
                    if matches!(error, ModemError::PinRejected(_)) {
                        self.pin_allowed = false;
                    }
                    self.health.note_error(error.to_string());
                    if self.options.reset_on_failure
                        && !reset_done
                        && failures >= self.tuning.reset_after_failures
                        && !error_is_fatal(&error)
                    {
                        reset_done = true;
                        self.reset_modem(line.at()).await;
                    }
                    self.health.retire(line.at());
                    drop(line);
                    if failures >= self.tuning.unhealthy_after_failures {
                        self.health.set_state(ModemState::Unhealthy, false);
                    }
                    if !self.pause(&mut requests, backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(self.tuning.retry_backoff.1);
                }
            }
        }
        debug!("modem task stopped");
    }

    /// `AT+CFUN=1,1`: a full modem reset (TS 27.007 §8.2); the device usually re-enumerates.
    async fn reset_modem(&mut self, at: &AtHandle) {
        warn!("resetting the modem with AT+CFUN=1,1");
        self.health.health.resets += 1;
        let command = Command::new("AT+CFUN=1,1").timeout(self.options.command_timeout);
        if let Err(error) = at.run(command).await {
            debug!(%error, "AT+CFUN=1,1 did not answer OK (the modem may already be rebooting)");
        }
        self.health.publish();
    }

    /// Waits `period` while the modem is not serving: requests are refused, events still go.
    /// `false` when the task should stop.
    async fn pause(&mut self, requests: &mut mpsc::Receiver<Request>, period: Duration) -> bool {
        let until = Instant::now() + period;
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return false,
                () = self.handover.next(), if self.handover.has_pending() => {}
                request = requests.recv() => match request {
                    Some(request) => self.refuse(request),
                    None => return false,
                },
                () = tokio::time::sleep_until(until) => return true,
            }
        }
    }

    fn refuse(&self, request: Request) {
        let why = self.health.why_not_ready();
        match request {
            Request::Send { reply, .. } => {
                let _ = reply.send(Err(SendError::temporary(format!(
                    "the modem is not ready ({why})"
                ))));
            }
            Request::Confirm { reply, .. } | Request::Reject { reply, .. } => {
                let _ = reply.send(Err(ModemError::NotReady(why)));
            }
            Request::Ussd { reply, .. } => {
                let _ = reply.send(Err(super::UssdError::NotReady(why)));
            }
        }
    }
}

/// Errors a reset cannot cure: the SIM's PIN and PUK.
fn error_is_fatal(error: &ModemError) -> bool {
    matches!(
        error,
        ModemError::PinRequired | ModemError::PinRejected(_) | ModemError::PukLocked
    )
}
