//! The SQLite store as the HTTP API's [`Outbox`]: `POST /message` commits through
//! `Store::enqueue_outbound` (source `Respond`), and `/health` and `/metrics` read its figures.

use super::state::{
    BacklogStats, BoxFuture, NewMessage, Outbox, OutboxError, QueueStats, Storage, Totals,
};
use crate::store::{NewOutbound, Source, Store, StoreError};

fn failed(error: StoreError) -> OutboxError {
    OutboxError(error.to_string())
}

impl Outbox for Store {
    fn enqueue(&self, message: NewMessage) -> BoxFuture<'_, Result<String, OutboxError>> {
        Box::pin(async move {
            self.enqueue_outbound(NewOutbound {
                contact_id: message.contact_id,
                text: message.text,
                parts: message.parts,
                encoding: message.encoding,
                source: Source::Respond,
                quick_replies: message.quick_replies,
                now_ms: message.now_ms,
            })
            .await
            .map_err(failed)
        })
    }

    fn outbox_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<QueueStats, OutboxError>> {
        Box::pin(async move {
            let stats = Store::outbox_stats(self, now_ms).await.map_err(failed)?;
            Ok(QueueStats {
                queued: stats.queued,
                oldest_queued_ms: stats.oldest_queued_ms,
                sending: stats.sending,
                unknown: stats.unknown,
                unrecorded: stats.unrecorded,
            })
        })
    }

    fn webhook_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<BacklogStats, OutboxError>> {
        Box::pin(async move {
            let stats = Store::webhook_stats(self, now_ms).await.map_err(failed)?;
            Ok(BacklogStats {
                pending: stats.pending,
                oldest_pending_ms: stats.oldest_pending_ms,
                dead: stats.dead,
                last_error: stats.last_error,
            })
        })
    }

    fn storage(&self) -> Option<Storage> {
        let status = self.status();
        Some(Storage {
            file_problem: status.file_problem,
            write_error: status.write_error,
            write_failing_s: status.write_failing_for.map(|d| d.as_secs()),
            write_failures: status.write_failures,
            free_bytes: status.free_bytes,
            min_free_bytes: status.min_free_bytes,
        })
    }

    fn totals(&self) -> BoxFuture<'_, Result<Option<Totals>, OutboxError>> {
        Box::pin(async move {
            // Lifetime counters: they survive pruning, so they are true Prometheus counters.
            let totals = Store::totals(self).await.map_err(failed)?;
            Ok(Some(Totals {
                sent: totals.sent,
                delivered: totals.delivered,
                failed: totals.failed,
                received: totals.received,
                unreadable: totals.unreadable,
            }))
        })
    }
}
