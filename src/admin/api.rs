//! The dashboard's JSON, under `/api/…`: the same data the page shows, for the page and for
//! scripts (`curl -u :PASSWORD http://127.0.0.1:8081/api/queues`). Times are Unix ms; numbers
//! come whole (`contact`) and masked as in the logs (`contact_masked`).
//!
//! - `GET /api/session` → `{"auth":"open"|"password","csrf":…}` (the token POSTs need)
//! - `GET /api/modems` → `{"modems":[{name, model, state, healthy, sim, registered,
//!   registration, operator, signal_dbm, signal, last_error, storage_used, storage_total,
//!   signal_history:{interval_s, samples:[{at_ms, dbm}]}, balance, balance_text,
//!   balance_read_ms, balance_low, balance_error, calls, calls_withheld, sent:{last_minute,
//!   last_hour, last_day}, caps}]}`, one entry per SIM of the pool: `sent` counted from each
//!   SIM's send history and `caps` its pacing; `balance*` are `null` until the USSD balance
//!   check has read one (`balance_ussd`; the stored reading shows after a restart)
//! - `GET /api/queues` → `{"outbox":{by_state, waiting, oldest_waiting_ms, parts_waiting,
//!   seconds_per_part, drain_estimate_s, last_send_error}, "webhook":{pending,
//!   oldest_pending_ms, in_flight, dead, paused, last_error, last_error_ms, dead_events:[…]}}`
//! - `GET /api/messages?q=NUMBER&limit=50` → `{"outbound":[…], "inbound":[…]}`
//! - `GET /api/chart` → `{"hours":[{start_ms, sent, received, failed}] × 24}`
//! - `POST /api/webhook/retry-dead` (`{"ids":[…]}` or nothing: all, as `smsgate status
//!   --retry-dead`) → `{"requeued":n}`
//! - `POST /api/send` `{"to":"+E164","text":"…"}` → `{"mId", "parts"}`, queued as `smsgate send`
//!   does (reported to respond.io as a `message_echo`)
//! - `POST /api/ussd` `{"code":"*100#","modem":"modem"}` → `{modem, code, status, text}`: the
//!   network's answer through the modem the daemon owns (`smsgate ussd` uses it)
//!
//! Errors are `{"error":{"message":"…"}}`; a store failure is a 500 whose cause is logged.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Console;
use super::auth::Caller;
use super::history::SAMPLE_INTERVAL;
use crate::phone::{E164, mask};
use crate::store::{NewOutbound, Source, StoreError};

/// The name of the one modem of `[modem]` (a pool of one).
pub const MODEM_NAME: &str = crate::config::SINGLE_MODEM_NAME;

/// Messages listed each way.
const MESSAGES_SHOWN: u32 = 50;
/// Dead events listed (all are re-driven by the button).
const DEAD_SHOWN: u32 = 20;
/// Accepted parts the send pace is taken from, and how old they may be.
const PACE_PARTS: u32 = 51;
const PACE_WINDOW_MS: i64 = 3_600_000;
/// The chart's data is read at most this often.
const CHART_TTL: Duration = Duration::from_secs(15);

/// A JSON error answer.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message}}))).into_response()
}

fn failed(error: StoreError) -> Response {
    tracing::error!(%error, "dashboard: the database failed");
    error_500()
}

fn error_500() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the database could not answer; the log says why",
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn contact(number: &str) -> Value {
    json!({"contact": number, "contact_masked": mask(number)})
}

/// `GET /api/session`.
pub(super) async fn session(
    State(console): State<Arc<Console>>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    Json(json!({
        "auth": if console.auth.is_open() { "open" } else { "password" },
        "csrf": console.auth.csrf(&caller),
    }))
    .into_response()
}

/// A word for a signal level (TS 27.007 §8.5 rssi steps, as field engineers read them).
fn signal_word(dbm: i32) -> &'static str {
    match dbm {
        -73.. => "excellent",
        -83..=-74 => "good",
        -93..=-84 => "fair",
        -103..=-94 => "poor",
        _ => "very poor",
    }
}

/// One SIM of the pool: its health and signal history, the parts it sent in each sliding
/// window (from its send history, as its caps count them) and its caps (`null`: no cap).
async fn seat_entry(console: &Console, seat: &super::Seat, now: i64) -> Result<Value, StoreError> {
    let health = seat.health.borrow().clone();
    let usage = seat.lane.usage(now);
    let limits = seat.lane.limits();
    let cap = |c: Option<std::num::NonZeroU32>| c.map(std::num::NonZeroU32::get);
    let sent = json!({
        "last_minute": usage.last_minute,
        "last_hour": usage.last_hour,
        "last_day": usage.last_day,
    });
    let caps = json!({
        "per_minute": cap(limits.per_minute),
        "per_hour": cap(limits.per_hour),
        "per_day": cap(limits.per_day),
        "recipients_per_day": cap(limits.recipients_per_day),
        "recipients_last_day": usage.recipients_last_day,
        "next_send_at_ms": seat.lane.ready_at_ms(now),
    });
    let samples = seat.history.last_hour(now);
    modem_entry(console, &seat.name, &health, samples, sent, caps).await
}

/// What `/api/modems` says of one modem, whichever way its sends and caps were counted.
async fn modem_entry(
    console: &Console,
    name: &str,
    health: &crate::modem::Health,
    samples: impl serde::Serialize,
    sent: Value,
    caps: Value,
) -> Result<Value, StoreError> {
    // The live reading; before the first one since start, the one stored before the restart.
    let (balance, balance_text, balance_read_ms) = match &health.balance {
        Some(live) => (live.amount, Some(live.text.clone()), Some(live.read_ms)),
        None => match console.store.balance(name).await? {
            Some(stored) => (stored.amount, Some(stored.text), Some(stored.read_ms)),
            None => (None, None, None),
        },
    };
    let balance_low = health
        .balance
        .as_ref()
        .is_some_and(crate::modem::Balance::is_low);
    let model = [health.manufacturer.as_deref(), health.model.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(json!({
        "name": name,
        "model": (!model.is_empty()).then_some(model),
        "imei": health.imei,
        "state": health.state,
        "healthy": health.healthy,
        "sim": health.sim,
        "registered": health.registered,
        "registration": health.registration,
        "operator": health.operator,
        "signal_dbm": health.signal_dbm,
        "signal": health.signal_dbm.map(signal_word),
        "last_error": health.last_error,
        "storage_used": health.storage_used,
        "storage_total": health.storage_total,
        "signal_history": {
            "interval_s": SAMPLE_INTERVAL.as_secs(),
            "samples": samples,
        },
        "balance": balance,
        "balance_text": balance_text,
        "balance_read_ms": balance_read_ms,
        "balance_low": balance_low,
        "balance_error": health.balance_error,
        "calls": health.calls,
        "calls_withheld": health.calls_withheld,
        "sent": sent,
        "caps": caps,
    }))
}

/// `GET /api/modems`: one entry per SIM of the pool; without a pool (a dashboard built on
/// its own), the one modem whose health it watches, with its sends from the outbox.
pub(super) async fn modems(State(console): State<Arc<Console>>) -> Response {
    let now = now_ms();
    let mut modems = Vec::new();
    for seat in &console.seats {
        match seat_entry(&console, seat, now).await {
            Ok(entry) => modems.push(entry),
            Err(error) => return failed(error),
        }
    }
    if console.seats.is_empty() {
        let sent = match console.store.console_sent(now).await {
            Ok(sent) => sent,
            Err(error) => return failed(error),
        };
        let health = console.health.borrow().clone();
        let samples = console.history.last_hour(now);
        let sent = json!(sent);
        match modem_entry(
            &console,
            &console.modem_name,
            &health,
            samples,
            sent,
            Value::Null,
        )
        .await
        {
            Ok(entry) => modems.push(entry),
            Err(error) => return failed(error),
        }
    }
    Json(json!({ "modems": modems })).into_response()
}

/// The median time between accepted parts (newest first), from the parts of the last hour.
fn seconds_per_part(times: &[i64], now_ms: i64) -> Option<f64> {
    let recent: Vec<i64> = times
        .iter()
        .copied()
        .filter(|at| now_ms - at <= PACE_WINDOW_MS)
        .collect();
    let mut gaps: Vec<i64> = recent.windows(2).map(|w| w[0] - w[1]).collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    Some(gaps[gaps.len() / 2] as f64 / 1000.0)
}

/// `GET /api/queues`.
pub(super) async fn queues(State(console): State<Arc<Console>>) -> Response {
    let now = now_ms();
    let store = &console.store;
    let (summary, outbox, webhook, parts_waiting, times, dead) = match tokio::try_join!(
        store.summary(),
        store.outbox_stats(now),
        store.webhook_stats(now),
        store.console_parts_waiting(),
        store.console_part_times(PACE_PARTS),
        store.console_dead_events(DEAD_SHOWN),
    ) {
        Ok(all) => all,
        Err(error) => return failed(error),
    };
    let by_state: serde_json::Map<String, Value> = summary
        .outbound
        .iter()
        .map(|(state, count)| (state.as_str().to_owned(), json!(count)))
        .collect();
    let pace = seconds_per_part(&times, now);
    let drain = if parts_waiting == 0 {
        Some(0.0)
    } else {
        pace.map(|pace| pace * parts_waiting as f64)
    };
    let current = console.webhook.current_error();
    let dead_events: Vec<Value> = dead
        .1
        .iter()
        .map(|event| {
            let mut row = json!({
                "id": event.id,
                "kind": event.kind,
                "status": event.status,
                "m_id": event.m_id,
                "error": event.error,
                "attempts": event.attempts,
                "created_ms": event.created_ms,
            });
            if let (Some(row), Value::Object(who)) =
                (row.as_object_mut(), contact(&event.contact_id))
            {
                row.extend(who);
            }
            row
        })
        .collect();
    Json(json!({
        "outbox": {
            "by_state": by_state,
            "waiting": outbox.queued + outbox.sending + outbox.unknown,
            "queued": outbox.queued,
            "sending": outbox.sending,
            "unknown": outbox.unknown,
            "oldest_waiting_ms": outbox.oldest_queued_ms,
            "parts_waiting": parts_waiting,
            "seconds_per_part": pace,
            "drain_estimate_s": drain,
            "last_send_error": summary.last_send_error,
        },
        "webhook": {
            "pending": webhook.pending,
            "oldest_pending_ms": webhook.oldest_pending_ms,
            "in_flight": console.webhook.in_flight(),
            "dead": dead.0,
            "paused": console.webhook.fault(),
            "last_error": current.as_ref().map(|e| e.message.clone()).or(webhook.last_error),
            "last_error_ms": current.map(|e| e.at_ms),
            "dead_events": dead_events,
        },
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct MessagesQuery {
    q: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/messages`.
pub(super) async fn messages(
    State(console): State<Arc<Console>>,
    Query(query): Query<MessagesQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(MESSAGES_SHOWN).clamp(1, 200);
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let store = &console.store;
    let (outbound, inbound) = match tokio::try_join!(
        store.console_outbound(search, limit),
        store.console_inbound(search, limit),
    ) {
        Ok(both) => both,
        Err(error) => return failed(error),
    };
    let outbound: Vec<Value> = outbound
        .iter()
        .map(|row| message_row(row, "out", Some(&row.contact_id)))
        .collect();
    let inbound: Vec<Value> = inbound
        .iter()
        .map(|row| message_row(row, "in", row.contact_id.as_deref()))
        .collect();
    Json(json!({"query": search, "outbound": outbound, "inbound": inbound})).into_response()
}

/// One row of `GET /api/messages`: the stored row, its direction, and its contact (masked and
/// full, [`contact`]) in place of the bare `contact_id`; an inbound row without a readable
/// sender says so.
fn message_row(row: &impl Serialize, direction: &str, number: Option<&str>) -> Value {
    let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.remove("contact_id");
        object.insert("direction".into(), json!(direction));
        match number.map(contact) {
            Some(Value::Object(who)) => object.extend(who),
            _ => {
                object.insert("contact".into(), Value::Null);
                object.insert("contact_masked".into(), json!("unknown sender"));
            }
        }
    }
    value
}

/// `GET /api/chart`.
pub(super) async fn chart(State(console): State<Arc<Console>>) -> Response {
    let cached = {
        let cache = console
            .chart
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|(at, _)| at.elapsed() < CHART_TTL)
            .map(|(_, value)| value.clone())
    };
    if let Some(value) = cached {
        return Json(value).into_response();
    }
    let hours = match console.store.console_hourly(now_ms(), 24).await {
        Ok(hours) => hours,
        Err(error) => return failed(error),
    };
    let value = json!({"hours": hours});
    *console
        .chart
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some((tokio::time::Instant::now(), value.clone()));
    Json(value).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetryBody {
    ids: Option<Vec<i64>>,
}

/// `POST /api/webhook/retry-dead`: every dead event (or those in `ids`) pending again.
pub(super) async fn retry_dead(
    State(console): State<Arc<Console>>,
    body: axum::body::Bytes,
) -> Response {
    let body: RetryBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetryBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(error) => {
                return self::error(
                    StatusCode::BAD_REQUEST,
                    &format!("expected {{\"ids\":[…]}} or no body: {error}"),
                );
            }
        }
    };
    let result = match body.ids {
        Some(ids) => console.store.retry_dead_event_ids(ids, now_ms()).await,
        None => console.store.retry_dead_events(now_ms()).await,
    };
    match result {
        Ok(requeued) => {
            tracing::info!(requeued, "dashboard: dead webhook events queued again");
            // The chart and the lists change with it; the next poll shows it.
            Json(json!({"requeued": requeued})).into_response()
        }
        Err(error) => failed(error),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SendBody {
    to: String,
    text: String,
}

/// `POST /api/send`: a test SMS, queued as `smsgate send` queues it.
pub(super) async fn send(State(console): State<Arc<Console>>, body: axum::body::Bytes) -> Response {
    let body: SendBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => {
            return self::error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"to\":\"+E.164 number\",\"text\":\"…\"}}: {error}"),
            );
        }
    };
    let to = match E164::parse(body.to.trim()) {
        Ok(to) => to,
        Err(error) => {
            return self::error(
                StatusCode::BAD_REQUEST,
                &format!("to {:?}: {error}", body.to.trim()),
            );
        }
    };
    if body.text.trim().is_empty() {
        return self::error(StatusCode::BAD_REQUEST, "the text is empty");
    }
    let plan = crate::pdu::plan(&body.text, console.smart_encoding, false);
    if plan.parts > console.max_parts {
        return self::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "the text needs {} SMS parts; sms.max_parts allows {}",
                plan.parts, console.max_parts
            ),
        );
    }
    let parts = plan.parts;
    let queued = console
        .store
        .enqueue_outbound(NewOutbound {
            contact_id: to.to_string(),
            text: plan.text,
            parts,
            encoding: plan.encoding,
            source: Source::Cli,
            quick_replies: None,
            now_ms: now_ms(),
        })
        .await;
    match queued {
        Ok(m_id) => {
            tracing::info!(to = %mask(to.as_str()), parts, "dashboard: test SMS queued");
            Json(json!({"mId": m_id, "parts": parts})).into_response()
        }
        Err(error) => failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_is_the_median_gap_of_the_last_hour() {
        let now = 10_000_000;
        assert_eq!(seconds_per_part(&[], now), None);
        assert_eq!(seconds_per_part(&[now - 1000], now), None);
        // Gaps 3 s, 3 s, 4 s and a 20-minute pause: the median ignores the pause.
        let times = [now, now - 3000, now - 6000, now - 10_000, now - 1_210_000];
        assert_eq!(seconds_per_part(&times, now), Some(4.0));
        // Older than an hour: not the pace of now.
        assert_eq!(
            seconds_per_part(&[now - 4_000_000, now - 4_003_000], now),
            None
        );
    }

    #[test]
    fn signal_words() {
        assert_eq!(signal_word(-51), "excellent");
        assert_eq!(signal_word(-80), "good");
        assert_eq!(signal_word(-90), "fair");
        assert_eq!(signal_word(-100), "poor");
        assert_eq!(signal_word(-113), "very poor");
    }
}

/// The longest `POST /api/ussd` waits for the modem.
const USSD_WAIT: Duration = Duration::from_secs(75);

/// The body of `POST /api/ussd`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UssdBody {
    /// The modem to ask through (the gateway's, when absent).
    #[serde(default)]
    modem: Option<String>,
    code: String,
}

/// `POST /api/ussd`: asks the network a USSD code through the modem the daemon owns (what
/// `smsgate ussd` uses while the daemon runs). `{"modem","code","status","text"}`, or an error
/// in words: 400 for a bad code or an unknown modem, 502 when the network refused or did not
/// answer, 503 when the modem is not ready.
pub(super) async fn ussd(State(console): State<Arc<Console>>, body: axum::body::Bytes) -> Response {
    let body: UssdBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => {
            return self::error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"code\":\"*100#\"}} (and \"modem\"): {error}"),
            );
        }
    };
    // A pool's SIM by its name; without a name, or for the one modem, the gateway's first.
    let seat = body
        .modem
        .as_deref()
        .and_then(|name| console.seats.iter().find(|seat| seat.name == name));
    let (name, handle) = match (body.modem.as_deref(), seat) {
        (_, Some(seat)) => (seat.name.clone(), Some(&seat.modem)),
        (Some(name), None) if name != console.modem_name => {
            let names: Vec<&str> = if console.seats.is_empty() {
                vec![console.modem_name.as_str()]
            } else {
                console
                    .seats
                    .iter()
                    .map(|seat| seat.name.as_str())
                    .collect()
            };
            return self::error(
                StatusCode::BAD_REQUEST,
                &format!("no modem named {name:?} (this gateway drives {names:?})"),
            );
        }
        _ => (console.modem_name.clone(), console.modem.as_ref()),
    };
    let Some(handle) = handle else {
        return self::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this dashboard has no modem to ask",
        );
    };
    use crate::modem::UssdError;
    // The driver answers within its own USSD timeout once the request runs; this bounds the
    // wait behind a session ahead of it, or a modem that went away meanwhile.
    let Ok(asked) = tokio::time::timeout(USSD_WAIT, handle.ussd(&body.code)).await else {
        return self::error(
            StatusCode::GATEWAY_TIMEOUT,
            &format!(
                "no answer within {} s (the modem is busy with another USSD session, or not \
                 serving; see /api/modems)",
                USSD_WAIT.as_secs()
            ),
        );
    };
    match asked {
        Ok(answer) => {
            tracing::info!(modem = %name, code = body.code.trim(), "dashboard: USSD answered");
            Json(json!({
                "modem": name,
                "code": body.code.trim(),
                "status": answer.status.to_string(),
                "text": answer.text,
            }))
            .into_response()
        }
        Err(error @ UssdError::Invalid(_)) => {
            self::error(StatusCode::BAD_REQUEST, &error.to_string())
        }
        Err(error @ (UssdError::NotReady(_) | UssdError::Stopped)) => {
            self::error(StatusCode::SERVICE_UNAVAILABLE, &error.to_string())
        }
        Err(error) => self::error(StatusCode::BAD_GATEWAY, &error.to_string()),
    }
}
