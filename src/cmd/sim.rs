//! `smsgate sim`: the simulated modem alone, on a pty whose path it prints, driven by commands
//! typed on stdin (`sms +60123456789 Hello there`, `report 5 0`, `call +60123456789`,
//! `ussd *100# Your balance is 3.00`, `hang on` …), so anyone can try smsgate or any other SMS
//! software without a modem.
//!
//! The modem itself is [`crate::sim`]; this file only maps options and stdin lines onto its handle.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncBufReadExt;

use super::CmdResult;
use crate::sim::{
    self, CallEnd, NotifyMode, Quirk, Quirks, ReportMode, SimHandle, SimOptions, UssdEncoding,
};

/// Rings of a `call` typed without a count (about 15 s at the default interval).
const DEFAULT_RINGS: u32 = 5;

/// Arguments of `smsgate sim`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep a symlink to the pty here (replaced atomically; survives `unplug`).
    #[arg(long)]
    pub link: Option<PathBuf>,
    /// Pace bytes as a serial line at this speed would (8N1); unlimited when left out.
    #[arg(long)]
    pub baud: Option<u32>,
    /// Start with echo off (`ATE0`); modems start with it on.
    #[arg(long)]
    pub no_echo: bool,
    /// Lock the SIM with this PIN.
    #[arg(long)]
    pub pin: Option<String>,
    /// The PUK that unlocks the SIM after three wrong PINs.
    #[arg(long, default_value = "12345678")]
    pub puk: String,
    /// Start with the SIM asking for its PUK.
    #[arg(long)]
    pub puk_locked: bool,
    /// New-SMS indication the modem supports: `cmti` (stored, `+CMTI`) or `cmt` (routed, `+CMT`).
    #[arg(long, default_value = "cmti", value_parser = parse_notify)]
    pub notify: NotifyMode,
    /// Status reports: `cds` (routed, `+CDS`) or `cdsi` (stored in "SR", `+CDSI`).
    #[arg(long, default_value = "cds", value_parser = parse_reports)]
    pub reports: ReportMode,
    /// Delay of a status report after its part was accepted (e.g. `2s`).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub report_delay: Duration,
    /// TP-ST of status reports: 0 delivered, 32–63 still trying, 64 and above failed.
    #[arg(long, default_value_t = 0)]
    pub report_status: u8,
    /// Time the network takes to answer each submitted part (e.g. `1500ms`).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub network_delay: Duration,
    /// SIM storage slots.
    #[arg(long, default_value_t = 30)]
    pub capacity: usize,
    /// The first storage index (1 on most modems, 0 on some).
    #[arg(long, default_value_t = 1)]
    pub first_index: u32,
    /// Emit vendor URCs (`^RSSI`, `^BOOT`, `RING`, `+CREG`) at random moments.
    #[arg(long)]
    pub noise: bool,
    /// Mean time between noise URCs.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub noise_interval: Duration,
    /// Start without network registration.
    #[arg(long)]
    pub unregistered: bool,
    /// Start with SIM storage acting full.
    #[arg(long)]
    pub storage_full: bool,
    /// Answer every AT+CMGS with this +CMS ERROR code.
    #[arg(long)]
    pub cms_error: Option<u16>,
    /// Start hung (reads and answers nothing until `hang off`).
    #[arg(long)]
    pub hang: bool,
    /// How long a routed `+CMT`/`+CDS` waits for `AT+CNMA`.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub ack_timeout: Duration,
    /// How long the network waits before delivering again a status report the modem could not
    /// take (away, `SR` full, refused or not acknowledged with `AT+CNMA`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub network_retry: Duration,
    /// How long the modem takes to register after an unplug or a reset.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub attach_time: Duration,
    /// How long the modem is gone after `AT+CFUN=1,1`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub restart_time: Duration,
    /// The SMS centre number.
    #[arg(long, default_value = "+60120000015")]
    pub smsc: String,
    /// The operator name.
    #[arg(long, default_value = "smsgate sim")]
    pub operator: String,
    /// Signal strength as `AT+CSQ` reports it, 0–31.
    #[arg(long, default_value_t = 20)]
    pub rssi: u8,
    /// Behave like a real device that bends the standards (repeat for several):
    /// `trailing-quote` (a `"` after each PDU), `space-separator` (a space instead of CR LF
    /// between header and PDU), `ff-padding` (stored PDUs padded with FF), `no-ok-after-cpin`
    /// (no OK after `+CPIN:`, as Wavecom modems), `non-bcd-timestamps` (SMS and reports with
    /// a zone digit that is not decimal), `no-chup` (`AT+CHUP` answers ERROR; only `ATH` hangs
    /// up), `ussd-cme-error` (an unknown USSD code gives `+CME ERROR: 100`, not `+CUSD: 4`).
    #[arg(long = "quirk", value_name = "QUIRK")]
    pub quirks: Vec<Quirk>,
    /// The network's answer to a USSD code, `CODE=TEXT` (repeat for several); without any,
    /// `*100#` answers "Your balance is 12.50 USD. Valid until 31-12-2026.".
    #[arg(long = "ussd", value_name = "CODE=TEXT", value_parser = sim::ussd::parse_answer)]
    pub ussd: Vec<(String, String)>,
    /// A code (of `--ussd`) the network answers with a menu (`+CUSD: 1`): the session stays
    /// open, refusing other requests, until `AT+CUSD=2` (repeat for several).
    #[arg(long = "ussd-menu", value_name = "CODE")]
    pub ussd_menus: Vec<String>,
    /// How the modem prints USSD answers: `text` (characters in the AT+CSCS set, as SIMCom and
    /// Quectel), `gsm7-hex` (packed septets in hex, as Huawei), `ucs2-hex` (UCS-2 hex, dcs 72).
    #[arg(long, default_value = "text")]
    pub ussd_encoding: UssdEncoding,
    /// Time the network takes to answer a USSD request.
    #[arg(long, default_value = "800ms", value_parser = parse_duration)]
    pub ussd_delay: Duration,
    /// Time between two RINGs of an incoming call.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub ring_interval: Duration,
    /// Let the signal wander a step or two around --rssi, as a real one does.
    #[arg(long)]
    pub signal_drift: bool,
}

impl Args {
    fn options(&self) -> SimOptions {
        SimOptions {
            link: self.link.clone(),
            baud: self.baud,
            echo: !self.no_echo,
            pin: self.pin.clone(),
            puk: self.puk.clone(),
            puk_locked: self.puk_locked,
            notify: self.notify,
            reports: self.reports,
            report_delay: self.report_delay,
            report_status: self.report_status,
            network_delay: self.network_delay,
            network_delay_jitter: Duration::ZERO,
            capacity: self.capacity,
            first_index: self.first_index,
            urc_noise: self.noise,
            noise_interval: self.noise_interval,
            registered: !self.unregistered,
            storage_full: self.storage_full,
            cms_error: self.cms_error,
            hang: self.hang,
            ack_timeout: self.ack_timeout,
            network_retry: self.network_retry,
            attach_time: self.attach_time,
            restart_time: self.restart_time,
            smsc: self.smsc.clone(),
            operator: self.operator.clone(),
            rssi: self.rssi,
            seed: None,
            quirks: self
                .quirks
                .iter()
                .fold(Quirks::default(), |quirks, &quirk| quirks.with(quirk, true)),
            ussd: if self.ussd.is_empty() {
                SimOptions::default().ussd
            } else {
                self.ussd.clone()
            },
            ussd_menus: self.ussd_menus.clone(),
            ussd_encoding: self.ussd_encoding,
            ussd_delay: self.ussd_delay,
            ring_interval: self.ring_interval,
            signal_drift: self.signal_drift,
        }
    }
}

fn parse_notify(text: &str) -> Result<NotifyMode, String> {
    match text.to_ascii_lowercase().as_str() {
        "cmti" => Ok(NotifyMode::Cmti),
        "cmt" => Ok(NotifyMode::Cmt),
        _ => Err("expected `cmti` or `cmt`".into()),
    }
}

fn parse_reports(text: &str) -> Result<ReportMode, String> {
    match text.to_ascii_lowercase().as_str() {
        "cds" => Ok(ReportMode::Cds),
        "cdsi" => Ok(ReportMode::Cdsi),
        _ => Err("expected `cds` or `cdsi`".into()),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// One control line typed on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Sms {
        from: String,
        text: String,
    },
    Empty {
        from: String,
    },
    Pdu(String),
    Report {
        mr: u8,
        status: u8,
    },
    Cms(Option<u16>),
    CmsAlways(u16),
    Hang(bool),
    Hold(bool),
    Quirk(Quirk, bool),
    Unplug(Duration),
    Register(bool),
    Full(bool),
    Noise(bool),
    Delay(Duration),
    ReportDelay(Duration),
    ReportStatus(u8),
    Call {
        number: Option<String>,
        rings: u32,
    },
    Ussd {
        code: String,
        answer: Option<String>,
    },
    UssdEncoding(UssdEncoding),
    Signal(u8),
    List,
    Help,
    Quit,
}

const HELP: &str = "\
commands:
  sms <from> <text…>       deliver an SMS (split into parts when long)
  empty <from>             deliver an SMS with no text at all
  pdu <hex>                deliver a raw SMS-DELIVER PDU (SMSC field in front)
  report <mr> <status>     send a status report for TP-MR <mr> with TP-ST <status>
  cms <code>|off           answer the next AT+CMGS with +CMS ERROR <code>; off clears
  cms <code> always        answer every AT+CMGS with +CMS ERROR <code>
  hang on|off              stop answering / answer again
  hold on|off              the network holds each AT+CMGS answer until `hold off`
  quirk <name> on|off      trailing-quote, space-separator, ff-padding,
                           no-ok-after-cpin, non-bcd-timestamps, no-chup,
                           ussd-cme-error
  call <number> [rings]    an incoming call that rings (default 5 times, then
                           NO CARRIER); `call withheld` hides the number
  ussd <code> <text…>      the network answers <code> with <text>; `ussd <code> off`
                           forgets it (then +CUSD: 4)
  ussd-encoding <name>     text, gsm7-hex or ucs2-hex: how +CUSD answers are printed
  signal <rssi>            the signal AT+CSQ reports, 0–31 (20 = -73 dBm)
  unplug <secs>            close the pty; a new one appears after <secs>
  register on|off          network registration
  full on|off              SIM storage acts full
  noise on|off             vendor URC noise
  delay <duration>         network delay per submitted part (e.g. 500ms)
  report-delay <duration>  delay of status reports
  report-status <n>        TP-ST of status reports
  list                     stored SMS, stored reports and submitted parts
  help                     this text
  quit                     stop";

fn on_off(word: Option<&str>) -> Result<bool, String> {
    match word {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        _ => Err("expected `on` or `off`".into()),
    }
}

fn number<T: std::str::FromStr>(word: Option<&str>, what: &str) -> Result<T, String> {
    word.and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("expected {what}"))
}

/// Parses one stdin line; `Ok(None)` for a blank line.
fn parse_action(line: &str) -> Result<Option<Action>, String> {
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let mut words = rest.split_whitespace();
    let action = match word {
        "" => return Ok(None),
        "sms" => {
            let (from, text) = rest
                .split_once(char::is_whitespace)
                .ok_or("usage: sms <from> <text…>")?;
            Action::Sms {
                from: from.to_string(),
                text: text.trim_start().to_string(),
            }
        }
        "empty" if !rest.is_empty() => Action::Empty {
            from: rest.to_string(),
        },
        "pdu" if !rest.is_empty() => Action::Pdu(rest.to_string()),
        "report" => Action::Report {
            mr: number(words.next(), "a TP-MR 0–255")?,
            status: number(words.next(), "a TP-ST 0–255")?,
        },
        "cms" => match (words.next(), words.next()) {
            (Some("off"), None) => Action::Cms(None),
            (code, None) => Action::Cms(Some(number(code, "an error code or `off`")?)),
            (code, Some("always")) => Action::CmsAlways(number(code, "an error code")?),
            _ => return Err("usage: cms <code> [always] | cms off".into()),
        },
        "hang" => Action::Hang(on_off(words.next())?),
        "hold" => Action::Hold(on_off(words.next())?),
        "quirk" => {
            let quirk = words
                .next()
                .ok_or("usage: quirk <name> on|off")?
                .parse::<Quirk>()?;
            Action::Quirk(quirk, on_off(words.next())?)
        }
        "unplug" => Action::Unplug(Duration::from_secs_f64(
            number::<f64>(words.next(), "seconds")?.clamp(0.0, 86_400.0),
        )),
        "register" => Action::Register(on_off(words.next())?),
        "full" => Action::Full(on_off(words.next())?),
        "noise" => Action::Noise(on_off(words.next())?),
        "delay" => Action::Delay(parse_duration(rest)?),
        "report-delay" => Action::ReportDelay(parse_duration(rest)?),
        "report-status" => Action::ReportStatus(number(words.next(), "a TP-ST 0–255")?),
        "call" => {
            let caller = match words.next() {
                Some("withheld" | "hidden") => None,
                Some(caller) => Some(caller.to_string()),
                None => return Err("usage: call <number>|withheld [rings]".into()),
            };
            let rings = match words.next() {
                Some(rings) => number(Some(rings), "a number of rings")?,
                None => DEFAULT_RINGS,
            };
            Action::Call {
                number: caller,
                rings,
            }
        }
        "ussd" => {
            let (code, answer) = rest
                .split_once(char::is_whitespace)
                .ok_or("usage: ussd <code> <text…> | ussd <code> off")?;
            let answer = answer.trim();
            if sim::ussd::request_code(code).as_deref() != Some(code) {
                return Err(format!("{code:?} is not a USSD code such as *100#"));
            }
            Action::Ussd {
                code: code.to_string(),
                answer: (answer != "off").then(|| answer.to_string()),
            }
        }
        "ussd-encoding" => Action::UssdEncoding(rest.parse()?),
        "signal" => {
            let rssi: u8 = number(words.next(), "an rssi 0–31")?;
            if rssi > 31 {
                return Err("expected an rssi 0–31".into());
            }
            Action::Signal(rssi)
        }
        "list" => Action::List,
        "help" | "?" => Action::Help,
        "quit" | "exit" => Action::Quit,
        other => return Err(format!("unknown command `{other}` (try `help`)")),
    };
    Ok(Some(action))
}

/// Carries out one action; returns what to print.
async fn perform(sim: &SimHandle, action: Action) -> Result<String, String> {
    let done = |what: &str| Ok(what.to_string());
    match action {
        Action::Sms { from, text } => {
            sim.inject_sms(&from, &text)
                .await
                .map_err(|e| e.to_string())?;
            done("delivered")
        }
        Action::Empty { from } => {
            sim.inject_sms(&from, "").await.map_err(|e| e.to_string())?;
            done("delivered")
        }
        Action::Pdu(hex) => {
            sim.inject_pdu(&hex).await.map_err(|e| e.to_string())?;
            done("delivered")
        }
        Action::Report { mr, status } => {
            sim.inject_status_report(mr, status)
                .await
                .map_err(|e| e.to_string())?;
            done("report sent")
        }
        Action::Cms(code) => {
            sim.set_cms_error(code).await;
            done(if code.is_some() {
                "next AT+CMGS fails"
            } else {
                "errors cleared"
            })
        }
        Action::CmsAlways(code) => {
            sim.set_cms_error_always(Some(code)).await;
            done("every AT+CMGS fails")
        }
        Action::Hang(on) => {
            sim.set_hang(on).await;
            done(if on { "hung" } else { "answering" })
        }
        Action::Hold(on) => {
            sim.hold_submits(on).await;
            done(if on {
                "AT+CMGS answers held"
            } else {
                "AT+CMGS answers released"
            })
        }
        Action::Quirk(quirk, on) => {
            sim.set_quirk(quirk, on).await;
            Ok(format!("{quirk} {}", if on { "on" } else { "off" }))
        }
        Action::Unplug(for_) => {
            sim.unplug(for_).await;
            Ok(format!("unplugged for {for_:?}"))
        }
        Action::Register(on) => {
            sim.set_registered(on).await;
            done(if on { "registered" } else { "searching" })
        }
        Action::Full(on) => {
            sim.set_storage_full(on).await;
            done(if on {
                "storage full"
            } else {
                "storage has room"
            })
        }
        Action::Noise(on) => {
            sim.set_noise(on).await;
            done(if on { "noise on" } else { "noise off" })
        }
        Action::Delay(delay) => {
            sim.set_network_delay(delay).await;
            done("network delay set")
        }
        Action::ReportDelay(delay) => {
            sim.set_report_delay(delay).await;
            done("report delay set")
        }
        Action::ReportStatus(status) => {
            sim.set_report_status(status).await;
            done("report status set")
        }
        Action::Call { number, rings } => {
            sim.call(number.as_deref(), rings)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "ringing from {} ({rings} rings)",
                number.as_deref().unwrap_or("a withheld number")
            ))
        }
        Action::Ussd { code, answer } => {
            sim.set_ussd_answer(&code, answer.as_deref()).await;
            Ok(match answer {
                Some(_) => format!("{code} answered"),
                None => format!("{code} unknown to the network"),
            })
        }
        Action::UssdEncoding(encoding) => {
            sim.set_ussd_encoding(encoding).await;
            Ok(format!("USSD answers printed as {encoding}"))
        }
        Action::Signal(rssi) => {
            sim.set_rssi(rssi).await;
            Ok(format!("signal {} dBm", -113 + 2 * i32::from(rssi)))
        }
        Action::List => Ok(listing(sim).await),
        Action::Help => done(HELP),
        Action::Quit => done("bye"),
    }
}

async fn listing(sim: &SimHandle) -> String {
    let mut text = format!("path {}\n", sim.path().display());
    list_entries(&mut text, "SIM storage", "SMS", &sim.stored().await);
    list_entries(
        &mut text,
        "SR storage",
        "reports",
        &sim.stored_reports().await,
    );
    let requests = sim.ussd_requests().await;
    text.push_str(&format!("USSD requests: {}\n", requests.join(" ")));
    let calls = sim.calls().await;
    text.push_str(&format!("calls: {}\n", calls.len()));
    for call in calls {
        let end = match call.end {
            None => "ringing".to_string(),
            Some(CallEnd::HungUp(command)) => format!("hung up with {command}"),
            Some(CallEnd::GaveUp) => "caller gave up".to_string(),
            Some(CallEnd::Lost) => "lost (modem restarted)".to_string(),
        };
        text.push_str(&format!(
            "  from {}, {} rings, {end}\n",
            call.number.as_deref().unwrap_or("withheld"),
            call.rings
        ));
    }
    let submitted = sim.submitted().await;
    text.push_str(&format!("submitted: {} parts", submitted.len()));
    for part in submitted {
        text.push_str(&format!(
            "\n  mr {} to {}{}: {}",
            part.mr,
            part.submit.recipient,
            if part.submit.status_report_request {
                " (report requested)"
            } else {
                ""
            },
            part.submit.user_data.text
        ));
    }
    text
}

fn list_entries(text: &mut String, memory: &str, what: &str, entries: &[sim::Entry]) {
    text.push_str(&format!("{memory}: {} {what}\n", entries.len()));
    for entry in entries {
        text.push_str(&format!(
            "  {} stat {} {}\n",
            entry.index,
            entry.status.code(),
            sim::interpreter::hex(&entry.pdu)
        ));
    }
}

/// Runs `smsgate sim`.
pub fn run(args: Args) -> CmdResult {
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        // Both signals are caught before the path is printed: whoever read it may stop the
        // simulator at once, and the link must go with it (a link left behind would point at
        // a pty another program may get next).
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot wait for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot wait for Ctrl-C")?;
        let sim = sim::spawn(args.options())
            .await
            .context("cannot start the simulated modem")?;
        println!("smsgate sim: modem on {}", sim.path().display());
        println!("type `help` for commands; Ctrl-C stops");
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut stdin_open = true;
        loop {
            tokio::select! {
                line = lines.next_line(), if stdin_open => match line {
                    Ok(Some(line)) => match parse_action(&line) {
                        Ok(Some(Action::Quit)) => break,
                        Ok(Some(action)) => match perform(&sim, action).await {
                            Ok(text) => println!("{text}"),
                            Err(error) => println!("error: {error}"),
                        },
                        Ok(None) => {}
                        Err(error) => println!("error: {error}"),
                    },
                    // Without stdin (a service, `< /dev/null`) the modem keeps running.
                    Ok(None) | Err(_) => stdin_open = false,
                },
                // Ctrl-C, `kill`, a service manager: all stop the same way.
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
            }
        }
        sim.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines() {
        let ok = |line: &str| parse_action(line).expect(line).expect(line);
        assert_eq!(
            ok("sms +60123456789 Hello there"),
            Action::Sms {
                from: "+60123456789".into(),
                text: "Hello there".into()
            }
        );
        assert_eq!(ok("pdu 0791AB"), Action::Pdu("0791AB".into()));
        assert_eq!(ok("report 5 64"), Action::Report { mr: 5, status: 64 });
        assert_eq!(ok("cms 38"), Action::Cms(Some(38)));
        assert_eq!(ok("cms off"), Action::Cms(None));
        assert_eq!(ok("cms 42 always"), Action::CmsAlways(42));
        assert_eq!(ok("hang on"), Action::Hang(true));
        assert_eq!(ok("hold off"), Action::Hold(false));
        assert_eq!(
            ok("empty +60123456789"),
            Action::Empty {
                from: "+60123456789".into()
            }
        );
        assert_eq!(
            ok("quirk trailing-quote on"),
            Action::Quirk(Quirk::TrailingQuote, true)
        );
        assert_eq!(
            ok("unplug 1.5"),
            Action::Unplug(Duration::from_millis(1500))
        );
        assert_eq!(ok("register off"), Action::Register(false));
        assert_eq!(ok("full on"), Action::Full(true));
        assert_eq!(ok("noise off"), Action::Noise(false));
        assert_eq!(ok("delay 250ms"), Action::Delay(Duration::from_millis(250)));
        assert_eq!(ok("list"), Action::List);
        assert_eq!(
            ok("call +60123456789"),
            Action::Call {
                number: Some("+60123456789".into()),
                rings: DEFAULT_RINGS
            }
        );
        assert_eq!(
            ok("call withheld 2"),
            Action::Call {
                number: None,
                rings: 2
            }
        );
        assert_eq!(
            ok("ussd *100# Your balance is 3.00"),
            Action::Ussd {
                code: "*100#".into(),
                answer: Some("Your balance is 3.00".into())
            }
        );
        assert_eq!(
            ok("ussd *100# off"),
            Action::Ussd {
                code: "*100#".into(),
                answer: None
            }
        );
        assert_eq!(ok("signal 12"), Action::Signal(12));
        assert_eq!(
            ok("ussd-encoding gsm7-hex"),
            Action::UssdEncoding(UssdEncoding::Gsm7Hex)
        );
        assert_eq!(ok("help"), Action::Help);
        assert_eq!(parse_action("   "), Ok(None));
        for bad in [
            "sms +601",
            "report x 0",
            "hang maybe",
            "frobnicate",
            "cms",
            "pdu",
            "empty",
            "quirk loud on",
            "quirk trailing-quote",
            "call",
            "call +601 many",
            "ussd *100#",
            "ussd balance hello",
            "ussd-encoding loud",
            "signal 40",
        ] {
            assert!(parse_action(bad).is_err(), "{bad}");
        }
    }
}
