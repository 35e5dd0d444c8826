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
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::systemd;
use crate::config::Config;
use crate::http::{self, AppState, Settings};
use crate::inbox::{Inbox, InboxOptions};
use crate::intake::Intake;
use crate::modem::{self, ModemHandle, ModemOptions};
use crate::outbox::{Lane, Outbox, OutboxOptions};
use crate::pacing::{Pacer, SendLog};
use crate::pool::{Member, Pool, PoolView};
use crate::respond::RateLimiter;
use crate::respond::worker::Worker;
use crate::store::{Store, upkeep};

/// How long the tasks get to finish after shutdown is requested (the unit's `TimeoutStopSec=`
/// is longer).
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

type TaskResult = (&'static str, anyhow::Result<()>);

/// The gateway's tasks, running.
pub struct Gateway {
    http_address: SocketAddr,
    store: Store,
    modem: ModemHandle,
    pool: Pool,
    /// The webhook worker's pace, for [`Gateway::webhook_limiter`].
    webhook_limiter: Arc<RateLimiter>,
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

        let mut tasks = JoinSet::new();

        // respond.io: the webhook worker, woken whenever the store queues an event.
        let worker = Worker::from_config(store.clone(), &config.respond)
            .context("cannot build the webhook client")?
            .with_notify(store.event_signal());
        let webhook_metrics = worker.metrics();
        let webhook_limiter = worker.limiter();
        let token = shutdown.clone();
        tasks.spawn(async move {
            worker.run(token).await;
            ("webhook worker", Ok(()))
        });

        // Inbound: the reassembly timeout (one for the whole pool).
        let inbox = Inbox::new(store.clone(), InboxOptions::from_config(&config));
        let token = shutdown.clone();
        let reassembly = inbox.clone();
        tasks.spawn(async move {
            (
                "reassembly",
                reassembly.run(token).await.map_err(Into::into),
            )
        });

        // Every SIM of the pool: its driver, its outbox lane and its intake, on their own.
        let pool = start_pool(&config, &store, inbox, &shutdown, &mut tasks).await?;
        let modem = pool.members()[0].modem.clone();
        let token = shutdown.clone();
        let (router, routing_store) = (pool.clone(), store.clone());
        tasks.spawn(async move {
            router.run(routing_store, token).await;
            ("router", Ok(()))
        });

        // Housekeeping: prune finished rows; watch the database file, its volume and writes.
        let token = shutdown.clone();
        let pruning = store.clone();
        let retention = Duration::from_secs(u64::from(config.store.retention_days) * 86_400);
        tasks.spawn(async move {
            upkeep::prune(pruning, retention, token).await;
            ("pruning", Ok(()))
        });
        let token = shutdown.clone();
        let watched = store.clone();
        let db_path = config.store.path.clone();
        tasks.spawn(async move {
            upkeep::watch(watched, db_path, token).await;
            ("database watch", Ok(()))
        });

        // The operator's dashboard, on its own listener (never http.listen).
        let dashboard = crate::admin::Dashboard::from_config(
            &config,
            store.clone(),
            modem.health_watch(),
            webhook_metrics.clone(),
        )?
        .map(|dashboard| dashboard.with_pool(&pool).with_modem(modem.clone()));
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
        )
        .with_pool(Arc::new(PoolView {
            pool: pool.clone(),
            store: store.clone(),
        }));
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
            let watched_store = store.clone();
            let watched_modem: Vec<ModemHandle> =
                pool.members().iter().map(|m| m.modem.clone()).collect();
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
            pool,
            webhook_limiter,
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

    /// The first modem of the pool (the only one with `[modem]`).
    pub fn modem(&self) -> &ModemHandle {
        &self.modem
    }

    /// The rate limiter the webhook worker takes a token from before each request (tests
    /// record its grants to check the pace where it is decided).
    pub fn webhook_limiter(&self) -> &Arc<RateLimiter> {
        &self.webhook_limiter
    }

    /// Every SIM the gateway drives.
    pub fn pool(&self) -> &Pool {
        &self.pool
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

/// Starts one driver, outbox lane and intake per `[[modems]]` entry, after recovering what a
/// crash left being sent (once, before any SIM sends). Each SIM's tasks log inside a `modem`
/// span naming it. Its pacer starts from the send history of the last 24 h, so the caps hold
/// across restarts.
async fn start_pool(
    config: &Config,
    store: &Store,
    inbox: Inbox,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<TaskResult>,
) -> anyhow::Result<Pool> {
    let now = crate::clock::Clock::system().now_ms();
    let mut members = Vec::new();
    let mut recovered = false;
    // Incoming calls (the auto-reply goes through the outbox, so the router gives it a SIM).
    let calls = Arc::new(crate::calls::Calls::from_config(store.clone(), config));
    for entry in config.pool() {
        let name = entry.name.as_str().to_owned();
        let span = tracing::info_span!("modem", modem = %name);
        let (handle, events) = span.in_scope(|| {
            modem::spawn(
                ModemOptions::for_pool_modem(entry, &config.calls),
                shutdown.child_token(),
            )
        });
        // The SIM balance its driver reads by USSD, kept in the store by modem name.
        if entry.balance.is_some() {
            let (token, kept) = (shutdown.clone(), store.clone());
            let (balance_name, health) = (name.clone(), handle.health_watch());
            tasks.spawn(
                async move {
                    super::balance::keep(kept, balance_name, health, token).await;
                    ("balance keeper", Ok(()))
                }
                .instrument(span.clone()),
            );
        }
        let history = store
            .send_history(&name, now.saturating_sub(crate::pacing::DAY_MS))
            .await
            .with_context(|| format!("cannot read the send history of modem {name}"))?;
        let pacer = Pacer::with_log(entry.pacing, SendLog::from_rows(history, now));
        let lane = Lane::new(&name, pacer);
        let sender = Outbox::new(
            store.clone(),
            handle.clone(),
            OutboxOptions::from_config(&config.sms, &entry.modem),
        )
        .with_shutdown(shutdown.clone())
        .with_lane(lane.clone());
        if !recovered {
            sender
                .recover()
                .await
                .context("cannot recover the messages being sent when smsgate stopped")?;
            recovered = true;
        }
        let reports = sender.reports().from_modem(&name);
        tasks.spawn(
            async move { ("outbox", sender.serve().await.map_err(Into::into)) }
                .instrument(span.clone()),
        );
        let intake = Intake::new(
            inbox.clone().on_modem(&name, config.routing.sticky),
            reports,
        )
        .with_calls(calls.clone());
        let (token, receiving) = (shutdown.clone(), handle.clone());
        tasks.spawn(
            async move {
                intake.run(receiving, events, token).await;
                ("receiver", Ok(()))
            }
            .instrument(span),
        );
        members.push(Member {
            name,
            endpoint: entry.endpoint.to_string(),
            modem: handle,
            lane,
        });
    }
    Ok(Pool::new(members, config.routing))
}

/// Pets the systemd watchdog while the modem loop reports healthy, the store answers, and
/// database writes have not been failing for longer than `grace` (`store.write_failure_grace`).
/// When any of that stops, systemd restarts the daemon after `WatchdogSec=`.
///
/// A database file deleted or replaced under the daemon does not stop the petting: a restart
/// would open whatever is at the path now and drop what this process still holds, so the daemon
/// keeps running, refuses new messages and says why (see [`upkeep::watch`]).
async fn watchdog(
    store: Store,
    modems: Vec<ModemHandle>,
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
        // A pool is fine while one SIM can still send: restarting would also stop the others.
        let states: Vec<_> = modems.iter().map(|m| m.health().state).collect();
        let modems_ok = modems.iter().any(|m| m.health().healthy);
        let healthy = store_ok && writes_ok && modems_ok;
        if healthy {
            systemd::watchdog();
        } else if was_healthy {
            tracing::error!(
                store_ok,
                writes_ok,
                write_error = status.write_error.as_deref().unwrap_or("none"),
                modems = ?states,
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
