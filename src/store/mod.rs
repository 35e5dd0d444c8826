//! The durable core: one SQLite database holding the outbox, the inbox and the respond.io
//! webhook queue (DESIGN.md §2, "nothing lost").
//!
//! One thread owns the [`rusqlite::Connection`]; [`Store`] is a cheap `Clone` handle whose async
//! methods send that thread a closure and await its answer on a oneshot channel. Every method is
//! one transaction, so a crash (or power cut) leaves either all or nothing of it on disk:
//! `journal_mode=WAL` (read back and checked) with `synchronous=FULL` makes each commit durable
//! before the method returns.
//!
//! At open a file database is checked (`PRAGMA quick_check`): a damaged one is refused with
//! the way to recover it, never run on. The write-ahead log is kept small for SD cards and
//! small volumes (a checkpoint every [`WAL_AUTOCHECKPOINT_PAGES`] pages, the file truncated to
//! [`JOURNAL_SIZE_LIMIT`]). Every write group's outcome, the file's identity and the free space
//! on its volume feed [`StoreStatus`] (see `health`).
//!
//! Migrations are the files `migrations/NNNN_name.sql`, embedded in the binary, applied in one
//! transaction at open; the schema version is SQLite's `user_version`, and a database written by
//! a newer smsgate is refused rather than misread.
//!
//! This module stores and moves rows; it does not talk to the modem or to respond.io. The
//! policies around it live in [`crate::outbox`] (sending), [`crate::inbox`] (receiving) and
//! [`crate::respond`] (the webhook worker). All times are Unix milliseconds passed in by the
//! caller, so tests control the clock.

mod balance;
mod console;
mod diagnose;
mod events;
mod health;
mod identity;
mod inbound;
mod outbound;
mod pool;
mod state;
mod unreadable;
pub(crate) mod upkeep;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{Notify, oneshot};

pub use balance::StoredBalance;
pub use console::{DeadEvent, HourBucket, InboundRow, OutboundRow, SentCounts};
pub use events::{EventBatch, Lane, WebhookStats};
pub use health::{StoreStatus, free_bytes, human_bytes, space_text};
pub use identity::stable_id;
pub use inbound::{
    Assembled, FinishMessage, Finished, InboundOutcome, Menu, NewInboundPart, PartGroup, StoredPart,
};
pub use outbound::{
    AttemptEnd, AttemptResult, Claimed, NewOutbound, OutboundView, OutboxPolicy, OutboxStats,
    ReportOutcome, Source, StatusReportInput, Unrecorded,
};
pub use pool::{BindReason, Moved, NextOnModem, RouteCandidate, Routed, stable_hash};
pub use state::{InboundState, OutboundState, PartState};
pub use unreadable::{
    NewUnreadable, Placeholder, UnreadableKind, UnreadableOutcome, UnreadableRow,
};

/// Migrations, in order; entry `n` brings the schema to `user_version = n + 1`. Append-only.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        "0002_event_queue_order",
        include_str!("../../migrations/0002_event_queue_order.sql"),
    ),
    (
        "0003_unreadable",
        include_str!("../../migrations/0003_unreadable.sql"),
    ),
    (
        "0004_event_lanes",
        include_str!("../../migrations/0004_event_lanes.sql"),
    ),
    (
        "0005_parked_report",
        include_str!("../../migrations/0005_parked_report.sql"),
    ),
    (
        "0006_console",
        include_str!("../../migrations/0006_console.sql"),
    ),
    (
        "0007_balance",
        include_str!("../../migrations/0007_balance.sql"),
    ),
    ("0008_pool", include_str!("../../migrations/0008_pool.sql")),
    (
        "0009_modem_send_recipient",
        include_str!("../../migrations/0009_modem_send_recipient.sql"),
    ),
];

/// How long a statement waits on a lock held by another connection (e.g. `sqlite3` opened by an
/// operator) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A passive checkpoint runs once the write-ahead log holds this many pages (SQLite's default
/// is 1,000, about 4 MiB with 4 KiB pages: more than a small volume has to spare). The WAL then
/// restarts from its beginning, so it stays near this size under any burst.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 128;

/// After a checkpoint the write-ahead log file is truncated to at most this many bytes (SQLite
/// otherwise keeps it at its largest size ever, e.g. after a big prune).
pub const JOURNAL_SIZE_LIMIT: u64 = 1024 * 1024;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file cannot be opened or used; the text says why and what to do.
    #[error("{reason}")]
    Open { path: PathBuf, reason: String },
    /// `PRAGMA quick_check` found damage; the text says how to recover.
    #[error("{0}")]
    Damaged(String),
    #[error(
        "the database is at schema version {found}, newer than this smsgate understands \
         (up to {supported}); run the newer smsgate or restore a backup made by this version"
    )]
    TooNew { found: i64, supported: i64 },
    #[error(
        "the database did not switch to write-ahead logging (journal_mode is {0:?}); \
         put it on a local filesystem"
    )]
    NotWal(String),
    #[error("SQLite did not accept `PRAGMA {0}`")]
    Pragma(&'static str),
    /// A migration failed; `reason` is SQLite's message (never the migration's SQL).
    #[error(
        "migration {name} failed: {reason}; the database was left as it was. If store.path \
         names another program's database, point it at a new file; otherwise restore a backup"
    )]
    Migration { name: &'static str, reason: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a stored event is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no outbound message with id {0}")]
    NoSuchMessage(i64),
    #[error("the database thread has stopped")]
    Closed,
    #[error("the transaction could not be committed: {0}")]
    Commit(String),
}

/// Work for the database thread.
enum Job {
    Read(Box<dyn FnOnce(&mut Connection) + Send>),
    Write(WriteJob),
}

/// Runs inside the open transaction and returns what to answer once the commit is known, and
/// the storage fault it met, if any (see [`health::StoreHealth::record`]).
type WriteJob = Box<dyn FnOnce(&Connection) -> (Reply, Option<String>) + Send>;
type Reply = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// Most writes that share one commit: bounds the latency the first of them sees.
const MAX_GROUP: usize = 256;

/// The database thread: runs jobs in order until every handle is gone. Consecutive writes are
/// grouped into one transaction (group commit); a read ends the group, so it sees them all.
fn serve(mut conn: Connection, queue: &mpsc::Receiver<Job>, health: &health::StoreHealth) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let first = match job {
            Job::Read(read) => {
                read(&mut conn);
                continue;
            }
            Job::Write(write) => write,
        };
        if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Still run it, in autocommit mode, so the caller gets the real error (or success).
            let (reply, fault) = first(&conn);
            reply(Ok(()));
            tracing::warn!(%error, "could not begin a transaction");
            let begin = diagnose::is_storage_fault(&error).then(|| diagnose::message(&error));
            health.record(fault.or(begin).as_deref());
            continue;
        }
        let (reply, mut fault) = first(&conn);
        let mut replies = vec![reply];
        while replies.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(Job::Write(write)) => {
                    let (reply, job_fault) = write(&conn);
                    replies.push(reply);
                    fault = fault.or(job_fault);
                }
                Ok(read) => {
                    next = Some(read);
                    break;
                }
                Err(_) => break,
            }
        }
        let commit = conn.execute_batch("COMMIT").map_err(|error| {
            let _ = conn.execute_batch("ROLLBACK");
            diagnose::message(&error)
        });
        health.record(commit.as_ref().err().or(fault.as_ref()).map(String::as_str));
        for reply in replies {
            reply(commit.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

/// A handle to the database thread. Cloning is cheap; the thread stops when the last handle is
/// dropped, after finishing the requests already sent.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    signals: Arc<Signals>,
    health: Arc<health::StoreHealth>,
}

/// Wake-ups for the workers, so they need not poll.
#[derive(Default)]
struct Signals {
    outbound: Arc<Notify>,
    events: Arc<Notify>,
    /// Sent parts whose `+CMGS` answer waits in memory for its commit (see
    /// [`Store::hold_unrecorded`]).
    unrecorded: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database file, sets the pragmas and applies migrations.
    ///
    /// A file that is not a database, or whose pages `PRAGMA quick_check` finds damaged, is
    /// refused with an error that says how to recover it.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let path = path.to_owned();
        let health = Arc::new(health::StoreHealth::new(Some(path.clone())));
        let opened = health.clone();
        Self::spawn(health, move || {
            let unusable = |error: rusqlite::Error| StoreError::Open {
                path: path.clone(),
                reason: diagnose::open_failure(&path, &error),
            };
            if let Some(reason) = diagnose::orphaned_log(&path) {
                return Err(StoreError::Open {
                    path: path.clone(),
                    reason,
                });
            }
            let conn = Connection::open(&path).map_err(unusable)?;
            // SQLite quietly opens a file it may not write read-only; every commit would then
            // fail, so the daemon does not start on it.
            if conn.is_readonly(rusqlite::MAIN_DB).map_err(unusable)? {
                return Err(StoreError::Open {
                    path: path.clone(),
                    reason: diagnose::read_only(&path),
                });
            }
            let conn = prepare(conn, Some(&path)).map_err(|error| match error {
                StoreError::Sqlite(error) => unusable(error),
                other => other,
            })?;
            opened.opened();
            Ok(conn)
        })
        .await
    }

    /// A private in-memory database (tests; WAL does not apply there).
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let health = Arc::new(health::StoreHealth::new(None));
        Self::spawn(health, || prepare(Connection::open_in_memory()?, None)).await
    }

    async fn spawn(
        health: Arc<health::StoreHealth>,
        open: impl FnOnce() -> Result<Connection, StoreError> + Send + 'static,
    ) -> Result<Store, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let served = health.clone();
        std::thread::Builder::new()
            .name("smsgate-store".into())
            .spawn(move || match open() {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(conn, &queue, &served);
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                }
            })
            .map_err(|_| StoreError::Closed)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Store {
            jobs,
            signals: Arc::default(),
            health,
        })
    }

    /// The database's health now: write failures, the file replaced or deleted, free space.
    /// Cheap (a `stat` and a `statvfs`); never waits for the database thread.
    pub fn status(&self) -> StoreStatus {
        self.health.status()
    }

    /// Sets the free-space floor (`store.min_free_space`) that [`StoreStatus::low_on_space`]
    /// compares with.
    pub fn set_min_free_space(&self, bytes: u64) {
        self.health.set_min_free_space(bytes);
    }

    /// A small write that proves (or disproves) the database can still commit: run while
    /// writes are failing, so a disk that recovered is noticed even when nothing else writes.
    pub async fn probe_write(&self, now_ms: i64) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('write_probe_ms', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [now_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// Copies the database as this process still sees it to `target` (`VACUUM INTO`): after
    /// the file was deleted or replaced under the daemon, the open handle is the only place
    /// its contents remain.
    pub async fn rescue_copy(&self, target: PathBuf) -> Result<(), StoreError> {
        self.call(move |conn| {
            conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])?;
            Ok(())
        })
        .await
    }

    /// Moves everything in the write-ahead log into the database and truncates the log
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`): after pruning, so the freed space is real.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.call(|conn| {
            let _: (i64, i64, i64) =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            Ok(())
        })
        .await
    }

    /// Runs `f` on the database thread and returns its result (reads; no transaction).
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Read(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            })))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` atomically (all of it or nothing) and returns once it is durable. Writes queued
    /// together share one commit (and one fsync), each in its own savepoint, so one failing
    /// write never takes another with it.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = conn
                .execute_batch("SAVEPOINT job")
                .map_err(StoreError::from)
                .and_then(|()| f(conn));
            let undo = if result.is_ok() {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            let result = match (result, conn.execute_batch(undo)) {
                (Ok(_), Err(error)) => Err(StoreError::from(error)),
                (result, _) => result,
            };
            let fault = match &result {
                Err(StoreError::Sqlite(error)) if diagnose::is_storage_fault(error) => {
                    Some(diagnose::message(error))
                }
                _ => None,
            };
            let reply: Reply = Box::new(move |commit: Result<(), &str>| {
                let _ = tx.send(match commit {
                    Ok(()) => result,
                    Err(error) => result.and(Err(StoreError::Commit(error.to_owned()))),
                });
            });
            (reply, fault)
        });
        self.jobs
            .send(Job::Write(job))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Notified whenever an outbound message becomes ready to send (enqueued or requeued).
    pub fn outbound_signal(&self) -> Arc<Notify> {
        self.signals.outbound.clone()
    }

    /// Notified whenever a webhook event is enqueued or re-driven.
    pub fn event_signal(&self) -> Arc<Notify> {
        self.signals.events.clone()
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.call(|conn| Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
    }

    /// The journal mode the database runs in (`wal` for files).
    pub async fn journal_mode(&self) -> Result<String, StoreError> {
        self.call(|conn| Ok(conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .await
    }

    /// Deletes finished rows last touched before `before_ms`: delivered and failed messages (and
    /// sent ones nobody will report on any more), delivered webhook events, forwarded or kept
    /// inbound messages with their parts, and stale quick-reply menus. Pending work and dead
    /// events are never pruned (dead ones wait for `smsgate status --retry-dead`).
    pub async fn prune(&self, before_ms: i64) -> Result<PruneCounts, StoreError> {
        self.write(move |tx| {
            let outbound = tx.execute(
                "DELETE FROM outbound WHERE state IN ('sent', 'delivered', 'failed')
                 AND coalesce(finished_ms, updated_ms) < ?1",
                [before_ms],
            )?;
            let events = tx.execute(
                "DELETE FROM event WHERE state = 'delivered' AND finished_ms < ?1",
                [before_ms],
            )?;
            let inbound = tx.execute(
                "DELETE FROM inbound WHERE state IN ('complete', 'partial') AND finished_ms < ?1",
                [before_ms],
            )?;
            tx.execute(
                "DELETE FROM quick_reply_menu WHERE sent_ms < ?1",
                [before_ms],
            )?;
            Ok(PruneCounts {
                outbound: outbound as u64,
                inbound: inbound as u64,
                events: events as u64,
            })
        })
        .await
    }

    /// Lifetime counters (they survive pruning): messages sent, delivered, failed, received.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        self.call(|conn| {
            let mut totals = Totals::default();
            let mut stmt = conn.prepare("SELECT key, value FROM meta WHERE key LIKE 'total_%'")?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (key, value) = row?;
                let slot = match key.as_str() {
                    "total_sent" => &mut totals.sent,
                    "total_delivered" => &mut totals.delivered,
                    "total_failed" => &mut totals.failed,
                    "total_received" => &mut totals.received,
                    "total_unreadable" => &mut totals.unreadable,
                    _ => continue,
                };
                *slot = value as u64;
            }
            Ok(totals)
        })
        .await
    }

    /// Counts for `smsgate status`.
    pub async fn summary(&self) -> Result<Summary, StoreError> {
        self.call(|conn| {
            let mut outbound = Vec::new();
            let mut stmt =
                conn.prepare("SELECT state, count(*) FROM outbound GROUP BY state ORDER BY state")?;
            for row in stmt.query_map([], |r| {
                Ok((r.get::<_, OutboundState>(0)?, r.get::<_, i64>(1)?))
            })? {
                let (state, count) = row?;
                outbound.push((state, count as u64));
            }
            let last_send_error = conn
                .query_row(
                    "SELECT last_error FROM outbound WHERE last_error IS NOT NULL
                     ORDER BY updated_ms DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let (inbound_messages, inbound_assembling, inbound_kept): (i64, i64, i64) = conn
                .query_row(
                    "SELECT count(*), coalesce(sum(state = 'assembling'), 0),
                            coalesce(sum(forward = 0), 0) FROM inbound",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
            Ok(Summary {
                outbound,
                last_send_error,
                inbound_messages: inbound_messages as u64,
                inbound_assembling: inbound_assembling as u64,
                inbound_kept: inbound_kept as u64,
            })
        })
        .await
    }
}

/// Lifetime message counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub received: u64,
    /// SMS that could not be decoded, kept as raw PDUs.
    pub unreadable: u64,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneCounts {
    pub outbound: u64,
    pub inbound: u64,
    pub events: u64,
}

/// Database counts for `smsgate status` (webhook figures: [`Store::webhook_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Outbound messages per state.
    pub outbound: Vec<(OutboundState, u64)>,
    /// The most recent send error recorded on any outbound message.
    pub last_send_error: Option<String>,
    pub inbound_messages: u64,
    /// Multipart messages still waiting for parts.
    pub inbound_assembling: u64,
    /// Messages kept locally by the alphanumeric-sender rule.
    pub inbound_kept: u64,
}

/// Pragmas (never inside migrations, which run in a transaction), the integrity check of a
/// file, then migrations.
fn prepare(mut conn: Connection, file: Option<&Path>) -> Result<Connection, StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if let Some(path) = file {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal(mode));
        }
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        let limit: i64 = conn.query_row(
            &format!("PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}"),
            [],
            |r| r.get(0),
        )?;
        if limit != JOURNAL_SIZE_LIMIT as i64 {
            return Err(StoreError::Pragma("journal_size_limit"));
        }
        check_integrity(&conn, path)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 1 MiB of page cache (SQLite's default is 2 MiB): the working set is the queue heads, and
    // resident memory matters on a Pi.
    conn.pragma_update(None, "cache_size", -1024)?;
    let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    if foreign_keys != 1 {
        return Err(StoreError::Pragma("foreign_keys = ON"));
    }
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies the missing migrations in one transaction; refuses a database newer than the binary.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)
            .map_err(|error| StoreError::Migration {
                name,
                reason: diagnose::message(&error),
            })?;
        tracing::info!(migration = name, "database migrated");
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// Refuses a damaged database (`PRAGMA quick_check`: every page and index entry is readable and
/// consistent; it reads the whole file, well under a second for a pruned database on a Pi).
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let damaged = |found: String| StoreError::Damaged(diagnose::damaged(path, &found));
    let mut stmt = conn
        .prepare("PRAGMA quick_check(3)")
        .map_err(|error| damaged(diagnose::message(&error)))?;
    let findings: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|error| damaged(diagnose::message(&error)))?;
    if findings.len() == 1 && findings[0] == "ok" {
        return Ok(());
    }
    Err(damaged(format!(
        "PRAGMA quick_check: {}",
        findings.join("; ")
    )))
}

/// Increments and returns the named counter in `meta`.
fn next_counter(tx: &Connection, key: &str) -> Result<i64, StoreError> {
    Ok(tx.query_row(
        "INSERT INTO meta (key, value) VALUES (?1, 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
        [key],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fresh_file_is_wal_and_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let store = Store::open(&path).await.expect("open");
        assert_eq!(store.journal_mode().await.expect("mode"), "wal");
        assert_eq!(
            store.schema_version().await.expect("version"),
            MIGRATIONS.len() as i64
        );
        drop(store);
        let store = Store::open(&path).await.expect("reopen");
        assert_eq!(
            store.schema_version().await.expect("version"),
            MIGRATIONS.len() as i64
        );
    }

    #[tokio::test]
    async fn older_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let conn = Connection::open(&path).expect("raw open");
        conn.execute_batch(MIGRATIONS[0].1)
            .expect("version 1 schema");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute("INSERT INTO meta (key, value) VALUES ('kept', 42)", [])
            .expect("a row");
        drop(conn);
        let store = Store::open(&path).await.expect("upgrade");
        assert_eq!(
            store.schema_version().await.expect("version"),
            MIGRATIONS.len() as i64
        );
        let (kept, index): (i64, i64) = store
            .call(|conn| {
                Ok(conn.query_row(
                    "SELECT (SELECT value FROM meta WHERE key = 'kept'),
                            (SELECT count(*) FROM sqlite_master WHERE name = 'event_queue')",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .expect("query");
        assert_eq!((kept, index), (42, 1));
    }

    #[tokio::test]
    async fn newer_database_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        drop(Store::open(&path).await.expect("open"));
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99)
            .expect("set version");
        drop(conn);
        match Store::open(&path).await {
            Err(StoreError::TooNew {
                found: 99,
                supported,
            }) => {
                assert_eq!(supported, MIGRATIONS.len() as i64)
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_behind() {
        let store = Store::open_in_memory().await.expect("open");
        let result: Result<(), StoreError> = store
            .write(|tx| {
                next_counter(tx, "half")?;
                Err(StoreError::NoSuchMessage(7))
            })
            .await;
        assert!(matches!(result, Err(StoreError::NoSuchMessage(7))));
        let value = store
            .write(|tx| next_counter(tx, "half"))
            .await
            .expect("counter");
        assert_eq!(value, 1, "the first increment was rolled back");
    }

    #[tokio::test]
    async fn counters_survive_and_increase() {
        let store = Store::open_in_memory().await.expect("open");
        let a = store
            .write(|tx| next_counter(tx, "x"))
            .await
            .expect("first");
        let b = store
            .write(|tx| next_counter(tx, "x"))
            .await
            .expect("second");
        assert_eq!((a, b), (1, 2));
    }
}
