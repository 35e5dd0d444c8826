//! Outbound messages and their parts: the rows behind the outbox (DESIGN.md §1 "Status", §2).
//!
//! A message moves `queued → sending → sent → delivered | failed`, with `unknown` when the modem
//! gave no answer to a part (a crash or a timeout during `AT+CMGS`). Each step that respond.io
//! must hear about enqueues its `message_status` event in the same transaction, and the state
//! never moves backwards: a `sent` never follows `delivered`, a late report after `failed` is
//! recorded on its part and changes nothing else.
//!
//! Parts belong to the current attempt only: a new attempt (a resend with a new concatenation
//! reference) replaces them, so a late report for an abandoned attempt pairs with nothing.
//! This file decides nothing about timing or the modem; [`crate::outbox`] does.

use rusqlite::{Connection, OptionalExtension, params};

use super::events::enqueue_event;
use super::state::{OutboundState, PartState};
use super::{Store, StoreError, next_counter};
use crate::config::UnknownPolicy;
use crate::pdu::{self, Encoding, StatusClass};
use crate::wire::{Event, StatusValue};

/// Where an outbound message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST /message` from respond.io.
    Respond,
    /// `smsgate send`: reported to respond.io as a `message_echo`.
    Cli,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Respond => "respond",
            Source::Cli => "cli",
        }
    }
}

/// An outbound message to commit.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    /// The recipient, E.164.
    pub contact_id: String,
    /// The rendered SMS text.
    pub text: String,
    /// Parts it takes (as planned when accepted).
    pub parts: usize,
    pub encoding: Encoding,
    pub source: Source,
    /// A quick-reply menu to remember for mapping the contact's bare-number answer.
    pub quick_replies: Option<Vec<String>>,
    pub now_ms: i64,
}

/// Outbox figures for `POST /message` back-pressure, `/health` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxStats {
    /// Waiting to be sent (including those backing off after a temporary error).
    pub queued: u64,
    /// When the oldest queued message was accepted.
    pub oldest_queued_ms: Option<i64>,
    /// Being sent now.
    pub sending: u64,
    /// Sent without an answer from the modem, awaiting a report or the unknown policy.
    pub unknown: u64,
    /// Parts the modem accepted whose answer (the TP-MR) is held in memory because the database
    /// refused its commit; the outbox keeps trying (see [`Store::hold_unrecorded`]).
    pub unrecorded: u64,
}

impl OutboxStats {
    /// Messages accepted and not finished.
    pub fn depth(&self) -> u64 {
        self.queued + self.sending + self.unknown
    }
}

/// A sent part whose `+CMGS` answer is not committed yet, counted in
/// [`OutboxStats::unrecorded`] for as long as this lives.
#[must_use = "the part counts as unrecorded only while the guard lives"]
pub struct Unrecorded {
    signals: std::sync::Arc<super::Signals>,
}

impl Drop for Unrecorded {
    fn drop(&mut self) {
        self.signals
            .unrecorded
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The rules the store applies while handing out work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// Attempts at one message before it fails.
    pub max_attempts: u32,
    /// A message not sent within this time of being accepted fails as expired.
    pub expiry_ms: i64,
    /// What becomes of a message left `unknown` for `unknown_window_ms`.
    pub unknown_policy: UnknownPolicy,
    pub unknown_window_ms: i64,
}

/// A message handed to the sender for one attempt (now in state `sending`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub m_id: String,
    pub contact_id: String,
    pub text: String,
    /// As planned at acceptance.
    pub encoding: Encoding,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// A reference not used by the previous attempts (3GPP TS 23.040 §9.2.3.24.1).
    pub concat_reference: u16,
    pub created_ms: i64,
}

/// A status report as the store needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReportInput {
    /// TP-MR of the part it reports on.
    pub mr: u8,
    /// The recipient, normalised like contact IDs (E.164 where possible).
    pub recipient: String,
    /// TP-ST (3GPP TS 23.040 §9.2.3.15).
    pub status: u8,
    pub now_ms: i64,
    /// Only parts submitted within this window before `now_ms` are candidates: TP-MR is one
    /// octet and wraps every 256 parts.
    pub window_ms: i64,
    /// The SIM the report came from: TP-MR counters are per SIM, so it pairs only with parts
    /// that SIM sent (and with parts recorded before the pool, which have no SIM). `None`:
    /// any part.
    pub modem: Option<String>,
}

/// What a status report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// No part in the window has this (TP-MR, recipient) yet. The report is kept (parked) and
    /// applied when such a part is accepted or found in doubt at start-up; it is forgotten once
    /// the report window has passed.
    Unmatched,
    /// Recorded on a part of `m_id`; `events` lists the status events it caused, if any.
    Matched {
        m_id: String,
        events: Vec<StatusValue>,
    },
}

/// How an attempt ended, when it did not end in `sent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    /// A temporary error: try again at this time (unless attempts or time ran out).
    Temporary { retry_at_ms: i64 },
    /// A permanent error: fail now.
    Permanent,
}

/// Where the message stands after [`Store::attempt_failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Retrying { at_ms: i64 },
    Failed { message: String },
}

/// Marks a message failed with `message` and enqueues the `failed` event.
fn fail(tx: &Connection, id: i64, message: &str, now_ms: i64) -> Result<(), StoreError> {
    let (m_id, contact_id): (String, String) = tx.query_row(
        "UPDATE outbound SET state = 'failed', status_message = ?2, updated_ms = ?3,
         finished_ms = ?3 WHERE id = ?1 RETURNING m_id, contact_id",
        params![id, message, now_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    next_counter(tx, "total_failed")?;
    enqueue_event(
        tx,
        &contact_id,
        &Event::failed(m_id, now_ms, message),
        now_ms,
    )?;
    Ok(())
}

/// Puts a message back in the queue for a whole new attempt at `at_ms`.
fn requeue(tx: &Connection, id: i64, at_ms: i64, now_ms: i64) -> Result<(), StoreError> {
    // A part of this attempt may have reached the network on its SIM: the resend stays on
    // that SIM, so the contact never gets one message from two numbers.
    tx.execute(
        "UPDATE outbound SET pinned = 1 WHERE id = ?1 AND modem IS NOT NULL AND EXISTS (
             SELECT 1 FROM outbound_part WHERE message_id = ?1
               AND state IN ('accepted', 'unknown', 'delivered', 'failed'))",
        [id],
    )?;
    tx.execute("DELETE FROM outbound_part WHERE message_id = ?1", [id])?;
    tx.execute(
        "UPDATE outbound SET state = 'queued', next_attempt_ms = ?2, unknown_since_ms = NULL,
         updated_ms = ?3 WHERE id = ?1",
        params![id, at_ms, now_ms],
    )?;
    Ok(())
}

/// Moves a message forward as far as its parts allow, enqueuing one event per step:
/// `sending`/`unknown` → `sent` once every part was accepted; `sent` → `failed` when a part's
/// report failed; `sent` → `delivered` once every part's report says delivered.
fn settle(tx: &Connection, id: i64, now_ms: i64) -> Result<Vec<StatusValue>, StoreError> {
    let (mut state, parts, m_id, contact_id): (OutboundState, i64, String, String) = tx.query_row(
        "SELECT state, parts, m_id, contact_id FROM outbound WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let (accepted, delivered, failed_status): (i64, i64, Option<i64>) = tx.query_row(
        "SELECT coalesce(sum(state IN ('accepted', 'delivered', 'failed')), 0),
                coalesce(sum(state = 'delivered'), 0),
                min(CASE WHEN state = 'failed' THEN report_status END)
         FROM outbound_part WHERE message_id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut events = Vec::new();
    if matches!(state, OutboundState::Sending | OutboundState::Unknown) && accepted >= parts {
        tx.execute(
            "UPDATE outbound SET state = 'sent', unknown_since_ms = NULL, updated_ms = ?2,
             finished_ms = ?2 WHERE id = ?1",
            params![id, now_ms],
        )?;
        next_counter(tx, "total_sent")?;
        let sent = Event::status(m_id.as_str(), now_ms, StatusValue::Sent);
        enqueue_event(tx, &contact_id, &sent, now_ms)?;
        events.push(StatusValue::Sent);
        state = OutboundState::Sent;
    }
    if state == OutboundState::Sent {
        if let Some(status) = failed_status {
            let message = pdu::failure_text(status as u8);
            fail(tx, id, &message, now_ms)?;
            events.push(StatusValue::Failed);
        } else if delivered >= parts {
            tx.execute(
                "UPDATE outbound SET state = 'delivered', updated_ms = ?2, finished_ms = ?2
                 WHERE id = ?1",
                params![id, now_ms],
            )?;
            next_counter(tx, "total_delivered")?;
            let delivered = Event::status(m_id.as_str(), now_ms, StatusValue::Delivered);
            enqueue_event(tx, &contact_id, &delivered, now_ms)?;
            events.push(StatusValue::Delivered);
        }
    }
    Ok(events)
}

/// Records a status report on part `seq` of message `id`, whose state is `state`. A part's
/// outcome is final once known; a report of the centre still trying
/// ([`StatusClass::Pending`]) leaves it accepted.
fn record_report(
    tx: &Connection,
    (id, seq): (i64, i64),
    state: PartState,
    mr: u8,
    status: u8,
    now_ms: i64,
) -> Result<(), StoreError> {
    let part_state = state.after_report(StatusClass::of(status));
    tx.execute(
        "UPDATE outbound_part SET state = ?3, mr = ?4, report_status = ?5, report_ms = ?6
         WHERE message_id = ?1 AND seq = ?2",
        params![id, seq, part_state, mr, status, now_ms],
    )?;
    Ok(())
}

/// Applies to part `seq` of message `id` the parked reports for `recipient` that arrived since
/// `since_ms` (when the part was handed to the modem) with TP-MR `mr`; with `mr` unknown (a
/// part in doubt), those with the TP-MR of the first of them. Returns how many.
fn apply_parked(
    tx: &Connection,
    (id, seq): (i64, i64),
    mr: Option<u8>,
    recipient: &str,
    since_ms: i64,
) -> Result<usize, StoreError> {
    // Only reports from the SIM that sent the part (TP-MR counters are per SIM).
    let modem: Option<String> = tx.query_row(
        "SELECT modem FROM outbound_part WHERE message_id = ?1 AND seq = ?2",
        params![id, seq],
        |r| r.get(0),
    )?;
    let parked: Vec<(i64, u8, u8, i64)> = tx
        .prepare(
            "SELECT id, mr, status, received_ms FROM parked_report
             WHERE recipient = ?1 AND received_ms >= ?2 AND (?3 IS NULL OR mr = ?3)
               AND (?4 IS NULL OR modem IS NULL OR modem = ?4)
             ORDER BY received_ms, id",
        )?
        .query_map(params![recipient, since_ms, mr, modem], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let Some(&(_, first_mr, _, _)) = parked.first() else {
        return Ok(0);
    };
    let mut applied = 0;
    for (parked_id, mr, status, received_ms) in parked {
        if mr != first_mr {
            continue;
        }
        let state: PartState = tx.query_row(
            "SELECT state FROM outbound_part WHERE message_id = ?1 AND seq = ?2",
            params![id, seq],
            |r| r.get(0),
        )?;
        record_report(tx, (id, seq), state, mr, status, received_ms)?;
        tx.execute("DELETE FROM parked_report WHERE id = ?1", [parked_id])?;
        applied += 1;
    }
    Ok(applied)
}

/// Expires queued messages and applies the unknown policy; part of every claim.
fn housekeeping(tx: &Connection, now_ms: i64, policy: &OutboxPolicy) -> Result<(), StoreError> {
    let expired: Vec<(i64, Option<String>)> = tx
        .prepare(
            "SELECT id, last_error FROM outbound WHERE state = 'queued' AND created_ms + ?1 <= ?2",
        )?
        .query_map(params![policy.expiry_ms, now_ms], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, last_error) in expired {
        let message = match last_error {
            Some(error) => format!("expired before it could be sent; last error: {error}"),
            None => "expired before it could be sent".to_owned(),
        };
        fail(tx, id, &message, now_ms)?;
    }
    let stale: Vec<(i64, i64)> = tx
        .prepare(
            "SELECT id, attempts FROM outbound WHERE state = 'unknown'
             AND unknown_since_ms + ?1 <= ?2",
        )?
        .query_map(params![policy.unknown_window_ms, now_ms], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, attempts) in stale {
        match policy.unknown_policy {
            UnknownPolicy::Fail => fail(
                tx,
                id,
                "the modem never confirmed sending it and no delivery report came; \
                 not resent (sms.unknown_policy = \"fail\")",
                now_ms,
            )?,
            UnknownPolicy::Resend if attempts as u32 >= policy.max_attempts => fail(
                tx,
                id,
                &format!(
                    "gave up after {attempts} attempts; the modem never confirmed the last one"
                ),
                now_ms,
            )?,
            UnknownPolicy::Resend => requeue(tx, id, now_ms, now_ms)?,
        }
    }
    Ok(())
}

/// The next due message, FIFO per contact (nothing older of theirs still in flight, on any
/// SIM): the `FROM … LIMIT 1` of a claim, `?1` = now, `?2` = the SIM whose messages are
/// claimed (`NULL`: any).
/// The messages that may be claimed now (`?1` = now, `?2` = a modem or NULL): due, and the
/// first unfinished one of their contact. Callers add conditions and the order.
pub(super) const DUE_WHERE: &str = "FROM outbound o
     WHERE o.state = 'queued' AND o.next_attempt_ms <= ?1 AND (?2 IS NULL OR o.modem = ?2)
       AND NOT EXISTS (SELECT 1 FROM outbound p
           WHERE p.contact_id = o.contact_id AND p.id < o.id
             AND p.state IN ('queued', 'sending', 'unknown'))";

impl Store {
    /// Commits one outbound message and, atomically, its webhook side effects (`message_echo`
    /// for [`Source::Cli`]) and quick-reply menu. Returns the new mId (unique, ≤ 50 chars).
    pub async fn enqueue_outbound(&self, msg: NewOutbound) -> Result<String, StoreError> {
        let m_id = self
            .write(move |tx| {
                let seq = next_counter(tx, "outbound_m_id")?;
                // Time, a per-database sequence and randomness: unique even if the database is
                // replaced, so respond.io never sees one mId twice.
                let m_id = format!("{}-{seq}-{:08x}", msg.now_ms, rand::random::<u32>());
                tx.execute(
                    "INSERT INTO outbound (m_id, contact_id, text, parts, encoding, source, state,
                                           next_attempt_ms, created_ms, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?7)",
                    params![
                        m_id,
                        msg.contact_id,
                        msg.text,
                        msg.parts as i64,
                        msg.encoding.to_string(),
                        msg.source.as_str(),
                        msg.now_ms
                    ],
                )?;
                if msg.source == Source::Cli {
                    let echo = Event::echo(m_id.as_str(), msg.now_ms, msg.text.as_str());
                    enqueue_event(tx, &msg.contact_id, &echo, msg.now_ms)?;
                }
                if let Some(replies) = &msg.quick_replies {
                    tx.execute(
                        "INSERT INTO quick_reply_menu (contact_id, replies, sent_ms)
                         VALUES (?1, ?2, ?3)
                         ON CONFLICT (contact_id) DO UPDATE
                         SET replies = excluded.replies, sent_ms = excluded.sent_ms",
                        params![msg.contact_id, serde_json::to_string(replies)?, msg.now_ms],
                    )?;
                }
                Ok(m_id)
            })
            .await?;
        self.signals.outbound.notify_one();
        self.signals.events.notify_one();
        Ok(m_id)
    }

    /// Counts a part the modem accepted whose answer could not be committed yet, until the
    /// returned guard is dropped: `/health` shows the outbox degraded meanwhile.
    pub fn hold_unrecorded(&self) -> Unrecorded {
        self.signals
            .unrecorded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Unrecorded {
            signals: self.signals.clone(),
        }
    }

    /// Outbox figures.
    pub async fn outbox_stats(&self, _now_ms: i64) -> Result<OutboxStats, StoreError> {
        let unrecorded = self
            .signals
            .unrecorded
            .load(std::sync::atomic::Ordering::Relaxed);
        self.call(move |conn| {
            let (queued, oldest, sending, unknown): (i64, Option<i64>, i64, i64) = conn.query_row(
                "SELECT coalesce(sum(state = 'queued'), 0),
                            min(CASE WHEN state = 'queued' THEN created_ms END),
                            coalesce(sum(state = 'sending'), 0),
                            coalesce(sum(state = 'unknown'), 0)
                     FROM outbound WHERE state IN ('queued', 'sending', 'unknown')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            Ok(OutboxStats {
                queued: queued as u64,
                oldest_queued_ms: oldest,
                sending: sending as u64,
                unknown: unknown as u64,
                unrecorded,
            })
        })
        .await
    }

    /// At start-up: whatever was being sent when the process stopped. A part marked
    /// `submitting` may or may not have left the modem, so it becomes `unknown` (and its
    /// message with it); a message caught between parts, with no part in doubt, goes back to
    /// the queue to be resent whole. Returns the number of messages now `unknown`.
    pub async fn recover_outbound(&self, now_ms: i64) -> Result<u64, StoreError> {
        let unknown = self
            .write(move |tx| {
                tx.execute(
                    "UPDATE outbound_part SET state = 'unknown' WHERE state = 'submitting'",
                    [],
                )?;
                let mut unknown = tx.execute(
                    "UPDATE outbound SET state = 'unknown', unknown_since_ms = ?1, updated_ms = ?1
                     WHERE state = 'sending' AND EXISTS (SELECT 1 FROM outbound_part p
                         WHERE p.message_id = outbound.id AND p.state = 'unknown')",
                    [now_ms],
                )?;
                // A report that came for a part whose `+CMGS` answer was never recorded (the
                // process stopped, or the commit kept failing) settles the doubt now.
                let in_doubt: Vec<(i64, i64, String, i64)> = tx
                    .prepare(
                        "SELECT p.message_id, p.seq, p.recipient, p.submitted_ms
                         FROM outbound_part p JOIN outbound o ON o.id = p.message_id
                         WHERE p.state = 'unknown' AND o.state = 'unknown'",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<Result<_, _>>()?;
                for (id, seq, recipient, submitted_ms) in in_doubt {
                    if apply_parked(tx, (id, seq), None, &recipient, submitted_ms)? > 0 {
                        settle(tx, id, now_ms)?;
                        let still: OutboundState =
                            tx.query_row("SELECT state FROM outbound WHERE id = ?1", [id], |r| {
                                r.get(0)
                            })?;
                        if still != OutboundState::Unknown {
                            unknown -= 1;
                        }
                    }
                }
                let stranded: Vec<i64> = tx
                    .prepare("SELECT id FROM outbound WHERE state = 'sending'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for id in stranded {
                    requeue(tx, id, now_ms, now_ms)?;
                }
                Ok(unknown as u64)
            })
            .await?;
        self.signals.outbound.notify_one();
        self.signals.events.notify_one();
        Ok(unknown)
    }

    /// Hands out the oldest due message whose contact has nothing older still in flight
    /// (FIFO per contact), marking it `sending` with a new attempt number and concatenation
    /// reference. Expiry and the unknown policy are applied first, in the same transaction.
    pub async fn claim_outbound(
        &self,
        now_ms: i64,
        policy: OutboxPolicy,
    ) -> Result<Option<Claimed>, StoreError> {
        self.claim(now_ms, policy, None, None).await
    }

    /// [`Store::claim_outbound`] for the sender of one SIM of a pool: only messages routed to
    /// `modem`, and with `only` just that message (the one its pacing was planned for), if it is
    /// still the next due.
    pub async fn claim_outbound_on(
        &self,
        now_ms: i64,
        policy: OutboxPolicy,
        modem: &str,
        only: Option<i64>,
    ) -> Result<Option<Claimed>, StoreError> {
        self.claim(now_ms, policy, Some(modem.to_owned()), only)
            .await
    }

    async fn claim(
        &self,
        now_ms: i64,
        policy: OutboxPolicy,
        modem: Option<String>,
        only: Option<i64>,
    ) -> Result<Option<Claimed>, StoreError> {
        self.write(move |tx| {
            housekeeping(tx, now_ms, &policy)?;
            let next: Option<(i64, String, String, String, Encoding, i64, i64)> = tx
                .query_row(
                    // `only` (?3): the message the lane planned, when it is still due.
                    &format!(
                        "SELECT o.id, o.m_id, o.contact_id, o.text, o.encoding, o.attempts,
                                o.created_ms {DUE_WHERE} AND (?3 IS NULL OR o.id = ?3)
                         ORDER BY o.id LIMIT 1"
                    ),
                    params![now_ms, modem, only],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            encoding(r, 4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, m_id, contact_id, text, encoding, attempts, created_ms)) = next else {
                return Ok(None);
            };
            // A fresh reference per attempt, so the recipient's phone never merges parts of
            // two attempts (3GPP TS 23.040 §9.2.3.24.1).
            let concat_reference = (next_counter(tx, "concat_reference")? & 0xFFFF) as u16;
            let attempt = attempts as u32 + 1;
            tx.execute("DELETE FROM outbound_part WHERE message_id = ?1", [id])?;
            tx.execute(
                "UPDATE outbound SET state = 'sending', attempts = ?2, concat_reference = ?3,
                 updated_ms = ?4 WHERE id = ?1",
                params![id, attempt, concat_reference, now_ms],
            )?;
            Ok(Some(Claimed {
                id,
                m_id,
                contact_id,
                text,
                encoding,
                attempt,
                concat_reference,
                created_ms,
            }))
        })
        .await
    }

    /// When the outbox next has something to do without being woken: the earliest retry time
    /// or end of an unknown window (`None`: nothing is waiting).
    pub async fn next_outbound_wakeup(
        &self,
        policy: OutboxPolicy,
    ) -> Result<Option<i64>, StoreError> {
        self.call(move |conn| {
            Ok(conn.query_row(
                "SELECT min(t) FROM (
                    SELECT min(next_attempt_ms) AS t FROM outbound WHERE state = 'queued'
                    UNION ALL
                    SELECT min(unknown_since_ms) + ?1 FROM outbound WHERE state = 'unknown')",
                [policy.unknown_window_ms],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Records that part `seq` (1-based) of message `id` is about to be handed to the modem.
    /// Committed before `AT+CMGS`, so a crash in between leaves it recognisably in doubt.
    pub async fn part_submitting(
        &self,
        id: i64,
        seq: u32,
        recipient: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.submitting(id, seq, recipient, now_ms, None).await
    }

    /// [`Store::part_submitting`] on one SIM of a pool: the part records `modem`, and the same
    /// transaction appends it to the SIM's send history (`starts_message`: the first part of
    /// this attempt), which its caps count from.
    pub async fn part_submitting_on(
        &self,
        id: i64,
        seq: u32,
        recipient: &str,
        now_ms: i64,
        modem: &str,
        starts_message: bool,
    ) -> Result<(), StoreError> {
        self.submitting(
            id,
            seq,
            recipient,
            now_ms,
            Some((modem.to_owned(), starts_message)),
        )
        .await
    }

    async fn submitting(
        &self,
        id: i64,
        seq: u32,
        recipient: &str,
        now_ms: i64,
        on: Option<(String, bool)>,
    ) -> Result<(), StoreError> {
        let recipient = recipient.to_owned();
        self.write(move |tx| {
            let modem = on.as_ref().map(|(modem, _)| modem.as_str());
            tx.execute(
                "INSERT INTO outbound_part (message_id, seq, state, recipient, submitted_ms, modem)
                 VALUES (?1, ?2, 'submitting', ?3, ?4, ?5)
                 ON CONFLICT (message_id, seq) DO UPDATE SET state = 'submitting', mr = NULL,
                     submitted_ms = excluded.submitted_ms, report_status = NULL,
                     report_ms = NULL, modem = excluded.modem",
                params![id, seq, recipient, now_ms, modem],
            )?;
            if let Some((modem, starts_message)) = &on {
                let sent = crate::pacing::Sent {
                    at_ms: now_ms,
                    recipient: recipient.clone(),
                    starts_message: *starts_message,
                };
                super::pool::record_send(tx, modem, &sent)?;
            }
            Ok(())
        })
        .await
    }

    /// The modem accepted part `seq` with TP-MR `mr`. `total` is the number of parts this
    /// attempt encoded; when all are accepted the message becomes `sent` and its event is
    /// enqueued, atomically. Returns the status events this caused.
    pub async fn part_accepted(
        &self,
        id: i64,
        seq: u32,
        mr: u8,
        total: usize,
        now_ms: i64,
    ) -> Result<Vec<StatusValue>, StoreError> {
        let events = self
            .write(move |tx| {
                let (recipient, handed_ms): (String, i64) = tx
                    .query_row(
                        "SELECT recipient, submitted_ms FROM outbound_part
                         WHERE message_id = ?1 AND seq = ?2
                           AND state IN ('submitting', 'unknown')",
                        params![id, seq],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?
                    .ok_or(StoreError::NoSuchMessage(id))?;
                tx.execute(
                    "UPDATE outbound_part SET state = 'accepted', mr = ?3, submitted_ms = ?4
                     WHERE message_id = ?1 AND seq = ?2",
                    params![id, seq, mr, now_ms],
                )?;
                tx.execute(
                    "UPDATE outbound SET parts = ?2, last_error = NULL WHERE id = ?1",
                    params![id, total as i64],
                )?;
                // Its report may have come first (the network can be faster than this commit).
                apply_parked(tx, (id, i64::from(seq)), Some(mr), &recipient, handed_ms)?;
                settle(tx, id, now_ms)
            })
            .await?;
        if !events.is_empty() {
            self.signals.events.notify_one();
        }
        Ok(events)
    }

    /// The modem gave no answer for part `seq` (`+CMGS` timed out): the part and its message
    /// are `unknown` until a status report or the unknown policy resolves them.
    pub async fn part_unknown(
        &self,
        id: i64,
        seq: u32,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.write(move |tx| {
            tx.execute(
                "UPDATE outbound_part SET state = 'unknown' WHERE message_id = ?1 AND seq = ?2",
                params![id, seq],
            )?;
            tx.execute(
                "UPDATE outbound SET state = 'unknown', unknown_since_ms = ?2, last_error = ?3,
                 updated_ms = ?2 WHERE id = ?1 AND state = 'sending'",
                params![id, now_ms, error],
            )?;
            Ok(())
        })
        .await
    }

    /// The attempt failed with `error` (a readable reason, e.g. "+CMS ERROR 38: network out
    /// of order"). A temporary failure requeues the whole message unless attempts or time ran
    /// out; a permanent one fails it. Either way the parts of this attempt are forgotten.
    pub async fn attempt_failed(
        &self,
        id: i64,
        end: AttemptEnd,
        error: &str,
        now_ms: i64,
        policy: OutboxPolicy,
    ) -> Result<AttemptResult, StoreError> {
        let error = error.to_owned();
        let result = self
            .write(move |tx| {
                let (attempts, created_ms): (i64, i64) = tx
                    .query_row(
                        "SELECT attempts, created_ms FROM outbound WHERE id = ?1",
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?
                    .ok_or(StoreError::NoSuchMessage(id))?;
                tx.execute(
                    "UPDATE outbound SET last_error = ?2 WHERE id = ?1",
                    params![id, error],
                )?;
                let message = match end {
                    AttemptEnd::Permanent => error.clone(),
                    AttemptEnd::Temporary { .. } if attempts as u32 >= policy.max_attempts => {
                        format!("gave up after {attempts} attempts; last error: {error}")
                    }
                    AttemptEnd::Temporary { retry_at_ms }
                        if retry_at_ms >= created_ms + policy.expiry_ms =>
                    {
                        format!("expired before it could be sent; last error: {error}")
                    }
                    AttemptEnd::Temporary { retry_at_ms } => {
                        requeue(tx, id, retry_at_ms, now_ms)?;
                        return Ok(AttemptResult::Retrying { at_ms: retry_at_ms });
                    }
                };
                tx.execute("DELETE FROM outbound_part WHERE message_id = ?1", [id])?;
                fail(tx, id, &message, now_ms)?;
                Ok(AttemptResult::Failed { message })
            })
            .await?;
        if matches!(result, AttemptResult::Failed { .. }) {
            self.signals.events.notify_one();
        }
        Ok(result)
    }

    /// Pairs a status report with a part by (TP-MR, recipient, window), most recent first,
    /// records it and moves the message forward. A report that finds no accepted part may
    /// resolve a part in doubt (`unknown`) to the same recipient in the window: the modem did
    /// send it after all.
    pub async fn apply_status_report(
        &self,
        report: StatusReportInput,
    ) -> Result<ReportOutcome, StoreError> {
        let outcome = self
            .write(move |tx| {
                let since = report.now_ms.saturating_sub(report.window_ms);
                let matched: Option<(i64, i64, PartState)> = tx
                    .query_row(
                        "SELECT message_id, seq, state FROM outbound_part
                         WHERE mr = ?1 AND recipient = ?2 AND submitted_ms >= ?3
                           AND state IN ('accepted', 'delivered', 'failed')
                           AND (?4 IS NULL OR modem IS NULL OR modem = ?4)
                         ORDER BY submitted_ms DESC LIMIT 1",
                        params![report.mr, report.recipient, since, report.modem],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let matched = match matched {
                    Some(found) => Some(found),
                    None => tx
                        .query_row(
                            "SELECT p.message_id, p.seq, p.state FROM outbound_part p
                             JOIN outbound o ON o.id = p.message_id
                             WHERE p.recipient = ?1 AND p.submitted_ms >= ?2
                               AND p.state = 'unknown' AND o.state = 'unknown'
                               AND (?3 IS NULL OR p.modem IS NULL OR p.modem = ?3)
                             ORDER BY p.submitted_ms DESC LIMIT 1",
                            params![report.recipient, since, report.modem],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )
                        .optional()?,
                };
                tx.execute("DELETE FROM parked_report WHERE received_ms < ?1", [since])?;
                let Some((id, seq, state)) = matched else {
                    // A report the network delivers twice is parked twice; applying it twice
                    // changes nothing.
                    tx.execute(
                        "INSERT INTO parked_report (mr, recipient, status, received_ms, modem)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            report.mr,
                            report.recipient,
                            report.status,
                            report.now_ms,
                            report.modem
                        ],
                    )?;
                    return Ok(ReportOutcome::Unmatched);
                };
                record_report(
                    tx,
                    (id, seq),
                    state,
                    report.mr,
                    report.status,
                    report.now_ms,
                )?;
                let m_id: String =
                    tx.query_row("SELECT m_id FROM outbound WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })?;
                let events = settle(tx, id, report.now_ms)?;
                Ok(ReportOutcome::Matched { m_id, events })
            })
            .await?;
        if matches!(&outcome, ReportOutcome::Matched { events, .. } if !events.is_empty()) {
            self.signals.events.notify_one();
        }
        Ok(outcome)
    }

    /// The state of an outbound message by mId (tests, `smsgate status`).
    /// Whether `text` was queued for `contact_id` by smsgate itself (`smsgate send`, the
    /// dashboard, a call's auto-reply) at or after `since_ms`: a rule such as "once per caller per
    /// hour" then holds across restarts, since it is read from the outbox, not from memory.
    pub async fn sent_by_smsgate_since(
        &self,
        contact_id: &str,
        text: &str,
        since_ms: i64,
    ) -> Result<bool, StoreError> {
        let (contact_id, text) = (contact_id.to_owned(), text.to_owned());
        self.call(move |conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM outbound
                     WHERE contact_id = ?1 AND source = ?2 AND text = ?3 AND created_ms >= ?4)",
                params![contact_id, Source::Cli.as_str(), text, since_ms],
                |r| r.get(0),
            )?)
        })
        .await
    }

    pub async fn outbound_state(&self, m_id: &str) -> Result<Option<OutboundView>, StoreError> {
        let m_id = m_id.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT state, attempts, parts, last_error, status_message, concat_reference
                     FROM outbound WHERE m_id = ?1",
                    [m_id],
                    |r| {
                        Ok(OutboundView {
                            state: r.get(0)?,
                            attempts: r.get(1)?,
                            parts: r.get(2)?,
                            last_error: r.get(3)?,
                            status_message: r.get(4)?,
                            concat_reference: r.get(5)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }
}

/// An encoding column, by its name.
fn encoding(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Encoding> {
    row.get::<_, String>(index)?.parse().map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// A read-only view of one outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundView {
    pub state: OutboundState,
    pub attempts: u32,
    pub parts: u32,
    pub last_error: Option<String>,
    pub status_message: Option<String>,
    pub concat_reference: Option<u16>,
}
