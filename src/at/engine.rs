//! The task that owns the port: one command in flight, its timeout, the cooldown after each
//! final result, resynchronisation after a timeout, URCs delivered at every moment.
//!
//! Callers hold an [`AtHandle`] and send [`Command`]s; the task writes each one, reads frames
//! until the command's final result (routing URCs to their channel as they pass), and answers
//! on a oneshot. After a timeout it cancels a pending prompt with `ESC` and sends `AT` until
//! the modem answers `OK` and stays quiet for a moment, so a late reply is never taken for the
//! next command's answer.
//!
//! It does not retry commands, interpret information lines or know anything of SMS: that is
//! the caller's business (see [`crate::modem`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, trace, warn};

use super::classify::{self, FinalResult, UrcShape};
use super::frame::{CTRL_Z, ESC, Frame, Framer};
use super::ussd;
use super::{AtError, Command, Response, Urc};

/// Longest time a write may wait for the port to take bytes (a few hundred at 9600 baud).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Tuning of the engine. The defaults suit every modem we know of.
#[derive(Debug, Clone)]
pub struct AtConfig {
    /// Pause after a final result before the next command: some modems (u-blox, SIMCom) drop
    /// a command that follows a result too closely. A [`Command`] may ask for less.
    pub cooldown: Duration,
    /// Longest line kept; longer ones are dropped as garbage.
    pub max_line: usize,
    /// Most information lines one response may hold (`AT+CMGL` on a full SIM: 2 × 255).
    pub max_response_lines: usize,
    /// URCs waiting for the caller; beyond this they are dropped and counted.
    pub urc_capacity: usize,
    /// Lines kept for the dump logged when a transaction fails.
    pub history: usize,
    /// How long each `AT` of a resync waits for its `OK`.
    pub resync_timeout: Duration,
    /// `AT` attempts before a resync gives up.
    pub resync_attempts: u32,
    /// Silence required after the resync's `OK` (a late answer may still be on its way).
    pub settle: Duration,
}

impl Default for AtConfig {
    fn default() -> Self {
        Self {
            cooldown: Duration::from_millis(20),
            max_line: 2048,
            max_response_lines: 4096,
            urc_capacity: 256,
            history: 40,
            resync_timeout: Duration::from_secs(1),
            resync_attempts: 5,
            settle: Duration::from_millis(100),
        }
    }
}

/// Counters of the engine, readable at any time through [`AtHandle::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AtStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub garbage_bytes: u64,
    pub commands: u64,
    pub timeouts: u64,
    pub resyncs: u64,
    pub urcs: u64,
    pub urcs_dropped: u64,
    /// Lines that answered no command (late replies, unknown vendor chatter).
    pub stray_lines: u64,
}

#[derive(Debug, Default)]
struct Counters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    garbage_bytes: AtomicU64,
    commands: AtomicU64,
    timeouts: AtomicU64,
    resyncs: AtomicU64,
    urcs: AtomicU64,
    urcs_dropped: AtomicU64,
    stray_lines: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> AtStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        AtStats {
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            garbage_bytes: get(&self.garbage_bytes),
            commands: get(&self.commands),
            timeouts: get(&self.timeouts),
            resyncs: get(&self.resyncs),
            urcs: get(&self.urcs),
            urcs_dropped: get(&self.urcs_dropped),
            stray_lines: get(&self.stray_lines),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

struct Request {
    command: Command,
    reply: oneshot::Sender<(Result<Response, AtError>, u64)>,
}

/// A cheap, cloneable handle on the engine task.
#[derive(Clone, Debug)]
pub struct AtHandle {
    requests: mpsc::Sender<Request>,
    counters: Arc<Counters>,
}

impl AtHandle {
    /// Runs one command and waits for its final result.
    ///
    /// `Ok` only for `OK`; a modem that said no is [`AtError::Rejected`], a port that broke is
    /// [`AtError::Io`] or [`AtError::Closed`], silence is [`AtError::Timeout`].
    pub async fn run(&self, command: Command) -> Result<Response, AtError> {
        self.run_marked(command).await.0
    }

    /// [`Self::run`], and where in the port's stream the exchange ended: how many lines the
    /// engine had read when it took the final result (or gave up waiting). Every URC whose
    /// [`Urc::seq`] is at or below the mark was read before that, every later one after it,
    /// whenever the caller gets to read them. `0` when the command never ran.
    pub async fn run_marked(&self, command: Command) -> (Result<Response, AtError>, u64) {
        let (reply, answer) = oneshot::channel();
        if self
            .requests
            .send(Request { command, reply })
            .await
            .is_err()
        {
            return (Err(AtError::Closed), 0);
        }
        answer.await.unwrap_or((Err(AtError::Closed), 0))
    }

    /// Runs `text` (e.g. `"AT+CSQ"`) with `timeout`.
    pub async fn command(&self, text: &str, timeout: Duration) -> Result<Response, AtError> {
        self.run(Command::new(text).timeout(timeout)).await
    }

    /// The engine's counters.
    pub fn stats(&self) -> AtStats {
        self.counters.snapshot()
    }

    /// `true` once the engine task has ended (port closed or failed).
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }
}

/// Starts the engine on `io` (a serial port, or one end of `tokio::io::duplex` in tests).
///
/// Returns the handle, the URC channel, and the task, which ends with the reason the port
/// stopped working ([`AtError::Closed`] when every handle was dropped).
pub fn spawn<T>(io: T, config: AtConfig) -> (AtHandle, mpsc::Receiver<Urc>, JoinHandle<AtError>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (requests, requests_rx) = mpsc::channel(16);
    let (urc_tx, urc_rx) = mpsc::channel(config.urc_capacity.max(1));
    let counters = Arc::new(Counters::default());
    let engine = Engine {
        io,
        framer: Framer::new(config.max_line),
        frames: VecDeque::new(),
        read_buf: vec![0; 4096],
        urc_tx,
        pending_urc: None,
        pending_cusd: None,
        lines_read: 0,
        counters: Arc::clone(&counters),
        history: VecDeque::with_capacity(config.history),
        ready_at: Instant::now(),
        needs_resync: false,
        config,
    };
    let task = tokio::spawn(engine.run(requests_rx));
    (AtHandle { requests, counters }, urc_rx, task)
}

/// What the command in flight is waiting for, to tell its lines from echo and URCs.
struct Context<'a> {
    text: &'a str,
    prefix: Option<String>,
    payload: Option<&'a str>,
    prompt_expected: bool,
}

impl<'a> Context<'a> {
    fn idle() -> Self {
        Context {
            text: "",
            prefix: None,
            payload: None,
            prompt_expected: false,
        }
    }

    fn is_echo(&self, line: &str) -> bool {
        (!self.text.is_empty() && line.eq_ignore_ascii_case(self.text))
            || self.payload.is_some_and(|payload| line == payload)
    }
}

/// A frame after URCs and echo were taken out.
enum Event {
    Prompt,
    Final(FinalResult),
    Info(String),
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Sent,
    Received,
}

struct Exchange {
    at: Instant,
    direction: Direction,
    text: String,
}

/// The most lines one `+CUSD` answer is joined from; a text still open then is handed over
/// as it stands (182 characters fit far fewer lines).
const MAX_CUSD_LINES: usize = 32;

struct Engine<T> {
    io: T,
    framer: Framer,
    frames: VecDeque<Frame>,
    read_buf: Vec<u8>,
    urc_tx: mpsc::Sender<Urc>,
    /// The header of a two-line URC whose data line has not come yet.
    pending_urc: Option<String>,
    /// A `+CUSD:` answer whose quoted text goes on over more lines (an operator menu), and
    /// how many lines it has so far.
    pending_cusd: Option<(String, usize)>,
    /// Frames (lines and prompts) read so far: the position URCs and answers are marked with.
    lines_read: u64,
    counters: Arc<Counters>,
    history: VecDeque<Exchange>,
    /// No command is written before this instant (the cooldown).
    ready_at: Instant,
    needs_resync: bool,
    config: AtConfig,
}

impl<T> Engine<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) -> AtError {
        loop {
            // Frames read together with the last final result (a URC right behind an `OK`)
            // are delivered now, not when more bytes happen to arrive.
            if let Err(error) = self.drain_idle() {
                return error;
            }
            let request = tokio::select! {
                biased;
                request = requests.recv() => match request {
                    Some(request) => request,
                    None => return AtError::Closed,
                },
                read = self.io.read(&mut self.read_buf) => {
                    if let Err(error) = self.ingest(read, false) {
                        return error;
                    }
                    if let Err(error) = self.drain_idle() {
                        return error;
                    }
                    continue;
                }
            };
            if request.reply.is_closed() {
                // The caller gave up before the command was written: nothing to do.
                continue;
            }
            let result = self.serve(&request.command).await;
            let fatal = match &result {
                Err(AtError::Io(error)) => Some(AtError::Io(std::io::Error::new(
                    error.kind(),
                    error.to_string(),
                ))),
                Err(AtError::Closed) => Some(AtError::Closed),
                _ => None,
            };
            // The caller may have stopped waiting; the command ran all the same.
            let _ = request.reply.send((result, self.lines_read));
            if let Some(error) = fatal {
                return error;
            }
        }
    }

    /// Cooldown, resync if needed, then the transaction.
    async fn serve(&mut self, command: &Command) -> Result<Response, AtError> {
        self.wait_idle_until(self.ready_at).await?;
        if self.needs_resync {
            self.resync().await?;
        }
        bump(&self.counters.commands, 1);
        let result = self.transact(command).await;
        let cooldown = command.cooldown.unwrap_or(self.config.cooldown);
        self.ready_at = Instant::now() + cooldown;
        match &result {
            Ok(_) | Err(AtError::Rejected { .. }) => {}
            Err(error) => self.dump_history(error),
        }
        if let Err(error @ AtError::Rejected { .. }) = &result {
            debug!(target: "smsgate::at", %error, "command rejected");
        }
        result
    }

    async fn transact(&mut self, command: &Command) -> Result<Response, AtError> {
        let deadline = Instant::now() + command.timeout;
        let mut context = Context {
            text: &command.text,
            prefix: classify::response_prefix(&command.text),
            payload: command.payload.as_deref(),
            prompt_expected: command.payload.is_some(),
        };
        let mut line = Vec::with_capacity(command.text.len() + 1);
        line.extend_from_slice(command.text.as_bytes());
        line.push(b'\r');
        let shown = command.shown.as_deref().unwrap_or(&command.text);
        self.write(&line, shown).await?;

        let mut lines = Vec::new();
        if let Some(payload) = &command.payload {
            loop {
                match self.next_event(&context, Some(deadline)).await? {
                    Some(Event::Prompt) => break,
                    Some(Event::Final(result)) => return self.finish(command, lines, result),
                    Some(Event::Info(line)) => self.keep(&mut lines, line),
                    None => return Err(self.timed_out(command, true).await),
                }
            }
            let mut data = Vec::with_capacity(payload.len() + 1);
            data.extend_from_slice(payload.as_bytes());
            data.push(CTRL_Z);
            self.write(&data, payload).await?;
            context.prompt_expected = false;
        }
        // Set once the answer a `final_grace` command waits for has come.
        let mut grace_until: Option<Instant> = None;
        loop {
            let until = grace_until.map_or(deadline, |grace| grace.min(deadline));
            match self.next_event(&context, Some(until)).await? {
                Some(Event::Final(result)) => return self.finish(command, lines, result),
                Some(Event::Info(line)) => {
                    if let Some((prefix, grace)) = &command.final_grace {
                        if grace_until.is_none() && line.starts_with(prefix.as_str()) {
                            grace_until = Some(Instant::now() + *grace);
                        }
                    }
                    self.keep(&mut lines, line);
                }
                Some(Event::Prompt) => {
                    // A prompt nobody asked for: answer it with ESC so the modem does not
                    // swallow the next command as message text.
                    bump(&self.counters.stray_lines, 1);
                    self.write(&[ESC], "<ESC>").await?;
                }
                None if grace_until.is_some() => {
                    // The answer came, the final result did not (within the grace, or by the
                    // command's own deadline if that is sooner): go on with the answer, and
                    // make sure a late `OK` cannot answer the next command.
                    self.needs_resync = true;
                    tracing::info!(
                        target: "smsgate::at",
                        command = command.shown.as_deref().unwrap_or(&command.text),
                        "the modem gave its answer but omitted the final OK; going on without it"
                    );
                    return Ok(Response { lines });
                }
                None => return Err(self.timed_out(command, command.payload.is_some()).await),
            }
        }
    }

    fn keep(&mut self, lines: &mut Vec<String>, line: String) {
        if lines.len() < self.config.max_response_lines {
            lines.push(line);
        } else {
            bump(&self.counters.garbage_bytes, line.len() as u64);
        }
    }

    fn finish(
        &self,
        command: &Command,
        lines: Vec<String>,
        result: FinalResult,
    ) -> Result<Response, AtError> {
        if result.is_ok() {
            Ok(Response { lines })
        } else {
            Err(AtError::Rejected {
                command: command.text.clone(),
                result,
                lines,
            })
        }
    }

    async fn timed_out(&mut self, command: &Command, prompt_possible: bool) -> AtError {
        bump(&self.counters.timeouts, 1);
        self.needs_resync = true;
        if prompt_possible {
            // A modem still waiting at `> ` would take our next `AT` as message text.
            if let Err(error) = self.write(&[ESC], "<ESC>").await {
                return error;
            }
        }
        AtError::Timeout {
            command: command.text.clone(),
            timeout: command.timeout,
        }
    }

    /// `ESC`, then `AT` until `OK` followed by silence: whatever answer was late is consumed.
    async fn resync(&mut self) -> Result<(), AtError> {
        bump(&self.counters.resyncs, 1);
        debug!(target: "smsgate::at", "resynchronising");
        self.write(&[ESC], "<ESC>").await?;
        let context = Context {
            text: "AT",
            prefix: None,
            payload: None,
            prompt_expected: false,
        };
        for _ in 0..self.config.resync_attempts {
            self.write(b"AT\r", "AT").await?;
            let deadline = Instant::now() + self.config.resync_timeout;
            let mut answered = false;
            while let Some(event) = self.next_event(&context, Some(deadline)).await? {
                match event {
                    Event::Final(FinalResult::Ok) => {
                        answered = true;
                        break;
                    }
                    Event::Prompt => self.write(&[ESC], "<ESC>").await?,
                    Event::Final(_) | Event::Info(_) => {
                        bump(&self.counters.stray_lines, 1);
                    }
                }
            }
            if !answered {
                continue;
            }
            if self.quiet_for(self.config.settle, &context).await? {
                self.needs_resync = false;
                debug!(target: "smsgate::at", "in sync");
                return Ok(());
            }
        }
        let error = AtError::ResyncFailed {
            attempts: self.config.resync_attempts,
        };
        self.dump_history(&error);
        Err(error)
    }

    /// `true` if nothing but URCs arrived during `period`.
    async fn quiet_for(
        &mut self,
        period: Duration,
        context: &Context<'_>,
    ) -> Result<bool, AtError> {
        let deadline = Instant::now() + period;
        let mut quiet = true;
        while let Some(event) = self.next_event(context, Some(deadline)).await? {
            bump(&self.counters.stray_lines, 1);
            if let Event::Prompt = event {
                self.write(&[ESC], "<ESC>").await?;
            }
            quiet = false;
        }
        Ok(quiet)
    }

    /// Reads (delivering URCs) until `until`, with no command in flight.
    async fn wait_idle_until(&mut self, until: Instant) -> Result<(), AtError> {
        self.drain_idle()?;
        while Instant::now() < until {
            match tokio::time::timeout_at(until, self.io.read(&mut self.read_buf)).await {
                Ok(read) => {
                    self.ingest(read, false)?;
                    self.drain_idle()?;
                }
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Routes the queued frames with no command in flight: URCs go out, the rest is stray.
    fn drain_idle(&mut self) -> Result<(), AtError> {
        let context = Context::idle();
        while let Some(frame) = self.frames.pop_front() {
            if let Some(event) = self.route(frame, &context) {
                bump(&self.counters.stray_lines, 1);
                match event {
                    Event::Final(result) => {
                        debug!(target: "smsgate::at", %result, "final result outside a command")
                    }
                    Event::Info(line) => {
                        debug!(target: "smsgate::at", line, "line outside a command")
                    }
                    Event::Prompt => debug!(target: "smsgate::at", "prompt outside a command"),
                }
            }
        }
        Ok(())
    }

    /// The next event for the command in flight, or `None` at `deadline`.
    async fn next_event(
        &mut self,
        context: &Context<'_>,
        deadline: Option<Instant>,
    ) -> Result<Option<Event>, AtError> {
        loop {
            while let Some(frame) = self.frames.pop_front() {
                if let Some(event) = self.route(frame, context) {
                    return Ok(Some(event));
                }
            }
            let read = match deadline {
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, self.io.read(&mut self.read_buf)).await
                    {
                        Ok(read) => read,
                        Err(_) => return Ok(None),
                    }
                }
                None => self.io.read(&mut self.read_buf).await,
            };
            self.ingest(read, context.prompt_expected)?;
        }
    }

    /// Frames the bytes of one read.
    fn ingest(
        &mut self,
        read: std::io::Result<usize>,
        prompt_expected: bool,
    ) -> Result<(), AtError> {
        let count = read.map_err(AtError::Io)?;
        if count == 0 {
            return Err(AtError::Closed);
        }
        bump(&self.counters.bytes_in, count as u64);
        let before = self.framer.garbage();
        let mut frames = Vec::new();
        self.framer
            .feed(&self.read_buf[..count], prompt_expected, &mut frames);
        let dropped = self.framer.garbage() - before;
        if dropped > 0 {
            bump(&self.counters.garbage_bytes, dropped);
            trace!(target: "smsgate::at", dropped, "garbage dropped");
        }
        self.frames.extend(frames);
        Ok(())
    }

    /// URCs and echo are taken here; everything else is an event for the caller.
    fn route(&mut self, frame: Frame, context: &Context<'_>) -> Option<Event> {
        self.lines_read += 1;
        let line = match frame {
            Frame::Prompt => {
                self.record(Direction::Received, "> ");
                return Some(Event::Prompt);
            }
            Frame::Line(line) => line,
        };
        if context.is_echo(&line) && self.pending_urc.is_none() {
            // Echo is noted, not repeated: it may hold a PIN or a PDU.
            self.record(Direction::Received, "<echo>");
            return None;
        }
        self.record(Direction::Received, &line);
        if let Some(header) = self.pending_urc.take() {
            // The PDU line, junk after the digits included (the modem layer cleans it).
            if classify::is_pdu_line(&line) {
                self.deliver(header, Some(line));
                return None;
            }
            // The data line never came: hand over the header alone and read this line anew.
            self.deliver(header, None);
        }
        if context.is_echo(&line) {
            return None;
        }
        if let Some((open, lines)) = self.pending_cusd.take() {
            let ends = classify::urc(&line, context.prefix.as_deref()).is_some()
                || classify::final_result(&line).is_some();
            if !ends {
                let joined = format!("{open}\n{line}");
                if lines + 1 < MAX_CUSD_LINES
                    && matches!(ussd::parse(&joined), Err(ussd::ParseError::Incomplete))
                {
                    self.pending_cusd = Some((joined, lines + 1));
                } else {
                    self.deliver(joined, None);
                }
                return None;
            }
            // A URC or a final result inside the text: the answer was cut short. What came is
            // handed over, and this line read as what it is.
            self.deliver(open, None);
        }
        match classify::urc(&line, context.prefix.as_deref()) {
            // A header that carries its PDU on the same line is complete as it is.
            Some(UrcShape::TwoLine) if classify::inline_pdu(&line).is_some() => {
                self.deliver(line, None);
                return None;
            }
            Some(UrcShape::TwoLine) => {
                self.pending_urc = Some(line);
                return None;
            }
            // A USSD answer whose quoted text is not closed on its line: a menu, whose next
            // lines belong to it (TS 27.007 §7.15 puts no limit on line ends in `<str>`).
            Some(UrcShape::OneLine)
                if line.starts_with("+CUSD:")
                    && matches!(ussd::parse(&line), Err(ussd::ParseError::Incomplete)) =>
            {
                self.pending_cusd = Some((line, 1));
                return None;
            }
            Some(UrcShape::OneLine) => {
                self.deliver(line, None);
                return None;
            }
            None => {}
        }
        match classify::final_result(&line) {
            Some(result) => Some(Event::Final(result)),
            None => Some(Event::Info(line)),
        }
    }

    fn deliver(&mut self, line: String, data: Option<String>) {
        let urc = Urc {
            line,
            data,
            seq: self.lines_read,
        };
        bump(&self.counters.urcs, 1);
        match self.urc_tx.try_send(urc) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(urc)) => {
                bump(&self.counters.urcs_dropped, 1);
                warn!(target: "smsgate::at", urc = urc.line, "URC queue full; URC dropped");
            }
            // Nobody listens (a probe that only runs commands): nothing to keep.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    async fn write(&mut self, bytes: &[u8], shown: &str) -> Result<(), AtError> {
        self.record(Direction::Sent, shown);
        // No `flush`: on a serial port it is `tcdrain`, a blocking wait for the far end (a
        // pty's master may never read); `write` already hands the bytes to the kernel. A modem
        // that stops reading (flow control held) must not stall the task forever either.
        let written = tokio::time::timeout(WRITE_TIMEOUT, self.io.write_all(bytes)).await;
        match written {
            Ok(result) => result.map_err(AtError::Io)?,
            Err(_) => {
                return Err(AtError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the modem took no input for {WRITE_TIMEOUT:?}"),
                )));
            }
        }
        bump(&self.counters.bytes_out, bytes.len() as u64);
        Ok(())
    }

    fn record(&mut self, direction: Direction, text: &str) {
        match direction {
            Direction::Sent => trace!(target: "smsgate::at", dir = "tx", line = text),
            Direction::Received => trace!(target: "smsgate::at", dir = "rx", line = text),
        }
        if self.config.history == 0 {
            return;
        }
        if self.history.len() == self.config.history {
            self.history.pop_front();
        }
        // The dump goes out at `warn`: PDUs carry message text, which stays at `trace`.
        let text = if classify::is_pdu_line(text) || classify::inline_pdu(text).is_some() {
            format!("<PDU, {} characters>", text.len())
        } else {
            text.to_owned()
        };
        self.history.push_back(Exchange {
            at: Instant::now(),
            direction,
            text,
        });
    }

    fn dump_history(&self, error: &AtError) {
        let now = Instant::now();
        let mut dump = String::new();
        for exchange in &self.history {
            let ago = now.saturating_duration_since(exchange.at).as_millis();
            let arrow = match exchange.direction {
                Direction::Sent => "->",
                Direction::Received => "<-",
            };
            dump.push_str(&format!("\n  -{ago:>6} ms {arrow} {}", exchange.text));
        }
        warn!(target: "smsgate::at", %error, "AT transaction failed; recent exchanges:{dump}");
    }
}
