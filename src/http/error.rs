//! [`ApiError`], the one error type of the HTTP API: a caller's mistake becomes a 4xx whose
//! `{"error":{"message":…}}` (the channel documentation's shape) says what to fix; smsgate's
//! own failure becomes a 500 whose cause is logged and never shown.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::message::body::Invalid;
use crate::wire::ErrorBody;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or not ours.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// `Content-Type` is not JSON.
    #[error("Content-Type must be application/json, not {0}")]
    UnsupportedMediaType(String),
    /// The body is larger than `http.body_limit`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body breaks a rule of the channel documentation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The rendered text needs more parts than `sms.max_parts`.
    #[error(
        "message: as SMS this takes {parts} parts ({encoding}), more than the {max} allowed \
         (sms.max_parts); shorten it"
    )]
    TooManyParts {
        parts: usize,
        max: usize,
        encoding: String,
    },
    /// The outbox is past its depth or age limit.
    #[error("{reason}")]
    QueueFull { reason: String, retry_after_s: u64 },
    /// Reading or checking the request took longer than `http.request_timeout`.
    #[error("the request was not received within {} s (http.request_timeout)", .0.as_secs_f64())]
    Timeout(std::time::Duration),
    /// A malformed request (two `Authorization` headers, ambiguous framing …).
    #[error("{0}")]
    BadRequest(String),
    /// The database cannot keep a new message now (file replaced or deleted, writes failing).
    #[error("{0}")]
    Unavailable(String),
    /// The database's volume has less free space than `store.min_free_space`.
    #[error("{0}; free space on the database's volume first (smsgate's log says how much)")]
    InsufficientStorage(String),
    /// smsgate's fault; the text is logged, the caller sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::TooManyParts { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "internal error; the cause is in smsgate's log".to_owned()
            }
            Self::Invalid(Invalid::Field { field, .. }) => {
                // The rule may quote the contact's number: in full only at debug.
                tracing::info!(status = status.as_u16(), field, "request refused");
                tracing::debug!(reason = %self, "request refused");
                self.to_string()
            }
            other => {
                tracing::info!(status = status.as_u16(), reason = %other, "request refused");
                other.to_string()
            }
        };
        let mut response = (status, Json(ErrorBody::new(message))).into_response();
        match &self {
            Self::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::QueueFull { retry_after_s, .. } => {
                if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            Self::Unavailable(_) | Self::InsufficientStorage(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            _ => {}
        }
        response
    }
}
