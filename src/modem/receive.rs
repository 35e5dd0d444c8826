//! Receiving, from the URC to the caller and back: `+CMTI`/`+CDSI` announce a stored SMS or
//! report (read with `AT+CMGR`), `+CMT`/`+CDS` route one directly, `AT+CMGL=4` sweeps the
//! storage for whatever a lost URC left behind; each PDU is decoded (leniently) and handed to
//! the caller as a [`ModemEvent`]. Once the caller has committed it, [`Driver::confirm`]
//! releases the modem's copy (`AT+CMGD`, or `AT+CNMA` for a routed one); when it could not,
//! [`Driver::reject`] gives it back.
//!
//! Events wait in [`Handover`] and go to the caller without ever blocking the task: a caller
//! that is itself waiting on `confirm` cannot deadlock it. A stored slot handed over stays
//! *outstanding* until released, so a sweep does not offer it twice.
//!
//! It also keeps new-message routing on (`AT+CNMI`, which a modem switches off after an
//! unacknowledged routed message) and watches how full the storage is.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::driver::{Driver, Served, Work, WorkQueue};
use super::error::ModemError;
use super::init::Reports;
use super::{ModemEvent, StorageSlot, parse};
use crate::at::{AtError, Command, ErrorCode, FinalResult, Response, Urc};
use crate::pdu::{self, Pdu};

/// The longest line one stored message makes in an `AT+CMGL` listing: its `+CMGL:` header and
/// a PDU of up to 176 octets (SMSC and TPDU) in hex, with the line ends.
const LISTED_BYTES_PER_MESSAGE: u64 = 400;

/// Slots assumed when the modem did not say how large its storage is (`AT+CPMS?`).
const ASSUMED_SLOTS: u32 = 255;

/// How long `AT+CMGL=4` may take: an ordinary command's timeout, plus the time the line needs
/// to carry a full storage's listing at `baud` (8N1: ten bits a byte). A full SIM lists in a
/// second at 115200 baud, a modem memory of 255 slots in about two minutes at 9600 baud.
/// `AT+CMGS`'s timeout is no measure of it: that one waits on the network, not on the line.
fn listing_timeout(command_timeout: Duration, baud: u32, slots: Option<u32>) -> Duration {
    let bytes = u64::from(slots.unwrap_or(ASSUMED_SLOTS)) * LISTED_BYTES_PER_MESSAGE;
    let bytes_per_second = (u64::from(baud) / 10).max(1);
    command_timeout + Duration::from_millis(bytes * 1000 / bytes_per_second)
}

/// Events for the caller, and the stored slots it holds.
pub(super) struct Handover {
    events: mpsc::Sender<ModemEvent>,
    pending: VecDeque<ModemEvent>,
    /// Stored slots handed to the caller and not yet released: a sweep skips them.
    outstanding: HashSet<(String, u32)>,
}

impl Handover {
    pub(super) fn new(events: mpsc::Sender<ModemEvent>) -> Self {
        Self {
            events,
            pending: VecDeque::new(),
            outstanding: HashSet::new(),
        }
    }

    /// A new connection: nothing is outstanding on it yet (what was is offered again).
    pub(super) fn new_connection(&mut self) {
        self.outstanding.clear();
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Hands the oldest waiting event over once the caller has room for it.
    pub(super) async fn next(&mut self) {
        match self.events.reserve().await {
            Ok(permit) => {
                if let Some(event) = self.pending.pop_front() {
                    permit.send(event);
                }
            }
            // Nobody listens any more: the daemon is stopping.
            Err(_) => self.pending.clear(),
        }
    }

    /// Queues an event. A routed one goes ahead of stored ones: until it is acknowledged the
    /// modem routes nothing else, and after its timeout it switches routing off (reports
    /// arriving then are dropped); stored messages can wait.
    pub(super) fn queue(&mut self, event: ModemEvent, slot: &StorageSlot) {
        if let StorageSlot::Stored { memory, index } = slot {
            self.outstanding.insert((memory.clone(), *index));
        }
        if *slot == StorageSlot::Routed {
            self.pending.push_front(event);
        } else {
            self.pending.push_back(event);
        }
    }

    fn is_outstanding(&self, memory: &str, index: u32) -> bool {
        self.outstanding.contains(&(memory.to_owned(), index))
    }

    fn release(&mut self, memory: &str, index: u32) {
        self.outstanding.remove(&(memory.to_owned(), index));
    }
}

impl Driver {
    /// URCs only queue work or events; they never run a command here.
    pub(super) fn on_urc(&mut self, conn: &mut Served, urc: Urc, work: &mut WorkQueue) {
        let line = urc.line.as_str();
        if self.ussd_urc(line, work) || self.call_urc(line, urc.seq, work) {
            return;
        }
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
                    work.add(Work::Read { memory, index });
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
                work.push(Work::Ack);
            }
        } else if line.starts_with("+CREG:")
            || line.starts_with("+CGREG:")
            || line.starts_with("+CEREG:")
        {
            // Registration changed (`AT+CREG=1`): refresh now, so sending resumes at once.
            if parse::registration(line, false).map(parse::is_registered)
                != Some(conn.report.registered)
            {
                work.add(Work::Refresh);
            }
        } else if line == "RDY" || line.starts_with("^SYSSTART") || line.starts_with("+CFUN:") {
            // The modem restarted on its own: every setting of the initialisation is lost.
            conn.line.break_off(format!("the modem restarted ({line})"));
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
            self.health.health.last_error = Some(format!("no PDU in the answer for {slot}"));
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
                        self.health.health.parts_received += 1;
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
        self.handover.queue(event, &slot);
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
        self.health.health.last_error = Some(error.to_string());
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

    /// `AT+CMGR`: the SMS or report a `+CMTI`/`+CDSI` announced, unless it is handed over
    /// already.
    pub(super) async fn read(&mut self, conn: &mut Served, memory: String, index: u32) {
        if self.handover.is_outstanding(&memory, index) {
            return;
        }
        let command = conn.line.plain(parse::set_ints("+CMGR", &[index as i32]));
        let Ok(response) = self.in_memory(conn, &memory, command).await else {
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

    /// A modem that waited in vain for `AT+CNMA` (smsgate stopped or slow with a routed
    /// message) switches routing off, `<mt>` and `<ds>` to 0 (TS 27.005 §3.4.4): no more
    /// `+CMTI`, and status reports dropped. Set it again as soon as that is seen.
    pub(super) async fn check_routing(&mut self, conn: &mut Served) {
        let Some(chosen) = conn.report.cnmi else {
            return;
        };
        let query = conn.line.plain("AT+CNMI?");
        let Ok(response) = conn.line.call(query).await else {
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
        let command = conn.line.plain(parse::set_ints("+CNMI", &chosen.values));
        if let Err(error) = conn.line.call(command).await {
            warn!(%error, "could not set AT+CNMI again");
        }
    }

    /// `AT+CMGL=4` (all messages, TS 27.005 §3.4.2): picks up whatever a lost URC left behind,
    /// in the message storage and, where status reports are stored apart (`"SR"`), there too.
    pub(super) async fn sweep(&mut self, conn: &mut Served) {
        let command = self.listing(conn);
        let Ok(response) = conn.line.call(command).await else {
            return;
        };
        let memory = conn.memory.clone();
        let mut found = self.offer_listed(&response, &memory);
        if let Some(reports) = conn.report_memory.clone()
            && conn.report.reports() == Reports::Stored
        {
            let command = self.listing(conn);
            match self.in_memory(conn, &reports, command).await {
                Ok(response) => found += self.offer_listed(&response, &reports),
                Err(error) => debug!(%error, memory = reports, "cannot list the report storage"),
            }
        }
        if found > 0 {
            info!(found, "storage sweep found messages");
        }
        self.storage(conn).await;
    }

    /// `AT+CMGL=4` with the time a full storage's listing takes on this line.
    fn listing(&self, conn: &Served) -> Command {
        Command::new("AT+CMGL=4").timeout(listing_timeout(
            self.options.command_timeout,
            self.options.baud,
            conn.report.storage_total,
        ))
    }

    /// Hands over every listed entry of `memory` not already handed over; returns how many.
    fn offer_listed(&mut self, response: &Response, memory: &str) -> usize {
        let mut found = 0;
        for entry in parse::list_reply(&response.lines) {
            let Some(index) = entry.index else {
                continue;
            };
            if self.handover.is_outstanding(memory, index) {
                continue;
            }
            let slot = StorageSlot::Stored {
                memory: memory.to_owned(),
                index,
            };
            if self.emit(&entry, slot, memory == "SR") {
                found += 1;
            }
        }
        found
    }

    /// `AT+CPMS?`: how full the storage is (a full SIM makes the network hold new SMS back).
    pub(super) async fn storage(&mut self, conn: &mut Served) {
        let query = conn.line.plain("AT+CPMS?");
        let Ok(response) = conn.line.call(query).await else {
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

    /// The caller committed what was handed over in `slot`: delete a stored copy
    /// (`AT+CMGD`), or acknowledge a routed one (`AT+CNMA`) where the modem waits for that.
    pub(super) async fn confirm(
        &mut self,
        conn: &mut Served,
        slot: &StorageSlot,
        work: &mut WorkQueue,
    ) -> Result<(), ModemError> {
        match slot {
            StorageSlot::Stored { memory, index } => {
                let command = conn.line.plain(parse::set_ints("+CMGD", &[*index as i32]));
                self.in_memory(conn, memory, command).await?;
                self.handover.release(memory, *index);
                Ok(())
            }
            StorageSlot::Routed if conn.report.needs_ack() => {
                let command = conn.line.plain("AT+CNMA");
                match conn.line.call(command).await {
                    Ok(_) => Ok(()),
                    // 340: no acknowledgement expected. The modem stopped waiting: it refused
                    // the message to the network (which delivers it again) and switched
                    // routing off (TS 27.005 §3.4.4), which must be undone at once.
                    Err(AtError::Rejected {
                        result: FinalResult::CmsError(ErrorCode::Numeric(340)),
                        ..
                    }) => {
                        work.add(Work::CheckRouting);
                        Ok(())
                    }
                    Err(error) => Err(error.into()),
                }
            }
            StorageSlot::Routed | StorageSlot::None => Ok(()),
        }
    }

    /// The caller could not commit what was handed over in `slot`. A stored copy stays where
    /// it is and is offered again by the next sweep; a routed one is refused with
    /// `AT+CNMA=2` (RP-ERROR, TS 27.005 §4.6) so the network keeps it and delivers it again.
    pub(super) async fn reject(
        &mut self,
        conn: &mut Served,
        slot: &StorageSlot,
    ) -> Result<(), ModemError> {
        match slot {
            StorageSlot::Stored { memory, index } => {
                self.handover.release(memory, *index);
                Ok(())
            }
            StorageSlot::Routed if conn.report.needs_ack() => {
                let command = conn.line.plain(parse::set_ints("+CNMA", &[2]));
                match conn.line.call(command).await {
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

    /// Runs `command` with `memory` selected for reading and deleting (`AT+CPMS=<mem1>`),
    /// asking again while the modem is busy, then selects the usual memory again.
    async fn in_memory(
        &mut self,
        conn: &mut Served,
        memory: &str,
        command: Command,
    ) -> Result<Response, ModemError> {
        let other = memory != conn.memory;
        if other {
            let select = conn.line.plain(parse::set_strings("+CPMS", &[memory]));
            conn.line.call(select).await?;
        }
        let result = conn.line.patiently(command).await;
        if other {
            let back = conn
                .line
                .plain(parse::set_strings("+CPMS", &[&conn.memory.clone()]));
            if let Err(error) = conn.line.call(back).await {
                warn!(%error, "could not select the message storage again");
            }
        }
        Ok(result?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_gets_the_time_its_storage_takes_on_the_line() {
        let command = Duration::from_secs(10);
        // A full SIM of 30 at 115200 baud: about a second on the line.
        let sim = listing_timeout(command, 115_200, Some(30));
        assert!(
            sim > command && sim < command + Duration::from_secs(2),
            "{sim:?}"
        );
        // 255 slots at 9600 baud: the line needs about 106 s for the listing.
        let slow = listing_timeout(command, 9_600, Some(255));
        assert!(
            slow > command + Duration::from_secs(100) && slow < command + Duration::from_secs(110),
            "{slow:?}"
        );
        assert_eq!(
            listing_timeout(command, 9_600, None),
            slow,
            "an unknown storage is taken as 255 slots"
        );
        // Never shorter than an ordinary command, whatever the line.
        assert!(listing_timeout(command, u32::MAX, Some(0)) >= command);
    }
}
