//! Inbound parts and the messages assembled from them (DESIGN.md §1 "Inbound").
//!
//! Every part is committed under its dedupe key before the caller deletes the SIM copy, so a
//! re-read after a crash (or a duplicate notification) finds its row and changes nothing. A
//! multipart message collects its parts here, in any order and across restarts; when the last
//! one arrives — or the reassembly timeout passes — the message is finished and, in the same
//! transaction, its respond.io events are enqueued.
//!
//! This file stores and moves rows. What a finished message becomes (its mId, its text with
//! the gaps marked, a quick-reply answer, the events) is decided by the rules the caller
//! passes in ([`FinishMessage`], implemented by [`crate::inbox`]), which run inside the
//! transaction that completes the message, so the message and its events commit together. The
//! keys, the sender normalisation and the forwarding rule are the inbox's too.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::events::enqueue_event;
use super::state::InboundState;
use super::{Store, StoreError, next_counter};
use crate::wire::Event;

/// Where a part sits in its concatenated message (3GPP TS 23.040 §9.2.3.24.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartGroup {
    /// The identity of the concatenated message: sender, reference and part count.
    pub group_key: String,
    /// 1-based.
    pub sequence: u8,
    pub total: u8,
}

/// One received part, ready to commit.
#[derive(Debug, Clone)]
pub struct NewInboundPart {
    /// Dedupe key of this part; for a single-part SMS also its mId.
    pub part_key: String,
    /// The contact ID events carry (normalised sender).
    pub contact_id: String,
    /// `false`: keep locally, never send to respond.io (the alphanumeric-sender rule).
    pub forward: bool,
    /// `None` for a single-part SMS.
    pub group: Option<PartGroup>,
    pub text: String,
    /// The service-centre timestamp (SCTS), Unix ms.
    pub timestamp_ms: i64,
    /// The raw PDU as read, kept for diagnosis.
    pub pdu: Vec<u8>,
    pub now_ms: i64,
    /// The SIM it arrived on (`None`: not recorded).
    pub modem: Option<String>,
    /// Sticky routing: bind the sender to `modem` in the same transaction, and move their
    /// queued messages there (only a sender with a phone number, `forward`).
    pub bind_sender: bool,
}

/// One stored part of a message being finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// 1-based.
    pub sequence: u8,
    pub text: String,
    pub part_key: String,
    /// Its service-centre timestamp, Unix ms.
    pub timestamp_ms: i64,
}

/// A message whose parts are in (or whose reassembly timed out), as [`FinishMessage`] sees it
/// inside the transaction that finishes it.
pub struct Assembled<'a> {
    pub contact_id: &'a str,
    pub forward: bool,
    /// The identity of the concatenated message; `None` for a single-part SMS.
    pub group_key: Option<&'a str>,
    pub total: u8,
    /// The parts present, in sequence order; never empty.
    pub parts: &'a [StoredPart],
    /// `false`: forwarded after the reassembly timeout with parts missing.
    pub complete: bool,
    tx: &'a Connection,
}

/// The quick-reply menu last sent to a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub replies: Vec<String>,
    pub sent_ms: i64,
}

impl Assembled<'_> {
    /// The quick-reply menu last sent to this contact, if any (read only when asked).
    pub fn menu(&self) -> Result<Option<Menu>, StoreError> {
        let menu: Option<(String, i64)> = self
            .tx
            .query_row(
                "SELECT replies, sent_ms FROM quick_reply_menu WHERE contact_id = ?1",
                [self.contact_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        menu.map(|(replies, sent_ms)| {
            Ok(Menu {
                replies: serde_json::from_str(&replies)?,
                sent_ms,
            })
        })
        .transpose()
    }
}

/// What a finished message is: its mId, the text kept for it, and its events, in order (none
/// for a message kept locally).
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub m_id: String,
    pub text: String,
    pub events: Vec<Event>,
}

/// The rules that finish an inbound message ([`crate::inbox`] has them); the store runs them
/// in the transaction that completes the message.
pub trait FinishMessage: Send + Sync + 'static {
    fn finish(&self, message: &Assembled<'_>, now_ms: i64) -> Result<Finished, StoreError>;
}

/// What committing a part did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// This part was already stored (a re-read): nothing changed.
    Duplicate,
    /// Stored; the message still waits for parts.
    Waiting { received: u8, total: u8 },
    /// Stored and the message is complete (and its events enqueued if `forwarded`).
    Complete {
        m_id: String,
        forwarded: bool,
        text: String,
    },
}

/// Finishes message `id` from the parts it has: the rules decide, this writes the row and
/// enqueues the events. Returns (mId, forwarded, text).
fn finish(
    tx: &Connection,
    id: i64,
    state: InboundState,
    now_ms: i64,
    rules: &dyn FinishMessage,
) -> Result<(String, bool, String), StoreError> {
    let (contact_id, forward, group_key, total): (String, bool, Option<String>, u8) = tx
        .query_row(
            "SELECT contact_id, forward, group_key, total FROM inbound WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
    let parts: Vec<StoredPart> = tx
        .prepare(
            "SELECT seq, text, part_key, timestamp_ms FROM inbound_part
             WHERE message_id = ?1 ORDER BY seq",
        )?
        .query_map([id], |r| {
            Ok(StoredPart {
                sequence: r.get(0)?,
                text: r.get(1)?,
                part_key: r.get(2)?,
                timestamp_ms: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    // The message carries the time stamp of its lowest part present.
    let timestamp_ms = parts
        .first()
        .map(|part| part.timestamp_ms)
        .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))?;
    let finished = rules.finish(
        &Assembled {
            contact_id: &contact_id,
            forward,
            group_key: group_key.as_deref(),
            total,
            parts: &parts,
            complete: state == InboundState::Complete,
            tx,
        },
        now_ms,
    )?;
    tx.execute(
        "UPDATE inbound SET m_id = ?2, state = ?3, text = ?4, timestamp_ms = ?5, finished_ms = ?6
         WHERE id = ?1",
        params![
            id,
            finished.m_id,
            state,
            finished.text,
            timestamp_ms,
            now_ms
        ],
    )?;
    next_counter(tx, "total_received")?;
    for event in &finished.events {
        enqueue_event(tx, &contact_id, event, now_ms)?;
    }
    Ok((finished.m_id, forward, finished.text))
}

impl Store {
    /// Commits one received part (returns once it is durable) and, when it completes its
    /// message, the message and its respond.io events in the same transaction.
    pub async fn receive_part(
        &self,
        part: NewInboundPart,
        rules: Arc<dyn FinishMessage>,
    ) -> Result<InboundOutcome, StoreError> {
        let outcome = self.write(move |tx| receive(tx, part, &*rules)).await?;
        if matches!(
            outcome,
            InboundOutcome::Complete {
                forwarded: true,
                ..
            }
        ) {
            self.signals.events.notify_one();
        }
        Ok(outcome)
    }

    /// Finishes every multipart message whose first part arrived at or before `cutoff_ms`
    /// and that is still incomplete, with the parts it has. Returns their mIds.
    pub async fn flush_partials(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        rules: Arc<dyn FinishMessage>,
    ) -> Result<Vec<String>, StoreError> {
        let flushed = self
            .write(move |tx| {
                let ids: Vec<i64> = tx
                    .prepare(
                        "SELECT id FROM inbound WHERE state = 'assembling'
                         AND first_part_ms <= ?1 ORDER BY id",
                    )?
                    .query_map([cutoff_ms], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut flushed = Vec::new();
                for id in ids {
                    let (m_id, ..) = finish(tx, id, InboundState::Partial, now_ms, &*rules)?;
                    flushed.push(m_id);
                }
                Ok(flushed)
            })
            .await?;
        if !flushed.is_empty() {
            self.signals.events.notify_one();
        }
        Ok(flushed)
    }

    /// When the oldest incomplete multipart message arrived (to schedule the next flush).
    pub async fn oldest_partial_ms(&self) -> Result<Option<i64>, StoreError> {
        self.call(|conn| {
            Ok(conn.query_row(
                "SELECT min(first_part_ms) FROM inbound WHERE state = 'assembling'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }
}

fn receive(
    tx: &Connection,
    part: NewInboundPart,
    rules: &dyn FinishMessage,
) -> Result<InboundOutcome, StoreError> {
    let known: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM inbound_part WHERE part_key = ?1)",
        [&part.part_key],
        |r| r.get(0),
    )?;
    if known {
        return Ok(InboundOutcome::Duplicate);
    }
    if let (Some(modem), true, true) = (&part.modem, part.bind_sender, part.forward) {
        let moved = super::pool::bind(
            tx,
            &part.contact_id,
            modem,
            super::pool::BindReason::Inbound,
            part.now_ms,
        )?;
        if moved > 0 {
            tracing::info!(contact = %part.contact_id, %modem, moved,
                "the contact wrote in on another SIM; their queued messages follow");
        }
    }
    let Some(group) = &part.group else {
        tx.execute(
            "INSERT INTO inbound (contact_id, forward, total, state, first_part_ms)
             VALUES (?1, ?2, 1, ?3, ?4)",
            params![
                part.contact_id,
                part.forward,
                InboundState::Assembling,
                part.now_ms
            ],
        )?;
        let id = tx.last_insert_rowid();
        insert_part(tx, id, 1, &part)?;
        let (m_id, forwarded, text) = finish(tx, id, InboundState::Complete, part.now_ms, rules)?;
        return Ok(InboundOutcome::Complete {
            m_id,
            forwarded,
            text,
        });
    };
    // The open message this part belongs to: same group, and not already holding this
    // sequence number (which would mean the sender reused the reference for a new message).
    let open: Option<i64> = tx
        .query_row(
            "SELECT id FROM inbound i WHERE group_key = ?1 AND state = 'assembling'
               AND NOT EXISTS (SELECT 1 FROM inbound_part p WHERE p.message_id = i.id
                               AND p.seq = ?2)
             ORDER BY id LIMIT 1",
            params![group.group_key, group.sequence],
            |r| r.get(0),
        )
        .optional()?;
    let id = match open {
        Some(id) => id,
        None => {
            tx.execute(
                "INSERT INTO inbound (contact_id, forward, group_key, total, state, first_part_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    part.contact_id,
                    part.forward,
                    group.group_key,
                    group.total,
                    InboundState::Assembling,
                    part.now_ms
                ],
            )?;
            tx.last_insert_rowid()
        }
    };
    insert_part(tx, id, group.sequence, &part)?;
    let received: u8 = tx.query_row(
        "SELECT count(*) FROM inbound_part WHERE message_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if received < group.total {
        return Ok(InboundOutcome::Waiting {
            received,
            total: group.total,
        });
    }
    let (m_id, forwarded, text) = finish(tx, id, InboundState::Complete, part.now_ms, rules)?;
    Ok(InboundOutcome::Complete {
        m_id,
        forwarded,
        text,
    })
}

fn insert_part(
    tx: &Connection,
    message_id: i64,
    sequence: u8,
    part: &NewInboundPart,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO inbound_part (part_key, message_id, seq, text, timestamp_ms, pdu, received_ms,
                                   modem)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            part.part_key,
            message_id,
            sequence,
            part.text,
            part.timestamp_ms,
            part.pdu,
            part.now_ms,
            part.modem
        ],
    )?;
    Ok(())
}
