//! `smsgate demo`: the whole gateway on one machine with no hardware.
//!
//! The gateway runs exactly as `smsgate run` runs it, but its modem is the built-in simulator on a
//! pseudo-terminal and its webhook URL points at a local respond.io stand-in that prints every
//! event. Lines typed on stdin arrive as SMS from a test contact; the `curl` printed at start-up
//! sends an SMS the way respond.io would. `--self-test` sends one SMS each way and exits 0 when
//! both arrive (CI runs it on the Pi build under qemu).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use super::CmdResult;
use crate::app::standin::StandIn;
use crate::app::{Gateway, signals};
use crate::config::Config;
use crate::sim::{SimHandle, SimOptions};

const CHANNEL_ID: &str = "demo-channel";
const TOKEN: &str = "demo-token";
/// The dashboard's password in the demo (printed in the banner).
const ADMIN_PASSWORD: &str = "demo-dashboard";

/// Arguments of `smsgate demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address of the gateway's HTTP API (respond.io's "API Base URL" points here).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the operator's dashboard (password `demo-dashboard`).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// The test contact whose SMS the lines typed on stdin become.
    #[arg(long, default_value = "+60123456789")]
    pub from: String,
    /// Simulated network delay for each sent part.
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
    pub network_delay: Duration,
    /// Delay before the simulated network sends a delivery report.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub report_delay: Duration,
    /// Send one SMS each way through the gateway, check both arrive, and exit (0 on success).
    #[arg(long)]
    pub self_test: bool,
    /// How long the self-test waits for each direction.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub self_test_timeout: Duration,
    /// Simulated SIMs in the pool (named sim-a, sim-b, …); 1 is a plain `[modem]`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=26))]
    pub modems: u8,
}

/// Runs `smsgate demo`.
pub fn run(args: Args) -> CmdResult {
    super::runtime()?.block_on(demo(args))
}

async fn demo(args: Args) -> CmdResult {
    let workdir = tempfile::Builder::new()
        .prefix("smsgate-demo-")
        .tempdir()
        .context("cannot create a working directory for the demo")?;
    let mut sims = Vec::new();
    for index in 0..args.modems {
        let name = sim_name(args.modems, index);
        let sim = crate::sim::spawn(SimOptions {
            link: Some(workdir.path().join(&name)),
            baud: Some(115_200),
            network_delay: args.network_delay,
            report_delay: args.report_delay,
            // The dashboard's sparkline then shows a signal that moves, as a real one does.
            signal_drift: true,
            ..SimOptions::default()
        })
        .await
        .with_context(|| format!("cannot start the simulated modem {name}"))?;
        sims.push((name, sim));
    }
    let sim = sims[0].1.clone();
    let standin = StandIn::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        TOKEN,
        !args.self_test,
    )
    .await
    .context("cannot start the respond.io stand-in")?;
    let listen = free_or_any(args.listen).await?;
    let admin = free_or_any(args.admin_listen).await?;
    let config = demo_config(workdir.path(), &sims, &standin, listen, admin)?;

    let shutdown = CancellationToken::new();
    signals::cancel_on_signals(shutdown.clone()).context("cannot install signal handlers")?;
    let gateway = Gateway::start(config, shutdown.clone()).await?;
    let api = gateway.http_address();

    let code = if args.self_test {
        let outcome = self_test(&args, api, &sims, &standin).await;
        shutdown.cancel();
        match outcome {
            Ok(()) => {
                println!("self-test passed: one SMS each way through the gateway");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("self-test FAILED: {error:#}");
                ExitCode::FAILURE
            }
        }
    } else {
        print_banner(&args, api, admin, &sims, &standin);
        for (name, sim) in &sims {
            let label = if sims.len() > 1 {
                format!("modem {name}")
            } else {
                "modem".to_owned()
            };
            tokio::spawn(show_sent_sms(sim.clone(), label, shutdown.clone()));
        }
        tokio::spawn(stdin_to_sms(
            sim.clone(),
            args.from.clone(),
            shutdown.clone(),
        ));
        ExitCode::SUCCESS
    };
    gateway.wait().await?;
    for (_, sim) in &sims {
        sim.shutdown().await;
    }
    standin.stop();
    Ok(code)
}

/// The configuration `smsgate run` would read, written as TOML so the demo goes through the
/// same parsing and checks.
/// The name of simulated SIM `index` of `count`: `modem` alone, `sim-a`, `sim-b`, … in a pool.
fn sim_name(count: u8, index: u8) -> String {
    if count == 1 {
        crate::config::SINGLE_MODEM_NAME.to_owned()
    } else {
        format!("sim-{}", char::from(b'a' + index))
    }
}

fn demo_config(
    dir: &Path,
    sims: &[(String, SimHandle)],
    standin: &StandIn,
    listen: SocketAddr,
    admin: SocketAddr,
) -> anyhow::Result<Config> {
    // Each simulated SIM answers *100# with its balance, which the dashboard shows.
    const BALANCE: &str = "balance_ussd = \"*100#\"\nbalance_pattern = 'balance is ([0-9.,]+)'\n\
                           low_balance = 5.0\n";
    let modems = if let [(_, sim)] = sims {
        format!(
            "[modem]\nport = {:?}\nbaud = 115200\nsweep_interval = \"30s\"\n{BALANCE}",
            sim.path().display().to_string()
        )
    } else {
        sims.iter()
            .map(|(name, sim)| {
                format!(
                    "[[modems]]\nname = {name:?}\nport = {:?}\nbaud = 115200\n\
                     sweep_interval = \"30s\"\n{BALANCE}",
                    sim.path().display().to_string()
                )
            })
            .collect()
    };
    let text = format!(
        r#"
        [respond]
        channel_id = "{CHANNEL_ID}"
        api_token = "{TOKEN}"
        webhook_url = "{webhook}"
        alphanumeric_senders = "forward"
        [http]
        listen = "{listen}"
        [store]
        path = {db:?}
        [sms]
        default_country = "MY"
        [admin]
        listen = "{admin}"
{modems}
        "#,
        webhook = standin.url(),
        db = dir.join("smsgate.db").display().to_string(),
    );
    let mut config = Config::parse(&text).context("the demo configuration is invalid")?;
    config.respond.api_token = Some(TOKEN.to_owned());
    config.admin.password = Some(ADMIN_PASSWORD.to_owned());
    Ok(config)
}

/// The requested address if it is free, otherwise any free port on the same interface (a
/// second demo, or something else on 8080, should not stop anyone from trying smsgate).
async fn free_or_any(wanted: SocketAddr) -> anyhow::Result<SocketAddr> {
    match tokio::net::TcpListener::bind(wanted).await {
        Ok(listener) => Ok(listener.local_addr()?),
        Err(_) => {
            let listener = tokio::net::TcpListener::bind(SocketAddr::new(wanted.ip(), 0))
                .await
                .context("cannot find a free port for the demo")?;
            let address = listener.local_addr()?;
            eprintln!("{wanted} is in use; the demo listens on {address} instead");
            Ok(address)
        }
    }
}

fn print_banner(
    args: &Args,
    api: SocketAddr,
    admin: SocketAddr,
    sims: &[(String, SimHandle)],
    standin: &StandIn,
) {
    let body = json!({
        "channelId": CHANNEL_ID,
        "contactId": args.from,
        "message": {"type": "text", "text": "Hello from respond.io"},
    });
    println!(
        "\nsmsgate demo is running.\n\
         \x20 gateway API (respond.io's API Base URL): http://{api}\n\
         \x20 simulated modem{s}: {modem}\n\
         \x20 respond.io stand-in (prints every event): {webhook}\n\
         \x20 dashboard: http://{admin} (password {ADMIN_PASSWORD})\n\n\
         Send an SMS the way respond.io does:\n\n\
         curl -X POST http://{api}/message -H 'authorization: Bearer {TOKEN}' \
         -H 'content-type: application/json' -d '{body}'\n\n\
         Type a line and press Enter: it arrives as an SMS from {from}. Ctrl-C stops.\n",
        s = if sims.len() > 1 { "s" } else { "" },
        modem = sims
            .iter()
            .map(|(name, sim)| format!("{name} {}", sim.path().display()))
            .collect::<Vec<_>>()
            .join(", "),
        webhook = standin.url(),
        from = args.from,
    );
}

/// Prints each SMS the gateway hands to the simulated modem, as the contact's phone would show it.
async fn show_sent_sms(sim: SimHandle, label: String, shutdown: CancellationToken) {
    let mut shown = 0;
    while !shutdown.is_cancelled() {
        let submitted = sim.submitted().await;
        for pdu in submitted.iter().skip(shown) {
            let user_data = &pdu.submit.user_data;
            let part = user_data
                .concat
                .as_ref()
                .map(|c| format!(" (part {}/{})", c.sequence, c.total))
                .unwrap_or_default();
            println!(
                "{label} → {}{part}: {:?}",
                pdu.submit.recipient, user_data.text
            );
        }
        shown = submitted.len();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Turns each line typed on stdin into an SMS from `from`.
async fn stdin_to_sms(sim: SimHandle, from: String, shutdown: CancellationToken) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            _ = shutdown.cancelled() => return,
            line = lines.next_line() => line,
        };
        match line {
            Ok(Some(line)) if line.trim().is_empty() => {}
            Ok(Some(line)) => match sim.inject_sms(&from, &line).await {
                Ok(()) => println!("phone {from} → modem: {line:?}"),
                Err(error) => eprintln!("the simulated modem refused the SMS: {error}"),
            },
            // End of input (no terminal, as under CI): keep the gateway running.
            Ok(None) | Err(_) => return,
        }
    }
}

/// One SMS each way: `POST /message` must reach the simulated modem and come back as `sent`
/// (and `delivered`); an SMS into the modem must reach the stand-in as a `message` event.
async fn self_test(
    args: &Args,
    api: SocketAddr,
    sims: &[(String, SimHandle)],
    standin: &StandIn,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let outbound_text = "smsgate self-test: respond.io to phone";
    let response = client
        .post(format!("http://{api}/message"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "channelId": CHANNEL_ID,
            "contactId": args.from,
            "message": {"type": "text", "text": outbound_text},
        }))
        .send()
        .await
        .context("POST /message failed")?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let Some(mid) = body["mId"].as_str().map(str::to_owned) else {
        bail!("POST /message answered {status} {body}");
    };
    println!("POST /message → {status}, mId {mid}");
    let statuses = standin
        .wait_for(args.self_test_timeout, |events| {
            events.iter().any(|(_, event)| {
                event["mId"] == mid.as_str() && event["status"]["value"] == "delivered"
            })
        })
        .await
        .map_err(|events| anyhow::anyhow!("no `delivered` status for {mid}; events: {events:?}"))?;
    let mut on = None;
    for (name, sim) in sims {
        if sim
            .submitted()
            .await
            .iter()
            .any(|pdu| pdu.submit.user_data.text == outbound_text)
        {
            on = Some(name.clone());
        }
    }
    let Some(on) = on else {
        bail!("no simulated modem got the SMS");
    };
    if sims.len() > 1 {
        println!("sent by {on}");
    }
    println!(
        "respond.io → phone: sent and delivered ({} events so far)",
        statuses.len()
    );

    let inbound_text = "smsgate self-test: phone to respond.io";
    // In a pool, through another SIM than the one that sent: one inbox for every SIM.
    let (_, sim) = sims
        .iter()
        .rev()
        .find(|(name, _)| *name != on)
        .unwrap_or(&sims[0]);
    sim.inject_sms(&args.from, inbound_text)
        .await
        .context("the simulated modem refused the SMS")?;
    standin
        .wait_for(args.self_test_timeout, |events| {
            events.iter().any(|(contact, event)| {
                contact == &args.from
                    && event["type"] == "message"
                    && event["message"]["text"] == inbound_text
            })
        })
        .await
        .map_err(|events| {
            anyhow::anyhow!("the SMS never reached respond.io; events: {events:?}")
        })?;
    println!("phone → respond.io: message event received");
    Ok(())
}
