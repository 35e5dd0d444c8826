//! The live serial port of the simulated modem: one pty and the three workers that move bytes
//! across it at the line's pace.
//!
//! - the reader, a tokio task: waits for the client's bytes and counts them (and lets [`Pty`]
//!   note clients coming and going);
//! - the inbound line, an OS thread: hands those bytes to the modem when the line would have
//!   delivered their last bit;
//! - the outbound line, an OS thread: writes the modem's output to the client, a millisecond's
//!   worth at a time, each slice when the line would have carried it.
//!
//! The lines run on threads because their waits are shorter than tokio's one-millisecond timer
//! tick: rounding every wait up to the next tick would cost a request–response exchange a few
//! milliseconds, a tenth of an SMS's time on a 115200 baud line. Without a baud rate the inbound
//! thread is skipped and bytes go straight to the modem.
//!
//! It knows nothing of AT; the device decides what to write.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::LineStats;
use super::line::Pacer;
use super::pty::{self, Pty};

/// How long to wait before writing again to a client that is not reading.
const WRITE_RETRY: Duration = Duration::from_millis(1);

/// Locks a mutex that holds plain data: a panic elsewhere cannot leave it inconsistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Line figures shared with the handle: bytes each way, and the idle gaps after `+CMGS`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// When the last byte of the latest `+CMGS` answer reached the client, until the client's
    /// next byte arrives.
    answered: Mutex<Option<Instant>>,
    send_gaps: Mutex<Vec<Duration>>,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LineStats {
        LineStats {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn send_gaps(&self) -> Vec<Duration> {
        lock(&self.send_gaps).clone()
    }

    /// The client sent something at `now`: closes the gap after a `+CMGS` answer, if one is open.
    fn client_spoke(&self, now: Instant) {
        if let Some(answered) = lock(&self.answered).take() {
            lock(&self.send_gaps).push(now.saturating_duration_since(answered));
        }
    }

    /// The last byte of a `+CMGS` answer is about to reach the client. Noted before it is
    /// written, so a client that answers at once always finds the gap open.
    fn answer_due(&self, now: Instant) {
        *lock(&self.answered) = Some(now);
    }

    /// The last byte of a `+CMGS` answer reached the client: the gap starts now, unless the
    /// client already spoke (then it was measured from just before the write).
    fn answer_sent(&self, now: Instant) {
        if let Some(answered) = lock(&self.answered).as_mut() {
            *answered = now;
        }
    }
}

/// What the outbound line is given.
pub(super) enum Write {
    /// Bytes for the client.
    Bytes(Vec<u8>),
    /// Bytes that complete a `+CMGS` answer: the line notes when it has carried their last
    /// byte (the start of the client's idle gap).
    Answer(Vec<u8>),
    /// Answer once everything before has been written.
    Flushed(oneshot::Sender<()>),
}

/// Where the port hands the client's bytes: returns `false` once nobody takes them any more.
pub(super) type Deliver = Box<dyn Fn(Vec<u8>) -> bool + Send + Sync>;

/// The live pty and its workers.
pub(super) struct Port {
    pty: Arc<Pty>,
    writer: std_mpsc::Sender<Write>,
    reader: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    /// Each thread answers when it has let go of the pty.
    finished: Vec<oneshot::Receiver<()>>,
}

impl Port {
    /// Starts the workers of `pty` at `baud` (`None` = unpaced).
    pub(super) fn start(
        pty: Arc<Pty>,
        baud: Option<u32>,
        deliver: Deliver,
        counters: Arc<Counters>,
    ) -> std::io::Result<Port> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut finished = Vec::new();

        let (writer, queue) = std_mpsc::channel();
        let (done, finished_writing) = oneshot::channel();
        finished.push(finished_writing);
        let (thread_pty, thread_stop, thread_counters) =
            (pty.clone(), stop.clone(), counters.clone());
        std::thread::Builder::new()
            .name("sim-line-out".into())
            .spawn(move || {
                write_line(&thread_pty, baud, &queue, &thread_counters, &thread_stop);
                drop(thread_pty);
                let _ = done.send(());
            })?;

        let inbound = if Pacer::new(baud).is_unlimited() {
            Inbound::Direct(deliver)
        } else {
            let (line, arrivals) = std_mpsc::channel();
            let (done, finished_reading) = oneshot::channel();
            finished.push(finished_reading);
            let thread_stop = stop.clone();
            std::thread::Builder::new()
                .name("sim-line-in".into())
                .spawn(move || {
                    read_line(baud, &arrivals, &deliver, &thread_stop);
                    let _ = done.send(());
                })?;
            Inbound::Paced(line)
        };
        let reader = tokio::spawn(read_loop(pty.clone(), inbound, counters));
        Ok(Port {
            pty,
            writer,
            reader,
            stop,
            finished,
        })
    }

    /// The pty.
    pub(super) fn pty(&self) -> &Arc<Pty> {
        &self.pty
    }

    /// Queues output (or a marker) for the client.
    pub(super) fn write(&self, item: Write) {
        let _ = self.writer.send(item);
    }

    /// Stops the workers and waits until they have let go of the pty, so that the pty closes
    /// (and its link goes) when this port is dropped.
    pub(super) async fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.reader.abort();
        let _ = (&mut self.reader).await;
        // Closing the queue wakes the outbound thread if it is idle.
        let (closed, _) = std_mpsc::channel();
        self.writer = closed;
        for finished in self.finished.drain(..) {
            let _ = finished.await;
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.reader.abort();
    }
}

/// Where the reader puts what it read.
enum Inbound {
    /// Straight to the modem (no baud rate).
    Direct(Deliver),
    /// To the inbound line thread, with the time it was read.
    Paced(std_mpsc::Sender<(Vec<u8>, Instant)>),
}

/// Reads the client's bytes as they come, and notes clients coming and going.
async fn read_loop(pty: Arc<Pty>, inbound: Inbound, counters: Arc<Counters>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match pty.next(&mut buf).await {
            Ok(pty::Activity::Data(n)) => n,
            Ok(activity) => {
                tracing::debug!(?activity, "client");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "reading the pty failed");
                return;
            }
        };
        let now = Instant::now();
        tracing::trace!(bytes = ?String::from_utf8_lossy(&buf[..n]), "from the client");
        counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        counters.client_spoke(now);
        let bytes = buf[..n].to_vec();
        let taken = match &inbound {
            Inbound::Direct(deliver) => deliver(bytes),
            Inbound::Paced(line) => line.send((bytes, now)).is_ok(),
        };
        if !taken {
            return;
        }
    }
}

/// The inbound line: delivers each chunk when its last byte has crossed the line.
fn read_line(
    baud: Option<u32>,
    arrivals: &std_mpsc::Receiver<(Vec<u8>, Instant)>,
    deliver: &Deliver,
    stop: &AtomicBool,
) {
    let mut pacer = Pacer::new(baud);
    while let Ok((bytes, read_at)) = arrivals.recv() {
        let arrives = pacer.schedule(read_at, bytes.len());
        sleep_until(arrives, stop);
        if stop.load(Ordering::Relaxed) || !deliver(bytes) {
            return;
        }
    }
}

/// The outbound line: writes each slice when the line has carried it; drops output nobody has
/// the port open for.
fn write_line(
    pty: &Pty,
    baud: Option<u32>,
    queue: &std_mpsc::Receiver<Write>,
    counters: &Counters,
    stop: &AtomicBool,
) {
    let mut pacer = Pacer::new(baud);
    while let Ok(item) = queue.recv() {
        let (bytes, answer) = match item {
            Write::Bytes(bytes) => (bytes, false),
            Write::Answer(bytes) => (bytes, true),
            Write::Flushed(reply) => {
                let _ = reply.send(());
                continue;
            }
        };
        tracing::trace!(bytes = ?String::from_utf8_lossy(&bytes), "to the client");
        let slices = bytes.chunks(pacer.slice_len()).count();
        if answer && slices == 0 {
            counters.answer_due(Instant::now());
        }
        for (index, slice) in bytes.chunks(pacer.slice_len()).enumerate() {
            let carried = pacer.schedule(Instant::now(), slice.len());
            sleep_until(carried, stop);
            if answer && index + 1 == slices {
                counters.answer_due(Instant::now());
            }
            if !write_slice(pty, slice, counters, stop) {
                return;
            }
        }
        if answer {
            counters.answer_sent(Instant::now());
        }
    }
}

/// Writes one slice, waiting while the client's buffer is full; `false` when the line must
/// stop. Bytes are counted before the write, so a client that has read them never finds
/// [`Counters::snapshot`] behind what it read; what could not be written is taken back.
fn write_slice(pty: &Pty, slice: &[u8], counters: &Counters, stop: &AtomicBool) -> bool {
    let mut rest = slice;
    while !rest.is_empty() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let pending = rest.len() as u64;
        counters.bytes_out.fetch_add(pending, Ordering::Relaxed);
        let written = pty.try_write(rest);
        let unwritten = match &written {
            Ok(pty::Written::Bytes(n)) => pending - *n as u64,
            _ => pending,
        };
        counters.bytes_out.fetch_sub(unwritten, Ordering::Relaxed);
        match written {
            Ok(pty::Written::Bytes(n)) => rest = &rest[n..],
            // The client is not reading: its buffer drains when it does.
            Ok(pty::Written::Full) => std::thread::sleep(WRITE_RETRY),
            Ok(pty::Written::NoClient) => rest = &[],
            Err(error) => {
                tracing::warn!(%error, "writing the pty failed");
                return false;
            }
        }
    }
    true
}

/// Sleeps until `deadline`, in steps short enough to notice `stop`.
fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    const STEP: Duration = Duration::from_millis(20);
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((deadline - now).min(STEP));
    }
}
