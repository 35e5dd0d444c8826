//! The dashboard's routes over a real socket: who gets in, what cross-site requests are
//! refused, and what the JSON says about a store with something in it.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;

async fn serve(password: Option<&str>) -> (SocketAddr, Store, CancellationToken) {
    let store = Store::open_in_memory().await.expect("store");
    let mut config = Config::parse(
        "[respond]\nchannel_id = \"c\"\napi_token = \"t\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("config");
    config.admin.password = password.map(str::to_owned);
    let (_, health) = watch::channel(crate::modem::Health {
        healthy: true,
        registered: true,
        operator: Some("smsgate sim".into()),
        signal_dbm: Some(-73),
        ..crate::modem::Health::default()
    });
    let dashboard = Dashboard::from_config(&config, store.clone(), health, Arc::default())
        .expect("accepted")
        .expect("on");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = crate::http::serve(listener, router(dashboard.console), token).await;
    });
    (address, store, shutdown)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn open_on_loopback_with_csrf_and_host_checks() {
    let (address, store, shutdown) = serve(None).await;
    let base = format!("http://{address}");
    let client = client();
    let page = client.get(&base).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(page.text().await.expect("body").contains("/app.js"));
    let session: Value = client
        .get(format!("{base}/api/session"))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(session["auth"], "open");
    let csrf = session["csrf"].as_str().expect("a token").to_owned();
    let body = json!({"to": "+60123456789", "text": "test from the dashboard"});
    // No token: refused, nothing queued.
    let refused = client
        .post(format!("{base}/api/send"))
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 403);
    // Another origin, even with the token: refused.
    let refused = client
        .post(format!("{base}/api/send"))
        .header("origin", "http://evil.example")
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 403);
    assert!(
        store
            .console_outbound(None, 10)
            .await
            .expect("rows")
            .is_empty()
    );
    let sent: Value = client
        .post(format!("{base}/api/send"))
        .header("origin", base.as_str())
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(sent["parts"], 1, "{sent}");
    let rows = store.console_outbound(None, 10).await.expect("rows");
    assert_eq!((rows.len(), rows[0].source.as_str()), (1, "cli"));
    let batch = store
        .next_event_batch(i64::MAX, 10)
        .await
        .expect("events")
        .expect("echo");
    assert_eq!(batch.events[0]["type"], "message_echo");
    // A bad number is a 400 with the reason.
    let bad = client
        .post(format!("{base}/api/send"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"to": "0123", "text": "x"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status(), 400);
    // DNS rebinding: another host name is refused in the open mode.
    let rebound = client
        .get(format!("{base}/api/queues"))
        .header("host", format!("evil.example:{}", address.port()))
        .send()
        .await
        .expect("answer");
    assert_eq!(rebound.status(), 403);
    let queues: Value = client
        .get(format!("{base}/api/queues"))
        .send()
        .await
        .expect("queues")
        .json()
        .await
        .expect("json");
    assert_eq!(queues["outbox"]["waiting"], 1);
    assert_eq!(queues["outbox"]["by_state"]["queued"], 1);
    let modems: Value = client
        .get(format!("{base}/api/modems"))
        .send()
        .await
        .expect("modems")
        .json()
        .await
        .expect("json");
    assert_eq!(modems["modems"][0]["name"], MODEM_NAME);
    assert_eq!(modems["modems"][0]["signal_dbm"], -73);
    assert_eq!(modems["modems"][0]["balance"], Value::Null);
    let messages: Value = client
        .get(format!("{base}/api/messages?q=6012"))
        .send()
        .await
        .expect("messages")
        .json()
        .await
        .expect("json");
    assert_eq!(messages["outbound"][0]["contact"], "+60123456789");
    assert_eq!(messages["outbound"][0]["contact_masked"], "+60*******89");
    let chart: Value = client
        .get(format!("{base}/api/chart"))
        .send()
        .await
        .expect("chart")
        .json()
        .await
        .expect("json");
    assert_eq!(chart["hours"].as_array().map(Vec::len), Some(24));
    assert_eq!(
        client
            .get(format!("{base}/api/nothing"))
            .send()
            .await
            .expect("404")
            .status(),
        404
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_password_means_a_login_a_session_cookie_and_a_token() {
    let (address, store, shutdown) = serve(Some("correct horse battery")).await;
    let base = format!("http://{address}");
    let client = client();
    assert_eq!(
        client
            .get(format!("{base}/api/modems"))
            .send()
            .await
            .expect("answer")
            .status(),
        401
    );
    let page = client.get(&base).send().await.expect("answer");
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    let form = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("form");
    assert!(
        form.text()
            .await
            .expect("body")
            .contains("type=\"password\"")
    );
    let wrong = client
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=guess")
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.expect("body").contains("Wrong password"));
    // A login form posted from another site is refused.
    let cross = client
        .post(format!("{base}/login"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=correct+horse+battery")
        .send()
        .await
        .expect("answer");
    assert_eq!(cross.status(), 403);
    let login = client
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=correct+horse+battery")
        .send()
        .await
        .expect("answer");
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().expect("pair").to_owned();
    let session: Value = client
        .get(format!("{base}/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(session["auth"], "password");
    let csrf = session["csrf"].as_str().expect("token").to_owned();
    // The cookie alone does not make a POST: the token must come too.
    let event = crate::wire::Event::message("x", 1, "hi");
    let id = store
        .enqueue_event("+60123456789", event, 1)
        .await
        .expect("event");
    store
        .events_dead(&[id], "respond.io rejected the events (HTTP 400)")
        .await
        .expect("dead");
    let refused = client
        .post(format!("{base}/api/webhook/retry-dead"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 403);
    assert_eq!(store.webhook_stats(0).await.expect("stats").dead, 1);
    let done: Value = client
        .post(format!("{base}/api/webhook/retry-dead"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(done["requeued"], 1);
    // HTTP Basic for scripts, without a token.
    let basic = client
        .get(format!("{base}/api/queues"))
        .basic_auth("admin", Some("correct horse battery"))
        .send()
        .await
        .expect("answer");
    assert_eq!(basic.status(), 200);
    assert!(!basic.headers().contains_key("www-authenticate"));
    // Logging out ends the session.
    let out = client
        .post(format!("{base}/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("answer");
    assert_eq!(out.status(), 303);
    assert_eq!(
        client
            .get(format!("{base}/api/queues"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("answer")
            .status(),
        401
    );
    shutdown.cancel();
}

#[test]
fn a_lan_listener_without_a_password_is_refused() {
    let config = Config::parse(
        "[respond]\nchannel_id = \"c\"\napi_token = \"t\"\n[admin]\nlisten = \"0.0.0.0:8081\"\n",
    )
    .expect("parses");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = runtime.block_on(Store::open_in_memory()).expect("store");
    let (_, health) = watch::channel(crate::modem::Health::default());
    let refused = Dashboard::from_config(&config, store, health, Arc::default());
    assert!(
        matches!(&refused, Err(AdminError::Config(_))),
        "{:?}",
        refused.as_ref().err()
    );
}
