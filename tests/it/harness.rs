//! The end-to-end harness: a simulated modem on a real pty, a temporary SQLite file, a local
//! respond.io stand-in, and the real gateway (in process, or the built binary as a child process
//! when a test needs to kill it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smsgate::app::Gateway;
use smsgate::app::standin::StandIn;
use smsgate::config::Config;
use smsgate::sim::{SimHandle, SimOptions};
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "test-channel";
pub const TOKEN: &str = "test-token-0123456789";
pub const CONTACT: &str = "+60123456789";

/// Everything one end-to-end test needs.
pub struct Harness {
    /// Holds the database, the config and the modem link; removed on drop.
    _dir: tempfile::TempDir,
    pub sim: SimHandle,
    pub standin: StandIn,
    pub config_path: PathBuf,
    pub config: Config,
    pub client: reqwest::Client,
}

/// A gateway running in this process.
pub struct InProcess {
    pub gateway: Option<Gateway>,
    pub shutdown: CancellationToken,
    pub address: SocketAddr,
}

/// The built `smsgate run` binary as a child process.
pub struct Child {
    pub process: tokio::process::Child,
    pub address: SocketAddr,
}

impl Harness {
    /// Starts the simulator (with `sim` options) and the stand-in, and writes a config file.
    /// `extra` is appended to the configuration (TOML sections).
    pub async fn new(sim: SimOptions, extra: &str) -> Self {
        init_logging();
        let dir = tempfile::tempdir().expect("tempdir");
        let sim = smsgate::sim::spawn(SimOptions {
            link: Some(dir.path().join("modem")),
            ..sim
        })
        .await
        .expect("simulator starts");
        let standin = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), TOKEN, false)
            .await
            .expect("stand-in starts");
        let port = free_port();
        let text = config_text(dir.path(), &sim, &standin, port, extra);
        let config_path = dir.path().join("smsgate.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let mut config = Config::parse(&text).expect("test config parses");
        config.resolve_token().expect("token");
        Self {
            _dir: dir,
            sim,
            standin,
            config_path,
            config,
            client: reqwest::Client::new(),
        }
    }

    /// Starts the gateway in this process.
    pub async fn start(&self) -> InProcess {
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

    /// Starts `smsgate run -c <config>` as a child process and waits until it listens.
    pub async fn spawn_binary(&self) -> Child {
        let process = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
            .args(["run", "-c"])
            .arg(&self.config_path)
            .env("RUST_LOG", "smsgate=warn")
            .env_remove(smsgate::config::TOKEN_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("smsgate binary starts");
        let address = self.config.http.listen;
        wait_until(Duration::from_secs(30), "the binary listens", || async {
            tokio::net::TcpStream::connect(address).await.is_ok()
        })
        .await;
        Child { process, address }
    }

    /// `POST /message` with a text message to `contact`; returns (status, body).
    pub async fn post_text(&self, address: SocketAddr, contact: &str, text: &str) -> (u16, Value) {
        self.post_message(
            address,
            json!({"channelId": CHANNEL, "contactId": contact, "message": {"type": "text", "text": text}}),
        )
        .await
    }

    /// `POST /message` with a text that must be accepted; returns its `mId`.
    pub async fn send_text(&self, address: SocketAddr, contact: &str, text: &str) -> String {
        let (status, body) = self.post_text(address, contact, text).await;
        assert_eq!(status, 200, "{text:?} refused: {body}");
        body["mId"].as_str().expect("mId").to_owned()
    }

    /// `POST /message` with any body, with the right token.
    pub async fn post_message(&self, address: SocketAddr, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("http://{address}/message"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl InProcess {
    /// Waits until the gateway's modem is registered on the (simulated) network.
    pub async fn wait_registered(&self) {
        let gateway = self.gateway.as_ref().expect("running");
        wait_until(
            Duration::from_secs(30),
            "the modem is registered",
            || async { gateway.modem().health().registered },
        )
        .await;
    }

    /// Stops the gateway and waits for it, as SIGTERM would.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(gateway) = self.gateway.take() {
            tokio::time::timeout(Duration::from_secs(15), gateway.wait())
                .await
                .expect("gateway stops within 15 s")
                .expect("gateway stops cleanly");
        }
    }
}

/// The configuration of a test gateway. `request_timeout` is long: the stand-in records a
/// request as accepted when it arrives, so a client that gave up on a slow answer would post it
/// again and a test would see a duplicate. A test that needs the timeout to fire sets a short
/// one in `Harness::config`.
fn config_text(dir: &Path, sim: &SimHandle, standin: &StandIn, port: u16, extra: &str) -> String {
    format!(
        r#"
[respond]
channel_id = "{CHANNEL}"
api_token = "{TOKEN}"
webhook_url = "{webhook}"
request_timeout = "30s"
{respond_extra}
[http]
listen = "127.0.0.1:{port}"
[modem]
port = {modem:?}
baud = 115200
command_timeout = "2s"
send_timeout = "10s"
sweep_interval = "2s"
{modem_extra}
[store]
path = {db:?}
[sms]
default_country = "MY"
{sms_extra}
[admin]
{admin_extra}
[calls]
{calls_extra}
"#,
        webhook = standin.url(),
        modem = sim.path().display().to_string(),
        db = dir.join("smsgate.db").display().to_string(),
        respond_extra = section(extra, "respond"),
        sms_extra = section(extra, "sms"),
        modem_extra = section(extra, "modem"),
        calls_extra = section(extra, "calls"),
        // The dashboard only where a test asks for it: parallel gateways would all want 8081.
        admin_extra = match section(extra, "admin") {
            admin if admin.is_empty() => "listen = \"off\"".to_owned(),
            admin => admin,
        },
    )
}

/// The lines of `extra` under `[name]` (so tests can add keys to a section without repeating
/// the table header, which TOML forbids).
fn section(extra: &str, name: &str) -> String {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in extra.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == format!("[{name}]");
        } else if inside {
            lines.push(trimmed);
        }
    }
    lines.join("\n")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `deadline`.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while !condition().await {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `message_status` values the stand-in accepted for `mid`, in order.
pub fn statuses_of(standin: &StandIn, mid: &str) -> Vec<String> {
    standin
        .accepted_events()
        .iter()
        .filter(|(_, event)| event["type"] == "message_status" && event["mId"] == mid)
        .filter_map(|(_, event)| event["status"]["value"].as_str().map(str::to_owned))
        .collect()
}

/// Logs to the test's captured output, filtered by `RUST_LOG` (shown when a test fails).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Waits until the stand-in accepted a `message_status` `value` for `mid`.
pub async fn wait_for_status(standin: &StandIn, mid: &str, value: &str, deadline: Duration) {
    wait_until(deadline, &format!("{mid} is {value}"), || async {
        statuses_of(standin, mid).iter().any(|s| s == value)
    })
    .await;
}
