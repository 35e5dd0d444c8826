//! The SQLite store as the webhook worker's [`EventQueue`]: the queue lives in the store, the
//! knowledge of how respond.io drains it lives here (the store names no layer above it).

use super::worker::EventQueue;
use crate::store::{EventBatch, Store, StoreError};

/// The webhook worker drains this queue.
impl EventQueue for Store {
    type Error = StoreError;

    async fn next_event_batch(
        &self,
        now_ms: i64,
        max_events: usize,
        busy: &[String],
    ) -> Result<Option<EventBatch>, StoreError> {
        Store::next_event_batch_except(self, now_ms, max_events, busy).await
    }

    async fn events_delivered(&self, ids: &[i64], now_ms: i64) -> Result<(), StoreError> {
        Store::events_delivered(self, ids, now_ms).await
    }

    async fn events_retry(
        &self,
        ids: &[i64],
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        Store::events_retry(self, ids, next_attempt_ms, error).await
    }

    async fn events_dead(&self, ids: &[i64], error: &str) -> Result<(), StoreError> {
        Store::events_dead(self, ids, error).await
    }
}
