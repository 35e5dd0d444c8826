//! Incoming calls, end to end: the simulated network rings the real gateway's modem, and one
//! call (however many rings) becomes one `message` event from the caller to respond.io; with
//! `calls.hangup` the call is rejected (`AT+CHUP`, or `ATH` on a modem without it) and with
//! `calls.auto_reply` the caller gets one SMS an hour; a withheld number is counted, nothing sent.

use std::time::Duration;

use smsgate::sim::{CallEnd, CallRecord, Quirk, Quirks, SimOptions};

use crate::harness::{CONTACT, Harness, TOKEN, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

fn ringing(quirks: Quirks) -> SimOptions {
    SimOptions {
        ring_interval: Duration::from_millis(300),
        quirks,
        ..SimOptions::default()
    }
}

/// The `message` events the stand-in accepted from `contact` with `text`.
fn events_with(harness: &Harness, contact: &str, text: &str) -> usize {
    harness
        .standin
        .accepted_events()
        .iter()
        .filter(|(to, event)| {
            to == contact && event["type"] == "message" && event["message"]["text"] == text
        })
        .count()
}

/// An SMS from `contact` that the gateway has forwarded: everything the intake took before it
/// (the calls) is committed by then.
/// Waits until the simulator's call number `index` (from 0) has ended; returns every call.
async fn wait_ended(harness: &Harness, index: usize) -> Vec<CallRecord> {
    wait_until(DEADLINE, "the gateway hangs up", || async {
        harness
            .sim
            .calls()
            .await
            .get(index)
            .and_then(|call| call.end)
            .is_some()
    })
    .await;
    harness.sim.calls().await
}

async fn marker(harness: &Harness, contact: &str, text: &str) {
    harness.sim.inject_sms(contact, text).await.expect("inject");
    wait_until(DEADLINE, "the marker SMS is forwarded", || async {
        events_with(harness, contact, text) == 1
    })
    .await;
}

#[tokio::test]
async fn one_call_ringing_many_times_is_one_missed_call_event() {
    let harness = Harness::new(ringing(Quirks::default()), "").await;
    let gateway = harness.start().await;
    gateway.wait_registered().await;
    harness.sim.call(Some(CONTACT), 4).await.expect("rings");
    wait_until(DEADLINE, "the caller gives up", || async {
        harness.sim.calls().await.first().and_then(|call| call.end) == Some(CallEnd::GaveUp)
    })
    .await;
    marker(&harness, CONTACT, "after the call").await;
    assert_eq!(events_with(&harness, CONTACT, "Missed call"), 1);
    let calls = harness.sim.calls().await;
    assert_eq!(calls[0].rings, 4, "{calls:?}");
    let metrics = harness
        .client
        .get(format!("http://{}/metrics", gateway.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.lines().any(|l| l == "smsgate_calls_total 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "smsgate_calls_withheld_total 0")
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_rejected_call_is_hung_up_with_ath_and_auto_replied_once_an_hour() {
    let reply = "Sorry, this number takes SMS only. Write to us here.";
    let harness = Harness::new(
        ringing(Quirks::default().with(Quirk::NoChup, true)),
        &format!("[calls]\nhangup = true\nauto_reply = {reply:?}\ntext = \"Called us\"\n"),
    )
    .await;
    let gateway = harness.start().await;
    let running = gateway.gateway.as_ref().expect("running");
    gateway.wait_registered().await;
    for round in 1..=2 {
        harness.sim.call(Some(CONTACT), 20).await.expect("rings");
        let calls = wait_ended(&harness, round - 1).await;
        assert_eq!(
            calls[round - 1].end,
            Some(CallEnd::HungUp("ATH")),
            "{calls:?}"
        );
        wait_until(DEADLINE, "the call reaches respond.io", || async {
            events_with(&harness, CONTACT, "Called us") == round
        })
        .await;
    }
    marker(&harness, CONTACT, "after both calls").await;
    // One reply, not two, and nothing else waiting to go.
    wait_until(DEADLINE, "the auto-reply is sent", || async {
        !harness.sim.submitted().await.is_empty()
    })
    .await;
    wait_until(DEADLINE, "the outbox is idle", || async {
        running
            .store()
            .outbox_stats(0)
            .await
            .is_ok_and(|stats| stats.depth() == 0)
    })
    .await;
    let submitted = harness.sim.submitted().await;
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    assert_eq!(submitted[0].submit.user_data.text, reply);
    assert_eq!(submitted[0].submit.recipient.to_string(), CONTACT);
    gateway.stop().await;
}

#[tokio::test]
async fn the_auto_reply_stays_once_an_hour_across_a_restart() {
    let reply = "We only read SMS here.";
    let harness = Harness::new(
        ringing(Quirks::default()),
        &format!("[calls]\nhangup = true\nauto_reply = {reply:?}\n"),
    )
    .await;
    for round in 1..=2 {
        let gateway = harness.start().await;
        let running = gateway.gateway.as_ref().expect("running");
        gateway.wait_registered().await;
        harness.sim.call(Some(CONTACT), 20).await.expect("rings");
        wait_until(DEADLINE, "the call reaches respond.io", || async {
            events_with(&harness, CONTACT, "Missed call") == round
        })
        .await;
        marker(&harness, CONTACT, &format!("after call {round}")).await;
        wait_until(DEADLINE, "the outbox is idle", || async {
            running
                .store()
                .outbox_stats(0)
                .await
                .is_ok_and(|stats| stats.depth() == 0)
        })
        .await;
        // The first round's reply has left before the restart; the second call must not get
        // another one from a gateway that forgot it.
        wait_until(DEADLINE, "the first auto-reply is sent", || async {
            !harness.sim.submitted().await.is_empty()
        })
        .await;
        gateway.stop().await;
    }
    let submitted = harness.sim.submitted().await;
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    assert_eq!(submitted[0].submit.user_data.text, reply);
}

#[tokio::test]
async fn a_withheld_number_is_counted_and_nothing_is_sent() {
    let harness = Harness::new(
        ringing(Quirks::default()),
        "[calls]\nauto_reply = \"We saw your call\"\n",
    )
    .await;
    let gateway = harness.start().await;
    let running = gateway.gateway.as_ref().expect("running");
    gateway.wait_registered().await;
    harness.sim.call(None, 3).await.expect("rings");
    wait_until(DEADLINE, "the withheld call is counted", || async {
        running.modem().health().calls_withheld == 1
    })
    .await;
    marker(&harness, CONTACT, "after the withheld call").await;
    let missed = harness
        .standin
        .accepted_events()
        .iter()
        .filter(|(_, event)| event["message"]["text"] == "Missed call")
        .count();
    assert_eq!(missed, 0);
    assert!(harness.sim.submitted().await.is_empty());
    assert_eq!(running.modem().health().calls, 1);
    gateway.stop().await;
}

#[tokio::test]
async fn a_modem_with_chup_rejects_the_call_with_it() {
    let harness = Harness::new(ringing(Quirks::default()), "[calls]\nhangup = true\n").await;
    let gateway = harness.start().await;
    gateway.wait_registered().await;
    harness.sim.call(Some(CONTACT), 20).await.expect("rings");
    let calls = wait_ended(&harness, 0).await;
    assert_eq!(calls[0].end, Some(CallEnd::HungUp("AT+CHUP")), "{calls:?}");
    assert!(
        calls[0].rings < 20,
        "rejected before it rang out: {calls:?}"
    );
    wait_until(DEADLINE, "the call reaches respond.io", || async {
        events_with(&harness, CONTACT, "Missed call") == 1
    })
    .await;
    gateway.stop().await;
}

/// A modem that rings faster than it takes the hang-up: several `RING`/`+CLIP` are read while
/// `AT+CHUP` is on its way or waiting behind it. They are the call being rejected, not new
/// calls: one event, one hang-up. (Real modems ring every few seconds; a hang-up that waits
/// behind a sweep or a stalled runtime meets the same rings.)
#[tokio::test]
async fn rings_while_the_hang_up_is_on_its_way_are_the_same_call() {
    let harness = Harness::new(
        SimOptions {
            ring_interval: Duration::from_millis(5),
            ..SimOptions::default()
        },
        "[calls]\nhangup = true\n",
    )
    .await;
    let gateway = harness.start().await;
    let running = gateway.gateway.as_ref().expect("running");
    gateway.wait_registered().await;
    harness.sim.call(Some(CONTACT), 400).await.expect("rings");
    let calls = wait_ended(&harness, 0).await;
    assert_eq!(calls[0].end, Some(CallEnd::HungUp("AT+CHUP")), "{calls:?}");
    marker(&harness, CONTACT, "after the call").await;
    assert_eq!(
        events_with(&harness, CONTACT, "Missed call"),
        1,
        "{calls:?}"
    );
    assert_eq!(running.modem().health().calls, 1, "{calls:?}");
    gateway.stop().await;
}
