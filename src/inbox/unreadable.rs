//! An SMS that cannot be decoded, even leniently, is never dropped in silence: it is
//! committed as the modem printed it (with its sender when that much can be read, where it
//! was stored, when, and why it could not be read), logged at `warn`, counted, listed by
//! `smsgate status`, and only then may the caller delete the SIM copy. Its sender, when
//! readable and forwarded by the usual rules, appears in respond.io with a visible
//! placeholder ([`super::text::UNREADABLE_SMS`]) unless `sms.forward_unreadable = false`, so
//! an agent knows the contact wrote. Status reports that cannot be decoded are kept the same
//! way and never forwarded: they come from the network, not from a contact.

use super::text::UNREADABLE_SMS;
use super::{Inbox, InboxError};
use crate::pdu::Address;
use crate::store::{NewUnreadable, Placeholder, UnreadableKind, UnreadableOutcome, stable_id};
use crate::wire::Event;

/// A PDU that did not decode, as the modem handed it over.
#[derive(Debug, Clone)]
pub struct UnreadableSms {
    /// The PDU text as the modem printed it.
    pub pdu: String,
    /// Why it could not be read.
    pub reason: String,
    /// TP-OA, when the fields up to it could be read.
    pub sender: Option<Address>,
    /// Its TP-MTI (or the URC that carried it) says status report.
    pub status_report: bool,
    /// Where it was (`SM:3`, `routed`).
    pub slot: String,
}

impl Inbox {
    /// Commits an undecodable PDU (and its placeholder event); returns once it is durable.
    pub async fn receive_unreadable(
        &self,
        sms: UnreadableSms,
    ) -> Result<UnreadableOutcome, InboxError> {
        let kind = if sms.status_report {
            UnreadableKind::StatusReport
        } else {
            UnreadableKind::Sms
        };
        let contact = match (&sms.sender, kind) {
            (Some(sender), UnreadableKind::Sms) => Some(self.contact_of(sender)),
            _ => None,
        };
        // The PDU without the quotes and spaces a modem may put around it, so a re-read is
        // recognised whatever the framing.
        let identity = sms
            .pdu
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_ascii_uppercase();
        let now_ms = self.clock.now_ms();
        let placeholder = match &contact {
            Some((contact_id, true)) if self.options.forward_unreadable => Some(Placeholder {
                contact_id: contact_id.clone(),
                event: Event::message(
                    stable_id("sms-", &[b"unreadable", identity.as_bytes()]),
                    now_ms,
                    UNREADABLE_SMS,
                ),
            }),
            _ => None,
        };
        let outcome = self
            .store
            .keep_unreadable(NewUnreadable {
                pdu_key: stable_id("unreadable-", &[identity.as_bytes()]),
                kind,
                pdu: sms.pdu,
                sender: sms.sender.as_ref().map(|sender| sender.value.clone()),
                contact_id: contact.map(|(contact_id, _)| contact_id),
                slot: sms.slot.clone(),
                reason: sms.reason.clone(),
                placeholder,
                now_ms,
            })
            .await?;
        match &outcome {
            UnreadableOutcome::Kept { m_id } => tracing::warn!(
                slot = %sms.slot,
                reason = %sms.reason,
                kind = ?kind,
                forwarded = m_id.is_some(),
                "a PDU that cannot be decoded was kept raw in the database (see `smsgate status`)"
            ),
            UnreadableOutcome::Duplicate => tracing::info!(
                slot = %sms.slot,
                "an undecodable PDU already kept was read again"
            ),
        }
        Ok(outcome)
    }
}
