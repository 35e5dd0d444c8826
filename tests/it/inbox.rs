//! The inbox end to end without a modem: parts fed directly (and real PDUs decoded), messages
//! reassembled, partial ones flushed, quick replies mapped, alphanumeric senders.

use serde_json::json;
use smsgate::config::{AlphanumericPolicy, UnknownPolicy};
use smsgate::inbox::{Inbox, InboxOptions};
use smsgate::pdu::{Address, TypeOfNumber};
use smsgate::store::{InboundOutcome, ReportOutcome, Store};
use smsgate::wire::StatusValue;
use std::time::Duration;

use crate::store_fixtures::*;

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
