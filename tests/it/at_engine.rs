//! The AT engine over `tokio::io::duplex` with paused time, against a scripted modem whose
//! replies are written whole, byte by byte, or in random chunks.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use smsgate::at::{self, AtConfig, AtError, Command, ErrorCode, FinalResult, Urc};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the scripted modem splits what it writes.
#[derive(Clone, Copy, Debug)]
enum Chunking {
    Whole,
    ByteByByte,
    Random(u64),
}

const CHUNKINGS: [Chunking; 4] = [
    Chunking::Whole,
    Chunking::ByteByByte,
    Chunking::Random(1),
    Chunking::Random(7),
];

/// What the scripted modem read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Command(String),
    /// Text after the prompt, ended by Ctrl-Z.
    Data(String),
    /// ESC (a cancelled prompt, or the start of a resync).
    Escape,
}

/// What the scripted modem does in answer.
enum Step {
    Write(&'static str),
    WriteOwned(String),
    Delay(Duration),
    /// Writes `\r\n> ` and reads the data that follows.
    Prompt,
}

use Step::{Delay, Prompt, Write};

/// Runs a scripted modem on `io`. Each input, with the instant it was read, goes to the
/// returned channel; `script` says what to answer.
fn modem<F>(
    io: DuplexStream,
    chunking: Chunking,
    mut script: F,
) -> (mpsc::UnboundedReceiver<(Input, Instant)>, JoinHandle<()>)
where
    F: FnMut(&Input) -> Vec<Step> + Send + 'static,
{
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let (mut reader, mut writer) = tokio::io::split(io);
        let mut rng = rand::rngs::StdRng::seed_from_u64(match chunking {
            Chunking::Random(seed) => seed,
            _ => 0,
        });
        let mut line = Vec::new();
        let mut in_data = false;
        let mut byte = [0u8; 1];
        loop {
            if reader.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            let input = match (byte[0], in_data) {
                (0x1b, _) => {
                    line.clear();
                    in_data = false;
                    Input::Escape
                }
                (0x1a, true) => {
                    in_data = false;
                    Input::Data(String::from_utf8_lossy(&std::mem::take(&mut line)).into_owned())
                }
                (b'\r', false) => {
                    Input::Command(String::from_utf8_lossy(&std::mem::take(&mut line)).into_owned())
                }
                (other, _) => {
                    line.push(other);
                    continue;
                }
            };
            let _ = seen_tx.send((input.clone(), Instant::now()));
            for step in script(&input) {
                let text = match step {
                    Write(text) => text.to_owned(),
                    Step::WriteOwned(text) => text,
                    Delay(delay) => {
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    Prompt => {
                        in_data = true;
                        "\r\n> ".to_owned()
                    }
                };
                let bytes = text.as_bytes();
                let mut at = 0;
                while at < bytes.len() {
                    let size = match chunking {
                        Chunking::Whole => bytes.len(),
                        Chunking::ByteByByte => 1,
                        Chunking::Random(_) => rng.random_range(1..=8),
                    };
                    let end = (at + size).min(bytes.len());
                    if writer.write_all(&bytes[at..end]).await.is_err() {
                        return;
                    }
                    at = end;
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    (seen, task)
}

fn command(input: &Input) -> &str {
    match input {
        Input::Command(text) => text,
        _ => "",
    }
}

fn engine(
    chunking: Chunking,
    script: impl FnMut(&Input) -> Vec<Step> + Send + 'static,
) -> (
    at::AtHandle,
    mpsc::Receiver<Urc>,
    mpsc::UnboundedReceiver<(Input, Instant)>,
) {
    let (ours, theirs) = tokio::io::duplex(64);
    let (seen, _modem) = modem(theirs, chunking, script);
    let (handle, urcs, _task) = at::spawn(ours, AtConfig::default());
    (handle, urcs, seen)
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn answers_are_read_whatever_the_split() {
    for chunking in CHUNKINGS {
        let (at, _urcs, _seen) = engine(chunking, |input| match command(input) {
            "AT+CSQ" => vec![Write("\r\n+CSQ: 20,99\r\n\r\nOK\r\n")],
            "AT+CGMI" => vec![Write("\r\nQuectel\r\n\r\nOK\r\n")],
            _ => vec![Write("\r\nERROR\r\n")],
        });
        let csq = at.command("AT+CSQ", SECOND).await.expect("CSQ answers");
        assert_eq!(csq.value("+CSQ:"), Some("20,99"), "{chunking:?}");
        let cgmi = at.command("AT+CGMI", SECOND).await.expect("CGMI answers");
        assert_eq!(cgmi.text(), Some("Quectel"), "{chunking:?}");
        let error = at.command("AT+BOGUS", SECOND).await.expect_err("ERROR");
        assert_eq!(error.result(), Some(&FinalResult::Error), "{chunking:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn echo_of_commands_and_pdus_is_dropped() {
    for chunking in CHUNKINGS {
        let (at, _urcs, _seen) = engine(chunking, |input| match input {
            Input::Command(text) if text == "AT+CSQ" => {
                vec![Write("AT+CSQ\r"), Write("\r\n+CSQ: 11,99\r\n\r\nOK\r\n")]
            }
            Input::Command(text) if text.starts_with("AT+CMGS=") => {
                vec![Step::WriteOwned(format!("{text}\r")), Prompt]
            }
            Input::Data(pdu) => vec![
                Step::WriteOwned(format!("{pdu}\x1a")),
                Write("\r\n+CMGS: 7\r\n\r\nOK\r\n"),
            ],
            _ => vec![Write("\r\nERROR\r\n")],
        });
        let csq = at.command("AT+CSQ", SECOND).await.expect("CSQ answers");
        assert_eq!(csq.lines, vec!["+CSQ: 11,99".to_owned()], "{chunking:?}");
        let sent = at
            .run(Command::new("AT+CMGS=17").payload("0011000B914477".repeat(3)))
            .await
            .expect("CMGS answers");
        assert_eq!(sent.lines, vec!["+CMGS: 7".to_owned()], "{chunking:?}");
        assert_eq!(at.stats().garbage_bytes, 0, "{chunking:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn urcs_arrive_between_prompt_and_answer_and_at_rest() {
    for chunking in CHUNKINGS {
        let (at, mut urcs, seen) = engine(chunking, |input| match input {
            Input::Command(text) if text.starts_with("AT+CMGS=") => vec![
                Write("\r\n^RSSI: 17\r\n"),
                Prompt,
                Write("\r\n+CMTI: \"SM\",3\r\n"),
            ],
            Input::Data(_) => vec![
                Write("\r\n+CDS: 25\r\n07911326040000F0060D0B911326880736F4\r\n"),
                Write("\r\n+CMGS: 12\r\n\r\nOK\r\n"),
                Delay(Duration::from_millis(5)),
                Write("\r\nRING\r\n"),
            ],
            _ => vec![Write("\r\nOK\r\n")],
        });
        let sent = at
            .run(Command::new("AT+CMGS=17").payload("0011"))
            .await
            .expect("CMGS answers");
        assert_eq!(sent.value("+CMGS:"), Some("12"), "{chunking:?}");
        let mut got = Vec::new();
        while got.len() < 4 {
            let urc = tokio::time::timeout(SECOND, urcs.recv())
                .await
                .expect("URC in time")
                .expect("URC channel open");
            got.push(urc);
        }
        let got: Vec<(&str, Option<&str>)> = got
            .iter()
            .map(|urc| (urc.line.as_str(), urc.data.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("^RSSI: 17", None),
                ("+CMTI: \"SM\",3", None),
                ("+CDS: 25", Some("07911326040000F0060D0B911326880736F4")),
                ("RING", None),
            ],
            "{chunking:?}"
        );
        drop(seen);
    }
}

#[tokio::test(start_paused = true)]
async fn urcs_are_marked_as_read_before_or_after_a_commands_answer() {
    // A modem ringing while it takes `AT+CHUP`: the rings up to its `OK` belong before the
    // answer's mark, a ring behind the `OK` (in the same burst) after it, however late the
    // caller reads them.
    for chunking in CHUNKINGS {
        let (at, mut urcs, _seen) = engine(chunking, |input| match command(input) {
            "AT+CHUP" => vec![
                Write("\r\nRING\r\n\r\n+CLIP: \"+60123456789\",145,,,,0\r\n"),
                Delay(Duration::from_millis(5)),
                // A two-line header cut short by the answer: handed over with it.
                Write("\r\n+CMT: ,20\r\n\r\nOK\r\n\r\nRING\r\n"),
            ],
            _ => vec![Write("\r\nOK\r\n")],
        });
        let (result, mark) = at.run_marked(Command::new("AT+CHUP")).await;
        result.expect("CHUP answers");
        let mut got = Vec::new();
        while got.len() < 4 {
            let urc = tokio::time::timeout(SECOND, urcs.recv())
                .await
                .expect("URC in time")
                .expect("URC channel open");
            got.push((urc.line, urc.seq <= mark));
        }
        assert_eq!(
            got,
            vec![
                ("RING".to_owned(), true),
                ("+CLIP: \"+60123456789\",145,,,,0".to_owned(), true),
                ("+CMT: ,20".to_owned(), true),
                ("RING".to_owned(), false),
            ],
            "{chunking:?} (mark {mark})"
        );
        // The next exchange ends later in the stream.
        let (result, next) = at.run_marked(Command::new("AT")).await;
        result.expect("AT answers");
        assert!(next > mark, "{chunking:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_urc_right_behind_the_final_result_is_delivered_at_once() {
    // Regression: the `+CDS` that the simulator wrote in the same burst as `+CMGS: 0 OK` sat in
    // the frame queue until the next byte arrived.
    for chunking in CHUNKINGS {
        let (at, mut urcs, _seen) = engine(chunking, |input| match command(input) {
            "AT+CSQ" => vec![Write("\r\n+CSQ: 9,99\r\n\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n")],
            _ => vec![Write("\r\nOK\r\n")],
        });
        at.command("AT+CSQ", SECOND).await.expect("CSQ answers");
        let urc = tokio::time::timeout(SECOND, urcs.recv())
            .await
            .expect("URC without further input")
            .expect("URC channel open");
        assert_eq!(urc.line, "+CMTI: \"SM\",1", "{chunking:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn list_answers_keep_their_pdu_lines() {
    let (at, mut urcs, _seen) = engine(Chunking::Random(3), |input| match command(input) {
        "AT+CMGL=4" => vec![Write(
            "\r\n+CMGL: 1,0,,24\r\n0791AABB\r\n+CMT: ,20\r\n0791CCDD\r\n+CMGL: 2,1,,25\r\n0791EEFF\r\n\r\nOK\r\n",
        )],
        _ => vec![Write("\r\nOK\r\n")],
    });
    let list = at.command("AT+CMGL=4", SECOND).await.expect("CMGL answers");
    assert_eq!(
        list.lines,
        vec!["+CMGL: 1,0,,24", "0791AABB", "+CMGL: 2,1,,25", "0791EEFF"]
    );
    let urc = urcs.recv().await.expect("the +CMT in between");
    assert_eq!(urc.data.as_deref(), Some("0791CCDD"));
}

#[tokio::test(start_paused = true)]
async fn error_results_numeric_and_verbose() {
    for chunking in CHUNKINGS {
        let (at, _urcs, _seen) = engine(chunking, |input| match input {
            Input::Command(text) if text == "AT+CMGS=10" => vec![Prompt],
            Input::Command(text) if text == "AT+CMGS=11" => {
                vec![Write("\r\n+CMS ERROR: network out of order\r\n")]
            }
            Input::Command(text) if text == "AT+CPIN?" => {
                vec![Write("\r\n+CME ERROR: 10\r\n")]
            }
            Input::Data(_) => vec![Write("\r\n+CMS ERROR: 38\r\n")],
            _ => vec![Write("\r\nOK\r\n")],
        });
        let error = at
            .run(Command::new("AT+CMGS=10").payload("00"))
            .await
            .expect_err("CMS ERROR");
        assert_eq!(
            error.result(),
            Some(&FinalResult::CmsError(ErrorCode::Numeric(38)))
        );
        let error = at
            .run(Command::new("AT+CMGS=11").payload("00"))
            .await
            .expect_err("CMS ERROR before the prompt");
        assert_eq!(
            error.result(),
            Some(&FinalResult::CmsError(ErrorCode::Verbose(
                "network out of order".into()
            )))
        );
        let error = at.command("AT+CPIN?", SECOND).await.expect_err("CME");
        assert_eq!(
            error.result(),
            Some(&FinalResult::CmeError(ErrorCode::Numeric(10)))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_reply_is_never_taken_for_the_next_answer() {
    for chunking in CHUNKINGS {
        let (at, _urcs, _seen) = engine(chunking, |input| match command(input) {
            // Answers after its caller gave up.
            "AT+COPS?" => vec![
                Delay(Duration::from_secs(3)),
                Write("\r\n+COPS: 0,0,\"Late Operator\",7\r\n\r\nOK\r\n"),
            ],
            "AT+CGMI" => vec![Write("\r\nSIMCOM\r\n\r\nOK\r\n")],
            _ => vec![Write("\r\nOK\r\n")],
        });
        let error = at.command("AT+COPS?", SECOND).await.expect_err("times out");
        assert!(matches!(error, AtError::Timeout { .. }), "{error}");
        let cgmi = at.command("AT+CGMI", SECOND).await.expect("CGMI answers");
        assert_eq!(cgmi.lines, vec!["SIMCOM".to_owned()], "{chunking:?}");
        let stats = at.stats();
        assert_eq!(stats.timeouts, 1);
        assert_eq!(stats.resyncs, 1);
        assert!(stats.stray_lines >= 1, "{stats:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_prompt_is_cancelled_with_escape() {
    let (at, _urcs, mut seen) = engine(Chunking::Whole, |input| match input {
        Input::Command(text) if text.starts_with("AT+CMGS") => vec![],
        Input::Escape => vec![],
        _ => vec![Write("\r\nOK\r\n")],
    });
    let error = at
        .run(Command::new("AT+CMGS=5").payload("00").timeout(SECOND))
        .await
        .expect_err("no prompt");
    assert!(matches!(error, AtError::Timeout { .. }), "{error}");
    at.command("AT", SECOND).await.expect("in sync again");
    let mut inputs = Vec::new();
    while let Ok((input, _)) = seen.try_recv() {
        inputs.push(input);
    }
    assert_eq!(inputs.first(), Some(&Input::Command("AT+CMGS=5".into())));
    assert_eq!(inputs.get(1), Some(&Input::Escape), "{inputs:?}");
}

#[tokio::test(start_paused = true)]
async fn garbage_is_dropped_and_counted() {
    for chunking in CHUNKINGS {
        let (at, _urcs, _seen) = engine(chunking, |input| match command(input) {
            "AT+CSQ" => vec![Write("\u{0}\u{0}\u{7f}\r\n+CSQ: 5,99\r\n\u{3}\r\nOK\r\n")],
            _ => vec![Write("\r\nOK\r\n")],
        });
        let csq = at.command("AT+CSQ", SECOND).await.expect("CSQ answers");
        assert_eq!(csq.lines, vec!["+CSQ: 5,99".to_owned()]);
        assert_eq!(at.stats().garbage_bytes, 4, "{chunking:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn commands_wait_out_the_cooldown() {
    let (at, _urcs, mut seen) = engine(Chunking::Whole, |_| vec![Write("\r\nOK\r\n")]);
    at.command("ATE0", SECOND).await.expect("OK");
    let answered = Instant::now();
    at.command("AT+CMEE=1", SECOND).await.expect("OK");
    let mut arrivals = Vec::new();
    while let Ok((_, at)) = seen.try_recv() {
        arrivals.push(at);
    }
    assert_eq!(arrivals.len(), 2);
    let gap = arrivals[1] - answered;
    assert!(gap >= Duration::from_millis(20), "{gap:?}");
    // A command may ask for no cooldown (the send path).
    at.run(Command::new("AT+CMMS=2").cooldown(Duration::ZERO))
        .await
        .expect("OK");
    let answered = Instant::now();
    at.command("AT", SECOND).await.expect("OK");
    let (_, _) = seen.recv().await.expect("CMMS arrived");
    let (_, arrival) = seen.recv().await.expect("AT arrived");
    assert!(arrival - answered < Duration::from_millis(1));
}

#[tokio::test(start_paused = true)]
async fn a_closed_port_ends_the_engine() {
    let (ours, theirs) = tokio::io::duplex(64);
    let (at, _urcs, task) = at::spawn(ours, AtConfig::default());
    drop(theirs);
    let error = at.command("AT", SECOND).await.expect_err("closed");
    assert!(error.is_fatal(), "{error}");
    let reason = task.await.expect("engine task ends cleanly");
    assert!(reason.is_fatal(), "{reason}");
    assert!(at.is_closed());
}

#[tokio::test(start_paused = true)]
async fn an_answer_without_its_final_result_ends_after_the_grace() {
    // A Wavecom answers `AT+CPIN?` with `+CPIN: READY` and never an `OK`; another modem sends
    // its `OK` after the grace. Either way the command ends with its answer, and the next
    // command gets its own answer, never the late `OK`.
    for late_ok in [None, Some(Duration::from_secs(3))] {
        let (at, _urcs, mut seen) =
            engine(Chunking::ByteByByte, move |input| match command(input) {
                "AT+CPIN?" => {
                    let mut steps = vec![Write("\r\n+CPIN: READY\r\n")];
                    if let Some(delay) = late_ok {
                        steps.extend([Delay(delay), Write("\r\nOK\r\n")]);
                    }
                    steps
                }
                "AT+CSQ" => vec![Write("\r\n+CSQ: 17,99\r\n\r\nOK\r\n")],
                _ => vec![Write("\r\nOK\r\n")],
            });
        let grace = Duration::from_secs(2);
        let started = Instant::now();
        let pin = at
            .run(
                Command::new("AT+CPIN?")
                    .timeout(Duration::from_secs(10))
                    .final_grace("+CPIN:", grace),
            )
            .await
            .expect("the answer is taken without its OK");
        assert_eq!(pin.lines, vec!["+CPIN: READY".to_owned()], "{late_ok:?}");
        // Virtual time: the grace, not the 10 s timeout.
        assert!(started.elapsed() < Duration::from_secs(10), "{late_ok:?}");
        let csq = at.command("AT+CSQ", SECOND).await.expect("CSQ answers");
        assert_eq!(csq.lines, vec!["+CSQ: 17,99".to_owned()], "{late_ok:?}");
        // A resync ran between the two (ESC, then AT until OK and quiet).
        let mut inputs = Vec::new();
        while let Ok((input, _)) = seen.try_recv() {
            inputs.push(input);
        }
        let at_position = |wanted: &str| {
            inputs
                .iter()
                .position(|input| command(input) == wanted)
                .expect(wanted)
        };
        assert!(
            at_position("AT") < at_position("AT+CSQ"),
            "{late_ok:?}: {inputs:?}"
        );
        assert_eq!(at.stats().resyncs, 1, "{late_ok:?}");
        assert_eq!(at.stats().timeouts, 0, "{late_ok:?}");
    }
    // Without the grace the same modem is a timeout.
    let (at, _urcs, _seen) = engine(Chunking::Whole, |input| match command(input) {
        "AT+CPIN?" => vec![Write("\r\n+CPIN: READY\r\n")],
        _ => vec![Write("\r\nOK\r\n")],
    });
    let error = at.command("AT+CPIN?", SECOND).await.expect_err("no OK");
    assert!(matches!(error, AtError::Timeout { .. }), "{error}");
}

#[tokio::test(start_paused = true)]
async fn routed_pdus_with_junk_or_on_the_header_line_are_urcs() {
    const PDU: &str =
        "07917283010010F5040BC87137485784F80000205062917314080CC8F71D14969741F977FD07";
    for chunking in CHUNKINGS {
        let (at, mut urcs, _seen) = engine(chunking, |input| match command(input) {
            "AT+CSQ" => vec![
                Step::WriteOwned(format!("\r\n+CMT: ,30\r\n{PDU}\"\r\r\n")),
                Step::WriteOwned(format!("\r\n+CMT: ,30 {PDU}\r\n")),
                Write("\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
            ],
            _ => vec![Write("\r\nOK\r\n")],
        });
        let csq = at.command("AT+CSQ", SECOND).await.expect("CSQ answers");
        assert_eq!(csq.lines, vec!["+CSQ: 20,99".to_owned()], "{chunking:?}");
        let first = urcs.recv().await.expect("first +CMT");
        assert_eq!(
            (first.line.as_str(), first.data),
            ("+CMT: ,30", Some(format!("{PDU}\""))),
            "{chunking:?}"
        );
        let second = urcs.recv().await.expect("second +CMT");
        assert_eq!(
            (second.line, second.data),
            (format!("+CMT: ,30 {PDU}"), None),
            "{chunking:?}"
        );
    }
}
