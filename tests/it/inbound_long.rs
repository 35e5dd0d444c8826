//! An inbound SMS longer than respond.io takes in one message (7,000 UTF-16 code units): the
//! issue's case, 3,600 emoji in a 108-part SMS, through the simulated modem and the real
//! gateway. It arrives as several `message` events for the same contact, in order, marked
//! "(1/2)" …, each with its own mId and within the limit, and together the whole text.

use std::time::Duration;

use smsgate::sim::SimOptions;

use crate::harness::{CONTACT, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_a_text_over_7000_utf16_units_arrives_as_marked_message_events() {
    let h = Harness::new(
        SimOptions {
            capacity: 255,
            ..SimOptions::default()
        },
        "",
    )
    .await;
    let gateway = h.start().await;
    let text = "\u{1F600}".repeat(3_600);
    h.sim.inject_sms(CONTACT, &text).await.expect("inject");
    let messages = |events: &[(String, serde_json::Value)]| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|(_, event)| event["type"] == "message")
            .map(|(contact, event)| {
                assert_eq!(contact, CONTACT);
                event.clone()
            })
            .collect()
    };
    let events = h
        .standin
        .wait_for(Duration::from_secs(240), |events| {
            messages(events).len() >= 2
        })
        .await
        .unwrap_or_else(|events| panic!("arrived: {} message events", messages(&events).len()));
    let pieces = messages(&events);
    assert_eq!(pieces.len(), 2, "{pieces:?}");
    let mut rejoined = String::new();
    for (index, event) in pieces.iter().enumerate() {
        let piece = event["message"]["text"].as_str().expect("text");
        let units = piece.encode_utf16().count();
        assert!(units <= 7_000, "piece {index} has {units} UTF-16 units");
        let marker = format!("({}/2) ", index + 1);
        rejoined.push_str(
            piece.strip_prefix(&marker).unwrap_or_else(|| {
                panic!("piece {index} starts {:?}", &piece[..12.min(piece.len())])
            }),
        );
    }
    assert_eq!(rejoined, text, "nothing truncated, nothing lost");
    let ids: Vec<&str> = pieces
        .iter()
        .map(|e| e["mId"].as_str().expect("mId"))
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert!(ids[0].ends_with("-1") && ids[1].ends_with("-2"), "{ids:?}");
    assert_eq!(ids[0].trim_end_matches("-1"), ids[1].trim_end_matches("-2"));
    assert!(ids.iter().all(|id| id.len() <= 50), "{ids:?}");
    gateway.stop().await;
}
