//! What the store, outbox and inbox tests share: a clock the tests move, a scripted fake
//! modem, and builders for messages, parts and status reports.

use chrono::{DateTime, FixedOffset, TimeZone};
use serde_json::Value;
use smsgate::config::{AlphanumericPolicy, ModemConfig, SmsConfig, UnknownPolicy};
use smsgate::inbox::{InboxOptions, ReceivedPart};
use smsgate::outbox::{Outbox, OutboxOptions, PartSender, SendFailure};
use smsgate::pdu::{Address, Concat, EncodedPart, Encoding, TypeOfNumber};
use smsgate::store::{NewOutbound, Source, StatusReportInput, Store};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) const T0: i64 = 1_700_000_000_000;
pub(crate) const CONTACT: &str = "+60177872890";

#[derive(Clone)]
pub(crate) struct Clock(Arc<AtomicI64>);

impl Clock {
    pub(crate) fn new() -> Self {
        Clock(Arc::new(AtomicI64::new(T0)))
    }
    pub(crate) fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub(crate) fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
    pub(crate) fn func(&self) -> impl Fn() -> i64 + Send + Sync + 'static {
        let inner = self.0.clone();
        move || inner.load(Ordering::SeqCst)
    }
}

/// A modem that answers from a script (then with increasing TP-MRs) and records every part.
#[derive(Clone, Default)]
pub(crate) struct FakeModem(Arc<Mutex<FakeState>>);

#[derive(Default)]
pub(crate) struct FakeState {
    script: VecDeque<Result<u8, SendFailure>>,
    next_mr: u8,
    sent: Vec<(Vec<u8>, bool)>,
}

impl FakeModem {
    pub(crate) fn script(&self, answers: impl IntoIterator<Item = Result<u8, SendFailure>>) {
        self.0.lock().expect("lock").script.extend(answers);
    }
    pub(crate) fn sent(&self) -> Vec<(Vec<u8>, bool)> {
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

pub(crate) fn options(max_attempts: u32, unknown_policy: UnknownPolicy) -> OutboxOptions {
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

pub(crate) fn outbox(
    store: &Store,
    modem: &FakeModem,
    clock: &Clock,
    opts: OutboxOptions,
) -> Outbox<FakeModem> {
    Outbox::new(store.clone(), modem.clone(), opts).with_clock(clock.func())
}

pub(crate) fn new_message(contact: &str, text: &str, now_ms: i64) -> NewOutbound {
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
pub(crate) async fn drain_events(store: &Store) -> Vec<(String, Value)> {
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

pub(crate) fn statuses(events: &[(String, Value)], m_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|(_, e)| e["type"] == "message_status" && e["mId"] == m_id)
        .map(|(_, e)| e["status"]["value"].as_str().unwrap_or("?").to_owned())
        .collect()
}

pub(crate) fn report(mr: u8, recipient: &str, status: u8, now_ms: i64) -> StatusReportInput {
    StatusReportInput {
        mr,
        recipient: recipient.into(),
        status,
        now_ms,
        window_ms: 3_600_000,
        modem: None,
    }
}

pub(crate) fn scts(seconds: i64) -> DateTime<FixedOffset> {
    FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .timestamp_opt(1_700_000_000 + seconds, 0)
        .single()
        .expect("time")
}

pub(crate) fn international(number: &str) -> Address {
    Address {
        ton: TypeOfNumber::International,
        npi: 1,
        value: number.into(),
    }
}

/// A part as the modem would give it; the fake PDU carries what a real one would (sender,
/// timestamp, concatenation header, text) so identical texts at different times differ.
pub(crate) fn part(
    sender: Address,
    at: i64,
    text: &str,
    concat: Option<(u16, u8, u8)>,
) -> ReceivedPart {
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

pub(crate) fn inbox_options(alphanumeric: AlphanumericPolicy) -> InboxOptions {
    InboxOptions {
        default_country: "MY".into(),
        alphanumeric_senders: alphanumeric,
        quick_reply_window: Duration::from_secs(3600),
        reassembly_timeout: Duration::from_secs(600),
        forward_unreadable: true,
    }
}

pub(crate) async fn open(path: &Path) -> Store {
    Store::open(path).await.expect("open store")
}

/// Polls `check` until it holds or `deadline` passes.
pub(crate) async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
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
