//! `POST /message`: token, content type, size, the channel documentation's rules and the
//! rendering to SMS text ([`body`]), the part cap, the outbox limits, then the durable commit
//! and `200 {"mId":…}`.
//!
//! The modem is never on this path: the handler's answer depends only on the database.

pub mod body;

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::auth::check_token;
use super::error::ApiError;
use super::state::AppState;
use crate::phone::mask;
use crate::store::{NewOutbound, Source, StoreStatus};
use crate::wire::{Accepted, Message};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, header};

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType("none".into()));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!("{text:?}")))
    }
}

/// `POST /message`.
pub async fn post_message(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Accepted>, ApiError> {
    let inner = &state.inner;
    let result = async {
        check_token(request.headers(), &inner.settings.api_token)?;
        check_json_content_type(request.headers())?;
        let limit = inner.settings.body_limit;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        // Reading and checking is bounded; the commit below is not, because a commit that
        // finished after its request was answered 408 would send an SMS respond.io retries.
        let timeout = inner.settings.request_timeout;
        let message = tokio::time::timeout(timeout, prepare(&state, request))
            .await
            .map_err(|_| ApiError::Timeout(timeout))??;
        let contact = mask(&message.contact_id);
        let parts = message.parts;
        if let Some(refusal) = refusal(inner.backend.status()) {
            return Err(refusal);
        }
        let m_id = inner.backend.enqueue(message).await.map_err(|error| {
            // A write that failed for the disk's sake (full, read-only, replaced) is said so.
            commit_refusal(inner.backend.status())
                .unwrap_or_else(|| ApiError::Internal(format!("cannot queue the message: {error}")))
        })?;
        inner.note_accepted();
        tracing::info!(contact, parts, m_id, "message queued");
        Ok(Json(Accepted { m_id }))
    }
    .await;
    if let Err(error) = &result {
        let counter = match error {
            ApiError::QueueFull { .. } | ApiError::InsufficientStorage(_) => {
                &inner.counters.rejected_full
            }
            ApiError::Internal(_) | ApiError::Unavailable(_) => &inner.counters.errors,
            _ => &inner.counters.rejected_client,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// Why the database cannot take a message now, asked before the commit: 503 while it cannot
/// keep one (file replaced or deleted), 507 below `store.min_free_space`, so respond.io hears
/// it before a commit fails rather than after.
///
/// Failing writes are not a reason to refuse up front: the disk may have recovered since the
/// last one failed, and the message's own commit is the surest probe (see
/// [`commit_refusal`]).
fn refusal(storage: Option<StoreStatus>) -> Option<ApiError> {
    let storage = storage?;
    if let Some(problem) = storage.file_problem {
        return Some(ApiError::Unavailable(format!(
            "smsgate is not accepting messages: {problem}"
        )));
    }
    if storage.low_on_space() {
        return Some(ApiError::InsufficientStorage(format!(
            "the disk is nearly full: {}",
            crate::store::space_text(&storage)
        )));
    }
    None
}

/// Why a commit that failed did so, when it was for the disk's sake: the reasons of
/// [`refusal`], or the write error itself (503, respond.io retries).
fn commit_refusal(storage: Option<StoreStatus>) -> Option<ApiError> {
    let write_error = storage
        .as_ref()
        .filter(|storage| storage.last_write_failed)
        .and_then(|storage| storage.write_error.clone());
    refusal(storage).or_else(|| {
        write_error.map(|error| {
            ApiError::Unavailable(format!(
                "smsgate cannot write its database ({error}); retry later"
            ))
        })
    })
}

/// Reads, checks and renders a request into the message to commit.
async fn prepare(state: &AppState, request: Request) -> Result<NewOutbound, ApiError> {
    let inner = &state.inner;
    let settings = &inner.settings;
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: settings.body_limit,
                }
            } else {
                ApiError::Invalid(body::Invalid::Field {
                    field: "body".into(),
                    rule: format!("could not be read: {}", rejection.body_text()),
                })
            }
        })?;
    let checked = body::parse(&body, &settings.channel_id)?;
    let text = body::render(&checked.message);
    let plan = crate::pdu::plan(&text, settings.smart_encoding, false);
    if plan.parts > settings.max_parts {
        return Err(ApiError::TooManyParts {
            parts: plan.parts,
            max: settings.max_parts,
            encoding: plan.encoding.to_string(),
        });
    }
    let now_ms = crate::clock::now_ms();
    check_queue(state, now_ms).await?;
    let quick_replies = match checked.message {
        Message::QuickReply { replies, .. } => Some(replies),
        _ => None,
    };
    Ok(NewOutbound {
        contact_id: checked.contact.to_string(),
        text,
        parts: plan.parts,
        encoding: plan.encoding,
        source: Source::Respond,
        quick_replies,
        now_ms,
    })
}

/// 429 when the outbox is past its depth or age limit: respond.io retries later, and the
/// modem, which sends roughly one part every few seconds, is not buried.
async fn check_queue(state: &AppState, now_ms: i64) -> Result<(), ApiError> {
    let inner = &state.inner;
    let settings = &inner.settings;
    let stats = inner
        .queue_stats(now_ms)
        .await
        .map_err(|error| ApiError::Internal(format!("cannot read the outbox depth: {error}")))?;
    if stats.depth() >= settings.max_queue_depth {
        return Err(ApiError::QueueFull {
            reason: format!(
                "the outbox is full: {} messages wait to be sent (limit {}, http.max_queue_depth); \
                 retry later",
                stats.depth(),
                settings.max_queue_depth
            ),
            retry_after_s: 60,
        });
    }
    if let Some(oldest) = stats.oldest_queued_ms {
        let age = Duration::from_millis(u64::try_from(now_ms - oldest).unwrap_or(0));
        if age > settings.max_queue_age {
            return Err(ApiError::QueueFull {
                reason: format!(
                    "the outbox is stalled: its oldest message has waited {} s (limit {} s, \
                     http.max_queue_age); the modem is not sending, retry later",
                    age.as_secs(),
                    settings.max_queue_age.as_secs()
                ),
                retry_after_s: 300,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn failing_writes_refuse_only_a_commit_that_failed() {
        let failing = StoreStatus {
            write_failing_for: Some(std::time::Duration::from_secs(4)),
            write_error: Some("database or disk is full".into()),
            last_write_failed: true,
            ..StoreStatus::default()
        };
        // Up front the message may try: the disk may have recovered since.
        assert!(refusal(Some(failing.clone())).is_none());
        let refused = commit_refusal(Some(failing.clone())).expect("refused");
        assert!(
            matches!(&refused, ApiError::Unavailable(text) if text.contains("disk is full")),
            "{refused:?}"
        );
        // The last write succeeded: a failed commit is not the disk's doing.
        let recovering = StoreStatus {
            last_write_failed: false,
            ..failing
        };
        assert!(commit_refusal(Some(recovering)).is_none());
        // A replaced file refuses up front.
        let replaced = StoreStatus {
            file_problem: Some("replaced".into()),
            ..StoreStatus::default()
        };
        assert!(matches!(
            refusal(Some(replaced)),
            Some(ApiError::Unavailable(_))
        ));
    }

    #[test]
    fn content_types() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(value).expect("header"),
            );
            check_json_content_type(&headers)
        };
        assert!(with("application/json").is_ok());
        assert!(with("application/json; charset=utf-8").is_ok());
        assert!(with("Application/JSON").is_ok());
        assert!(with("application/vnd.api+json").is_ok());
        assert!(with("text/plain").is_err());
        assert!(with("application/x-www-form-urlencoded").is_err());
        assert!(check_json_content_type(&HeaderMap::new()).is_err());
    }
}
