//! The operator's dashboard in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`), against the real gateway on the simulator.
//!
//! Without Chromium the browser tests print a notice and pass, so `cargo test` stays true on a
//! fresh machine; with `SMSGATE_REQUIRE_BROWSER=1` (as `.ci/run` sets) a missing browser fails
//! them. `SMSGATE_CHROMIUM` and `SMSGATE_CHROMEDRIVER` name the binaries when they are not on
//! the `PATH` as `chromium`/`chromedriver`.
//!
//! `cargo test --test it dashboard_screenshot -- --ignored` runs `smsgate demo`, gives it some
//! traffic and writes the README's screenshot, `docs/dashboard.png`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use smsgate::app::standin::Behaviour;
use smsgate::sim::SimOptions;
use tokio::io::AsyncWriteExt;

use crate::harness::{self, CONTACT, Harness, free_port, statuses_of, wait_until};

/// Generous: two cores shared by several builds, and a browser starting cold.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);
pub(crate) const PASSWORD: &str = "dashboard test password";

/// Chromium and its driver, running for one test.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn find(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Starts chromedriver and a headless Chromium with a fresh profile; `None` (with a notice)
/// when they are not installed, unless `SMSGATE_REQUIRE_BROWSER=1`.
pub(crate) async fn browser(window: (u32, u32)) -> Option<Browser> {
    let chromium = find(
        "SMSGATE_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = find("SMSGATE_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        let required = std::env::var("SMSGATE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SMSGATE_REQUIRE_BROWSER=1 but Chromium or chromedriver is missing: \
             apt-get install chromium chromium-driver"
        );
        eprintln!(
            "notice: skipping the browser test: no chromium/chromedriver on PATH \
             (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = free_port();
    let driver = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    wait_until(DEADLINE, "chromedriver listens", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    let profile = tempfile::tempdir().expect("profile dir");
    // This machine's network is closed: without these flags Chromium waits on connections
    // (updates, sync, QUIC probes) that never come.
    let args = json!([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        format!("--user-data-dir={}", profile.path().display()),
        format!("--window-size={},{}", window.0, window.1),
    ]);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium.display().to_string(), "args": args}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium");
    Some(Browser {
        client,
        driver,
        _profile: profile,
    })
}

impl Browser {
    pub(crate) async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }

    /// The text of the first element matching `css` (empty when there is none).
    pub(crate) async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the text at `css` satisfies `done`; panics with what it saw.
    pub(crate) async fn wait_text(
        &self,
        css: &str,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let until = Instant::now() + DEADLINE;
        loop {
            let text = self.text(css).await;
            if done(&text) {
                return text;
            }
            if Instant::now() >= until {
                let url = self.client.current_url().await.map(|u| u.to_string());
                let page = self.client.source().await.unwrap_or_default();
                panic!(
                    "timed out waiting until {what} ({css} says {text:?}); at {url:?}:\n{}",
                    page.chars().take(3000).collect::<String>()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Logs in through the form at `base`.
    pub(crate) async fn log_in(&self, base: &str, password: &str) {
        self.client.goto(base).await.expect("open the dashboard");
        let field = self
            .client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css("#password"))
            .await
            .expect("the login form");
        assert!(
            self.client
                .current_url()
                .await
                .expect("url")
                .path()
                .ends_with("/login"),
            "not logged in yet: the dashboard sends the browser to the login form"
        );
        field.send_keys(password).await.expect("type the password");
        self.client
            .find(Locator::Css("#login-button"))
            .await
            .expect("the button")
            .click()
            .await
            .expect("log in");
    }
}

#[tokio::test]
async fn dashboard_in_a_real_browser_logs_in_shows_the_modem_and_sends_dead_events_again() {
    let Some(browser) = browser((1440, 1000)).await else {
        return;
    };
    let admin_port = free_port();
    let mut h = Harness::new(
        SimOptions {
            network_delay: Duration::from_millis(50),
            report_delay: Duration::from_millis(300),
            ..SimOptions::default()
        },
        &format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n"),
    )
    .await;
    h.config.admin.password = Some(PASSWORD.to_owned());
    let gw = h.start().await;
    let base = format!("http://127.0.0.1:{admin_port}");
    wait_until(DEADLINE, "the dashboard listens", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", admin_port))
            .await
            .is_ok()
    })
    .await;

    // Log in, and see the simulated modem's name and signal.
    browser.log_in(&base, PASSWORD).await;
    browser
        .wait_text(
            "[data-modem=\"modem\"] .m-name",
            "the modem is shown",
            |t| t == "modem",
        )
        .await;
    let signal = browser
        .wait_text(
            "[data-modem=\"modem\"] .m-signal",
            "the signal is shown",
            |t| t.ends_with("dBm"),
        )
        .await;
    assert_eq!(signal, "-73 dBm", "the simulator's rssi 20 is -73 dBm");
    let operator = browser.text("[data-modem=\"modem\"] .m-operator").await;
    assert_eq!(operator, "smsgate sim");

    // A message through POST /message appears and turns delivered.
    let m_id = h
        .send_text(gw.address, CONTACT, "shown on the dashboard")
        .await;
    let row = format!("tr[data-mid=\"{m_id}\"] td.state");
    browser
        .wait_text(&row, "the message turns delivered", |t| t == "delivered")
        .await;

    // respond.io refuses the next events (400): they are parked as dead and shown so.
    h.standin.set_behaviour(Behaviour::Status(400));
    let refused = h.send_text(gw.address, CONTACT, "its receipts die").await;
    browser
        .wait_text("#dead-count", "the dead events are shown", |t| {
            t.parse::<u32>().is_ok_and(|n| n >= 2)
        })
        .await;
    let dead_list = browser.text("#dead-list").await;
    assert!(dead_list.contains("HTTP 400"), "{dead_list}");
    // "Send again", with respond.io accepting again: the events arrive, none is dead.
    h.standin.set_behaviour(Behaviour::Accept);
    browser
        .client
        .find(Locator::Css("#retry-dead"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("press send again");
    wait_until(
        DEADLINE,
        "the re-driven receipts reach respond.io",
        || async {
            let statuses = statuses_of(&h.standin, &refused);
            statuses.iter().any(|s| s == "sent") && statuses.iter().any(|s| s == "delivered")
        },
    )
    .await;
    browser
        .wait_text("#dead-count", "no event is dead any more", |t| t == "0")
        .await;

    // The test SMS form queues a message reported as an echo.
    let to = browser
        .client
        .find(Locator::Css("#send-to"))
        .await
        .expect("field");
    to.send_keys("+60111222333").await.expect("type");
    browser
        .client
        .find(Locator::Css("#send-button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("send");
    browser
        .wait_text("#send-result", "the test SMS is queued", |t| {
            t.starts_with("Queued")
        })
        .await;
    h.standin
        .wait_for(DEADLINE, |events| {
            events.iter().any(|(contact, event)| {
                contact == "+60111222333" && event["type"] == "message_echo"
            })
        })
        .await
        .expect("the test SMS reaches respond.io as a message_echo");

    // A cross-site POST: a form on a page of another origin (another port), submitted in
    // the browser that holds the session cookie, without the CSRF token. The dashboard
    // answers it with the refusal, and nothing is queued.
    let attacker = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let attacker_url = format!("http://{}/", attacker.local_addr().expect("address"));
    tokio::spawn(async move {
        let page = axum::Router::new().route(
            "/",
            axum::routing::get(|| async { axum::response::Html("<!doctype html><p>another site") }),
        );
        let _ = axum::serve(attacker, page).await;
    });
    browser
        .client
        .goto(&attacker_url)
        .await
        .expect("another origin");
    let script = format!(
        "const form = document.createElement('form');
         form.method = 'POST';
         form.action = '{base}/api/send';
         form.enctype = 'text/plain';
         const field = document.createElement('input');
         field.name = '{{\"to\":\"+60999888777\",\"text\":\"cross-site\",\"x\":\"';
         field.value = '\"}}';
         form.append(field);
         document.body.append(form);
         form.submit();"
    );
    browser
        .client
        .execute(&script, vec![])
        .await
        .expect("the page submits the form");
    let answer = browser
        .wait_text("body", "the dashboard answers the cross-site form", |t| {
            t.contains("error")
        })
        .await;
    // The session cookie went with it (same site: another port of 127.0.0.1), so it is the
    // origin check that refuses it, not the missing login.
    assert!(
        answer.contains("refused: the request comes from another origin"),
        "{answer}"
    );
    let queued = h
        .start_store()
        .await
        .console_outbound(Some("60999888777"), 10)
        .await
        .expect("rows");
    assert!(queued.is_empty(), "a cross-site POST queued {queued:?}");

    browser.close().await;
    gw.stop().await;
}

impl Harness {
    /// A second handle on the test's database (WAL lets it read beside the gateway).
    async fn start_store(&self) -> smsgate::store::Store {
        smsgate::store::Store::open(&self.config.store.path)
            .await
            .expect("the database opens")
    }
}

/// `smsgate demo` with some traffic, photographed for the README (`docs/dashboard.png`).
#[tokio::test]
#[ignore = "writes docs/dashboard.png; run it by name with --ignored"]
async fn dashboard_screenshot_of_the_demo() {
    let Some(browser) = browser((1440, 1330)).await else {
        panic!("the screenshot needs chromium and chromedriver");
    };
    harness::init_logging();
    let (api, admin) = (free_port(), free_port());
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["demo", "--network-delay", "600ms", "--report-delay", "2s"])
        .args(["--listen", &format!("127.0.0.1:{api}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo starts");
    let api: SocketAddr = ([127, 0, 0, 1], api).into();
    wait_until(DEADLINE, "the demo listens", || async {
        tokio::net::TcpStream::connect(api).await.is_ok()
            && tokio::net::TcpStream::connect(("127.0.0.1", admin))
                .await
                .is_ok()
    })
    .await;
    let client = reqwest::Client::new();
    let contacts = [
        "+60123456789",
        "+60177872890",
        "+60198765432",
        "+6581234567",
    ];
    for (n, text) in [
        "Your order #1042 has shipped and arrives tomorrow.",
        "Thanks! We received your payment of RM 120.00.",
        "Reminder: your appointment is at 10:30 on Friday.",
        "Hi Aisyah, your table for 4 is confirmed for 8 pm.",
        "Your verification code is 482913.",
        "We are open 9 am to 6 pm today. Reply 1 for directions.",
    ]
    .iter()
    .enumerate()
    {
        let answer = client
            .post(format!("http://{api}/message"))
            .bearer_auth("demo-token")
            .json(
                &json!({"channelId": "demo-channel", "contactId": contacts[n % contacts.len()],
                          "message": {"type": "text", "text": text}}),
            )
            .send()
            .await
            .expect("POST /message");
        assert!(answer.status().is_success());
    }
    let stdin = demo.stdin.as_mut().expect("stdin");
    for line in ["Hi, is my order on its way?", "1", "Thank you!"] {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("stdin");
    }
    browser
        .log_in(&format!("http://127.0.0.1:{admin}"), "demo-dashboard")
        .await;
    browser
        .wait_text(
            "#outbound tr:nth-child(6) td.state",
            "every message is delivered",
            |t| t == "delivered",
        )
        .await;
    browser
        .wait_text(
            "#inbound tr:nth-child(3) td.state",
            "the replies are in",
            |t| t == "received",
        )
        .await;
    // Let the sparkline gather samples (one every 10 s; the driver reads the signal every
    // 30 s), and the page repaint.
    tokio::time::sleep(Duration::from_secs(95)).await;
    let png = browser.client.screenshot().await.expect("screenshot");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png");
    std::fs::write(&path, png).expect("write docs/dashboard.png");
    eprintln!("wrote {}", path.display());
    browser.close().await;
    let _ = demo.kill().await;
}

#[tokio::test]
async fn the_daemon_refuses_a_dashboard_on_the_lan_without_a_password() {
    let port = free_port();
    let h = Harness::new(
        SimOptions::default(),
        &format!("[admin]\nlisten = \"0.0.0.0:{port}\"\n"),
    )
    .await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["run", "-c"])
        .arg(&h.config_path)
        .env_remove(smsgate::config::TOKEN_ENV)
        .env_remove(smsgate::config::ADMIN_PASSWORD_ENV)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("smsgate run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.contains("admin.listen"))
        .unwrap_or_else(|| panic!("no reason given: {stderr}"));
    assert!(
        line.contains("no dashboard password is set") && line.contains("admin.password_file"),
        "{line}"
    );
    // With the password in the environment it starts (and the dashboard asks for a login).
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["run", "-c"])
        .arg(&h.config_path)
        .env_remove(smsgate::config::TOKEN_ENV)
        .env(smsgate::config::ADMIN_PASSWORD_ENV, PASSWORD)
        .env("RUST_LOG", "smsgate=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("smsgate run");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/queues");
    wait_until(DEADLINE, "the dashboard answers", || async {
        client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 401)
    })
    .await;
    let answer = client
        .get(&url)
        .basic_auth("", Some(PASSWORD))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let _ = child.kill().await;
}
