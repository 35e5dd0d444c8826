//! Initialisation as a table with fallbacks (DESIGN.md §3), and the probe behind
//! `smsgate doctor`.
//!
//! Each step records what it found in an [`InitReport`]; a step whose failure makes SMS
//! impossible (no sync, SIM locked, no PDU mode) ends initialisation with a [`ModemError`],
//! the others are noted and skipped. The probe runs the same steps but tries every
//! `AT+CNMI` variant instead of stopping at the first that works, so the report can say which
//! ones the modem takes.
//!
//! A query whose answer came without its final result (a Wavecom answers `AT+CPIN?` with
//! `+CPIN: READY` and no `OK`) goes on with the answer after [`Tuning::final_grace`].
//!
//! Nothing here loops forever or retries after an error: the driver's recovery ladder does.

use std::time::Duration;

use serde::Serialize;
use tracing::{debug, info, warn};

use super::connection;
use super::error::{ModemError, explain_cme};
use super::parse;
use super::{ModemOptions, Tuning};
use crate::at::{AtError, AtHandle, Command, ErrorCode, FinalResult, Response};

/// How new SMS reach smsgate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    /// Stored, announced with `+CMTI` (preferred: survives a crash before the commit).
    Stored,
    /// Routed directly with `+CMT` (acknowledged with `AT+CNMA` where needed).
    Routed,
    /// No notification: only the periodic `AT+CMGL` sweep finds new SMS.
    #[default]
    Sweep,
}

/// How status reports reach smsgate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reports {
    /// Routed with `+CDS`.
    Routed,
    /// Stored, announced with `+CDSI`.
    Stored,
    /// None asked for, or none the modem supports.
    #[default]
    Off,
}

/// One `AT+CNMI` variant: `<mode>,<mt>,<bm>,<ds>,<bfr>` (TS 27.005 §3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CnmiVariant {
    pub values: [i32; 5],
    pub notify: Notify,
    pub reports: Reports,
}

const fn variant(values: [i32; 5]) -> CnmiVariant {
    CnmiVariant {
        values,
        notify: if values[1] == 2 {
            Notify::Routed
        } else {
            Notify::Stored
        },
        reports: match values[3] {
            1 => Reports::Routed,
            2 => Reports::Stored,
            _ => Reports::Off,
        },
    }
}

/// Variants in order of preference when status reports are wanted: store-and-notify first,
/// buffered (`<mode>` 2) before discarding-while-busy (`<mode>` 1), reports stored before
/// routed, and finally without reports at all. A stored report waits in the modem until
/// smsgate has committed it, whether smsgate was stopped or the modem unplugged meanwhile; a
/// routed one survives that only in phase 2+ (`AT+CSMS=1`), unacknowledged, and only as long
/// as the network keeps trying again.
pub(crate) const CNMI_WITH_REPORTS: &[CnmiVariant] = &[
    variant([2, 1, 0, 2, 0]),
    variant([2, 1, 0, 1, 0]),
    variant([1, 1, 0, 2, 0]),
    variant([1, 1, 0, 1, 0]),
    variant([2, 2, 0, 2, 0]),
    variant([2, 2, 0, 1, 0]),
    variant([1, 2, 0, 1, 0]),
    variant([2, 1, 0, 0, 0]),
    variant([1, 1, 0, 0, 0]),
    variant([2, 2, 0, 0, 0]),
];

/// Variants when status reports are not wanted.
pub(crate) const CNMI_WITHOUT_REPORTS: &[CnmiVariant] = &[
    variant([2, 1, 0, 0, 0]),
    variant([1, 1, 0, 0, 0]),
    variant([2, 2, 0, 0, 0]),
    variant([1, 2, 0, 0, 0]),
];

/// Storage choices for `AT+CPMS`, in order: the SIM, the modem's memory, both.
const STORAGES: &[&str] = &["SM", "ME", "MT"];

/// What initialisation (or the probe) found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InitReport {
    pub synced: bool,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub revision: Option<String>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    /// `+CPIN` state: `READY`, `SIM PIN`, `SIM PUK`, … or what went wrong reading it.
    pub sim: Option<String>,
    pub pin_entered: bool,
    pub pdu_mode: bool,
    /// `+CSMS` `<service>`: 1 = phase 2+ (routed messages need `AT+CNMA`).
    pub sms_service: Option<u8>,
    pub memory: Option<String>,
    /// Where stored status reports are kept when it is not `memory` (`"SR"`, when `AT+CPMS=?`
    /// offers it), so the sweep lists it too.
    pub report_memory: Option<String>,
    pub storage_used: Option<u32>,
    pub storage_total: Option<u32>,
    /// Every `AT+CNMI` variant tried, and whether the modem took it.
    pub cnmi_tried: Vec<(String, bool)>,
    /// The variant in force.
    pub cnmi: Option<CnmiVariant>,
    pub registration: Option<u8>,
    pub registered: bool,
    pub operator: Option<String>,
    pub signal_dbm: Option<i32>,
    pub smsc: Option<String>,
    /// `AT+CMMS` (keep the link between parts) accepted.
    pub cmms: Option<bool>,
}

impl InitReport {
    /// How SMS arrive.
    pub fn notify(&self) -> Notify {
        self.cnmi.map_or(Notify::Sweep, |cnmi| cnmi.notify)
    }

    /// How status reports arrive.
    pub fn reports(&self) -> Reports {
        self.cnmi.map_or(Reports::Off, |cnmi| cnmi.reports)
    }

    /// Routed SMS and reports must be acknowledged with `AT+CNMA` (TS 27.005 §3.4.4).
    pub fn needs_ack(&self) -> bool {
        self.sms_service == Some(1)
    }
}

/// The steps' shared state: the engine, the options, and whether the PIN may be entered.
pub(crate) struct Initialiser<'a> {
    pub at: &'a AtHandle,
    pub options: &'a ModemOptions,
    pub tuning: &'a Tuning,
    /// `false` once the configured PIN was refused: entering it again could lock the SIM.
    pub pin_allowed: bool,
    /// Try every CNMI variant (the probe) instead of stopping at the first that works.
    pub probe: bool,
}

impl Initialiser<'_> {
    async fn run(&self, text: &str) -> Result<Response, AtError> {
        let command = Command::new(text).timeout(self.options.command_timeout);
        self.at.run(self.with_grace(command)).await
    }

    /// A query (`AT+X?`) goes on once its answer is in, even if the modem never sends the
    /// final result after it (see [`Command::final_grace`]).
    fn with_grace(&self, command: Command) -> Command {
        let text = command.text();
        match crate::at::classify::response_prefix(text) {
            Some(prefix) if text.ends_with('?') => {
                command.final_grace(format!("{prefix}:"), self.tuning.final_grace)
            }
            _ => command,
        }
    }

    /// Runs a command, retrying while the modem says it is busy.
    async fn run_patiently(&self, command: Command) -> Result<Response, AtError> {
        let mut at = self.at;
        connection::patiently(self.tuning, &command, &mut at).await
    }

    /// Runs every step, filling `report`. Returns the first error that makes SMS impossible.
    pub(crate) async fn initialise(&self, report: &mut InitReport) -> Result<(), ModemError> {
        self.sync(report).await?;
        // Echo off and numeric errors make every later answer shorter and parseable; modems
        // that refuse either still work.
        if let Err(error) = self.run("ATE0").await {
            debug!(%error, "ATE0 refused; echo is filtered instead");
        }
        if let Err(error) = self.run("AT+CMEE=1").await {
            debug!(%error, "AT+CMEE=1 refused; errors come as plain ERROR");
        }
        self.identity(report).await;
        self.sim(report).await?;
        if let Ok(response) = self.run("AT+CIMI").await {
            report.imsi = response.text().map(str::to_owned);
        }
        match self.run("AT+CMGF=0").await {
            Ok(_) => report.pdu_mode = true,
            Err(error) if error.is_fatal() => return Err(error.into()),
            Err(_) => return Err(ModemError::Unsupported("PDU mode (AT+CMGF=0)".into())),
        }
        if let Ok(response) = self.run("AT+CSMS?").await {
            report.sms_service = response
                .lines
                .iter()
                .find_map(|line| parse::sms_service(line));
        }
        self.phase_2_plus(report).await?;
        self.storage(report).await?;
        if self.options.delivery_reports {
            self.report_memory(report).await;
        }
        self.notifications(report).await?;
        self.network(report).await?;
        Ok(())
    }

    /// `AT` until `OK` (after `ESC`, in case a prompt was left open).
    async fn sync(&self, report: &mut InitReport) -> Result<(), ModemError> {
        let mut last = None;
        for _ in 0..5 {
            let command = Command::new("AT").timeout(
                Duration::from_secs(1)
                    .min(self.options.command_timeout.max(Duration::from_millis(200))),
            );
            match self.at.run(command).await {
                Ok(_) => {
                    report.synced = true;
                    return Ok(());
                }
                Err(error) if error.is_fatal() => return Err(error.into()),
                Err(error) => last = Some(error),
            }
        }
        Err(last.map_or(ModemError::Stopped, ModemError::from))
    }

    async fn identity(&self, report: &mut InitReport) {
        let text = |response: Response, prefix: &str| {
            response.text().map(|line| {
                line.strip_prefix(prefix)
                    .map_or(line, str::trim)
                    .trim_matches('"')
                    .to_owned()
            })
        };
        if let Ok(response) = self.run("AT+CGMI").await {
            report.manufacturer = text(response, "+CGMI:");
        }
        if let Ok(response) = self.run("AT+CGMM").await {
            report.model = text(response, "+CGMM:");
        }
        if let Ok(response) = self.run("AT+CGMR").await {
            report.revision = text(response, "+CGMR:");
        }
        match self.run("AT+CGSN").await {
            Ok(response) => report.imei = text(response, "+CGSN:"),
            Err(_) => {
                if let Ok(response) = self.run("AT+GSN").await {
                    report.imei = text(response, "+GSN:");
                }
            }
        }
    }

    async fn pin_state(&self) -> Result<String, ModemError> {
        let command =
            self.with_grace(Command::new("AT+CPIN?").timeout(self.options.command_timeout));
        match self.run_patiently(command).await {
            Ok(response) => response
                .lines
                .iter()
                .find_map(|line| parse::pin_state(line))
                .ok_or_else(|| ModemError::Sim("no answer to AT+CPIN?".into())),
            Err(AtError::Rejected {
                result: FinalResult::CmeError(code),
                ..
            }) => Err(ModemError::Sim(match code {
                ErrorCode::Numeric(number) => explain_cme(number)
                    .map_or_else(|| format!("+CME ERROR {number}"), str::to_owned),
                ErrorCode::Verbose(text) => text,
            })),
            Err(error) => Err(error.into()),
        }
    }

    async fn sim(&self, report: &mut InitReport) -> Result<(), ModemError> {
        let state = match self.pin_state().await {
            Ok(state) => state,
            Err(error) => {
                report.sim = Some(error.to_string());
                return Err(error);
            }
        };
        report.sim = Some(state.clone());
        match state.as_str() {
            "READY" => Ok(()),
            "SIM PIN" => {
                let pin = match (&self.options.pin, self.pin_allowed) {
                    (Some(pin), true) => pin.expose(),
                    (Some(_), false) => {
                        return Err(ModemError::PinRejected("refused earlier".into()));
                    }
                    (None, _) => return Err(ModemError::PinRequired),
                };
                let command = Command::new(parse::set_strings("+CPIN", &[pin]))
                    .redacted("AT+CPIN=<PIN>")
                    .timeout(self.options.command_timeout);
                if let Err(error) = self.at.run(command).await {
                    return Err(match error {
                        AtError::Rejected { result, .. } => {
                            ModemError::PinRejected(result.to_string())
                        }
                        other => other.into(),
                    });
                }
                report.pin_entered = true;
                info!("SIM PIN entered");
                // The SIM takes a moment to become ready after its PIN (and some modems answer
                // SIM busy meanwhile).
                for _ in 0..20 {
                    if let Ok(state) = self.pin_state().await {
                        report.sim = Some(state.clone());
                        if state == "READY" {
                            return Ok(());
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(ModemError::Sim(
                    "the SIM did not become ready after its PIN".into(),
                ))
            }
            "SIM PUK" | "SIM PUK2" => Err(ModemError::PukLocked),
            other => Err(ModemError::Sim(format!(
                "the SIM asks for {other}, which smsgate does not enter"
            ))),
        }
    }

    /// `AT+CSMS=1` (TS 27.005 §3.2.1, phase 2+): a routed `+CMT`/`+CDS` then waits for
    /// `AT+CNMA`, which smsgate sends only after the commit, so one that comes while smsgate is
    /// stopped, or that it cannot store, is delivered again by the network. Stored messages are
    /// not affected. A modem that refuses it acknowledges routed messages itself.
    async fn phase_2_plus(&self, report: &mut InitReport) -> Result<(), ModemError> {
        match self.run("AT+CSMS=1").await {
            Ok(_) => report.sms_service = Some(1),
            Err(error) if error.is_fatal() => return Err(error.into()),
            Err(error) => {
                debug!(%error, "AT+CSMS=1 refused; the modem acknowledges routed messages")
            }
        }
        Ok(())
    }

    /// Whether `AT+CPMS=?` offers `"SR"` for reading (TS 27.005 §3.2.2): where modems keep
    /// stored status reports apart from SMS.
    async fn report_memory(&self, report: &mut InitReport) {
        let Ok(response) = self.run("AT+CPMS=?").await else {
            return;
        };
        let offered = response
            .lines
            .iter()
            .find_map(|line| parse::first_memories(line))
            .unwrap_or_default();
        if offered.iter().any(|memory| memory == "SR") && report.memory.as_deref() != Some("SR") {
            report.report_memory = Some("SR".to_owned());
        }
    }

    async fn storage(&self, report: &mut InitReport) -> Result<(), ModemError> {
        for memory in STORAGES {
            let command = parse::set_strings("+CPMS", &[memory, memory, memory]);
            match self.run(&command).await {
                Ok(response) => {
                    report.memory = Some((*memory).to_owned());
                    if let Some((used, total)) =
                        response.lines.iter().find_map(|line| parse::storage(line))
                    {
                        report.storage_used = Some(used);
                        report.storage_total = Some(total);
                    }
                    return Ok(());
                }
                Err(error) if error.is_fatal() => return Err(error.into()),
                Err(_) => {}
            }
        }
        // Keep whatever the modem uses; `AT+CPMS?` names it.
        if let Ok(response) = self.run("AT+CPMS?").await {
            if let Some(line) = response.lines.iter().find(|l| l.starts_with("+CPMS:")) {
                report.memory = line
                    .trim_start_matches("+CPMS:")
                    .split(',')
                    .next()
                    .map(|memory| memory.trim().trim_matches('"').to_owned());
                if let Some((used, total)) = parse::storage(line) {
                    report.storage_used = Some(used);
                    report.storage_total = Some(total);
                }
            }
        }
        Ok(())
    }

    async fn notifications(&self, report: &mut InitReport) -> Result<(), ModemError> {
        let variants = if self.options.delivery_reports {
            CNMI_WITH_REPORTS
        } else {
            CNMI_WITHOUT_REPORTS
        };
        let mut chosen = None;
        for candidate in variants {
            let command = parse::set_ints("+CNMI", &candidate.values);
            let accepted = match self.run(&command).await {
                Ok(_) => true,
                Err(error) if error.is_fatal() => return Err(error.into()),
                Err(_) => false,
            };
            report.cnmi_tried.push((command, accepted));
            if accepted && chosen.is_none() {
                chosen = Some(*candidate);
                if !self.probe {
                    break;
                }
            }
        }
        if let Some(candidate) = chosen {
            if self.probe {
                // The probe tried them all: leave the preferred one in force.
                let command = parse::set_ints("+CNMI", &candidate.values);
                if let Err(error) = self.run(&command).await {
                    warn!(%error, "re-selecting the preferred AT+CNMI failed");
                }
            }
        } else {
            warn!("the modem takes no AT+CNMI variant; new SMS are found by the sweep only");
        }
        report.cnmi = chosen;
        let routes = report.reports() == Reports::Routed || report.notify() == Notify::Routed;
        if routes && report.needs_ack() && !self.probe {
            // A routed message the previous run of smsgate never acknowledged (it was stopped
            // or killed) still holds the modem: refuse it, so the network delivers it again,
            // rather than let the modem's timeout switch routing off a few seconds from now.
            match self.run(&parse::set_ints("+CNMA", &[2])).await {
                Ok(_) => info!(
                    "refused a routed message left unacknowledged; the network sends it again"
                ),
                Err(error) if error.is_fatal() => return Err(error.into()),
                Err(_) => {}
            }
        }
        if report.reports() == Reports::Routed && !report.needs_ack() {
            warn!(
                "status reports are routed and the modem acknowledges them itself (no AT+CSMS=1): \
                 a report that arrives while smsgate is stopped is lost"
            );
        }
        Ok(())
    }

    /// Registration, operator, signal and SMSC (none of them blocks initialisation: SMS may
    /// arrive once the network comes, and the health refresh keeps asking).
    async fn network(&self, report: &mut InitReport) -> Result<(), ModemError> {
        // `+CREG: <stat>` whenever registration changes (TS 27.007 §7.2), so a modem that finds
        // the network after power-on is used at once, not at the next health refresh.
        if let Err(error) = self.run("AT+CREG=1").await {
            debug!(%error, "AT+CREG=1 refused; registration is polled");
        }
        // `+CLIP: "<number>",<type>` after each `RING` (TS 27.007 §7.6), so a missed call
        // names its caller.
        if let Err(error) = self.run("AT+CLIP=1").await {
            debug!(%error, "AT+CLIP=1 refused; calls are seen without the caller's number");
        }
        refresh_network(self.at, self.options.command_timeout, report).await?;
        if let Ok(response) = self.run("AT+CSCA?").await {
            report.smsc = response.lines.iter().find_map(|line| parse::smsc(line));
        }
        if let Err(error) = self.run("AT+COPS=3,0").await {
            debug!(%error, "AT+COPS=3,0 refused; operator names may be numeric");
        }
        if let Ok(response) = self.run("AT+COPS?").await {
            report.operator = response.lines.iter().find_map(|line| parse::operator(line));
        }
        Ok(())
    }
}

/// Registration (`+CREG`, then `+CEREG` and `+CGREG` for LTE-only and data-only modems) and
/// signal. A port failure is returned; refused commands are skipped.
pub(crate) async fn refresh_network(
    at: &AtHandle,
    timeout: Duration,
    report: &mut InitReport,
) -> Result<(), ModemError> {
    let mut best: Option<u8> = None;
    for (command, prefix) in [
        ("AT+CREG?", "+CREG:"),
        ("AT+CEREG?", "+CEREG:"),
        ("AT+CGREG?", "+CGREG:"),
    ] {
        match at.run(Command::new(command).timeout(timeout)).await {
            Ok(response) => {
                let stat = response
                    .lines
                    .iter()
                    .filter(|line| line.starts_with(prefix))
                    .find_map(|line| parse::registration(line, true));
                if let Some(stat) = stat {
                    if parse::is_registered(stat) {
                        best = Some(stat);
                        break;
                    }
                    best = best.or(Some(stat));
                }
            }
            Err(error) if error.is_fatal() => return Err(error.into()),
            Err(AtError::Timeout { .. }) => {
                return Err(ModemError::At(AtError::Timeout {
                    command: command.into(),
                    timeout,
                }));
            }
            Err(_) => {}
        }
    }
    report.registration = best;
    report.registered = best.is_some_and(parse::is_registered);
    match at.run(Command::new("AT+CSQ").timeout(timeout)).await {
        Ok(response) => {
            report.signal_dbm = response
                .lines
                .iter()
                .find_map(|line| parse::signal_dbm(line));
        }
        Err(error) if error.is_fatal() => return Err(error.into()),
        Err(_) => {}
    }
    Ok(())
}

/// Opens the port, runs every initialisation step once, and reports what it found; for
/// `smsgate doctor`. The error, if any, is what stopped the steps.
pub async fn probe(options: &ModemOptions) -> (InitReport, Option<ModemError>) {
    let mut report = InitReport::default();
    let tuning = Tuning::default();
    let (at, _urcs) = match connection::open(options, &tuning).await {
        Ok(opened) => opened,
        Err(error) => return (report, Some(error)),
    };
    let initialiser = Initialiser {
        at: &at,
        options,
        tuning: &tuning,
        pin_allowed: true,
        probe: true,
    };
    let result = initialiser.initialise(&mut report).await;
    if result.is_ok() {
        let command = Command::new("AT+CMMS=2").timeout(options.command_timeout);
        report.cmms = Some(at.run(command).await.is_ok());
    }
    (report, result.err())
}
