//! The inbound pipeline of one modem: everything the modem reads is committed first and
//! released in the modem after (DESIGN.md §1 "Inbound", §2 "accepted means durable").
//!
//! For each [`ModemEvent`], in the order the modem hands them over:
//! 1. commit it: an SMS part to the inbox ([`Inbox::receive`]: the part, and when it completes
//!    its message, the message and its `message` events), an undecodable PDU to the inbox too
//!    ([`Inbox::receive_unreadable`]), a status report to the outbox's pairing
//!    ([`Reports::apply`]: paired with its part, or parked until the part is known);
//! 2. then release the modem's copy ([`ModemHandle::confirm`]: `AT+CMGD` for a stored one,
//!    `AT+CNMA` for a routed one that waits for it).
//!
//! What cannot be committed is given back ([`ModemHandle::reject`]): a stored copy stays in the
//! modem for the next sweep, a routed one is refused so the network delivers it again. A copy
//! that cannot be released after its commit is not lost either: a re-read or a re-delivery has
//! the same dedupe key.
//!
//! An incoming call (no copy to release) goes to [`crate::calls::Calls`].
//!
//! One [`Intake`] serves one modem; several may share one inbox and one [`Reports`]. It does
//! not decode, store or pair anything itself.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::inbox::unreadable::UnreadableSms;
use crate::inbox::{Inbox, InboxError};
use crate::modem::{ModemEvent, ModemHandle, StorageSlot};
use crate::outbox::{OutboxError, Reports};

/// Why something the modem read could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Inbox(#[from] InboxError),
    #[error(transparent)]
    Reports(#[from] OutboxError),
    #[error(transparent)]
    Call(#[from] crate::store::StoreError),
}

/// The inbound pipeline of one modem. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    inbox: Inbox,
    reports: Reports,
    calls: Option<std::sync::Arc<crate::calls::Calls>>,
}

impl Intake {
    pub fn new(inbox: Inbox, reports: Reports) -> Self {
        Self {
            inbox,
            reports,
            calls: None,
        }
    }

    /// Incoming calls go to `calls` (without it they are only logged and counted).
    pub fn with_calls(mut self, calls: std::sync::Arc<crate::calls::Calls>) -> Self {
        self.calls = Some(calls);
        self
    }

    /// Takes `modem`'s events until `shutdown` (or until the modem task ends, which happens
    /// only when the daemon stops): each is committed, then released or given back.
    pub async fn run(
        self,
        modem: ModemHandle,
        mut events: mpsc::Receiver<ModemEvent>,
        shutdown: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                event = events.recv() => event,
            };
            let Some(event) = event else {
                // The modem task ended; during shutdown that is expected.
                shutdown.cancelled().await;
                return;
            };
            self.take(&modem, event).await;
        }
    }

    /// Commits one event, then releases the modem's copy, or gives it back.
    async fn take(&self, modem: &ModemHandle, event: ModemEvent) {
        let (what, slot, committed) = self.commit(event).await;
        match committed {
            Ok(()) => {
                if let Err(error) = modem.confirm(slot.clone()).await {
                    tracing::warn!(%error, %slot,
                        "cannot release {what} in the modem after committing it; when it comes \
                         again it is recognised");
                }
            }
            Err(error) => {
                tracing::error!(%error, %slot, "cannot store {what}; {}", kept(&slot));
                if let Err(error) = modem.reject(slot.clone()).await {
                    tracing::warn!(%error, "cannot give {what} back to the modem");
                }
            }
        }
    }

    /// Commits one event: what it was (for the log), where it is in the modem, and whether it
    /// is durable now.
    async fn commit(
        &self,
        event: ModemEvent,
    ) -> (&'static str, StorageSlot, Result<(), IntakeError>) {
        match event {
            ModemEvent::Received { deliver, pdu, slot } => {
                let committed = self.inbox.receive(&deliver, &pdu).await;
                (
                    "a received SMS",
                    slot,
                    committed.map(drop).map_err(Into::into),
                )
            }
            ModemEvent::Unreadable {
                pdu,
                reason,
                sender,
                status_report,
                slot,
            } => {
                let sms = UnreadableSms {
                    pdu,
                    reason,
                    sender,
                    status_report,
                    slot: slot.to_string(),
                };
                let committed = self.inbox.receive_unreadable(sms).await;
                (
                    "an undecodable SMS",
                    slot,
                    committed.map(drop).map_err(Into::into),
                )
            }
            ModemEvent::StatusReport { report, slot } => {
                // Committed even when it matches no part yet (parked), so releasing it in the
                // modem loses nothing.
                let committed = self.reports.apply(&report).await;
                (
                    "a status report",
                    slot,
                    committed.map(drop).map_err(Into::into),
                )
            }
            ModemEvent::Call { number } => {
                let committed = match &self.calls {
                    Some(calls) => calls.on_call(number.as_deref()).await,
                    None => Ok(()),
                };
                (
                    "an incoming call",
                    StorageSlot::None,
                    committed.map_err(Into::into),
                )
            }
        }
    }
}

/// Where something that could not be committed waits, in words for the log.
fn kept(slot: &StorageSlot) -> &'static str {
    match slot {
        StorageSlot::Stored { .. } => {
            "it stays in the modem's storage and the next sweep offers it again"
        }
        StorageSlot::Routed => "it is refused (AT+CNMA=2), so the network delivers it again later",
        StorageSlot::None => "the modem acknowledged it itself (no AT+CSMS=1), so it is lost",
    }
}
