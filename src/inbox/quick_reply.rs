//! Quick replies, inbound: a contact who was sent a numbered menu (`quick_reply`, rendered
//! `1. …`, `2. …` by `http::message`) answers with a bare number; within
//! `sms.quick_reply_window` of the menu, that number stands for the reply's text, so
//! respond.io workflows that branch on the reply keep working (DESIGN.md §1).
//!
//! Pure rules; the menu itself is kept by the store when the message goes out.

use crate::store::Menu;

/// The 1-based choice a text makes, if it is a bare number of one or two digits (spaces
/// around it allowed): only such a text can answer a menu.
pub(crate) fn choice(text: &str) -> Option<usize> {
    let answer = text.trim();
    if answer.is_empty() || answer.len() > 2 || !answer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    answer.parse().ok()
}

/// The reply `choice` picks from `menu`, if the menu is still answerable at `now_ms` (sent at
/// most `window_ms` before) and has that many replies.
pub(crate) fn answer(choice: usize, menu: &Menu, now_ms: i64, window_ms: i64) -> Option<String> {
    if now_ms > menu.sent_ms.saturating_add(window_ms) {
        return None;
    }
    choice
        .checked_sub(1)
        .and_then(|index| menu.replies.get(index))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_number_is_a_choice() {
        assert_eq!(choice(" 2 "), Some(2));
        assert_eq!(choice("10"), Some(10));
        for text in ["", "  ", "1 please", "100", "-1", "２", "1.5"] {
            assert_eq!(choice(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_choice_answers_a_fresh_menu_in_range() {
        let menu = Menu {
            replies: vec!["Malay".into(), "English".into()],
            sent_ms: 1_000,
        };
        assert_eq!(answer(2, &menu, 1_500, 1_000).as_deref(), Some("English"));
        assert_eq!(answer(2, &menu, 2_000, 1_000).as_deref(), Some("English"));
        assert_eq!(answer(2, &menu, 2_001, 1_000), None, "the window passed");
        assert_eq!(answer(3, &menu, 1_500, 1_000), None, "out of range");
        assert_eq!(answer(0, &menu, 1_500, 1_000), None, "0 picks nothing");
    }
}
