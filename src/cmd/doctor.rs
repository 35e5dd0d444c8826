//! `smsgate doctor` (DESIGN.md §4): probes the modem and prints a report a non-expert can act
//! on — identity, SIM and PIN, registration and operator, signal in dBm and a word, SMS
//! centre, storage, which `AT+CNMI` and status-report modes work — then exits 0 when the modem
//! can send and receive, non-zero with the fix otherwise.
//!
//! It sends no SMS and changes nothing the daemon would not change at start-up (echo, error
//! format, PDU mode, storage, notifications). `--port` probes another device, e.g. the pty
//! that `smsgate sim` prints, and then needs no configuration file: the default one is read if
//! it can be (for `modem.baud` and `modem.pin`), the built-in defaults serve otherwise. It
//! never needs the API token.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::CmdResult;
use crate::at::AtError;
use crate::config::{Config, ConfigError, DEFAULT_PATH, WEBHOOK_URL};
use crate::modem::init::{InitReport, Notify, Reports};
use crate::modem::{ModemError, ModemOptions, parse};

/// Arguments of `smsgate doctor`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file [default: /etc/smsgate/smsgate.toml; with --port, only if it can be
    /// read].
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Probe this serial device instead of the configured modems.
    #[arg(long, conflicts_with = "modem")]
    pub port: Option<PathBuf>,
    /// Probe only this modem of the pool (its `[[modems]] name`); without it, every modem.
    #[arg(long)]
    pub modem: Option<String>,
}

/// Runs `smsgate doctor`.
pub fn run(args: Args) -> CmdResult {
    let (config, note): (Option<Config>, Option<String>) = match (&args.config, &args.port) {
        (Some(path), _) => (Some(Config::read(path)?), None),
        (None, None) => (Some(Config::read(Path::new(DEFAULT_PATH))?), None),
        // A port of its own: the modem settings of the default file help (baud, PIN), but a
        // probe of a simulator or of another interface must not need one.
        (None, Some(_)) => match Config::read(Path::new(DEFAULT_PATH)) {
            Ok(config) => (Some(config), None),
            Err(ConfigError::Read { error, .. })
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                (
                    None,
                    Some(format!(
                        "no {DEFAULT_PATH}: probing with the default modem settings"
                    )),
                )
            }
            Err(error) => (
                None,
                Some(format!(
                    "{error}\n  (probing with the default modem settings instead)"
                )),
            ),
        },
    };
    // (name, options) of every modem to probe, in the order of the file.
    let probes: Vec<(Option<String>, ModemOptions)> = match (&args.port, &config) {
        (Some(port), _) => {
            let modem = config.as_ref().map(|c| c.modem.clone()).unwrap_or_default();
            let mut options = ModemOptions::from(&modem);
            options.port = port.clone();
            options.endpoint = None;
            vec![(None, options)]
        }
        (None, Some(config)) => {
            let pool = config.pool();
            let chosen: Vec<_> = match &args.modem {
                None => pool.iter().collect(),
                Some(name) => {
                    let found: Vec<_> = pool.iter().filter(|m| m.name.as_str() == name).collect();
                    if found.is_empty() {
                        let names: Vec<&str> = pool.iter().map(|m| m.name.as_str()).collect();
                        anyhow::bail!(
                            "no modem is named {name:?} in the configuration (it has: {})",
                            names.join(", ")
                        );
                    }
                    found
                }
            };
            let named = pool.len() > 1 || args.modem.is_some();
            chosen
                .into_iter()
                .map(|m| {
                    (
                        named.then(|| m.name.as_str().to_owned()),
                        ModemOptions::from(m),
                    )
                })
                .collect()
        }
        (None, None) => vec![(
            None,
            ModemOptions::from(&crate::config::ModemConfig::default()),
        )],
    };
    if let Some(note) = note {
        println!("note: {note}\n");
    }
    let runtime = super::runtime()?;
    let mut all_good = true;
    for (index, (name, options)) in probes.iter().enumerate() {
        if let Some(name) = name {
            if index > 0 {
                println!();
            }
            println!("== modem {name} ({})", options.endpoint());
        }
        let mut diagnosis = runtime.block_on(diagnose(options));
        if let Some(warning) = config
            .as_ref()
            .and_then(|config| config.respond.retired_webhook_warning())
        {
            diagnosis.findings.push(finding(
                false,
                warning,
                format!(
                    "set respond.webhook_url = \"{WEBHOOK_URL}\" (or the URL respond.io shows)"
                ),
            ));
        }
        print!("{}", diagnosis.render());
        all_good &= diagnosis.can_send_and_receive();
    }
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Something wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `true` when SMS cannot work until it is fixed.
    pub blocking: bool,
    pub problem: String,
    pub fix: String,
}

/// What the probe found, with the findings drawn from it.
#[derive(Debug)]
pub struct Diagnosis {
    pub port: PathBuf,
    pub baud: u32,
    pub report: InitReport,
    pub error: Option<ModemError>,
    pub findings: Vec<Finding>,
}

/// Probes the modem described by `options` (opens the port, runs the initialisation steps).
pub async fn diagnose(options: &ModemOptions) -> Diagnosis {
    let (report, error) = crate::modem::probe(options).await;
    let findings = findings(options, &report, error.as_ref());
    Diagnosis {
        port: options.endpoint().to_string().into(),
        baud: options.baud,
        report,
        error,
        findings,
    }
}

fn finding(blocking: bool, problem: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        blocking,
        problem: problem.into(),
        fix: fix.into(),
    }
}

fn findings(
    options: &ModemOptions,
    report: &InitReport,
    error: Option<&ModemError>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(error) = error {
        let fix = match error {
            ModemError::InUse { .. } => "stop the other program first (`systemctl stop \
                 smsgate` for the daemon), or, with the daemon running, look at `smsgate status`, \
                 its dashboard, or ask a USSD code with `smsgate ussd` (it goes through the daemon)"
                .to_owned(),
            ModemError::Open { .. } => format!(
                "check the cable and modem.port ({}): prefer a /dev/serial/by-id/ path, and \
                 make sure smsgate's user is in the group that owns the device (dialout)",
                options.endpoint()
            ),
            ModemError::At(AtError::Timeout { .. } | AtError::ResyncFailed { .. })
                if !report.synced =>
            {
                format!(
                    "the modem does not answer AT: check modem.baud ({}), stop other programs \
                     using the port (ModemManager), and try the modem's other ttyUSB \
                     interfaces — only one of them takes AT commands",
                    options.baud
                )
            }
            ModemError::At(_) => {
                "the modem stopped answering during the probe: unplug it, wait ten seconds, \
                 plug it back and run doctor again"
                    .to_owned()
            }
            ModemError::PinRequired => {
                "set modem.pin in the configuration to the SIM's PIN".to_owned()
            }
            ModemError::PinRejected(_) => "check modem.pin: after three wrong PINs the SIM \
                                           needs its PUK (enter it in a phone)"
                .to_owned(),
            ModemError::PukLocked => {
                "put the SIM in a phone, unlock it with its PUK, then set the new PIN in \
                 modem.pin"
                    .to_owned()
            }
            ModemError::Sim(_) => {
                "check that a working SIM is inserted the right way round, then restart the \
                 modem"
                    .to_owned()
            }
            ModemError::Unsupported(_) => {
                "this modem cannot send SMS in PDU mode; smsgate needs one that can".to_owned()
            }
            other => format!("see the error above ({other})"),
        };
        out.push(finding(true, error.to_string(), fix));
        return out;
    }
    if !report.registered {
        let state = report
            .registration
            .map_or("unknown", parse::registration_word);
        out.push(finding(
            true,
            format!("not registered on a mobile network ({state})"),
            "check the antenna and coverage, and that the SIM has service (try it in a phone); \
             registration can take a minute after power-up",
        ));
    }
    if report.smsc.is_none() {
        out.push(finding(
            true,
            "no SMS centre number is set (AT+CSCA?)",
            "set it once with AT+CSCA=\"+<number>\",145 — your operator publishes the number",
        ));
    }
    if report.cnmi.is_none() {
        out.push(finding(
            false,
            "the modem takes no AT+CNMI setting: it will not announce new SMS",
            format!(
                "none needed: smsgate finds new SMS by sweeping the storage every {} s",
                options.sweep_interval.as_secs()
            ),
        ));
    }
    if options.delivery_reports && report.reports() == Reports::Off {
        out.push(finding(
            false,
            "the modem routes no status reports: messages will show as sent, never delivered",
            "set modem.delivery_reports = false to stop asking for them",
        ));
    }
    if let Some(dbm) = report.signal_dbm {
        if dbm < -105 {
            out.push(finding(
                false,
                format!("the signal is very poor ({dbm} dBm)"),
                "move the modem or fit a better antenna",
            ));
        }
    } else if report.registered {
        out.push(finding(
            false,
            "the signal strength is unknown (AT+CSQ)",
            "check the antenna",
        ));
    }
    if let (Some(used), Some(total)) = (report.storage_used, report.storage_total) {
        if total > 0 && used >= total {
            out.push(finding(
                false,
                format!("the message storage is full ({used} of {total})"),
                "start smsgate: it forwards and deletes stored messages, which frees the storage",
            ));
        }
    }
    out
}

impl Diagnosis {
    /// `true` when nothing blocking was found.
    pub fn can_send_and_receive(&self) -> bool {
        self.error.is_none() && !self.findings.iter().any(|f| f.blocking)
    }

    /// The report as printed.
    pub fn render(&self) -> String {
        let r = &self.report;
        let mut out = String::new();
        let unknown = || "unknown".to_owned();
        let mut row = |label: &str, value: String| {
            let _ = writeln!(out, "  {label:<16}{value}");
        };
        row(
            "port",
            format!("{} at {} baud", self.port.display(), self.baud),
        );
        let identity = [&r.manufacturer, &r.model]
            .iter()
            .filter_map(|part| part.as_deref())
            .collect::<Vec<_>>()
            .join(" ");
        if !identity.is_empty() || r.synced {
            let mut modem = if identity.is_empty() {
                "answers AT".to_owned()
            } else {
                identity
            };
            if let Some(revision) = &r.revision {
                let _ = write!(modem, ", firmware {revision}");
            }
            if let Some(imei) = &r.imei {
                let _ = write!(modem, ", IMEI {imei}");
            }
            row("modem", modem);
        }
        if let Some(sim) = &r.sim {
            let mut text = sim.clone();
            if r.pin_entered {
                text.push_str(" (PIN entered)");
            }
            if let Some(imsi) = &r.imsi {
                let _ = write!(text, ", IMSI {imsi}");
            }
            row("SIM", text);
        }
        if r.pdu_mode {
            row(
                "network",
                match (&r.registration, &r.operator) {
                    (Some(stat), Some(operator)) => {
                        format!("{} — {operator}", parse::registration_word(*stat))
                    }
                    (Some(stat), None) => parse::registration_word(*stat).to_owned(),
                    _ => unknown(),
                },
            );
            row(
                "signal",
                r.signal_dbm.map_or_else(unknown, |dbm| {
                    format!("{dbm} dBm ({})", parse::signal_word(dbm))
                }),
            );
            row(
                "SMS centre",
                r.smsc.clone().unwrap_or_else(|| "not set".into()),
            );
            row(
                "storage",
                match (&r.memory, r.storage_used, r.storage_total) {
                    (Some(memory), Some(used), Some(total)) => {
                        format!("{memory}, {used} of {total} used")
                    }
                    (Some(memory), _, _) => memory.clone(),
                    _ => unknown(),
                },
            );
            row(
                "new SMS",
                match r.notify() {
                    Notify::Stored => "stored and announced (+CMTI), read with AT+CMGR".into(),
                    Notify::Routed => "routed directly (+CMT)".into(),
                    Notify::Sweep => "not announced: found by the storage sweep".into(),
                },
            );
            row(
                "status reports",
                match r.reports() {
                    Reports::Routed => "routed (+CDS)".into(),
                    Reports::Stored => "stored and announced (+CDSI)".into(),
                    Reports::Off => "off".to_owned(),
                },
            );
            let tried = r
                .cnmi_tried
                .iter()
                .map(|(command, ok)| {
                    let values = command.trim_start_matches("AT+CNMI=");
                    format!("{values} {}", if *ok { "ok" } else { "refused" })
                })
                .collect::<Vec<_>>()
                .join("; ");
            if !tried.is_empty() {
                row("AT+CNMI", tried);
            }
            if let Some(cmms) = r.cmms {
                row(
                    "multipart link",
                    if cmms {
                        "AT+CMMS=2 supported".into()
                    } else {
                        "AT+CMMS not supported (parts still go out)".into()
                    },
                );
            }
        }
        out.push('\n');
        if self.can_send_and_receive() {
            out.push_str("OK: this modem can send and receive SMS.\n");
        }
        for finding in &self.findings {
            let mark = if finding.blocking { "PROBLEM" } else { "note" };
            let _ = writeln!(out, "{mark}: {}\n  fix: {}", finding.problem, finding.fix);
        }
        out
    }
}
