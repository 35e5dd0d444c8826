//! USSD through the driver: one session at a time, the balance check on its schedule, and the
//! answers decoded.
//!
//! A request is `AT+CUSD=1,"<code>",15` (TS 27.007 §7.15); its `OK` only says the modem took
//! it. The network's answer comes later as a `+CUSD:` URC, which the serving loop hands to
//! [`Driver::ussd_urc`]; the loop keeps serving (sending, receiving) meanwhile, so a slow
//! network holds nothing up. With no answer within [`Tuning::ussd_timeout`] the session is
//! cancelled (`AT+CUSD=2`) and the request fails. A request made while one is open waits for
//! it. A menu (`<m>` = 1) is answered and then closed, so the session does not stay open.
//!
//! The balance check ([`crate::config::BalanceCheck`]) asks at start and at its interval, and
//! again after [`Tuning::balance_retry`] when it failed; what it read goes out with
//! [`super::Health`]. It does not store the reading: the caller does.
//!
//! [`Tuning::ussd_timeout`]: super::Tuning::ussd_timeout
//! [`Tuning::balance_retry`]: super::Tuning::balance_retry

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::ModemOptions;
use super::driver::{Driver, Served, Work, WorkQueue};
use super::error::explain_cme;
use crate::at::ussd::{self, ParseError, RequestError, Status};
use crate::at::{AtError, ErrorCode, FinalResult};

/// The network's answer to a USSD request, decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UssdAnswer {
    /// `answered`, or `answered with a menu that waits for a reply` (closed by smsgate).
    #[serde(serialize_with = "status_words")]
    pub status: Status,
    /// The text, decoded from GSM 7-bit, UCS-2 or hex as the modem printed it.
    pub text: Option<String>,
}

fn status_words<S: serde::Serializer>(status: &Status, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&status.to_string())
}

/// Why a USSD request brought no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UssdError {
    #[error(transparent)]
    Invalid(#[from] RequestError),
    /// The modem refused `AT+CUSD` (`+CME ERROR`): no network, a session busy, no USSD.
    #[error("the modem refused the USSD request: {0}")]
    Refused(String),
    /// The network answered with a status and no text (`+CUSD: 4`, `+CUSD: 2`, …).
    #[error("the network gave no answer: {0}")]
    Unanswered(Status),
    #[error(
        "the network did not answer within {} (the USSD session was cancelled; try again later)",
        humantime::format_duration(*.0)
    )]
    Timeout(Duration),
    #[error("the modem is not ready ({0})")]
    NotReady(String),
    /// The command itself failed (timed out, the port broke, an unreadable answer).
    #[error("the USSD request failed: {0}")]
    Modem(String),
    #[error("the modem task has stopped")]
    Stopped,
}

/// The SIM's balance as last read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Balance {
    /// The network's answer, decoded.
    pub text: String,
    /// The amount the pattern found in it; `None` when it found none.
    pub amount: Option<f64>,
    /// When it was read (Unix milliseconds).
    pub read_ms: i64,
    /// `low_balance`, when set.
    pub low: Option<f64>,
}

impl Balance {
    /// Below `low_balance`.
    pub fn is_low(&self) -> bool {
        matches!((self.amount, self.low), (Some(amount), Some(low)) if amount < low)
    }
}

/// Who asked.
pub(super) enum Purpose {
    /// A caller through [`super::ModemHandle::ussd`].
    Ask(oneshot::Sender<Result<UssdAnswer, UssdError>>),
    /// The balance check.
    Balance,
}

struct Pending {
    code: String,
    purpose: Purpose,
    deadline: Instant,
}

/// The driver's USSD state, over every connection.
pub(super) struct UssdBook {
    pending: Option<Pending>,
    waiting: VecDeque<(String, Purpose)>,
    /// When the balance is asked for next (`None`: no check, or one in flight).
    next_balance: Option<Instant>,
}

impl UssdBook {
    pub(super) fn new(options: &ModemOptions) -> Self {
        Self {
            pending: None,
            waiting: VecDeque::new(),
            next_balance: options.balance.as_ref().map(|_| Instant::now()),
        }
    }

    /// When the open session times out.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|pending| pending.deadline)
    }

    /// When the balance check is due.
    pub(super) fn next_balance(&self) -> Option<Instant> {
        self.next_balance
    }
}

/// A refusal in words: `+CME ERROR: 30 (no network service)`.
fn refusal(result: &FinalResult) -> String {
    match result {
        FinalResult::CmeError(ErrorCode::Numeric(code)) => match explain_cme(*code) {
            Some(words) => format!("{result} ({words})"),
            None => result.to_string(),
        },
        other => other.to_string(),
    }
}

impl Driver {
    /// A new connection: a session open on the old one is lost with it, and what was queued
    /// on the old one (a balance check, the next request) is queued again.
    pub(super) fn ussd_new_connection(&mut self, work: &mut WorkQueue) {
        if let Some(pending) = self.ussd.pending.take() {
            let error = UssdError::Modem("the connection to the modem was reset".into());
            self.ussd_finish(&pending.code, pending.purpose, Err(error));
        } else if self.ussd.next_balance.is_none() && self.options.balance.is_some() {
            // Its `Work::Balance` went with the old connection's queue.
            self.ussd.next_balance = Some(Instant::now());
        }
        if !self.ussd.waiting.is_empty() {
            work.add(Work::UssdNext);
        }
    }

    /// A request: sent now, or queued behind the open session.
    pub(super) async fn ussd_start(
        &mut self,
        conn: &mut Served,
        code: String,
        purpose: Purpose,
        work: &mut WorkQueue,
    ) {
        if self.ussd.pending.is_some() {
            debug!(code, "USSD request waits for the open session");
            self.ussd.waiting.push_back((code, purpose));
            return;
        }
        let text = match ussd::request(&code, 15) {
            Ok(text) => text,
            Err(error) => return self.ussd_finish(&code, purpose, Err(error.into())),
        };
        let command = conn.line.plain(text);
        match conn.line.call(command).await {
            Ok(response) => {
                debug!(code, "USSD request taken; waiting for the network");
                self.ussd.pending = Some(Pending {
                    code,
                    purpose,
                    deadline: Instant::now() + self.tuning.ussd_timeout,
                });
                // Some modems answer before their `OK`: the `+CUSD:` is then among the
                // command's own lines (its prefix is the command's).
                if let Some(start) = response.lines.iter().position(|l| l.starts_with("+CUSD:")) {
                    let answer = response.lines[start..].join("\n");
                    self.ussd_urc(&answer, work);
                }
            }
            Err(AtError::Rejected { result, .. }) => {
                let error = UssdError::Refused(refusal(&result));
                self.ussd_finish(&code, purpose, Err(error));
            }
            Err(error) => {
                let error = UssdError::Modem(error.to_string());
                self.ussd_finish(&code, purpose, Err(error));
            }
        }
    }

    /// The next waiting request, once no session is open.
    pub(super) async fn ussd_next(&mut self, conn: &mut Served, work: &mut WorkQueue) {
        if self.ussd.pending.is_none() {
            if let Some((code, purpose)) = self.ussd.waiting.pop_front() {
                self.ussd_start(conn, code, purpose, work).await;
            }
        }
    }

    /// The balance check is due: queued as work (`None` until it is answered).
    pub(super) fn balance_due(&mut self, work: &mut WorkQueue) {
        self.ussd.next_balance = None;
        work.add(Work::Balance);
    }

    /// Runs the balance check now.
    pub(super) async fn ussd_balance(&mut self, conn: &mut Served, work: &mut WorkQueue) {
        let Some(check) = &self.options.balance else {
            return;
        };
        let code = check.code.clone();
        self.ussd_start(conn, code, Purpose::Balance, work).await;
    }

    /// Takes a `+CUSD:` URC. `false`: not one.
    ///
    /// The AT engine joins the lines of an answer over several lines (an operator menu); one
    /// it had to cut short (a URC came inside the text) is read as far as it came.
    pub(super) fn ussd_urc(&mut self, line: &str, work: &mut WorkQueue) -> bool {
        if !line.starts_with("+CUSD:") {
            return false;
        }
        let parsed = match ussd::parse(line) {
            Err(ParseError::Incomplete) => {
                debug!(
                    line,
                    "a USSD answer over several lines: its first line is read"
                );
                ussd::parse(&format!("{line}\""))
            }
            other => other,
        };
        let Some(pending) = self.ussd.pending.take() else {
            debug!(
                line,
                "USSD answer with no request open (after a cancel, or another client)"
            );
            return true;
        };
        let result = match parsed {
            Err(error) => Err(UssdError::Modem(format!("unreadable answer: {error}"))),
            Ok(answer) => {
                let text = answer
                    .text
                    .as_deref()
                    .map(|text| crate::pdu::ussd::decode(text, answer.dcs).text)
                    .filter(|text| !text.trim().is_empty());
                if answer.status == Status::ActionRequired {
                    // A menu waits for a reply that never comes: close it.
                    work.add(Work::UssdCancel);
                }
                // Some networks end the session (`<m>` = 2) with the answer in it.
                if answer.status.is_answer() || text.is_some() {
                    Ok(UssdAnswer {
                        status: answer.status,
                        text,
                    })
                } else {
                    Err(UssdError::Unanswered(answer.status))
                }
            }
        };
        self.ussd_finish(&pending.code, pending.purpose, result);
        if !self.ussd.waiting.is_empty() {
            work.add(Work::UssdNext);
        }
        true
    }

    /// The open session's deadline passed: cancel it and fail the request.
    pub(super) async fn ussd_expired(&mut self, conn: &mut Served, work: &mut WorkQueue) {
        let Some(pending) = self.ussd.pending.take() else {
            return;
        };
        self.ussd_cancel(conn).await;
        let error = UssdError::Timeout(self.tuning.ussd_timeout);
        self.ussd_finish(&pending.code, pending.purpose, Err(error));
        if !self.ussd.waiting.is_empty() {
            work.add(Work::UssdNext);
        }
    }

    /// `AT+CUSD=2`: ends the session (a refusal only means none was open).
    pub(super) async fn ussd_cancel(&mut self, conn: &mut Served) {
        let command = conn.line.plain(ussd::CANCEL);
        if let Err(error) = conn.line.call(command).await {
            debug!(%error, "AT+CUSD=2 not taken (no session open)");
        }
    }

    fn ussd_finish(&mut self, code: &str, purpose: Purpose, result: Result<UssdAnswer, UssdError>) {
        match purpose {
            Purpose::Ask(reply) => {
                match &result {
                    Ok(answer) => info!(code, text = answer.text.as_deref(), "USSD answered"),
                    Err(error) => warn!(code, %error, "USSD request failed"),
                }
                let _ = reply.send(result);
            }
            Purpose::Balance => self.balance_read(code, result),
        }
    }

    fn balance_read(&mut self, code: &str, result: Result<UssdAnswer, UssdError>) {
        let Some(check) = &self.options.balance else {
            return;
        };
        let now = Instant::now();
        match result {
            Ok(answer) => {
                let text = answer.text.unwrap_or_default();
                let amount = check.amount(&text);
                let balance = Balance {
                    text: text.clone(),
                    amount,
                    read_ms: crate::clock::now_ms(),
                    low: check.low,
                };
                match amount {
                    Some(amount) if balance.is_low() => warn!(
                        code,
                        amount,
                        low_balance = check.low,
                        text,
                        "the SIM's balance is below low_balance: top it up"
                    ),
                    Some(amount) => info!(code, amount, text, "SIM balance read"),
                    None => warn!(
                        code,
                        text,
                        "the balance answer holds no amount balance_pattern finds; check the pattern"
                    ),
                }
                self.health.health.balance_error = amount.is_none().then(|| {
                    format!("no amount found in the answer {text:?} (check balance_pattern)")
                });
                self.health.health.balance = Some(balance);
                self.ussd.next_balance = Some(now + check.interval);
            }
            Err(error) => {
                let retry = self.tuning.balance_retry.min(check.interval);
                warn!(
                    code, %error,
                    "balance check failed; asking again in {}",
                    humantime::format_duration(retry)
                );
                self.health.health.balance_error = Some(error.to_string());
                self.ussd.next_balance = Some(now + retry);
            }
        }
        self.health.publish();
    }
}
