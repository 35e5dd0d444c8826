//! The operator's dashboard: one page embedded in the binary and the JSON behind it, on a
//! listener of its own (`[admin] listen`, 127.0.0.1:8081 by default) — never on `http.listen`,
//! which the tunnel exposes to the internet.
//!
//! The page (`page/`: HTML, CSS and JavaScript, no CDN, no build step) polls the JSON under
//! `/api/…` every few seconds and draws it: the modem (state, operator, registration, signal
//! and an hour's sparkline from [`history`], SIM balance once it is read, parts sent in the
//! last minute/hour/day), the queues (outbox by state, oldest waiting, time to drain; the
//! webhook backlog, dead events with "send again", the last webhook error), the last 50
//! messages each way with a search by number, messages per hour over 24 h, and a form that
//! sends a test SMS. [`api`] has the JSON shapes; [`auth`] who may see and do what.
//!
//! It reads the store and the modem's health watch and writes only what `smsgate status
//! --retry-dead` and `smsgate send` write; it never talks to the modem itself. A port that
//! cannot be bound is logged and tried again every [`BIND_RETRY`]: the SMS gateway does not
//! stop for its dashboard.

mod api;
mod auth;
mod history;
mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Config;
use crate::modem::Health;
use crate::respond::WebhookMetrics;
use crate::store::Store;

pub use api::MODEM_NAME;

/// How often a dashboard port that could not be bound is tried again.
pub const BIND_RETRY: Duration = Duration::from_secs(30);

/// Connections the dashboard serves at once (a few browsers).
const MAX_CONNECTIONS: usize = 32;

/// Why the dashboard cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The configuration is refused (a LAN listener without a password).
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
}

/// What the dashboard shows and does, shared by its handlers.
pub(crate) struct Console {
    store: Store,
    health: watch::Receiver<Health>,
    webhook: Arc<WebhookMetrics>,
    history: Arc<history::SignalHistory>,
    auth: auth::Auth,
    /// The name of the modem the gateway drives (the pool's first: `modem` for `[modem]`).
    modem_name: String,
    max_parts: usize,
    smart_encoding: bool,
    chart: std::sync::Mutex<Option<(tokio::time::Instant, serde_json::Value)>>,
    /// The modem USSD requests go through (`POST /api/ussd`), when the gateway gave one.
    modem: Option<crate::modem::ModemHandle>,
    /// Every SIM of the pool, each with its own signal history (empty: the one modem above).
    seats: Vec<Seat>,
}

/// One SIM of the pool as the dashboard shows it.
pub(crate) struct Seat {
    name: String,
    health: watch::Receiver<Health>,
    lane: Arc<crate::outbox::Lane>,
    history: Arc<history::SignalHistory>,
    /// What `POST /api/ussd` with `"modem": name` asks through.
    modem: crate::modem::ModemHandle,
}

/// The dashboard, ready to run.
pub struct Dashboard {
    listen: SocketAddr,
    console: Arc<Console>,
}

impl Dashboard {
    /// The dashboard `config` asks for (`None` with `admin.listen = "off"`), over the gateway's
    /// store, modem health and webhook figures. Refuses a non-loopback listener without a
    /// password, whichever way the configuration was made.
    pub fn from_config(
        config: &Config,
        store: Store,
        health: watch::Receiver<Health>,
        webhook: Arc<WebhookMetrics>,
    ) -> Result<Option<Self>, AdminError> {
        config.admin.check()?;
        let Some(listen) = config.admin.listen else {
            return Ok(None);
        };
        Ok(Some(Self {
            listen,
            console: Arc::new(Console {
                store,
                health,
                webhook,
                history: Arc::default(),
                auth: auth::Auth::new(config.admin.password.clone()),
                modem_name: config
                    .pool()
                    .first()
                    .map_or(MODEM_NAME, |modem| modem.name.as_str())
                    .to_owned(),
                max_parts: config.sms.max_parts,
                smart_encoding: config.sms.smart_encoding,
                chart: std::sync::Mutex::new(None),
                modem: None,
                seats: Vec::new(),
            }),
        }))
    }

    /// Shows every SIM of `pool` in `/api/modems`, one entry each (its health, signal
    /// history, sends and caps). Called before the dashboard runs.
    pub fn with_pool(mut self, pool: &crate::pool::Pool) -> Self {
        let console = Arc::get_mut(&mut self.console)
            .expect("with_pool is called before the dashboard is shared");
        console.seats = pool
            .members()
            .iter()
            .map(|member| Seat {
                name: member.name.clone(),
                health: member.modem.health_watch(),
                lane: member.lane.clone(),
                history: Arc::default(),
                modem: member.modem.clone(),
            })
            .collect();
        self
    }

    /// Lets `POST /api/ussd` ask through `modem` (the one whose health the dashboard shows).
    pub fn with_modem(mut self, modem: crate::modem::ModemHandle) -> Self {
        Arc::get_mut(&mut self.console)
            .expect("the console is shared only once the dashboard runs")
            .modem = Some(modem);
        self
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.listen
    }

    /// Samples the signal and serves the dashboard until `shutdown`; a port that cannot be
    /// bound is tried again every [`BIND_RETRY`].
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let sampler = tokio::spawn(history::sample(
            self.console.history.clone(),
            self.console.health.clone(),
            shutdown.clone(),
        ));
        let seat_samplers: Vec<_> = self
            .console
            .seats
            .iter()
            .map(|seat| {
                tokio::spawn(history::sample(
                    seat.history.clone(),
                    seat.health.clone(),
                    shutdown.clone(),
                ))
            })
            .collect();
        let listener = loop {
            match TcpListener::bind(self.listen).await {
                Ok(listener) => break listener,
                Err(error) => {
                    tracing::error!(
                        "cannot listen on {} (admin.listen): {error}; {} The gateway runs on \
                         without its dashboard and tries again every {}s",
                        self.listen,
                        bind_advice(&error),
                        BIND_RETRY.as_secs()
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(BIND_RETRY) => {}
                    }
                }
            }
        };
        let mode = if self.console.auth.is_open() {
            "no password: anyone logged in to this machine can use it"
        } else {
            "password required"
        };
        tracing::info!(address = %self.listen, "dashboard on http://{} ({mode})", self.listen);
        let limits = crate::http::Limits {
            max_connections: MAX_CONNECTIONS,
            ..crate::http::Limits::default()
        };
        // In a span, so the server's own lines ("HTTP API listening") say whose they are.
        let served = crate::http::serve_with(listener, router(self.console), limits, shutdown)
            .instrument(tracing::info_span!("dashboard"))
            .await;
        sampler.abort();
        for seat in seat_samplers {
            seat.abort();
        }
        served.map_err(|error| anyhow::anyhow!("the dashboard's server failed: {error}"))
    }
}

/// What to do about a port that cannot be bound.
fn bind_advice(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another program (another smsgate?) listens there; stop it, or change admin.listen \
             (or set it to \"off\")."
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "no network interface of this machine has that address; use 127.0.0.1 or an \
             address this machine has."
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges; use a higher one."
        }
        _ => "check admin.listen.",
    }
}

fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/login", get(page::login_form).post(page::login))
        .route("/logout", post(page::logout))
        .route("/app.css", get(page::css))
        .route("/app.js", get(page::js))
        .route("/favicon.svg", get(page::icon))
        .route("/api/session", get(api::session))
        .route("/api/modems", get(api::modems))
        .route("/api/queues", get(api::queues))
        .route("/api/messages", get(api::messages))
        .route("/api/chart", get(api::chart))
        .route("/api/webhook/retry-dead", post(api::retry_dead))
        .route("/api/send", post(api::send))
        .route("/api/ussd", post(api::ussd))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(console.clone(), guard))
        .layer(middleware::from_fn(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(console)
}

/// Paths served before login (the login form and what it is drawn with).
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/app.css" | "/app.js" | "/favicon.svg")
}

/// The checks of [`auth`], before any handler.
async fn guard(State(console): State<Arc<Console>>, mut request: Request, next: Next) -> Response {
    let auth = &console.auth;
    let headers = request.headers();
    if let Err(refusal) = auth.check_host(headers) {
        return refused(refusal, false);
    }
    let path = request.uri().path().to_owned();
    let api = path.starts_with("/api/");
    let caller = auth.caller(headers);
    if is_public(&path) {
        if let Err(refusal) = auth.check_post(request.method(), headers, None) {
            return refused(refusal, api);
        }
        return next.run(request).await;
    }
    let Some(caller) = caller else {
        return refused(auth::Refusal::Unauthenticated, api);
    };
    if let Err(refusal) = auth.check_post(request.method(), headers, Some(&caller)) {
        tracing::warn!(%path, "dashboard: a cross-site request was refused");
        return refused(refusal, api);
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn refused(refusal: auth::Refusal, api: bool) -> Response {
    match refusal {
        auth::Refusal::Unauthenticated if api => api::error(
            StatusCode::UNAUTHORIZED,
            "log in first (the dashboard's login form, or HTTP Basic with the password)",
        ),
        auth::Refusal::Unauthenticated => Redirect::to("/login").into_response(),
        auth::Refusal::Forbidden(why) => api::error(StatusCode::FORBIDDEN, &why),
    }
}

/// Headers that keep the page in its own frame and its own origin: a strict Content Security
/// Policy (scripts, styles and connections from this origin only; no inline script), no
/// framing, no sniffing, no referrer to other sites, and nothing cached.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Not `no-referrer`: with it, browsers send `Origin: null` on the page's own POSTs.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

async fn not_found(request: Request) -> Response {
    api::error(
        StatusCode::NOT_FOUND,
        &format!("no such page: {}", request.uri().path()),
    )
}

#[cfg(test)]
mod tests;
