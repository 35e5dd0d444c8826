//! A pool of simulated SIMs behind the one channel, end to end: the real gateway drives several
//! simulators on real ptys through `[[modems]]`, with the respond.io stand-in. Sticky routing
//! both ways (also across a restart), one inbox for every SIM, the SIM each part went out on,
//! status reports paired per SIM when two SIMs hand out the same TP-MR, one hanging modem while
//! the others keep sending, caps checked from the simulators' own send logs in sliding windows
//! (also across a restart), and failover after an unplug longer than `failover_after`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use smsgate::app::Gateway;
use smsgate::app::standin::StandIn;
use smsgate::config::Config;
use smsgate::sim::{SimHandle, SimOptions, SubmittedPdu};
use tokio_util::sync::CancellationToken;

use crate::harness::{
    CHANNEL, InProcess, TOKEN, free_port, init_logging, statuses_of, wait_for_status, wait_until,
};

const LONG: Duration = Duration::from_secs(90);

/// N simulators named sim-a, sim-b, … and a configuration listing them.
pub(crate) struct Rig {
    pub(crate) dir: tempfile::TempDir,
    sims: Vec<SimHandle>,
    names: Vec<String>,
    standin: StandIn,
    config: Config,
    client: reqwest::Client,
}

impl Rig {
    /// `modem_keys` go into every `[[modems]]` entry; `sections` (whole TOML tables such as
    /// `[routing]`) are appended.
    async fn new(n: usize, sim: SimOptions, modem_keys: &str, sections: &str) -> Self {
        Self::with_ports(n, sim, modem_keys, sections, |_, sim| {
            sim.path().display().to_string()
        })
        .await
    }

    /// [`Rig::new`] with each SIM's `port` as `port(index, sim)` says (e.g. a ser2net URL).
    async fn with_ports(
        n: usize,
        sim: SimOptions,
        modem_keys: &str,
        sections: &str,
        mut port: impl FnMut(usize, &SimHandle) -> String,
    ) -> Self {
        init_logging();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sims = Vec::new();
        let mut names = Vec::new();
        for i in 0..n {
            let name = format!("sim-{}", (b'a' + i as u8) as char);
            let handle = smsgate::sim::spawn(SimOptions {
                link: Some(dir.path().join(&name)),
                ..sim.clone()
            })
            .await
            .expect("simulator starts");
            sims.push(handle);
            names.push(name);
        }
        let standin = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), TOKEN, false)
            .await
            .expect("stand-in starts");
        let ports: Vec<String> = sims.iter().enumerate().map(|(i, s)| port(i, s)).collect();
        let text = config_text(dir.path(), &ports, &names, &standin, modem_keys, sections);
        std::fs::write(dir.path().join("smsgate.toml"), &text).expect("write the config");
        let mut config = Config::parse(&text).expect("pool config parses");
        config.resolve_token().expect("token");
        Self {
            dir,
            sims,
            names,
            standin,
            config,
            client: reqwest::Client::new(),
        }
    }

    async fn start(&self) -> InProcess {
        let shutdown = CancellationToken::new();
        let gateway = Gateway::start(self.config.clone(), shutdown.clone())
            .await
            .expect("gateway starts");
        let address = gateway.http_address();
        InProcess {
            gateway: Some(gateway),
            shutdown,
            address,
        }
    }

    fn sim(&self, name: &str) -> &SimHandle {
        let index = self.names.iter().position(|n| n == name).expect("a sim");
        &self.sims[index]
    }

    async fn send_text(&self, address: SocketAddr, contact: &str, text: &str) -> String {
        let response = self
            .client
            .post(format!("http://{address}/message"))
            .bearer_auth(TOKEN)
            .json(&json!({"channelId": CHANNEL, "contactId": contact,
                          "message": {"type": "text", "text": text}}))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 200, "{text:?} refused");
        let body: serde_json::Value = response.json().await.expect("json");
        body["mId"].as_str().expect("mId").to_owned()
    }

    /// Every part each SIM submitted, by SIM name.
    async fn submitted(&self) -> HashMap<String, Vec<SubmittedPdu>> {
        let mut all = HashMap::new();
        for (name, sim) in self.names.iter().zip(&self.sims) {
            all.insert(name.clone(), sim.submitted().await);
        }
        all
    }

    /// The SIMs that sent something to `contact`.
    async fn sims_that_sent_to(&self, contact: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (name, parts) in self.submitted().await {
            if parts.iter().any(|p| p.submit.recipient.value == contact) {
                out.push(name);
            }
        }
        out.sort();
        out
    }

    /// Waits until the stand-in got the inbound message `text`.
    async fn wait_inbound(&self, text: &str) {
        wait_until(
            LONG,
            &format!("inbound {text:?} reached respond.io"),
            || async {
                self.standin
                    .accepted_events()
                    .iter()
                    .any(|(_, e)| e["type"] == "message" && e["message"]["text"] == text)
            },
        )
        .await;
    }

    async fn wait_all_ready(&self, gateway: &InProcess) {
        let pool = gateway.gateway.as_ref().expect("running").pool().clone();
        wait_until(LONG, "every SIM is ready", || async {
            pool.members().iter().all(|m| m.usable())
        })
        .await;
    }
}

fn config_text(
    dir: &Path,
    ports: &[String],
    names: &[String],
    standin: &StandIn,
    modem_keys: &str,
    sections: &str,
) -> String {
    let mut modems = String::new();
    for (name, port) in names.iter().zip(ports) {
        modems.push_str(&format!(
            "[[modems]]\nname = {name:?}\nport = {port:?}\nbaud = 115200\n\
             command_timeout = \"2s\"\nsend_timeout = \"10s\"\nsweep_interval = \"2s\"\n\
             {modem_keys}\n\n",
        ));
    }
    format!(
        r#"
[respond]
channel_id = "{CHANNEL}"
api_token = "{TOKEN}"
webhook_url = "{webhook}"
request_timeout = "2s"
[http]
listen = "127.0.0.1:{port}"
[store]
path = {db:?}
[sms]
default_country = "MY"
{admin}

{modems}
{sections}
"#,
        webhook = standin.url(),
        port = free_port(),
        db = dir.join("smsgate.db").display().to_string(),
        admin = if sections.contains("[admin]") {
            ""
        } else {
            "[admin]\nlisten = \"off\""
        },
    )
}

fn contact(i: usize) -> String {
    format!("+6012{:07}", 3_000_000 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sim_sends_and_receives_into_the_one_inbox_and_parts_record_their_sim() {
    let rig = Rig::new(3, SimOptions::default(), "", "").await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let mut sent = Vec::new();
    for i in 0..9 {
        let contact = contact(i);
        let m_id = rig
            .send_text(gw.address, &contact, &format!("hello {i}"))
            .await;
        sent.push((contact, m_id));
    }
    for (_, m_id) in &sent {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }
    let store = gw.gateway.as_ref().expect("running").store().clone();
    let submitted = rig.submitted().await;
    let mut seen = HashSet::new();
    for (contact, m_id) in &sent {
        let (routed, parts) = store
            .outbound_modems(m_id)
            .await
            .expect("read")
            .expect("row");
        let routed = routed.expect("routed to a SIM");
        assert_eq!(
            parts,
            vec![Some(routed.clone())],
            "{m_id}: its part says its SIM"
        );
        let on_sims = rig.sims_that_sent_to(contact).await;
        assert_eq!(
            on_sims,
            vec![routed.clone()],
            "{contact} heard from exactly its SIM"
        );
        assert_eq!(
            store.contact_modem(contact).await.expect("read"),
            Some(routed),
            "{contact} is sticky to it"
        );
        assert!(seen.insert(contact.clone()));
    }
    let total: usize = submitted.values().map(Vec::len).sum();
    assert_eq!(total, 9, "nothing sent twice: {submitted:?}");
    for name in &rig.names {
        assert!(
            !submitted[name].is_empty(),
            "new contacts spread over every usable SIM: {name} sent nothing"
        );
    }

    // Inbound from every SIM lands in the one inbox.
    for (i, sim) in rig.sims.iter().enumerate() {
        sim.inject_sms(
            &format!("+6019{:07}", 4_000_000 + i),
            &format!("in via {i}"),
        )
        .await
        .expect("inject");
    }
    for i in 0..rig.sims.len() {
        rig.wait_inbound(&format!("in via {i}")).await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_who_wrote_to_sim_b_gets_every_reply_from_b_also_after_a_restart() {
    let rig = Rig::new(3, SimOptions::default(), "", "").await;
    let writer = "+60125550101";
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    rig.sim("sim-b")
        .inject_sms(writer, "hello from the contact")
        .await
        .expect("inject");
    rig.wait_inbound("hello from the contact").await;
    let mut replies = Vec::new();
    for i in 0..4 {
        replies.push(
            rig.send_text(gw.address, writer, &format!("reply {i}"))
                .await,
        );
    }
    for m_id in &replies {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }
    assert_eq!(
        rig.sims_that_sent_to(writer).await,
        vec!["sim-b".to_owned()]
    );
    gw.stop().await;

    // The binding is in SQLite: after a restart the next reply still goes from sim-b.
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let after = rig.send_text(gw.address, writer, "after the restart").await;
    wait_for_status(&rig.standin, &after, "sent", LONG).await;
    assert_eq!(
        rig.sims_that_sent_to(writer).await,
        vec!["sim-b".to_owned()]
    );
    let on_b = rig.sim("sim-b").submitted().await;
    assert_eq!(
        on_b.iter()
            .filter(|p| p.submit.recipient.value == writer)
            .count(),
        5
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_a_new_contact_stays_on_one_sim_and_writing_in_elsewhere_moves_the_queue() {
    let rig = Rig::new(3, SimOptions::default(), "", "").await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let burst_to = "+60125550202";
    let mut burst = Vec::new();
    for i in 0..6 {
        burst.push(
            rig.send_text(gw.address, burst_to, &format!("burst {i}"))
                .await,
        );
    }
    for m_id in &burst {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }
    let on = rig.sims_that_sent_to(burst_to).await;
    assert_eq!(
        on.len(),
        1,
        "a burst for a new contact does not spread: {on:?}"
    );
    let first = on[0].clone();

    // The SIM stops being registered: the contact's next messages wait for it (a SIM merely
    // unusable never moves a contact before failover_after) ...
    rig.sim(&first).set_registered(false).await;
    let pool = gw.gateway.as_ref().expect("running").pool().clone();
    wait_until(LONG, "the SIM is seen unregistered", || async {
        !pool.member(&first).expect("member").usable()
    })
    .await;
    let waiting = vec![
        rig.send_text(gw.address, burst_to, "waits 1").await,
        rig.send_text(gw.address, burst_to, "waits 2").await,
    ];
    tokio::time::sleep(Duration::from_millis(500)).await;
    for m_id in &waiting {
        assert!(statuses_of(&rig.standin, m_id).is_empty(), "{m_id} waits");
    }
    // ... until the contact writes in on another SIM: they are bound to it at once, and their
    // queued messages follow.
    let other = rig
        .names
        .iter()
        .find(|n| **n != first)
        .expect("another")
        .clone();
    rig.sim(&other)
        .inject_sms(burst_to, "I use this number now")
        .await
        .expect("inject");
    for m_id in &waiting {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }
    let store = gw.gateway.as_ref().expect("running").store().clone();
    assert_eq!(
        store.contact_modem(burst_to).await.expect("read"),
        Some(other.clone())
    );
    let mut both = vec![first.clone(), other.clone()];
    both.sort();
    assert_eq!(rig.sims_that_sent_to(burst_to).await, both);
    let on_other = rig.sim(&other).submitted().await;
    assert_eq!(
        on_other
            .iter()
            .filter(|p| p.submit.recipient.value == burst_to)
            .count(),
        2,
        "the two waiting messages went from the new SIM, once each"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_pair_per_sim_when_two_sims_hand_out_the_same_tp_mr() {
    // Reports only when the test injects them.
    let sim = SimOptions {
        report_delay: Duration::from_secs(3600),
        ..SimOptions::default()
    };
    let rig = Rig::new(2, sim, "delivery_reports = true", "").await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let who = "+60125550303";
    rig.sim("sim-a")
        .inject_sms(who, "first on a")
        .await
        .expect("inject");
    rig.wait_inbound("first on a").await;
    let on_a = rig.send_text(gw.address, who, "from a").await;
    wait_for_status(&rig.standin, &on_a, "sent", LONG).await;
    rig.sim("sim-b")
        .inject_sms(who, "then on b")
        .await
        .expect("inject");
    rig.wait_inbound("then on b").await;
    let on_b = rig.send_text(gw.address, who, "from b").await;
    wait_for_status(&rig.standin, &on_b, "sent", LONG).await;
    let mr_a = rig.sim("sim-a").submitted().await[0].mr;
    let mr_b = rig.sim("sim-b").submitted().await[0].mr;
    assert_eq!(
        mr_a, mr_b,
        "both SIMs' counters start alike: the same TP-MR"
    );

    // sim-a's report for that TP-MR and recipient is sim-a's part, although sim-b's is newer.
    rig.sim("sim-a")
        .inject_status_report(mr_a, 0x00)
        .await
        .expect("report");
    wait_for_status(&rig.standin, &on_a, "delivered", LONG).await;
    assert!(
        !statuses_of(&rig.standin, &on_b).contains(&"delivered".to_owned()),
        "sim-b's message is not delivered by sim-a's report"
    );
    rig.sim("sim-b")
        .inject_status_report(mr_b, 0x00)
        .await
        .expect("report");
    wait_for_status(&rig.standin, &on_b, "delivered", LONG).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_modem_hanging_while_the_others_keep_sending() {
    let rig = Rig::new(
        3,
        SimOptions::default(),
        "",
        "[routing]\nfailover_after = \"off\"\n",
    )
    .await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    // Every SIM serves some contacts first.
    let mut first = Vec::new();
    for i in 0..6 {
        first.push(
            rig.send_text(gw.address, &contact(100 + i), "warm up")
                .await,
        );
    }
    for m_id in &first {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }
    let on_a_before = rig.sim("sim-a").submitted().await.len();
    rig.sim("sim-a").set_hang(true).await;
    let store = gw.gateway.as_ref().expect("running").store().clone();
    // The same contacts again (sticky): those of sim-a wait, the others go.
    let mut second = Vec::new();
    for i in 0..6 {
        let c = contact(100 + i);
        let m_id = rig.send_text(gw.address, &c, "while sim-a hangs").await;
        second.push((c, m_id));
    }
    let mut others = 0;
    for (c, m_id) in &second {
        if store.contact_modem(c).await.expect("read").as_deref() != Some("sim-a") {
            wait_for_status(&rig.standin, m_id, "sent", LONG).await;
            others += 1;
        }
    }
    assert!(others > 0, "some contacts are on the other SIMs");
    assert_eq!(
        rig.sim("sim-a").submitted().await.len(),
        on_a_before,
        "the hanging SIM took nothing"
    );
    rig.sim("sim-a").set_hang(false).await;
    gw.stop().await;
}

/// Every window of `window` holds at most `cap` of `times`.
fn most_in_any_window(times: &[Instant], window: Duration) -> usize {
    let mut times = times.to_vec();
    times.sort();
    let mut most = 0;
    for (i, start) in times.iter().enumerate() {
        let inside = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < window)
            .count();
        most = most.max(inside);
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_hold_in_every_sliding_minute_also_across_a_restart() {
    // Two SIMs at 2 parts a minute: 4 messages go at once, the next ones wait for the window,
    // also after a restart (the history is in SQLite).
    let rig = Rig::new(2, SimOptions::default(), "per_minute = 2", "").await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let mut first = Vec::new();
    for i in 0..4 {
        first.push(
            rig.send_text(gw.address, &contact(200 + i), "within the cap")
                .await,
        );
    }
    for m_id in &first {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }
    let first_done = Instant::now();
    gw.stop().await;

    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let mut later = Vec::new();
    for i in 4..7 {
        later.push(
            rig.send_text(gw.address, &contact(200 + i), "after the restart")
                .await,
        );
    }
    for m_id in &later {
        wait_for_status(&rig.standin, m_id, "sent", Duration::from_secs(180)).await;
    }
    let submitted = rig.submitted().await;
    for (name, parts) in &submitted {
        let times: Vec<Instant> = parts.iter().map(|p| p.at).collect();
        assert!(
            most_in_any_window(&times, Duration::from_secs(60)) <= 2,
            "{name} broke per_minute = 2: {:?}",
            times
                .iter()
                .map(|t| t.duration_since(times[0]))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(submitted.values().map(Vec::len).sum::<usize>(), 7);
    // The waiting ones could not go before the first minute had passed.
    assert!(first_done.elapsed() >= Duration::from_secs(50));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_interval_spaces_the_starts_of_messages_on_each_sim() {
    let rig = Rig::new(2, SimOptions::default(), "min_interval = \"2s\"", "").await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let mut sent = Vec::new();
    for i in 0..6 {
        sent.push(rig.send_text(gw.address, &contact(300 + i), "spaced").await);
    }
    for m_id in &sent {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }
    for (name, parts) in rig.submitted().await {
        let mut times: Vec<Instant> = parts.iter().map(|p| p.at).collect();
        times.sort();
        for pair in times.windows(2) {
            // The sim stamps the accepted part; the start (AT+CMGS) was at least 2 s after the
            // previous start, and a send takes about the same time each.
            assert!(
                pair[1].duration_since(pair[0]) >= Duration::from_millis(1500),
                "{name}: two sends {:?} apart",
                pair[1].duration_since(pair[0])
            );
        }
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_after_an_unplug_longer_than_failover_after_moves_waiting_contacts_once() {
    let rig = Rig::new(
        2,
        SimOptions::default(),
        "",
        "[routing]\nfailover_after = \"3s\"\n",
    )
    .await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let who = "+60125550404";
    rig.sim("sim-a")
        .inject_sms(who, "bound to a")
        .await
        .expect("inject");
    rig.wait_inbound("bound to a").await;
    let store = gw.gateway.as_ref().expect("running").store().clone();
    assert_eq!(
        store.contact_modem(who).await.expect("read").as_deref(),
        Some("sim-a")
    );
    rig.sim("sim-a").unplug(Duration::from_secs(30)).await;
    let pool = gw.gateway.as_ref().expect("running").pool().clone();
    wait_until(LONG, "sim-a is seen unusable", || async {
        !pool.member("sim-a").expect("member").usable()
    })
    .await;
    let queued = vec![
        rig.send_text(gw.address, who, "moves 1").await,
        rig.send_text(gw.address, who, "moves 2").await,
    ];
    for m_id in &queued {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }
    assert_eq!(
        store.contact_modem(who).await.expect("read").as_deref(),
        Some("sim-b"),
        "the contact stays on the new SIM"
    );
    // sim-a comes back: nothing is sent twice, and the contact stays on sim-b.
    wait_until(LONG, "sim-a is back", || async {
        pool.member("sim-a").expect("member").usable()
    })
    .await;
    let after = rig.send_text(gw.address, who, "after sim-a is back").await;
    wait_for_status(&rig.standin, &after, "sent", LONG).await;
    assert_eq!(rig.sims_that_sent_to(who).await, vec!["sim-b".to_owned()]);
    assert_eq!(rig.sim("sim-b").submitted().await.len(), 3);
    let _ = &rig.dir;
    gw.stop().await;
}

fn smsgate(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .env_remove(smsgate::config::TOKEN_ENV)
        .output()
        .expect("smsgate runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_status_and_doctor_show_each_sim() {
    let rig = Rig::new(2, SimOptions::default(), "per_minute = 10", "").await;
    let config_path = rig.dir.path().join("smsgate.toml").display().to_string();
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let mut sent = Vec::new();
    for i in 0..4 {
        sent.push(
            rig.send_text(gw.address, &contact(400 + i), "counted")
                .await,
        );
    }
    for m_id in &sent {
        wait_for_status(&rig.standin, m_id, "sent", LONG).await;
    }

    let health: serde_json::Value = rig
        .client
        .get(format!("http://{}/health", gw.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let modems = health["modems"].as_array().expect("modems in the details");
    let names: Vec<&str> = modems.iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(names, ["sim-a", "sim-b"], "{health:#}");
    let minute: u64 = modems
        .iter()
        .map(|m| m["sent_last_minute"].as_u64().expect("a count"))
        .sum();
    assert_eq!(minute, 4, "{health:#}");
    for m in modems {
        assert_eq!(m["per_minute"], 10);
        assert_eq!(m["usable"], true);
        assert_eq!(m["health"]["registered"], true);
    }
    let check = health["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "modems")
        .expect("a modems check")
        .clone();
    assert_eq!(check["ok"], true, "{check}");
    assert!(health["drain_estimate_seconds"].is_number(), "{health:#}");

    let metrics = rig
        .client
        .get(format!("http://{}/metrics", gw.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    for line in [
        "smsgate_pool_modem_usable{modem=\"sim-a\"} 1",
        "smsgate_pool_modem_usable{modem=\"sim-b\"} 1",
        "smsgate_pool_modem_cap_parts{modem=\"sim-b\",window=\"minute\"} 10",
        "smsgate_pool_modem_queued_messages{modem=\"sim-a\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    let per_sim: u64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("smsgate_pool_modem_sent_parts{") && l.contains("window=\"minute\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(per_sim, 4, "{metrics}");

    // `smsgate status` reads the database and asks the running daemon for live health.
    let status = smsgate(&["status", "-c", &config_path]);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{stdout}");
    assert!(stdout.contains("modems     2"), "{stdout}");
    for name in ["sim-a", "sim-b"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name) && l.contains("last minute"))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"));
        assert!(line.contains("/10 last minute"), "{line}");
    }
    assert!(stdout.contains("ready, registered"), "{stdout}");
    gw.stop().await;

    // doctor: one modem by name, then every modem.
    let one = smsgate(&["doctor", "-c", &config_path, "--modem", "sim-b"]);
    let stdout = String::from_utf8_lossy(&one.stdout);
    assert!(one.status.success(), "{stdout}");
    assert!(
        stdout.contains("== modem sim-b") && !stdout.contains("== modem sim-a"),
        "{stdout}"
    );
    let all = smsgate(&["doctor", "-c", &config_path]);
    let stdout = String::from_utf8_lossy(&all.stdout);
    assert!(all.status.success(), "{stdout}");
    assert!(
        stdout.contains("== modem sim-a") && stdout.contains("== modem sim-b"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_every_sim_with_its_sends_and_caps() {
    let admin = free_port();
    let rig = Rig::new(
        2,
        SimOptions::default(),
        "per_minute = 10",
        &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n"),
    )
    .await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let m_id = rig
        .send_text(gw.address, &contact(500), "for the dashboard")
        .await;
    wait_for_status(&rig.standin, &m_id, "sent", LONG).await;
    let body: serde_json::Value = rig
        .client
        .get(format!("http://127.0.0.1:{admin}/api/modems"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let modems = body["modems"].as_array().expect("modems");
    let names: Vec<&str> = modems.iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(names, ["sim-a", "sim-b"], "{body:#}");
    let sent: u64 = modems
        .iter()
        .map(|m| m["sent"]["last_minute"].as_u64().expect("a count"))
        .sum();
    assert_eq!(sent, 1, "{body:#}");
    for m in modems {
        assert_eq!(m["caps"]["per_minute"], 10, "{m}");
        assert_eq!(m["registered"], true, "{m}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_one_sim_behind_ser2net_routes_to_it_and_keeps_sending_while_it_is_away() {
    let Some(binary) = crate::ser2net::ser2net_binary() else {
        return;
    };
    let remote_dir = tempfile::tempdir().expect("tempdir");
    let mut bridges = Vec::new();
    let rig = Rig::with_ports(
        2,
        SimOptions::default(),
        "",
        "[routing]\nfailover_after = \"off\"\n",
        |i, sim| {
            if i == 1 {
                let mut bridge =
                    crate::ser2net::Ser2net::new(binary.clone(), remote_dir.path(), &sim.path());
                bridge.start();
                let url = bridge.endpoint().to_string();
                bridges.push(bridge);
                url
            } else {
                sim.path().display().to_string()
            }
        },
    )
    .await;
    let mut bridge = bridges.pop().expect("one ser2net");
    assert!(rig.config.pool()[1].endpoint.is_remote());
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;

    // A contact writes in on the remote SIM: their replies go back through ser2net.
    let remote_contact = "+60125550505";
    rig.sim("sim-b")
        .inject_sms(remote_contact, "hello over the LAN")
        .await
        .expect("inject");
    rig.wait_inbound("hello over the LAN").await;
    let reply = rig
        .send_text(gw.address, remote_contact, "back over the LAN")
        .await;
    wait_for_status(&rig.standin, &reply, "sent", LONG).await;
    assert_eq!(
        rig.sims_that_sent_to(remote_contact).await,
        vec!["sim-b".to_owned()]
    );

    // ser2net dies: the remote SIM is unusable, new contacts go to the local one at once.
    bridge.kill();
    let pool = gw.gateway.as_ref().expect("running").pool().clone();
    wait_until(LONG, "sim-b is seen unusable", || async {
        !pool.member("sim-b").expect("member").usable()
    })
    .await;
    let local = rig
        .send_text(gw.address, &contact(600), "while the LAN modem is away")
        .await;
    wait_for_status(&rig.standin, &local, "sent", LONG).await;
    assert_eq!(
        rig.sims_that_sent_to(&contact(600)).await,
        vec!["sim-a".to_owned()]
    );
    // The sticky contact's reply waits for their SIM (failover is off) ...
    let waits = rig
        .send_text(gw.address, remote_contact, "after ser2net is back")
        .await;
    // ... and goes once ser2net is back: the driver reconnects with back-off.
    bridge.start();
    wait_for_status(&rig.standin, &waits, "sent", LONG).await;
    assert_eq!(
        rig.sims_that_sent_to(remote_contact).await,
        vec!["sim-b".to_owned()]
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_message_goes_back_to_back_on_one_sim_and_counts_every_part() {
    let rig = Rig::new(2, SimOptions::default(), "per_minute = 10", "").await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let who = "+60125550606";
    let long = "A message long enough to take three parts on the air. ".repeat(7);
    let m_id = rig.send_text(gw.address, who, &long).await;
    wait_for_status(&rig.standin, &m_id, "sent", LONG).await;
    let on = rig.sims_that_sent_to(who).await;
    assert_eq!(on.len(), 1, "{on:?}");
    let parts = rig.sim(&on[0]).submitted().await;
    assert_eq!(parts.len(), 3, "three parts, all on {}", on[0]);
    let sequences: Vec<u8> = parts
        .iter()
        .filter_map(|p| p.submit.user_data.concat.as_ref().map(|c| c.sequence))
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
    let store = gw.gateway.as_ref().expect("running").store().clone();
    let (_, modems) = store
        .outbound_modems(&m_id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(modems, vec![Some(on[0].clone()); 3]);
    let history = store.send_history(&on[0], 0).await.expect("history");
    assert_eq!(history.len(), 3, "each part counts against the caps");
    assert_eq!(
        history.iter().filter(|r| r.starts_message).count(),
        1,
        "one message start: min_interval spaces messages, not parts"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_per_day_holds_a_new_contact_while_known_ones_are_still_served() {
    // Two SIMs that may each reach 2 distinct recipients a day: four new contacts fill both.
    let rig = Rig::new(2, SimOptions::default(), "recipients_per_day = 2", "").await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let known: Vec<String> = (0..4).map(|i| contact(700 + i)).collect();
    for who in &known {
        let m_id = rig.send_text(gw.address, who, "first of the day").await;
        wait_for_status(&rig.standin, &m_id, "sent", LONG).await;
    }
    // A fifth new contact must wait for tomorrow; the four known ones are still written to,
    // by both SIMs, after it was queued (so neither SIM was merely slow to reach it).
    let fifth = contact(704);
    let waiting = rig.send_text(gw.address, &fifth, "over the cap").await;
    for who in &known {
        let m_id = rig.send_text(gw.address, who, "second of the day").await;
        wait_for_status(&rig.standin, &m_id, "sent", LONG).await;
    }
    let submitted = rig.submitted().await;
    for (name, parts) in &submitted {
        let recipients: HashSet<&str> = parts
            .iter()
            .map(|p| p.submit.recipient.value.as_str())
            .collect();
        assert_eq!(recipients.len(), 2, "{name} reached {recipients:?}");
        assert_eq!(
            parts.len(),
            4,
            "{name}: two messages to each of its two contacts"
        );
    }
    assert!(rig.sims_that_sent_to(&fifth).await.is_empty());
    assert!(
        !statuses_of(&rig.standin, &waiting).contains(&"sent".to_owned()),
        "{:?}",
        statuses_of(&rig.standin, &waiting)
    );
    let running = gw.gateway.as_ref().expect("running");
    let views = running
        .pool()
        .views(running.store(), smsgate::clock::now_ms())
        .await;
    for view in &views {
        assert_eq!(
            (view.recipients_last_day, view.recipients_per_day),
            (2, Some(2)),
            "{}",
            view.name
        );
    }
    // The SIM the fifth contact waits on says it cannot send for most of a day.
    let soonest = views
        .iter()
        .map(|v| v.next_send_at_ms - smsgate::clock::now_ms())
        .max()
        .expect("two SIMs");
    assert!(soonest > 23 * 3600 * 1000, "next send in {soonest} ms");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_balance_on_any_sim_of_the_pool_degrades_health_and_is_exported_per_sim() {
    let rig = Rig::new(
        2,
        SimOptions::default(),
        "balance_ussd = \"*100#\"\nlow_balance = 5.0",
        "",
    )
    .await;
    rig.sim("sim-b")
        .set_ussd_answer("*100#", Some("Your balance is 2.00 USD."))
        .await;
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let health = || async {
        rig.client
            .get(format!("http://{}/health", gw.address))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("answered")
            .json::<serde_json::Value>()
            .await
            .expect("json")
    };
    // Both SIMs are asked at connection time and answer in either order: wait for both.
    let balance_checks = |health: &serde_json::Value| -> Vec<(bool, String)> {
        health["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == "balance")
            .map(|c| {
                (
                    c["ok"] == true,
                    c["detail"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    wait_until(LONG, "both SIMs' balances show in /health", || async {
        balance_checks(&health().await).len() == 2
    })
    .await;
    let health = health().await;
    assert_eq!(health["status"], "degraded", "{health:#}");
    let checks = balance_checks(&health);
    assert!(
        checks
            .iter()
            .any(|(ok, d)| !ok && d.starts_with("sim-b: 2 is below low_balance 5")),
        "{health:#}"
    );
    // sim-a's own balance is fine and says so.
    assert!(
        checks
            .iter()
            .any(|(ok, d)| *ok && d.starts_with("sim-a: 12.5 (low_balance 5")),
        "{health:#}"
    );
    let metrics = rig
        .client
        .get(format!("http://{}/metrics", gw.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "smsgate_pool_modem_sim_balance{modem=\"sim-b\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "smsgate_pool_modem_sim_balance{modem=\"sim-a\"} 12.5"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smsgate_ussd_through_the_daemon_asks_the_sim_it_names() {
    let admin = free_port();
    let rig = Rig::new(
        2,
        SimOptions::default(),
        "",
        &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n"),
    )
    .await;
    rig.sim("sim-b")
        .set_ussd_answer("*100#", Some("sim-b has 7.00 left"))
        .await;
    let config_path = rig.dir.path().join("smsgate.toml").display().to_string();
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    let ask = |modem: &'static str| {
        let config_path = config_path.clone();
        tokio::task::spawn_blocking(move || {
            smsgate(&["ussd", "-c", &config_path, "--modem", modem, "*100#"])
        })
    };
    let output = ask("sim-b").await.expect("joined");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "sim-b has 7.00 left"
    );
    assert_eq!(rig.sim("sim-b").ussd_requests().await, ["*100#"]);
    assert!(rig.sim("sim-a").ussd_requests().await.is_empty());
    // A name outside the pool is refused with the names there are.
    let output = ask("sim-z").await.expect("joined");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no modem named \"sim-z\""), "{stderr}");
    gw.stop().await;
}

/// The page itself, in headless Chromium (as `dashboard.rs`; without a browser the test prints
/// a notice and passes unless `SMSGATE_REQUIRE_BROWSER=1`): one card per SIM, each with what
/// it sent against its caps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_page_shows_a_card_per_sim_with_sends_against_caps() {
    use crate::dashboard::{PASSWORD, browser};
    let Some(browser) = browser((1280, 1400)).await else {
        return;
    };
    let admin = free_port();
    let mut rig = Rig::new(
        2,
        SimOptions::default(),
        "per_minute = 10\nrecipients_per_day = 250",
        &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n"),
    )
    .await;
    rig.config.admin.password = Some(PASSWORD.to_owned());
    let gw = rig.start().await;
    rig.wait_all_ready(&gw).await;
    // Logged in and showing both cards before the send: the count is of the last minute, so
    // a slow browser start after the send could otherwise outlast it.
    browser
        .log_in(&format!("http://127.0.0.1:{admin}"), PASSWORD)
        .await;
    for name in ["sim-a", "sim-b"] {
        browser
            .wait_text(
                &format!("[data-modem=\"{name}\"] .m-sent"),
                &format!("{name}'s card before the send"),
                |text| text.starts_with("0 of 10 in the last minute"),
            )
            .await;
    }
    let m_id = rig.send_text(gw.address, &contact(900), "counted").await;
    wait_for_status(&rig.standin, m_id.as_str(), "sent", LONG).await;
    let sender = rig.sims_that_sent_to(&contact(900)).await;
    assert_eq!(sender.len(), 1, "{sender:?}");
    for name in ["sim-a", "sim-b"] {
        let sends = if sender[0] == name { 1 } else { 0 };
        browser
            .wait_text(
                &format!("[data-modem=\"{name}\"] .m-sent"),
                &format!("{name}'s sends against its caps"),
                |text| {
                    text == format!(
                        "{sends} of 10 in the last minute · {sends} in the hour · {sends} in \
                         24 h · {sends} of 250 recipients in 24 h"
                    )
                },
            )
            .await;
    }
    browser.close().await;
    gw.stop().await;
}
