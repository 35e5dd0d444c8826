//! A simulated GSM modem on a pseudo-terminal, for tests, `smsgate demo` and `smsgate sim`.
//!
//! A client opens [`SimHandle::path`] exactly as it opens `/dev/ttyUSB2` and speaks AT to it:
//! echo, identity, SIM PIN, PDU-mode SMS (`AT+CMGS`, `AT+CMGR`, `AT+CMGL`, `AT+CMGD`, `+CMTI`/`+CMT`,
//! `+CDS`/`+CDSI`), registration and signal, USSD (`AT+CUSD`) and incoming calls (`RING`,
//! `+CLIP`, `AT+CHUP`/`ATH`). Behind it a pretend network accepts submitted parts (with a delay,
//! a TP-MR, and a status report when asked for), delivers SMS injected through the handle,
//! answers USSD codes with configured texts and places calls that ring until hung up; like a
//! service centre it keeps a status report the modem could not take (away, out of service,
//! refused or not acknowledged with `AT+CNMA`) and tries again later. Realism
//! switches reproduce what real modems do to their drivers: a slow serial line,
//! `+CMS ERROR`s, no registration, a full SIM, vendor URC noise, a hang, an unplug after
//! which a new pty appears at the same link path, and the framing and coding [`Quirks`] of real
//! devices and networks (a quote after a PDU, a space for a line end, no `OK` after `+CPIN`,
//! non-BCD time stamps …).
//!
//! Layout: [`pty`] (the pty pair and its link), [`line`] (pacing at a baud rate), [`command`]
//! (V.250 command line parsing), [`interpreter`] (the AT state machine, no I/O), [`storage`] (SIM
//! storage), [`network`] (the SMS centre and noise), [`ussd`] (the USSD service and how modems
//! print its answers), [`quirk`] (framing and coding quirks),
//! `port` (the workers that move bytes across
//! the pty at the line's pace), `device` (the task that ties them together) and this file
//! (options and the control API).
//!
//! It is not a conformance reference: it implements what smsgate and common SMS tools use, and
//! answers `ERROR` to the rest, as a modem does for a command it lacks.

mod command;
mod device;
mod error_text;
pub mod interpreter;
pub(crate) mod line;
pub(crate) mod network;
mod port;
pub(crate) mod pty;
pub(crate) mod quirk;
pub(crate) mod storage;
pub(crate) mod ussd;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::pdu::{self, PduError};

pub use interpreter::{CallEnd, CallRecord};
pub use quirk::{Quirk, Quirks};
pub use storage::{Entry, Memory, Status};
pub use ussd::UssdEncoding;

/// How the modem announces a new SMS: which `AT+CNMI` `<mt>` it supports besides 0 (store
/// silently). A modem that lacks the driver's first choice makes it fall back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyMode {
    /// Store and notify with `+CMTI: "SM",<index>` (`<mt>`=1).
    #[default]
    Cmti,
    /// Route directly with `+CMT: ,<length>` and the PDU (`<mt>`=2), acknowledged with
    /// `AT+CNMA` after `AT+CSMS=1`.
    Cmt,
}

/// How the modem hands over status reports: which `AT+CNMI` `<ds>` it supports besides 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportMode {
    /// Routed: `+CDS: <length>` and the PDU (`<ds>`=1).
    #[default]
    Cds,
    /// Stored in `"SR"` and announced with `+CDSI: "SR",<index>` (`<ds>`=2).
    Cdsi,
}

/// Everything the simulated modem can be told at start.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// A stable symlink to the pty slave, kept across unplugs (like `/dev/serial/by-id/…`).
    pub link: Option<PathBuf>,
    /// Serial line speed: bytes are paced at `baud / 10` per second in each direction (8N1).
    /// `None` = as fast as possible.
    pub baud: Option<u32>,
    /// Echo at power-on (`ATE1`).
    pub echo: bool,
    /// SIM PIN; `Some` locks the SIM at power-on.
    pub pin: Option<String>,
    /// The PUK that unlocks the SIM after three wrong PINs.
    pub puk: String,
    /// Start with the SIM asking for its PUK.
    pub puk_locked: bool,
    /// New-SMS indication the modem supports.
    pub notify: NotifyMode,
    /// Status report routing the modem supports.
    pub reports: ReportMode,
    /// Time from a part's acceptance to its status report.
    pub report_delay: Duration,
    /// TP-ST of generated status reports (TS 23.040 §9.2.3.15): 0 delivered, 0x20–0x3F still
    /// trying, 0x40 and above failed.
    pub report_status: u8,
    /// Time the network takes to answer each submitted part.
    pub network_delay: Duration,
    /// Plus a random `0..network_delay_jitter` per part (a real network's answer time varies).
    pub network_delay_jitter: Duration,
    /// SIM storage slots.
    pub capacity: usize,
    /// The first storage index (1 on most modems, 0 on some).
    pub first_index: u32,
    /// Emit vendor URCs (`^RSSI`, `^BOOT`, `RING`, `+CREG`) at random moments, including between
    /// a command and its reply and between the `> ` prompt and `+CMGS:`.
    pub urc_noise: bool,
    /// Mean time between noise URCs.
    pub noise_interval: Duration,
    /// Registered with the network at start.
    pub registered: bool,
    /// SIM storage acts full from the start (see [`SimHandle::set_storage_full`]).
    pub storage_full: bool,
    /// Answer every `AT+CMGS` with `+CMS ERROR: <code>` (see
    /// [`SimHandle::set_cms_error_always`]).
    pub cms_error: Option<u16>,
    /// Start hung (see [`SimHandle::set_hang`]).
    pub hang: bool,
    /// How long a routed `+CMT`/`+CDS` waits for `AT+CNMA` before routing is switched off.
    pub ack_timeout: Duration,
    /// How long the network waits before it tries again to deliver a status report (or a
    /// refused SMS) it could not hand over: the modem away or out of service, `"SR"` full, the
    /// report refused with `AT+CNMA=2` or never acknowledged. Service centres wait minutes.
    pub network_retry: Duration,
    /// How long the modem takes to register after it powers on again (an unplug, a reset);
    /// meanwhile nothing reaches it. Zero: at once.
    pub attach_time: Duration,
    /// How long the modem is gone after `AT+CFUN=1,1`.
    pub restart_time: Duration,
    /// The SMS centre number (`AT+CSCA?`).
    pub smsc: String,
    /// The operator name (`AT+COPS?`).
    pub operator: String,
    /// Signal, as `AT+CSQ` `<rssi>` 0–31.
    pub rssi: u8,
    /// Seed for the noise; `None` = random.
    pub seed: Option<u64>,
    /// Framing and coding quirks of real devices (see [`SimHandle::set_quirk`]).
    pub quirks: Quirks,
    /// The network's USSD answers, by code (`("*100#", "Your balance is 12.50 USD")`); other
    /// codes are answered `+CUSD: 4`.
    pub ussd: Vec<(String, String)>,
    /// Codes among `ussd` the network answers with a menu (`+CUSD: 1,…`): the session stays
    /// open, refusing other requests (`+CME ERROR: 3`), until `AT+CUSD=2`.
    pub ussd_menus: Vec<String>,
    /// How the modem prints `+CUSD` answers (see [`UssdEncoding`]).
    pub ussd_encoding: UssdEncoding,
    /// Time the network takes to answer a USSD request.
    pub ussd_delay: Duration,
    /// Time between two `RING`s of an incoming call.
    pub ring_interval: Duration,
    /// The signal wanders a step or two around `rssi` every few seconds, as a real one does.
    pub signal_drift: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            link: None,
            baud: None,
            echo: true,
            pin: None,
            puk: "12345678".to_string(),
            puk_locked: false,
            notify: NotifyMode::Cmti,
            reports: ReportMode::Cds,
            report_delay: Duration::ZERO,
            report_status: 0,
            network_delay: Duration::ZERO,
            network_delay_jitter: Duration::ZERO,
            capacity: 30,
            first_index: 1,
            urc_noise: false,
            noise_interval: Duration::from_secs(2),
            registered: true,
            storage_full: false,
            cms_error: None,
            hang: false,
            ack_timeout: Duration::from_secs(15),
            network_retry: Duration::from_secs(60),
            attach_time: Duration::ZERO,
            restart_time: Duration::from_secs(1),
            smsc: "+60120000015".to_string(),
            operator: "smsgate sim".to_string(),
            rssi: 20,
            seed: None,
            quirks: Quirks::default(),
            ussd: vec![(
                "*100#".to_string(),
                "Your balance is 12.50 USD. Valid until 31-12-2026.".to_string(),
            )],
            ussd_menus: Vec::new(),
            ussd_encoding: UssdEncoding::Text,
            ussd_delay: Duration::from_millis(800),
            ring_interval: Duration::from_secs(3),
            signal_drift: false,
        }
    }
}

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The simulator has shut down.
    #[error("the simulated modem has stopped")]
    Stopped,
    /// The SMS cannot be encoded (bad sender number, text too long …).
    #[error("cannot encode the SMS: {0}")]
    Encode(#[from] PduError),
    /// Not a PDU in hex.
    #[error("not a PDU in hex (with its SMSC field in front): {0}")]
    InvalidPdu(String),
    /// No submitted part has this TP-MR, so there is no recipient for its report.
    #[error("no submitted part has TP-MR {0}")]
    UnknownReference(u8),
    /// A call cannot reach the modem now.
    #[error(
        "the call cannot reach the modem: it is not registered (or unplugged), or another call \
         is ringing"
    )]
    Unreachable,
    /// Not a caller's number.
    #[error("not a caller's number: {0}")]
    InvalidNumber(String),
}

/// A part the client submitted and the network accepted (`+CMGS: <mr>`).
#[derive(Debug, Clone)]
pub struct SubmittedPdu {
    /// The PDU as sent (SMSC field in front), upper-case hex.
    pub pdu_hex: String,
    /// The PDU decoded; its `message_reference` is the TP-MR the modem assigned.
    pub submit: pdu::Submit,
    /// The TP-MR answered with `+CMGS:`.
    pub mr: u8,
    /// When the network accepted it.
    pub at: Instant,
}

/// Byte counts on the line, for throughput figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Bytes the client wrote to the modem.
    pub bytes_in: u64,
    /// Bytes the modem wrote to the client.
    pub bytes_out: u64,
}

/// Requests from the handle to the device task.
#[derive(Debug)]
pub(crate) enum Control {
    InjectSms {
        from: String,
        text: String,
        reply: oneshot::Sender<Result<(), SimError>>,
    },
    InjectPdu {
        pdu: Vec<u8>,
    },
    InjectReport {
        mr: u8,
        status: u8,
        recipient: Option<pdu::Address>,
        reply: oneshot::Sender<Result<(), SimError>>,
    },
    Submitted(oneshot::Sender<Vec<SubmittedPdu>>),
    CmsError(Option<u16>),
    CmsErrorAlways(Option<u16>),
    Hang(bool),
    HoldSubmits(bool),
    Quirk(Quirk, bool),
    Unplug(Duration, oneshot::Sender<()>),
    Registered(bool),
    StorageFull(bool),
    Noise(bool),
    NetworkDelay(Duration),
    ReportDelay(Duration),
    ReportStatus(u8),
    Stored(oneshot::Sender<Vec<Entry>>),
    StoredReports(oneshot::Sender<Vec<Entry>>),
    HeldForRetry(oneshot::Sender<usize>),
    Submitting(oneshot::Sender<bool>),
    Connected(oneshot::Sender<bool>),
    UssdAnswer(String, Option<String>),
    UssdEncoding(UssdEncoding),
    UssdRequests(oneshot::Sender<Vec<String>>),
    Call {
        number: Option<String>,
        rings: u32,
        reply: oneshot::Sender<Result<(), SimError>>,
    },
    Calls(oneshot::Sender<Vec<CallRecord>>),
    Rssi(u8),
    Shutdown(oneshot::Sender<()>),
}

/// The cheap, cloneable handle to a running simulated modem.
#[derive(Clone, Debug)]
pub struct SimHandle {
    control: mpsc::Sender<Control>,
    path: Arc<Mutex<PathBuf>>,
    stats: Arc<port::Counters>,
}

/// Starts a simulated modem on a new pty; it runs until [`SimHandle::shutdown`] or until every
/// handle is dropped.
pub async fn spawn(options: SimOptions) -> std::io::Result<SimHandle> {
    device::spawn(options).await
}

impl SimHandle {
    /// What a client opens: the link if one was asked for, else the current pty slave (which
    /// changes after an unplug).
    pub fn path(&self) -> PathBuf {
        port::lock(&self.path).clone()
    }

    /// Delivers an SMS from `from` (`+E.164`, national digits or an alphanumeric name) with
    /// `text`, split into concatenated parts when long.
    pub async fn inject_sms(&self, from: &str, text: &str) -> Result<(), SimError> {
        let (reply, answer) = oneshot::channel();
        self.send(Control::InjectSms {
            from: from.to_string(),
            text: text.to_string(),
            reply,
        })
        .await?;
        answer.await.map_err(|_| SimError::Stopped)?
    }

    /// Delivers a raw SMS-DELIVER given in hex with its SMSC field in front. It is not checked
    /// beyond that, so malformed PDUs reach the client as they are.
    pub async fn inject_pdu(&self, pdu_hex: &str) -> Result<(), SimError> {
        let pdu = pdu::hex_to_bytes(pdu_hex)
            .ok()
            .filter(|bytes| interpreter::tpdu_length(bytes).is_some())
            .ok_or_else(|| SimError::InvalidPdu(pdu_hex.to_string()))?;
        self.send(Control::InjectPdu { pdu }).await
    }

    /// Sends a status report with TP-ST `status` for the last submitted part with TP-MR `mr`
    /// (its recipient is taken from that part).
    pub async fn inject_status_report(&self, mr: u8, status: u8) -> Result<(), SimError> {
        self.report(mr, status, None).await
    }

    /// Sends a status report for TP-MR `mr` naming `recipient`, whether or not such a part was
    /// submitted (to test how a client treats reports it cannot pair).
    pub async fn inject_status_report_to(
        &self,
        mr: u8,
        recipient: &str,
        status: u8,
    ) -> Result<(), SimError> {
        let recipient = pdu::Address::parse(recipient)?;
        self.report(mr, status, Some(recipient)).await
    }

    async fn report(
        &self,
        mr: u8,
        status: u8,
        recipient: Option<pdu::Address>,
    ) -> Result<(), SimError> {
        let (reply, answer) = oneshot::channel();
        self.send(Control::InjectReport {
            mr,
            status,
            recipient,
            reply,
        })
        .await?;
        answer.await.map_err(|_| SimError::Stopped)?
    }

    /// Every part the network accepted, in order, decoded.
    pub async fn submitted(&self) -> Vec<SubmittedPdu> {
        self.ask(Control::Submitted).await.unwrap_or_default()
    }

    /// The next `AT+CMGS` is answered with `+CMS ERROR: code` (once per call: calls queue);
    /// `None` clears queued and standing errors.
    pub async fn set_cms_error(&self, code: Option<u16>) {
        let _ = self.send(Control::CmsError(code)).await;
    }

    /// Every `AT+CMGS` is answered with `+CMS ERROR: code` until `None`.
    pub async fn set_cms_error_always(&self, code: Option<u16>) {
        let _ = self.send(Control::CmsErrorAlways(code)).await;
    }

    /// A hung modem reads and forgets everything and answers nothing, until cleared.
    pub async fn set_hang(&self, on: bool) {
        let _ = self.send(Control::Hang(on)).await;
    }

    /// While on, the network takes as long as it takes with each submitted part: its `+CMGS:`
    /// answer waits (after the network delay) until this is switched off again, as on a real
    /// modem whose network is slow to accept. Off answers a held part at once (or when its
    /// network delay is over) and lets later parts go as usual. A test acts on the modem
    /// during a send with this: nothing can be answered before it has done so.
    pub async fn hold_submits(&self, on: bool) {
        let _ = self.send(Control::HoldSubmits(on)).await;
    }

    /// Switches one of the framing and coding quirks of real devices on or off (see
    /// [`Quirks`]); it applies from the next reply, or the next SMS from the network.
    pub async fn set_quirk(&self, quirk: Quirk, on: bool) {
        let _ = self.send(Control::Quirk(quirk, on)).await;
    }

    /// Closes the pty (the client's port breaks, the link goes) and opens a new one at the same
    /// link after `for_`. Returns once the old pty is closed. The modem restarts: settings back
    /// to defaults, the SIM locked again if it has a PIN; SIM storage stays.
    pub async fn unplug(&self, for_: Duration) {
        let _ = self.ask(|reply| Control::Unplug(for_, reply)).await;
    }

    /// Whether the modem finds a network (`+CREG: 0,1`) or keeps searching (`+CREG: 0,2`,
    /// submits fail with `+CMS ERROR: 331`, incoming SMS wait at the network).
    pub async fn set_registered(&self, on: bool) {
        let _ = self.send(Control::Registered(on)).await;
    }

    /// Whether SIM storage acts full: incoming SMS wait at the network (no `+CMTI`),
    /// `AT+CMGW` answers `+CMS ERROR: 322`, `AT+CPMS` shows every slot used.
    pub async fn set_storage_full(&self, on: bool) {
        let _ = self.send(Control::StorageFull(on)).await;
    }

    /// Switches vendor URC noise on or off.
    pub async fn set_noise(&self, on: bool) {
        let _ = self.send(Control::Noise(on)).await;
    }

    /// Sets the network's answer time for each submitted part.
    pub async fn set_network_delay(&self, delay: Duration) {
        let _ = self.send(Control::NetworkDelay(delay)).await;
    }

    /// Sets the delay of generated status reports.
    pub async fn set_report_delay(&self, delay: Duration) {
        let _ = self.send(Control::ReportDelay(delay)).await;
    }

    /// Sets the TP-ST of generated status reports.
    pub async fn set_report_status(&self, status: u8) {
        let _ = self.send(Control::ReportStatus(status)).await;
    }

    /// How many SMS are in SIM storage (`"SM"`).
    pub async fn stored_count(&self) -> usize {
        self.stored().await.len()
    }

    /// The SMS in SIM storage, in index order.
    pub async fn stored(&self) -> Vec<Entry> {
        self.ask(Control::Stored).await.unwrap_or_default()
    }

    /// The status reports in `"SR"` storage, in index order.
    pub async fn stored_reports(&self) -> Vec<Entry> {
        self.ask(Control::StoredReports).await.unwrap_or_default()
    }

    /// How many status reports (and refused SMS) the network keeps for its next retry.
    pub async fn held_for_retry(&self) -> usize {
        self.ask(Control::HeldForRetry).await.unwrap_or(0)
    }

    /// Whether a submitted part is with the network now (after Ctrl-Z, before `+CMGS:`).
    pub async fn submitting(&self) -> bool {
        self.ask(Control::Submitting).await.unwrap_or(false)
    }

    /// Whether a client has the port open (opens and closes of the pty, as inotify reports them).
    pub async fn connected(&self) -> bool {
        self.ask(Control::Connected).await.unwrap_or(false)
    }

    /// Bytes carried so far in each direction.
    pub fn line_stats(&self) -> LineStats {
        self.stats.snapshot()
    }

    /// The idle time on the line after each `+CMGS` answer: from its last byte leaving the
    /// modem (at the line's pace) to the client's next byte. A driver that sends parts back to
    /// back shows here how quickly it follows one answer with the next `AT+CMGS`.
    pub fn send_gaps(&self) -> Vec<Duration> {
        self.stats.send_gaps()
    }

    /// Sets (`Some`) or removes (`None`) the network's USSD answer for `code`.
    pub async fn set_ussd_answer(&self, code: &str, answer: Option<&str>) {
        let _ = self
            .send(Control::UssdAnswer(
                code.to_string(),
                answer.map(str::to_string),
            ))
            .await;
    }

    /// How the modem prints `+CUSD` answers from now on.
    pub async fn set_ussd_encoding(&self, encoding: UssdEncoding) {
        let _ = self.send(Control::UssdEncoding(encoding)).await;
    }

    /// Every USSD code the client asked for, in order (a packed-hex request decoded).
    pub async fn ussd_requests(&self) -> Vec<String> {
        self.ask(Control::UssdRequests).await.unwrap_or_default()
    }

    /// A call from `number` (`None`: withheld) rings `rings` times, every
    /// [`SimOptions::ring_interval`], with `+CLIP` after each `RING` when the client asked
    /// (`AT+CLIP=1`), until the client hangs up (`AT+CHUP`, `ATH`) or the caller gives up
    /// (`NO CARRIER`).
    pub async fn call(&self, number: Option<&str>, rings: u32) -> Result<(), SimError> {
        if let Some(number) = number {
            let digits = number.strip_prefix('+').unwrap_or(number);
            if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(SimError::InvalidNumber(number.to_string()));
            }
        }
        let (reply, answer) = oneshot::channel();
        self.send(Control::Call {
            number: number.map(str::to_string),
            rings,
            reply,
        })
        .await?;
        answer.await.map_err(|_| SimError::Stopped)?
    }

    /// Sets the signal `AT+CSQ` reports from now on (`<rssi>` 0–31; 20 is -73 dBm).
    pub async fn set_rssi(&self, rssi: u8) {
        let _ = self.send(Control::Rssi(rssi)).await;
    }

    /// Every call placed so far, with how it ended.
    pub async fn calls(&self) -> Vec<CallRecord> {
        self.ask(Control::Calls).await.unwrap_or_default()
    }

    /// Stops the simulator: the pty closes and the link goes. Other handles then get
    /// [`SimError::Stopped`].
    pub async fn shutdown(&self) {
        let _ = self.ask(Control::Shutdown).await;
    }

    async fn send(&self, control: Control) -> Result<(), SimError> {
        self.control
            .send(control)
            .await
            .map_err(|_| SimError::Stopped)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Control) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply)).await.ok()?;
        answer.await.ok()
    }
}
