//! The real modem as the outbox's [`PartSender`]: `AT+CMGS` through
//! [`crate::modem::ModemHandle`], its error classes mapped onto [`SendFailure`].
//!
//! Readiness is the modem's own health: only a modem that is initialised and registered
//! ([`ModemState::Ready`]) is given parts, so an unplugged or unregistered modem makes the
//! outbox wait instead of burning attempts.

use std::future::Future;

use super::{PartSender, SendFailure};
use crate::modem::{ModemHandle, ModemState, SendErrorKind};
use crate::pdu::EncodedPart;

impl PartSender for ModemHandle {
    fn send_part(
        &self,
        part: &EncodedPart,
        more_to_follow: bool,
    ) -> impl Future<Output = Result<u8, SendFailure>> + Send {
        let sent = ModemHandle::send_part(self, part, more_to_follow);
        async move {
            sent.await.map_err(|error| match error.kind {
                SendErrorKind::Temporary => SendFailure::Temporary(error.message),
                SendErrorKind::Permanent => SendFailure::Permanent(error.message),
                SendErrorKind::Unknown => SendFailure::Unknown(error.message),
            })
        }
    }

    fn is_ready(&self) -> bool {
        let health = self.health();
        health.state == ModemState::Ready && health.registered
    }
}
