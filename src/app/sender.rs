//! The modem as the outbox's [`PartSender`]: the driver's classified send errors mapped to the
//! outbox's retry decisions, and "ready" meaning initialised and registered, so the outbox
//! waits (instead of spending attempts) while the modem is starting, unplugged or searching.

use crate::modem::{ModemHandle, ModemState, SendErrorKind};
use crate::outbox::{PartSender, SendFailure};
use crate::pdu::EncodedPart;

impl PartSender for ModemHandle {
    async fn send_part(&self, part: &EncodedPart, more_to_follow: bool) -> Result<u8, SendFailure> {
        ModemHandle::send_part(self, part, more_to_follow)
            .await
            .map_err(|error| match error.kind {
                SendErrorKind::Temporary => SendFailure::Temporary(error.message),
                SendErrorKind::Permanent => SendFailure::Permanent(error.message),
                SendErrorKind::Unknown => SendFailure::Unknown(error.message),
            })
    }

    fn is_ready(&self) -> bool {
        let health = self.health();
        matches!(health.state, ModemState::Ready) && health.registered
    }
}
