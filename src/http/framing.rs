//! Watches the request bytes of one HTTP/1.1 connection before the HTTP library parses them, to
//! find two things the library hides: when a request's headers start (so a client that sends
//! them too slowly can be cut off), and a request that carries both `Transfer-Encoding` and
//! `Content-Length`.
//!
//! A request with both is ambiguous (RFC 9112 §6.3): the library frames it by
//! `Transfer-Encoding` and silently drops `Content-Length`, while a proxy in front may have
//! framed it by `Content-Length` — the classic request-smuggling gap. The head is held back
//! until it is complete, and each `Content-Length` header name is then renamed (same length, so
//! nothing else moves) to [`AMBIGUOUS_MARKER`], which the request checks answer with a 400
//! that closes the connection.
//!
//! To know where the next request starts, bodies framed by `Content-Length` are skipped byte
//! for byte. After a chunked request (or anything this module does not understand) it stops
//! watching: the request checks close such a connection after its response, and the HTTP
//! library rejects what it cannot parse. It never changes anything but those header names.

use std::time::Instant;

/// The header name a `Content-Length` sent together with `Transfer-Encoding` is renamed to
/// (as long as `content-length`).
pub(super) const AMBIGUOUS_MARKER: &str = "x-ambiguous-cl";

/// Longest request head watched; a longer one is passed on untouched, and the HTTP library,
/// whose buffer is set to this size (`server`), refuses it.
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// Where the connection is in its request stream.
#[derive(Debug)]
enum State {
    /// Collecting a request head; `started` is when its first byte arrived, `scanned` how far
    /// `buf` has been searched for the head's end (so a client sending a byte at a time costs
    /// linear, not quadratic, time).
    Head {
        buf: Vec<u8>,
        started: Option<Instant>,
        scanned: usize,
    },
    /// Inside a body framed by `Content-Length`: this many bytes to go.
    Body(u64),
    /// No longer watching (chunked body, or framing the library will refuse).
    Passthrough,
}

/// The watcher of one connection's incoming bytes.
#[derive(Debug)]
pub(super) struct Framing {
    state: State,
}

impl Default for Framing {
    fn default() -> Self {
        Self {
            state: State::default_head(),
        }
    }
}

impl Framing {
    /// Takes bytes read from the client and appends to `out` the bytes that may go on to the
    /// HTTP library now (a head is held back until it is complete).
    pub(super) fn feed(&mut self, data: &[u8], now: Instant, out: &mut Vec<u8>) {
        let mut data = data.to_vec();
        while !data.is_empty() {
            match &mut self.state {
                State::Passthrough => {
                    out.append(&mut data);
                }
                State::Body(remaining) => {
                    let take = data
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    out.extend_from_slice(&data[..take]);
                    *remaining -= take as u64;
                    data.drain(..take);
                    if *remaining == 0 {
                        self.state = State::default_head();
                    }
                }
                State::Head {
                    buf,
                    started,
                    scanned,
                } => {
                    if started.is_none() && data.iter().any(|b| !matches!(b, b'\r' | b'\n')) {
                        *started = Some(now);
                    }
                    buf.append(&mut data);
                    let found = head_end(buf, *scanned);
                    // The terminator may straddle what came before and what just came.
                    *scanned = buf.len().saturating_sub(3);
                    match found {
                        Some(end) => {
                            data = buf.split_off(end);
                            let mut head = std::mem::take(buf);
                            let next = inspect(&mut head);
                            out.append(&mut head);
                            self.state = next;
                        }
                        None if buf.len() > MAX_HEAD => {
                            out.append(buf);
                            self.state = State::Passthrough;
                        }
                        None => {}
                    }
                }
            }
        }
    }

    /// The client closed its side: whatever is held back goes on (the library reports the
    /// incomplete request).
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) {
        if let State::Head { buf, .. } = &mut self.state {
            out.append(buf);
        }
        self.state = State::Passthrough;
    }

    /// When the head being received started, while one is being received.
    pub(super) fn head_started(&self) -> Option<Instant> {
        match &self.state {
            State::Head { started, .. } => *started,
            _ => None,
        }
    }
}

impl State {
    fn default_head() -> Self {
        State::Head {
            buf: Vec::new(),
            started: None,
            scanned: 0,
        }
    }
}

/// The index just past the blank line ending a head (CRLF CRLF, or LF LF as lenient parsers
/// accept), ignoring empty lines before the request line (RFC 9112 §2.2). The search starts at
/// `from` (what was searched before, less the terminator's length).
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let first = buf.iter().position(|b| !matches!(b, b'\r' | b'\n'))?;
    let start = first.max(from);
    let body = &buf[start..];
    let crlf = find(body, b"\r\n\r\n").map(|at| at + 4);
    let lf = find(body, b"\n\n").map(|at| at + 2);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(start + end)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Reads a complete head's framing headers, renames an ambiguous `Content-Length`, and says
/// what follows the head.
fn inspect(head: &mut [u8]) -> State {
    let mut lengths: Vec<(usize, Option<u64>)> = Vec::new();
    let mut transfer_encoding = false;
    let mut offset = 0;
    let mut first = true;
    for line in head.split(|&b| b == b'\n') {
        let start = offset;
        offset += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if first {
            first = false; // the request line
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let at = start + (name.as_ptr() as usize - line.as_ptr() as usize);
            let parsed = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            lengths.push((at, parsed));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
        }
    }
    if transfer_encoding {
        for (at, _) in &lengths {
            head[*at..*at + AMBIGUOUS_MARKER.len()].copy_from_slice(AMBIGUOUS_MARKER.as_bytes());
        }
        return State::Passthrough;
    }
    match lengths.as_slice() {
        [] => State::default_head(),
        [(_, Some(length)), rest @ ..] if rest.iter().all(|(_, l)| *l == Some(*length)) => {
            if *length == 0 {
                State::default_head()
            } else {
                State::Body(*length)
            }
        }
        // Unparsable or conflicting lengths: the library answers 400 and closes.
        _ => State::Passthrough,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Framing) {
        let mut framing = Framing::default();
        let mut out = Vec::new();
        for chunk in chunks {
            framing.feed(chunk, Instant::now(), &mut out);
        }
        (out, framing)
    }

    const SMUGGLE: &[u8] = b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\
        Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\n\r\n";

    #[test]
    fn both_framing_headers_rename_content_length_whole_or_byte_by_byte() {
        let expected = String::from_utf8_lossy(SMUGGLE).replace("Content-Length", AMBIGUOUS_MARKER);
        let (out, _) = run(&[SMUGGLE]);
        assert_eq!(String::from_utf8_lossy(&out), expected);
        let bytes: Vec<&[u8]> = SMUGGLE.chunks(1).collect();
        let (out, _) = run(&bytes);
        assert_eq!(String::from_utf8_lossy(&out), expected);
        // Either order, any case, and a lenient LF-only head.
        let other = b"POST / HTTP/1.1\ntransfer-encoding: chunked\nCONTENT-LENGTH:  4\n\n";
        let (out, _) = run(&[other]);
        assert!(String::from_utf8_lossy(&out).contains("x-ambiguous-cl:  4"));
    }

    #[test]
    fn content_length_bodies_are_skipped_so_every_head_is_seen() {
        let stream = b"POST /message HTTP/1.1\r\nContent-Length: 20\r\n\r\n\
            Transfer-Encoding: xPOST /message HTTP/1.1\r\nContent-Length: 2\r\n\
            Transfer-Encoding: chunked\r\n\r\n";
        let (out, framing) = run(&[stream]);
        let text = String::from_utf8_lossy(&out);
        // The body that looks like a header is left alone; the second head is caught.
        assert!(text.contains("\r\n\r\nTransfer-Encoding: xPOST"), "{text}");
        assert_eq!(text.matches(AMBIGUOUS_MARKER).count(), 1, "{text}");
        assert!(text.contains("Content-Length: 20"), "{text}");
        assert_eq!(out.len(), stream.len());
        assert!(framing.head_started().is_none());
    }

    #[test]
    fn a_head_is_held_back_until_complete_and_timed_from_its_first_byte() {
        let mut framing = Framing::default();
        let mut out = Vec::new();
        let t0 = Instant::now();
        framing.feed(b"\r\n", t0, &mut out);
        assert_eq!(
            framing.head_started(),
            None,
            "blank lines do not start a head"
        );
        framing.feed(b"GET /health HTTP/1.1\r\nHo", t0, &mut out);
        assert!(out.is_empty());
        assert_eq!(framing.head_started(), Some(t0));
        framing.feed(b"st: x\r\n\r\n", Instant::now(), &mut out);
        assert_eq!(out, b"\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(framing.head_started(), None);
        framing.feed(b"GET /", t0, &mut out);
        framing.finish(&mut out);
        assert!(out.ends_with(b"GET /"));
    }

    #[test]
    fn ordinary_requests_pass_unchanged() {
        let stream = b"POST /message HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}\
            GET /health HTTP/1.1\r\n\r\nPOST /message HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            2\r\n{}\r\n0\r\n\r\n";
        let (out, _) = run(&[stream]);
        assert_eq!(out, stream);
    }
}
