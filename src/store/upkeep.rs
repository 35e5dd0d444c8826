//! The store's own upkeep, run by the daemon as two tasks: finished rows pruned every few hours
//! (SD cards are small), and the database watched so that a disk gone bad is noticed without
//! traffic: the file still at `store.path` (a copy of what the daemon holds is written beside
//! it when it was deleted or replaced), the free space on its volume, and a small write tried
//! now and then (and at every check while writes fail), so `/health` and the watchdog see a
//! disk gone read-only, and see it recover.
//!
//! It decides nothing about HTTP answers or the watchdog; it keeps [`super::StoreStatus`]
//! current.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Store;

/// How often finished rows are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// How often the database file's identity, the free space and (while they fail) writes are
/// checked by [`watch`].
const DATABASE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// A small write is tried this often (and at every check while writes fail), so a disk gone
/// read-only is noticed even when no traffic writes, and so is its recovery.
const WRITE_PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// Prunes finished rows older than `retention`, at start-up and then every few hours.
pub(crate) async fn prune(store: Store, retention: Duration, shutdown: CancellationToken) {
    loop {
        let before =
            crate::clock::now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match store.prune(before).await {
            Ok(counts) if counts.outbound + counts.inbound + counts.events > 0 => {
                tracing::info!(?counts, "pruned finished rows");
                // A large prune fills the write-ahead log: fold it in and shrink the file now.
                if let Err(error) = store.checkpoint().await {
                    tracing::warn!(%error, "checkpoint after pruning failed");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning failed; will try again"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(PRUNE_INTERVAL) => {}
        }
    }
}

/// Watches the database: the file still at `store.path` (a copy of what the daemon holds is
/// written beside it when it was deleted or replaced), the free space on its volume (both
/// logged on change by the store), and writes: one is tried every [`WRITE_PROBE_INTERVAL`],
/// and at every check while they fail, so `/health` and the watchdog see a disk gone
/// read-only, and see it recover, without traffic.
pub(crate) async fn watch(store: Store, path: PathBuf, shutdown: CancellationToken) {
    let mut rescued = false;
    let mut last_probe = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(DATABASE_CHECK_INTERVAL) => {}
        }
        let status = store.status();
        if status.file_problem.is_some() && !rescued {
            rescued = true;
            let target = rescue_path(&path);
            match store.rescue_copy(target.clone()).await {
                Ok(()) => tracing::error!(
                    copy = %target.display(),
                    "wrote a copy of the database as smsgate holds it; to keep it, stop \
                     smsgate, delete any {0}-wal and {0}-shm left beside it (they belong to \
                     the old file), move the copy to {0} and start smsgate again",
                    path.display()
                ),
                Err(error) => tracing::error!(
                    %error,
                    "cannot write a copy of the database as smsgate holds it"
                ),
            }
        }
        let failing = status.write_failing_for.is_some();
        if failing || last_probe.elapsed() >= WRITE_PROBE_INTERVAL {
            last_probe = tokio::time::Instant::now();
            // The outcome is recorded by the store; callers of real writes log their own.
            let _ = store.probe_write(crate::clock::now_ms()).await;
        }
    }
}

/// `smsgate.db` → `smsgate.db.rescued-<unix seconds>`, beside it.
fn rescue_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "smsgate.db".to_owned());
    path.with_file_name(format!("{name}.rescued-{}", crate::clock::now_ms() / 1000))
}
