//! The store on real files: WAL and schema versions, nothing lost when dropped or killed mid
//! burst, pruning, the webhook queue read back as the respond.io worker would, and its speed.
//! The clock is a counter the tests move.

use smsgate::config::{AlphanumericPolicy, UnknownPolicy};
use smsgate::inbox::Inbox;
use smsgate::outbox::SendOutcome;
use smsgate::store::{OutboundState, Source, Store};
use smsgate::wire::{Event, StatusValue};
use std::path::Path;
use std::time::Duration;

use crate::store_fixtures::*;

#[tokio::test]
async fn store_file_is_wal_and_reopens_at_the_same_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.db");
    let store = open(&path).await;
    assert_eq!(store.journal_mode().await.expect("mode"), "wal");
    let version = store.schema_version().await.expect("version");
    assert!(version >= 1);
    drop(store);
    let store = open(&path).await;
    assert_eq!(store.schema_version().await.expect("version"), version);
}

#[tokio::test]
async fn store_refuses_a_database_from_a_newer_smsgate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.db");
    drop(open(&path).await);
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.pragma_update(None, "user_version", 1000)
        .expect("bump version");
    drop(conn);
    let error = Store::open(&path)
        .await
        .expect_err("must refuse")
        .to_string();
    assert!(error.contains("1000") && error.contains("newer"), "{error}");
}

#[tokio::test]
async fn store_keeps_every_accepted_message_when_dropped_mid_burst() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.db");
    let store = open(&path).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut msg = new_message(CONTACT, &format!("burst {i}"), T0 + i);
            msg.source = Source::Cli;
            store.enqueue_outbound(msg).await
        }));
    }
    // Take the answers of half, abandon the rest mid-flight, drop every handle.
    let mut accepted = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if i % 2 == 0 {
            accepted.push(task.await.expect("join").expect("enqueue"));
        } else {
            task.abort();
        }
    }
    drop(store);

    let store = open(&path).await;
    for m_id in &accepted {
        let row = store.outbound_state(m_id).await.expect("query");
        assert_eq!(row.map(|r| r.state), Some(OutboundState::Queued), "{m_id}");
    }
    // Each message was committed together with its echo: one consistent snapshot (a single
    // statement) never shows one without the other, even while abandoned requests still land.
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let (messages, echoes): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM outbound),
                    (SELECT count(*) FROM event WHERE body LIKE '%\"message_echo\"%')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("snapshot");
    assert_eq!(messages, echoes);
    assert!(messages as usize >= accepted.len());
}

#[tokio::test]
async fn store_prunes_only_finished_rows() {
    let store = Store::open_in_memory().await.expect("open");
    let clock = Clock::new();
    let modem = FakeModem::default();
    let done = store
        .enqueue_outbound(new_message(CONTACT, "old", T0))
        .await
        .expect("enqueue");
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend));
    assert!(matches!(
        outbox.try_one().await.expect("step"),
        SendOutcome::Sent { .. }
    ));
    let queued = store
        .enqueue_outbound(new_message("+60123456789", "still waiting", T0))
        .await
        .expect("enqueue");
    store
        .enqueue_outbound(new_message("+60123456789", "behind it", T0))
        .await
        .expect("enqueue");
    drain_events(&store).await;

    let pruned = store.prune(T0 + 1).await.expect("prune");
    assert_eq!(pruned.outbound, 1);
    assert!(pruned.events >= 1);
    assert!(store.outbound_state(&done).await.expect("q").is_none());
    assert!(store.outbound_state(&queued).await.expect("q").is_some());
}

#[tokio::test]
async fn events_of_one_contact_leave_in_order() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let inbox =
        Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep)).with_clock(clock.func());
    inbox
        .receive_part(part(international(CONTACT), 0, "question", None))
        .await
        .expect("in");
    let mut echo = new_message(CONTACT, "answer", T0);
    echo.source = Source::Cli;
    let m_id = store.enqueue_outbound(echo).await.expect("out");
    outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend))
        .try_one()
        .await
        .expect("send");

    let first = store
        .next_event_batch(T0, 1)
        .await
        .expect("q")
        .expect("batch");
    assert_eq!(first.events[0]["type"], "message");
    store
        .events_retry(&first.event_ids, T0 + 5000, "HTTP 503")
        .await
        .expect("retry");
    assert_eq!(
        store.next_event_batch(T0, 10).await.expect("q"),
        None,
        "nothing overtakes"
    );
    let batch = store
        .next_event_batch(T0 + 5000, 10)
        .await
        .expect("q")
        .expect("batch");
    let kinds: Vec<&str> = batch
        .events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds, vec!["message", "message_echo", "message_status"]);
    assert_eq!(batch.events[1]["mId"], m_id.as_str());
    let totals = store.totals().await.expect("totals");
    assert_eq!((totals.received, totals.sent), (1, 1));
    assert_eq!(batch.attempts, 1);
}

/// Durable accepts per second with 64 concurrent writers (run with `--ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn store_enqueue_throughput() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let store = open(&dir.path().join("smsgate.db")).await;
    let total = 4000usize;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (worker..total).step_by(64) {
                let t = std::time::Instant::now();
                store
                    .enqueue_outbound(new_message(CONTACT, &format!("m{i}"), T0))
                    .await
                    .expect("enqueue");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("join"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{total} durable enqueues, 64 writers: {:.0}/s, p50 {:?}, p99 {:?}",
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
}

/// How long picking the next batch takes with a large backlog (run with `--ignored --nocapture`).
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn store_next_batch_with_a_large_backlog() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let store = open(&dir.path().join("smsgate.db")).await;
    let mut tasks = Vec::new();
    for i in 0..50_000i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .enqueue_event(
                    &format!("+6012{:07}", i % 5000),
                    Event::status(format!("m{i}"), T0 + i, StatusValue::Sent),
                    T0 + i,
                )
                .await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("enqueue");
    }
    let started = std::time::Instant::now();
    for _ in 0..100 {
        let batch = store
            .next_event_batch(T0 + 100_000, 20)
            .await
            .expect("q")
            .expect("batch");
        store
            .events_delivered(&batch.event_ids, T0)
            .await
            .expect("delivered");
    }
    println!(
        "next_event_batch + delivered, 50k pending: {:?} per batch",
        started.elapsed() / 100
    );
}

/// Set for the child process of [`store_survives_sigkill_mid_burst`]: the database it writes.
const CRASH_CHILD_DB: &str = "SMSGATE_STORE_CRASH_CHILD_DB";

/// Runs only as that child: enqueues forever, printing each mId once its commit returned.
#[tokio::test]
#[ignore = "the child half of store_survives_sigkill_mid_burst"]
async fn store_crash_child() {
    let Some(path) = std::env::var_os(CRASH_CHILD_DB) else {
        return;
    };
    let store = open(Path::new(&path)).await;
    let (accepted, mut printed) = tokio::sync::mpsc::unbounded_channel::<String>();
    for writer in 0..16 {
        let (store, accepted) = (store.clone(), accepted.clone());
        tokio::spawn(async move {
            for i in 0.. {
                let mut msg = new_message(CONTACT, &format!("w{writer} m{i}"), T0 + i);
                msg.source = Source::Cli;
                let m_id = store.enqueue_outbound(msg).await.expect("enqueue");
                if accepted.send(m_id).is_err() {
                    return;
                }
            }
        });
    }
    use std::io::Write as _;
    while let Some(m_id) = printed.recv().await {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "accepted {m_id}").expect("stdout");
        stdout.flush().expect("flush");
    }
}

#[tokio::test]
async fn store_survives_sigkill_mid_burst() {
    use tokio::io::AsyncBufReadExt as _;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.db");
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "store::store_crash_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CRASH_CHILD_DB, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the child");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut accepted = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while accepted.len() < 300 {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("the child accepts messages in time")
            .expect("read")
            .expect("the child is still running");
        if let Some(m_id) = line.strip_prefix("accepted ") {
            accepted.push(m_id.to_owned());
        }
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");

    let store = open(&path).await;
    for m_id in &accepted {
        let row = store.outbound_state(m_id).await.expect("query");
        assert!(row.is_some(), "{m_id} was accepted, so it must survive");
    }
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let (messages, echoes): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM outbound),
                    (SELECT count(*) FROM event WHERE body LIKE '%\"message_echo\"%')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("snapshot");
    assert_eq!(messages, echoes, "never a message without its echo");
    assert!(messages as usize >= accepted.len());
}
