//! The TOML configuration file (DESIGN.md §4): its sections, their defaults, and the checks that
//! run before anything starts. Unknown keys are an error, so a typo never silently falls back to
//! a default.
//!
//! The modems are a pool ([`Config::pool`], checked in `pool`): `[modem]` is a pool of one named
//! `modem`, `[[modems]]` lists named ones, each port parsed as an [`Endpoint`] (`endpoint`).
//!
//! Secrets: the API token may come from the file, from `api_token_file`, from a systemd
//! credential named `api_token` (`LoadCredential=`), or from `SMSGATE_API_TOKEN`, which wins.
//! [`Config::summary`] and `Debug` never print it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod balance;
mod calls;
mod endpoint;
mod pool;
mod secret;

pub use balance::{BalanceCheck, MIN_BALANCE_INTERVAL};
pub use calls::CallsConfig;

pub use endpoint::{Endpoint, TCP_SCHEME};
pub use pool::{
    MAX_NAME_LEN, ModemName, PoolModem, RoutingConfig, SINGLE_MODEM_NAME, describe_pacing,
};
pub use secret::Secret;

/// Where `smsgate run` looks for its configuration when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/smsgate/smsgate.toml";

/// The environment variable that overrides every other source of the API token.
pub const TOKEN_ENV: &str = "SMSGATE_API_TOKEN";

/// The environment variable that overrides every other source of the dashboard's password.
pub const ADMIN_PASSWORD_ENV: &str = "SMSGATE_ADMIN_PASSWORD";

/// The shortest dashboard password accepted: the login form is reachable from the LAN.
pub const ADMIN_PASSWORD_MIN_CHARS: usize = 8;

/// The webhook URL respond.io shows for a Custom Channel (DESIGN.md: respond.io moved it from
/// `app.respond.io` to `webhook.respond.io`; the path and the payloads are the same).
pub const WEBHOOK_URL: &str = "https://webhook.respond.io/custom/channel/webhook/";

/// The host respond.io retired for Custom Channel webhooks.
pub const RETIRED_WEBHOOK_HOST: &str = "app.respond.io";

/// Errors found while loading or checking a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OS error is part of the message and deliberately not a `source` as well: callers
    /// print the whole chain, which would name it twice. `what` names the file ("the
    /// configuration", "the API token file"); the advice says what to do.
    #[error("cannot read {path} ({what}): {error}{}", read_advice(.error, .what))]
    Read {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// What to do about a file that cannot be read.
fn read_advice(error: &std::io::Error, what: &str) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound if what == "the configuration" => format!(
            "; pass the file with -c (the default is {DEFAULT_PATH}; packaging/smsgate.toml is a \
             commented example)"
        ),
        std::io::ErrorKind::NotFound if what == "the dashboard password file" => {
            "; create it or correct admin.password_file (SMSGATE_ADMIN_PASSWORD or a systemd \
             credential admin_password also work)"
                .to_owned()
        }
        std::io::ErrorKind::NotFound => {
            "; create it or correct respond.api_token_file (SMSGATE_API_TOKEN or a systemd \
             credential api_token also work)"
                .to_owned()
        }
        std::io::ErrorKind::PermissionDenied => {
            "; it must be readable by the user smsgate runs as (group smsgate)".to_owned()
        }
        _ => String::new(),
    }
}

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub respond: RespondConfig,
    pub http: HttpConfig,
    /// The first modem of the pool: the only one with `[modem]`, the first `[[modems]]` entry
    /// otherwise. For the code that still drives one modem; new code reads [`Config::pool`].
    pub modem: ModemConfig,
    pub store: StoreConfig,
    pub sms: SmsConfig,
    /// `[routing]`: how messages are spread over the pool.
    pub routing: RoutingConfig,
    /// Every modem, checked, in the order of the file (never empty).
    pool: Vec<PoolModem>,
    /// `[admin]`: the dashboard.
    pub admin: AdminConfig,
    /// `[calls]`: incoming calls.
    pub calls: CallsConfig,
}

/// The file as written: `[modem]` and `[[modems]]` both optional (at most one of them).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    respond: RespondConfig,
    #[serde(default)]
    http: HttpConfig,
    #[serde(default)]
    modem: Option<ModemConfig>,
    #[serde(default)]
    modems: Option<Vec<ModemConfig>>,
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    sms: SmsConfig,
    #[serde(default)]
    routing: RoutingConfig,
    #[serde(default)]
    admin: AdminConfig,
    #[serde(default)]
    calls: CallsConfig,
}

/// `[admin]`: the operator's dashboard, on a listener of its own (never `http.listen`, which
/// the tunnel exposes to the internet).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where the dashboard listens; `"off"` for none. A non-loopback address needs a password.
    #[serde(default = "default_admin_listen", deserialize_with = "listen_or_off")]
    pub listen: Option<SocketAddr>,
    /// A file holding the dashboard's password (first line). A systemd credential
    /// `admin_password` is read before it; `SMSGATE_ADMIN_PASSWORD` wins over both.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The password, once resolved by [`Config::resolve_admin_password`] (never from the file
    /// itself: it must not sit in a world-readable configuration).
    #[serde(skip)]
    pub password: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
            password_file: None,
            password: None,
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("password_file", &self.password_file)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn default_admin_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8081)))
}

/// An address, or `"off"`.
fn listen_or_off<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.trim().parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an address such as \"127.0.0.1:8081\" (or \"off\")"
        ))
    })
}

impl AdminConfig {
    /// Refuses a dashboard on a non-loopback address without a password: anyone on the
    /// network could read the messages and send SMS.
    pub fn check(&self) -> Result<(), ConfigError> {
        let Some(listen) = self.listen else {
            return Ok(());
        };
        if let Some(password) = &self.password {
            if password.chars().count() < ADMIN_PASSWORD_MIN_CHARS {
                return Err(ConfigError::Invalid(format!(
                    "the dashboard password is shorter than {ADMIN_PASSWORD_MIN_CHARS} \
                     characters; choose a longer one (admin.password_file or \
                     {ADMIN_PASSWORD_ENV})"
                )));
            }
        } else if !listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "admin.listen {listen} is reachable from other machines and no dashboard \
                 password is set, so anyone on the network could read the messages and send \
                 SMS: set admin.password_file (or {ADMIN_PASSWORD_ENV}), or listen on \
                 127.0.0.1:{} and reach the dashboard through an SSH tunnel",
                listen.port()
            )));
        }
        Ok(())
    }
}

/// `[respond]`: the respond.io Custom Channel.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondConfig {
    /// The Channel ID respond.io shows when the channel is created.
    pub channel_id: String,
    /// The API token (prefer `api_token_file`, a systemd credential or `SMSGATE_API_TOKEN`).
    #[serde(default)]
    pub api_token: Option<String>,
    /// A file holding the API token (first line, surrounding whitespace ignored).
    #[serde(default)]
    pub api_token_file: Option<PathBuf>,
    /// Where events are posted.
    #[serde(default = "default_webhook_url")]
    pub webhook_url: String,
    /// Outgoing webhook requests per second, at most (respond.io publishes 20).
    #[serde(default = "default_rate_limit")]
    pub rate_limit: u32,
    /// Most webhook requests on their way at once (never two for one contact).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Timeout of one webhook request.
    #[serde(default = "default_webhook_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long an event is retried before it is parked as dead.
    #[serde(default = "default_max_event_age", with = "humantime_serde")]
    pub max_event_age: Duration,
    /// While respond.io refuses the API token (401/403) or the webhook URL (404/410), delivery
    /// pauses and one request tries again this often.
    #[serde(default = "default_pause_retry_interval", with = "humantime_serde")]
    pub pause_retry_interval: Duration,
    /// What to do with SMS from alphanumeric senders (operator notices, banks):
    /// `forward` them with the name as contact ID, or `keep` them locally only.
    #[serde(default)]
    pub alphanumeric_senders: AlphanumericPolicy,
}

/// The alphanumeric-sender rule (DESIGN.md §1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlphanumericPolicy {
    /// Forward with the sender name as the contact ID.
    Forward,
    /// Store locally (visible in `smsgate status`) and do not forward.
    #[default]
    Keep,
}

/// `[http]`: the API respond.io calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP server listens on; the tunnel points here.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// Longest time a request may take before it is answered 408.
    #[serde(default = "default_http_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Outbox depth past which `POST /message` answers 429.
    #[serde(default = "default_max_queue_depth")]
    pub max_queue_depth: u64,
    /// Age of the oldest queued message past which `POST /message` answers 429.
    #[serde(default = "default_max_queue_age", with = "humantime_serde")]
    pub max_queue_age: Duration,
    /// Longest a client may take to send a request's headers, from their first byte; then the
    /// connection is closed.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A connection with no request in flight and no bytes moving for this long is closed.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most connections open at once; further ones wait in the listen backlog until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

/// `[modem]`, or one `[[modems]]` entry: a modem, how to drive it, and its pacing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModemConfig {
    /// The modem's name (`[[modems]]` only; `[modem]` is named `modem`).
    #[serde(default)]
    pub name: Option<String>,
    /// The serial device (prefer a stable `/dev/serial/by-id/…` link), or `tcp://HOST:PORT`
    /// for a modem behind ser2net; [`PoolModem::endpoint`] is it parsed.
    #[serde(default = "default_port")]
    pub port: PathBuf,
    /// Line speed in bits per second.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// SIM PIN, entered when the SIM asks for one (never a PUK); `<redacted>` in any output.
    #[serde(default)]
    pub pin: Option<Secret>,
    /// Ask the network for delivery reports.
    #[serde(default = "default_true")]
    pub delivery_reports: bool,
    /// How often the SIM storage is swept for messages whose notification was lost.
    #[serde(default = "default_sweep_interval", with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Timeout of an ordinary AT command.
    #[serde(default = "default_command_timeout", with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Timeout of `AT+CMGS` (sending one part), which waits on the network.
    #[serde(default = "default_send_timeout", with = "humantime_serde")]
    pub send_timeout: Duration,
    /// Allow `AT+CFUN=1,1` (a modem reset) as the last step of recovery.
    #[serde(default)]
    pub reset_on_failure: bool,
    /// Pacing: at least this between the starts of two messages on this SIM.
    #[serde(default, with = "humantime_serde")]
    pub min_interval: Option<Duration>,
    /// Pacing: plus a random `0..jitter` on top of `min_interval`.
    #[serde(default, with = "humantime_serde")]
    pub jitter: Option<Duration>,
    /// Pacing: most parts in any sliding 60 s.
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// Pacing: most parts in any sliding hour.
    #[serde(default)]
    pub per_hour: Option<u32>,
    /// Pacing: most parts in any sliding 24 h.
    #[serde(default)]
    pub per_day: Option<u32>,
    /// Pacing: most distinct recipients in any sliding 24 h.
    #[serde(default)]
    pub recipients_per_day: Option<u32>,
    /// The operator's USSD code that answers with the SIM's balance (`*100#`); none = no
    /// balance checks.
    #[serde(default)]
    pub balance_ussd: Option<String>,
    /// How often the balance is asked for (and once at start).
    #[serde(default = "default_balance_interval", with = "humantime_serde")]
    pub balance_interval: Duration,
    /// A regular expression whose first group is the amount in the operator's answer; without
    /// it the first number in the answer is taken.
    #[serde(default)]
    pub balance_pattern: Option<String>,
    /// `/health` turns degraded when the amount falls below this.
    #[serde(default)]
    pub low_balance: Option<f64>,
}

/// `[store]`: the SQLite database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Database file (WAL mode: `-wal` and `-shm` files sit beside it).
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// Finished rows older than this many days are pruned.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Free space on the database's volume below which `check-config` and start-up warn and
    /// `POST /message` answers 507: bytes, or a size such as `"16MiB"`.
    #[serde(default = "default_min_free_space", deserialize_with = "byte_size")]
    pub min_free_space: u64,
    /// How long database writes may keep failing before the systemd watchdog is no longer
    /// petted (so systemd restarts smsgate); `/health` is degraded from the first failure.
    #[serde(default = "default_write_failure_grace", with = "humantime_serde")]
    pub write_failure_grace: Duration,
}

/// A TOML error on one line: "line 3, column 5: expected `=`" (the toml crate's own text
/// spans several lines with a drawing of the spot).
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', "; ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// A size in bytes: an integer, or a string with a unit (`B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`;
/// the decimal and binary spellings both mean powers of 1024, as `df -h` shows them).
fn byte_size<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(bytes) => Ok(bytes),
        Size::Text(text) => parse_size(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a size: write bytes (1048576) or a size such as \"16MiB\""
            ))
        }),
    }
}

/// `"16MiB"` → 16777216.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    let bytes = number * factor as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `[sms]`: how messages are turned into SMS and back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// ISO 3166 alpha-2 country used to turn national sender numbers into E.164.
    #[serde(default = "default_country")]
    pub default_country: String,
    /// Most parts one message may take; longer messages are refused with a 4xx.
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
    /// Replace curly quotes, dashes, odd spaces … by GSM look-alikes to stay in 7-bit.
    #[serde(default = "default_true")]
    pub smart_encoding: bool,
    /// How long the parts of a multipart SMS are awaited before what arrived is forwarded.
    #[serde(default = "default_reassembly_timeout", with = "humantime_serde")]
    pub reassembly_timeout: Duration,
    /// How long a bare-number answer maps to the quick-reply menu last sent to that contact.
    #[serde(default = "default_quick_reply_window", with = "humantime_serde")]
    pub quick_reply_window: Duration,
    /// Attempts at sending one message before it fails.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// An outbound message not sent within this time fails as expired.
    #[serde(default = "default_message_expiry", with = "humantime_serde")]
    pub expiry: Duration,
    /// What to do with a part whose send outcome is unknown (a crash or timeout during
    /// `AT+CMGS`) once `unknown_window` has passed without a status report.
    #[serde(default)]
    pub unknown_policy: UnknownPolicy,
    /// How long an unknown send waits for a status report before `unknown_policy` applies.
    #[serde(default = "default_unknown_window", with = "humantime_serde")]
    pub unknown_window: Duration,
    /// Window in which a status report is paired with a part by (TP-MR, recipient).
    #[serde(default = "default_report_window", with = "humantime_serde")]
    pub report_window: Duration,
    /// An SMS that cannot be decoded is kept raw; with this on, its sender (when readable)
    /// also appears in respond.io with the placeholder "(an SMS that could not be read)".
    #[serde(default = "default_true")]
    pub forward_unreadable: bool,
}

/// The policy for a send whose outcome is unknown (DESIGN.md §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPolicy {
    /// Send again (the contact may get it twice; never lost).
    #[default]
    Resend,
    /// Report it failed (never twice; may be lost).
    Fail,
}

fn default_true() -> bool {
    true
}
fn default_webhook_url() -> String {
    WEBHOOK_URL.to_owned()
}
fn default_rate_limit() -> u32 {
    20
}
fn default_max_in_flight() -> usize {
    8
}
fn default_pause_retry_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_webhook_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_max_event_age() -> Duration {
    Duration::from_secs(3 * 24 * 3600)
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_body_limit() -> usize {
    64 * 1024
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_queue_depth() -> u64 {
    10_000
}
fn default_max_queue_age() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_connections() -> usize {
    256
}
fn default_min_free_space() -> u64 {
    16 << 20
}
fn default_write_failure_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_port() -> PathBuf {
    PathBuf::from("/dev/ttyUSB2")
}
fn default_baud() -> u32 {
    115_200
}
fn default_sweep_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(10)
}
/// What modem manuals give as `AT+CMGS`'s longest answer (SIMCom's SIM800 series: 60 s). A
/// part whose answer takes longer becomes *unknown*; a hang costs this much sending time.
fn default_balance_interval() -> Duration {
    Duration::from_secs(12 * 3600)
}
fn default_send_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_store_path() -> PathBuf {
    PathBuf::from("/var/lib/smsgate/smsgate.db")
}
fn default_retention_days() -> u32 {
    30
}
fn default_country() -> String {
    "US".to_owned()
}
fn default_max_parts() -> usize {
    10
}
fn default_reassembly_timeout() -> Duration {
    Duration::from_secs(3600)
}
fn default_quick_reply_window() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_max_attempts() -> u32 {
    10
}
fn default_message_expiry() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_unknown_window() -> Duration {
    Duration::from_secs(600)
}
fn default_report_window() -> Duration {
    Duration::from_secs(3 * 24 * 3600)
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            body_limit: default_body_limit(),
            request_timeout: default_http_timeout(),
            max_queue_depth: default_max_queue_depth(),
            max_queue_age: default_max_queue_age(),
            header_timeout: default_header_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

impl Default for ModemConfig {
    fn default() -> Self {
        Self {
            name: None,
            port: default_port(),
            baud: default_baud(),
            pin: None,
            delivery_reports: true,
            sweep_interval: default_sweep_interval(),
            command_timeout: default_command_timeout(),
            send_timeout: default_send_timeout(),
            reset_on_failure: false,
            min_interval: None,
            jitter: None,
            per_minute: None,
            per_hour: None,
            per_day: None,
            recipients_per_day: None,
            balance_ussd: None,
            balance_interval: default_balance_interval(),
            balance_pattern: None,
            low_balance: None,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: default_store_path(),
            retention_days: default_retention_days(),
            min_free_space: default_min_free_space(),
            write_failure_grace: default_write_failure_grace(),
        }
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            default_country: default_country(),
            max_parts: default_max_parts(),
            smart_encoding: true,
            reassembly_timeout: default_reassembly_timeout(),
            quick_reply_window: default_quick_reply_window(),
            max_attempts: default_max_attempts(),
            expiry: default_message_expiry(),
            unknown_policy: UnknownPolicy::default(),
            unknown_window: default_unknown_window(),
            report_window: default_report_window(),
            forward_unreadable: true,
        }
    }
}

impl fmt::Debug for RespondConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RespondConfig")
            .field("channel_id", &self.channel_id)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("api_token_file", &self.api_token_file)
            .field("webhook_url", &self.webhook_url)
            .field("rate_limit", &self.rate_limit)
            .field("max_in_flight", &self.max_in_flight)
            .field("request_timeout", &self.request_timeout)
            .field("max_event_age", &self.max_event_age)
            .field("pause_retry_interval", &self.pause_retry_interval)
            .field("alphanumeric_senders", &self.alphanumeric_senders)
            .finish()
    }
}

/// `true` when `url` is on the host respond.io retired for webhooks (`app.respond.io`).
pub fn is_retired_webhook_host(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| host.trim_end_matches('.') == RETIRED_WEBHOOK_HOST)
}

impl RespondConfig {
    /// A warning for the operator when `webhook_url` is on the retired `app.respond.io` host:
    /// respond.io stops taking webhooks there (its help pages: channels not updated by
    /// 5 August 2026 stop receiving messages).
    pub fn retired_webhook_warning(&self) -> Option<String> {
        is_retired_webhook_host(&self.webhook_url).then(|| {
            format!(
                "respond.webhook_url {:?} is on {RETIRED_WEBHOOK_HOST}, which respond.io has \
                 retired for Custom Channel webhooks: channels not moved by 5 August 2026 stop \
                 receiving messages. Set respond.webhook_url to the webhook URL respond.io shows \
                 under the channel's settings (Settings → Channels → the Custom Channel), \
                 normally {WEBHOOK_URL}",
                self.webhook_url
            )
        })
    }
}

impl Config {
    /// Reads, parses and checks a configuration file, resolving the API token.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config = Self::read(path)?;
        config.resolve_token()?;
        config.resolve_admin_password()?;
        config.admin.check()?;
        Ok(config)
    }

    /// Resolves the dashboard's password: `SMSGATE_ADMIN_PASSWORD`, then the systemd credential
    /// `admin_password`, then `admin.password_file`. None of them: no password.
    pub fn resolve_admin_password(&mut self) -> Result<(), ConfigError> {
        let from_env = std::env::var(ADMIN_PASSWORD_ENV)
            .ok()
            .filter(|p| !p.trim().is_empty());
        let from_credential = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|dir| PathBuf::from(dir).join("admin_password"))
            .filter(|path| path.exists());
        let password = if let Some(password) = from_env {
            password
        } else if let Some(path) = from_credential.or_else(|| self.admin.password_file.clone()) {
            let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
                what: "the dashboard password file",
                path: path.clone(),
                error,
            })?;
            text.lines().next().unwrap_or("").to_owned()
        } else {
            return Ok(());
        };
        let password = password.trim().to_owned();
        if password.is_empty() {
            return Err(ConfigError::Invalid(
                "the dashboard password is empty (admin.password_file)".into(),
            ));
        }
        self.admin.password = Some(password);
        Ok(())
    }

    /// Reads, parses and checks a configuration file without resolving the API token (for
    /// commands that never talk to respond.io, such as `doctor`).
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            what: "the configuration",
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text).map_err(|error| match error {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks configuration text. The token is not resolved from files or the
    /// environment here (see [`Config::load`]).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: PathBuf::from("<config>"),
            message: toml_error(text, &error),
        })?;
        let pool = pool::build(raw.modem, raw.modems)?;
        let config = Config {
            respond: raw.respond,
            http: raw.http,
            modem: pool
                .first()
                .expect("pool::build never returns an empty pool")
                .modem
                .clone(),
            store: raw.store,
            sms: raw.sms,
            routing: raw.routing,
            admin: raw.admin,
            calls: raw.calls,
            pool,
        };
        config.validate()?;
        Ok(config)
    }

    /// Every modem of the pool, in the order of the file: one named `modem` for `[modem]` (or
    /// when neither `[modem]` nor `[[modems]]` is given), the `[[modems]]` entries otherwise.
    /// Never empty.
    pub fn pool(&self) -> &[PoolModem] {
        &self.pool
    }

    /// The pool, one line per modem (endpoint, line speed, pacing), then routing: what
    /// `check-config` prints.
    pub fn pool_summary(&self) -> String {
        pool::describe(&self.pool, &self.routing)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        self.calls.check().map_err(ConfigError::Invalid)?;
        if self.respond.channel_id.trim().is_empty() {
            return invalid(
                "respond.channel_id is empty: copy the Channel ID respond.io shows".into(),
            );
        }
        if !(self.respond.webhook_url.starts_with("https://")
            || self.respond.webhook_url.starts_with("http://"))
        {
            return invalid(format!(
                "respond.webhook_url {:?} is not an http(s) URL",
                self.respond.webhook_url
            ));
        }
        if self.respond.rate_limit == 0 {
            return invalid("respond.rate_limit must be at least 1 request per second".into());
        }
        if !(1..=64).contains(&self.respond.max_in_flight) {
            return invalid("respond.max_in_flight must be between 1 and 64 requests".into());
        }
        if self.respond.pause_retry_interval < Duration::from_secs(1) {
            return invalid("respond.pause_retry_interval must be at least 1s".into());
        }
        let country = &self.sms.default_country;
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            return invalid(format!(
                "sms.default_country {country:?} is not an ISO 3166 alpha-2 code such as \"MY\""
            ));
        }
        if crate::phone::calling_code(country).is_none() {
            return invalid(format!(
                "sms.default_country {country:?} is not a known country"
            ));
        }
        if self.sms.max_parts == 0 || self.sms.max_parts > 255 {
            return invalid("sms.max_parts must be between 1 and 255".into());
        }
        if self.sms.max_attempts == 0 {
            return invalid("sms.max_attempts must be at least 1".into());
        }
        if self.http.body_limit < 1024 {
            return invalid("http.body_limit must be at least 1024 bytes".into());
        }
        if self.http.max_connections == 0 {
            return invalid("http.max_connections must be at least 1".into());
        }
        if self.http.header_timeout.is_zero() || self.http.idle_timeout.is_zero() {
            return invalid("http.header_timeout and http.idle_timeout must be above 0".into());
        }
        Ok(())
    }

    /// Resolves the API token: `SMSGATE_API_TOKEN`, then the systemd credential `api_token`,
    /// then `api_token_file`, then `api_token`. A missing token is an error.
    pub fn resolve_token(&mut self) -> Result<(), ConfigError> {
        let from_env = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty());
        let from_credential = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|dir| PathBuf::from(dir).join("api_token"))
            .filter(|path| path.exists());
        let token = if let Some(token) = from_env {
            token
        } else if let Some(path) = from_credential.or_else(|| self.respond.api_token_file.clone()) {
            std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
                what: "the API token file",
                path: path.clone(),
                error,
            })?
        } else if let Some(token) = &self.respond.api_token {
            token.clone()
        } else {
            return Err(ConfigError::Invalid(format!(
                "no API token: set respond.api_token_file, respond.api_token or {TOKEN_ENV}"
            )));
        };
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(ConfigError::Invalid("the API token is empty".into()));
        }
        self.respond.api_token = Some(token);
        Ok(())
    }

    /// The resolved API token (empty before [`Config::resolve_token`]).
    pub fn api_token(&self) -> &str {
        self.respond.api_token.as_deref().unwrap_or("")
    }

    /// A human summary without secrets, for `check-config` and the start-up log.
    pub fn summary(&self) -> String {
        let modems = match self.pool.as_slice() {
            [one] if one.name.as_str() == SINGLE_MODEM_NAME => match &one.endpoint {
                Endpoint::Serial(_) => format!("modem {} at {} baud", one.endpoint, one.modem.baud),
                Endpoint::Tcp { .. } => format!("modem {}", one.endpoint),
            },
            pool => format!(
                "{} modem{} ({})",
                pool.len(),
                if pool.len() == 1 { "" } else { "s" },
                pool.iter()
                    .map(|modem| modem.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "channel {} → {} (≤ {} req/s, {} at once); listening on {}; {modems}; \
             database {}; country {}, at most {} parts per message; dashboard {}",
            self.respond.channel_id,
            self.respond.webhook_url,
            self.respond.rate_limit,
            self.respond.max_in_flight,
            self.http.listen,
            self.store.path.display(),
            self.sms.default_country,
            self.sms.max_parts,
            match (self.admin.listen, &self.admin.password) {
                (None, _) => "off".to_owned(),
                (Some(listen), Some(_)) => format!("on http://{listen} (password)"),
                (Some(listen), None) => format!("on http://{listen} (no password)"),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [respond]
        channel_id = "gfd8g7fd89dgfd"
        api_token = "secret-token"
    "#;

    #[test]
    fn debug_output_of_a_configuration_carries_no_secret() {
        let text = format!("{MINIMAL}\n[modem]\npin = \"8642\"\n");
        let config = Config::parse(&text).expect("parses");
        let shown = format!(
            "{config:?} {:?}",
            crate::modem::ModemOptions::from(&config.modem)
        );
        assert!(!shown.contains("8642"), "the PIN leaks: {shown}");
        assert!(!shown.contains("secret-token"), "the token leaks: {shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn minimal_file_takes_defaults() {
        let config = Config::parse(MINIMAL).expect("minimal config parses");
        assert_eq!(config.http.listen, default_listen());
        assert_eq!(config.sms.max_parts, 10);
        assert_eq!(config.respond.rate_limit, 20);
        assert_eq!(config.respond.max_in_flight, 8);
        assert_eq!(config.respond.max_event_age, Duration::from_secs(259_200));
        // What modem manuals give for AT+CMGS: a hang costs one of these, not three minutes.
        assert_eq!(config.modem.send_timeout, Duration::from_secs(60));
        assert_eq!(config.respond.pause_retry_interval, Duration::from_secs(60));
        assert_eq!(
            config.respond.webhook_url,
            "https://webhook.respond.io/custom/channel/webhook/"
        );
        assert_eq!(config.respond.retired_webhook_warning(), None);
        assert_eq!(
            config.respond.alphanumeric_senders,
            AlphanumericPolicy::Keep
        );
    }

    #[test]
    fn durations_are_human() {
        let text = format!("{MINIMAL}\n[sms]\nreassembly_timeout = \"90s\"\nexpiry = \"2d\"\n");
        let config = Config::parse(&text).expect("parses");
        assert_eq!(config.sms.reassembly_timeout, Duration::from_secs(90));
        assert_eq!(config.sms.expiry, Duration::from_secs(172_800));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = format!("{MINIMAL}\n[sms]\nmax_part = 3\n");
        let error = Config::parse(&text)
            .expect_err("typo must be refused")
            .to_string();
        assert!(error.contains("max_part"), "{error}");
    }

    #[test]
    fn bad_values_name_the_key() {
        for (extra, key) in [
            (
                "[sms]\ndefault_country = \"Malaysia\"",
                "sms.default_country",
            ),
            ("[sms]\nmax_parts = 0", "sms.max_parts"),
            ("[modem]\npin = \"12ab\"", "modem.pin"),
            (
                "[respond]\nchannel_id = \"x\"\nrate_limit = 0",
                "rate_limit",
            ),
            (
                "[respond]\nchannel_id = \"x\"\nmax_in_flight = 0",
                "respond.max_in_flight",
            ),
            (
                "[respond]\nchannel_id = \"x\"\npause_retry_interval = \"10ms\"",
                "respond.pause_retry_interval",
            ),
        ] {
            let text = if extra.starts_with("[respond]") {
                format!("{extra}\napi_token = \"t\"\n")
            } else {
                format!("{MINIMAL}\n{extra}\n")
            };
            let error = Config::parse(&text).expect_err(extra).to_string();
            assert!(error.contains(key), "{extra}: {error}");
        }
    }

    #[test]
    fn sizes_are_bytes_or_words() {
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("512 KB"), Some(512 << 10));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5 parsecs"), None);
        let config = Config::parse(&format!("{MINIMAL}\n[store]\nmin_free_space = \"2MiB\"\n"))
            .expect("parses");
        assert_eq!(config.store.min_free_space, 2 << 20);
        let config =
            Config::parse(&format!("{MINIMAL}\n[store]\nmin_free_space = 4096\n")).expect("parses");
        assert_eq!(config.store.min_free_space, 4096);
        assert_eq!(
            Config::parse(MINIMAL).expect("parses").store.min_free_space,
            16 << 20
        );
        let error = Config::parse(&format!("{MINIMAL}\n[store]\nmin_free_space = \"big\"\n"))
            .expect_err("refused")
            .to_string();
        assert!(error.contains("is not a size"), "{error}");
    }

    #[test]
    fn the_retired_webhook_host_is_named_with_the_fix() {
        for url in [
            "https://app.respond.io/custom/channel/webhook/",
            "https://APP.Respond.IO/custom/channel/webhook/",
            "http://app.respond.io:443/custom/channel/webhook/",
            "https://app.respond.io./custom/channel/webhook/",
        ] {
            let text = format!("{MINIMAL}webhook_url = {url:?}\n");
            let config = Config::parse(&text).expect("a retired URL is still a valid file");
            let warning = config
                .respond
                .retired_webhook_warning()
                .unwrap_or_else(|| panic!("{url}: no warning"));
            assert!(warning.contains("app.respond.io"), "{warning}");
            assert!(
                warning.contains("https://webhook.respond.io/custom/channel/webhook/"),
                "{warning}"
            );
        }
        for url in [
            "https://webhook.respond.io/custom/channel/webhook/",
            "https://webhook.yeshello.io/custom/channel/webhook/",
            "https://app.respond.io.example.com/custom/channel/webhook/",
            "http://127.0.0.1:9000/custom/channel/webhook/",
        ] {
            let text = format!("{MINIMAL}webhook_url = {url:?}\n");
            let config = Config::parse(&text).expect("parses");
            assert_eq!(config.respond.retired_webhook_warning(), None, "{url}");
        }
    }

    #[test]
    fn a_missing_file_names_the_os_error_once() {
        let error = Config::load(Path::new("/nonexistent/smsgate.toml")).expect_err("missing");
        let chain = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(
            chain.matches("No such file or directory").count(),
            1,
            "{chain}"
        );
        assert!(
            chain.starts_with("cannot read /nonexistent/smsgate.toml"),
            "{chain}"
        );
    }

    #[test]
    fn the_dashboard_defaults_to_loopback_and_can_be_switched_off() {
        let config = Config::parse(MINIMAL).expect("parses");
        assert_eq!(
            config.admin.listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 8081)))
        );
        config.admin.check().expect("loopback needs no password");
        let off = Config::parse(&format!("{MINIMAL}\n[admin]\nlisten = \"off\"\n")).expect("off");
        assert_eq!(off.admin.listen, None);
        let error = Config::parse(&format!("{MINIMAL}\n[admin]\nlisten = \"here\"\n"))
            .expect_err("not an address")
            .to_string();
        assert!(error.contains("is not an address"), "{error}");
    }

    #[test]
    fn a_dashboard_on_the_lan_needs_a_password() {
        let text = format!("{MINIMAL}\n[admin]\nlisten = \"0.0.0.0:8081\"\n");
        let mut config = Config::parse(&text).expect("parses");
        let error = config.admin.check().expect_err("refused").to_string();
        assert!(error.contains("admin.password_file"), "{error}");
        assert!(error.contains("SSH tunnel"), "{error}");
        config.admin.password = Some("short".into());
        let error = config.admin.check().expect_err("too short").to_string();
        assert!(error.contains("shorter than 8"), "{error}");
        config.admin.password = Some("a long enough password".into());
        config.admin.check().expect("with a password");
        let shown = format!("{config:?}");
        assert!(!shown.contains("a long enough password"), "{shown}");
    }

    #[test]
    fn the_dashboard_password_file_is_read_by_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let password = dir.path().join("admin_password");
        std::fs::write(&password, "correct horse battery\n").expect("write");
        let path = dir.path().join("smsgate.toml");
        std::fs::write(
            &path,
            format!(
                "{MINIMAL}\n[admin]\nlisten = \"0.0.0.0:0\"\npassword_file = {:?}\n",
                password.display().to_string()
            ),
        )
        .expect("write");
        if std::env::var_os(ADMIN_PASSWORD_ENV).is_none()
            && std::env::var_os("CREDENTIALS_DIRECTORY").is_none()
        {
            let config = Config::load(&path).expect("loads");
            assert_eq!(
                config.admin.password.as_deref(),
                Some("correct horse battery")
            );
            std::fs::remove_file(&password).expect("remove");
            let error = Config::load(&path).expect_err("missing file").to_string();
            assert!(error.contains("admin.password_file"), "{error}");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let config = Config::parse(MINIMAL).expect("parses");
        let shown = format!("{config:?} {}", config.summary());
        assert!(!shown.contains("secret-token"), "{shown}");
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_path = dir.path().join("token");
        std::fs::write(&token_path, "from-file\n").expect("write token");
        let text = format!(
            "[respond]\nchannel_id = \"c\"\napi_token_file = {:?}\n",
            token_path.display().to_string()
        );
        let mut config = Config::parse(&text).expect("parses");
        if std::env::var_os(TOKEN_ENV).is_none()
            && std::env::var_os("CREDENTIALS_DIRECTORY").is_none()
        {
            config.resolve_token().expect("token resolves");
            assert_eq!(config.api_token(), "from-file");
        }
    }
}
