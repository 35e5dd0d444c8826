//! The HTTP API and the webhook worker over the real SQLite store (a temporary file, WAL,
//! `synchronous=FULL`): a `200` means the row is on disk; the queue limit counts real rows; the
//! worker drains the store's event queue to the stand-in in per-contact order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use smsgate::http::Settings;
use smsgate::respond::retry::RetryPolicy;
use smsgate::respond::{ClientOptions, RateLimiter, WebhookClient, Worker, WorkerOptions};
use smsgate::store::{OutboundState, Store};
use tokio_util::sync::CancellationToken;

use super::http::{Api, envelope, settings};
use super::webhook::{Reply, StandIn};

async fn file_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(&dir.path().join("smsgate.db"))
        .await
        .expect("open the database");
    (dir, store)
}

#[tokio::test]
async fn http_store_an_accepted_message_is_on_disk_before_the_answer() {
    let (dir, store) = file_store().await;
    let api = Api::start(settings(), Arc::new(store.clone())).await;
    let (status, body) = api
        .send(&envelope(
            json!({"type": "quick_reply", "title": "Pick one",
                                "replies": ["Yes", "No"]}),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let m_id = body["mId"].as_str().expect("mId").to_owned();
    assert!(m_id.len() <= 50, "{m_id}");
    // A second handle on the same file sees the committed row.
    drop(api);
    let reopened = Store::open(&dir.path().join("smsgate.db"))
        .await
        .expect("reopen");
    let row = reopened
        .outbound_state(&m_id)
        .await
        .expect("read")
        .expect("the accepted message is stored");
    assert_eq!(row.state, OutboundState::Queued);
    assert_eq!(row.parts, 1);
    drop(store);
}

#[tokio::test]
async fn http_store_the_queue_limit_counts_stored_messages() {
    let (_dir, store) = file_store().await;
    let api = Api::start(
        Settings {
            max_queue_depth: 5,
            queue_stats_ttl: Duration::ZERO,
            ..settings()
        },
        Arc::new(store.clone()),
    )
    .await;
    let body = envelope(json!({"type": "text", "text": "hello"}));
    for _ in 0..5 {
        assert_eq!(api.send(&body).await.0, 200);
    }
    let (status, answer) = api.send(&body).await;
    assert_eq!(status, 429, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("the outbox is full: 5 messages wait to be sent"),
        "{answer}"
    );
    let stats = store.outbox_stats(0).await.expect("stats");
    assert_eq!(stats.queued, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_store_the_worker_drains_the_stores_queue_in_order_through_an_outage() {
    let (_dir, store) = file_store().await;
    let stand_in = StandIn::default();
    let url = stand_in.start().await;
    let now = chrono::Utc::now().timestamp_millis();
    let contacts = ["+60100000001", "+60100000002", "+60100000003"];
    for n in 0..6 {
        for contact in contacts {
            let event = json!({"type": "message", "mId": format!("{contact}-{n}"),
                               "timestamp": now + n, "message": {"type": "text", "text": "hi"}});
            store
                .enqueue_event(
                    contact,
                    serde_json::from_value(event).expect("an event"),
                    now + n,
                )
                .await
                .expect("enqueue");
        }
    }
    stand_in.script([
        Reply::Status(503),
        Reply::Status(500),
        Reply::TooMany { retry_after_s: 1 },
    ]);
    let client = WebhookClient::new(&ClientOptions {
        webhook_url: url,
        channel_id: "chan-1".into(),
        api_token: "webhook-token".into(),
        request_timeout: Duration::from_secs(30),
    })
    .expect("client");
    let options = WorkerOptions {
        retry: RetryPolicy {
            base_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(400),
            ..RetryPolicy::default()
        },
        max_events_per_request: 4,
        max_in_flight: 8,
        idle_poll: Duration::from_millis(20),
    };
    let worker = Worker::new(
        store.clone(),
        client,
        Arc::new(RateLimiter::new(20, 1)),
        options,
    )
    .with_notify(store.event_signal());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let started = Instant::now();
    loop {
        let stats = store.webhook_stats(0).await.expect("stats");
        if stats.pending == 0 {
            assert_eq!(stats.dead, 0);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still pending: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.expect("worker task");

    let seen = stand_in.seen();
    for contact in contacts {
        let delivered: Vec<String> = seen
            .iter()
            .filter(|s| matches!(s.reply, Reply::Ok) && s.body["contactId"] == contact)
            .flat_map(|s| s.body["events"].as_array().cloned().unwrap_or_default())
            .map(|e| e["mId"].as_str().unwrap_or_default().to_owned())
            .collect();
        let expected: Vec<String> = (0..6).map(|n| format!("{contact}-{n}")).collect();
        assert_eq!(delivered, expected, "events of {contact}");
    }
}

#[tokio::test]
async fn http_store_metrics_read_the_database() {
    let (_dir, store) = file_store().await;
    let api = Api::start(settings(), Arc::new(store.clone())).await;
    assert_eq!(
        api.send(&envelope(json!({"type": "text", "text": "hello"})))
            .await
            .0,
        200
    );
    let text = api
        .client
        .get(format!("{}/metrics", api.base))
        .bearer_auth(super::http::TOKEN)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    for line in [
        "smsgate_outbox_messages{state=\"queued\"} 1\n",
        "smsgate_messages_sent_total 0\n",
        "smsgate_messages_received_total 0\n",
        "smsgate_webhook_pending_events 0\n",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}
