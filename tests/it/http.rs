//! The HTTP API over a real socket: `POST /message` (token, content type, size, every rule of
//! the channel documentation, rendering, the part cap, the bounded queue), `GET /health` and
//! `GET /metrics`. The outbox here is in memory (`MemoryOutbox`); `http_store` runs the same
//! API over the SQLite store.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use smsgate::http::{self, AppState, Backend, BoxFuture, ModemSnapshot, Settings};
use smsgate::modem::ModemState;
use smsgate::respond::WebhookMetrics;
use smsgate::store::{NewOutbound, OutboxStats, StoreError, WebhookStats};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "gfd8g7fd89dgfd";
pub const TOKEN: &str = "aaaxczsadzxcasdacxzcasd";
pub const CONTACT: &str = "+60177872890";

/// An outbox in memory, with knobs for what the store would report.
#[derive(Default)]
pub struct MemoryOutbox {
    pub messages: Mutex<Vec<NewOutbound>>,
    /// Pretend the oldest queued message has waited this long at the `now` it is asked at.
    pub stalled_for: Mutex<Option<Duration>>,
    pub backlog: Mutex<WebhookStats>,
}

impl MemoryOutbox {
    pub fn messages(&self) -> Vec<NewOutbound> {
        self.messages.lock().expect("lock").clone()
    }
}

impl Backend for MemoryOutbox {
    fn enqueue(&self, message: NewOutbound) -> BoxFuture<'_, Result<String, StoreError>> {
        Box::pin(async move {
            let mut messages = self.messages.lock().expect("lock");
            messages.push(message);
            Ok(format!("out-{}", messages.len()))
        })
    }

    fn outbox_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<OutboxStats, StoreError>> {
        Box::pin(async move {
            let messages = self.messages.lock().expect("lock");
            let stalled = self
                .stalled_for
                .lock()
                .expect("lock")
                .map(|waited| now_ms - waited.as_millis() as i64);
            Ok(OutboxStats {
                queued: messages.len() as u64,
                oldest_queued_ms: stalled.or_else(|| messages.first().map(|m| m.now_ms)),
                sending: 0,
                unknown: 0,
                unrecorded: 0,
            })
        })
    }

    fn webhook_stats(&self, _now_ms: i64) -> BoxFuture<'_, Result<WebhookStats, StoreError>> {
        Box::pin(async move { Ok(self.backlog.lock().expect("lock").clone()) })
    }
}

pub fn settings() -> Settings {
    Settings {
        channel_id: CHANNEL.into(),
        api_token: TOKEN.into(),
        body_limit: 64 * 1024,
        request_timeout: Duration::from_secs(5),
        max_queue_depth: 10_000,
        max_queue_age: Duration::from_secs(3600),
        max_parts: 10,
        smart_encoding: true,
        health_outbox_age: Duration::from_secs(600),
        health_webhook_age: Duration::from_secs(600),
        queue_stats_ttl: Duration::from_millis(250),
    }
}

pub fn ready_modem() -> ModemSnapshot {
    ModemSnapshot {
        state: ModemState::Ready,
        healthy: true,
        sim_ready: true,
        sim: "READY".into(),
        registered: true,
        registration: "home".into(),
        operator: Some("Maxis".into()),
        signal_dbm: Some(-75),
        ..ModemSnapshot::default()
    }
}

/// A running API on a loopback port.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub modem: watch::Sender<ModemSnapshot>,
    pub webhook: Arc<WebhookMetrics>,
    shutdown: CancellationToken,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Api {
    pub async fn start(settings: Settings, outbox: Arc<dyn Backend>) -> Api {
        let (modem, modem_rx) = watch::channel(ready_modem());
        let webhook = Arc::new(WebhookMetrics::default());
        let state = AppState::new(settings, outbox, Arc::new(modem_rx), Arc::clone(&webhook));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        tokio::spawn(http::serve(listener, http::router(state), shutdown.clone()));
        Api {
            base,
            client: reqwest::Client::new(),
            modem,
            webhook,
            shutdown,
        }
    }

    /// POSTs `body` to /message with the right token; returns status and JSON body.
    pub async fn send(&self, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/message", self.base))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

pub fn envelope(message: Value) -> Value {
    json!({"channelId": CHANNEL, "contactId": CONTACT, "message": message})
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn http_every_message_type_is_committed_rendered_then_answered() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(settings(), outbox.clone()).await;
    let cases = [
        (
            json!({"type": "text", "text": "Hello World"}),
            "Hello World",
            None,
        ),
        (
            json!({"type": "attachment", "attachment": {"type": "image",
                   "url": "https://abc/japan.png", "mimeType": "image/png",
                   "fileName": "company logo.png", "description": "latest company logo"}}),
            "latest company logo\nhttps://abc/japan.png",
            None,
        ),
        (
            json!({"type": "location", "latitude": 0.123456, "longitude": -0.1234,
                   "address": "Sky Suites, Kuala Lumpur"}),
            "Sky Suites, Kuala Lumpur\nhttps://maps.google.com/?q=0.123456,-0.1234",
            None,
        ),
        (
            json!({"type": "quick_reply", "title": "Select your preferred language",
                   "replies": ["Malay", "English"]}),
            "Select your preferred language\n1. Malay\n2. English",
            Some(vec!["Malay".to_owned(), "English".to_owned()]),
        ),
    ];
    for (index, (message, text, replies)) in cases.into_iter().enumerate() {
        let (status, body) = api.send(&envelope(message.clone())).await;
        assert_eq!(status, 200, "{message}: {body}");
        let m_id = body["mId"].as_str().expect("mId");
        assert!(!m_id.is_empty() && m_id.len() <= 50);
        let stored = outbox.messages();
        assert_eq!(stored.len(), index + 1, "committed before the answer");
        let last = &stored[index];
        assert_eq!(last.text, text);
        assert_eq!(last.contact_id, CONTACT);
        assert_eq!(last.parts, 1);
        assert_eq!(last.quick_replies, replies);
    }
}

#[tokio::test]
async fn http_a_7000_character_text_is_accepted_when_the_part_cap_allows() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(
        Settings {
            max_parts: 60,
            ..settings()
        },
        outbox.clone(),
    )
    .await;
    let text = "x".repeat(7_000);
    let (status, body) = api
        .send(&envelope(json!({"type": "text", "text": text})))
        .await;
    assert_eq!(status, 200, "{body}");
    let stored = outbox.messages();
    assert_eq!(stored[0].text.chars().count(), 7_000);
    // 7,000 GSM septets at 153 per part of a concatenated message (TS 23.040 §9.2.3.24.1).
    assert_eq!(stored[0].parts, 46);
}

#[tokio::test]
async fn http_over_the_part_cap_is_refused_with_the_part_count() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(settings(), outbox.clone()).await;
    let (status, body) = api
        .send(&envelope(
            json!({"type": "text", "text": "x".repeat(7_000)}),
        ))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        error_message(&body),
        "message: as SMS this takes 46 parts (gsm7), more than the 10 allowed \
         (sms.max_parts); shorten it"
    );
    // 10 parts of 153 septets is the most that fits.
    let (status, _) = api
        .send(&envelope(
            json!({"type": "text", "text": "y".repeat(1_530)}),
        ))
        .await;
    assert_eq!(status, 200);
    let (status, body) = api
        .send(&envelope(
            json!({"type": "text", "text": "y".repeat(1_531)}),
        ))
        .await;
    assert_eq!(status, 422);
    assert!(error_message(&body).contains("takes 11 parts"), "{body}");
    assert_eq!(outbox.messages().len(), 1);
}

#[tokio::test]
async fn http_every_validation_rule_is_a_400_naming_field_and_rule() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(settings(), outbox.clone()).await;
    let long = "z".repeat(257);
    let text = json!({"type": "text", "text": "hi"});
    let cases = [
        (
            json!({"contactId": CONTACT, "message": text}),
            "channelId: is required",
        ),
        (
            json!({"channelId": "someone-else", "contactId": CONTACT, "message": text}),
            "channelId: \"someone-else\" is not this channel's ID",
        ),
        (
            json!({"channelId": CHANNEL, "message": text}),
            "contactId: is required",
        ),
        (
            json!({"channelId": CHANNEL, "contactId": "60177872890", "message": text}),
            "contactId: \"60177872890\" is not an E.164 phone number",
        ),
        (
            json!({"channelId": CHANNEL, "contactId": "+60 17 787", "message": text}),
            "contactId: \"+60 17 787\" is not an E.164 phone number",
        ),
        (
            json!({"channelId": CHANNEL, "contactId": CONTACT}),
            "message: is required",
        ),
        (
            envelope(json!({"type": "sticker", "sticker": "cat"})),
            "message.type: unknown message type \"sticker\"; this channel takes text, \
             attachment, location and quick_reply",
        ),
        (
            envelope(json!({"type": "text"})),
            "message.text: is required",
        ),
        (
            envelope(json!({"type": "text", "text": "x".repeat(7_001)})),
            "message.text: must be at most 7000 characters, not 7001",
        ),
        (
            envelope(json!({"type": "attachment", "attachment": {"type": "sticker", "url": "u"}})),
            "message.attachment.type: \"sticker\" is not an attachment type; use image, \
             video, audio or file",
        ),
        (
            envelope(json!({"type": "attachment", "attachment": {"type": "file"}})),
            "message.attachment.url: is required",
        ),
        (
            envelope(
                json!({"type": "attachment", "attachment": {"type": "file", "url": "u".repeat(2_001)}}),
            ),
            "message.attachment.url: must be at most 2000 characters, not 2001",
        ),
        (
            envelope(
                json!({"type": "attachment", "attachment": {"type": "file", "url": "u", "fileName": long}}),
            ),
            "message.attachment.fileName: must be at most 256 characters, not 257",
        ),
        (
            envelope(
                json!({"type": "attachment", "attachment": {"type": "image", "url": "u", "description": long}}),
            ),
            "message.attachment.description: must be at most 256 characters, not 257",
        ),
        (
            envelope(json!({"type": "location", "latitude": -91, "longitude": 0})),
            "message.latitude: must be between -90 and 90 degrees, not -91",
        ),
        (
            envelope(json!({"type": "location", "latitude": 0, "longitude": 180.5})),
            "message.longitude: must be between -180 and 180 degrees, not 180.5",
        ),
        (
            envelope(json!({"type": "location", "latitude": 0, "longitude": 0, "address": long})),
            "message.address: must be at most 256 characters, not 257",
        ),
        (
            envelope(json!({"type": "quick_reply", "title": long, "replies": ["a"]})),
            "message.title: must be at most 256 characters, not 257",
        ),
        (
            envelope(json!({"type": "quick_reply", "title": "t", "replies": []})),
            "message.replies: must hold 1 to 10 replies, not 0",
        ),
        (
            envelope(json!({"type": "quick_reply", "title": "t",
                            "replies": ["1","2","3","4","5","6","7","8","9","10","11"]})),
            "message.replies: must hold 1 to 10 replies, not 11",
        ),
        (
            envelope(json!({"type": "quick_reply", "title": "t", "replies": ["ok", long]})),
            "message.replies[1]: must be at most 256 characters, not 257",
        ),
    ];
    for (body, want) in cases {
        let (status, answer) = api.send(&body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(error_message(&answer).starts_with(want), "{body}: {answer}");
    }
    assert!(outbox.messages().is_empty(), "nothing refused was queued");
}

#[tokio::test]
async fn http_wrong_or_missing_token_is_401() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(settings(), outbox.clone()).await;
    let body = envelope(json!({"type": "text", "text": "hi"}));
    let url = format!("{}/message", api.base);
    let cases = [
        (None, "missing Authorization header"),
        (Some("Bearer wrong-token"), "invalid API token"),
        (Some(&*format!("Bearer {TOKEN}x")), "invalid API token"),
        (
            Some(&*format!("Basic {TOKEN}")),
            "the Authorization header must be",
        ),
    ];
    for (authorization, want) in cases {
        let mut request = api.client.post(&url).json(&body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status().as_u16(), 401, "{authorization:?}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        let answer: Value = response.json().await.expect("json");
        assert!(
            error_message(&answer).starts_with(want),
            "{authorization:?}: {answer}"
        );
    }
    assert!(outbox.messages().is_empty());
}

#[tokio::test]
async fn http_an_oversize_body_is_413_with_or_without_a_length() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(
        Settings {
            body_limit: 4_096,
            ..settings()
        },
        outbox.clone(),
    )
    .await;
    let big = envelope(json!({"type": "text", "text": "x".repeat(5_000)}));
    let (status, answer) = api.send(&big).await;
    assert_eq!(status, 413);
    assert_eq!(
        error_message(&answer),
        "the request body is larger than 4096 bytes"
    );
    // Chunked, so no Content-Length announces it: caught while reading.
    let bytes = serde_json::to_vec(&big).expect("json");
    let status = post_chunked(&api.base, &bytes).await;
    assert_eq!(status, 413);
    assert!(outbox.messages().is_empty());
}

/// POSTs `body` in two chunks (Transfer-Encoding: chunked, no Content-Length) over a raw
/// connection; returns the status code.
async fn post_chunked(base: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let head = format!(
        "POST /message HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let half = body.len() / 2;
    for chunk in [&body[..half], &body[half..]] {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and close before the whole body is written.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

#[tokio::test]
async fn http_a_body_that_stalls_is_408_after_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(
        Settings {
            request_timeout: Duration::from_millis(300),
            ..settings()
        },
        outbox.clone(),
    )
    .await;
    let address = api.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /message HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"channelId\""
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = std::time::Instant::now();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered before the test's deadline")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert!(outbox.messages().is_empty());
}

#[tokio::test]
async fn http_content_type_and_malformed_json() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(settings(), outbox).await;
    let url = format!("{}/message", api.base);
    let response = api
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 415);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(
        error_message(&answer),
        "Content-Type must be application/json, not \"text/plain\""
    );

    let response = api
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"channelId\": \"gfd8g7fd89dgfd\",\n\"contactId\": +601}")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(
        error_message(&answer),
        "malformed JSON at line 2, column 14: expected value"
    );
}

#[tokio::test]
async fn http_a_full_or_stalled_outbox_is_429_saying_why() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(
        Settings {
            max_queue_depth: 3,
            ..settings()
        },
        outbox.clone(),
    )
    .await;
    let body = envelope(json!({"type": "text", "text": "hi"}));
    for _ in 0..3 {
        assert_eq!(api.send(&body).await.0, 200);
    }
    let response = api
        .client
        .post(format!("{}/message", api.base))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let answer: Value = response.json().await.expect("json");
    assert_eq!(
        error_message(&answer),
        "the outbox is full: 3 messages wait to be sent (limit 3, http.max_queue_depth); \
         retry later"
    );
    assert_eq!(outbox.messages().len(), 3);

    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(settings(), outbox.clone()).await;
    *outbox.stalled_for.lock().expect("lock") = Some(Duration::from_secs(2 * 3600));
    let (status, answer) = api.send(&body).await;
    assert_eq!(status, 429);
    assert!(
        error_message(&answer).starts_with("the outbox is stalled: its oldest message has waited 7200 s (limit 3600 s, http.max_queue_age)"),
        "{answer}"
    );
}

#[tokio::test]
async fn http_health_is_terse_without_the_token_and_detailed_with_it() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(settings(), outbox.clone()).await;
    let url = format!("{}/health", api.base);
    let response = api.client.get(&url).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"status": "ok"})
    );

    api.modem.send_modify(|modem| {
        modem.registered = false;
        modem.registration = "searching".into();
    });
    let response = api.client.get(&url).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"status": "degraded"})
    );

    let response = api
        .client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 503);
    let report: Value = response.json().await.expect("json");
    assert_eq!(report["status"], "degraded");
    let failing: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(failing, ["registration"]);

    // A failing webhook shows up too, until a request succeeds again.
    api.modem.send_modify(|modem| modem.registered = true);
    api.webhook.record_failure(
        smsgate::respond::retry::FailureKind::Transient,
        "HTTP 503",
        chrono::Utc::now().timestamp_millis(),
    );
    let report: Value = api
        .client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let failing: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default(),
                c["detail"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(failing, [("webhook_last_error", "HTTP 503")]);

    let response = api
        .client
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn http_metrics_need_the_token() {
    let outbox = Arc::new(MemoryOutbox::default());
    let api = Api::start(settings(), outbox.clone()).await;
    assert_eq!(
        api.send(&envelope(json!({"type": "text", "text": "hi"})))
            .await
            .0,
        200
    );
    let url = format!("{}/metrics", api.base);
    let response = api.client.get(&url).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 401);
    let response = api
        .client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("text");
    for line in [
        "smsgate_outbox_messages{state=\"queued\"} 1\n",
        "smsgate_http_messages_accepted_total 1\n",
        "smsgate_modem_signal_dbm -75\n",
        "smsgate_webhook_requests_total 0\n",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

#[tokio::test]
async fn http_unknown_routes_answer_in_the_error_shape() {
    let api = Api::start(settings(), Arc::new(MemoryOutbox::default())).await;
    let response = api
        .client
        .get(format!("{}/messages", api.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 404);
    let answer: Value = response.json().await.expect("json");
    assert!(error_message(&answer).starts_with("no route GET /messages"));
}

#[tokio::test]
async fn http_a_wrong_method_answers_405_in_the_error_shape() {
    let api = Api::start(settings(), Arc::new(MemoryOutbox::default())).await;
    let response = api
        .client
        .get(format!("{}/message", api.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 405);
    let answer: Value = response.json().await.expect("json");
    assert!(
        error_message(&answer).starts_with("GET is not served on /message"),
        "{answer}"
    );
}

/// An outbox whose commit takes a while, to have a request in flight at shutdown.
struct SlowCommit(MemoryOutbox, tokio::sync::Notify);

impl Backend for SlowCommit {
    fn enqueue(&self, message: NewOutbound) -> BoxFuture<'_, Result<String, StoreError>> {
        Box::pin(async move {
            self.1.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.0.enqueue(message).await
        })
    }
    fn outbox_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<OutboxStats, StoreError>> {
        self.0.outbox_stats(now_ms)
    }
    fn webhook_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<WebhookStats, StoreError>> {
        self.0.webhook_stats(now_ms)
    }
}

#[tokio::test]
async fn http_shutdown_answers_the_request_in_flight_then_stops() {
    let (_modem, modem_rx) = watch::channel(ready_modem());
    let outbox = Arc::new(SlowCommit(
        MemoryOutbox::default(),
        tokio::sync::Notify::new(),
    ));
    let state = AppState::new(
        settings(),
        outbox.clone(),
        Arc::new(modem_rx),
        Arc::default(),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let url = format!("http://{}/message", listener.local_addr().expect("address"));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(http::serve(listener, http::router(state), shutdown.clone()));
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(TOKEN)
            .json(&envelope(json!({"type": "text", "text": "in flight"})))
            .send()
            .await
            .map(|response| response.status().as_u16())
    });
    // Shut down once the request is inside the commit.
    tokio::time::timeout(Duration::from_secs(5), outbox.1.notified())
        .await
        .expect("the commit starts");
    assert!(outbox.0.messages().is_empty(), "still committing");
    shutdown.cancel();
    let status = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("answered")
        .expect("task")
        .expect("the request in flight gets its answer");
    assert_eq!(status, 200);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops after draining")
        .expect("task")
        .expect("serve returns Ok");
    assert_eq!(outbox.0.messages().len(), 1);
}
