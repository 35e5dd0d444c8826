//! The outbox and inbox on the real modem driver, over the simulated modem's pty: a message
//! queued in the store leaves as `AT+CMGS`, its status report comes back as `delivered`, and an
//! SMS the network delivers is committed before its SIM copy is deleted.

use std::time::Duration;

use smsgate::config::{AlphanumericPolicy, ModemConfig, SmsConfig};
use smsgate::inbox::{Inbox, InboxOptions};
use smsgate::modem::{self, ModemEvent, ModemHandle, ModemOptions, ModemState};
use smsgate::outbox::{Outbox, OutboxOptions, SendOutcome};
use smsgate::pdu::Encoding;
use smsgate::sim::{self, SimOptions};
use smsgate::store::{InboundOutcome, NewOutbound, ReportOutcome, Source, Store};
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);
const CONTACT: &str = "+60177872890";

async fn ready(modem: &ModemHandle) {
    let mut health = modem.health_watch();
    let until = Instant::now() + DEADLINE;
    while health.borrow_and_update().state != ModemState::Ready {
        let left = until.saturating_duration_since(Instant::now());
        timeout(left, health.changed())
            .await
            .expect("the modem becomes ready in time")
            .expect("the modem task is alive");
    }
}

async fn next_event(events: &mut Receiver<ModemEvent>) -> ModemEvent {
    timeout(DEADLINE, events.recv())
        .await
        .expect("a modem event in time")
        .expect("the modem task is alive")
}

#[tokio::test]
async fn store_sends_and_receives_through_the_modem_driver() {
    let sim = sim::spawn(SimOptions::default()).await.expect("simulator");
    let shutdown = CancellationToken::new();
    let config = ModemConfig {
        port: sim.path(),
        delivery_reports: true,
        ..ModemConfig::default()
    };
    let (modem, mut events) = modem::spawn(ModemOptions::from(&config), shutdown.clone());
    ready(&modem).await;

    let store = Store::open_in_memory().await.expect("store");
    let sms = SmsConfig {
        default_country: "MY".into(),
        ..SmsConfig::default()
    };
    let outbox = Outbox::new(
        store.clone(),
        modem.clone(),
        OutboxOptions::from_config(&sms, &config),
    );
    let m_id = store
        .enqueue_outbound(NewOutbound {
            contact_id: CONTACT.into(),
            text: "Your order has shipped".into(),
            parts: 1,
            encoding: Encoding::Gsm7,
            source: Source::Respond,
            quick_replies: None,
            now_ms: smsgate::clock::now_ms(),
        })
        .await
        .expect("enqueue");
    let sent = outbox.try_one().await.expect("step");
    assert_eq!(
        sent,
        SendOutcome::Sent {
            m_id: m_id.clone(),
            parts: 1
        }
    );
    let submitted = sim.submitted().await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].submit.recipient.value, CONTACT);
    assert!(submitted[0].submit.status_report_request);

    // The simulated network reports delivery; the outbox pairs it by TP-MR and recipient.
    let ModemEvent::StatusReport { report, slot } = next_event(&mut events).await else {
        panic!("expected a status report");
    };
    assert_eq!(report.message_reference, submitted[0].mr);
    let outcome = outbox.reports().apply(&report).await.expect("report");
    assert_eq!(
        outcome,
        ReportOutcome::Matched {
            m_id: m_id.clone(),
            events: vec![smsgate::wire::StatusValue::Delivered]
        }
    );
    modem.confirm(slot).await.expect("report acknowledged");

    // An incoming SMS is committed, then (and only then) deleted from the SIM.
    let inbox = Inbox::new(
        store.clone(),
        InboxOptions {
            default_country: "MY".into(),
            alphanumeric_senders: AlphanumericPolicy::Keep,
            quick_reply_window: Duration::from_secs(3600),
            reassembly_timeout: Duration::from_secs(3600),
            forward_unreadable: true,
        },
    );
    sim.inject_sms(CONTACT, "Thanks, got it")
        .await
        .expect("inject");
    let ModemEvent::Received { deliver, pdu, slot } = next_event(&mut events).await else {
        panic!("expected an SMS");
    };
    let received = inbox.receive(&deliver, &pdu).await.expect("committed");
    assert!(
        matches!(&received, InboundOutcome::Complete { text, forwarded: true, .. }
                 if text == "Thanks, got it"),
        "{received:?}"
    );
    assert_eq!(
        sim.stored_count().await,
        1,
        "still on the SIM until confirmed"
    );
    modem.confirm(slot).await.expect("deleted");
    assert_eq!(sim.stored_count().await, 0);

    let stats = store.webhook_stats(0).await.expect("stats");
    assert_eq!(stats.pending, 3, "sent, delivered and the inbound message");
    shutdown.cancel();
    sim.shutdown().await;
}
