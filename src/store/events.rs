//! The respond.io webhook queue: events wait here until respond.io answered 2xx.
//!
//! Order is per contact: [`Store::next_event_batch`] only hands out a contact's events from its
//! oldest pending one on, so a `message_status` never overtakes its `message`. Different
//! contacts do not wait for each other. Dead events (parked after too long or a 4xx) no longer
//! hold their contact back; `smsgate status --retry-dead` makes them pending again.
//!
//! This file does not send anything; the worker in [`crate::respond`] does.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{Store, StoreError, next_counter};

/// Events of one contact to post in one request, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    pub contact_id: String,
    pub event_ids: Vec<i64>,
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

/// Appends one event to the queue inside the caller's transaction, due at once.
pub(crate) fn enqueue_event(
    tx: &Connection,
    contact_id: &str,
    event: &Value,
    now_ms: i64,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO event (contact_id, body, state, next_attempt_ms, created_ms, enqueued_ms)
         VALUES (?1, ?2, 'pending', ?3, ?3, ?3)",
        params![contact_id, event.to_string(), now_ms],
    )?;
    Ok(tx.last_insert_rowid())
}

fn id_list(ids: &[i64]) -> String {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    list.join(",")
}

impl Store {
    /// The next due batch: the oldest pending events of ONE contact whose head-of-line event is
    /// due. Among due contacts, the one whose head event is oldest goes first.
    pub async fn next_event_batch(
        &self,
        now_ms: i64,
        max_events: usize,
    ) -> Result<Option<EventBatch>, StoreError> {
        let max_events = max_events.max(1) as i64;
        self.call(move |conn| {
            let head: Option<(i64, String, i64, i64)> = conn
                .query_row(
                    "SELECT e.id, e.contact_id, e.attempts, e.enqueued_ms
                     FROM event e INDEXED BY event_queue
                     WHERE e.state = 'pending' AND e.next_attempt_ms <= ?1
                       AND NOT EXISTS (SELECT 1 FROM event p
                           WHERE p.state = 'pending' AND p.contact_id = e.contact_id
                             AND p.id < e.id)
                     ORDER BY e.id LIMIT 1",
                    [now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((head_id, contact_id, attempts, _)) = head else {
                return Ok(None);
            };
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

    /// Enqueues an arbitrary event (tests and tools); the pipelines enqueue theirs atomically
    /// with the rows they describe.
    pub async fn enqueue_event(
        &self,
        contact_id: &str,
        event: Value,
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
    use serde_json::json;

    async fn store() -> Store {
        Store::open_in_memory().await.expect("open")
    }

    #[tokio::test]
    async fn batches_keep_per_contact_order() {
        let store = store().await;
        let a1 = store
            .enqueue_event("+1a", json!({"n": "a1"}), 10)
            .await
            .expect("a1");
        let b1 = store
            .enqueue_event("+1b", json!({"n": "b1"}), 11)
            .await
            .expect("b1");
        let a2 = store
            .enqueue_event("+1a", json!({"n": "a2"}), 12)
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
            .enqueue_event("+1a", json!({"n": 1}), 10)
            .await
            .expect("a1");
        let a2 = store
            .enqueue_event("+1a", json!({"n": 2}), 11)
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
}
