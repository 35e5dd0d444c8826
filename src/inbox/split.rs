//! respond.io's limit on a `message` event's text ([`crate::wire::MAX_TEXT`], counted as
//! respond.io counts: [`crate::wire::text_length`]) applied to inbound SMS: a longer text becomes several texts, each marked `(1/2) `,
//! `(2/2) ` …, in order. Nothing is cut and nothing is refused (a 110-part SMS of emoji is
//! 7,000+ units).
//!
//! Pure text work; the events and their mIds are made by `finish`.

use crate::wire::text_length;

/// How far back from a piece's end a space may be, in UTF-16 units, for the cut to move there
/// (so words are not split when there is a space nearby).
const WORD_BREAK_WINDOW: usize = 200;

/// `text` as one piece when it fits in `max_units`, else as marked pieces that each fit.
/// Joining the pieces without their `(n/N) ` markers gives `text` back exactly.
pub(super) fn split_text(text: &str, max_units: usize) -> Vec<String> {
    if text_length(text) <= max_units {
        return vec![text.to_owned()];
    }
    // The marker's length depends on the count of pieces, which depends on the room the marker
    // leaves: grow the assumed count until it holds.
    let mut assumed = 2;
    loop {
        let room = max_units
            .saturating_sub(marker(assumed, assumed).len())
            .max(2);
        let pieces = cut(text, room);
        if pieces.len() <= assumed {
            let total = pieces.len();
            return pieces
                .into_iter()
                .enumerate()
                .map(|(index, piece)| format!("{}{piece}", marker(index + 1, total)))
                .collect();
        }
        assumed = pieces.len();
    }
}

/// `(2/3) `: ASCII, so its length in bytes is its length in UTF-16 units.
fn marker(index: usize, total: usize) -> String {
    format!("({index}/{total}) ")
}

/// Cuts `text` into pieces of at most `room` UTF-16 units, never inside a character (so never
/// between the halves of a surrogate pair), after a space when one is near the cut.
fn cut(text: &str, room: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut units = 0;
        let mut end = rest.len();
        let mut last_space = None;
        for (at, c) in rest.char_indices() {
            if units + c.len_utf16() > room {
                end = at;
                break;
            }
            units += c.len_utf16();
            if c.is_whitespace() {
                last_space = Some((at + c.len_utf8(), units));
            }
        }
        if end < rest.len() {
            if let Some((after_space, at_units)) = last_space {
                if units - at_units <= WORD_BREAK_WINDOW && after_space > 0 {
                    end = after_space;
                }
            }
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MAX_TEXT;

    fn units(text: &str) -> usize {
        text_length(text)
    }

    fn unmarked(pieces: &[String]) -> String {
        pieces
            .iter()
            .map(|piece| piece.split_once(") ").expect("marked").1)
            .collect()
    }

    #[test]
    fn a_text_that_fits_is_one_unmarked_piece() {
        let text = "\u{1F600}".repeat(3_500);
        assert_eq!(split_text(&text, MAX_TEXT), vec![text]);
    }

    #[test]
    fn the_issue_case_3600_emoji_are_two_marked_pieces_that_rejoin() {
        let text = "\u{1F600}".repeat(3_600);
        let pieces = split_text(&text, MAX_TEXT);
        assert_eq!(pieces.len(), 2);
        assert!(pieces[0].starts_with("(1/2) ") && pieces[1].starts_with("(2/2) "));
        assert!(
            pieces.iter().all(|p| units(p) <= MAX_TEXT),
            "{:?}",
            pieces.iter().map(|p| units(p)).collect::<Vec<_>>()
        );
        assert_eq!(unmarked(&pieces), text);
    }

    #[test]
    fn pieces_fit_rejoin_and_prefer_spaces_for_many_shapes() {
        let shapes = [
            "word ".repeat(3_000),
            "a".repeat(25_000),
            "é\u{1F600}x ".repeat(4_000),
            format!("{}{}", "a".repeat(6_999), "\u{1F600}".repeat(10)),
        ];
        for text in &shapes {
            for max in [MAX_TEXT, 100, 40] {
                let pieces = split_text(text, max);
                assert!(pieces.len() >= 2);
                for piece in &pieces {
                    assert!(units(piece) <= max, "{} > {max}", units(piece));
                }
                assert_eq!(&unmarked(&pieces), text, "max {max}");
                let total = pieces.len();
                for (index, piece) in pieces.iter().enumerate() {
                    assert!(piece.starts_with(&format!("({}/{total}) ", index + 1)));
                }
            }
        }
        let words = split_text(&"word ".repeat(3_000), MAX_TEXT);
        assert!(words[0].ends_with("word "), "cut after a space");
    }
}
