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
//! A rejected call ends when the hang-up is answered `OK`, not when the work is queued: the
//! modem goes on ringing until then (every few seconds), and those `RING`/`+CLIP` may be read
//! while `AT+CHUP` runs or wait behind it. Each URC carries where in the port's stream it was
//! read ([`crate::at::Urc::seq`]), and so does the hang-up's answer: whatever was read up to
//! that answer is the rejected call, whatever comes after it a new one. A hang-up the modem
//! refuses or does not answer leaves the call as it was, still one call, and is tried again
//! at its next ring, up to [`HANG_UP_ATTEMPTS`] times in all; then it rings out.
//!
//! It sends no event to respond.io and no reply: the caller does (`crate::calls`).
//!
//! [`Tuning::call_ring_gap`]: super::Tuning::call_ring_gap
//! [`ModemOptions::hangup_calls`]: super::ModemOptions::hangup_calls

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::driver::{Driver, Served, Work, WorkQueue};
use super::{ModemEvent, StorageSlot};
use crate::at::AtError;

/// How many times one call's hang-up is tried (at its announcement, then at each later ring
/// while the modem refuses or does not answer it).
pub(super) const HANG_UP_ATTEMPTS: u32 = 3;

/// The call ringing now.
#[derive(Debug)]
struct Call {
    last_ring: Instant,
    rings: u32,
    announced: bool,
    /// Hang-ups tried and failed.
    failed_hang_ups: u32,
    /// The last hang-up failed: try again at the next ring.
    retry_hang_up: bool,
}

/// The driver's view of incoming calls.
#[derive(Debug, Default)]
pub(super) struct CallBook {
    current: Option<Call>,
    /// Where in this connection's stream the last successful hang-up was answered: URCs read
    /// up to there belong to the call it rejected.
    rejected_through: Option<u64>,
}

impl CallBook {
    /// A new connection numbers its stream afresh.
    pub(super) fn new_connection(&mut self) {
        self.rejected_through = None;
    }

    /// `true` for a URC read before the last hang-up was answered: the rejected call ringing
    /// on while the modem took the hang-up.
    fn of_rejected_call(&self, seq: u64) -> bool {
        self.rejected_through.is_some_and(|mark| seq <= mark)
    }

    /// A `RING` read at `seq`, `now`; `true` when the call is to be announced now (its second
    /// ring and no `+CLIP`: the modem does not show numbers).
    fn ring(&mut self, seq: u64, now: Instant, gap: Duration) -> bool {
        if self.of_rejected_call(seq) {
            return false;
        }
        let call = match &mut self.current {
            Some(call) if now.duration_since(call.last_ring) < gap => call,
            current => current.insert(Call::new(now, 0)),
        };
        call.last_ring = now;
        call.rings += 1;
        let announce = call.rings >= 2 && !call.announced;
        call.announced |= announce;
        announce
    }

    /// A `+CLIP` read at `seq`, `now`; `true` when the call is to be announced now (with the
    /// number it shows).
    fn caller_id(&mut self, seq: u64, now: Instant) -> bool {
        if self.of_rejected_call(seq) {
            return false;
        }
        let call = self.current.get_or_insert(Call::new(now, 1));
        call.last_ring = now;
        let announce = !call.announced;
        call.announced = true;
        announce
    }

    /// The hang-up was answered `OK` at `mark`: the call is over, whatever was read up to
    /// `mark` was its last ringing, and the next ring after it is a new call.
    fn hung_up(&mut self, mark: u64) {
        self.current = None;
        self.rejected_through = Some(mark);
    }

    /// The hang-up failed: the call goes on, and its next ring tries again while attempts
    /// remain.
    fn hang_up_failed(&mut self) {
        if let Some(call) = &mut self.current {
            call.failed_hang_ups += 1;
            call.retry_hang_up = call.failed_hang_ups < HANG_UP_ATTEMPTS;
        }
    }

    /// `true` once after a failed hang-up that is to be tried again (called at a ring).
    fn take_hang_up_retry(&mut self) -> bool {
        self.current
            .as_mut()
            .is_some_and(|call| std::mem::take(&mut call.retry_hang_up))
    }
}

impl Call {
    fn new(now: Instant, rings: u32) -> Self {
        Self {
            last_ring: now,
            rings,
            announced: false,
            failed_hang_ups: 0,
            retry_hang_up: false,
        }
    }
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
    /// Takes `RING`, `+CRING:` and `+CLIP:` (read at `seq` in the stream); `false` for any
    /// other line.
    pub(super) fn call_urc(&mut self, line: &str, seq: u64, work: &mut WorkQueue) -> bool {
        let now = Instant::now();
        let ring = line == "RING" || line.starts_with("+CRING:");
        if !ring && !line.starts_with("+CLIP:") {
            return false;
        }
        if self.calls.of_rejected_call(seq) {
            debug!(line, "the rejected call still ringing");
            return true;
        }
        if ring {
            if self.calls.ring(seq, now, self.tuning.call_ring_gap) {
                self.announce(None, work);
            } else if self.options.hangup_calls && self.calls.take_hang_up_retry() {
                work.add(Work::HangUp);
            }
            return true;
        }
        let number = match clip_number(line) {
            Ok(number) => number,
            Err(()) => {
                warn!(line, "unreadable caller id");
                None
            }
        };
        if self.calls.caller_id(seq, now) {
            self.announce(number, work);
        }
        true
    }

    /// The call's one event, and its hang-up when configured.
    fn announce(&mut self, number: Option<String>, work: &mut WorkQueue) {
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
        let mark = match conn.line.call_marked(command).await {
            (Ok(_), mark) => {
                debug!("call rejected (AT+CHUP)");
                Some(mark)
            }
            (Err(AtError::Rejected { .. }), _) => {
                let command = conn.line.plain("ATH");
                match conn.line.call_marked(command).await {
                    (Ok(_), mark) => {
                        debug!("call rejected (ATH)");
                        Some(mark)
                    }
                    (Err(error), _) => {
                        warn!(%error, "cannot hang up the call");
                        None
                    }
                }
            }
            (Err(error), _) => {
                warn!(%error, "cannot hang up the call");
                None
            }
        };
        // Hung up: the rings read until the answer were this call's, the next is a new call.
        // Not hung up: the call rings on as the same call, and its next ring tries again.
        match mark {
            Some(mark) => self.calls.hung_up(mark),
            None => self.calls.hang_up_failed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{CallBook, HANG_UP_ATTEMPTS, clip_number};

    const GAP: Duration = Duration::from_secs(12);
    const RING_INTERVAL: Duration = Duration::from_secs(3);

    #[test]
    fn rings_read_before_the_hang_up_was_answered_are_the_rejected_call() {
        let start = Instant::now();
        let at = |n: u32| start + RING_INTERVAL * n;
        let mut book = CallBook::default();
        assert!(!book.ring(1, at(0), GAP), "one ring: wait for +CLIP");
        assert!(book.caller_id(2, at(0)), "announced at its +CLIP");
        // Rang again while `AT+CHUP` ran, or before the hang-up work was taken up: read at 3
        // and 4, handled after the answer read at 5.
        book.hung_up(5);
        assert!(
            !book.ring(3, at(1), GAP),
            "the rejected call, not a new one"
        );
        assert!(
            !book.caller_id(4, at(1)),
            "the rejected call, not a new one"
        );
        assert!(book.current.is_none());
    }

    #[test]
    fn a_call_after_the_hang_up_was_answered_is_a_new_call() {
        let start = Instant::now();
        let mut book = CallBook::default();
        assert!(!book.ring(1, start, GAP));
        assert!(book.caller_id(2, start));
        book.hung_up(3);
        // Within the ring gap of the last call, but read after the hang-up's `OK`.
        let later = start + Duration::from_secs(1);
        assert!(!book.ring(4, later, GAP), "its first ring");
        assert!(book.caller_id(5, later), "the new call is announced");
        assert!(!book.ring(6, later + RING_INTERVAL, GAP), "announced once");
        // A withheld number: announced at its second ring.
        book.hung_up(7);
        assert!(!book.ring(8, later + RING_INTERVAL * 2, GAP));
        assert!(book.ring(9, later + RING_INTERVAL * 3, GAP));
    }

    #[test]
    fn a_new_connection_forgets_where_the_last_hang_up_was_answered() {
        let start = Instant::now();
        let mut book = CallBook::default();
        assert!(book.caller_id(1, start));
        book.hung_up(500);
        book.new_connection();
        // The new engine counts from the start again.
        assert!(!book.ring(1, start + RING_INTERVAL, GAP));
        assert!(book.caller_id(2, start + RING_INTERVAL));
    }

    #[test]
    fn a_failed_hang_up_is_tried_again_at_the_next_rings_a_few_times() {
        let mut book = CallBook::default();
        let gap = Duration::from_secs(8);
        let start = Instant::now();
        assert!(book.caller_id(1, start));
        // The hang-up at the announcement fails; each retry at a later ring fails too.
        book.hang_up_failed();
        let mut retries = 0;
        for ring in 0..10u32 {
            let at = start + Duration::from_secs(u64::from(ring + 1) * 3);
            assert!(
                !book.ring(10 + u64::from(ring), at, gap),
                "still the same call"
            );
            if book.take_hang_up_retry() {
                assert!(!book.take_hang_up_retry(), "one retry per failure");
                retries += 1;
                book.hang_up_failed();
            }
        }
        assert_eq!(
            retries,
            HANG_UP_ATTEMPTS - 1,
            "one try at the announcement, then retries"
        );
        // A retry that works ends the call.
        let mut book = CallBook::default();
        assert!(book.caller_id(1, start));
        book.hang_up_failed();
        assert!(!book.ring(2, start + Duration::from_secs(3), gap));
        assert!(book.take_hang_up_retry());
        book.hung_up(3);
        assert!(
            book.caller_id(4, start + Duration::from_secs(4)),
            "a new call"
        );
    }

    #[test]
    fn without_a_hang_up_one_call_lasts_until_its_rings_stop() {
        let start = Instant::now();
        let mut book = CallBook::default();
        assert!(!book.ring(1, start, GAP));
        assert!(
            book.ring(2, start + RING_INTERVAL, GAP),
            "two rings, no +CLIP"
        );
        assert!(
            !book.ring(3, start + RING_INTERVAL * 2, GAP),
            "the same call"
        );
        assert!(
            !book.caller_id(4, start + RING_INTERVAL * 2),
            "the same call"
        );
        // A ring after the gap is the next call.
        let next = start + RING_INTERVAL * 2 + GAP;
        assert!(!book.ring(5, next, GAP));
        assert!(book.caller_id(6, next));
    }

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
