//! The running gateway: every long-lived task of `smsgate run`, started in order and stopped
//! together.
//!
//! Start-up order matters for "nothing is lost": the store opens (and migrates) first, the HTTP
//! port is bound before systemd hears `READY=1`, and the outbox recovers parts left *submitting*
//! by a crash before it sends anything. Any task that ends on its own is a fault: the gateway
//! stops everything and returns the error, so systemd restarts the daemon.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::systemd;
use crate::config::Config;
use crate::http::{self, AppState, Settings};
use crate::inbox::unreadable::UnreadableSms;
use crate::inbox::{Inbox, InboxOptions};
use crate::modem::{self, ModemEvent, ModemHandle, ModemOptions, StorageSlot};
use crate::outbox::{Outbox, OutboxOptions};
use crate::respond::worker::Worker;
use crate::store::Store;

/// How long the tasks get to finish after shutdown is requested (the unit's `TimeoutStopSec=`
/// is longer).
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// How often finished rows are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// How often the database file's identity, the free space and (while they fail) writes are
/// checked by [`watch_database`].
const DATABASE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// A small write is tried this often (and at every check while writes fail), so a disk gone
/// read-only is noticed even when no traffic writes, and so is its recovery.
const WRITE_PROBE_INTERVAL: Duration = Duration::from_secs(30);

type TaskResult = (&'static str, anyhow::Result<()>);

/// The gateway's tasks, running.
pub struct Gateway {
    http_address: SocketAddr,
    store: Store,
    modem: ModemHandle,
    shutdown: CancellationToken,
    tasks: JoinSet<TaskResult>,
}

impl Gateway {
    /// Opens the store, binds the HTTP port, starts the modem and every worker, then tells
    /// systemd the gateway is ready. Returns once all of that is done; the modem keeps
    /// initialising (and recovering) in the background.
    pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        if let Some(warning) = config.respond.retired_webhook_warning() {
            tracing::warn!("{warning}");
        }
        let store = Store::open(&config.store.path)
            .await
            .with_context(|| format!("cannot open the database {}", config.store.path.display()))?;
        // Logs a warning now when the volume is already below the floor.
        store.set_min_free_space(config.store.min_free_space);
        store.status();
        let listener = TcpListener::bind(config.http.listen)
            .await
            .map_err(|error| anyhow::anyhow!(bind_failure(config.http.listen, &error)))?;
        let http_address = listener.local_addr()?;

        let (modem, modem_events) =
            modem::spawn(ModemOptions::from(&config.modem), shutdown.child_token());
        let mut tasks = JoinSet::new();

        // respond.io: the webhook worker, woken whenever the store queues an event.
        let worker = Worker::from_config(store.clone(), &config.respond)
            .context("cannot build the webhook client")?
            .with_notify(store.event_signal());
        let webhook_metrics = worker.metrics();
        let token = shutdown.clone();
        tasks.spawn(async move {
            worker.run(token).await;
            ("webhook worker", Ok(()))
        });

        // Outbound: the sender worker, and a second handle on the outbox for status reports.
        let outbox_options = OutboxOptions::from_config(&config.sms, &config.modem);
        let sender = Outbox::new(store.clone(), modem.clone(), outbox_options)
            .with_shutdown(shutdown.clone());
        let reports = sender.clone();
        tasks.spawn(async move { ("outbox", sender.run().await.map_err(Into::into)) });

        // Inbound: modem events into the store, then the SIM copy deleted.
        let inbox = Inbox::new(store.clone(), InboxOptions::from_config(&config));
        let token = shutdown.clone();
        let reassembly = inbox.clone();
        tasks.spawn(async move {
            (
                "reassembly",
                reassembly.run(token).await.map_err(Into::into),
            )
        });
        let token = shutdown.clone();
        let receiving = modem.clone();
        tasks.spawn(async move {
            let result = receive(modem_events, inbox, reports, receiving, token).await;
            ("receiver", result)
        });

        // Housekeeping: prune finished rows.
        let token = shutdown.clone();
        let pruning = store.clone();
        let retention = Duration::from_secs(u64::from(config.store.retention_days) * 86_400);
        tasks.spawn(async move { ("pruning", prune(pruning, retention, token).await) });

        // The database file, its volume and its writes, watched.
        let token = shutdown.clone();
        let watched = store.clone();
        let db_path = config.store.path.clone();
        tasks.spawn(async move {
            watch_database(watched, db_path, token).await;
            ("database watch", Ok(()))
        });

        // The operator's dashboard, on its own listener (never http.listen).
        let dashboard = crate::admin::Dashboard::from_config(
            &config,
            store.clone(),
            modem.health_watch(),
            webhook_metrics.clone(),
        )?;
        if let Some(dashboard) = dashboard {
            let token = shutdown.clone();
            tasks.spawn(async move { ("dashboard", dashboard.run(token).await) });
        }

        // The HTTP API.
        let state = AppState::new(
            Settings::from_config(&config),
            Arc::new(store.clone()),
            Arc::new(modem.health_watch()),
            webhook_metrics,
        );
        let token = shutdown.clone();
        let limits = http::Limits::from_config(&config.http);
        tasks.spawn(async move {
            let served = http::serve_with(listener, http::router(state), limits, token).await;
            ("HTTP server", served.context("the HTTP server failed"))
        });

        // systemd: ready now; the watchdog only while the modem and the store are healthy.
        systemd::ready(&format!("listening on {http_address}"));
        if let Some(interval) = systemd::watchdog_interval() {
            let token = shutdown.clone();
            let (watched_store, watched_modem) = (store.clone(), modem.clone());
            let grace = config.store.write_failure_grace;
            tasks.spawn(async move {
                watchdog(watched_store, watched_modem, interval, grace, token).await;
                ("watchdog", Ok(()))
            });
        }
        tracing::info!(%http_address, "smsgate is running");
        Ok(Self {
            http_address,
            store,
            modem,
            shutdown,
            tasks,
        })
    }

    /// Where the HTTP API listens (useful when the configuration asked for port 0).
    pub fn http_address(&self) -> SocketAddr {
        self.http_address
    }

    /// The store the gateway uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The modem the gateway drives.
    pub fn modem(&self) -> &ModemHandle {
        &self.modem
    }

    /// Runs until shutdown is requested or a task fails, then stops every task within
    /// [`SHUTDOWN_DEADLINE`]. Returns the first failure, if any.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut failure: Option<anyhow::Error> = None;
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => {}
            Some(joined) = self.tasks.join_next() => {
                let error = match joined {
                    // Tasks end on their own when shutdown was requested meanwhile.
                    Ok((_, Ok(()))) if self.shutdown.is_cancelled() => None,
                    Ok((name, Ok(()))) => Some(anyhow::anyhow!("the {name} stopped unexpectedly")),
                    Ok((name, Err(error))) => Some(error.context(format!("the {name} failed"))),
                    Err(error) => Some(anyhow::anyhow!("a task panicked: {error}")),
                };
                if let Some(error) = error {
                    tracing::error!("{error:#}; stopping");
                    failure = Some(error);
                }
                self.shutdown.cancel();
            }
        }
        systemd::stopping();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok((_, Ok(()))))) => {}
                Ok(Some(Ok((name, Err(error))))) => {
                    tracing::warn!("the {name} failed while stopping: {error:#}");
                }
                Ok(Some(Err(error))) => tracing::warn!("a task panicked while stopping: {error}"),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        "tasks still running after {}s; stopping them",
                        SHUTDOWN_DEADLINE.as_secs()
                    );
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        tracing::info!("smsgate stopped");
        failure.map_or(Ok(()), Err)
    }
}

/// Commits every received part and status report, and only then deletes the modem's copy (or
/// acknowledges a routed one with `AT+CNMA`). What cannot be committed is given back: a stored
/// copy stays in the modem for the next sweep, a routed one is refused so the network delivers
/// it again. A status report that matches no part yet is committed too (parked in the store),
/// so its deletion loses nothing.
async fn receive(
    mut events: mpsc::Receiver<ModemEvent>,
    inbox: Inbox,
    reports: Outbox<ModemHandle>,
    modem: ModemHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            event = events.recv() => event,
        };
        let Some(event) = event else {
            // The modem task ended; during shutdown that is expected.
            shutdown.cancelled().await;
            return Ok(());
        };
        let (what, committed, slot) = match event {
            ModemEvent::Received { deliver, pdu, slot } => {
                let outcome = inbox.receive(&deliver, &pdu).await.map(drop);
                ("a received SMS", outcome.map_err(anyhow::Error::from), slot)
            }
            ModemEvent::Unreadable {
                pdu,
                reason,
                sender,
                status_report,
                slot,
            } => {
                let sms = UnreadableSms {
                    pdu,
                    reason,
                    sender,
                    status_report,
                    slot: slot.to_string(),
                };
                let outcome = inbox.receive_unreadable(sms).await.map(drop);
                (
                    "an undecodable SMS",
                    outcome.map_err(anyhow::Error::from),
                    slot,
                )
            }
            ModemEvent::StatusReport { report, slot } => {
                let outcome = reports.status_report(&report).await.map(drop);
                (
                    "a status report",
                    outcome.map_err(anyhow::Error::from),
                    slot,
                )
            }
        };
        match committed {
            Ok(()) => {
                if let Err(error) = modem.confirm(slot.clone()).await {
                    // Not lost: it is committed, and a re-read or a re-delivery by the
                    // network has the same dedupe key.
                    tracing::warn!(%error, %slot,
                        "cannot release {what} in the modem after committing it; when it comes \
                         again it is recognised");
                }
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), %slot,
                    "cannot store {what}; {}", kept(&slot));
                if let Err(error) = modem.reject(slot.clone()).await {
                    tracing::warn!(%error, "cannot give {what} back to the modem");
                }
            }
        }
    }
}

/// Where something that could not be committed waits, in words for the log.
fn kept(slot: &StorageSlot) -> &'static str {
    match slot {
        StorageSlot::Stored { .. } => {
            "it stays in the modem's storage and the next sweep offers it again"
        }
        StorageSlot::Routed => "it is refused (AT+CNMA=2), so the network delivers it again later",
        StorageSlot::None => "the modem acknowledged it itself (no AT+CSMS=1), so it is lost",
    }
}

/// Prunes finished rows older than `retention`, at start-up and then every few hours.
async fn prune(
    store: Store,
    retention: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let before = chrono::Utc::now().timestamp_millis()
            - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
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
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(PRUNE_INTERVAL) => {}
        }
    }
}

/// Why binding the HTTP port failed, and what to do.
fn bind_failure(address: SocketAddr, error: &std::io::Error) -> String {
    let advice = match error.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "another program already listens there (another smsgate? `ss -ltnp 'sport = :{}'` \
             names it); stop it or change http.listen",
            address.port()
        ),
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges smsgate does not have; use a higher port in \
             http.listen and point the tunnel at it"
                .to_owned()
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "no network interface of this machine has that address; use 127.0.0.1 (the tunnel \
             runs here) or an address this machine has"
                .to_owned()
        }
        _ => "check http.listen".to_owned(),
    };
    format!("cannot listen on {address} (http.listen): {error}; {advice}")
}

/// Watches the database: the file still at `store.path` (a copy of what the daemon holds is
/// written beside it when it was deleted or replaced), the free space on its volume (both
/// logged on change by the store), and writes: one is tried every [`WRITE_PROBE_INTERVAL`],
/// and at every check while they fail, so `/health` and the watchdog see a disk gone
/// read-only, and see it recover, without traffic.
async fn watch_database(store: Store, path: std::path::PathBuf, shutdown: CancellationToken) {
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
            let _ = store
                .probe_write(chrono::Utc::now().timestamp_millis())
                .await;
        }
    }
}

/// `smsgate.db` → `smsgate.db.rescued-<unix seconds>`, beside it.
fn rescue_path(path: &std::path::Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "smsgate.db".to_owned());
    path.with_file_name(format!("{name}.rescued-{}", chrono::Utc::now().timestamp()))
}

/// Pets the systemd watchdog while the modem loop reports healthy, the store answers, and
/// database writes have not been failing for longer than `grace` (`store.write_failure_grace`).
/// When any of that stops, systemd restarts the daemon after `WatchdogSec=`.
///
/// A database file deleted or replaced under the daemon does not stop the petting: a restart
/// would open whatever is at the path now and drop what this process still holds, so the daemon
/// keeps running, refuses new messages and says why (see [`watch_database`]).
async fn watchdog(
    store: Store,
    modem: ModemHandle,
    interval: Duration,
    grace: Duration,
    shutdown: CancellationToken,
) {
    let mut was_healthy = true;
    loop {
        let store_ok = tokio::time::timeout(interval, store.schema_version())
            .await
            .is_ok_and(|answer| answer.is_ok());
        let status = store.status();
        let writes_ok = status
            .write_failing_for
            .is_none_or(|failing| failing <= grace);
        let health = modem.health();
        let healthy = store_ok && writes_ok && health.healthy;
        if healthy {
            systemd::watchdog();
        } else if was_healthy {
            tracing::error!(
                store_ok,
                writes_ok,
                write_error = status.write_error.as_deref().unwrap_or("none"),
                modem = ?health.state,
                "unhealthy: no longer petting the systemd watchdog"
            );
        }
        was_healthy = healthy;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
