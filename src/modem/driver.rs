//! The modem task: open → initialise → serve → (on trouble) climb the recovery ladder.
//!
//! One task owns the port through the AT engine. Between commands it takes, in order:
//! shutdown, events waiting for the caller, URCs (which only queue follow-up work: a handler
//! never runs a command inline), the caller's requests, and its timers (storage sweep, health
//! refresh). Queued work runs before anything new is taken, so a `+CMTI` is read promptly.
//!
//! Events are queued here and handed to the caller without ever blocking the task: a caller
//! that is itself waiting on `confirm` cannot deadlock it.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::error::{ModemError, SendError, is_busy};
use super::init::{InitReport, Initialiser, refresh_network};
use super::parse;
use super::{Health, ModemEvent, ModemOptions, ModemState, Request, StorageSlot, Tuning};
use crate::at::{self, AtError, AtHandle, AtStats, Command, ErrorCode, FinalResult, Response, Urc};
use crate::pdu::{self, Pdu};

/// Why serving a connection ended.
enum Exit {
    Shutdown,
    Reopen(String),
}

/// Follow-up work queued by URCs and timers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Work {
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
}

/// One open port with an initialised modem.
struct Connection {
    at: AtHandle,
    report: InitReport,
    /// The memory `AT+CPMS` selected for reading and deleting.
    memory: String,
    /// Where stored status reports are kept when it is not `memory` (`"SR"`): swept too.
    report_memory: Option<String>,
    /// `AT+CMMS=2` is in force on this connection.
    cmms_on: bool,
    consecutive_timeouts: u32,
    /// Set when the connection must be given up (port gone, too many timeouts, reboot).
    broken: Option<String>,
    storage_full: bool,
}

pub(crate) struct Driver {
    options: ModemOptions,
    tuning: Tuning,
    shutdown: CancellationToken,
    events: mpsc::Sender<ModemEvent>,
    health_tx: watch::Sender<Health>,
    health: Health,
    pending: VecDeque<ModemEvent>,
    /// Stored slots handed to the caller and not yet confirmed: a sweep skips them.
    outstanding: HashSet<(String, u32)>,
    /// Cleared when the configured PIN is refused: entering it again could lock the SIM.
    pin_allowed: bool,
    /// Engine counters of the connections that ended.
    past: AtStats,
}

impl Driver {
    pub(crate) fn new(
        options: ModemOptions,
        tuning: Tuning,
        shutdown: CancellationToken,
        events: mpsc::Sender<ModemEvent>,
        health_tx: watch::Sender<Health>,
    ) -> Self {
        let health = health_tx.borrow().clone();
        Self {
            options,
            tuning,
            shutdown,
            events,
            health_tx,
            health,
            pending: VecDeque::new(),
            outstanding: HashSet::new(),
            pin_allowed: true,
            past: AtStats::default(),
        }
    }

    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut failures = 0u32;
        let mut reset_done = false;
        let mut backoff = self.tuning.retry_backoff.0;
        let mut away_since: Option<Instant> = None;
        // Said once per absence at `warn`, not at every poll.
        let mut said_missing = false;
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            debug!(port = %self.options.port.display(), "opening the modem port");
            let port = match super::open_port(&self.options.port, self.options.baud) {
                Ok(port) => port,
                Err(error) => {
                    debug!(%error, "cannot open the modem port");
                    let since = *away_since.get_or_insert_with(Instant::now);
                    let gone = !self.options.port.exists();
                    if since.elapsed() >= self.tuning.unplugged_grace {
                        self.set_state(ModemState::Unhealthy, false);
                    } else if gone {
                        self.set_state(ModemState::Unplugged, true);
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
                    self.note_error(error);
                    let poll = self.tuning.device_poll;
                    if !self.pause(&mut requests, poll).await {
                        break;
                    }
                    continue;
                }
            };
            away_since = None;
            if said_missing {
                info!(port = %self.options.port.display(), "the modem port is there again");
                said_missing = false;
            }
            debug!("port open; initialising");
            let (at, urcs, _task) = at::spawn(port, self.tuning.at.clone());
            if self.health.state != ModemState::Unhealthy {
                self.set_state(ModemState::Starting, true);
            }
            let mut report = InitReport::default();
            let initialiser = Initialiser {
                at: &at,
                options: &self.options,
                tuning: &self.tuning,
                pin_allowed: self.pin_allowed,
                probe: false,
            };
            let result = tokio::select! {
                result = initialiser.initialise(&mut report) => result,
                () = self.shutdown.cancelled() => break,
            };
            self.apply_report(&report);
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
                    self.health.last_error = None;
                    let memory = report.memory.clone().unwrap_or_else(|| "SM".into());
                    let report_memory = report.report_memory.clone();
                    let connection = Connection {
                        at,
                        report,
                        memory,
                        report_memory,
                        cmms_on: false,
                        consecutive_timeouts: 0,
                        broken: None,
                        storage_full: false,
                    };
                    match self.serve(connection, urcs, &mut requests).await {
                        Exit::Shutdown => break,
                        Exit::Reopen(reason) => {
                            warn!(reason, "reopening the modem port");
                            self.health.reopens += 1;
                            self.health.last_error = Some(format!("reopened the port: {reason}"));
                            self.set_state(ModemState::Starting, true);
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
                    self.note_error(error.to_string());
                    if self.options.reset_on_failure
                        && !reset_done
                        && failures >= self.tuning.reset_after_failures
                        && !error_is_fatal(&error)
                    {
                        reset_done = true;
                        self.reset_modem(&at).await;
                    }
                    self.retire(&at);
                    drop(at);
                    if failures >= self.tuning.unhealthy_after_failures {
                        self.set_state(ModemState::Unhealthy, false);
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
        self.health.resets += 1;
        let command = Command::new("AT+CFUN=1,1").timeout(self.options.command_timeout);
        if let Err(error) = at.run(command).await {
            debug!(%error, "AT+CFUN=1,1 did not answer OK (the modem may already be rebooting)");
        }
        self.publish();
    }

    /// Serves one initialised connection until it breaks or the daemon stops.
    async fn serve(
        &mut self,
        mut conn: Connection,
        mut urcs: mpsc::Receiver<Urc>,
        requests: &mut mpsc::Receiver<Request>,
    ) -> Exit {
        self.outstanding.clear();
        self.update_from(&conn);
        let mut work: VecDeque<Work> = VecDeque::from([Work::Sweep]);
        let mut next_sweep = Instant::now() + self.sweep_interval(&conn);
        let mut next_refresh = Instant::now() + self.tuning.health_interval;
        loop {
            if let Some(reason) = conn.broken.take() {
                self.retire(&conn.at);
                return Exit::Reopen(reason);
            }
            if let Some(job) = work.pop_front() {
                if job == Work::Sweep {
                    next_sweep = Instant::now() + self.sweep_interval(&conn);
                }
                self.do_work(&mut conn, job).await;
                self.update_from(&conn);
                if conn.storage_full {
                    next_sweep = next_sweep.min(Instant::now() + self.sweep_interval(&conn));
                }
                continue;
            }
            // The permit borrows its sender; a clone keeps `self` free for the handlers.
            let events = self.events.clone();
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    self.retire(&conn.at);
                    return Exit::Shutdown;
                }
                permit = events.reserve(), if !self.pending.is_empty() => {
                    match (permit, self.pending.pop_front()) {
                        (Ok(permit), Some(event)) => permit.send(event),
                        // Nobody listens any more: the daemon is stopping.
                        _ => self.pending.clear(),
                    }
                }
                urc = urcs.recv() => match urc {
                    Some(urc) => self.on_urc(&mut conn, urc, &mut work),
                    None => {
                        conn.broken = Some("the port closed".into());
                    }
                },
                request = requests.recv() => match request {
                    Some(request) => {
                        self.handle(&mut conn, request, &mut work).await;
                        self.update_from(&conn);
                    }
                    None => {
                        self.retire(&conn.at);
                        return Exit::Shutdown;
                    }
                },
                () = tokio::time::sleep_until(next_sweep) => {
                    next_sweep = Instant::now() + self.sweep_interval(&conn);
                    if !work.contains(&Work::Sweep) {
                        work.push_back(Work::Sweep);
                    }
                }
                () = tokio::time::sleep_until(next_refresh) => {
                    next_refresh = Instant::now() + self.tuning.health_interval;
                    if !work.contains(&Work::Refresh) {
                        work.push_back(Work::Refresh);
                    }
                }
            }
        }
    }

    fn sweep_interval(&self, conn: &Connection) -> Duration {
        if conn.storage_full {
            self.tuning
                .full_sweep_interval
                .min(self.options.sweep_interval)
        } else {
            self.options.sweep_interval
        }
    }

    /// URCs only queue work or events; they never run a command here.
    fn on_urc(&mut self, conn: &mut Connection, urc: Urc, work: &mut VecDeque<Work>) {
        let line = urc.line.as_str();
        if line.starts_with("+CMTI:") || line.starts_with("+CDSI:") {
            match parse::stored_at(line) {
                Some((memory, index)) => {
                    if line.starts_with("+CDSI:")
                        && memory != conn.memory
                        && conn.report_memory.as_deref() != Some(memory.as_str())
                    {
                        // The sweep must list where this modem keeps its reports.
                        conn.report_memory = Some(memory.clone());
                    }
                    let job = Work::Read { memory, index };
                    if !work.contains(&job) {
                        work.push_back(job);
                    }
                }
                None => warn!(line, "unreadable new-message indication"),
            }
        } else if line.starts_with("+CMT:") || line.starts_with("+CDS:") {
            let slot = if conn.report.needs_ack() {
                StorageSlot::Routed
            } else {
                StorageSlot::None
            };
            let Some(reply) = parse::routed(line, urc.data.as_deref()) else {
                warn!(line, "routed message without its PDU line");
                return;
            };
            if !self.emit(&reply, slot.clone(), line.starts_with("+CDS:"))
                && slot == StorageSlot::Routed
            {
                // Unusable, but unacknowledged it would come back again and again.
                work.push_back(Work::Ack);
            }
        } else if line.starts_with("+CREG:")
            || line.starts_with("+CGREG:")
            || line.starts_with("+CEREG:")
        {
            // Registration changed (`AT+CREG=1`): refresh now, so sending resumes at once.
            if parse::registration(line, false).map(parse::is_registered)
                != Some(conn.report.registered)
                && !work.contains(&Work::Refresh)
            {
                work.push_back(Work::Refresh);
            }
        } else if line == "RDY" || line.starts_with("^SYSSTART") || line.starts_with("+CFUN:") {
            // The modem restarted on its own: every setting of the initialisation is lost.
            conn.broken = Some(format!("the modem restarted ({line})"));
        } else {
            debug!(line, "URC ignored");
        }
    }

    /// Decodes a PDU and queues the event: the message, its status report, or — when it does
    /// not decode even leniently — the PDU itself as [`ModemEvent::Unreadable`], for the caller
    /// to keep before the slot is freed. `false` when nothing was queued: a stored outgoing
    /// message (not ours to delete), or an answer whose PDU is missing (left in place: that
    /// is a framing failure here, not a bad SMS). `report` = the PDU came as a status report
    /// (`+CDS`, the `"SR"` memory).
    fn emit(&mut self, reply: &parse::PduReply, slot: StorageSlot, report: bool) -> bool {
        if reply.text.trim().is_empty() {
            warn!(%slot, "the modem's answer has a message header but no PDU; left in place");
            self.health.last_error = Some(format!("no PDU in the answer for {slot}"));
            return false;
        }
        let framed = reply.hex();
        if framed.dropped > 0 {
            debug!(%slot, dropped = framed.dropped, "characters around the PDU ignored");
        }
        let event = match pdu::decode_hex(framed.hex, true) {
            Ok(decoded) => {
                let warnings = decoded.warnings();
                if !warnings.is_empty() {
                    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
                    debug!(%slot, warnings = warnings.join("; "), "PDU decoded leniently");
                }
                match decoded {
                    Pdu::Deliver(deliver) => {
                        self.health.parts_received += 1;
                        ModemEvent::Received {
                            deliver,
                            // `decode_hex` read the same text, so it is valid hex.
                            pdu: pdu::hex_to_bytes(framed.hex).unwrap_or_default(),
                            slot: slot.clone(),
                        }
                    }
                    Pdu::StatusReport(report) => ModemEvent::StatusReport {
                        report,
                        slot: slot.clone(),
                    },
                    Pdu::Submit(_) if !received(reply, &slot) => {
                        debug!(%slot, "stored outgoing message ignored");
                        return false;
                    }
                    Pdu::Submit(_) => self.unreadable(
                        reply,
                        "TP-MTI 01 (SMS-SUBMIT) in a received message".into(),
                        slot.clone(),
                        report,
                    ),
                }
            }
            Err(error) if !received(reply, &slot) => {
                warn!(%slot, %error, "a stored outgoing message does not decode; left in place");
                return false;
            }
            Err(error) => self.unreadable(reply, error.to_string(), slot.clone(), report),
        };
        if let StorageSlot::Stored { memory, index } = &slot {
            self.outstanding.insert((memory.clone(), *index));
        }
        if slot == StorageSlot::Routed {
            // Until it is acknowledged the modem routes nothing else, and after its timeout
            // it switches routing off (reports arriving then are dropped): it goes to the
            // caller ahead of stored messages, which can wait.
            self.pending.push_front(event);
        } else {
            self.pending.push_back(event);
        }
        true
    }

    /// The event for a received PDU that cannot be decoded, with what can still be read of it.
    fn unreadable(
        &mut self,
        reply: &parse::PduReply,
        reason: String,
        slot: StorageSlot,
        report: bool,
    ) -> ModemEvent {
        let error = ModemError::Pdu {
            slot: slot.to_string(),
            message: reason.clone(),
        };
        debug!(%error, "handing over an undecodable PDU to be kept");
        self.health.last_error = Some(error.to_string());
        let salvage = pdu::hex_to_bytes(reply.hex().hex)
            .map(|bytes| pdu::salvage(&bytes, true))
            .unwrap_or_default();
        ModemEvent::Unreadable {
            pdu: reply.text.trim().to_owned(),
            reason,
            sender: salvage.sender,
            status_report: report || salvage.status_report,
            slot,
        }
    }

    async fn do_work(&mut self, conn: &mut Connection, job: Work) {
        match job {
            Work::Read { memory, index } => {
                if self.outstanding.contains(&(memory.clone(), index)) {
                    return;
                }
                let command = parse::set_ints("+CMGR", &[index as i32]);
                let Ok(response) = self.in_memory(conn, &memory, &command).await else {
                    return;
                };
                // `+CMGR: <stat>,[<alpha>],<length>` then the PDU; nothing if the slot is empty.
                match parse::read_reply(&response.lines) {
                    Some(reply) => {
                        let report = memory == "SR";
                        self.emit(&reply, StorageSlot::Stored { memory, index }, report);
                    }
                    None if response.lines.is_empty() => {}
                    None => warn!(
                        %memory,
                        index,
                        lines = response.lines.len(),
                        "AT+CMGR answered without a message; left in place"
                    ),
                }
            }
            Work::Ack => {
                let _ = self.call(conn, self.plain("AT+CNMA")).await;
            }
            Work::Sweep => {
                self.sweep(conn).await;
                self.check_routing(conn).await;
            }
            Work::Refresh => {
                let timeout = self.options.command_timeout;
                if let Err(ModemError::At(error)) =
                    refresh_network(&conn.at, timeout, &mut conn.report).await
                {
                    self.count(conn, &error);
                }
                self.storage(conn).await;
                self.check_routing(conn).await;
            }
            Work::CheckRouting => self.check_routing(conn).await,
        }
    }

    /// A modem that waited in vain for `AT+CNMA` (smsgate stopped or slow with a routed
    /// message) switches routing off, `<mt>` and `<ds>` to 0 (TS 27.005 §3.4.4): no more
    /// `+CMTI`, and status reports dropped. Set it again as soon as that is seen.
    async fn check_routing(&mut self, conn: &mut Connection) {
        let Some(chosen) = conn.report.cnmi else {
            return;
        };
        let Ok(response) = self.call(conn, self.plain("AT+CNMI?")).await else {
            return;
        };
        let Some(now) = response.lines.iter().find_map(|line| parse::cnmi(line)) else {
            return;
        };
        // `<mt>` and `<ds>` say what reaches smsgate; `<mode>` and `<bfr>` may read back
        // differently on some modems without changing that.
        if now[1] == chosen.values[1] && now[3] == chosen.values[3] {
            return;
        }
        warn!(
            found = ?now,
            wanted = ?chosen.values,
            "the modem switched new-message routing off (a routed message went unacknowledged); \
             setting AT+CNMI again"
        );
        let command = parse::set_ints("+CNMI", &chosen.values);
        if let Err(error) = self.call(conn, self.plain(command)).await {
            warn!(%error, "could not set AT+CNMI again");
        }
    }

    /// `AT+CMGL=4` (all messages, TS 27.005 §3.4.2): picks up whatever a lost URC left behind,
    /// in the message storage and, where status reports are stored apart (`"SR"`), there too.
    async fn sweep(&mut self, conn: &mut Connection) {
        let command = Command::new("AT+CMGL=4").timeout(self.options.send_timeout);
        let Ok(response) = self.call(conn, command).await else {
            return;
        };
        let memory = conn.memory.clone();
        let mut found = self.offer_listed(&response, &memory);
        if let Some(reports) = conn.report_memory.clone()
            && conn.report.reports() == super::init::Reports::Stored
        {
            match self.in_memory(conn, &reports, "AT+CMGL=4").await {
                Ok(response) => found += self.offer_listed(&response, &reports),
                Err(error) => debug!(%error, memory = reports, "cannot list the report storage"),
            }
        }
        if found > 0 {
            info!(found, "storage sweep found messages");
        }
        self.storage(conn).await;
    }

    /// Hands over every listed entry of `memory` not already handed over; returns how many.
    fn offer_listed(&mut self, response: &Response, memory: &str) -> usize {
        let memory = memory.to_owned();
        let mut found = 0;
        for entry in parse::list_reply(&response.lines) {
            let Some(index) = entry.index else {
                continue;
            };
            if self.outstanding.contains(&(memory.clone(), index)) {
                continue;
            }
            let slot = StorageSlot::Stored {
                memory: memory.clone(),
                index,
            };
            if self.emit(&entry, slot, memory == "SR") {
                found += 1;
            }
        }
        found
    }

    /// `AT+CPMS?`: how full the storage is (a full SIM makes the network hold new SMS back).
    async fn storage(&mut self, conn: &mut Connection) {
        let Ok(response) = self.call(conn, self.plain("AT+CPMS?")).await else {
            return;
        };
        if let Some((used, total)) = response.lines.iter().find_map(|l| parse::storage(l)) {
            conn.report.storage_used = Some(used);
            conn.report.storage_total = Some(total);
            let full = total > 0 && used >= total;
            if full && !conn.storage_full {
                warn!(used, total, "message storage full; draining it");
            }
            conn.storage_full = full;
        }
    }

    async fn handle(&mut self, conn: &mut Connection, request: Request, work: &mut VecDeque<Work>) {
        match request {
            Request::Send {
                pdu_hex,
                tpdu_length,
                more_to_follow,
                reply,
            } => {
                let result = self.send(conn, &pdu_hex, tpdu_length, more_to_follow).await;
                if let Err(error) = &result {
                    self.health.last_error = Some(error.message.clone());
                }
                let _ = reply.send(result);
            }
            Request::Confirm { slot, reply } => {
                let result = self.confirm(conn, &slot, work).await;
                // A slot freed in a full storage: look again soon, the network holds SMS back.
                if result.is_ok() && conn.storage_full && !work.contains(&Work::Refresh) {
                    work.push_back(Work::Refresh);
                }
                let _ = reply.send(result);
            }
            Request::Reject { slot, reply } => {
                let result = self.reject(conn, &slot).await;
                let _ = reply.send(result);
            }
        }
    }

    /// The caller could not commit what was handed over in `slot`. A stored copy stays where
    /// it is and is offered again by the next sweep; a routed one is refused with
    /// `AT+CNMA=2` (RP-ERROR, TS 27.005 §4.6) so the network keeps it and delivers it again.
    async fn reject(
        &mut self,
        conn: &mut Connection,
        slot: &StorageSlot,
    ) -> Result<(), ModemError> {
        match slot {
            StorageSlot::Stored { memory, index } => {
                self.outstanding.remove(&(memory.clone(), *index));
                Ok(())
            }
            StorageSlot::Routed if conn.report.needs_ack() => {
                let command = self.plain(parse::set_ints("+CNMA", &[2]));
                match self.call(conn, command).await {
                    Ok(_) => Ok(()),
                    // Without a negative acknowledgement the modem's own timeout does the
                    // same (and switches routing off, which the routing check undoes).
                    Err(AtError::Rejected { result, .. }) => {
                        debug!(%result, "AT+CNMA=2 refused; the modem's timeout refuses it instead");
                        Ok(())
                    }
                    Err(error) => Err(error.into()),
                }
            }
            StorageSlot::Routed | StorageSlot::None => Ok(()),
        }
    }

    async fn send(
        &mut self,
        conn: &mut Connection,
        pdu_hex: &str,
        tpdu_length: usize,
        more_to_follow: bool,
    ) -> Result<u8, SendError> {
        if more_to_follow && !conn.cmms_on && conn.report.cmms != Some(false) {
            // TS 27.005 §3.5.6: mode 2 keeps the relay link open between the parts.
            let command = self.plain("AT+CMMS=2").cooldown(Duration::ZERO);
            match self.call(conn, command).await {
                Ok(_) => {
                    conn.cmms_on = true;
                    conn.report.cmms = Some(true);
                }
                Err(AtError::Rejected { .. }) => conn.report.cmms = Some(false),
                Err(error) => {
                    return Err(SendError::temporary(format!(
                        "the modem did not answer AT+CMMS=2: {error}"
                    )));
                }
            }
        }
        let length = i32::try_from(tpdu_length).unwrap_or(i32::MAX);
        // No cooldown after `+CMGS`: the next part, or the next message, follows at line speed.
        let command = Command::new(parse::set_ints("+CMGS", &[length]))
            .payload(pdu_hex)
            .timeout(self.options.send_timeout)
            .cooldown(Duration::ZERO);
        let response = self
            .patiently(conn, command)
            .await
            .map_err(|error| SendError::from_at(&error))?;
        match response
            .lines
            .iter()
            .find_map(|line| parse::message_reference(line))
        {
            Some(mr) => {
                self.health.parts_sent += 1;
                Ok(mr)
            }
            None => Err(SendError::unknown(
                "the modem answered OK without +CMGS: the part may or may not have gone",
            )),
        }
    }

    async fn confirm(
        &mut self,
        conn: &mut Connection,
        slot: &StorageSlot,
        work: &mut VecDeque<Work>,
    ) -> Result<(), ModemError> {
        match slot {
            StorageSlot::Stored { memory, index } => {
                let command = parse::set_ints("+CMGD", &[*index as i32]);
                self.in_memory(conn, memory, &command).await?;
                self.outstanding.remove(&(memory.clone(), *index));
                Ok(())
            }
            StorageSlot::Routed if conn.report.needs_ack() => {
                match self.call(conn, self.plain("AT+CNMA")).await {
                    Ok(_) => Ok(()),
                    // 340: no acknowledgement expected. The modem stopped waiting: it refused
                    // the message to the network (which delivers it again) and switched
                    // routing off (TS 27.005 §3.4.4), which must be undone at once.
                    Err(AtError::Rejected {
                        result: FinalResult::CmsError(ErrorCode::Numeric(340)),
                        ..
                    }) => {
                        if !work.contains(&Work::CheckRouting) {
                            work.push_back(Work::CheckRouting);
                        }
                        Ok(())
                    }
                    Err(error) => Err(error.into()),
                }
            }
            StorageSlot::Routed | StorageSlot::None => Ok(()),
        }
    }

    /// Runs `command` with `memory` selected for reading and deleting (`AT+CPMS=<mem1>`).
    async fn in_memory(
        &mut self,
        conn: &mut Connection,
        memory: &str,
        command: &str,
    ) -> Result<Response, ModemError> {
        let other = memory != conn.memory;
        if other {
            self.call(conn, self.plain(parse::set_strings("+CPMS", &[memory])))
                .await?;
        }
        let result = self.patiently(conn, self.plain(command)).await;
        if other {
            let back = parse::set_strings("+CPMS", &[&conn.memory.clone()]);
            if let Err(error) = self.call(conn, self.plain(back)).await {
                warn!(%error, "could not select the message storage again");
            }
        }
        Ok(result?)
    }

    /// [`Self::call`], asking again while the modem answers "busy" (DESIGN.md §3).
    async fn patiently(
        &mut self,
        conn: &mut Connection,
        command: Command,
    ) -> Result<Response, AtError> {
        let mut pause = self.tuning.busy_backoff;
        let mut attempt = 1;
        loop {
            match self.call(conn, command.clone()).await {
                Err(AtError::Rejected { result, .. })
                    if is_busy(&result) && attempt < self.tuning.busy_retries =>
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

    /// A command with the configured timeout.
    fn plain(&self, text: impl Into<String>) -> Command {
        Command::new(text).timeout(self.options.command_timeout)
    }

    /// Runs one command on the connection and keeps the recovery bookkeeping. After a timeout
    /// the modem is resynchronised at once, not when the next command happens to come: the
    /// ladder climbs without waiting when the modem stays silent, and the next part goes as soon
    /// as it answers again.
    async fn call(&mut self, conn: &mut Connection, command: Command) -> Result<Response, AtError> {
        let result = conn.at.run(command).await;
        match &result {
            Ok(_) | Err(AtError::Rejected { .. }) => conn.consecutive_timeouts = 0,
            Err(error) => {
                self.count(conn, error);
                if matches!(error, AtError::Timeout { .. }) && conn.broken.is_none() {
                    self.resync_now(conn).await;
                }
            }
        }
        result
    }

    /// A plain `AT`, which the engine precedes with its resynchronisation (`ESC`, then `AT`
    /// until `OK` and silence). Its success does not clear the timeout count: a modem that
    /// answers `AT` but times out on everything else must still reach the next rung.
    async fn resync_now(&mut self, conn: &mut Connection) {
        match conn.at.run(self.plain("AT")).await {
            Ok(_) | Err(AtError::Rejected { .. }) => {
                debug!("the modem answers again after a timeout");
            }
            Err(error) => {
                warn!(%error, "the modem did not answer after a timeout");
                self.count(conn, &error);
            }
        }
    }

    fn count(&mut self, conn: &mut Connection, error: &AtError) {
        if error.is_fatal() {
            conn.broken = Some(error.to_string());
            return;
        }
        if matches!(
            error,
            AtError::Timeout { .. } | AtError::ResyncFailed { .. }
        ) {
            conn.consecutive_timeouts += 1;
            if conn.consecutive_timeouts >= self.tuning.reopen_after_timeouts {
                conn.broken = Some(format!(
                    "{} commands in a row timed out",
                    conn.consecutive_timeouts
                ));
            }
        }
    }

    /// Waits `period` while the modem is not serving: requests are refused, events still go.
    /// `false` when the task should stop.
    async fn pause(&mut self, requests: &mut mpsc::Receiver<Request>, period: Duration) -> bool {
        let until = Instant::now() + period;
        loop {
            let events = self.events.clone();
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return false,
                permit = events.reserve(), if !self.pending.is_empty() => {
                    match (permit, self.pending.pop_front()) {
                        (Ok(permit), Some(event)) => permit.send(event),
                        _ => self.pending.clear(),
                    }
                }
                request = requests.recv() => match request {
                    Some(request) => self.refuse(request),
                    None => return false,
                },
                () = tokio::time::sleep_until(until) => return true,
            }
        }
    }

    fn refuse(&self, request: Request) {
        let state = format!("{:?}", self.health.state).to_lowercase();
        let why = match &self.health.last_error {
            Some(error) => format!("{state}: {error}"),
            None => state,
        };
        match request {
            Request::Send { reply, .. } => {
                let _ = reply.send(Err(SendError::temporary(format!(
                    "the modem is not ready ({why})"
                ))));
            }
            Request::Confirm { reply, .. } | Request::Reject { reply, .. } => {
                let _ = reply.send(Err(ModemError::NotReady(why)));
            }
        }
    }

    /// Adds a finished engine's counters to the totals.
    fn retire(&mut self, at: &AtHandle) {
        let stats = at.stats();
        self.past = add_stats(self.past, stats);
        self.health.timeouts = self.past.timeouts;
        self.health.resyncs = self.past.resyncs;
        self.health.garbage_bytes = self.past.garbage_bytes;
        self.health.bytes_sent = self.past.bytes_out;
        self.health.bytes_received = self.past.bytes_in;
        self.publish();
    }

    fn apply_report(&mut self, report: &InitReport) {
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

    /// Publishes the connection's state: ready when registered, degraded otherwise.
    fn update_from(&mut self, conn: &Connection) {
        let live = add_stats(self.past, conn.at.stats());
        self.health.timeouts = live.timeouts;
        self.health.resyncs = live.resyncs;
        self.health.garbage_bytes = live.garbage_bytes;
        self.health.bytes_sent = live.bytes_out;
        self.health.bytes_received = live.bytes_in;
        // A full storage only delays receiving (the network holds SMS back until the caller's
        // confirmations free slots); sending works, so it does not make the modem degraded.
        self.health.state = if conn.report.registered {
            ModemState::Ready
        } else {
            ModemState::Degraded
        };
        self.health.healthy = true;
        if conn.storage_full {
            self.health.last_error = Some("message storage full".into());
        }
        let report = conn.report.clone();
        self.apply_report(&report);
    }

    fn set_state(&mut self, state: ModemState, healthy: bool) {
        if self.health.state != state {
            info!(?state, healthy, "modem state");
        }
        self.health.state = state;
        self.health.healthy = healthy;
        self.publish();
    }

    fn note_error(&mut self, error: String) {
        self.health.last_error = Some(error);
        self.publish();
    }

    fn publish(&self) {
        self.health_tx.send_replace(self.health.clone());
    }
}

/// Whether a PDU is one the modem received (so an undecodable one is kept and deleted), not
/// one stored for sending: `<stat>` 0 or 1, or routed. A stored one whose `<stat>` could not
/// be read is left alone.
fn received(reply: &parse::PduReply, slot: &StorageSlot) -> bool {
    match reply.stat {
        Some(stat) => stat <= 1,
        None => !matches!(slot, StorageSlot::Stored { .. }),
    }
}

fn error_is_fatal(error: &ModemError) -> bool {
    matches!(
        error,
        ModemError::PinRequired | ModemError::PinRejected(_) | ModemError::PukLocked
    )
}

fn add_stats(a: AtStats, b: AtStats) -> AtStats {
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
