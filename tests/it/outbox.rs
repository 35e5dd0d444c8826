//! The outbox end to end without a modem: driven step by step through a scripted fake modem on
//! a real store: order, retries, failures, parts in doubt after a crash, status reports.

use serde_json::json;
use smsgate::config::UnknownPolicy;
use smsgate::outbox::{Outbox, SendFailure, SendOutcome};
use smsgate::store::{NewOutbound, OutboundState, ReportOutcome, StatusReportInput, Store};
use smsgate::wire::StatusValue;
use std::path::Path;
use std::time::Duration;

use crate::store_fixtures::*;

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
