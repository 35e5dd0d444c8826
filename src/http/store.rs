//! The SQLite store as the HTTP API's [`Backend`]: `POST /message` commits through
//! `Store::enqueue_outbound`, and `/health` and `/metrics` read its figures.

use super::state::{Backend, BoxFuture};
use crate::store::{
    NewOutbound, OutboxStats, Store, StoreError, StoreStatus, Totals, WebhookStats,
};

impl Backend for Store {
    fn enqueue(&self, message: NewOutbound) -> BoxFuture<'_, Result<String, StoreError>> {
        Box::pin(self.enqueue_outbound(message))
    }

    fn outbox_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<OutboxStats, StoreError>> {
        Box::pin(Store::outbox_stats(self, now_ms))
    }

    fn webhook_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<WebhookStats, StoreError>> {
        Box::pin(Store::webhook_stats(self, now_ms))
    }

    fn status(&self) -> Option<StoreStatus> {
        Some(Store::status(self))
    }

    fn totals(&self) -> BoxFuture<'_, Result<Option<Totals>, StoreError>> {
        // Lifetime counters: they survive pruning, so they are true Prometheus counters.
        Box::pin(async move { Store::totals(self).await.map(Some) })
    }
}
