//! The HTTP API respond.io (and operators) call: `POST /message` (an outbound SMS, committed
//! before it is answered), `GET /health` and `GET /metrics`.
//!
//! It does not talk to the modem: messages are committed to the database ([`Backend`]) and
//! the sender worker takes them from there. It does not post to respond.io either (`respond`).

mod auth;
mod error;
mod framing;
mod guard;
pub(crate) mod health;
pub mod message;
mod server;
pub(crate) mod state;
mod store;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

pub use auth::check_token;
pub use error::ApiError;
pub use server::{Limits, serve_with};
pub use state::{
    AppState, Backend, BoxFuture, ModemProbe, ModemSnapshot, PoolModemView, PoolProbe, Settings,
    drain_estimate_ms,
};

/// The router with every route, its limits and a tracing span per request.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings().body_limit;
    Router::new()
        .route("/message", post(message::post_message))
        .route(
            "/health",
            get(health::get_health).layer(middleware::from_fn_with_state(state.clone(), bounded)),
        )
        .route(
            "/metrics",
            get(health::get_metrics).layer(middleware::from_fn_with_state(state.clone(), bounded)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(guard::check_request))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "http",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                // A 503 from /health is an answer, not a failure; real 500s are logged with
                // their cause by `ApiError`.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .with_state(state)
}

/// Serves `router` on `listener` with the default [`Limits`] until `shutdown` is cancelled,
/// then lets requests in flight finish (a `POST /message` whose commit is under way is
/// answered). [`serve_with`] takes the limits from the configuration.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, router, Limits::default(), shutdown).await
}

/// Bounds a read-only request by `http.request_timeout` (`POST /message` bounds itself, see
/// [`message`]).
async fn bounded(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let timeout: Duration = state.settings().request_timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(timeout).into_response(),
    }
}

async fn method_not_allowed(request: Request) -> Response {
    let message = format!(
        "{} is not served on {}: smsgate serves POST /message, GET /health and GET /metrics",
        request.method(),
        request.uri().path()
    );
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(crate::wire::ErrorBody::new(message)),
    )
        .into_response()
}

async fn not_found(request: Request) -> Response {
    let message = format!(
        "no route {} {}: smsgate serves POST /message, GET /health and GET /metrics",
        request.method(),
        request.uri().path()
    );
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(crate::wire::ErrorBody::new(message)),
    )
        .into_response()
}
