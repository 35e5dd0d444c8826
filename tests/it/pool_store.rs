//! The pool's rules in the store, without modems: routing with and without sticky contacts, a
//! SIM unusable for new contacts but kept by bound ones, failover moving only what no SIM has
//! started, and the send history the caps count from.

use smsgate::store::{RouteCandidate, Store};

use crate::store_fixtures::{T0, new_message, open, options};

fn candidate(modem: &str, usable: bool) -> RouteCandidate {
    RouteCandidate {
        modem: modem.to_owned(),
        usable,
        ready_at_ms: T0,
        per_message_ms: 3_000,
    }
}

async fn queue(store: &Store, contact: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let m_id = store
            .enqueue_outbound(new_message(contact, &format!("m{i}"), T0))
            .await
            .expect("queued");
        ids.push(m_id);
    }
    ids
}

async fn routed_to(store: &Store, m_id: &str) -> Option<String> {
    store
        .outbound_modems(m_id)
        .await
        .expect("read")
        .expect("row")
        .0
}

#[tokio::test]
async fn sticky_routing_binds_at_first_routing_and_never_to_an_unusable_sim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("db.sqlite")).await;
    let pool = vec![candidate("sim-a", false), candidate("sim-b", true)];
    let burst = queue(&store, "+60120000001", 5).await;
    store
        .route_outbound(pool.clone(), true, T0)
        .await
        .expect("routed");
    for m_id in &burst {
        assert_eq!(routed_to(&store, m_id).await.as_deref(), Some("sim-b"));
    }
    assert_eq!(
        store
            .contact_modem("+60120000001")
            .await
            .expect("read")
            .as_deref(),
        Some("sim-b")
    );
    // sim-b becomes unusable: the bound contact keeps it (a short outage never moves them) ...
    let pool = vec![candidate("sim-a", true), candidate("sim-b", false)];
    let later = queue(&store, "+60120000001", 1).await;
    store
        .route_outbound(pool.clone(), true, T0)
        .await
        .expect("routed");
    assert_eq!(routed_to(&store, &later[0]).await.as_deref(), Some("sim-b"));
    // ... and a new contact goes to the usable SIM.
    let new = queue(&store, "+60120000002", 1).await;
    store.route_outbound(pool, true, T0).await.expect("routed");
    assert_eq!(routed_to(&store, &new[0]).await.as_deref(), Some("sim-a"));
    // No usable SIM: a new contact's message waits unrouted.
    let none = queue(&store, "+60120000003", 1).await;
    store
        .route_outbound(
            vec![candidate("sim-a", false), candidate("sim-b", false)],
            true,
            T0,
        )
        .await
        .expect("routed");
    assert_eq!(routed_to(&store, &none[0]).await, None);
    assert!(
        store
            .has_unrouted(vec!["sim-a".into(), "sim-b".into()])
            .await
            .expect("read")
    );
}

#[tokio::test]
async fn without_sticky_each_message_goes_to_the_sim_that_can_send_it_soonest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("db.sqlite")).await;
    let ids = queue(&store, "+60120000011", 6).await;
    let mut pool = vec![candidate("sim-a", true), candidate("sim-b", true)];
    // sim-b can start 10 s later: it gets messages only once sim-a's queue is that long.
    pool[1].ready_at_ms = T0 + 10_000;
    store.route_outbound(pool, false, T0).await.expect("routed");
    let mut on = Vec::new();
    for m_id in &ids {
        on.push(routed_to(&store, m_id).await.expect("routed"));
    }
    let on_a = on.iter().filter(|m| *m == "sim-a").count();
    assert!(
        (3..6).contains(&on_a),
        "spread by when each SIM can send: {on:?}"
    );
    assert_eq!(on[0], "sim-a", "the soonest SIM first");
    assert_eq!(
        store.contact_modem("+60120000011").await.expect("read"),
        None,
        "no binding without sticky"
    );
}

#[tokio::test]
async fn ties_are_broken_by_a_stable_hash_the_same_way_every_time() {
    let mut first = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("db.sqlite")).await;
        let mut chosen = Vec::new();
        for i in 0..12 {
            let contact = format!("+6012000{i:04}");
            let ids = queue(&store, &contact, 1).await;
            let pool = vec![
                candidate("sim-a", true),
                candidate("sim-b", true),
                candidate("sim-c", true),
            ];
            // Routed one by one: the queues decide, and between equal queues the hash.
            store.route_outbound(pool, true, T0).await.expect("routed");
            chosen.push(routed_to(&store, &ids[0]).await.expect("routed"));
        }
        first.push(chosen);
    }
    assert_eq!(first[0], first[1], "the same contacts go to the same SIMs");
    let distinct: std::collections::HashSet<_> = first[0].iter().collect();
    assert!(
        distinct.len() > 1,
        "the hash spreads contacts: {:?}",
        first[0]
    );
}

#[tokio::test]
async fn failover_moves_only_waiting_messages_and_contacts_that_have_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("db.sqlite")).await;
    let a_only = vec![candidate("sim-a", true)];
    // Three contacts on sim-a: one with two waiting messages, one whose first message is being
    // sent (claimed), one with nothing waiting.
    let waiting = queue(&store, "+60120000021", 2).await;
    let sending = queue(&store, "+60120000022", 2).await;
    let idle = queue(&store, "+60120000023", 1).await;
    store
        .route_outbound(a_only.clone(), true, T0)
        .await
        .expect("routed");
    let policy = options(3, smsgate::config::UnknownPolicy::Fail).policy;
    // Claim the idle contact's message and the first of the sending contact's, as sim-a would.
    let mut claimed = Vec::new();
    for _ in 0..3 {
        if let Some(job) = store
            .claim_outbound_on(T0, policy, "sim-a", None)
            .await
            .expect("claim")
        {
            claimed.push(job.m_id);
        }
    }
    assert!(claimed.contains(&waiting[0]) && claimed.contains(&sending[0]));
    assert!(claimed.contains(&idle[0]));
    let pool = vec![candidate("sim-a", false), candidate("sim-b", true)];
    let moved = store
        .fail_over("sim-a".into(), pool, true, T0 + 600_000)
        .await
        .expect("failover");
    let contacts: Vec<&str> = moved.iter().map(|m| m.contact_id.as_str()).collect();
    assert_eq!(contacts, ["+60120000021", "+60120000022"], "{moved:?}");
    // What a SIM started stays with it; what waits moves.
    assert_eq!(
        routed_to(&store, &waiting[0]).await.as_deref(),
        Some("sim-a")
    );
    assert_eq!(
        routed_to(&store, &waiting[1]).await.as_deref(),
        Some("sim-b")
    );
    assert_eq!(
        routed_to(&store, &sending[0]).await.as_deref(),
        Some("sim-a")
    );
    assert_eq!(
        routed_to(&store, &sending[1]).await.as_deref(),
        Some("sim-b")
    );
    assert_eq!(routed_to(&store, &idle[0]).await.as_deref(), Some("sim-a"));
    assert_eq!(
        store
            .contact_modem("+60120000023")
            .await
            .expect("read")
            .as_deref(),
        Some("sim-a"),
        "a contact with nothing waiting stays"
    );
    assert_eq!(
        store
            .contact_modem("+60120000021")
            .await
            .expect("read")
            .as_deref(),
        Some("sim-b"),
        "a moved contact is sticky on the new SIM"
    );
}

#[tokio::test]
async fn the_send_history_is_kept_per_sim_for_a_day_and_read_back_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let store = open(&path).await;
    let ids = queue(&store, "+60120000031", 1).await;
    store
        .route_outbound(vec![candidate("sim-a", true)], true, T0)
        .await
        .expect("routed");
    let policy = options(3, smsgate::config::UnknownPolicy::Fail).policy;
    let job = store
        .claim_outbound_on(T0, policy, "sim-a", None)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(job.m_id, ids[0]);
    for (seq, at) in [(1u32, T0), (2, T0 + 10)] {
        store
            .part_submitting_on(job.id, seq, "+60120000031", at, "sim-a", seq == 1)
            .await
            .expect("submitting");
    }
    store
        .restamp_send("sim-a", T0 + 10, T0 + 2_000)
        .await
        .expect("restamp");
    drop(store);
    // After a restart the history is what the caps count from.
    let store = open(&path).await;
    let rows = store.send_history("sim-a", T0 - 1).await.expect("history");
    let times: Vec<i64> = rows.iter().map(|r| r.at_ms).collect();
    assert_eq!(times, [T0, T0 + 2_000]);
    assert!(rows[0].starts_message && !rows[1].starts_message);
    assert!(
        store
            .send_history("sim-b", T0 - 1)
            .await
            .expect("history")
            .is_empty()
    );
    let (_, parts) = store
        .outbound_modems(&ids[0])
        .await
        .expect("read")
        .expect("row");
    assert_eq!(parts, [Some("sim-a".to_owned()), Some("sim-a".to_owned())]);
}

#[tokio::test]
async fn a_resend_after_a_part_went_out_stays_on_its_sim_through_failover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("db.sqlite")).await;
    let contact = "+60120000041";
    let ids = queue(&store, contact, 1).await;
    store
        .route_outbound(vec![candidate("sim-a", true)], true, T0)
        .await
        .expect("routed");
    let policy = options(3, smsgate::config::UnknownPolicy::Resend).policy;
    let job = store
        .claim_outbound_on(T0, policy, "sim-a", None)
        .await
        .expect("claim")
        .expect("a job");
    // Part 1 went out on sim-a, part 2 failed for now: the whole message goes again later.
    store
        .part_submitting_on(job.id, 1, contact, T0, "sim-a", true)
        .await
        .expect("submitting");
    store
        .part_accepted(job.id, 1, 7, 2, T0 + 1)
        .await
        .expect("accepted");
    store
        .part_submitting_on(job.id, 2, contact, T0 + 2, "sim-a", false)
        .await
        .expect("submitting");
    store
        .attempt_failed(
            job.id,
            smsgate::store::AttemptEnd::Temporary {
                retry_at_ms: T0 + 10,
            },
            "+CMS ERROR 38",
            T0 + 3,
            policy,
        )
        .await
        .expect("requeued");
    let later = queue(&store, contact, 1).await;
    store
        .route_outbound(vec![candidate("sim-a", true)], true, T0)
        .await
        .expect("routed");
    let pool = vec![candidate("sim-a", false), candidate("sim-b", true)];
    store
        .fail_over("sim-a".into(), pool, true, T0 + 600_000)
        .await
        .expect("failover");
    assert_eq!(
        routed_to(&store, &ids[0]).await.as_deref(),
        Some("sim-a"),
        "part 1 reached the network from sim-a: the resend never goes from another SIM"
    );
    assert_eq!(routed_to(&store, &later[0]).await.as_deref(), Some("sim-b"));
}
