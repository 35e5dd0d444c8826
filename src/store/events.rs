//! The respond.io webhook queue: events wait here until respond.io answered 2xx.
//!
//! Order is per contact: [`Store::next_event_batch`] only hands out a contact's events from its
//! oldest pending one on, so a `message_status` never overtakes its `message`. Different
//! contacts do not wait for each other. Dead events (parked after too long or a 4xx) no longer
//! hold their contact back; `smsgate status --retry-dead` makes them pending again.
//!
//! Which contact goes next is decided by lanes ([`Lane`]): a contact with an inbound `message`
//! waiting goes before one with only a `message_echo`, which goes before one with only receipts
//! (`message_status`), so a broadcast's receipts never hold up what a person wrote. A contact
//! whose receipts are queued ahead of its own reply goes in the reply's lane, receipts first:
//! its order never changes. Contacts whose request is in flight are skipped (`busy`), so the
//! worker never has two requests for one contact at once.
//!
//! This file does not send anything; the worker in [`crate::respond`] does.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{Store, StoreError, next_counter};
use crate::wire::Event;

/// Events of one contact to post in one request, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    pub contact_id: String,
    pub event_ids: Vec<i64>,
    /// The events exactly as queued (each written from an [`Event`]), oldest first.
    pub events: Vec<Value>,
    /// Attempts already made for the head-of-line event.
    pub attempts: u32,
    /// When the oldest event of the batch was enqueued (or re-driven from dead).
    pub first_enqueued_ms: i64,
}

/// Figures for `/health`, `/metrics` and `smsgate status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebhookStats {
    pub pending: u64,
    pub oldest_pending_ms: Option<i64>,
    pub dead: u64,
    /// The most recent error of an event not yet delivered.
    pub last_error: Option<String>,
}

/// The lane of an event (the `event.lane` column): lower lanes go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// An inbound SMS (`message`): a person wrote it.
    Message = 0,
    /// An SMS sent outside respond.io (`message_echo`).
    Echo = 1,
    /// Receipts (`message_status`), and anything else.
    Status = 2,
}

impl Lane {
    /// The lane of an event.
    pub fn of(event: &Event) -> Self {
        match event {
            Event::Message { .. } => Self::Message,
            Event::MessageEcho { .. } => Self::Echo,
            Event::MessageStatus { .. } => Self::Status,
        }
    }
}

/// Appends one event to the queue inside the caller's transaction, due at once.
pub(crate) fn enqueue_event(
    tx: &Connection,
    contact_id: &str,
    event: &Event,
    now_ms: i64,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO event (contact_id, body, state, next_attempt_ms, created_ms, enqueued_ms, lane)
         VALUES (?1, ?2, 'pending', ?3, ?3, ?3, ?4)",
        params![
            contact_id,
            serde_json::to_string(event)?,
            now_ms,
            Lane::of(event) as i64
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn id_list(ids: &[i64]) -> String {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    list.join(",")
}

impl Store {
    /// The next due batch: the oldest pending events of ONE contact whose head-of-line event is
    /// due. Among due contacts, the lowest lane goes first, then the oldest event of that lane.
    pub async fn next_event_batch(
        &self,
        now_ms: i64,
        max_events: usize,
    ) -> Result<Option<EventBatch>, StoreError> {
        self.next_event_batch_except(now_ms, max_events, &[]).await
    }

    /// [`Store::next_event_batch`], skipping the contacts in `busy` (those with a request in
    /// flight).
    pub async fn next_event_batch_except(
        &self,
        now_ms: i64,
        max_events: usize,
        busy: &[String],
    ) -> Result<Option<EventBatch>, StoreError> {
        let max_events = max_events.max(1) as i64;
        let busy = serde_json::to_string(busy)?;
        self.call(move |conn| {
            // Walks pending events lane by lane, oldest first, and stops at the first whose
            // contact is free and whose head-of-line event is due. The contact's lane is thus
            // its lowest waiting lane, and its batch starts at its head, whatever that head is.
            let contact: Option<String> = conn
                .query_row(
                    "SELECT e.contact_id
                     FROM event e INDEXED BY event_lane
                     WHERE e.state = 'pending'
                       AND e.contact_id NOT IN (SELECT value FROM json_each(?2))
                       AND (SELECT h.next_attempt_ms FROM event h INDEXED BY event_pending
                            WHERE h.state = 'pending' AND h.contact_id = e.contact_id
                            ORDER BY h.id LIMIT 1) <= ?1
                     ORDER BY e.lane, e.id LIMIT 1",
                    params![now_ms, busy],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(contact_id) = contact else {
                return Ok(None);
            };
            let (head_id, attempts): (i64, i64) = conn.query_row(
                "SELECT id, attempts FROM event INDEXED BY event_pending
                 WHERE state = 'pending' AND contact_id = ?1 ORDER BY id LIMIT 1",
                [&contact_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut stmt = conn.prepare(
                "SELECT id, body, enqueued_ms FROM event
                 WHERE state = 'pending' AND contact_id = ?1 AND id >= ?2
                 ORDER BY id LIMIT ?3",
            )?;
            let mut batch = EventBatch {
                contact_id: contact_id.clone(),
                event_ids: Vec::new(),
                events: Vec::new(),
                attempts: attempts as u32,
                first_enqueued_ms: i64::MAX,
            };
            let rows = stmt.query_map(params![contact_id, head_id, max_events], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (id, body, enqueued_ms) = row?;
                batch.event_ids.push(id);
                batch.events.push(serde_json::from_str(&body)?);
                batch.first_enqueued_ms = batch.first_enqueued_ms.min(enqueued_ms);
            }
            Ok(Some(batch))
        })
        .await
    }

    /// respond.io accepted these events.
    pub async fn events_delivered(&self, ids: &[i64], now_ms: i64) -> Result<(), StoreError> {
        let list = id_list(ids);
        self.write(move |tx| {
            tx.execute(
                &format!(
                    "UPDATE event SET state = 'delivered', attempts = attempts + 1,
                     finished_ms = ?1 WHERE id IN ({list}) AND state = 'pending'"
                ),
                [now_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// A failed attempt: try again at `next_attempt_ms`.
    pub async fn events_retry(
        &self,
        ids: &[i64],
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let list = id_list(ids);
        let error = error.to_owned();
        self.write(move |tx| {
            let seq = next_counter(tx, "event_error")?;
            tx.execute(
                &format!(
                    "UPDATE event SET attempts = attempts + 1, next_attempt_ms = ?1,
                     last_error = ?2, error_seq = ?3
                     WHERE id IN ({list}) AND state = 'pending'"
                ),
                params![next_attempt_ms, error, seq],
            )?;
            Ok(())
        })
        .await
    }

    /// Parks these events as dead: counted, visible, re-drivable; they no longer block their
    /// contact's later events.
    pub async fn events_dead(&self, ids: &[i64], error: &str) -> Result<(), StoreError> {
        let list = id_list(ids);
        let error = error.to_owned();
        self.write(move |tx| {
            let seq = next_counter(tx, "event_error")?;
            tx.execute(
                &format!(
                    "UPDATE event SET state = 'dead', attempts = attempts + 1, last_error = ?1,
                     error_seq = ?2 WHERE id IN ({list}) AND state = 'pending'"
                ),
                params![error, seq],
            )?;
            Ok(())
        })
        .await
    }

    /// Makes every dead event pending again, due now, with a fresh age (so the worker's
    /// maximum age counts from the re-drive). Returns how many.
    pub async fn retry_dead_events(&self, now_ms: i64) -> Result<u64, StoreError> {
        let count = self
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE event SET state = 'pending', attempts = 0, next_attempt_ms = ?1,
                     enqueued_ms = ?1 WHERE state = 'dead'",
                    [now_ms],
                )? as u64)
            })
            .await?;
        if count > 0 {
            self.signals.events.notify_one();
        }
        Ok(count)
    }

    /// Queue figures. `now_ms` is accepted for symmetry with the other stats; ages are computed
    /// by the caller from `oldest_pending_ms`.
    pub async fn webhook_stats(&self, _now_ms: i64) -> Result<WebhookStats, StoreError> {
        self.call(|conn| {
            let (pending, oldest, dead): (i64, Option<i64>, i64) = conn.query_row(
                "SELECT coalesce(sum(state = 'pending'), 0),
                        min(CASE WHEN state = 'pending' THEN enqueued_ms END),
                        coalesce(sum(state = 'dead'), 0)
                 FROM event WHERE state IN ('pending', 'dead')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let last_error = conn
                .query_row(
                    "SELECT last_error FROM event
                     WHERE state IN ('pending', 'dead') AND last_error IS NOT NULL
                     ORDER BY error_seq DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(WebhookStats {
                pending: pending as u64,
                oldest_pending_ms: oldest,
                dead: dead as u64,
                last_error,
            })
        })
        .await
    }

    /// Enqueues one event on its own (tests and tools); the pipelines enqueue theirs
    /// atomically with the rows they describe.
    pub async fn enqueue_event(
        &self,
        contact_id: &str,
        event: Event,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let contact_id = contact_id.to_owned();
        let id = self
            .write(move |tx| enqueue_event(tx, &contact_id, &event, now_ms))
            .await?;
        self.signals.events.notify_one();
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::StatusValue;

    async fn store() -> Store {
        Store::open_in_memory().await.expect("open")
    }

    #[tokio::test]
    async fn batches_keep_per_contact_order() {
        let store = store().await;
        let a1 = store
            .enqueue_event("+1a", receipt("a1"), 10)
            .await
            .expect("a1");
        let b1 = store
            .enqueue_event("+1b", receipt("b1"), 11)
            .await
            .expect("b1");
        let a2 = store
            .enqueue_event("+1a", receipt("a2"), 12)
            .await
            .expect("a2");

        let batch = store
            .next_event_batch(100, 10)
            .await
            .expect("q")
            .expect("batch");
        assert_eq!(batch.contact_id, "+1a");
        assert_eq!(batch.event_ids, vec![a1, a2]);
        assert_eq!(batch.first_enqueued_ms, 10);

        // a1 fails and waits: a2 must not leave before it, but b1 may.
        store
            .events_retry(&[a1], 500, "HTTP 500")
            .await
            .expect("retry");
        let batch = store
            .next_event_batch(100, 10)
            .await
            .expect("q")
            .expect("batch");
        assert_eq!(batch.event_ids, vec![b1]);
        store.events_delivered(&[b1], 101).await.expect("delivered");
        assert_eq!(store.next_event_batch(100, 10).await.expect("q"), None);

        let batch = store
            .next_event_batch(500, 1)
            .await
            .expect("q")
            .expect("batch");
        assert_eq!(batch.event_ids, vec![a1], "max_events honoured");
        assert_eq!(batch.attempts, 1);
        let stats = store.webhook_stats(500).await.expect("stats");
        assert_eq!(stats.pending, 2);
        assert_eq!(stats.oldest_pending_ms, Some(10));
        assert_eq!(stats.last_error.as_deref(), Some("HTTP 500"));
    }

    #[tokio::test]
    async fn dead_events_unblock_and_can_be_redriven() {
        let store = store().await;
        let a1 = store
            .enqueue_event("+1a", receipt("1"), 10)
            .await
            .expect("a1");
        let a2 = store
            .enqueue_event("+1a", receipt("2"), 11)
            .await
            .expect("a2");
        store
            .events_dead(&[a1], "HTTP 400: bad payload")
            .await
            .expect("dead");
        let batch = store
            .next_event_batch(20, 10)
            .await
            .expect("q")
            .expect("batch");
        assert_eq!(batch.event_ids, vec![a2]);
        store.events_delivered(&[a2], 21).await.expect("delivered");
        let stats = store.webhook_stats(30).await.expect("stats");
        assert_eq!((stats.pending, stats.dead), (0, 1));
        assert_eq!(stats.last_error.as_deref(), Some("HTTP 400: bad payload"));

        assert_eq!(store.retry_dead_events(1000).await.expect("redrive"), 1);
        let batch = store
            .next_event_batch(1000, 10)
            .await
            .expect("q")
            .expect("batch");
        assert_eq!(batch.event_ids, vec![a1]);
        assert_eq!((batch.attempts, batch.first_enqueued_ms), (0, 1000));
    }

    /// A receipt, in the lane a bare JSON event also had.
    fn receipt(m_id: &str) -> Event {
        Event::status(m_id, 0, StatusValue::Sent)
    }

    fn event(kind: &str, n: i64) -> Event {
        let m_id = format!("m{n}");
        match kind {
            "message" => Event::message(m_id, n, "text"),
            "message_echo" => Event::echo(m_id, n, "text"),
            _ => Event::status(m_id, n, StatusValue::Sent),
        }
    }

    /// The contacts of the batches in the order the queue hands them out, each delivered at
    /// once.
    async fn drain(store: &Store) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        while let Some(batch) = store.next_event_batch(1_000, 10).await.expect("q") {
            store
                .events_delivered(&batch.event_ids, 1_000)
                .await
                .expect("delivered");
            let kinds = batch
                .events
                .iter()
                .map(|e| e["type"].as_str().unwrap_or("?").to_owned())
                .collect();
            out.push((batch.contact_id, kinds));
        }
        out
    }

    #[tokio::test]
    async fn a_reply_goes_before_receipts_and_echoes_of_other_contacts() {
        let store = store().await;
        for n in 0..5 {
            store
                .enqueue_event(&format!("+1s{n}"), event("message_status", n), n)
                .await
                .expect("status");
        }
        store
            .enqueue_event("+1e", event("message_echo", 10), 10)
            .await
            .expect("echo");
        store
            .enqueue_event("+1m", event("message", 11), 11)
            .await
            .expect("message");
        let order: Vec<String> = drain(&store).await.into_iter().map(|(c, _)| c).collect();
        assert_eq!(
            order,
            ["+1m", "+1e", "+1s0", "+1s1", "+1s2", "+1s3", "+1s4"]
        );
    }

    #[tokio::test]
    async fn a_contact_keeps_its_order_and_its_receipts_ride_with_its_reply() {
        let store = store().await;
        store
            .enqueue_event("+1x", event("message_status", 1), 1)
            .await
            .expect("x sent");
        store
            .enqueue_event("+1y", event("message_status", 2), 2)
            .await
            .expect("y sent");
        store
            .enqueue_event("+1x", event("message", 3), 3)
            .await
            .expect("x reply");
        store
            .enqueue_event("+1z", event("message", 4), 4)
            .await
            .expect("z message");
        assert_eq!(
            drain(&store).await,
            [
                (
                    "+1x".to_owned(),
                    vec!["message_status".to_owned(), "message".to_owned()]
                ),
                ("+1z".to_owned(), vec!["message".to_owned()]),
                ("+1y".to_owned(), vec!["message_status".to_owned()]),
            ]
        );
    }

    #[tokio::test]
    async fn busy_contacts_and_waiting_heads_are_skipped() {
        let store = store().await;
        let a1 = store
            .enqueue_event("+1a", event("message", 1), 1)
            .await
            .expect("a1");
        store
            .enqueue_event("+1b", event("message_status", 2), 2)
            .await
            .expect("b1");
        let c1 = store
            .enqueue_event("+1c", event("message_status", 3), 3)
            .await
            .expect("c1");
        store
            .enqueue_event("+1c", event("message", 4), 4)
            .await
            .expect("c2");
        let busy = ["+1a".to_owned()];
        let batch = store
            .next_event_batch_except(100, 10, &busy)
            .await
            .expect("q")
            .expect("batch");
        assert_eq!(
            batch.contact_id, "+1c",
            "a is busy; c has a message waiting"
        );
        assert_eq!(batch.event_ids[0], c1, "c's batch starts at its head");
        // c's head waits for a retry: its later message must not leave before it.
        store
            .events_retry(&[c1], 500, "HTTP 503")
            .await
            .expect("retry");
        let batch = store
            .next_event_batch_except(100, 10, &busy)
            .await
            .expect("q")
            .expect("batch");
        assert_eq!(batch.contact_id, "+1b");
        let busy = ["+1a".to_owned(), "+1b".to_owned()];
        assert_eq!(
            store
                .next_event_batch_except(100, 10, &busy)
                .await
                .expect("q"),
            None
        );
        let batch = store
            .next_event_batch(100, 10)
            .await
            .expect("q")
            .expect("batch");
        assert_eq!(batch.event_ids, vec![a1]);
    }

    #[tokio::test]
    async fn an_older_queue_gets_its_lanes_when_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let conn = Connection::open(&path).expect("raw open");
        for (_, sql) in &super::super::MIGRATIONS[..2] {
            conn.execute_batch(sql).expect("older schema");
        }
        conn.pragma_update(None, "user_version", 2)
            .expect("version");
        for (id, contact, body) in [
            (1, "+1s", event("message_status", 1)),
            (2, "+1e", event("message_echo", 2)),
            (3, "+1m", event("message", 3)),
        ] {
            conn.execute(
                "INSERT INTO event (id, contact_id, body, state, next_attempt_ms, created_ms,
                 enqueued_ms) VALUES (?1, ?2, ?3, 'pending', 0, 0, 0)",
                params![id, contact, serde_json::to_string(&body).expect("json")],
            )
            .expect("old event");
        }
        drop(conn);
        let store = Store::open(&path).await.expect("migrates");
        let order: Vec<String> = drain(&store).await.into_iter().map(|(c, _)| c).collect();
        assert_eq!(order, ["+1m", "+1e", "+1s"]);
    }
}
