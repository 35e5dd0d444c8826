//! The modem task's serving loop: one initialised connection, served until it breaks or the
//! daemon stops.
//!
//! One task owns the port through the AT engine. Between commands it takes, in order:
//! shutdown, events waiting for the caller, URCs (which only queue follow-up work: a handler
//! never runs a command inline), the caller's requests, and its timers (storage sweep, health
//! refresh). Queued work runs before anything new is taken, so a `+CMTI` is read promptly.
//!
//! This file holds the driver's state and that loop; what each piece of work does is in the
//! files beside it: `receive` (URCs, reading, sweeping, releasing what the caller committed),
//! `send` (`AT+CMGS`), `recovery` (the ladder around this loop: open, initialise, reopen,
//! reset) and `health` (what is published), all over `connection` (one line to the modem).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::calls::CallBook;
use super::connection::Connection;
use super::health::{Health, HealthBook};
use super::init::{InitReport, refresh_network};
use super::receive::Handover;
use super::ussd::{Purpose, UssdBook};
use super::{ModemError, ModemEvent, ModemOptions, Request, Tuning};
use crate::at::Urc;

/// Why serving a connection ended.
pub(super) enum Exit {
    Shutdown,
    Reopen(String),
}

/// Follow-up work queued by URCs and timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Work {
    /// Read (`AT+CMGR`) an SMS or status report a `+CMTI`/`+CDSI` announced.
    Read { memory: String, index: u32 },
    /// Acknowledge a routed message we could not use (`AT+CNMA`).
    Ack,
    /// List the whole storage (`AT+CMGL=4`).
    Sweep,
    /// Refresh registration, signal and storage.
    Refresh,
    /// Check that `AT+CNMI` still routes what it was set to (`AT+CNMI?`), and set it again if
    /// the modem switched routing off.
    CheckRouting,
    /// Ask for the SIM's balance (`ussd`).
    Balance,
    /// Start the USSD request waiting behind the session that just ended.
    UssdNext,
    /// Close a USSD menu the network left open (`AT+CUSD=2`).
    UssdCancel,
    /// Reject the ringing call (`calls`).
    HangUp,
}

/// Work waiting to run, each job at most once.
#[derive(Debug, Default)]
pub(super) struct WorkQueue(VecDeque<Work>);

impl WorkQueue {
    /// Queues `job` unless it already waits.
    pub(super) fn add(&mut self, job: Work) {
        if !self.0.contains(&job) {
            self.0.push_back(job);
        }
    }

    /// Queues `job` even if one like it waits (each routed message needs its own `AT+CNMA`).
    pub(super) fn push(&mut self, job: Work) {
        self.0.push_back(job);
    }

    fn next(&mut self) -> Option<Work> {
        self.0.pop_front()
    }
}

/// One served connection: the line, and what the driver knows of the modem on it.
pub(super) struct Served {
    pub(super) line: Connection,
    pub(super) report: InitReport,
    /// The memory `AT+CPMS` selected for reading and deleting.
    pub(super) memory: String,
    /// Where stored status reports are kept when it is not `memory` (`"SR"`): swept too.
    pub(super) report_memory: Option<String>,
    /// `AT+CMMS=2` is in force on this connection.
    pub(super) cmms_on: bool,
    pub(super) storage_full: bool,
}

impl Served {
    pub(super) fn new(line: Connection, report: InitReport) -> Self {
        Self {
            line,
            memory: report.memory.clone().unwrap_or_else(|| "SM".into()),
            report_memory: report.report_memory.clone(),
            report,
            cmms_on: false,
            storage_full: false,
        }
    }
}

/// The modem task's state, over every connection it opens.
pub(crate) struct Driver {
    pub(super) options: ModemOptions,
    pub(super) tuning: Tuning,
    pub(super) shutdown: CancellationToken,
    pub(super) health: HealthBook,
    /// Events for the caller, and the stored slots it still holds.
    pub(super) handover: Handover,
    /// Cleared when the configured PIN is refused: entering it again could lock the SIM.
    pub(super) pin_allowed: bool,
    /// The USSD session and the balance schedule (`ussd`).
    pub(super) ussd: UssdBook,
    /// The call ringing now (`calls`).
    pub(super) calls: CallBook,
}

impl Driver {
    pub(crate) fn new(
        options: ModemOptions,
        tuning: Tuning,
        shutdown: CancellationToken,
        events: mpsc::Sender<ModemEvent>,
        health: watch::Sender<Health>,
    ) -> Self {
        Self {
            ussd: UssdBook::new(&options),
            calls: CallBook::default(),
            options,
            tuning,
            shutdown,
            health: HealthBook::new(health),
            handover: Handover::new(events),
            pin_allowed: true,
        }
    }

    /// Serves one initialised connection until it breaks or the daemon stops.
    pub(super) async fn serve(
        &mut self,
        mut conn: Served,
        mut urcs: mpsc::Receiver<Urc>,
        requests: &mut mpsc::Receiver<Request>,
    ) -> Exit {
        self.handover.new_connection();
        self.calls.new_connection();
        self.update(&conn);
        let mut work = WorkQueue::default();
        work.add(Work::Sweep);
        self.ussd_new_connection(&mut work);
        let mut next_sweep = Instant::now() + self.sweep_interval(&conn);
        let mut next_refresh = Instant::now() + self.tuning.health_interval;
        loop {
            if let Some(reason) = conn.line.take_broken() {
                self.health.retire(conn.line.at());
                return Exit::Reopen(reason);
            }
            if let Some(job) = work.next() {
                if job == Work::Sweep {
                    next_sweep = Instant::now() + self.sweep_interval(&conn);
                }
                self.run_work(&mut conn, job, &mut work).await;
                self.update(&conn);
                if conn.storage_full {
                    next_sweep = next_sweep.min(Instant::now() + self.sweep_interval(&conn));
                }
                continue;
            }
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    self.health.retire(conn.line.at());
                    return Exit::Shutdown;
                }
                () = self.handover.next(), if self.handover.has_pending() => {}
                urc = urcs.recv() => match urc {
                    Some(urc) => self.on_urc(&mut conn, urc, &mut work),
                    None => conn.line.break_off("the port closed"),
                },
                request = requests.recv() => match request {
                    Some(request) => {
                        self.handle(&mut conn, request, &mut work).await;
                        self.update(&conn);
                    }
                    None => {
                        self.health.retire(conn.line.at());
                        return Exit::Shutdown;
                    }
                },
                () = tokio::time::sleep_until(next_sweep) => {
                    next_sweep = Instant::now() + self.sweep_interval(&conn);
                    work.add(Work::Sweep);
                }
                () = tokio::time::sleep_until(next_refresh) => {
                    next_refresh = Instant::now() + self.tuning.health_interval;
                    work.add(Work::Refresh);
                }
                () = sleep_until_some(self.ussd.deadline()), if self.ussd.deadline().is_some() => {
                    self.ussd_expired(&mut conn, &mut work).await;
                    self.update(&conn);
                }
                () = sleep_until_some(self.ussd.next_balance()),
                    if self.ussd.next_balance().is_some() && conn.report.registered =>
                {
                    self.balance_due(&mut work);
                }
            }
        }
    }

    fn sweep_interval(&self, conn: &Served) -> Duration {
        if conn.storage_full {
            self.tuning
                .full_sweep_interval
                .min(self.options.sweep_interval)
        } else {
            self.options.sweep_interval
        }
    }

    async fn run_work(&mut self, conn: &mut Served, job: Work, work: &mut WorkQueue) {
        match job {
            Work::Read { memory, index } => self.read(conn, memory, index).await,
            Work::Ack => {
                let command = conn.line.plain("AT+CNMA");
                let _ = conn.line.call(command).await;
            }
            Work::Sweep => {
                self.sweep(conn).await;
                self.check_routing(conn).await;
            }
            Work::Refresh => {
                let timeout = self.options.command_timeout;
                if let Err(ModemError::At(error)) =
                    refresh_network(conn.line.at(), timeout, &mut conn.report).await
                {
                    conn.line.count(&error);
                }
                self.storage(conn).await;
                self.check_routing(conn).await;
            }
            Work::CheckRouting => self.check_routing(conn).await,
            Work::Balance => self.ussd_balance(conn, work).await,
            Work::UssdNext => self.ussd_next(conn, work).await,
            Work::UssdCancel => self.ussd_cancel(conn).await,
            Work::HangUp => self.hang_up(conn).await,
        }
    }

    async fn handle(&mut self, conn: &mut Served, request: Request, work: &mut WorkQueue) {
        match request {
            Request::Send {
                pdu_hex,
                tpdu_length,
                more_to_follow,
                reply,
            } => {
                let result = self.send(conn, &pdu_hex, tpdu_length, more_to_follow).await;
                if let Err(error) = &result {
                    self.health.health.last_error = Some(error.message.clone());
                }
                let _ = reply.send(result);
            }
            Request::Confirm { slot, reply } => {
                let result = self.confirm(conn, &slot, work).await;
                // A slot freed in a full storage: look again soon, the network holds SMS back.
                if result.is_ok() && conn.storage_full {
                    work.add(Work::Refresh);
                }
                let _ = reply.send(result);
            }
            Request::Reject { slot, reply } => {
                let result = self.reject(conn, &slot).await;
                let _ = reply.send(result);
            }
            Request::Ussd { code, reply } => {
                self.ussd_start(conn, code, Purpose::Ask(reply), work).await;
            }
        }
    }

    /// Publishes the served connection's state and counters.
    fn update(&mut self, conn: &Served) {
        self.health.count_live(conn.line.at());
        self.health.serving(&conn.report, conn.storage_full);
    }
}

/// Sleeps until `at`; never wakes for `None` (the branch is disabled then anyway).
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
