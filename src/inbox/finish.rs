//! What a received message becomes once its parts are in (or its reassembly timed out): the
//! store runs these rules ([`Rules`], its [`FinishMessage`]) inside the transaction that
//! completes the message.
//!
//! - Its text is its parts in order, with a visible marker for each part that never arrived
//!   ([`gap_marker`]); a bare number answering a quick-reply menu becomes the reply
//!   ([`super::quick_reply`]); a text that ends up empty becomes [`EMPTY_SMS`] (respond.io
//!   refuses an empty `text`).
//! - Its mId is a single part's own key, or for a concatenated message its group and its
//!   lowest part present: both fixed once the parts are in, so a replay gives the same mId.
//! - It is forwarded as one `message` event, or as several in order, each with its own mId
//!   (`<mId>-1`, `<mId>-2` …), when its text is longer than respond.io takes ([`super::split`]);
//!   a message kept locally (the alphanumeric-sender rule) has no event.

use crate::store::{Assembled, FinishMessage, Finished, StoreError, stable_id};
use crate::wire::{Event, MAX_TEXT};

use super::quick_reply;
use super::split::split_text;

/// What an SMS with no text at all is forwarded as: respond.io refuses an empty `text`.
pub(crate) const EMPTY_SMS: &str = "(empty SMS)";

/// The visible marker for a part that never arrived.
pub(crate) fn gap_marker(sequence: u8, total: u8) -> String {
    format!("[part {sequence} of {total} missing]")
}

/// The inbox's rules for finishing a message.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    /// How long after a quick-reply menu a bare number still answers it.
    pub(super) quick_reply_window_ms: i64,
}

impl FinishMessage for Rules {
    fn finish(&self, message: &Assembled<'_>, now_ms: i64) -> Result<Finished, StoreError> {
        let first = message
            .parts
            .first()
            .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))?;
        let m_id = match message.group_key {
            None => first.part_key.clone(),
            Some(group_key) => {
                stable_id("sms-", &[group_key.as_bytes(), first.part_key.as_bytes()])
            }
        };
        let mut text = String::new();
        for sequence in 1..=message.total {
            match message.parts.iter().find(|part| part.sequence == sequence) {
                Some(part) => text.push_str(&part.text),
                None => text.push_str(&gap_marker(sequence, message.total)),
            }
        }
        if let Some(choice) = quick_reply::choice(&text)
            && let Some(menu) = message.menu()?
            && let Some(reply) =
                quick_reply::answer(choice, &menu, now_ms, self.quick_reply_window_ms)
        {
            text = reply;
        }
        if text.trim().is_empty() {
            text = EMPTY_SMS.to_owned();
        }
        let events = if message.forward {
            let pieces = split_text(&text, MAX_TEXT);
            let several = pieces.len() > 1;
            pieces
                .into_iter()
                .enumerate()
                .map(|(index, piece)| {
                    let piece_id = if several {
                        format!("{m_id}-{}", index + 1)
                    } else {
                        m_id.clone()
                    };
                    Event::message(piece_id, first.timestamp_ms, piece)
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Finished { m_id, text, events })
    }
}
