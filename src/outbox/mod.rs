//! The sender worker: takes queued messages from the store, oldest first and in order per
//! contact, and hands their parts to the modem (DESIGN.md §1 "Outbound", §2).
//!
//! Each part is marked *submitting* in SQLite before it goes to the modem and *accepted* with
//! its TP-MR once `+CMGS: <mr>` came back, so a crash in between is visible at start-up as a
//! part in doubt (`unknown`), which the store resolves by a later status report or by the
//! configured `sms.unknown_policy` after `sms.unknown_window`. When the database refuses to
//! record what the modem answered (disk full, I/O error), the answer is held in memory and the
//! commit tried again until it succeeds: the message stays *sending*, so its contact's later
//! messages wait, and `/health` shows it; it is never abandoned, and never sent twice.
//! Temporary errors back off and retry the whole message with a new concatenation reference;
//! permanent errors, too many attempts and expiry fail it with a readable `status.message`.
//!
//! Status reports are paired with parts by (TP-MR, recipient, time window) in [`report`]
//! ([`Reports`], which needs no modem). The worker is a step function, [`Outbox::try_one`], and a
//! loop around it, [`Outbox::run`]; it talks to the modem only through [`PartSender`], so tests
//! drive it with a fake. It does not render, validate or plan messages (the HTTP layer did that
//! before the message was accepted).

mod lane;
mod modem;
mod report;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::clock::Clock;
use crate::config::{ModemConfig, SmsConfig};
use crate::pdu::{self, Address, EncodedPart, SubmitOptions};
use crate::store::{AttemptEnd, AttemptResult, Claimed, OutboxPolicy, Store, StoreError};

pub use lane::Lane;
pub use report::Reports;

/// First and longest pause between attempts at committing what the modem answered.
const RECORD_RETRY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(10));

/// Why the modem did not take a part, as the outbox needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Worth retrying later (network out of order, congestion, modem busy, not registered).
    Temporary(String),
    /// Retrying will not help (invalid number, barred, no credit).
    Permanent(String),
    /// No `+CMGS` answer: the part may or may not have gone.
    Unknown(String),
}

impl SendFailure {
    fn message(&self) -> &str {
        match self {
            SendFailure::Temporary(m) | SendFailure::Permanent(m) | SendFailure::Unknown(m) => m,
        }
    }
}

/// What the outbox needs from a modem: send one part, get its TP-MR.
pub trait PartSender: Send + Sync {
    /// Sends one part (`AT+CMGS`); `more_to_follow`: another part of the same message comes
    /// next. Returns the TP-MR from `+CMGS: <mr>`.
    fn send_part(
        &self,
        part: &EncodedPart,
        more_to_follow: bool,
    ) -> impl Future<Output = Result<u8, SendFailure>> + Send;

    /// Whether sending makes sense now (modem initialised and registered). While it is not,
    /// the outbox waits instead of spending attempts.
    fn is_ready(&self) -> bool {
        true
    }
}

/// Errors of the outbox worker (all from the store: the modem's are [`SendFailure`]s).
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outbox's settings, from `[sms]` and `[modem]`.
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    pub policy: OutboxPolicy,
    /// Request a status report per part (`modem.delivery_reports`).
    pub status_reports: bool,
    /// Pairing window for status reports (`sms.report_window`).
    pub report_window: Duration,
    /// To normalise national recipient numbers in status reports.
    pub default_country: String,
    /// First retry delay after a temporary error; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
}

impl OutboxOptions {
    pub fn from_config(sms: &SmsConfig, modem: &ModemConfig) -> Self {
        Self {
            policy: OutboxPolicy {
                max_attempts: sms.max_attempts.max(1),
                expiry_ms: millis(sms.expiry),
                unknown_policy: sms.unknown_policy,
                unknown_window_ms: millis(sms.unknown_window),
            },
            status_reports: modem.delivery_reports,
            report_window: sms.report_window,
            default_country: sms.default_country.clone(),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(600),
        }
    }

    /// The delay before attempt `attempt + 1` after a temporary error in attempt `attempt`.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Nothing due (or the modem is not ready).
    Idle,
    /// Every part accepted; `sent` enqueued.
    Sent { m_id: String, parts: usize },
    /// A temporary error; the whole message goes again at `at_ms`.
    Retrying { m_id: String, at_ms: i64 },
    /// Failed for good; `failed` enqueued with `message`.
    Failed { m_id: String, message: String },
    /// The modem gave no answer for a part; the message waits for a report or the policy.
    Unknown { m_id: String },
    /// Shutdown between two parts; the message is resent whole after the restart.
    Interrupted { m_id: String },
    /// The SIM's pacing holds the next message (still `queued`) until `until_ms`.
    Paced { until_ms: i64 },
}

/// The sender worker.
pub struct Outbox<S> {
    store: Store,
    sender: S,
    options: OutboxOptions,
    clock: Clock,
    shutdown: CancellationToken,
    /// In a pool: the SIM this outbox sends for, and its pacing.
    lane: Option<Arc<Lane>>,
}

/// Clones share the store, the modem and the shutdown token: one clone can [`Outbox::run`]
/// while another handles status reports.
impl<S: Clone> Clone for Outbox<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            sender: self.sender.clone(),
            options: self.options.clone(),
            clock: self.clock.clone(),
            shutdown: self.shutdown.clone(),
            lane: self.lane.clone(),
        }
    }
}

impl<S: PartSender> Outbox<S> {
    pub fn new(store: Store, sender: S, options: OutboxOptions) -> Self {
        Self {
            store,
            sender,
            options,
            clock: Clock::system(),
            shutdown: CancellationToken::new(),
            lane: None,
        }
    }

    /// Sends only what is routed to one SIM of a pool, paced by its [`Lane`].
    pub fn with_lane(mut self, lane: Arc<Lane>) -> Self {
        self.lane = Some(lane);
        self
    }

    /// Replaces the wall clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Clock::from_fn(clock);
        self
    }

    /// Stops [`Outbox::try_one`] between parts, and [`Outbox::run`], when cancelled.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Status reports, paired with what this outbox sends (its store, clock and settings).
    pub fn reports(&self) -> Reports {
        Reports::new(self.store.clone(), &self.options).with_clock(self.clock.clone())
    }

    /// The start-up step: parts left *submitting* by a crash become *unknown*. Returns how many
    /// messages are now in doubt.
    pub async fn recover(&self) -> Result<u64, OutboxError> {
        let unknown = self.store.recover_outbound(self.clock.now_ms()).await?;
        if unknown > 0 {
            tracing::warn!(
                unknown,
                policy = ?self.options.policy.unknown_policy,
                "messages were being sent when smsgate stopped; their outcome is unknown"
            );
        }
        Ok(unknown)
    }

    /// Sends the next due message, if any, all its parts in one go.
    pub async fn try_one(&self) -> Result<SendOutcome, OutboxError> {
        if !self.sender.is_ready() {
            return Ok(SendOutcome::Idle);
        }
        let now = self.clock.now_ms();
        let claimed = match &self.lane {
            None => self.store.claim_outbound(now, self.options.policy).await?,
            Some(lane) => {
                let Some(next) = self.store.next_on_modem(lane.modem(), now).await? else {
                    // Nothing due; the claim still runs expiry and the unknown policy.
                    let claimed = self
                        .store
                        .claim_outbound_on(now, self.options.policy, lane.modem(), None)
                        .await?;
                    return match claimed {
                        None => Ok(SendOutcome::Idle),
                        Some(job) => {
                            // It became due between the look and the claim: back to the
                            // queue, and planned like any other.
                            self.store.release_claim(job.id, now).await?;
                            Ok(SendOutcome::Paced { until_ms: now })
                        }
                    };
                };
                let mut next = next;
                if lane.holds_new_recipient(now, &next.contact_id) {
                    // The first message waits for a new recipient's room (up to a day): the
                    // contacts this SIM already writes to today go on meanwhile.
                    let since = now - crate::pacing::DAY_MS;
                    if let Some(known) = self
                        .store
                        .next_known_on_modem(lane.modem(), now, since)
                        .await?
                    {
                        next = known;
                    }
                }
                let at = lane.message_slot(now, next.id, next.parts, &next.contact_id);
                if at > now {
                    return Ok(SendOutcome::Paced { until_ms: at });
                }
                let claimed = self
                    .store
                    .claim_outbound_on(now, self.options.policy, lane.modem(), Some(next.id))
                    .await?;
                if claimed.is_none() {
                    // Expired or moved meanwhile: look again.
                    return Ok(SendOutcome::Paced { until_ms: now });
                }
                claimed
            }
        };
        let Some(job) = claimed else {
            return Ok(SendOutcome::Idle);
        };
        let span = tracing::info_span!("outbox", m_id = %job.m_id, attempt = job.attempt);
        self.send(job).instrument(span).await
    }

    /// One attempt at a claimed message: every part, in order.
    async fn send(&self, job: Claimed) -> Result<SendOutcome, OutboxError> {
        let recipient = match Address::parse(&job.contact_id) {
            Ok(address) => address,
            Err(error) => {
                let message = format!("the recipient is not a valid number: {error}");
                return self
                    .fail_attempt(&job.m_id, job.id, AttemptEnd::Permanent, &message)
                    .await;
            }
        };
        let options = SubmitOptions {
            status_report: self.options.status_reports,
            force_ucs2: job.encoding == pdu::Encoding::Ucs2,
            // Idempotent on text that was already made GSM-friendly when it was planned.
            smart_encoding: job.encoding == pdu::Encoding::Gsm7,
            max_parts: None,
            concat_reference: job.concat_reference,
            ..SubmitOptions::default()
        };
        let parts = match pdu::encode_submit(&recipient, &job.text, &options) {
            Ok(parts) if !parts.is_empty() => parts,
            Ok(_) => {
                let message = "the message encoded to no parts".to_owned();
                return self
                    .fail_attempt(&job.m_id, job.id, AttemptEnd::Permanent, &message)
                    .await;
            }
            Err(error) => {
                let message = format!("cannot encode the message: {error}");
                return self
                    .fail_attempt(&job.m_id, job.id, AttemptEnd::Permanent, &message)
                    .await;
            }
        };
        let total = parts.len();
        for (index, part) in parts.iter().enumerate() {
            let seq = index as u32 + 1;
            if index > 0 && self.shutdown.is_cancelled() {
                return Ok(SendOutcome::Interrupted { m_id: job.m_id });
            }
            let written = match &self.lane {
                None => {
                    self.record("a part about to be sent", false, || {
                        self.store.part_submitting(
                            job.id,
                            seq,
                            &job.contact_id,
                            self.clock.now_ms(),
                        )
                    })
                    .await?;
                    None
                }
                Some(lane) => {
                    let left = (total - index) as u32;
                    let at = loop {
                        let now = self.clock.now_ms();
                        let Some(until) = lane.part_wait(now, left, &job.contact_id) else {
                            break now;
                        };
                        tracing::debug!(
                            part = seq,
                            of = total,
                            wait_ms = until - now,
                            "a cap holds the rest of the message"
                        );
                        let wait = Duration::from_millis((until - now).max(1) as u64);
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = self.shutdown.cancelled() => {
                                if index == 0 {
                                    // Nothing went: the message goes back to the queue whole.
                                    self.store.release_claim(job.id, self.clock.now_ms()).await?;
                                }
                                return Ok(SendOutcome::Interrupted { m_id: job.m_id });
                            }
                        }
                    };
                    // The history row and the part are one commit; the pacer counts it once it
                    // is committed, at the time that row says.
                    self.record("a part about to be sent", false, || {
                        self.store.part_submitting_on(
                            job.id,
                            seq,
                            &job.contact_id,
                            at,
                            lane.modem(),
                            index == 0,
                        )
                    })
                    .await?;
                    lane.record(at, &job.contact_id, index == 0);
                    Some(at)
                }
            };
            let answer = self.sender.send_part(part, seq < total as u32).await;
            if let (Some(lane), Some(written)) = (&self.lane, written) {
                let answered = self.clock.now_ms();
                lane.restamp(written, answered, &job.contact_id);
                if let Err(error) = self
                    .store
                    .restamp_send(lane.modem(), written, answered)
                    .await
                {
                    // The row keeps the time the command was written: a restart within the
                    // minute counts the part a little earlier than the network saw it.
                    tracing::warn!(%error, "cannot move the part's count to the modem's answer");
                }
            }
            match answer {
                Ok(mr) => {
                    self.record("a part the modem accepted", true, || {
                        self.store
                            .part_accepted(job.id, seq, mr, total, self.clock.now_ms())
                    })
                    .await?;
                    tracing::debug!(part = seq, of = total, mr, "part accepted");
                }
                Err(SendFailure::Unknown(message)) => {
                    tracing::warn!(part = seq, of = total, error = %message,
                        "no answer from the modem; the part may or may not have gone");
                    self.record("a part in doubt", true, || {
                        self.store
                            .part_unknown(job.id, seq, &message, self.clock.now_ms())
                    })
                    .await?;
                    return Ok(SendOutcome::Unknown { m_id: job.m_id });
                }
                Err(failure) => {
                    let end = match failure {
                        SendFailure::Temporary(_) => {
                            let delay = self.options.retry_delay(job.attempt);
                            AttemptEnd::Temporary {
                                retry_at_ms: self.clock.now_ms().saturating_add(millis(delay)),
                            }
                        }
                        _ => AttemptEnd::Permanent,
                    };
                    tracing::warn!(part = seq, of = total, error = %failure.message(),
                        "the modem refused a part");
                    return self
                        .fail_attempt(&job.m_id, job.id, end, failure.message())
                        .await;
                }
            }
        }
        tracing::info!(parts = total, "sent");
        Ok(SendOutcome::Sent {
            m_id: job.m_id,
            parts: total,
        })
    }

    async fn fail_attempt(
        &self,
        m_id: &str,
        id: i64,
        end: AttemptEnd,
        error: &str,
    ) -> Result<SendOutcome, OutboxError> {
        let result = self
            .record("a failed attempt", true, || {
                self.store.attempt_failed(
                    id,
                    end.clone(),
                    error,
                    self.clock.now_ms(),
                    self.options.policy,
                )
            })
            .await?;
        Ok(match result {
            AttemptResult::Retrying { at_ms } => SendOutcome::Retrying {
                m_id: m_id.to_owned(),
                at_ms,
            },
            AttemptResult::Failed { message } => {
                tracing::warn!(%message, "message failed");
                SendOutcome::Failed {
                    m_id: m_id.to_owned(),
                    message,
                }
            }
        })
    }

    /// Runs a store write until it commits. What the modem said is held in memory meanwhile:
    /// giving up would leave the message `sending` (its contact's later messages blocked) and
    /// resend it after a restart, a duplicate. While a modem's answer waits (`answer`), the part
    /// is counted as unrecorded, so `/health` shows it. Only shutdown, or an error no retry can
    /// cure, ends the wait; after a restart the part is then in doubt (`unknown`), which a
    /// status report or `sms.unknown_policy` resolves.
    async fn record<T, F, Fut>(
        &self,
        what: &str,
        answer: bool,
        mut write: F,
    ) -> Result<T, OutboxError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut pause = RECORD_RETRY.0;
        let mut held = None;
        let mut failures = 0u32;
        loop {
            let error = match write().await {
                Ok(value) => {
                    if failures > 0 {
                        tracing::warn!(what, failures, "recorded after all");
                    }
                    drop(held);
                    return Ok(value);
                }
                Err(error) if !retry_cures(&error) => return Err(error.into()),
                Err(error) => error,
            };
            failures += 1;
            if failures == 1 {
                tracing::error!(%error, what,
                    "the database refuses to record it; holding it in memory and trying again \
                     (this contact's later messages wait)");
                if answer {
                    held = Some(self.store.hold_unrecorded());
                }
            } else {
                tracing::debug!(%error, what, failures, "still cannot record it");
            }
            if self.shutdown.is_cancelled() {
                tracing::error!(
                    what,
                    "stopping before it could be recorded; after the restart the part is in doubt"
                );
                return Err(error.into());
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.shutdown.cancelled() => {}
            }
            pause = (pause * 2).min(RECORD_RETRY.1);
        }
    }

    /// Recovers, then sends until `shutdown`: wakes on a new message, at the next retry time,
    /// or at least once a minute; waits while the modem is not ready. Only a failed recovery
    /// ends it (sending before parts in doubt are marked would lose the doubt); a failed step
    /// is logged and tried again.
    pub async fn run(self) -> Result<(), OutboxError> {
        self.recover().await?;
        self.serve().await
    }

    /// [`Outbox::run`] without the recovery step: in a pool the gateway recovers once, before
    /// any SIM's sender starts (a second recovery would mistake a part another SIM is sending
    /// for one left by a crash). With a lane, the pool's router wakes it.
    pub async fn serve(self) -> Result<(), OutboxError> {
        let signal = self.store.outbound_signal();
        while !self.shutdown.is_cancelled() {
            let lane = self.lane.clone();
            let notified = signal.notified();
            let woken = async {
                match &lane {
                    Some(lane) => lane.woken().await,
                    None => notified.await,
                }
            };
            let idle_for = match self.try_one().await {
                Ok(SendOutcome::Paced { until_ms }) => {
                    Duration::from_millis((until_ms - self.clock.now_ms()).clamp(0, 60_000) as u64)
                }
                Ok(SendOutcome::Idle) if !self.sender.is_ready() => Duration::from_secs(1),
                Ok(SendOutcome::Idle) => {
                    // Unknown (a database error): look again within the minute anyway.
                    let next = match &self.lane {
                        None => self.store.next_outbound_wakeup(self.options.policy).await,
                        Some(lane) => {
                            self.store
                                .next_wakeup_on(
                                    lane.modem(),
                                    self.options.policy.unknown_window_ms,
                                    self.clock.now_ms(),
                                )
                                .await
                        }
                    };
                    let wait = next
                        .ok()
                        .flatten()
                        .map_or(60_000, |at| (at - self.clock.now_ms()).clamp(0, 60_000));
                    Duration::from_millis(wait as u64)
                }
                Ok(_) => continue,
                Err(error) => {
                    tracing::error!(%error, "outbox step failed; retrying shortly");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(idle_for) => {}
                () = self.shutdown.cancelled() => {}
            }
        }
        Ok(())
    }
}

/// Whether trying a failed write again can succeed: the database was busy, full, or failed
/// to read or write (a constraint broken or a row missing fails the same way every time).
fn retry_cures(error: &StoreError) -> bool {
    match error {
        StoreError::Commit(_) => true,
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => {
            failure.code != rusqlite::ErrorCode::ConstraintViolation
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_caps() {
        let options = OutboxOptions::from_config(&SmsConfig::default(), &ModemConfig::default());
        assert_eq!(options.retry_delay(1), Duration::from_secs(10));
        assert_eq!(options.retry_delay(2), Duration::from_secs(20));
        assert_eq!(options.retry_delay(7), Duration::from_secs(600));
        assert_eq!(options.retry_delay(40), Duration::from_secs(600));
    }
}
