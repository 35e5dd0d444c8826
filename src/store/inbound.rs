//! Inbound parts and the messages assembled from them (DESIGN.md §1 "Inbound").
//!
//! Every part is committed under its dedupe key before the caller deletes the SIM copy, so a
//! re-read after a crash (or a duplicate notification) finds its row and changes nothing. A
//! multipart message collects its parts here, in any order and across restarts; when the last
//! one arrives — or the reassembly timeout passes — the message is written and, in the same
//! transaction, its respond.io `message` event is enqueued.
//!
//! The keys, the sender normalisation and the forwarding rule are decided by
//! [`crate::inbox`]; this file only applies them.

use rusqlite::{Connection, OptionalExtension, params};

use super::events::enqueue_event;
use super::identity::stable_id;
use super::split::split_text;
use super::{Store, StoreError, next_counter};
use crate::wire::{Event, MAX_TEXT};

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
    /// How long after a quick-reply menu a bare number still answers it.
    pub quick_reply_window_ms: i64,
}

/// What committing a part did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// This part was already stored (a re-read): nothing changed.
    Duplicate,
    /// Stored; the message still waits for parts.
    Waiting { received: u8, total: u8 },
    /// Stored and the message is complete (and its event enqueued if `forwarded`).
    Complete {
        m_id: String,
        forwarded: bool,
        text: String,
    },
}

/// What an SMS with no text at all is forwarded as: respond.io refuses an empty `text`.
pub const EMPTY_SMS: &str = "(empty SMS)";

/// The visible marker for a part that never arrived.
pub fn gap_marker(sequence: u8, total: u8) -> String {
    format!("[part {sequence} of {total} missing]")
}

/// The quick-reply answer a bare number stands for, if the contact was sent a menu recently.
fn map_quick_reply(
    tx: &Connection,
    contact_id: &str,
    text: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<Option<String>, StoreError> {
    let answer = text.trim();
    if answer.is_empty() || answer.len() > 2 || !answer.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let Ok(choice) = answer.parse::<usize>() else {
        return Ok(None);
    };
    let menu: Option<(String, i64)> = tx
        .query_row(
            "SELECT replies, sent_ms FROM quick_reply_menu WHERE contact_id = ?1",
            [contact_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((replies, sent_ms)) = menu else {
        return Ok(None);
    };
    if now_ms > sent_ms.saturating_add(window_ms) {
        return Ok(None);
    }
    let replies: Vec<String> = serde_json::from_str(&replies)?;
    Ok(choice
        .checked_sub(1)
        .and_then(|index| replies.get(index))
        .cloned())
}

/// Writes the message row's final text (whole) and enqueues its event: several `message`
/// events, in order, when the text is longer than respond.io takes in one (see `split`), each
/// with its own mId derived from the message's (`<mId>-1`, `<mId>-2` …).
#[allow(clippy::too_many_arguments)]
fn finish(
    tx: &Connection,
    id: i64,
    m_id: &str,
    contact_id: &str,
    forward: bool,
    text: String,
    timestamp_ms: i64,
    state: &str,
    now_ms: i64,
    quick_reply_window_ms: i64,
) -> Result<String, StoreError> {
    let mut text =
        map_quick_reply(tx, contact_id, &text, now_ms, quick_reply_window_ms)?.unwrap_or(text);
    if text.trim().is_empty() {
        text = EMPTY_SMS.to_owned();
    }
    tx.execute(
        "UPDATE inbound SET m_id = ?2, state = ?3, text = ?4, timestamp_ms = ?5, finished_ms = ?6
         WHERE id = ?1",
        params![id, m_id, state, text, timestamp_ms, now_ms],
    )?;
    next_counter(tx, "total_received")?;
    if forward {
        let pieces = split_text(&text, MAX_TEXT);
        let several = pieces.len() > 1;
        for (index, piece) in pieces.into_iter().enumerate() {
            let piece_id = if several {
                format!("{m_id}-{}", index + 1)
            } else {
                m_id.to_owned()
            };
            let event = Event::message(piece_id, timestamp_ms, piece);
            enqueue_event(tx, contact_id, &event, now_ms)?;
        }
    }
    Ok(text)
}

/// Assembles a multipart message from the parts it has, marking gaps, and finishes it.
fn assemble(
    tx: &Connection,
    id: i64,
    state: &str,
    now_ms: i64,
    quick_reply_window_ms: i64,
) -> Result<(String, bool, String), StoreError> {
    let (contact_id, forward, group_key, total): (String, bool, String, u8) = tx.query_row(
        "SELECT contact_id, forward, group_key, total FROM inbound WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let parts: Vec<(u8, String, i64, String)> = tx
        .prepare(
            "SELECT seq, text, timestamp_ms, part_key FROM inbound_part
             WHERE message_id = ?1 ORDER BY seq",
        )?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut text = String::new();
    for sequence in 1..=total {
        match parts.iter().find(|(seq, ..)| *seq == sequence) {
            Some((_, part_text, ..)) => text.push_str(part_text),
            None => text.push_str(&gap_marker(sequence, total)),
        }
    }
    // Identity of the message: its group and its lowest part present, both fixed once the
    // parts are in, so a replay produces the same mId.
    let (_, _, timestamp_ms, first_key) = parts
        .first()
        .cloned()
        .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))?;
    let m_id = stable_id("sms-", &[group_key.as_bytes(), first_key.as_bytes()]);
    let text = finish(
        tx,
        id,
        &m_id,
        &contact_id,
        forward,
        text,
        timestamp_ms,
        state,
        now_ms,
        quick_reply_window_ms,
    )?;
    Ok((m_id, forward, text))
}

impl Store {
    /// Commits one received part (returns once it is durable) and, when it completes its
    /// message, the message and its respond.io event in the same transaction.
    pub async fn receive_part(&self, part: NewInboundPart) -> Result<InboundOutcome, StoreError> {
        let outcome = self.write(move |tx| receive(tx, part)).await?;
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

    /// Forwards every multipart message whose first part arrived at or before `cutoff_ms`
    /// and that is still incomplete, with a gap marker for each missing part. Returns their
    /// mIds.
    pub async fn flush_partials(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        quick_reply_window_ms: i64,
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
                    let (m_id, ..) = assemble(tx, id, "partial", now_ms, quick_reply_window_ms)?;
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

    /// An inbound message by mId: (contact ID, text, state, forwarded).
    pub async fn inbound_message(
        &self,
        m_id: &str,
    ) -> Result<Option<(String, String, String, bool)>, StoreError> {
        let m_id = m_id.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT contact_id, coalesce(text, ''), state, forward FROM inbound
                     WHERE m_id = ?1",
                    [m_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?)
        })
        .await
    }
}

fn receive(tx: &Connection, part: NewInboundPart) -> Result<InboundOutcome, StoreError> {
    let known: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM inbound_part WHERE part_key = ?1)",
        [&part.part_key],
        |r| r.get(0),
    )?;
    if known {
        return Ok(InboundOutcome::Duplicate);
    }
    let Some(group) = &part.group else {
        tx.execute(
            "INSERT INTO inbound (contact_id, forward, total, state, first_part_ms)
             VALUES (?1, ?2, 1, 'assembling', ?3)",
            params![part.contact_id, part.forward, part.now_ms],
        )?;
        let id = tx.last_insert_rowid();
        insert_part(tx, id, 1, &part)?;
        let text = finish(
            tx,
            id,
            &part.part_key,
            &part.contact_id,
            part.forward,
            part.text.clone(),
            part.timestamp_ms,
            "complete",
            part.now_ms,
            part.quick_reply_window_ms,
        )?;
        return Ok(InboundOutcome::Complete {
            m_id: part.part_key,
            forwarded: part.forward,
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
                 VALUES (?1, ?2, ?3, ?4, 'assembling', ?5)",
                params![
                    part.contact_id,
                    part.forward,
                    group.group_key,
                    group.total,
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
    let (m_id, forwarded, text) =
        assemble(tx, id, "complete", part.now_ms, part.quick_reply_window_ms)?;
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
        "INSERT INTO inbound_part (part_key, message_id, seq, text, timestamp_ms, pdu, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            part.part_key,
            message_id,
            sequence,
            part.text,
            part.timestamp_ms,
            part.pdu,
            part.now_ms
        ],
    )?;
    Ok(())
}
