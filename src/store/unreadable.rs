//! SMS and status reports that could not be decoded, even leniently: kept as the modem
//! printed them, with where they were and why they could not be read, before the caller
//! deletes the SIM copy (a bad SMS must not fill the storage and block every later one).
//!
//! When the inbox decides to tell respond.io (the sender is readable and the rule allows it),
//! the placeholder `message` event is enqueued in the same transaction as the row. Which text,
//! which contact and whether to forward are decided by [`crate::inbox`]; this file applies them.

use rusqlite::{Connection, OptionalExtension, params};

use super::events::enqueue_event;
use super::{Store, StoreError, next_counter};
use crate::wire::Event;

/// What an unreadable PDU was, as far as can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnreadableKind {
    Sms,
    StatusReport,
}

impl UnreadableKind {
    fn as_str(self) -> &'static str {
        match self {
            UnreadableKind::Sms => "sms",
            UnreadableKind::StatusReport => "status_report",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "status_report" {
            UnreadableKind::StatusReport
        } else {
            UnreadableKind::Sms
        }
    }
}

/// The placeholder `message` event telling respond.io that the contact wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Placeholder {
    pub contact_id: String,
    pub event: Event,
}

/// One unreadable PDU, ready to commit.
#[derive(Debug, Clone)]
pub struct NewUnreadable {
    /// Deduplicates re-reads of the same PDU (a failed delete, a sweep).
    pub pdu_key: String,
    pub kind: UnreadableKind,
    /// The PDU text as the modem printed it.
    pub pdu: String,
    /// TP-OA as the PDU states it, when it could be read.
    pub sender: Option<String>,
    /// The contact the sender maps to, when it does.
    pub contact_id: Option<String>,
    /// `SM:3`, `routed` …
    pub slot: String,
    pub reason: String,
    /// The message to forward, if any.
    pub placeholder: Option<Placeholder>,
    pub now_ms: i64,
}

/// What committing an unreadable PDU did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnreadableOutcome {
    /// Committed (and its placeholder enqueued, when it has an mId).
    Kept { m_id: Option<String> },
    /// The same PDU was kept before: nothing changed.
    Duplicate,
}

/// One kept PDU, for `smsgate status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableRow {
    pub received_ms: i64,
    pub kind: UnreadableKind,
    pub pdu: String,
    pub sender: Option<String>,
    pub slot: String,
    pub reason: String,
    pub forwarded: bool,
}

impl Store {
    /// Commits an unreadable PDU (returns once it is durable) and, when it carries a
    /// placeholder, the placeholder's `message` event in the same transaction.
    pub async fn keep_unreadable(
        &self,
        record: NewUnreadable,
    ) -> Result<UnreadableOutcome, StoreError> {
        let outcome = self.write(move |tx| keep(tx, record)).await?;
        if matches!(outcome, UnreadableOutcome::Kept { m_id: Some(_) }) {
            self.signals.events.notify_one();
        }
        Ok(outcome)
    }

    /// How many unreadable PDUs are kept, and the latest `limit` of them, newest first.
    pub async fn unreadable(&self, limit: u32) -> Result<(u64, Vec<UnreadableRow>), StoreError> {
        self.call(move |conn| {
            let total: i64 = conn.query_row("SELECT count(*) FROM unreadable", [], |r| r.get(0))?;
            let rows = conn
                .prepare(
                    "SELECT received_ms, kind, pdu, sender, slot, reason, forwarded
                     FROM unreadable ORDER BY received_ms DESC, id DESC LIMIT ?1",
                )?
                .query_map([limit], |r| {
                    Ok(UnreadableRow {
                        received_ms: r.get(0)?,
                        kind: UnreadableKind::parse(&r.get::<_, String>(1)?),
                        pdu: r.get(2)?,
                        sender: r.get(3)?,
                        slot: r.get(4)?,
                        reason: r.get(5)?,
                        forwarded: r.get(6)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok((total as u64, rows))
        })
        .await
    }
}

fn keep(tx: &Connection, record: NewUnreadable) -> Result<UnreadableOutcome, StoreError> {
    let known: Option<i64> = tx
        .query_row(
            "SELECT id FROM unreadable WHERE pdu_key = ?1",
            [&record.pdu_key],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_some() {
        return Ok(UnreadableOutcome::Duplicate);
    }
    let m_id = record
        .placeholder
        .as_ref()
        .map(|placeholder| placeholder.event.m_id().to_owned());
    tx.execute(
        "INSERT INTO unreadable (pdu_key, kind, pdu, sender, contact_id, slot, reason,
                                 received_ms, forwarded, m_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            record.pdu_key,
            record.kind.as_str(),
            record.pdu,
            record.sender,
            record.contact_id,
            record.slot,
            record.reason,
            record.now_ms,
            m_id.is_some(),
            m_id,
        ],
    )?;
    next_counter(tx, "total_unreadable")?;
    if let Some(placeholder) = &record.placeholder {
        enqueue_event(
            tx,
            &placeholder.contact_id,
            &placeholder.event,
            record.now_ms,
        )?;
    }
    Ok(UnreadableOutcome::Kept { m_id })
}
