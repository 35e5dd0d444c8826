//! The AT command interpreter of the simulated modem: bytes from the DTE in, [`Effect`]s out.
//!
//! It is a plain state machine with no clock and no I/O, so every exchange can be tested by
//! feeding bytes: echo, command lines (V.250), the `> ` prompt and PDU input of `AT+CMGS` /
//! `AT+CMGW` (TS 27.005 §3.5.1, §3.5.3), SIM storage commands, `+CNMI` routing of incoming SMS and
//! status reports (TS 27.005 §3.4.1) with `+CNMA` acknowledgement, registration and SIM PIN,
//! USSD (`AT+CUSD`, TS 27.007 §7.15) and incoming calls (`RING`, `+CLIP` after `AT+CLIP=1`,
//! TS 27.007 §7.6; hung up with `AT+CHUP` or `ATH`).
//! Time-related behaviour (network delay, acknowledgement timeout, the network's retries,
//! restart, the network's USSD answer, the next ring) is asked of the caller through
//! [`Effect`]s; the caller answers with [`Interpreter::finish_submit`],
//! [`Interpreter::ack_timeout`], [`Interpreter::retry_held`], [`Interpreter::ussd_answer`],
//! [`Interpreter::ring`] and friends.

use std::collections::VecDeque;

use super::command::{self, Arg, Call, Command};
use super::error_text;
use super::storage::{Memory, SimStorage, Status};
use super::ussd::{self, Answers, UssdEncoding};
use super::{NotifyMode, Quirks, ReportMode};
use crate::pdu;

/// Input beyond this many bytes without a line end is dropped, as a modem's line buffer would.
const MAX_LINE: usize = 1024;
/// The longest PDU (hex characters) accepted after the prompt: SMSC (12 octets) + 164-octet TPDU.
const MAX_PDU_HEX: usize = 2 * (12 + 164);
/// Ctrl-Z ends PDU input and sends (TS 27.005 §3.5.1).
const CTRL_Z: u8 = 0x1A;
/// ESC cancels PDU input (TS 27.005 §3.5.1).
const ESC: u8 = 0x1B;
/// Wrong PIN entries before the SIM asks for the PUK (TS 31.101 / common SIM behaviour).
const PIN_ATTEMPTS: u8 = 3;
/// Wrong PUK entries before the SIM is blocked for good.
const PUK_ATTEMPTS: u8 = 10;

/// What this modem is and supports; fixed for its lifetime.
#[derive(Debug, Clone)]
pub struct Profile {
    /// `AT+CGMI`.
    pub manufacturer: String,
    /// `AT+CGMM`.
    pub model: String,
    /// `AT+CGMR`.
    pub revision: String,
    /// `AT+CGSN`.
    pub imei: String,
    /// `AT+CIMI`.
    pub imsi: String,
    /// Echo after power-on (`ATE1`).
    pub echo: bool,
    /// Which new-message indication the modem supports besides storing silently.
    pub notify: NotifyMode,
    /// Which status report routing the modem supports besides none.
    pub reports: ReportMode,
    /// `+CPMS` storage size.
    pub capacity: usize,
    /// The first storage index (most modems 1, some 0).
    pub first_index: u32,
    /// `AT+CSCA?` answer, and the SMSC of delivered messages.
    pub smsc: String,
    /// `AT+COPS?` operator name.
    pub operator: String,
    /// `AT+CSQ` received signal strength indication, 0–31 (TS 27.007 §8.5).
    pub rssi: u8,
}

/// What the interpreter asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Bytes for the DTE.
    Output(Vec<u8>),
    /// The DTE submitted a part; the network takes its time. Call
    /// [`Interpreter::finish_submit`] after the network delay; input meanwhile is held.
    Submitted(Box<Submission>),
    /// A routed `+CMT`/`+CDS` waits for `AT+CNMA`; call [`Interpreter::ack_timeout`] with this
    /// number when the network stops waiting.
    AwaitAck(u64),
    /// `AT+CFUN=1,1`: the modem restarts (a USB modem leaves the bus and comes back).
    Restart,
    /// The output before this completes the answer to a submit (`+CMGS: <mr>` and `OK`, or the
    /// error).
    SubmitAnswered,
    /// A USSD request went to the network: call [`Interpreter::ussd_answer`] with this number
    /// when the network's answer is due.
    UssdRequested(u64),
    /// A call is ringing: call [`Interpreter::ring`] with this number when the next ring is due.
    Ring(u64),
    /// The network kept an SMS or status report it could not hand over (no service, refused
    /// with `AT+CNMA=2`, no `AT+CNMA` in time, no room in `"SR"`); call
    /// [`Interpreter::retry_held`] after the network's retry interval.
    RetryLater,
    /// The modem powered on and looks for the network; call [`Interpreter::attached`] when it
    /// has registered (only with [`Interpreter::set_attach_delayed`]).
    Attaching,
}

/// How a simulated incoming call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The DTE hung up, with this command (`AT+CHUP` or `ATH`).
    HungUp(&'static str),
    /// The caller gave up after the last ring (`NO CARRIER`).
    GaveUp,
    /// The modem lost power or restarted while it rang.
    Lost,
}

/// One incoming call, as the simulated network placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The caller's number; `None` when withheld.
    pub number: Option<String>,
    /// `RING`s sent so far.
    pub rings: u32,
    /// `None` while it rings.
    pub end: Option<CallEnd>,
}

/// The call ringing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ringing {
    id: u64,
    rings_left: u32,
    /// Index into `calls`.
    record: usize,
}

/// A part the DTE submitted with `AT+CMGS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The PDU as the DTE sent it (SMSC field in front).
    pub pdu: Vec<u8>,
    /// Decoded, when it decodes as an SMS-SUBMIT.
    pub submit: Option<pdu::Submit>,
    /// The answer the network will give: TP-MR, or a `+CMS ERROR` code.
    pub result: Result<u8, u16>,
}

/// The PIN state of the SIM (TS 27.007 §8.3 `+CPIN`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lock {
    Ready,
    Pin { attempts: u8 },
    Puk { attempts: u8 },
    Blocked,
}

/// The SIM card: its lock survives a modem restart (only "unlocked" does not).
#[derive(Debug, Clone)]
struct Card {
    pin: Option<String>,
    puk: String,
    pin_attempts: u8,
    puk_attempts: u8,
    puk_required: bool,
}

/// `+CNMI` settings (TS 27.005 §3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cnmi {
    mode: u32,
    mt: u32,
    bm: u32,
    ds: u32,
    bfr: u32,
}

/// What the interpreter is doing with input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Reading a command line.
    Command,
    /// After the `> ` prompt: reading a PDU until Ctrl-Z.
    Pdu {
        purpose: PduPurpose,
        length: usize,
        hex: String,
    },
    /// Waiting for the network's answer to a submit; input is held until it comes.
    Submitting(Result<u8, u16>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PduPurpose {
    Send,
    Write(Status),
}

/// A routed SMS or status report waiting for its turn or its `+CNMA`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Routed {
    Sms(Vec<u8>),
    Report(Vec<u8>),
}

/// Why a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// Plain `ERROR`.
    Error,
    /// `+CME ERROR: n` (TS 27.007).
    Cme(u16),
    /// `+CMS ERROR: n` (TS 27.005).
    Cms(u16),
}

/// What a command wants after its information lines.
enum Next {
    Continue,
    Prompt(PduPurpose, usize),
    Restart,
}

type Outcome = Result<Next, Fail>;

/// The simulated modem's command interpreter and SMS state.
#[derive(Debug)]
pub struct Interpreter {
    profile: Profile,
    /// The SIM's storage; survives restarts.
    storage: SimStorage,
    card: Card,
    // Switches set from outside.
    network_available: bool,
    storage_full: bool,
    cms_once: VecDeque<u16>,
    cms_always: Option<u16>,
    /// Registration takes a while after power-on (see [`Effect::Attaching`]).
    attach_delayed: bool,
    quirks: Quirks,
    // Volatile state, reset at power-on.
    powered: bool,
    /// Registered with the network since power-on (at once unless `attach_delayed`).
    attached: bool,
    unlocked: bool,
    echo: bool,
    cmee: u32,
    csms: u32,
    cscs: String,
    cmms: u32,
    cfun: u32,
    cnmi: Cnmi,
    read_memory: Memory,
    reg_n: [u32; 3],
    reported_registration: u8,
    mode: Mode,
    line: Vec<u8>,
    held_input: VecDeque<u8>,
    /// The routed URC awaiting `+CNMA`, by number, and those queued behind it.
    awaiting_ack: Option<(u64, Routed)>,
    routed_queue: VecDeque<Routed>,
    ack_counter: u64,
    /// SMS the network holds back (no room, no service) and delivers later.
    network_queue: VecDeque<Vec<u8>>,
    /// What the network keeps for its next retry (see [`Effect::RetryLater`]), and whether
    /// that retry was asked for already.
    held: VecDeque<Routed>,
    retry_asked: bool,
    /// The command line being executed answered without its final result (a quirk).
    omit_final: bool,
    /// Effects a command asks for, handed out after its final result.
    deferred: Vec<Effect>,
    // USSD: the network's answers survive restarts; the presentation switch (`AT+CUSD=1`)
    // and a request in flight do not.
    ussd_answers: Answers,
    ussd_encoding: UssdEncoding,
    ussd_requests: Vec<String>,
    ussd_pending: Option<(u64, String)>,
    ussd_counter: u64,
    cusd_n: u32,
    /// Codes the network answers with a menu (`<m>` = 1: it waits for a reply).
    ussd_menus: std::collections::HashSet<String>,
    /// A menu waits for a reply: the session stays open until `AT+CUSD=2`.
    menu_open: bool,
    // Calls: `AT+CLIP=1` is volatile; the log is the network's.
    clip: u32,
    ringing: Option<Ringing>,
    call_counter: u64,
    calls: Vec<CallRecord>,
}

impl Interpreter {
    /// A modem fresh from power-on with an empty SIM. `pin` locks the SIM; `puk_locked` starts
    /// it asking for the PUK.
    pub fn new(profile: Profile, pin: Option<String>, puk: String, puk_locked: bool) -> Self {
        let storage = SimStorage::new(profile.first_index, profile.capacity);
        let card = Card {
            pin,
            puk,
            pin_attempts: PIN_ATTEMPTS,
            puk_attempts: PUK_ATTEMPTS,
            puk_required: puk_locked,
        };
        let mut interpreter = Interpreter {
            profile,
            storage,
            card,
            network_available: true,
            storage_full: false,
            cms_once: VecDeque::new(),
            cms_always: None,
            attach_delayed: false,
            quirks: Quirks::default(),
            powered: true,
            attached: true,
            unlocked: false,
            echo: true,
            cmee: 0,
            csms: 0,
            cscs: String::new(),
            cmms: 0,
            cfun: 1,
            cnmi: Cnmi {
                mode: 0,
                mt: 0,
                bm: 0,
                ds: 0,
                bfr: 0,
            },
            read_memory: Memory::Sim,
            reg_n: [0; 3],
            reported_registration: 0,
            mode: Mode::Command,
            line: Vec::new(),
            held_input: VecDeque::new(),
            awaiting_ack: None,
            routed_queue: VecDeque::new(),
            ack_counter: 0,
            network_queue: VecDeque::new(),
            held: VecDeque::new(),
            retry_asked: false,
            omit_final: false,
            deferred: Vec::new(),
            ussd_answers: Answers::default(),
            ussd_encoding: UssdEncoding::default(),
            ussd_requests: Vec::new(),
            ussd_pending: None,
            ussd_menus: std::collections::HashSet::new(),
            menu_open: false,
            ussd_counter: 0,
            cusd_n: 0,
            clip: 0,
            ringing: None,
            call_counter: 0,
            calls: Vec::new(),
        };
        drop(interpreter.power_on());
        interpreter
    }

    /// Power-on (and restart): volatile settings back to their defaults, the SIM locked again
    /// if it has a PIN; storage, TP-MR and SMS held by the network stay (and may arrive now).
    pub fn power_on(&mut self) -> Vec<Effect> {
        self.powered = true;
        self.attached = !self.attach_delayed;
        self.unlocked = self.card.pin.is_none() && !self.card.puk_required;
        self.reset_settings();
        self.cfun = 1;
        self.reg_n = [0; 3];
        self.mode = Mode::Command;
        self.line.clear();
        self.held_input.clear();
        let mut out = Vec::new();
        self.cusd_n = 0;
        self.ussd_pending = None;
        self.menu_open = false;
        self.clip = 0;
        self.end_call(CallEnd::Lost);
        // Anything routed but unacknowledged is the network's again (TS 27.005 §3.4.4).
        self.requeue_routed();
        self.reported_registration = self.registration();
        if !self.attached {
            out.push(Effect::Attaching);
        }
        self.settle(&mut out);
        out
    }

    /// Whether registration takes a while after each later power-on (a real modem needs
    /// seconds to find the network; meanwhile nothing can reach it).
    pub fn set_attach_delayed(&mut self, delayed: bool) {
        self.attach_delayed = delayed;
    }

    /// The modem registered after its power-on. The network then delivers at once what it kept
    /// for it (the HLR alerts the service centre, TS 23.040 §3.2.5), not at its next retry.
    pub fn attached(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.powered && !self.attached {
            self.attached = true;
            // `+CREG: 1` first, as the modem says it before anything arrives.
            self.settle(&mut out);
            self.offer_held(&mut out);
        }
        self.settle(&mut out);
        out
    }

    /// Power-off (unplugged): the modem reaches no network until [`Interpreter::power_on`].
    pub fn power_off(&mut self) -> Vec<Effect> {
        self.powered = false;
        self.requeue_routed();
        self.ussd_pending = None;
        self.menu_open = false;
        self.end_call(CallEnd::Lost);
        let mut out = Vec::new();
        self.ask_retry(&mut out);
        out
    }

    /// `ATZ` / `AT&F`: the settings a profile holds, not the SIM or the radio.
    fn reset_settings(&mut self) {
        self.echo = self.profile.echo;
        self.cmee = 0;
        self.csms = 0;
        self.cscs = "GSM".to_string();
        self.cmms = 0;
        // Most modems power up with store-and-notify on (`+CNMI: 2,1,0,0,0`).
        self.cnmi = Cnmi {
            mode: 2,
            mt: match self.profile.notify {
                NotifyMode::Cmti => 1,
                NotifyMode::Cmt => 0,
            },
            bm: 0,
            ds: 0,
            bfr: 0,
        };
        self.read_memory = Memory::Sim;
    }

    /// The SIM's storage.
    pub fn storage(&self) -> &SimStorage {
        &self.storage
    }

    /// The SMSC number this modem reports and stamps on delivered SMS.
    pub fn smsc(&self) -> &str {
        &self.profile.smsc
    }

    /// SMS the network still holds for this modem.
    pub fn held_by_network(&self) -> usize {
        self.network_queue.len()
    }

    /// SMS and status reports the network keeps for its next retry.
    pub fn held_for_retry(&self) -> usize {
        self.held.len()
    }

    /// Feeds bytes from the DTE.
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<Effect> {
        let mut out = Vec::new();
        if matches!(self.mode, Mode::Submitting(_)) {
            self.held_input.extend(bytes);
        } else {
            self.process(bytes, &mut out);
        }
        self.settle(&mut out);
        out
    }

    /// The network answered the submit in flight: prints `+CMGS: <mr>` or the error, then
    /// carries on with input that came meanwhile.
    pub fn finish_submit(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Mode::Submitting(result) = std::mem::replace(&mut self.mode, Mode::Command) {
            match result {
                Ok(mr) => {
                    self.info(&mut out, &[format!("+CMGS: {mr}")]);
                    self.ok(&mut out);
                }
                Err(code) => self.fail(&mut out, Fail::Cms(code)),
            }
            out.push(Effect::SubmitAnswered);
            let held: Vec<u8> = self.held_input.drain(..).collect();
            self.process(&held, &mut out);
        }
        self.settle(&mut out);
        out
    }

    /// An SMS-DELIVER (SMSC field in front) arrives from the network.
    pub fn incoming_sms(&mut self, pdu: Vec<u8>) -> Vec<Effect> {
        let mut out = Vec::new();
        self.network_queue.push_back(pdu);
        self.settle(&mut out);
        out
    }

    /// An SMS-STATUS-REPORT (SMSC field in front) arrives from the network. The modem takes it
    /// when it has service; without routing (`+CNMI` ds=0) it then drops it, as TS 27.005
    /// §3.4.1 says. A modem out of service, or with no room in `"SR"`, cannot take it: the
    /// service centre keeps it and tries again later (TS 23.040 §3.2.5, as for any SMS).
    pub fn incoming_report(&mut self, pdu: Vec<u8>) -> Vec<Effect> {
        let mut out = Vec::new();
        self.take_report(pdu, &mut out);
        self.settle(&mut out);
        out
    }

    fn take_report(&mut self, pdu: Vec<u8>, out: &mut Vec<Effect>) {
        if !self.can_receive() {
            self.hold(Routed::Report(pdu));
            return;
        }
        if self.cnmi.mode == 0 {
            return;
        }
        match self.cnmi.ds {
            1 => self.route(Routed::Report(pdu), out),
            2 => match self
                .storage
                .reports
                .store(Status::ReceivedUnread, pdu.clone())
            {
                Some(index) => self.urc(out, &format!("+CDSI: \"SR\",{index}")),
                None => self.hold(Routed::Report(pdu)),
            },
            _ => {}
        }
    }

    /// The network's retry: what it kept is offered again.
    pub fn retry_held(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        self.retry_asked = false;
        self.offer_held(&mut out);
        self.settle(&mut out);
        out
    }

    /// Offers again what the network kept: status reports as new arrivals, SMS behind those
    /// it already holds.
    fn offer_held(&mut self, out: &mut Vec<Effect>) {
        let held: Vec<Routed> = self.held.drain(..).collect();
        for routed in held {
            match routed {
                Routed::Report(pdu) => self.take_report(pdu, out),
                Routed::Sms(pdu) => self.network_queue.push_back(pdu),
            }
        }
    }

    /// Keeps `routed` at the network for its next retry ([`Self::settle`] asks for it).
    fn hold(&mut self, routed: Routed) {
        self.held.push_back(routed);
    }

    /// The network stopped waiting for `+CNMA` for routed URC `number`: per TS 27.005 §3.4.4
    /// routing is switched off (`+CNMI` mt and ds to 0) and the network keeps the SMS, which it
    /// delivers again (now to storage), and the status report, which it tries again later.
    pub fn ack_timeout(&mut self, number: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        if self
            .awaiting_ack
            .as_ref()
            .is_some_and(|(waiting, _)| *waiting == number)
        {
            self.cnmi.mt = 0;
            self.cnmi.ds = 0;
            self.requeue_routed();
        }
        self.settle(&mut out);
        out
    }

    /// Whether the modem can reach the network.
    pub fn set_network(&mut self, available: bool) -> Vec<Effect> {
        self.network_available = available;
        let mut out = Vec::new();
        self.settle(&mut out);
        out
    }

    /// Whether SIM storage acts full.
    pub fn set_storage_full(&mut self, full: bool) -> Vec<Effect> {
        self.storage_full = full;
        let mut out = Vec::new();
        self.settle(&mut out);
        out
    }

    /// Queues `+CMS ERROR: code` as the network's answer to the next submit.
    pub fn push_cms_error(&mut self, code: u16) {
        self.cms_once.push_back(code);
    }

    /// Answers every submit with `+CMS ERROR: code` until cleared with `None`.
    pub fn set_cms_error_always(&mut self, code: Option<u16>) {
        self.cms_always = code;
    }

    /// The framing quirks in force (see [`Quirks`]).
    pub fn set_quirks(&mut self, quirks: Quirks) {
        self.quirks = quirks;
    }

    /// The framing quirks in force.
    pub fn quirks(&self) -> Quirks {
        self.quirks
    }

    /// Sets (`Some`) or removes (`None`) the network's USSD answer for `code`.
    pub fn set_ussd_answer(&mut self, code: &str, answer: Option<String>) {
        self.ussd_answers.set(code, answer);
    }

    /// Whether the network answers `code` with a menu (`+CUSD: 1,…`), which keeps the session
    /// open until the DTE ends it with `AT+CUSD=2`.
    pub fn set_ussd_menu(&mut self, code: &str, menu: bool) {
        if menu {
            self.ussd_menus.insert(code.to_owned());
        } else {
            self.ussd_menus.remove(code);
        }
    }

    /// A menu's session is open (answered with `<m>` = 1 and not yet ended).
    pub fn ussd_menu_open(&self) -> bool {
        self.menu_open
    }

    /// How `+CUSD` answers are printed.
    pub fn set_ussd_encoding(&mut self, encoding: UssdEncoding) {
        self.ussd_encoding = encoding;
    }

    /// The network's USSD answers.
    pub fn ussd_answers(&self) -> &Answers {
        &self.ussd_answers
    }

    /// Every USSD code the DTE asked for, in order.
    pub fn ussd_requests(&self) -> &[String] {
        &self.ussd_requests
    }

    /// The network's answer to USSD request `number` is due: `+CUSD: 0,"<text>",<dcs>` for a
    /// known code, `+CUSD: 4` (operation not supported) for another; nothing when the request
    /// was cancelled (`AT+CUSD=2`), the modem restarted since, or presentation is off
    /// (`AT+CUSD=0`).
    pub fn ussd_answer(&mut self, number: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        let due = self
            .ussd_pending
            .as_ref()
            .is_some_and(|(pending, _)| *pending == number);
        if due
            && let Some((_, code)) = self.ussd_pending.take()
            && self.cusd_n == 1
        {
            let line = match self.ussd_answers.get(&code) {
                Some(answer) => {
                    let (text, dcs) = ussd::present(answer, self.ussd_encoding, &self.cscs);
                    let menu = self.ussd_menus.contains(&code);
                    self.menu_open = menu;
                    format!("+CUSD: {},\"{text}\",{dcs}", u8::from(menu))
                }
                None => "+CUSD: 4".to_owned(),
            };
            self.urc(&mut out, &line);
        }
        self.settle(&mut out);
        out
    }

    /// A call from `number` (`None`: withheld) reaches the modem and rings `rings` times
    /// (at least once) unless the DTE hangs up first; then the caller gives up. Refused
    /// (`None`) while the modem is not registered or another call rings.
    pub fn incoming_call(&mut self, number: Option<String>, rings: u32) -> Option<Vec<Effect>> {
        if !self.registered() || self.ringing.is_some() {
            return None;
        }
        self.call_counter += 1;
        self.calls.push(CallRecord {
            number,
            rings: 0,
            end: None,
        });
        self.ringing = Some(Ringing {
            id: self.call_counter,
            rings_left: rings.max(1),
            record: self.calls.len() - 1,
        });
        Some(self.ring(self.call_counter))
    }

    /// The next ring of call `number` is due: `RING` (and `+CLIP` when `AT+CLIP=1`), or
    /// `NO CARRIER` once the caller has given up.
    pub fn ring(&mut self, number: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        let Some(mut ringing) = self.ringing.filter(|ringing| ringing.id == number) else {
            return out;
        };
        if ringing.rings_left == 0 {
            self.end_call(CallEnd::GaveUp);
            self.urc(&mut out, "NO CARRIER");
            return out;
        }
        ringing.rings_left -= 1;
        self.ringing = Some(ringing);
        let record = &mut self.calls[ringing.record];
        record.rings += 1;
        let clip = match &record.number {
            Some(number) => {
                let kind = if number.starts_with('+') { 145 } else { 129 };
                format!("+CLIP: \"{number}\",{kind},,,,0")
            }
            // CLI validity 1: withheld by the caller (TS 27.007 §7.6).
            None => "+CLIP: \"\",128,,,,1".to_owned(),
        };
        self.urc(&mut out, "RING");
        if self.clip == 1 {
            self.urc(&mut out, &clip);
        }
        out.push(Effect::Ring(number));
        out
    }

    /// Every call the network placed, in order.
    pub fn calls(&self) -> &[CallRecord] {
        &self.calls
    }

    fn end_call(&mut self, end: CallEnd) {
        if let Some(ringing) = self.ringing.take() {
            self.calls[ringing.record].end = Some(end);
        }
    }

    /// Sets the signal `AT+CSQ` reports (`<rssi>` 0–31, TS 27.007 §8.5).
    pub fn set_rssi(&mut self, rssi: u8) {
        self.profile.rssi = rssi.min(31);
    }

    /// Clears every queued and standing `+CMS ERROR` injection.
    pub fn clear_cms_errors(&mut self) {
        self.cms_once.clear();
        self.cms_always = None;
    }

    // ---- input

    fn process(&mut self, bytes: &[u8], out: &mut Vec<Effect>) {
        for (at, &byte) in bytes.iter().enumerate() {
            if matches!(self.mode, Mode::Submitting(_)) {
                self.held_input.extend(&bytes[at..]);
                return;
            }
            if matches!(self.mode, Mode::Pdu { .. }) {
                self.pdu_byte(byte, out);
            } else {
                self.command_byte(byte, out);
            }
        }
    }

    fn command_byte(&mut self, byte: u8, out: &mut Vec<Effect>) {
        if self.echo {
            emit(out, vec![byte]);
        }
        match byte {
            b'\r' => {
                let line = std::mem::take(&mut self.line);
                let text = String::from_utf8_lossy(&line).into_owned();
                self.execute_line(&text, out);
            }
            b'\n' => {}
            // Backspace (V.250 S5) edits the line.
            0x08 | 0x7F => {
                self.line.pop();
            }
            // Other control characters (a stray ESC or Ctrl-Z from an aborted send) are not
            // part of a command line.
            0x00..=0x1F => {}
            _ if self.line.len() >= MAX_LINE => self.line.clear(),
            _ => self.line.push(byte),
        }
    }

    fn pdu_byte(&mut self, byte: u8, out: &mut Vec<Effect>) {
        let Mode::Pdu {
            purpose,
            length,
            hex,
        } = &mut self.mode
        else {
            return;
        };
        match byte {
            CTRL_Z => {
                let (purpose, length, hex) = (*purpose, *length, std::mem::take(hex));
                self.mode = Mode::Command;
                self.pdu_done(purpose, length, &hex, out);
            }
            ESC => {
                self.mode = Mode::Command;
                self.ok(out);
            }
            b'\r' | b'\n' => {}
            _ => {
                if self.echo {
                    emit(out, vec![byte]);
                }
                if hex.len() < MAX_PDU_HEX {
                    hex.push(byte as char);
                }
            }
        }
    }

    fn pdu_done(&mut self, purpose: PduPurpose, length: usize, hex: &str, out: &mut Vec<Effect>) {
        let bytes = pdu::hex_to_bytes(hex).ok();
        let valid_length = bytes
            .as_ref()
            .and_then(|b| tpdu_length(b))
            .is_some_and(|tpdu| tpdu == length);
        let Some(bytes) = bytes.filter(|_| valid_length) else {
            self.fail(out, Fail::Cms(304));
            return;
        };
        match purpose {
            PduPurpose::Write(status) => {
                if self.storage_full {
                    self.fail(out, Fail::Cms(322));
                    return;
                }
                match self.storage.sms.store(status, bytes) {
                    Some(index) => {
                        self.info(out, &[format!("+CMGW: {index}")]);
                        self.ok(out);
                    }
                    None => self.fail(out, Fail::Cms(322)),
                }
            }
            PduPurpose::Send => {
                let submit = match pdu::decode(&bytes, true) {
                    Ok(pdu::Pdu::Submit(submit)) => submit,
                    _ => {
                        self.fail(out, Fail::Cms(304));
                        return;
                    }
                };
                let result = if !self.registered() {
                    Err(331)
                } else if let Some(code) = self.cms_once.pop_front().or(self.cms_always) {
                    Err(code)
                } else {
                    Ok(self.storage.next_message_reference())
                };
                self.mode = Mode::Submitting(result);
                out.push(Effect::Submitted(Box::new(Submission {
                    pdu: bytes,
                    submit: Some(submit),
                    result,
                })));
            }
        }
    }

    fn execute_line(&mut self, line: &str, out: &mut Vec<Effect>) {
        // Whatever comes before the `AT` prefix is ignored (V.250 §5.2.1); a line without one
        // is noise to a modem.
        let Some(start) = line
            .as_bytes()
            .windows(2)
            .position(|pair| pair.eq_ignore_ascii_case(b"AT"))
        else {
            return;
        };
        let commands = match command::parse_line(&line[start..]) {
            Ok(commands) => commands,
            Err(command::ParseError::NoPrefix) => return,
            Err(_) => {
                self.fail(out, Fail::Error);
                return;
            }
        };
        for command in commands {
            let mut lines = Vec::new();
            let outcome = self.execute(&command, &mut lines);
            if !lines.is_empty() {
                self.info(out, &lines);
            }
            match outcome {
                Ok(Next::Continue) => {}
                Ok(Next::Prompt(purpose, length)) => {
                    emit(out, b"\r\n> ".to_vec());
                    self.mode = Mode::Pdu {
                        purpose,
                        length,
                        hex: String::new(),
                    };
                    return;
                }
                Ok(Next::Restart) => {
                    self.ok(out);
                    out.push(Effect::Restart);
                    return;
                }
                Err(fail) => {
                    self.fail(out, fail);
                    out.append(&mut self.deferred);
                    return;
                }
            }
        }
        if !std::mem::take(&mut self.omit_final) {
            self.ok(out);
        }
        out.append(&mut self.deferred);
    }

    // ---- commands

    fn execute(&mut self, command: &Command, lines: &mut Vec<String>) -> Outcome {
        match command {
            Command::Basic { name, value } => self.basic(name, *value, lines),
            Command::Extended { name, call } => self.extended(name, call, lines),
        }
    }

    fn basic(&mut self, name: &str, value: Option<u32>, lines: &mut Vec<String>) -> Outcome {
        let value = value.unwrap_or(0);
        match name {
            "E" if value <= 1 => self.echo = value == 1,
            "V" if value == 1 => {}
            "Q" if value == 0 => {}
            "Z" | "&F" => self.reset_settings(),
            "I" => lines.extend([
                self.profile.manufacturer.clone(),
                self.profile.model.clone(),
                format!("Revision: {}", self.profile.revision),
            ]),
            "H" => self.end_call(CallEnd::HungUp("ATH")),
            "X" | "&C" | "&D" | "&W" => {}
            _ => return Err(Fail::Error),
        }
        Ok(Next::Continue)
    }

    fn extended(&mut self, name: &str, call: &Call, lines: &mut Vec<String>) -> Outcome {
        let args: &[Arg] = match call {
            Call::Set(args) => args,
            _ => &[],
        };
        let number = |i: usize| args.get(i).and_then(Arg::number);
        match (name, call) {
            ("+CGMI" | "+GMI", Call::Action) => lines.push(self.profile.manufacturer.clone()),
            ("+CGMM" | "+GMM", Call::Action) => lines.push(self.profile.model.clone()),
            ("+CGMR" | "+GMR", Call::Action) => lines.push(self.profile.revision.clone()),
            ("+CGSN" | "+GSN", Call::Action) => lines.push(self.profile.imei.clone()),
            ("+CIMI", Call::Action) => {
                self.need_sim(false)?;
                lines.push(self.profile.imsi.clone());
            }
            ("+CMEE", Call::Read) => lines.push(format!("+CMEE: {}", self.cmee)),
            ("+CMEE", Call::Test) => lines.push("+CMEE: (0-2)".into()),
            ("+CMEE", Call::Set(_)) => {
                self.cmee = number(0).filter(|&n| n <= 2).ok_or(Fail::Error)?;
            }
            ("+CPIN", Call::Read) => {
                lines.push(format!("+CPIN: {}", self.pin_state_word()?));
                // Wavecom modems give the state and no `OK` after it.
                self.omit_final = self.quirks.no_ok_after_cpin;
            }
            ("+CPIN", Call::Test) => {}
            ("+CPIN", Call::Set(_)) => self.enter_pin(args)?,
            ("+CSQ", Call::Action) => lines.push(format!("+CSQ: {},99", self.profile.rssi)),
            ("+CSQ", Call::Test) => lines.push("+CSQ: (0-31,99),(0-7,99)".into()),
            ("+CREG" | "+CGREG" | "+CEREG", _) => self.registration_command(name, call, lines)?,
            ("+COPS", Call::Read) => {
                if self.registered() {
                    lines.push(format!("+COPS: 0,0,\"{}\",0", self.profile.operator));
                } else {
                    lines.push("+COPS: 0".into());
                }
            }
            ("+COPS", Call::Test) => lines.push(format!(
                "+COPS: (2,\"{0}\",\"{0}\",\"50299\",0),,(0-4),(0-2)",
                self.profile.operator
            )),
            ("+COPS", Call::Set(_)) => {}
            ("+CFUN", Call::Read) => lines.push(format!("+CFUN: {}", self.cfun)),
            ("+CFUN", Call::Test) => lines.push("+CFUN: (0,1,4),(0-1)".into()),
            ("+CFUN", Call::Set(_)) => {
                let fun = number(0).filter(|f| [0, 1, 4].contains(f));
                let fun = fun.ok_or(Fail::Cme(4))?;
                if number(1) == Some(1) {
                    return Ok(Next::Restart);
                }
                self.cfun = fun;
            }
            ("+CUSD", Call::Read) => lines.push(format!("+CUSD: {}", self.cusd_n)),
            ("+CUSD", Call::Test) => lines.push("+CUSD: (0-2)".into()),
            ("+CUSD", Call::Set(_)) => self.ussd_request(args)?,
            ("+CLIP", Call::Read) => lines.push(format!("+CLIP: {},1", self.clip)),
            ("+CLIP", Call::Test) => lines.push("+CLIP: (0,1)".into()),
            ("+CLIP", Call::Set(_)) => {
                self.clip = number(0).filter(|&n| n <= 1).ok_or(Fail::Cme(4))?;
            }
            // Some modems lack AT+CHUP and hang up only with ATH (a quirk).
            ("+CHUP", Call::Action) if self.quirks.no_chup => return Err(Fail::Error),
            ("+CHUP", Call::Action) => self.end_call(CallEnd::HungUp("AT+CHUP")),
            ("+CHUP", Call::Test) if !self.quirks.no_chup => {}
            ("+CSCS", Call::Read) => lines.push(format!("+CSCS: \"{}\"", self.cscs)),
            ("+CSCS", Call::Test) => lines.push("+CSCS: (\"GSM\",\"IRA\",\"UCS2\")".into()),
            ("+CSCS", Call::Set(_)) => {
                let set = args.first().and_then(Arg::text).unwrap_or_default();
                let set = set.to_ascii_uppercase();
                if !["GSM", "IRA", "UCS2"].contains(&set.as_str()) {
                    return Err(Fail::Cme(4));
                }
                self.cscs = set;
            }
            ("+CSMS", Call::Read) => lines.push(format!("+CSMS: {},1,1,1", self.csms)),
            ("+CSMS", Call::Test) => lines.push("+CSMS: (0,1)".into()),
            ("+CSMS", Call::Set(_)) => {
                self.csms = number(0).filter(|&n| n <= 1).ok_or(Fail::Cms(303))?;
                lines.push("+CSMS: 1,1,1".into());
            }
            ("+CMGF", Call::Read) => lines.push("+CMGF: 0".into()),
            ("+CMGF", Call::Test) => lines.push("+CMGF: (0)".into()),
            // PDU mode only: this is a gateway's modem, text mode is not offered.
            ("+CMGF", Call::Set(_)) if number(0) == Some(0) => {}
            ("+CMGF", Call::Set(_)) => return Err(Fail::Error),
            ("+CMMS", Call::Read) => lines.push(format!("+CMMS: {}", self.cmms)),
            ("+CMMS", Call::Test) => lines.push("+CMMS: (0-2)".into()),
            ("+CMMS", Call::Set(_)) => {
                self.cmms = number(0).filter(|&n| n <= 2).ok_or(Fail::Cms(303))?;
            }
            ("+CSCA", Call::Read) => {
                self.need_sim(true)?;
                let kind = if self.profile.smsc.starts_with('+') {
                    145
                } else {
                    129
                };
                lines.push(format!("+CSCA: \"{}\",{kind}", self.profile.smsc));
            }
            ("+CSCA", Call::Set(_)) => {
                self.need_sim(true)?;
                let number = args.first().and_then(Arg::text).ok_or(Fail::Cms(304))?;
                self.profile.smsc = number.to_string();
            }
            ("+CNMI", Call::Read) => {
                let c = self.cnmi;
                lines.push(format!(
                    "+CNMI: {},{},{},{},{}",
                    c.mode, c.mt, c.bm, c.ds, c.bfr
                ));
            }
            ("+CNMI", Call::Test) => lines.push(format!(
                "+CNMI: (0-3),({}),(0),({}),(0,1)",
                self.supported_mt()
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                self.supported_ds()
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            ("+CNMI", Call::Set(_)) => self.set_cnmi(args)?,
            ("+CNMA", Call::Action | Call::Set(_)) => self.acknowledge(number(0).unwrap_or(0))?,
            ("+CPMS", Call::Read) => {
                self.need_sim(true)?;
                let (r_used, r_total) = self.usage(self.read_memory);
                let (s_used, s_total) = self.usage(Memory::Sim);
                lines.push(format!(
                    "+CPMS: \"{}\",{r_used},{r_total},\"SM\",{s_used},{s_total},\"SM\",{s_used},{s_total}",
                    self.read_memory.name()
                ));
            }
            ("+CPMS", Call::Test) => lines.push("+CPMS: (\"SM\",\"SR\"),(\"SM\"),(\"SM\")".into()),
            ("+CPMS", Call::Set(_)) => {
                self.need_sim(true)?;
                let mut memories = args.iter().map(|a| a.text().map(Memory::parse));
                let read = match memories.next() {
                    Some(Some(Some(memory))) => memory,
                    _ => return Err(Fail::Cms(302)),
                };
                for other in memories {
                    if !matches!(other, None | Some(Some(Memory::Sim))) {
                        return Err(Fail::Cms(302));
                    }
                }
                self.read_memory = read;
                let (r_used, r_total) = self.usage(read);
                let (s_used, s_total) = self.usage(Memory::Sim);
                lines.push(format!(
                    "+CPMS: {r_used},{r_total},{s_used},{s_total},{s_used},{s_total}"
                ));
            }
            ("+CMGR", Call::Set(_)) => {
                self.need_sim(true)?;
                let index = number(0).ok_or(Fail::Cms(321))?;
                let memory = self.read_memory;
                if !self.storage.memory_ref(memory).is_valid_index(index) {
                    return Err(Fail::Cms(321));
                }
                // An empty slot answers OK with nothing, as Quectel modems do.
                if let Some(entry) = self.storage.memory(memory).read(index) {
                    let length = tpdu_length(&entry.pdu).unwrap_or(0);
                    let header = format!("+CMGR: {},,{length}", entry.status.code());
                    let pdu = self.quirks.stored_pdu(&entry.pdu);
                    lines.extend(self.quirks.framed(header, pdu));
                }
            }
            ("+CMGL", Call::Test) => lines.push("+CMGL: (0-4)".into()),
            ("+CMGL", Call::Action | Call::Set(_)) => {
                self.need_sim(true)?;
                let filter = match number(0).unwrap_or(0) {
                    0 => Some(Status::ReceivedUnread),
                    1 => Some(Status::ReceivedRead),
                    2 => Some(Status::StoredUnsent),
                    3 => Some(Status::StoredSent),
                    4 => None,
                    _ => return Err(Fail::Cms(302)),
                };
                let memory = self.read_memory;
                let quirks = self.quirks;
                for entry in self.storage.memory(memory).list(filter) {
                    let length = tpdu_length(&entry.pdu).unwrap_or(0);
                    let header =
                        format!("+CMGL: {},{},,{length}", entry.index, entry.status.code());
                    lines.extend(quirks.framed(header, quirks.stored_pdu(&entry.pdu)));
                }
            }
            ("+CMGD", Call::Test) => {
                self.need_sim(true)?;
                let used: Vec<String> = self
                    .storage
                    .memory_ref(self.read_memory)
                    .entries()
                    .iter()
                    .map(|e| e.index.to_string())
                    .collect();
                lines.push(format!("+CMGD: ({}),(0-4)", used.join(",")));
            }
            ("+CMGD", Call::Set(_)) => {
                self.need_sim(true)?;
                let index = number(0).ok_or(Fail::Cms(321))?;
                let flag = number(1).unwrap_or(0);
                if flag > 4 {
                    return Err(Fail::Cms(302));
                }
                let memory = self.storage.memory(self.read_memory);
                if flag == 0 && !memory.is_valid_index(index) {
                    return Err(Fail::Cms(321));
                }
                memory.delete(index, flag as u8);
            }
            ("+CMGS", Call::Set(_)) => {
                self.need_sim(true)?;
                let length = number(0).filter(|l| (7..=164).contains(l));
                let length = length.ok_or(Fail::Cms(304))?;
                return Ok(Next::Prompt(PduPurpose::Send, length as usize));
            }
            ("+CMGS", Call::Test) => {}
            ("+CMGW", Call::Set(_)) => {
                self.need_sim(true)?;
                let length = number(0).filter(|l| (7..=164).contains(l));
                let length = length.ok_or(Fail::Cms(304))?;
                let status = match number(1).unwrap_or(2) {
                    0 => Status::ReceivedUnread,
                    1 => Status::ReceivedRead,
                    2 => Status::StoredUnsent,
                    3 => Status::StoredSent,
                    _ => return Err(Fail::Cms(304)),
                };
                return Ok(Next::Prompt(PduPurpose::Write(status), length as usize));
            }
            _ => return Err(Fail::Error),
        }
        Ok(Next::Continue)
    }

    /// `AT+CUSD=<n>[,<str>[,<dcs>]]` (TS 27.007 §7.15): `<n>` 0/1 switches the `+CUSD` result
    /// code off/on, 2 cancels the session; a `<str>` goes to the network, whose answer comes
    /// later as a URC (or, for an unknown code with the `ussd-cme-error` quirk, at once as
    /// `+CME ERROR: 100`).
    fn ussd_request(&mut self, args: &[Arg]) -> Result<(), Fail> {
        let n = args
            .first()
            .and_then(Arg::number)
            .filter(|&n| n <= 2)
            .ok_or(Fail::Cme(4))?;
        if n == 2 {
            self.ussd_pending = None;
            self.menu_open = false;
            return Ok(());
        }
        self.cusd_n = n;
        let Some(given) = args.get(1).and_then(Arg::text) else {
            return Ok(());
        };
        if let Some(dcs) = args.get(2).filter(|dcs| **dcs != Arg::Empty) {
            dcs.number().filter(|&dcs| dcs <= 255).ok_or(Fail::Cme(4))?;
        }
        self.need_sim(false)?;
        if !self.registered() {
            // "no network service"
            return Err(Fail::Cme(30));
        }
        if self.ussd_pending.is_some() || self.menu_open {
            // "operation not allowed": one session at a time (a menu waits for its reply).
            return Err(Fail::Cme(3));
        }
        let code = ussd::request_code(given).ok_or(Fail::Cme(4))?;
        self.ussd_requests.push(code.clone());
        if self.quirks.ussd_cme_error && self.ussd_answers.get(&code).is_none() {
            // "unknown"
            return Err(Fail::Cme(100));
        }
        self.ussd_counter += 1;
        self.ussd_pending = Some((self.ussd_counter, code));
        self.deferred.push(Effect::UssdRequested(self.ussd_counter));
        Ok(())
    }

    fn registration_command(
        &mut self,
        name: &str,
        call: &Call,
        lines: &mut Vec<String>,
    ) -> Result<(), Fail> {
        let slot = match name {
            "+CREG" => 0,
            "+CGREG" => 1,
            _ => 2,
        };
        match call {
            Call::Read => {
                let n = self.reg_n[slot];
                let stat = self.registration();
                lines.push(match n {
                    2 if stat == 1 => format!("{name}: {n},{stat},\"1A2B\",\"01C3D4E5\""),
                    _ => format!("{name}: {n},{stat}"),
                });
            }
            Call::Test => lines.push(format!("{name}: (0-2)")),
            Call::Set(args) => {
                let n = args.first().and_then(Arg::number).filter(|&n| n <= 2);
                self.reg_n[slot] = n.ok_or(Fail::Cme(4))?;
            }
            Call::Action => return Err(Fail::Error),
        }
        Ok(())
    }

    fn pin_state_word(&self) -> Result<&'static str, Fail> {
        match self.lock() {
            Lock::Ready => Ok("READY"),
            Lock::Pin { .. } => Ok("SIM PIN"),
            Lock::Puk { .. } => Ok("SIM PUK"),
            Lock::Blocked => Err(Fail::Cme(13)),
        }
    }

    fn lock(&self) -> Lock {
        if self.card.puk_attempts == 0 {
            Lock::Blocked
        } else if self.card.puk_required {
            Lock::Puk {
                attempts: self.card.puk_attempts,
            }
        } else if !self.unlocked {
            Lock::Pin {
                attempts: self.card.pin_attempts,
            }
        } else {
            Lock::Ready
        }
    }

    /// `AT+CPIN="pin"` or, when the PUK is asked for, `AT+CPIN="puk","new pin"`.
    fn enter_pin(&mut self, args: &[Arg]) -> Result<(), Fail> {
        let first = args.first().and_then(Arg::text).unwrap_or_default();
        match self.lock() {
            Lock::Ready => Err(Fail::Cme(3)),
            Lock::Blocked => Err(Fail::Cme(13)),
            Lock::Pin { .. } => {
                if self.card.pin.as_deref() == Some(first) {
                    self.card.pin_attempts = PIN_ATTEMPTS;
                    self.unlocked = true;
                    Ok(())
                } else {
                    self.card.pin_attempts = self.card.pin_attempts.saturating_sub(1);
                    if self.card.pin_attempts == 0 {
                        self.card.puk_required = true;
                    }
                    Err(Fail::Cme(16))
                }
            }
            Lock::Puk { .. } => {
                let new_pin = args.get(1).and_then(Arg::text);
                match new_pin {
                    Some(new_pin) if first == self.card.puk => {
                        self.card.pin = Some(new_pin.to_string());
                        self.card.pin_attempts = PIN_ATTEMPTS;
                        self.card.puk_attempts = PUK_ATTEMPTS;
                        self.card.puk_required = false;
                        self.unlocked = true;
                        Ok(())
                    }
                    Some(_) => {
                        self.card.puk_attempts = self.card.puk_attempts.saturating_sub(1);
                        Err(Fail::Cme(16))
                    }
                    None => Err(Fail::Cme(12)),
                }
            }
        }
    }

    /// Refuses SIM commands while the SIM is locked: `+CMS ERROR` 311/316/313 for SMS commands
    /// (`sms` = true), `+CME ERROR` 11/12/13 otherwise.
    fn need_sim(&self, sms: bool) -> Result<(), Fail> {
        let (cme, cms) = match self.lock() {
            Lock::Ready => return Ok(()),
            Lock::Pin { .. } => (11, 311),
            Lock::Puk { .. } => (12, 316),
            Lock::Blocked => (13, 313),
        };
        Err(if sms { Fail::Cms(cms) } else { Fail::Cme(cme) })
    }

    fn supported_mt(&self) -> [u32; 2] {
        match self.profile.notify {
            NotifyMode::Cmti => [0, 1],
            NotifyMode::Cmt => [0, 2],
        }
    }

    fn supported_ds(&self) -> [u32; 2] {
        match self.profile.reports {
            ReportMode::Cds => [0, 1],
            ReportMode::Cdsi => [0, 2],
        }
    }

    fn set_cnmi(&mut self, args: &[Arg]) -> Result<(), Fail> {
        let mut next = self.cnmi;
        let fields = [
            &mut next.mode,
            &mut next.mt,
            &mut next.bm,
            &mut next.ds,
            &mut next.bfr,
        ];
        for (field, arg) in fields.into_iter().zip(args) {
            match arg {
                Arg::Empty => {}
                other => *field = other.number().ok_or(Fail::Cms(303))?,
            }
        }
        let valid = next.mode <= 3
            && self.supported_mt().contains(&next.mt)
            && next.bm == 0
            && self.supported_ds().contains(&next.ds)
            && next.bfr <= 1;
        if !valid || args.len() > 5 {
            return Err(Fail::Cms(303));
        }
        self.cnmi = next;
        Ok(())
    }

    /// `AT+CNMA[=<n>]` (TS 27.005 §4.6, PDU mode): 0 or 1 acknowledges the routed URC (RP-ACK),
    /// 2 refuses it (RP-ERROR), so the network keeps it and tries again later. Either way the
    /// next one queued is sent.
    fn acknowledge(&mut self, n: u32) -> Result<(), Fail> {
        if n > 2 {
            return Err(Fail::Cms(304));
        }
        if self.csms != 1 || self.awaiting_ack.is_none() {
            return Err(Fail::Cms(340));
        }
        if let Some((_, routed)) = self.awaiting_ack.take()
            && n == 2
        {
            self.held.push_back(routed);
        }
        Ok(())
    }

    // ---- the network side

    /// The registration status of `+CREG` (TS 27.007 §7.2): 1 home, 2 searching, 0 not
    /// registered and not searching (radio off or SIM locked).
    fn registration(&self) -> u8 {
        if !self.powered || self.cfun != 1 || self.lock() != Lock::Ready {
            0
        } else if self.network_available && self.attached {
            1
        } else {
            2
        }
    }

    fn registered(&self) -> bool {
        self.registration() == 1
    }

    fn can_receive(&self) -> bool {
        self.registered()
    }

    fn usage(&self, memory: Memory) -> (usize, usize) {
        let slots = self.storage.memory_ref(memory);
        if self.storage_full && memory == Memory::Sim {
            // Full: every slot taken as far as the DTE can tell.
            (slots.used(), slots.used())
        } else {
            (slots.used(), slots.capacity())
        }
    }

    /// Hands a routed SMS or report to the DTE (or queues it behind the one awaiting
    /// `+CNMA`).
    fn route(&mut self, routed: Routed, out: &mut Vec<Effect>) {
        if self.awaiting_ack.is_some() {
            self.routed_queue.push_back(routed);
            return;
        }
        match &routed {
            Routed::Sms(pdu) => {
                let length = tpdu_length(pdu).unwrap_or(0);
                let lines = self.quirks.framed(format!("+CMT: ,{length}"), hex(pdu));
                emit(out, format!("\r\n{}\r\n", lines.join("\r\n")).into_bytes());
            }
            Routed::Report(pdu) => {
                let length = tpdu_length(pdu).unwrap_or(0);
                let lines = self.quirks.framed(format!("+CDS: {length}"), hex(pdu));
                emit(out, format!("\r\n{}\r\n", lines.join("\r\n")).into_bytes());
            }
        }
        // Phase 2+ (`AT+CSMS=1`) makes the DTE acknowledge each routed message (TS 27.005 §3.4.4).
        if self.csms == 1 {
            self.ack_counter += 1;
            self.awaiting_ack = Some((self.ack_counter, routed));
            out.push(Effect::AwaitAck(self.ack_counter));
        }
    }

    /// Routed messages not acknowledged go back to the network: SMS are delivered again later,
    /// status reports are lost.
    fn requeue_routed(&mut self) {
        let waiting = self.awaiting_ack.take().map(|(_, routed)| routed);
        let queued: Vec<Routed> = self.routed_queue.drain(..).collect();
        let mut reports = Vec::new();
        for routed in waiting.into_iter().chain(queued).rev() {
            match routed {
                Routed::Sms(pdu) => self.network_queue.push_front(pdu),
                report @ Routed::Report(_) => reports.push(report),
            }
        }
        // The service centre tries status reports again later (TS 23.040 §3.2.5).
        for report in reports.into_iter().rev() {
            self.hold(report);
        }
    }

    /// Asks the caller for the network's next retry when something is held for it.
    fn ask_retry(&mut self, out: &mut Vec<Effect>) {
        if !self.held.is_empty() && !self.retry_asked {
            self.retry_asked = true;
            out.push(Effect::RetryLater);
        }
    }

    /// After every step: deliver what the network holds when the modem can take it, send the
    /// next routed URC, and report a registration change to those who asked (`+CREG=1`).
    fn settle(&mut self, out: &mut Vec<Effect>) {
        self.ask_retry(out);
        let registration = self.registration();
        if registration != self.reported_registration {
            self.reported_registration = registration;
            for (slot, name) in ["+CREG", "+CGREG", "+CEREG"].iter().enumerate() {
                match self.reg_n[slot] {
                    1 => self.urc(out, &format!("{name}: {registration}")),
                    2 if registration == 1 => {
                        self.urc(out, &format!("{name}: 1,\"1A2B\",\"01C3D4E5\""));
                    }
                    2 => self.urc(out, &format!("{name}: {registration}")),
                    _ => {}
                }
            }
        }
        if matches!(self.mode, Mode::Submitting(_)) {
            // The modem is busy with the network; deliveries wait.
            return;
        }
        if self.awaiting_ack.is_none()
            && let Some(next) = self.routed_queue.pop_front()
        {
            self.route(next, out);
        }
        while self.can_receive() {
            let Some(pdu) = self.network_queue.pop_front() else {
                break;
            };
            if self.cnmi.mode != 0 && self.cnmi.mt == 2 {
                self.route(Routed::Sms(pdu), out);
                continue;
            }
            let stored = if self.storage_full {
                None
            } else {
                self.storage.sms.store(Status::ReceivedUnread, pdu.clone())
            };
            match stored {
                Some(index) => {
                    if self.cnmi.mode != 0 && self.cnmi.mt == 1 {
                        self.urc(out, &format!("+CMTI: \"SM\",{index}"));
                    }
                }
                None => {
                    // No room: the network keeps it and tries again later (TS 23.040 §10.1).
                    self.network_queue.push_front(pdu);
                    break;
                }
            }
        }
    }

    // ---- output

    fn urc(&self, out: &mut Vec<Effect>, line: &str) {
        emit(out, format!("\r\n{line}\r\n").into_bytes());
    }

    fn info(&self, out: &mut Vec<Effect>, lines: &[String]) {
        emit(out, format!("\r\n{}\r\n", lines.join("\r\n")).into_bytes());
    }

    fn ok(&self, out: &mut Vec<Effect>) {
        emit(out, b"\r\nOK\r\n".to_vec());
    }

    fn fail(&self, out: &mut Vec<Effect>, fail: Fail) {
        let line = match (fail, self.cmee) {
            (Fail::Error, _) | (Fail::Cme(_), 0) => "ERROR".to_string(),
            (Fail::Cme(code), 1) => format!("+CME ERROR: {code}"),
            (Fail::Cme(code), _) => format!("+CME ERROR: {}", error_text::cme(code)),
            // `+CMS ERROR` is reported whatever `+CMEE` says (TS 27.005 §3.2.5); verbose with 2.
            (Fail::Cms(code), 2) => format!("+CMS ERROR: {}", error_text::cms(code)),
            (Fail::Cms(code), _) => format!("+CMS ERROR: {code}"),
        };
        emit(out, format!("\r\n{line}\r\n").into_bytes());
    }
}

/// Appends bytes to the output, joining them to the previous output effect.
fn emit(out: &mut Vec<Effect>, bytes: Vec<u8>) {
    if let Some(Effect::Output(last)) = out.last_mut() {
        last.extend(bytes);
    } else {
        out.push(Effect::Output(bytes));
    }
}

/// Upper-case hex, as modems print PDUs.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut text, b| {
        let _ = write!(text, "{b:02X}");
        text
    })
}

/// The TPDU length of a PDU with the SMSC field in front: what `+CMGS=<length>`, `+CMGR` and
/// `+CMT` count (TS 27.005 §3.1 `<length>`: the SMSC octets are not counted).
pub fn tpdu_length(pdu: &[u8]) -> Option<usize> {
    let smsc = usize::from(*pdu.first()?);
    pdu.len().checked_sub(1 + smsc).filter(|&n| n > 0)
}

#[cfg(test)]
mod tests;
