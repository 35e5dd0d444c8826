//! The inbound pipeline: turns each SMS part the modem read into a committed row, and complete
//! messages into respond.io `message` events (DESIGN.md §1 "Inbound", §2).
//!
//! [`Inbox::receive`] returns only once the part is durable in SQLite; the caller deletes the
//! SIM copy after that, never before. Identity comes from the SMS itself, so a re-read after a
//! crash or a duplicate notification is recognised and keeps its `mId`:
//! - a single-part SMS is identified by its TPDU (sender, timestamp, text and all);
//! - a part of a concatenated SMS by (sender, SCTS, reference, total, sequence), and its message
//!   by (sender, reference, total) plus its lowest part present.
//!
//! Never by text alone: two identical texts from one contact are two messages.
//!
//! Senders become E.164 contact IDs (`sms.default_country` for national numbers); senders that
//! are not phone numbers (alphanumeric names, short codes) follow `respond.alphanumeric_senders`.
//! A bare number answering the quick-reply menu last sent to the contact (within
//! `sms.quick_reply_window`) becomes the chosen reply's text ([`quick_reply`]). Multipart
//! messages whose parts do not all arrive within `sms.reassembly_timeout` are forwarded with a
//! gap marker ([`finish::gap_marker`]); a straggler arriving after that starts a message of its
//! own, forwarded the same way once its own timeout passes. What a finished message becomes —
//! its mId, its text, its events, split when longer than respond.io takes — is [`finish`]'s
//! rule, run by the store in the transaction that completes the message. An SMS without a
//! readable TP-SCTS is stamped with the time it was received. What a part's text is ([`text`])
//! never leaves a message empty, and an SMS that cannot be decoded at all is kept raw
//! ([`unreadable`]). This module does not talk to the modem.

pub(crate) mod finish;
pub(crate) mod quick_reply;
mod split;
pub mod text;
pub mod unreadable;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{AlphanumericPolicy, Config};
use crate::pdu::{Address, Concat, Deliver, TypeOfNumber};
use crate::store::{InboundOutcome, NewInboundPart, PartGroup, Store, StoreError, stable_id};

/// Errors of the inbound pipeline.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The inbox's settings.
#[derive(Debug, Clone)]
pub struct InboxOptions {
    /// ISO 3166 alpha-2 country for national sender numbers.
    pub default_country: String,
    pub alphanumeric_senders: AlphanumericPolicy,
    pub quick_reply_window: Duration,
    pub reassembly_timeout: Duration,
    /// Tell respond.io, from the sender, about an SMS that could not be decoded.
    pub forward_unreadable: bool,
}

impl InboxOptions {
    pub fn from_config(config: &Config) -> Self {
        Self {
            default_country: config.sms.default_country.clone(),
            alphanumeric_senders: config.respond.alphanumeric_senders,
            quick_reply_window: config.sms.quick_reply_window,
            reassembly_timeout: config.sms.reassembly_timeout,
            forward_unreadable: config.sms.forward_unreadable,
        }
    }
}

/// The fields of an SMS-DELIVER the inbox uses (so tests need not build whole PDUs).
#[derive(Debug, Clone)]
pub struct ReceivedPart {
    pub sender: Address,
    /// The service-centre timestamp (SCTS); `None` when the PDU's could not be read (the
    /// time of receipt stands in for it).
    pub timestamp: Option<DateTime<FixedOffset>>,
    pub concat: Option<Concat>,
    pub text: String,
    /// The PDU as read (SMSC field in front).
    pub pdu: Vec<u8>,
}

impl ReceivedPart {
    pub fn from_deliver(deliver: &Deliver, pdu: &[u8]) -> Self {
        Self {
            sender: deliver.sender.clone(),
            timestamp: deliver.timestamp,
            concat: deliver.user_data.concat,
            text: text::part_text(&deliver.user_data),
            pdu: pdu.to_vec(),
        }
    }
}

/// The inbound pipeline.
#[derive(Clone)]
pub struct Inbox {
    store: Store,
    options: InboxOptions,
    rules: Arc<finish::Rules>,
    clock: Clock,
    /// The SIM this inbox takes parts from, and whether its senders become sticky to it.
    modem: Option<(String, bool)>,
}

impl Inbox {
    pub fn new(store: Store, options: InboxOptions) -> Self {
        let rules = Arc::new(finish::Rules {
            quick_reply_window_ms: millis(options.quick_reply_window),
        });
        Self {
            store,
            options,
            rules,
            clock: Clock::system(),
            modem: None,
        }
    }

    /// This inbox for the parts SIM `modem` receives: each part records the SIM, and with
    /// `sticky` the sender is bound to it at once (their queued messages move there).
    pub fn on_modem(mut self, modem: &str, sticky: bool) -> Self {
        self.modem = Some((modem.to_owned(), sticky));
        self
    }

    /// Replaces the wall clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Clock::from_fn(clock);
        self
    }

    /// Commits one received part; returns once it is durable. Only then may the caller delete
    /// the SIM copy (`ModemHandle::confirm`).
    pub async fn receive(
        &self,
        deliver: &Deliver,
        pdu: &[u8],
    ) -> Result<InboundOutcome, InboxError> {
        self.receive_part(ReceivedPart::from_deliver(deliver, pdu))
            .await
    }

    /// [`Inbox::receive`] for an already extracted part.
    pub async fn receive_part(&self, part: ReceivedPart) -> Result<InboundOutcome, InboxError> {
        let (contact_id, forward) = self.contact_of(&part.sender);
        let now_ms = self.clock.now_ms();
        let timestamp_ms = match part.timestamp {
            Some(timestamp) => timestamp.timestamp_millis(),
            None => {
                tracing::debug!(
                    "the SMS has no readable TP-SCTS; it is stamped with the time of receipt"
                );
                now_ms
            }
        };
        let sender = part.sender.value.as_bytes();
        let (part_key, group) = match part.concat.filter(|c| c.total > 1) {
            None => (stable_id("sms-", &[b"single", tpdu(&part.pdu)]), None),
            Some(concat) => {
                let reference = concat.reference.to_be_bytes();
                // Without a readable SCTS the whole TPDU tells a re-read from a new part.
                let scts = part
                    .timestamp
                    .map_or_else(|| tpdu(&part.pdu).to_vec(), |t| t.to_rfc3339().into_bytes());
                let part_key = stable_id(
                    "part-",
                    &[
                        sender,
                        &scts,
                        &reference,
                        &[concat.total],
                        &[concat.sequence],
                    ],
                );
                let group_key = stable_id("group-", &[sender, &reference, &[concat.total]]);
                let group = PartGroup {
                    group_key,
                    sequence: concat.sequence,
                    total: concat.total,
                };
                (part_key, Some(group))
            }
        };
        let part = NewInboundPart {
            part_key,
            contact_id,
            forward,
            group,
            text: part.text,
            timestamp_ms,
            pdu: part.pdu,
            now_ms,
            modem: self.modem.as_ref().map(|(modem, _)| modem.clone()),
            bind_sender: self.modem.as_ref().is_some_and(|(_, sticky)| *sticky),
        };
        let outcome = self.store.receive_part(part, self.rules.clone()).await?;
        match &outcome {
            InboundOutcome::Duplicate => {
                tracing::info!("an SMS part already stored was read again")
            }
            InboundOutcome::Waiting { received, total } => {
                tracing::debug!(received, total, "part stored; waiting for the others")
            }
            InboundOutcome::Complete {
                m_id, forwarded, ..
            } => {
                tracing::info!(%m_id, forwarded, "SMS received")
            }
        }
        Ok(outcome)
    }

    /// Forwards the multipart messages that waited longer than the reassembly timeout.
    pub async fn flush_expired(&self) -> Result<Vec<String>, InboxError> {
        let now = self.clock.now_ms();
        let cutoff = now.saturating_sub(millis(self.options.reassembly_timeout));
        let flushed = self
            .store
            .flush_partials(cutoff, now, self.rules.clone())
            .await?;
        for m_id in &flushed {
            tracing::warn!(%m_id, "forwarded an SMS with missing parts after the reassembly timeout");
        }
        Ok(flushed)
    }

    /// Flushes timed-out partial messages until `shutdown`. A database error is logged and
    /// retried a little later: the parts are safe where they are.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), InboxError> {
        while !shutdown.is_cancelled() {
            let wait = match self.flush_and_plan().await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::error!(%error, "reassembly timeout check failed; retrying shortly");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }

    /// One round of [`Inbox::run`]: flush, then how long until the next message may time out.
    async fn flush_and_plan(&self) -> Result<Duration, InboxError> {
        self.flush_expired().await?;
        let timeout = millis(self.options.reassembly_timeout);
        let wait = match self.store.oldest_partial_ms().await? {
            Some(first) => (first + timeout - self.clock.now_ms()).clamp(100, 60_000),
            None => 60_000,
        };
        Ok(Duration::from_millis(wait as u64))
    }

    /// The contact ID of a sender and whether its messages go to respond.io.
    fn contact_of(&self, sender: &Address) -> (String, bool) {
        let phone = match sender.ton {
            TypeOfNumber::International => {
                let digits = sender.value.trim_start_matches('+');
                crate::phone::E164::parse(&format!("+{digits}")).ok()
            }
            TypeOfNumber::Alphanumeric => None,
            _ => crate::phone::normalise_sender(&sender.value, &self.options.default_country),
        };
        match phone {
            Some(number) => (number.to_string(), true),
            None => (
                sender.value.clone(),
                self.options.alphanumeric_senders == AlphanumericPolicy::Forward,
            ),
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The TPDU of a PDU read from the modem: what follows the SMSC field (its first octet is its
/// length in octets, 3GPP TS 27.005 §3.1 / TS 24.011 §8.2.5.1). The SMSC field is left out of
/// the identity because the same SMS may be read back with it normalised differently.
fn tpdu(pdu: &[u8]) -> &[u8] {
    pdu.first()
        .and_then(|&len| pdu.get(1 + len as usize..))
        .unwrap_or(pdu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpdu_skips_the_smsc_field() {
        assert_eq!(tpdu(&[0x00, 0x04, 0x05]), &[0x04, 0x05]);
        assert_eq!(tpdu(&[0x02, 0x91, 0x44, 0x04]), &[0x04]);
        assert_eq!(tpdu(&[0x09, 0x01]), &[0x09, 0x01], "bad length: whole PDU");
        assert_eq!(tpdu(&[]), &[] as &[u8]);
    }
}
