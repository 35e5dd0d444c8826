//! `smsgate ussd [-c FILE] [--modem NAME] CODE`: asks the network a USSD code (a balance, a
//! bundle, the SIM's own number) and prints the answer, decoded.
//!
//! The running daemon owns the modem's port, so the request goes through it: `POST /api/ussd`
//! on its dashboard listener (`admin.listen`), with the dashboard's password by HTTP Basic when
//! one is set, or the open mode's CSRF token from `GET /api/session`. When nothing listens
//! there (no daemon runs, or its dashboard is off), the port is opened directly, the modem
//! initialised as the daemon would, and the code asked.
//!
//! It changes nothing else: no SMS is read or deleted (what the modem holds stays for the
//! daemon), and a menu the network opens is closed again.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::CmdResult;
use crate::config::{Config, PoolModem};
use crate::modem::{self, ModemOptions, ModemState, UssdAnswer};

/// How long the modem may take to initialise and register when the port is opened directly.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the daemon may take to answer (its own USSD timeout, plus a session ahead).
const DAEMON_TIMEOUT: Duration = Duration::from_secs(90);

/// Arguments of `smsgate ussd`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file (for the modem, and the daemon's dashboard listener).
    #[arg(short, long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The modem to ask through (a `[[modems]]` name; the first modem by default).
    #[arg(long)]
    pub modem: Option<String>,
    /// The USSD code, such as `*100#` (quote it: the shell treats `#` and `*` specially).
    pub code: String,
}

/// Runs `smsgate ussd`.
pub fn run(args: Args) -> CmdResult {
    let mut config = Config::read(&args.config)?;
    config.resolve_admin_password()?;
    crate::at::ussd::request(&args.code, 15)?;
    let modem = pick(&config, args.modem.as_deref())?.clone();
    super::runtime()?.block_on(async move {
        let answer = match config.admin.listen {
            Some(listen) => match through_daemon(&config, listen, &modem, &args.code).await? {
                Some(answer) => answer,
                None => directly(&modem, &args.code).await?,
            },
            None => directly(&modem, &args.code).await?,
        };
        print(&answer);
        Ok(ExitCode::SUCCESS)
    })
}

/// The modem `name` names, or the first.
fn pick<'a>(config: &'a Config, name: Option<&str>) -> anyhow::Result<&'a PoolModem> {
    let pool = config.pool();
    match name {
        None => Ok(pool.first().expect("a checked configuration has a modem")),
        Some(name) => pool
            .iter()
            .find(|modem| modem.name.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = pool.iter().map(|modem| modem.name.as_str()).collect();
                anyhow::anyhow!(
                    "no modem named {name:?} (the configuration has {})",
                    names.join(", ")
                )
            }),
    }
}

fn print(answer: &UssdAnswer) {
    match &answer.text {
        Some(text) => println!("{text}"),
        None => println!("({})", answer.status),
    }
    if answer.status == crate::at::ussd::Status::ActionRequired {
        eprintln!("(the network offered a menu; smsgate closed it: ask for the item's own code)");
    }
}

/// Where to reach a listener bound to `listen` from this machine (a wildcard address is
/// reached on loopback).
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}

/// `POST /api/ussd` on the daemon's dashboard; `None` when nothing listens there.
async fn through_daemon(
    config: &Config,
    listen: SocketAddr,
    modem: &PoolModem,
    code: &str,
) -> anyhow::Result<Option<UssdAnswer>> {
    let base = format!("http://{}", reachable(listen));
    let client = reqwest::Client::builder()
        .timeout(DAEMON_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")?;
    let body = json!({"modem": modem.name.as_str(), "code": code.trim()});
    let request = match &config.admin.password {
        Some(password) => client
            .post(format!("{base}/api/ussd"))
            .basic_auth("smsgate", Some(password)),
        None => {
            let session = match client.get(format!("{base}/api/session")).send().await {
                Ok(response) => response,
                Err(error) if error.is_connect() => return Ok(None),
                Err(error) => bail!("the daemon's dashboard on {base} does not answer: {error}"),
            };
            let session: Value = session
                .json()
                .await
                .context("the daemon's dashboard answered GET /api/session with no JSON")?;
            let csrf = session["csrf"].as_str().unwrap_or_default().to_owned();
            client
                .post(format!("{base}/api/ussd"))
                .header("x-csrf-token", csrf)
        }
    };
    let response = match request.json(&body).send().await {
        Ok(response) => response,
        Err(error) if error.is_connect() => return Ok(None),
        Err(error) => bail!("the daemon did not answer the USSD request: {error}"),
    };
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        bail!("the daemon answered {status}: {message}");
    }
    let text = answer["text"].as_str().map(str::to_owned);
    let menu =
        answer["status"].as_str() == Some(&crate::at::ussd::Status::ActionRequired.to_string());
    Ok(Some(UssdAnswer {
        status: if menu {
            crate::at::ussd::Status::ActionRequired
        } else {
            crate::at::ussd::Status::Done
        },
        text,
    }))
}

/// Opens the port itself (no daemon runs): initialises the modem, waits for the network, asks.
async fn directly(modem: &PoolModem, code: &str) -> anyhow::Result<UssdAnswer> {
    tracing::info!(
        port = %modem.endpoint,
        "no daemon answers on admin.listen; opening the modem port directly"
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    // The events are not taken: what the modem holds stays for the daemon.
    let (handle, _events) = modem::spawn(ModemOptions::from(&modem.modem), shutdown.clone());
    let mut health = handle.health_watch();
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        loop {
            {
                let now = health.borrow_and_update();
                if now.state == ModemState::Ready && now.registered {
                    return Ok(());
                }
                if now.state == ModemState::Unhealthy {
                    return Err(now.last_error.clone().unwrap_or_else(|| "unhealthy".into()));
                }
            }
            if health.changed().await.is_err() {
                return Err("the modem task stopped".to_owned());
            }
        }
    })
    .await;
    match ready {
        Ok(Ok(())) => {}
        Ok(Err(why)) => bail!("the modem on {} is not usable: {why}", modem.endpoint),
        Err(_) => {
            let now = handle.health();
            bail!(
                "the modem on {} is not registered after {}s ({}{}); try `smsgate doctor`",
                modem.endpoint,
                READY_TIMEOUT.as_secs(),
                now.state,
                now.last_error.map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
    }
    Ok(handle.ussd(code).await?)
}
