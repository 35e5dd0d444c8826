//! Incoming calls: `RING` (or `+CRING:`) each ring, `+CLIP: "<number>",<type>,,,,<validity>`
//! after it once `AT+CLIP=1` is on (TS 27.007 §7.6), many rings for one call.
//!
//! One call is one [`ModemEvent::Call`], however many times it rings: a ring within
//! [`Tuning::call_ring_gap`] of the last belongs to the same call (the caller's `NO CARRIER`
//! is a final result the engine does not pass on when no command runs, so the gap is what
//! ends a call). The event goes at the first `+CLIP`, or at the second `RING` when the modem
//! shows no `+CLIP` (a number not shown). With [`ModemOptions::hangup_calls`] the call is
//! rejected at once (`AT+CHUP`, TS 27.007 §6.5; `ATH` where the modem refuses it).
//!
//! It sends no event to respond.io and no reply: the caller does (`crate::calls`).
//!
//! [`Tuning::call_ring_gap`]: super::Tuning::call_ring_gap
//! [`ModemOptions::hangup_calls`]: super::ModemOptions::hangup_calls

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::driver::{Driver, Served, Work, WorkQueue};
use super::{ModemEvent, StorageSlot};
use crate::at::AtError;

/// The call ringing now.
#[derive(Debug)]
struct Call {
    last_ring: Instant,
    rings: u32,
    announced: bool,
}

/// The driver's view of incoming calls.
#[derive(Debug, Default)]
pub(super) struct CallBook {
    current: Option<Call>,
}

/// The caller in a `+CLIP` line: `Some(number)`, or `None` when withheld or not available
/// (`<CLI validity>` 1 or 2, or an empty number). `Err` for a line that does not read.
fn clip_number(line: &str) -> Result<Option<String>, ()> {
    let rest = line.strip_prefix("+CLIP:").ok_or(())?.trim();
    let rest = rest.strip_prefix('"').ok_or(())?;
    let (number, tail) = rest.split_once('"').ok_or(())?;
    let fields: Vec<&str> = tail.split(',').map(str::trim).collect();
    // `,<type>,<subaddr>,<satype>,<alpha>,<CLI validity>`: validity is the sixth field.
    let validity = fields
        .get(5)
        .and_then(|v| v.parse::<u8>().ok())
        .unwrap_or(0);
    let number = number.trim();
    if validity != 0 || number.is_empty() {
        return Ok(None);
    }
    let international = fields.get(1).and_then(|t| t.parse::<u8>().ok()) == Some(145);
    Ok(Some(if international && !number.starts_with('+') {
        format!("+{number}")
    } else {
        number.to_owned()
    }))
}

impl Driver {
    /// Takes `RING`, `+CRING:` and `+CLIP:`; `false` for any other line.
    pub(super) fn call_urc(&mut self, line: &str, work: &mut WorkQueue) -> bool {
        let now = Instant::now();
        if line == "RING" || line.starts_with("+CRING:") {
            let gap = self.tuning.call_ring_gap;
            let call = match &mut self.calls.current {
                Some(call) if now.duration_since(call.last_ring) < gap => call,
                current => current.insert(Call {
                    last_ring: now,
                    rings: 0,
                    announced: false,
                }),
            };
            call.last_ring = now;
            call.rings += 1;
            if call.rings >= 2 && !call.announced {
                // Two rings and no `+CLIP`: the modem does not show numbers.
                self.announce(None, work);
            }
            return true;
        }
        if !line.starts_with("+CLIP:") {
            return false;
        }
        let number = match clip_number(line) {
            Ok(number) => number,
            Err(()) => {
                warn!(line, "unreadable caller id");
                None
            }
        };
        let call = self.calls.current.get_or_insert(Call {
            last_ring: now,
            rings: 1,
            announced: false,
        });
        call.last_ring = now;
        if !call.announced {
            self.announce(number, work);
        }
        true
    }

    /// The call's one event, and its hang-up when configured.
    fn announce(&mut self, number: Option<String>, work: &mut WorkQueue) {
        if let Some(call) = &mut self.calls.current {
            call.announced = true;
        }
        self.health.health.calls += 1;
        match &number {
            Some(number) => info!(caller = %crate::phone::mask(number), "incoming call"),
            None => {
                self.health.health.calls_withheld += 1;
                info!("incoming call from a withheld number");
            }
        }
        self.health.publish();
        self.handover
            .queue(ModemEvent::Call { number }, &StorageSlot::None);
        if self.options.hangup_calls {
            work.add(Work::HangUp);
        }
    }

    /// Rejects the ringing call: `AT+CHUP`, then `ATH` where the modem refuses `AT+CHUP`.
    pub(super) async fn hang_up(&mut self, conn: &mut Served) {
        let command = conn.line.plain("AT+CHUP");
        match conn.line.call(command).await {
            Ok(_) => debug!("call rejected (AT+CHUP)"),
            Err(AtError::Rejected { .. }) => {
                let command = conn.line.plain("ATH");
                match conn.line.call(command).await {
                    Ok(_) => debug!("call rejected (ATH)"),
                    Err(error) => warn!(%error, "cannot hang up the call"),
                }
            }
            Err(error) => warn!(%error, "cannot hang up the call"),
        }
        // The call is over: the next ring is a new call.
        self.calls.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::clip_number;

    #[test]
    fn caller_ids_are_read() {
        assert_eq!(
            clip_number("+CLIP: \"+60123456789\",145,,,,0"),
            Ok(Some("+60123456789".into()))
        );
        assert_eq!(
            clip_number("+CLIP: \"60123456789\",145,,,,0"),
            Ok(Some("+60123456789".into()))
        );
        assert_eq!(
            clip_number("+CLIP: \"0123456789\",129,\"\",,\"\",0"),
            Ok(Some("0123456789".into()))
        );
        // A modem that stops after the type: the number counts as shown.
        assert_eq!(
            clip_number("+CLIP: \"0123456789\",129"),
            Ok(Some("0123456789".into()))
        );
        assert_eq!(clip_number("+CLIP: \"\",128,,,,1"), Ok(None));
        assert_eq!(clip_number("+CLIP: \"+60123\",145,,,,2"), Ok(None));
        assert_eq!(clip_number("+CLIP: 1,1"), Err(()));
    }
}
