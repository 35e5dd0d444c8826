//! Sending one part: `AT+CMGS=<length>`, the `> ` prompt, the PDU and Ctrl-Z (TS 27.005
//! §3.5.1), and the network's confirmation, `+CMGS: <mr>`, whose TP-MR the caller keeps to pair
//! the part's status report. The parts of one message go back to back with `AT+CMMS=2` in
//! force where the modem takes it (TS 27.005 §3.5.6), so the relay link stays up between them.
//!
//! A refused part comes back classified (temporary, permanent, unknown) for the outbox to
//! decide; no answer at all is *unknown*: the part may or may not have gone. Nothing here
//! retries a send, except while the modem says it is busy.

use std::time::Duration;

use super::driver::{Driver, Served};
use super::error::SendError;
use super::parse;
use crate::at::{AtError, Command};

impl Driver {
    /// Sends one part; `more_to_follow`: another part of the same message comes next. Returns
    /// the TP-MR.
    pub(super) async fn send(
        &mut self,
        conn: &mut Served,
        pdu_hex: &str,
        tpdu_length: usize,
        more_to_follow: bool,
    ) -> Result<u8, SendError> {
        if more_to_follow && !conn.cmms_on && conn.report.cmms != Some(false) {
            let command = conn.line.plain("AT+CMMS=2").cooldown(Duration::ZERO);
            match conn.line.call(command).await {
                Ok(_) => {
                    conn.cmms_on = true;
                    conn.report.cmms = Some(true);
                }
                Err(AtError::Rejected { .. }) => conn.report.cmms = Some(false),
                Err(error) => {
                    return Err(SendError::temporary(format!(
                        "the modem did not answer AT+CMMS=2: {error}"
                    )));
                }
            }
        }
        let length = i32::try_from(tpdu_length).unwrap_or(i32::MAX);
        // No cooldown after `+CMGS`: the next part, or the next message, follows at line speed.
        let command = Command::new(parse::set_ints("+CMGS", &[length]))
            .payload(pdu_hex)
            .timeout(self.options.send_timeout)
            .cooldown(Duration::ZERO);
        let response = conn
            .line
            .patiently(command)
            .await
            .map_err(|error| SendError::from_at(&error))?;
        match response
            .lines
            .iter()
            .find_map(|line| parse::message_reference(line))
        {
            Some(mr) => {
                self.health.health.parts_sent += 1;
                Ok(mr)
            }
            None => Err(SendError::unknown(
                "the modem answered OK without +CMGS: the part may or may not have gone",
            )),
        }
    }
}
