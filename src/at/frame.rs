//! Bytes → frames: the lowest layer of the AT engine.
//!
//! A modem (the DCE) answers in lines ended by `\r\n` (ITU-T V.250 §5.7.1 with `S3`/`S4` at
//! their defaults), but real devices also send bare `\r` (command echo), bare `\n`, and blank
//! lines between results. The one frame without a line end is the `> ` prompt that
//! `AT+CMGS` waits on (TS 27.005 §3.5.1). This module turns any split of the byte stream into
//! the same sequence of [`Frame`]s and counts what it had to throw away.
//!
//! It does not classify lines (that is [`super::classify`]) and keeps no state about the
//! command in flight beyond the one hint "a prompt is expected now".

/// The end-of-text byte that ends a PDU after the prompt (Ctrl-Z, TS 27.005 §3.5.1).
pub const CTRL_Z: u8 = 0x1a;
/// The byte that cancels a pending prompt without sending (ESC, TS 27.005 §3.5.1).
pub const ESC: u8 = 0x1b;

/// One unit of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A non-empty line, without its line end and without surrounding spaces.
    Line(String),
    /// The `> ` prompt: the modem waits for the PDU.
    Prompt,
}

/// Splits the byte stream into [`Frame`]s with a bounded buffer.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max_line: usize,
    /// The current line was too long and is being skipped up to its end.
    discarding: bool,
    garbage: u64,
}

impl Framer {
    /// A framer that drops (and counts) lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            buf: Vec::with_capacity(256),
            max_line: max_line.max(16),
            discarding: false,
            garbage: 0,
        }
    }

    /// Bytes dropped so far: control characters, non-ASCII noise, overlong lines.
    pub fn garbage(&self) -> u64 {
        self.garbage
    }

    /// Feeds bytes; appends every complete frame to `out`.
    ///
    /// `prompt_expected`: the command in flight waits for `> `. A lone `>` is then taken as the
    /// prompt too (some modems omit the space); otherwise only `> ` at the start of a line is.
    pub fn feed(&mut self, bytes: &[u8], prompt_expected: bool, out: &mut Vec<Frame>) {
        for &byte in bytes {
            match byte {
                b'\r' | b'\n' => self.end_line(out),
                0x20..=0x7e => {
                    if self.discarding {
                        self.garbage += 1;
                        continue;
                    }
                    if self.buf.len() >= self.max_line {
                        // A line this long is noise (a PDU line is at most 2 × 176 hex digits);
                        // keep memory bounded and skip to the next line end.
                        self.garbage += self.buf.len() as u64 + 1;
                        self.buf.clear();
                        self.discarding = true;
                        continue;
                    }
                    self.buf.push(byte);
                    if self.buf == b"> " || (prompt_expected && self.buf == b">") {
                        self.buf.clear();
                        out.push(Frame::Prompt);
                    }
                }
                // The Ctrl-Z or ESC of an echoed PDU: expected, not noise.
                CTRL_Z | ESC => {}
                // NUL, XON/XOFF, bytes of a baud-rate mismatch or of a USB reset: none belongs
                // to a result line.
                _ => self.garbage += 1,
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<Frame>) {
        if self.discarding {
            self.discarding = false;
            self.buf.clear();
            return;
        }
        let line = String::from_utf8_lossy(&self.buf);
        let line = line.trim();
        if !line.is_empty() {
            out.push(Frame::Line(line.to_owned()));
        }
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], chunk: usize, prompt: bool) -> (Vec<Frame>, u64) {
        let mut framer = Framer::new(64);
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            framer.feed(piece, prompt, &mut out);
        }
        (out, framer.garbage())
    }

    fn line(text: &str) -> Frame {
        Frame::Line(text.to_owned())
    }

    #[test]
    fn same_frames_for_every_split() {
        let cases: Vec<(&[u8], bool, Vec<Frame>, u64)> = vec![
            (b"\r\nOK\r\n", false, vec![line("OK")], 0),
            (
                b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
                false,
                vec![line("AT+CSQ"), line("+CSQ: 20,99"), line("OK")],
                0,
            ),
            (b"\r\n> ", true, vec![Frame::Prompt], 0),
            (b"\r\n>", true, vec![Frame::Prompt], 0),
            (b"OK\rOK\nOK", false, vec![line("OK"), line("OK")], 0),
            (b"\x00\xffOK\r\n\x1a", false, vec![line("OK")], 2),
        ];
        for (input, prompt, want, garbage) in cases {
            for chunk in [1, 2, 3, 7, 1000] {
                let (got, dropped) = frames(input, chunk, prompt);
                assert_eq!(got, want, "{input:?} in chunks of {chunk}");
                assert_eq!(dropped, garbage, "{input:?} garbage");
            }
        }
    }

    #[test]
    fn lone_gt_is_a_prompt_only_when_one_is_expected() {
        let (got, _) = frames(b">", 1, false);
        assert!(got.is_empty());
        let (got, _) = frames(b"> ", 1, false);
        assert_eq!(got, vec![Frame::Prompt]);
    }

    #[test]
    fn overlong_lines_are_dropped_and_counted() {
        let mut input = vec![b'A'; 200];
        input.extend_from_slice(b"\r\nOK\r\n");
        let (got, garbage) = frames(&input, 5, false);
        assert_eq!(got, vec![line("OK")]);
        assert_eq!(garbage, 200);
    }

    #[test]
    fn partial_line_waits_for_its_end() {
        let mut framer = Framer::new(64);
        let mut out = Vec::new();
        framer.feed(b"+CMTI: \"SM\",", false, &mut out);
        assert!(out.is_empty());
        framer.feed(b"3\r\n", false, &mut out);
        assert_eq!(out, vec![line("+CMTI: \"SM\",3")]);
    }
}
