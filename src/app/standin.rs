//! A local stand-in for respond.io's webhook endpoint, used by `smsgate demo`, the end-to-end
//! tests and the benchmarks. It records every request (arrival and answer time, authorization
//! header, JSON body), can print each event as it arrives, can be told to fail (a status code,
//! `429` with `Retry-After`, or a hang, for every request or scripted for the next ones) so
//! tests can take respond.io down and bring it back, and can take its time to answer (a fixed
//! or random delay, as respond.io at a Pi's distance does). It counts the requests it holds at
//! once, and any two it holds at once for one contact.
//!
//! It is deliberately not a respond.io emulator: it checks only what our side must get right on
//! the wire (a JSON body with `channelId`, `contactId` and a non-empty `events` list, and the
//! Bearer token) and answers `400` otherwise, as the real endpoint would.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived.
    pub at: Instant,
    /// When the answer left (`None` while the stand-in still holds it, or for a hang).
    pub answered_at: Option<Instant>,
    /// The `authorization` header, as sent.
    pub authorization: Option<String>,
    /// The JSON body.
    pub body: Value,
    /// The status the stand-in answered.
    pub answered: u16,
}

impl Recorded {
    /// The events of this request.
    pub fn events(&self) -> &[Value] {
        self.body["events"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The request's `contactId`.
    pub fn contact_id(&self) -> &str {
        self.body["contactId"].as_str().unwrap_or("")
    }
}

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 "OK"`, as respond.io does.
    Accept,
    /// Answer this status code (e.g. 500, 401) and do not record the events as accepted.
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    TooManyRequests { retry_after_secs: u64 },
    /// Never answer (the client's timeout must fire); recorded with `answered: 0`.
    Hang,
}

#[derive(Debug)]
struct Shared {
    token: String,
    print: bool,
    behaviour: Mutex<Behaviour>,
    /// Behaviours for the next requests, one each, before `behaviour` again.
    script: Mutex<VecDeque<Behaviour>>,
    /// How long each answer takes: a random time in this range.
    delay: Mutex<(Duration, Duration)>,
    requests: Mutex<Vec<Recorded>>,
    holding: Mutex<Holding>,
}

/// Requests the stand-in holds right now.
#[derive(Debug, Default)]
struct Holding {
    now: usize,
    most: usize,
    by_contact: HashMap<String, usize>,
    /// Requests that arrived while another one for the same contact was held.
    overlaps: usize,
}

/// A running stand-in; dropping it does not stop it, [`StandIn::stop`] does.
#[derive(Clone, Debug)]
pub struct StandIn {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl StandIn {
    /// Starts a stand-in on `address` (port 0 picks a free one) expecting `token`. With `print`,
    /// every event is printed on stdout as one line (the `demo` view).
    pub async fn start(address: SocketAddr, token: &str, print: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            print,
            behaviour: Mutex::new(Behaviour::Accept),
            script: Mutex::new(VecDeque::new()),
            delay: Mutex::new((Duration::ZERO, Duration::ZERO)),
            requests: Mutex::new(Vec::new()),
            holding: Mutex::new(Holding::default()),
        });
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/", post(webhook))
            .route("/custom/channel/webhook/", post(webhook))
            .with_state(shared.clone());
        let stopped = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "respond.io stand-in stopped");
            }
        });
        Ok(Self {
            address,
            shared,
            stop,
        })
    }

    /// The webhook URL to put in `respond.webhook_url`.
    pub fn url(&self) -> String {
        format!("http://{}/custom/channel/webhook/", self.address)
    }

    /// Changes how the next requests are answered.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// Answers the next requests with `behaviours`, one each, then as [`StandIn::set_behaviour`]
    /// says again.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        lock(&self.shared.script).extend(behaviours);
    }

    /// Every answer takes `delay` (respond.io's round trip as a Pi sees it).
    pub fn set_answer_delay(&self, delay: Duration) {
        *lock(&self.shared.delay) = (delay, delay);
    }

    /// Every answer takes a random time between `min` and `max`.
    pub fn set_answer_delay_range(&self, min: Duration, max: Duration) {
        *lock(&self.shared.delay) = (min, max.max(min));
    }

    /// The most requests the stand-in held at once.
    pub fn most_held_at_once(&self) -> usize {
        lock(&self.shared.holding).most
    }

    /// How many requests arrived while another one for the same contact was still held (a
    /// client that keeps each contact's order never causes one).
    pub fn overlaps(&self) -> usize {
        lock(&self.shared.holding).overlaps
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// Every event of every request that was answered 2xx, in arrival order, with its contact.
    pub fn accepted_events(&self) -> Vec<(String, Value)> {
        lock(&self.shared.requests)
            .iter()
            .filter(|request| {
                (200..300).contains(&request.answered) && request.answered_at.is_some()
            })
            .flat_map(|request| {
                let contact = request.contact_id().to_owned();
                request
                    .events()
                    .iter()
                    .map(move |event| (contact.clone(), event.clone()))
            })
            .collect()
    }

    /// Waits until `done` holds for the accepted events, or `deadline` passes. Returns the
    /// events either way so a failing test can show what arrived.
    pub async fn wait_for<F>(
        &self,
        deadline: Duration,
        done: F,
    ) -> Result<Vec<(String, Value)>, Vec<(String, Value)>>
    where
        F: Fn(&[(String, Value)]) -> bool,
    {
        let until = Instant::now() + deadline;
        loop {
            let events = self.accepted_events();
            if done(&events) {
                return Ok(events);
            }
            if Instant::now() >= until {
                return Err(events);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock can only come from a failing test; keep serving.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn webhook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let arrived = Instant::now();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let behaviour = lock(&shared.script)
        .pop_front()
        .unwrap_or_else(|| *lock(&shared.behaviour));
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let contact = parsed
        .as_ref()
        .ok()
        .and_then(|body| body["contactId"].as_str())
        .unwrap_or("")
        .to_owned();
    if behaviour == Behaviour::Hang {
        // Recorded with status 0: it arrived and was never answered.
        lock(&shared.requests).push(Recorded {
            at: arrived,
            answered_at: None,
            authorization,
            body: parsed.unwrap_or(Value::Null),
            answered: 0,
        });
        std::future::pending::<()>().await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let (status, answer) = match (&parsed, behaviour) {
        (_, Behaviour::Status(code)) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "failing on purpose".to_owned(),
        ),
        (_, Behaviour::TooManyRequests { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, "rate limited".to_owned())
        }
        _ if authorization.as_deref() != Some(&format!("Bearer {}", shared.token)) => {
            (StatusCode::UNAUTHORIZED, "invalid token".to_owned())
        }
        (Err(error), _) => (StatusCode::BAD_REQUEST, format!("invalid JSON: {error}")),
        (Ok(body), _) if !is_webhook_body(body) => (
            StatusCode::BAD_REQUEST,
            "channelId, contactId and a non-empty events list are required".to_owned(),
        ),
        (Ok(_), _) => (StatusCode::OK, "OK".to_owned()),
    };
    let body = parsed.unwrap_or(Value::Null);
    let index = {
        let mut requests = lock(&shared.requests);
        requests.push(Recorded {
            at: arrived,
            answered_at: None,
            authorization,
            body: body.clone(),
            answered: status.as_u16(),
        });
        requests.len() - 1
    };
    {
        let mut holding = lock(&shared.holding);
        holding.now += 1;
        holding.most = holding.most.max(holding.now);
        let same = holding.by_contact.entry(contact.clone()).or_insert(0);
        *same += 1;
        if *same > 1 {
            holding.overlaps += 1;
        }
    }
    // A guard, so that a request the client gave up on (the handler dropped mid-delay) is not
    // counted as held for ever.
    let _held = Held {
        shared: &shared,
        contact,
    };
    let (min, max) = *lock(&shared.delay);
    let delay = if max > min {
        rand::rng().random_range(min..=max)
    } else {
        min
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if shared.print && status.is_success() {
        print_events(&body);
    }
    if let Some(request) = lock(&shared.requests).get_mut(index) {
        request.answered_at = Some(Instant::now());
    }
    let mut response = if status.is_success() {
        axum::Json(answer).into_response()
    } else {
        (
            status,
            axum::Json(serde_json::json!({"error": {"message": answer}})),
        )
            .into_response()
    };
    *response.status_mut() = status;
    if let Behaviour::TooManyRequests { retry_after_secs } = behaviour {
        if let Ok(value) = retry_after_secs.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// One request held by the stand-in, counted until its answer leaves (or it is dropped).
struct Held<'a> {
    shared: &'a Shared,
    contact: String,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut holding = lock(&self.shared.holding);
        holding.now = holding.now.saturating_sub(1);
        if let Some(same) = holding.by_contact.get_mut(&self.contact) {
            *same = same.saturating_sub(1);
            if *same == 0 {
                holding.by_contact.remove(&self.contact);
            }
        }
    }
}

fn is_webhook_body(body: &Value) -> bool {
    body["channelId"].is_string()
        && body["contactId"].is_string()
        && body["events"]
            .as_array()
            .is_some_and(|events| !events.is_empty())
}

/// Prints each event as one readable line, e.g.
/// `respond.io ← +60177872890 message "Hello" (mId …)`.
fn print_events(body: &Value) {
    let contact = body["contactId"].as_str().unwrap_or("?");
    for event in body["events"].as_array().into_iter().flatten() {
        let kind = event["type"].as_str().unwrap_or("?");
        let mid = event["mId"].as_str().unwrap_or("?");
        let detail = match kind {
            "message_status" => {
                let value = event["status"]["value"].as_str().unwrap_or("?");
                match event["status"]["message"].as_str() {
                    Some(message) => format!("{value}: {message}"),
                    None => value.to_owned(),
                }
            }
            _ => format!("{:?}", event["message"]["text"].as_str().unwrap_or("")),
        };
        println!("respond.io ← {contact} {kind} {detail} (mId {mid})");
    }
}
