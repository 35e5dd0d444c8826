//! `GET /health` and `GET /metrics` (DESIGN.md §4).
//!
//! `/health` answers `200 {"status":"ok"}` or `503 {"status":"degraded"}` to anyone (for the
//! tunnel's and systemd's probes); with the API token it adds every check and why it failed.
//! `/metrics` is Prometheus text and needs the token: queue depths hold phone traffic volumes.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::check_token;
use super::error::ApiError;
use super::state::{AppState, ModemSnapshot, PoolModemView, drain_estimate_ms};
use crate::modem::ModemState;
use crate::store::{OutboxStats, StoreStatus, Totals, WebhookStats};

/// One health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The body of `/health` with the token.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HealthReport {
    pub status: &'static str,
    pub checks: Vec<Check>,
    pub modem: ModemSnapshot,
    pub outbox: Option<OutboxStats>,
    pub webhook: Option<WebhookStats>,
    /// Every SIM of the pool, in the order of the configuration.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modems: Vec<PoolModemView>,
    /// About how long until the outbox is drained at the SIMs' pacing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_estimate_seconds: Option<f64>,
}

/// The pool's check: every SIM's driver works (a SIM still starting, or waiting for its network,
/// is not a fault of the pool; one that gave up is).
fn pool_check(modems: &[PoolModemView]) -> Check {
    let usable = modems.iter().filter(|m| m.usable).count();
    let failing: Vec<String> = modems
        .iter()
        .filter(|m| !m.health.healthy)
        .map(|m| match &m.health.last_error {
            Some(error) => format!("{}: {}: {error}", m.name, m.health.state),
            None => format!("{}: {}", m.name, m.health.state),
        })
        .collect();
    let mut detail = format!("{usable} of {} usable", modems.len());
    if !failing.is_empty() {
        detail = format!("{}; {detail}", failing.join("; "));
    }
    Check {
        name: "modems",
        ok: failing.is_empty(),
        detail,
    }
}

/// Runs every check. Pure but for the reads it is given.
#[allow(clippy::too_many_arguments)] // one reading or limit per check, each named at the call
pub(crate) fn evaluate(
    modem: &ModemSnapshot,
    outbox: Result<&OutboxStats, &str>,
    webhook: Result<&WebhookStats, &str>,
    current_webhook_error: Option<&str>,
    webhook_fault: Option<&str>,
    now_ms: i64,
    outbox_age_limit: Duration,
    webhook_age_limit: Duration,
) -> Vec<Check> {
    let age = |since: Option<i64>| {
        since.map(|ms| Duration::from_millis(u64::try_from(now_ms - ms).unwrap_or(0)))
    };
    let mut checks = vec![
        Check {
            name: "modem",
            ok: modem.healthy,
            // Why it is not ready, too, while still within its grace (an absent port).
            detail: match &modem.last_error {
                Some(error) if !modem.healthy || modem.state != ModemState::Ready => {
                    format!("{}: {error}", modem.state)
                }
                _ => modem.state.to_string(),
            },
        },
        Check {
            name: "sim",
            ok: modem.sim_ready,
            detail: modem.sim.clone(),
        },
        Check {
            name: "registration",
            ok: modem.registered,
            detail: match (&modem.operator, modem.signal_dbm) {
                (Some(operator), Some(dbm)) => {
                    format!("{} on {operator}, {dbm} dBm", modem.registration)
                }
                (Some(operator), None) => format!("{} on {operator}", modem.registration),
                _ => modem.registration.clone(),
            },
        },
    ];
    if let Some(check) = balance_check(modem, now_ms) {
        checks.push(check);
    }
    checks.push(match outbox {
        Ok(stats) => {
            let oldest = age(stats.oldest_queued_ms);
            let mut detail = match oldest {
                Some(age) => format!(
                    "{} queued, oldest {} s (limit {} s)",
                    stats.depth(),
                    age.as_secs(),
                    outbox_age_limit.as_secs()
                ),
                None => format!("{} queued", stats.depth()),
            };
            if stats.unrecorded > 0 {
                // Not the database check's fact again: that one says why writes fail; this one
                // says what the gateway holds only in memory meanwhile, and what waits for it.
                detail.push_str(&format!(
                    "; {} sent part(s) not recorded: the modem's answer is held in memory until \
                     the database takes it (a restart now leaves the part in doubt), and the \
                     contact's later messages wait",
                    stats.unrecorded
                ));
            }
            Check {
                name: "outbox",
                ok: oldest.is_none_or(|age| age <= outbox_age_limit) && stats.unrecorded == 0,
                detail,
            }
        }
        Err(error) => Check {
            name: "outbox",
            ok: false,
            detail: format!("cannot read the outbox: {error}"),
        },
    });
    checks.push(match webhook {
        Ok(stats) => {
            let oldest = age(stats.oldest_pending_ms);
            Check {
                name: "webhook_backlog",
                ok: oldest.is_none_or(|age| age <= webhook_age_limit),
                detail: format!(
                    "{} pending{}, {} dead",
                    stats.pending,
                    oldest
                        .map(|age| format!(", oldest {} s", age.as_secs()))
                        .unwrap_or_default(),
                    stats.dead
                ),
            }
        }
        Err(error) => Check {
            name: "webhook_backlog",
            ok: false,
            detail: format!("cannot read the webhook queue: {error}"),
        },
    });
    checks.push(Check {
        name: "webhook_last_error",
        ok: current_webhook_error.is_none(),
        detail: current_webhook_error.unwrap_or("none").to_owned(),
    });
    // A refused token or webhook URL pauses delivery until the configuration is fixed; the
    // events wait. Its own check, so the reason and the fix stay visible between retries.
    checks.push(Check {
        name: "webhook_delivery",
        ok: webhook_fault.is_none(),
        detail: webhook_fault.unwrap_or("running").to_owned(),
    });
    checks
}

/// The SIM balance (`balance_ussd`): degraded below `low_balance`, with the amount, the
/// threshold and the operator's words. A failed check is shown but does not degrade: the
/// network refuses USSD now and then, and the last good reading still stands.
fn balance_check(modem: &ModemSnapshot, now_ms: i64) -> Option<Check> {
    let failed = modem
        .balance_error
        .as_ref()
        .map(|error| format!("; the last check failed: {error}"))
        .unwrap_or_default();
    let Some(balance) = &modem.balance else {
        return modem.balance_error.as_ref().map(|error| Check {
            name: "balance",
            ok: true,
            detail: format!("not read yet: {error}"),
        });
    };
    let ago = Duration::from_secs(u64::try_from(now_ms - balance.read_ms).unwrap_or(0) / 1000);
    let read = format!(
        "read {} ago: {:?}",
        humantime::format_duration(ago),
        balance.text
    );
    let detail = match (balance.amount, balance.low) {
        (Some(amount), Some(low)) if amount < low => format!(
            "{amount} is below low_balance {low}: top up the SIM before SMS stop for want \
             of credit ({read}){failed}"
        ),
        (Some(amount), Some(low)) => format!("{amount} (low_balance {low}; {read}){failed}"),
        (Some(amount), None) => format!("{amount} ({read}){failed}"),
        (None, _) => format!("no amount found (check balance_pattern; {read}){failed}"),
    };
    Some(Check {
        name: "balance",
        ok: !balance.is_low(),
        detail,
    })
}

/// The database checks: it can be written and is the file at `store.path`, and its volume has
/// at least `store.min_free_space` free.
pub(crate) fn storage_checks(storage: &StoreStatus) -> [Check; 2] {
    let database = match (&storage.file_problem, &storage.write_error) {
        (Some(problem), _) => Check {
            name: "database",
            ok: false,
            detail: problem.clone(),
        },
        (None, Some(error)) => Check {
            name: "database",
            ok: false,
            detail: format!(
                "writes failing for {} s: {error}",
                storage
                    .write_failing_for
                    .map_or(0, |failing| failing.as_secs())
            ),
        },
        (None, None) => Check {
            name: "database",
            ok: true,
            detail: "writable".to_owned(),
        },
    };
    let disk = Check {
        name: "disk",
        ok: !storage.low_on_space(),
        detail: if storage.low_on_space() {
            crate::store::space_text(storage)
        } else {
            match storage.free_bytes {
                Some(free) => format!(
                    "{} free (store.min_free_space {})",
                    crate::store::human_bytes(free),
                    crate::store::human_bytes(storage.min_free_bytes)
                ),
                None => "free space unknown".to_owned(),
            }
        },
    };
    [database, disk]
}

/// `GET /health`.
pub(crate) async fn get_health(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let detailed = match headers.get(header::AUTHORIZATION) {
        None => false,
        Some(_) => match check_token(&headers, &state.inner.settings.api_token) {
            Ok(()) => true,
            Err(error) => return error.into_response(),
        },
    };
    let inner = &state.inner;
    let now_ms = crate::clock::now_ms();
    let modem = inner.modem.snapshot();
    let outbox = inner.backend.outbox_stats(now_ms).await;
    let webhook = inner.backend.webhook_stats(now_ms).await;
    let current_error = inner.webhook.current_error().map(|e| e.message);
    let fault = inner.webhook.fault();
    let (outbox_error, webhook_error) = (
        outbox.as_ref().err().map(ToString::to_string),
        webhook.as_ref().err().map(ToString::to_string),
    );
    let checks = evaluate(
        &modem,
        outbox
            .as_ref()
            .map_err(|_| outbox_error.as_deref().unwrap_or_default()),
        webhook
            .as_ref()
            .map_err(|_| webhook_error.as_deref().unwrap_or_default()),
        current_error.as_deref(),
        fault.as_deref(),
        now_ms,
        inner.settings.health_outbox_age,
        inner.settings.health_webhook_age,
    );
    let mut checks = checks;
    if let Some(storage) = inner.backend.status() {
        checks.extend(storage_checks(&storage));
    }
    let modems = match &inner.pool {
        Some(pool) => pool.modems(now_ms).await,
        None => Vec::new(),
    };
    if modems.len() > 1 {
        checks.push(pool_check(&modems));
        // The balance check above reads the first SIM; it says which, and every other one,
        // which may run out too, gets its own.
        for check in checks.iter_mut().filter(|check| check.name == "balance") {
            check.detail = format!("{}: {}", modems[0].name, check.detail);
        }
        checks.extend(modems.iter().skip(1).filter_map(|m| {
            balance_check(&m.health, now_ms).map(|check| Check {
                detail: format!("{}: {}", m.name, check.detail),
                ..check
            })
        }));
    }
    let healthy = checks.iter().all(|check| check.ok);
    let (code, status) = if healthy {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    if !detailed {
        return (code, Json(serde_json::json!({ "status": status }))).into_response();
    }
    let report = HealthReport {
        status,
        checks,
        modem,
        outbox: outbox.ok(),
        webhook: webhook.ok(),
        drain_estimate_seconds: (!modems.is_empty())
            .then(|| drain_estimate_ms(&modems, now_ms) as f64 / 1000.0),
        modems,
    };
    (code, Json(report)).into_response()
}

/// `GET /metrics`.
pub(crate) async fn get_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let inner = &state.inner;
    check_token(&headers, &inner.settings.api_token)?;
    let now_ms = crate::clock::now_ms();
    let outbox = inner
        .backend
        .outbox_stats(now_ms)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read the outbox: {e}")))?;
    let webhook = inner
        .backend
        .webhook_stats(now_ms)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read the webhook queue: {e}")))?;
    let totals = inner
        .backend
        .totals()
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read the totals: {e}")))?;
    let mut out = String::with_capacity(4096);
    write_metrics(
        &mut out,
        now_ms,
        &outbox,
        &webhook,
        totals.as_ref(),
        &inner.modem.snapshot(),
    );
    if let Some(pool) = &inner.pool {
        write_pool_metrics(&mut out, now_ms, &pool.modems(now_ms).await);
    }
    let counters = &inner.counters;
    gauge(
        &mut out,
        "smsgate_http_messages_accepted_total",
        "counter",
        "Messages accepted by POST /message since start.",
        counters.accepted.load(Ordering::Relaxed) as f64,
    );
    let _ = writeln!(
        out,
        "# HELP smsgate_http_messages_refused_total Messages refused by POST /message since \
         start, by reason.\n# TYPE smsgate_http_messages_refused_total counter"
    );
    for (reason, counter) in [
        ("client", &counters.rejected_client),
        ("queue_full", &counters.rejected_full),
        ("error", &counters.errors),
    ] {
        let _ = writeln!(
            out,
            "smsgate_http_messages_refused_total{{reason=\"{reason}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    inner.webhook.write_prometheus(&mut out);
    if let Some(storage) = inner.backend.status() {
        write_storage_metrics(&mut out, &storage);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

fn write_storage_metrics(out: &mut String, storage: &StoreStatus) {
    if let Some(free) = storage.free_bytes {
        gauge(
            out,
            "smsgate_database_free_bytes",
            "gauge",
            "Bytes free on the database's volume (POST /message answers 507 below \
             store.min_free_space).",
            free as f64,
        );
    }
    gauge(
        out,
        "smsgate_database_write_failures_total",
        "counter",
        "Database writes that failed for the disk's sake since start.",
        storage.write_failures as f64,
    );
    gauge(
        out,
        "smsgate_database_ok",
        "gauge",
        "1 while the database is writable and still the file at store.path.",
        f64::from(u8::from(
            storage.write_error.is_none() && storage.file_problem.is_none(),
        )),
    );
}

fn gauge(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The per-SIM series, labelled `modem="NAME"`.
fn write_pool_metrics(out: &mut String, now_ms: i64, modems: &[PoolModemView]) {
    if modems.is_empty() {
        return;
    }
    let series =
        |out: &mut String, name: &str, kind: &str, help: &str, values: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in values {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
    let each = |f: &dyn Fn(&PoolModemView) -> Option<f64>| -> Vec<(String, f64)> {
        modems
            .iter()
            .filter_map(|m| f(m).map(|v| (format!("modem=\"{}\"", m.name), v)))
            .collect()
    };
    series(
        out,
        "smsgate_pool_modem_healthy",
        "gauge",
        "1 when this modem's driver works.",
        each(&|m| Some(f64::from(u8::from(m.health.healthy)))),
    );
    series(
        out,
        "smsgate_pool_modem_usable",
        "gauge",
        "1 when this SIM can send now: healthy, initialised and registered.",
        each(&|m| Some(f64::from(u8::from(m.usable)))),
    );
    series(
        out,
        "smsgate_pool_modem_registered",
        "gauge",
        "1 when this SIM is registered on a network.",
        each(&|m| Some(f64::from(u8::from(m.health.registered)))),
    );
    series(
        out,
        "smsgate_pool_modem_signal_dbm",
        "gauge",
        "This modem's received signal strength (AT+CSQ), dBm.",
        each(&|m| m.health.signal_dbm.map(f64::from)),
    );
    series(
        out,
        "smsgate_pool_modem_queued_messages",
        "gauge",
        "Messages routed to this SIM and not finished.",
        each(&|m| Some(m.queued as f64)),
    );
    let mut sent = Vec::new();
    let mut caps = Vec::new();
    for m in modems {
        for (window, used, cap) in [
            ("minute", m.sent_last_minute, m.per_minute),
            ("hour", m.sent_last_hour, m.per_hour),
            ("day", m.sent_last_day, m.per_day),
        ] {
            let labels = format!("modem=\"{}\",window=\"{window}\"", m.name);
            sent.push((labels.clone(), f64::from(used)));
            if let Some(cap) = cap {
                caps.push((labels, f64::from(cap)));
            }
        }
    }
    series(
        out,
        "smsgate_pool_modem_sent_parts",
        "gauge",
        "Parts this SIM sent in the last sliding window.",
        sent,
    );
    series(
        out,
        "smsgate_pool_modem_cap_parts",
        "gauge",
        "This SIM's cap on parts per sliding window (absent: no cap).",
        caps,
    );
    series(
        out,
        "smsgate_pool_modem_sim_balance",
        "gauge",
        "This SIM's balance as the operator last answered by USSD (balance_ussd).",
        each(&|m| m.health.balance.as_ref().and_then(|b| b.amount)),
    );
    series(
        out,
        "smsgate_pool_modem_next_send_seconds",
        "gauge",
        "Seconds until this SIM's pacing lets its next message start (0: now).",
        each(&|m| Some((m.next_send_at_ms - now_ms).max(0) as f64 / 1000.0)),
    );
    gauge(
        out,
        "smsgate_outbox_drain_estimate_seconds",
        "gauge",
        "About how long until the outbox is drained at the SIMs' pacing.",
        drain_estimate_ms(modems, now_ms) as f64 / 1000.0,
    );
}

fn write_metrics(
    out: &mut String,
    now_ms: i64,
    outbox: &OutboxStats,
    webhook: &WebhookStats,
    totals: Option<&Totals>,
    modem: &ModemSnapshot,
) {
    let age = |since: Option<i64>| since.map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0);
    let _ = writeln!(
        out,
        "# HELP smsgate_outbox_messages Outbound messages not finished, by state.\n\
         # TYPE smsgate_outbox_messages gauge\n\
         smsgate_outbox_messages{{state=\"queued\"}} {}\n\
         smsgate_outbox_messages{{state=\"sending\"}} {}\n\
         smsgate_outbox_messages{{state=\"unknown\"}} {}",
        outbox.queued, outbox.sending, outbox.unknown
    );
    gauge(
        out,
        "smsgate_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest queued outbound message (0 when none).",
        age(outbox.oldest_queued_ms),
    );
    gauge(
        out,
        "smsgate_webhook_pending_events",
        "gauge",
        "Webhook events waiting to reach respond.io.",
        webhook.pending as f64,
    );
    gauge(
        out,
        "smsgate_webhook_oldest_age_seconds",
        "gauge",
        "Age of the oldest pending webhook event (0 when none).",
        age(webhook.oldest_pending_ms),
    );
    gauge(
        out,
        "smsgate_webhook_dead_events",
        "gauge",
        "Webhook events parked as dead (re-drive with `smsgate status --retry-dead`).",
        webhook.dead as f64,
    );
    if let Some(totals) = totals {
        for (name, help, value) in [
            (
                "sent",
                "Messages every part of which the modem accepted.",
                totals.sent,
            ),
            (
                "delivered",
                "Messages the network reported delivered.",
                totals.delivered,
            ),
            ("failed", "Messages that failed for good.", totals.failed),
            ("received", "Incoming messages committed.", totals.received),
            (
                "unreadable",
                "Incoming SMS that could not be decoded, kept raw (`smsgate status` lists them).",
                totals.unreadable,
            ),
        ] {
            gauge(
                out,
                &format!("smsgate_messages_{name}_total"),
                "counter",
                help,
                value as f64,
            );
        }
    }
    gauge(
        out,
        "smsgate_modem_healthy",
        "gauge",
        "1 when the modem loop works.",
        f64::from(u8::from(modem.healthy)),
    );
    gauge(
        out,
        "smsgate_modem_registered",
        "gauge",
        "1 when the modem is registered on a network.",
        f64::from(u8::from(modem.registered)),
    );
    if let Some(dbm) = modem.signal_dbm {
        gauge(
            out,
            "smsgate_modem_signal_dbm",
            "gauge",
            "Received signal strength (AT+CSQ), dBm.",
            f64::from(dbm),
        );
    }
    if let Some(amount) = modem.balance.as_ref().and_then(|b| b.amount) {
        gauge(
            out,
            "smsgate_sim_balance",
            "gauge",
            "The SIM's balance as the operator last answered by USSD (balance_ussd).",
            amount,
        );
    }
    if let Some(balance) = &modem.balance {
        gauge(
            out,
            "smsgate_sim_balance_read_timestamp_seconds",
            "gauge",
            "When the SIM's balance was last read (Unix time).",
            balance.read_ms as f64 / 1000.0,
        );
    }
    for (name, help, value) in [
        (
            "calls",
            "Incoming calls (one per call, not per ring).",
            modem.calls,
        ),
        (
            "calls_withheld",
            "Incoming calls whose number was withheld (nothing sent to respond.io).",
            modem.calls_withheld,
        ),
    ] {
        gauge(
            out,
            &format!("smsgate_{name}_total"),
            "counter",
            help,
            value as f64,
        );
    }
    for (name, help, value) in [
        ("resets", "Modem resets (AT+CFUN=1,1).", modem.resets),
        ("reopens", "Serial port reopens.", modem.reopens),
        ("timeouts", "AT command timeouts.", modem.timeouts),
    ] {
        gauge(
            out,
            &format!("smsgate_modem_{name}_total"),
            "counter",
            help,
            value as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> ModemSnapshot {
        ModemSnapshot {
            state: ModemState::Ready,
            healthy: true,
            sim_ready: true,
            sim: "READY".into(),
            registered: true,
            registration: "home".into(),
            operator: Some("Maxis".into()),
            signal_dbm: Some(-71),
            ..ModemSnapshot::default()
        }
    }

    #[test]
    fn all_good_is_ok_and_each_failure_names_its_check() {
        let outbox = OutboxStats::default();
        let webhook = WebhookStats::default();
        let limit = Duration::from_secs(600);
        let checks = evaluate(
            &ready(),
            Ok(&outbox),
            Ok(&webhook),
            None,
            None,
            0,
            limit,
            limit,
        );
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert_eq!(checks[2].detail, "home on Maxis, -71 dBm");

        let unplugged = ModemSnapshot {
            state: ModemState::Unplugged,
            healthy: false,
            last_error: Some("port closed".into()),
            ..ready()
        };
        let old = OutboxStats {
            queued: 3,
            oldest_queued_ms: Some(0),
            ..OutboxStats::default()
        };
        let backlog = WebhookStats {
            pending: 2,
            oldest_pending_ms: Some(0),
            dead: 1,
            last_error: None,
        };
        let checks = evaluate(
            &unplugged,
            Ok(&old),
            Ok(&backlog),
            Some("HTTP 401"),
            Some("respond.io rejects the API token (HTTP 401)"),
            1_000_000,
            limit,
            limit,
        );
        let failed: Vec<(&str, &str)> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| (c.name, c.detail.as_str()))
            .collect();
        assert_eq!(
            failed,
            [
                ("modem", "unplugged: port closed"),
                ("outbox", "3 queued, oldest 1000 s (limit 600 s)"),
                ("webhook_backlog", "2 pending, oldest 1000 s, 1 dead"),
                ("webhook_last_error", "HTTP 401"),
                (
                    "webhook_delivery",
                    "respond.io rejects the API token (HTTP 401)"
                ),
            ]
        );
    }

    #[test]
    fn metrics_text_has_the_queue_and_modem_series() {
        let mut out = String::new();
        write_metrics(
            &mut out,
            10_000,
            &OutboxStats {
                queued: 4,
                oldest_queued_ms: Some(4_000),
                sending: 1,
                unknown: 0,
                unrecorded: 0,
            },
            &WebhookStats::default(),
            Some(&Totals {
                sent: 7,
                delivered: 5,
                failed: 1,
                received: 9,
                unreadable: 2,
            }),
            &ready(),
        );
        for line in [
            "smsgate_outbox_messages{state=\"queued\"} 4\n",
            "smsgate_outbox_oldest_age_seconds 6\n",
            "smsgate_messages_received_total 9\n",
            "smsgate_messages_unreadable_total 2\n",
            "smsgate_modem_signal_dbm -71\n",
            "smsgate_modem_registered 1\n",
        ] {
            assert!(out.contains(line), "{line} missing from\n{out}");
        }
    }
}
