//! The durable core end to end, without a modem: the store on real files, the outbox driven
//! step by step through a scripted fake modem, the inbox fed parts directly, and the webhook
//! queue read back as the respond.io worker would. The clock is a counter the tests move.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use serde_json::{Value, json};
use smsgate::config::{AlphanumericPolicy, ModemConfig, SmsConfig, UnknownPolicy};
use smsgate::inbox::{Inbox, InboxOptions, ReceivedPart};
use smsgate::outbox::{Outbox, OutboxOptions, PartSender, SendFailure, SendOutcome};
use smsgate::pdu::{Address, Concat, EncodedPart, Encoding, TypeOfNumber};
use smsgate::store::{
    InboundOutcome, NewOutbound, OutboundState, ReportOutcome, Source, StatusReportInput, Store,
};
use smsgate::wire::{Event, StatusValue};

const T0: i64 = 1_700_000_000_000;
const CONTACT: &str = "+60177872890";

// ---------------------------------------------------------------- helpers

#[derive(Clone)]
struct Clock(Arc<AtomicI64>);

impl Clock {
    fn new() -> Self {
        Clock(Arc::new(AtomicI64::new(T0)))
    }
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
    fn func(&self) -> impl Fn() -> i64 + Send + Sync + 'static {
        let inner = self.0.clone();
        move || inner.load(Ordering::SeqCst)
    }
}

/// A modem that answers from a script (then with increasing TP-MRs) and records every part.
#[derive(Clone, Default)]
struct FakeModem(Arc<Mutex<FakeState>>);

#[derive(Default)]
struct FakeState {
    script: VecDeque<Result<u8, SendFailure>>,
    next_mr: u8,
    sent: Vec<(Vec<u8>, bool)>,
}

impl FakeModem {
    fn script(&self, answers: impl IntoIterator<Item = Result<u8, SendFailure>>) {
        self.0.lock().expect("lock").script.extend(answers);
    }
    fn sent(&self) -> Vec<(Vec<u8>, bool)> {
        self.0.lock().expect("lock").sent.clone()
    }
}

impl PartSender for FakeModem {
    fn send_part(
        &self,
        part: &EncodedPart,
        more_to_follow: bool,
    ) -> impl Future<Output = Result<u8, SendFailure>> + Send {
        let mut state = self.0.lock().expect("lock");
        state.sent.push((part.bytes.clone(), more_to_follow));
        let answer = state.script.pop_front().unwrap_or_else(|| {
            state.next_mr = state.next_mr.wrapping_add(1);
            Ok(state.next_mr)
        });
        async move { answer }
    }
}

fn options(max_attempts: u32, unknown_policy: UnknownPolicy) -> OutboxOptions {
    let sms = SmsConfig {
        max_attempts,
        unknown_policy,
        unknown_window: Duration::from_secs(600),
        expiry: Duration::from_secs(3600),
        report_window: Duration::from_secs(3600),
        default_country: "MY".into(),
        ..SmsConfig::default()
    };
    OutboxOptions::from_config(&sms, &ModemConfig::default())
}

fn outbox(
    store: &Store,
    modem: &FakeModem,
    clock: &Clock,
    opts: OutboxOptions,
) -> Outbox<FakeModem> {
    Outbox::new(store.clone(), modem.clone(), opts).with_clock(clock.func())
}

fn new_message(contact: &str, text: &str, now_ms: i64) -> NewOutbound {
    NewOutbound {
        contact_id: contact.into(),
        text: text.into(),
        parts: 1,
        encoding: Encoding::Gsm7,
        source: Source::Respond,
        quick_replies: None,
        now_ms,
    }
}

/// Everything the webhook worker would post, in queue order, marking it delivered.
async fn drain_events(store: &Store) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    while let Some(batch) = store
        .next_event_batch(i64::MAX / 2, 50)
        .await
        .expect("batch")
    {
        store
            .events_delivered(&batch.event_ids, T0)
            .await
            .expect("delivered");
        for event in batch.events {
            all.push((batch.contact_id.clone(), event));
        }
    }
    all
}

fn statuses(events: &[(String, Value)], m_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|(_, e)| e["type"] == "message_status" && e["mId"] == m_id)
        .map(|(_, e)| e["status"]["value"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn report(mr: u8, recipient: &str, status: u8, now_ms: i64) -> StatusReportInput {
    StatusReportInput {
        mr,
        recipient: recipient.into(),
        status,
        now_ms,
        window_ms: 3_600_000,
        modem: None,
    }
}

fn scts(seconds: i64) -> DateTime<FixedOffset> {
    FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .timestamp_opt(1_700_000_000 + seconds, 0)
        .single()
        .expect("time")
}

fn international(number: &str) -> Address {
    Address {
        ton: TypeOfNumber::International,
        npi: 1,
        value: number.into(),
    }
}

/// A part as the modem would give it; the fake PDU carries what a real one would (sender,
/// timestamp, concatenation header, text) so identical texts at different times differ.
fn part(sender: Address, at: i64, text: &str, concat: Option<(u16, u8, u8)>) -> ReceivedPart {
    let timestamp = scts(at);
    let mut pdu = vec![0x00];
    pdu.extend(format!("{}|{}|{:?}|{}", sender.value, timestamp, concat, text).bytes());
    ReceivedPart {
        sender,
        timestamp: Some(timestamp),
        concat: concat.map(|(reference, total, sequence)| Concat {
            reference,
            total,
            sequence,
        }),
        text: text.into(),
        pdu,
    }
}

fn inbox_options(alphanumeric: AlphanumericPolicy) -> InboxOptions {
    InboxOptions {
        default_country: "MY".into(),
        alphanumeric_senders: alphanumeric,
        quick_reply_window: Duration::from_secs(3600),
        reassembly_timeout: Duration::from_secs(600),
        forward_unreadable: true,
    }
}

async fn open(path: &Path) -> Store {
    Store::open(path).await.expect("open store")
}

// ---------------------------------------------------------------- store

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

// ---------------------------------------------------------------- outbox

#[tokio::test]
async fn outbox_sends_and_reports_sent() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let m_id = store
        .enqueue_outbound(new_message(CONTACT, "Hello World", T0))
        .await
        .expect("enqueue");
    assert!(m_id.len() <= 50, "{m_id}");
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend));
    assert_eq!(
        outbox.try_one().await.expect("step"),
        SendOutcome::Sent {
            m_id: m_id.clone(),
            parts: 1
        }
    );
    assert_eq!(outbox.try_one().await.expect("step"), SendOutcome::Idle);
    assert_eq!(modem.sent().len(), 1);
    assert!(!modem.sent()[0].1, "a single part has nothing to follow");

    let events = drain_events(&store).await;
    assert_eq!(events.len(), 1);
    let (contact, event) = &events[0];
    assert_eq!(contact, CONTACT);
    assert_eq!(
        event,
        &json!({"type": "message_status", "mId": m_id, "timestamp": T0,
                "status": {"value": "sent"}})
    );
}

#[tokio::test]
async fn outbox_is_fifo_per_contact_and_oldest_first() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let a1 = store
        .enqueue_outbound(new_message("+60111111111", "a1", T0))
        .await
        .expect("a1");
    let b1 = store
        .enqueue_outbound(new_message("+60122222222", "b1", T0))
        .await
        .expect("b1");
    let a2 = store
        .enqueue_outbound(new_message("+60111111111", "a2", T0))
        .await
        .expect("a2");
    modem.script([Err(SendFailure::Temporary(
        "+CMS ERROR 38: network out of order".into(),
    ))]);
    let outbox = outbox(&store, &modem, &clock, options(5, UnknownPolicy::Resend));

    assert!(
        matches!(outbox.try_one().await.expect("a1"), SendOutcome::Retrying { m_id, .. } if m_id == a1)
    );
    // a1 backs off: b1 may go, a2 must wait behind a1.
    assert!(
        matches!(outbox.try_one().await.expect("b1"), SendOutcome::Sent { m_id, .. } if m_id == b1)
    );
    assert_eq!(outbox.try_one().await.expect("idle"), SendOutcome::Idle);
    clock.advance(Duration::from_secs(10));
    assert!(
        matches!(outbox.try_one().await.expect("a1"), SendOutcome::Sent { m_id, .. } if m_id == a1)
    );
    assert!(
        matches!(outbox.try_one().await.expect("a2"), SendOutcome::Sent { m_id, .. } if m_id == a2)
    );
}

#[tokio::test]
async fn outbox_temporary_error_retries_whole_message_with_new_reference() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let long = "x".repeat(300);
    let m_id = store
        .enqueue_outbound(NewOutbound {
            parts: 2,
            ..new_message(CONTACT, &long, T0)
        })
        .await
        .expect("enqueue");
    // Part 1 goes, part 2 hits congestion: the whole message must go again.
    modem.script([
        Ok(10),
        Err(SendFailure::Temporary("+CMS ERROR 42: congestion".into())),
    ]);
    let outbox = outbox(&store, &modem, &clock, options(5, UnknownPolicy::Resend));

    let outcome = outbox.try_one().await.expect("first attempt");
    assert_eq!(
        outcome,
        SendOutcome::Retrying {
            m_id: m_id.clone(),
            at_ms: T0 + 10_000
        }
    );
    let first = store.outbound_state(&m_id).await.expect("q").expect("row");
    assert_eq!(first.state, OutboundState::Queued);
    assert_eq!(
        first.last_error.as_deref(),
        Some("+CMS ERROR 42: congestion")
    );

    clock.advance(Duration::from_secs(10));
    assert!(
        matches!(outbox.try_one().await.expect("retry"), SendOutcome::Sent { parts, .. } if parts > 1)
    );
    let second = store.outbound_state(&m_id).await.expect("q").expect("row");
    assert_eq!((second.state, second.attempts), (OutboundState::Sent, 2));
    assert_ne!(first.concat_reference, second.concat_reference);

    let sent = modem.sent();
    let parts = sent.len() - 2;
    assert!(
        sent.len() >= 4,
        "2 parts in the first attempt, all again in the second"
    );
    assert!(
        sent[sent.len() - parts..]
            .iter()
            .rev()
            .skip(1)
            .all(|(_, more)| *more)
    );
    assert!(
        !sent[sent.len() - 1].1,
        "the last part has nothing to follow"
    );
    assert_eq!(statuses(&drain_events(&store).await, &m_id), vec!["sent"]);
}

#[tokio::test]
async fn outbox_permanent_error_fails_with_reason() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let m_id = store
        .enqueue_outbound(new_message(CONTACT, "hi", T0))
        .await
        .expect("enqueue");
    modem.script([Err(SendFailure::Permanent(
        "+CMS ERROR 1: invalid destination number".into(),
    ))]);
    let outbox = outbox(&store, &modem, &clock, options(5, UnknownPolicy::Resend));
    assert!(matches!(
        outbox.try_one().await.expect("step"),
        SendOutcome::Failed { .. }
    ));
    let events = drain_events(&store).await;
    assert_eq!(statuses(&events, &m_id), vec!["failed"]);
    let (_, event) = &events[0];
    assert_eq!(event["status"]["value"], "failed");
    assert_eq!(
        event["status"]["message"],
        "+CMS ERROR 1: invalid destination number"
    );
}

#[tokio::test]
async fn outbox_gives_up_after_max_attempts_and_on_expiry() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let busy = || {
        Err(SendFailure::Temporary(
            "+CMS ERROR 331: no network service".into(),
        ))
    };
    let tried = store
        .enqueue_outbound(new_message(CONTACT, "a", T0))
        .await
        .expect("a");
    modem.script([busy(), busy()]);
    let outbox = outbox(&store, &modem, &clock, options(2, UnknownPolicy::Resend));
    assert!(matches!(
        outbox.try_one().await.expect("1"),
        SendOutcome::Retrying { .. }
    ));
    clock.advance(Duration::from_secs(10));
    match outbox.try_one().await.expect("2") {
        SendOutcome::Failed { m_id, message } => {
            assert_eq!(m_id, tried);
            assert!(
                message.contains("after 2 attempts") && message.contains("331"),
                "{message}"
            );
        }
        other => panic!("expected failure, got {other:?}"),
    }

    let late = store
        .enqueue_outbound(new_message("+60199999999", "b", clock.now()))
        .await
        .expect("b");
    clock.advance(Duration::from_secs(3601));
    assert_eq!(outbox.try_one().await.expect("expired"), SendOutcome::Idle);
    let row = store.outbound_state(&late).await.expect("q").expect("row");
    assert_eq!(row.state, OutboundState::Failed);
    assert!(row.status_message.unwrap_or_default().contains("expired"));
}

/// Simulates a crash between marking a part *submitting* and hearing `+CMGS`.
async fn crash_while_submitting(path: &Path, clock: &Clock) -> String {
    let store = open(path).await;
    let m_id = store
        .enqueue_outbound(new_message(CONTACT, "in doubt", T0))
        .await
        .expect("enqueue");
    let claimed = store
        .claim_outbound(clock.now(), options(3, UnknownPolicy::Resend).policy)
        .await
        .expect("claim")
        .expect("due");
    store
        .part_submitting(claimed.id, 1, CONTACT, clock.now())
        .await
        .expect("submitting");
    drop(store);
    m_id
}

#[tokio::test]
async fn outbox_unknown_after_crash_is_resent_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.db");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let m_id = crash_while_submitting(&path, &clock).await;

    let store = open(&path).await;
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend));
    assert_eq!(outbox.recover().await.expect("recover"), 1);
    assert_eq!(
        store
            .outbox_stats(clock.now())
            .await
            .expect("stats")
            .unknown,
        1
    );
    assert_eq!(
        outbox.try_one().await.expect("in window"),
        SendOutcome::Idle
    );
    clock.advance(Duration::from_secs(600));
    assert!(
        matches!(outbox.try_one().await.expect("resend"), SendOutcome::Sent { m_id: id, .. } if id == m_id)
    );
    assert_eq!(statuses(&drain_events(&store).await, &m_id), vec!["sent"]);
}

#[tokio::test]
async fn outbox_unknown_after_crash_fails_under_the_fail_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.db");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let m_id = crash_while_submitting(&path, &clock).await;

    let store = open(&path).await;
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Fail));
    outbox.recover().await.expect("recover");
    clock.advance(Duration::from_secs(600));
    assert_eq!(outbox.try_one().await.expect("step"), SendOutcome::Idle);
    assert!(
        modem.sent().is_empty(),
        "never sent twice under the fail policy"
    );
    let events = drain_events(&store).await;
    assert_eq!(statuses(&events, &m_id), vec!["failed"]);
    assert!(
        events[0].1["status"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown_policy")
    );
}

#[tokio::test]
async fn outbox_unknown_is_resolved_by_a_status_report() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let m_id = store
        .enqueue_outbound(new_message(CONTACT, "hi", T0))
        .await
        .expect("enqueue");
    modem.script([Err(SendFailure::Unknown(
        "no +CMGS answer within 180 s".into(),
    ))]);
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend));
    assert_eq!(
        outbox.try_one().await.expect("step"),
        SendOutcome::Unknown { m_id: m_id.clone() }
    );

    clock.advance(Duration::from_secs(30));
    let outcome = store
        .apply_status_report(report(77, CONTACT, 0x00, clock.now()))
        .await
        .expect("report");
    assert_eq!(
        outcome,
        ReportOutcome::Matched {
            m_id: m_id.clone(),
            events: vec![StatusValue::Sent, StatusValue::Delivered]
        }
    );
    clock.advance(Duration::from_secs(600));
    assert_eq!(
        outbox.try_one().await.expect("nothing to resend"),
        SendOutcome::Idle
    );
    assert_eq!(modem.sent().len(), 1);
}

#[tokio::test]
async fn outbox_status_reports_aggregate_over_parts_and_never_go_back() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let long = "y".repeat(300);
    let m_id = store
        .enqueue_outbound(NewOutbound {
            parts: 2,
            ..new_message(CONTACT, &long, T0)
        })
        .await
        .expect("enqueue");
    modem.script([Ok(5), Ok(6)]);
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend));
    assert!(matches!(
        outbox.try_one().await.expect("send"),
        SendOutcome::Sent { parts: 2, .. }
    ));

    let at = clock.now() + 1000;
    let matched = |events: Vec<StatusValue>| ReportOutcome::Matched {
        m_id: m_id.clone(),
        events,
    };
    // (TP-MR, TP-ST, expected outcome): part 1 delivered; part 2 still being tried (nothing
    // yet), then delivered; a late failure after that changes nothing; an unknown TP-MR
    // matches nothing.
    let steps = [
        (5, 0x00, matched(vec![])),
        (6, 0x30, matched(vec![])),
        (6, 0x00, matched(vec![StatusValue::Delivered])),
        (6, 0x45, matched(vec![])),
        (99, 0x00, ReportOutcome::Unmatched),
    ];
    for (mr, status, want) in steps {
        let got = store
            .apply_status_report(report(mr, CONTACT, status, at))
            .await
            .expect("report");
        assert_eq!(got, want, "TP-MR {mr}, TP-ST {status:#04x}");
    }
    assert_eq!(
        statuses(&drain_events(&store).await, &m_id),
        vec!["sent", "delivered"]
    );
}

#[tokio::test]
async fn outbox_failed_report_fails_the_message_with_a_reason() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let m_id = store
        .enqueue_outbound(new_message(CONTACT, "hi", T0))
        .await
        .expect("enqueue");
    modem.script([Ok(200)]);
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend));
    outbox.try_one().await.expect("send");
    store
        .apply_status_report(report(200, CONTACT, 0x41, T0 + 5))
        .await
        .expect("r");
    // Delivered after failed must not resurrect it.
    store
        .apply_status_report(report(200, CONTACT, 0x00, T0 + 6))
        .await
        .expect("r");
    let events = drain_events(&store).await;
    assert_eq!(statuses(&events, &m_id), vec!["sent", "failed"]);
    let message = events[1].1["status"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("incompatible destination") && message.contains("0x41"),
        "{message}"
    );
    let totals = store.totals().await.expect("totals");
    assert_eq!((totals.sent, totals.delivered, totals.failed), (1, 0, 1));
}

#[tokio::test]
async fn outbox_reports_pair_with_the_latest_part_in_the_window() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    // TP-MR 7 is used twice (the counter wrapped in between): the report is for the newer one.
    modem.script([Ok(7), Ok(7)]);
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend));
    let old = store
        .enqueue_outbound(new_message(CONTACT, "old", T0))
        .await
        .expect("old");
    outbox.try_one().await.expect("old sent");
    clock.advance(Duration::from_secs(1800));
    let new = store
        .enqueue_outbound(new_message(CONTACT, "new", clock.now()))
        .await
        .expect("new");
    outbox.try_one().await.expect("new sent");

    let now = clock.now() + 1000;
    let outcome = store
        .apply_status_report(report(7, CONTACT, 0x00, now))
        .await
        .expect("r");
    assert_eq!(
        outcome,
        ReportOutcome::Matched {
            m_id: new.clone(),
            events: vec![StatusValue::Delivered]
        }
    );
    // Another recipient with the same TP-MR matches nothing.
    let other = store
        .apply_status_report(report(7, "+60100000000", 0x00, now))
        .await
        .expect("r");
    assert_eq!(other, ReportOutcome::Unmatched);
    // Past the window the old part is no candidate any more.
    let late = report(7, CONTACT, 0x00, T0 + 3_600_001);
    assert_eq!(
        store
            .apply_status_report(StatusReportInput {
                window_ms: 1000,
                ..late
            })
            .await
            .expect("r"),
        ReportOutcome::Unmatched
    );
    assert_eq!(
        store
            .outbound_state(&old)
            .await
            .expect("q")
            .expect("row")
            .state,
        OutboundState::Sent
    );
}

// ---------------------------------------------------------------- inbox

#[tokio::test]
async fn inbox_single_part_becomes_a_message_event() {
    let store = Store::open_in_memory().await.expect("open");
    let clock = Clock::new();
    let inbox =
        Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep)).with_clock(clock.func());
    let national = Address {
        ton: TypeOfNumber::National,
        npi: 1,
        value: "0177872890".into(),
    };
    let outcome = inbox
        .receive_part(part(national, 0, "Hello World", None))
        .await
        .expect("receive");
    let InboundOutcome::Complete {
        m_id,
        forwarded: true,
        ..
    } = outcome
    else {
        panic!("expected a complete message, got {outcome:?}");
    };
    assert!(m_id.len() <= 50);
    let events = drain_events(&store).await;
    assert_eq!(
        events,
        vec![(
            CONTACT.to_owned(),
            json!({"type": "message", "mId": m_id, "timestamp": 1_700_000_000_000i64,
                   "message": {"type": "text", "text": "Hello World"}})
        )]
    );
}

#[tokio::test]
async fn inbox_identical_texts_are_two_messages_and_a_reread_is_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.db");
    let store = open(&path).await;
    let inbox = Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep));
    let first = part(international(CONTACT), 0, "ok", None);
    let again = part(international(CONTACT), 60, "ok", None);
    let a = inbox.receive_part(first.clone()).await.expect("first");
    let b = inbox.receive_part(again).await.expect("second");
    assert_ne!(a, b, "two identical texts are two messages");
    drop((inbox, store));

    // A crash before the SIM copy was deleted: the same part is read again.
    let store = open(&path).await;
    let inbox = Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep));
    assert_eq!(
        inbox.receive_part(first).await.expect("reread"),
        InboundOutcome::Duplicate
    );
    let events = drain_events(&store).await;
    assert_eq!(events.len(), 2);
    let InboundOutcome::Complete { m_id, .. } = a else {
        panic!("{a:?}")
    };
    assert_eq!(events[0].1["mId"], m_id.as_str(), "the mId is stable");
}

#[tokio::test]
async fn inbox_reassembles_out_of_order_interleaved_and_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.db");
    let other = "+447700900123";
    let store = open(&path).await;
    let inbox = Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep));
    let waiting = inbox
        .receive_part(part(international(CONTACT), 2, "C", Some((42, 3, 3))))
        .await
        .expect("3");
    assert_eq!(
        waiting,
        InboundOutcome::Waiting {
            received: 1,
            total: 3
        }
    );
    inbox
        .receive_part(part(international(other), 2, "y", Some((42, 2, 2))))
        .await
        .expect("other 2");
    inbox
        .receive_part(part(international(CONTACT), 0, "A", Some((42, 3, 1))))
        .await
        .expect("1");
    drop((inbox, store));

    let store = open(&path).await;
    let inbox = Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep));
    let done = inbox
        .receive_part(part(international(CONTACT), 1, "B", Some((42, 3, 2))))
        .await
        .expect("2");
    assert!(
        matches!(&done, InboundOutcome::Complete { text, .. } if text == "ABC"),
        "{done:?}"
    );
    let done_other = inbox
        .receive_part(part(international(other), 1, "x", Some((42, 2, 1))))
        .await
        .expect("other 1");
    assert!(
        matches!(&done_other, InboundOutcome::Complete { text, .. } if text == "xy"),
        "{done_other:?}"
    );
    let events = drain_events(&store).await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].1["timestamp"], 1_700_000_000_000i64,
        "SCTS of part 1"
    );
}

#[tokio::test]
async fn inbox_forwards_a_partial_message_after_the_timeout_with_a_gap_marker() {
    let store = Store::open_in_memory().await.expect("open");
    let clock = Clock::new();
    let inbox =
        Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep)).with_clock(clock.func());
    inbox
        .receive_part(part(international(CONTACT), 0, "Hello ", Some((9, 3, 1))))
        .await
        .expect("1");
    inbox
        .receive_part(part(international(CONTACT), 2, " end", Some((9, 3, 3))))
        .await
        .expect("3");
    clock.advance(Duration::from_secs(599));
    assert!(inbox.flush_expired().await.expect("flush").is_empty());
    clock.advance(Duration::from_secs(1));
    let flushed = inbox.flush_expired().await.expect("flush");
    assert_eq!(flushed.len(), 1);
    let events = drain_events(&store).await;
    assert_eq!(
        events[0].1["message"]["text"],
        "Hello [part 2 of 3 missing] end"
    );
}

#[tokio::test]
async fn inbox_maps_a_bare_number_to_the_quick_reply_sent() {
    let store = Store::open_in_memory().await.expect("open");
    let clock = Clock::new();
    let inbox =
        Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep)).with_clock(clock.func());
    let mut menu = new_message(
        CONTACT,
        "Select your preferred language\n1. Malay\n2. English",
        T0,
    );
    menu.quick_replies = Some(vec!["Malay".into(), "English".into()]);
    store.enqueue_outbound(menu).await.expect("menu");

    let answer = |at, text: &str| part(international(CONTACT), at, text, None);
    let mapped = inbox.receive_part(answer(10, " 2 ")).await.expect("2");
    assert!(
        matches!(&mapped, InboundOutcome::Complete { text, .. } if text == "English"),
        "{mapped:?}"
    );
    let out_of_range = inbox.receive_part(answer(11, "3")).await.expect("3");
    assert!(matches!(&out_of_range, InboundOutcome::Complete { text, .. } if text == "3"));
    let not_bare = inbox
        .receive_part(answer(12, "1 please"))
        .await
        .expect("text");
    assert!(matches!(&not_bare, InboundOutcome::Complete { text, .. } if text == "1 please"));
    clock.advance(Duration::from_secs(3601));
    let stale = inbox.receive_part(answer(13, "1")).await.expect("late");
    assert!(
        matches!(&stale, InboundOutcome::Complete { text, .. } if text == "1"),
        "{stale:?}"
    );
}

#[tokio::test]
async fn inbox_alphanumeric_senders_follow_the_rule() {
    let bank = Address {
        ton: TypeOfNumber::Alphanumeric,
        npi: 0,
        value: "MyBank".into(),
    };
    for (policy, forwarded) in [
        (AlphanumericPolicy::Keep, false),
        (AlphanumericPolicy::Forward, true),
    ] {
        let store = Store::open_in_memory().await.expect("open");
        let inbox = Inbox::new(store.clone(), inbox_options(policy));
        let outcome = inbox
            .receive_part(part(bank.clone(), 0, "Your code is 1234", None))
            .await
            .expect("receive");
        assert!(
            matches!(&outcome, InboundOutcome::Complete { forwarded: f, .. } if *f == forwarded),
            "{outcome:?}"
        );
        let events = drain_events(&store).await;
        assert_eq!(events.len(), usize::from(forwarded), "{policy:?}");
        if forwarded {
            assert_eq!(events[0].0, "MyBank");
        }
    }
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

// ---------------------------------------------------------------- with real PDUs

fn decode_deliver(pdu: &[u8]) -> smsgate::pdu::Deliver {
    match smsgate::pdu::decode(pdu, true).expect("decodes") {
        smsgate::pdu::Pdu::Deliver(deliver) => deliver,
        other => panic!("expected a deliver, got {other:?}"),
    }
}

#[tokio::test]
async fn inbox_takes_real_pdus_and_outbox_real_status_reports() {
    let store = Store::open_in_memory().await.expect("open");
    let (clock, modem) = (Clock::new(), FakeModem::default());
    let inbox =
        Inbox::new(store.clone(), inbox_options(AlphanumericPolicy::Keep)).with_clock(clock.func());
    let smsc = Address::parse("+60120000015").expect("smsc");
    let sender = Address::parse(CONTACT).expect("sender");
    let text = "Ünïcödé is not needed here, but a long text is: ".repeat(8);
    let pdus =
        smsgate::pdu::encode_deliver(&smsc, &sender, &text, scts(0), 0x1234).expect("encode");
    assert!(pdus.len() > 2, "a multipart message");
    let (last, rest) = pdus.split_last().expect("parts");
    for pdu in std::iter::once(last).chain(rest.iter().rev()) {
        inbox
            .receive(&decode_deliver(pdu), pdu)
            .await
            .expect("receive");
    }
    // The first part again (a sweep after a lost notification): nothing new.
    let again = inbox
        .receive(&decode_deliver(&pdus[0]), &pdus[0])
        .await
        .expect("again");
    assert_eq!(again, InboundOutcome::Duplicate);
    let events = drain_events(&store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["message"]["text"], text.as_str());

    let m_id = store
        .enqueue_outbound(new_message(CONTACT, "thanks", T0))
        .await
        .expect("out");
    modem.script([Ok(0x2A)]);
    let outbox = outbox(&store, &modem, &clock, options(3, UnknownPolicy::Resend));
    outbox.try_one().await.expect("send");
    let report = smsgate::pdu::encode_status_report(&smsc, 0x2A, &sender, scts(1), scts(2), 0x00);
    let smsgate::pdu::Pdu::StatusReport(report) =
        smsgate::pdu::decode(&report, true).expect("decodes")
    else {
        panic!("expected a status report");
    };
    let outcome = outbox.reports().apply(&report).await.expect("report");
    assert_eq!(
        outcome,
        ReportOutcome::Matched {
            m_id: m_id.clone(),
            events: vec![StatusValue::Delivered]
        }
    );
    assert_eq!(
        statuses(&drain_events(&store).await, &m_id),
        vec!["sent", "delivered"]
    );
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

// ---------------------------------------------------------------- the loops

/// Polls `check` until it holds or `deadline` passes.
async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn outbox_loop_wakes_on_enqueue_and_stops_on_shutdown() {
    let store = Store::open_in_memory().await.expect("open");
    let modem = FakeModem::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let outbox = Outbox::new(
        store.clone(),
        modem.clone(),
        options(3, UnknownPolicy::Resend),
    )
    .with_shutdown(shutdown.clone());
    let running = tokio::spawn(outbox.clone().run());
    let m_id = store
        .enqueue_outbound(new_message(CONTACT, "wake up", smsgate::clock::now_ms()))
        .await
        .expect("enqueue");
    let sent = eventually(Duration::from_secs(5), || {
        let (store, m_id) = (store.clone(), m_id.clone());
        async move {
            let row = store.outbound_state(&m_id).await.expect("q");
            row.is_some_and(|r| r.state == OutboundState::Sent)
        }
    })
    .await;
    assert!(sent, "the loop sent the message without being stepped");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops promptly")
        .expect("join")
        .expect("clean exit");
}

#[tokio::test]
async fn inbox_loop_flushes_partial_messages() {
    let store = Store::open_in_memory().await.expect("open");
    let options = InboxOptions {
        reassembly_timeout: Duration::from_millis(200),
        ..inbox_options(AlphanumericPolicy::Keep)
    };
    let inbox = Inbox::new(store.clone(), options);
    inbox
        .receive_part(part(
            international(CONTACT),
            0,
            "only part 1",
            Some((5, 2, 1)),
        ))
        .await
        .expect("part");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(inbox.clone().run(shutdown.clone()));
    let flushed = eventually(Duration::from_secs(5), || {
        let store = store.clone();
        async move { store.webhook_stats(0).await.expect("stats").pending == 1 }
    })
    .await;
    assert!(
        flushed,
        "the partial message was forwarded after the timeout"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops promptly")
        .expect("join")
        .expect("clean exit");
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

// ---------------------------------------------------------------- a real crash

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
