//! The inbox's record of SMS that cannot be decoded: kept once whatever the framing of a
//! re-read, counted, and forwarded as a placeholder only from a sender the usual rules forward
//! to, and only while `sms.forward_unreadable` is on.

use std::time::Duration;

use smsgate::config::AlphanumericPolicy;
use smsgate::inbox::text::UNREADABLE_SMS;
use smsgate::inbox::unreadable::UnreadableSms;
use smsgate::inbox::{Inbox, InboxOptions};
use smsgate::pdu::Address;
use smsgate::store::{Store, UnreadableKind, UnreadableOutcome};

const CONTACT: &str = "+60123456789";

fn options(forward_unreadable: bool) -> InboxOptions {
    InboxOptions {
        default_country: "MY".into(),
        alphanumeric_senders: AlphanumericPolicy::Keep,
        quick_reply_window: Duration::from_secs(3600),
        reassembly_timeout: Duration::from_secs(600),
        forward_unreadable,
    }
}

fn sms(pdu: &str, sender: Option<&str>, status_report: bool) -> UnreadableSms {
    UnreadableSms {
        pdu: pdu.into(),
        reason: "user data length 200 exceeds the maximum of 160".into(),
        sender: sender.map(|s| Address::parse(s).expect("address")),
        status_report,
        slot: "SM:4".into(),
    }
}

#[tokio::test]
async fn kept_once_counted_and_forwarded_by_the_rules() {
    let store = Store::open_in_memory().await.expect("open");
    let inbox = Inbox::new(store.clone(), options(true)).with_clock(|| 5_000);
    let kept = inbox
        .receive_unreadable(sms("00040B910621436587F9C8\"", Some(CONTACT), false))
        .await
        .expect("kept");
    let UnreadableOutcome::Kept { m_id: Some(m_id) } = kept else {
        panic!("not forwarded: {kept:?}");
    };
    // Read again, framed without the quote: the same PDU, nothing new.
    assert_eq!(
        inbox
            .receive_unreadable(sms(" 00040b910621436587f9c8 ", Some(CONTACT), false))
            .await
            .expect("read again"),
        UnreadableOutcome::Duplicate
    );
    // Kept but not forwarded: an alphanumeric sender (kept locally by the rule), a status
    // report, a PDU whose sender cannot be read.
    for (pdu, sender, report) in [
        ("0004AA", Some("MyBank"), false),
        ("0006BB", None, true),
        ("000415", None, false),
    ] {
        assert_eq!(
            inbox
                .receive_unreadable(sms(pdu, sender, report))
                .await
                .expect("kept"),
            UnreadableOutcome::Kept { m_id: None },
            "{pdu}"
        );
    }
    let (total, rows) = store.unreadable(10).await.expect("listed");
    assert_eq!((total, rows.len()), (4, 4));
    let first = rows
        .iter()
        .find(|row| row.pdu == "00040B910621436587F9C8\"")
        .expect("kept as printed");
    assert_eq!(
        (
            first.sender.as_deref(),
            first.slot.as_str(),
            first.forwarded
        ),
        (Some(CONTACT), "SM:4", true)
    );
    assert!(first.reason.contains("200"));
    assert_eq!(first.received_ms, 5_000);
    assert!(
        rows.iter()
            .any(|row| row.kind == UnreadableKind::StatusReport)
    );
    assert_eq!(store.totals().await.expect("totals").unreadable, 4);
    // Exactly one placeholder event, from the contact, with the time of receipt.
    let batch = store
        .next_event_batch(i64::MAX / 2, 50)
        .await
        .expect("batch")
        .expect("an event");
    assert_eq!(batch.contact_id, CONTACT);
    assert_eq!(batch.events.len(), 1);
    let event = &batch.events[0];
    assert_eq!(event["mId"], m_id.as_str());
    assert_eq!(event["type"], "message");
    assert_eq!(event["timestamp"], 5_000);
    assert_eq!(event["message"]["text"], UNREADABLE_SMS);
}

#[tokio::test]
async fn with_forwarding_off_nothing_goes_to_respond_io() {
    let store = Store::open_in_memory().await.expect("open");
    let inbox = Inbox::new(store.clone(), options(false));
    assert_eq!(
        inbox
            .receive_unreadable(sms("00040B910621436587F9C8", Some(CONTACT), false))
            .await
            .expect("kept"),
        UnreadableOutcome::Kept { m_id: None }
    );
    assert_eq!(store.unreadable(10).await.expect("listed").0, 1);
    assert!(
        store
            .next_event_batch(i64::MAX / 2, 50)
            .await
            .expect("batch")
            .is_none()
    );
}
