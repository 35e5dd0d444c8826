//! Status reports, paired with the parts they report on by (TP-MR, recipient, time window)
//! (DESIGN.md §1 "Status"): TP-MR is one octet and wraps every 256 parts, so only parts sent
//! within `sms.report_window` are candidates, the most recent first. The store records the
//! report and moves the message forward: `delivered` when every part is, `failed` when one
//! fails for good; TP-ST 0x20–0x3F (the centre still trying) changes nothing yet. A report
//! that matches no part yet is parked in the store until one does.
//!
//! It needs no modem: the inbound pipeline ([`crate::intake`]) hands reports over as the
//! modem reads them, whichever modem that is.

use std::time::Duration;

use super::{OutboxError, OutboxOptions, millis};
use crate::clock::Clock;
use crate::pdu;
use crate::store::{ReportOutcome, StatusReportInput, Store};

/// Pairs status reports with parts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reports {
    store: Store,
    /// Pairing window (`sms.report_window`).
    window: Duration,
    /// To normalise national recipient numbers as contact IDs are.
    default_country: String,
    clock: Clock,
    /// The SIM these reports come from (a pool runs one `Reports` per modem).
    modem: Option<String>,
}

impl Reports {
    pub fn new(store: Store, options: &OutboxOptions) -> Self {
        Self {
            store,
            window: options.report_window,
            default_country: options.default_country.clone(),
            clock: Clock::system(),
            modem: None,
        }
    }

    /// Reports from SIM `modem`: they pair only with the parts it sent.
    pub fn from_modem(mut self, modem: &str) -> Self {
        self.modem = Some(modem.to_owned());
        self
    }

    /// Replaces the wall clock (tests; the outbox gives its own).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Pairs a status report with its part and moves the message forward; returns once it is
    /// committed (paired or parked), so the modem's copy may then be released.
    pub async fn apply(&self, report: &pdu::StatusReport) -> Result<ReportOutcome, OutboxError> {
        let recipient = recipient_key(&report.recipient.value, &self.default_country);
        let outcome = self
            .store
            .apply_status_report(StatusReportInput {
                mr: report.message_reference,
                recipient,
                status: report.status,
                now_ms: self.clock.now_ms(),
                window_ms: millis(self.window),
                modem: self.modem.clone(),
            })
            .await?;
        match &outcome {
            ReportOutcome::Unmatched => tracing::info!(
                mr = report.message_reference,
                status = report.status,
                "a status report matches no part sent in the window (yet); kept for the part \
                 whose answer is still to be recorded"
            ),
            ReportOutcome::Matched { m_id, events } => {
                tracing::debug!(%m_id, status = report.status, ?events, "status report");
            }
        }
        Ok(outcome)
    }
}

/// A status report's recipient in the form parts are stored under (the contact ID).
fn recipient_key(value: &str, default_country: &str) -> String {
    if value.starts_with('+') {
        return value.to_owned();
    }
    crate::phone::normalise_sender(value, default_country)
        .map(|number| number.to_string())
        .unwrap_or_else(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_recipients_normalise_like_contacts() {
        assert_eq!(recipient_key("+60177872890", "MY"), "+60177872890");
        assert_eq!(recipient_key("0177872890", "MY"), "+60177872890");
        assert_eq!(recipient_key("22556", "MY"), "22556");
    }
}
