//! The HTTP server loop, with the limits a port on the internet needs: at most
//! `http.max_connections` connections at once (logged when reached), a deadline for each
//! request's headers counted from their first byte (`http.header_timeout`), and an idle timeout
//! for a connection with no request in flight and no bytes moving (`http.idle_timeout`).
//!
//! At the limit, the connection that has been stalled longest (idle, or still sending its
//! headers, for at least [`MIN_STALL_TO_SHED`]) is closed to make room, so a flood of clients
//! that never finish their requests cannot keep a real one waiting; when none is stalled, new
//! connections wait in the kernel's listen backlog until one closes. Each connection's bytes
//! pass through [`framing`](super::framing) before the HTTP library parses them. A request in
//! flight is never cut off, by the timeouts or by shedding: a `POST /message` waiting on its
//! commit must be answered (see `message`).
//!
//! Shutdown stops accepting, lets each connection finish the request in flight, then closes it.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::framing::Framing;

/// The connection limits (`[http]` keys of the same names).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&crate::config::HttpConfig::default())
    }
}

impl Limits {
    pub fn from_config(http: &crate::config::HttpConfig) -> Self {
        Self {
            header_timeout: http.header_timeout,
            idle_timeout: http.idle_timeout,
            max_connections: http.max_connections.max(1),
        }
    }
}

/// How often, at most, reaching the connection limit is logged.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// A connection must have been stalled this long before it may be closed to make room: a
/// client that pauses briefly between requests is not punished for an ordinary burst.
const MIN_STALL_TO_SHED: Duration = Duration::from_millis(250);

/// The open connections, so the limit can close the longest-stalled one.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, (Arc<Activity>, CancellationToken)>>,
}

impl Registry {
    fn add(&self, activity: Arc<Activity>, shed: CancellationToken) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.open).insert(id, (activity, shed));
        id
    }

    fn remove(&self, id: u64) {
        lock(&self.open).remove(&id);
    }

    /// Closes the connection stalled longest (no request in flight, stalled at least
    /// [`MIN_STALL_TO_SHED`]); false when there is none.
    fn shed_one(&self) -> bool {
        let now = Instant::now();
        let open = lock(&self.open);
        let oldest = open
            .values()
            .filter(|(activity, shed)| !shed.is_cancelled() && activity.in_flight() == 0)
            .map(|(activity, shed)| (activity.stalled_since(), shed))
            .filter(|(since, _)| now.saturating_duration_since(*since) >= MIN_STALL_TO_SHED)
            .min_by_key(|(since, _)| *since);
        match oldest {
            Some((_, shed)) => {
                shed.cancel();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` with `limits` until `shutdown` is cancelled, then lets the
/// requests in flight finish.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(
            %address,
            max_connections = limits.max_connections,
            "HTTP API listening"
        );
    }
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry::default());
    let mut connections = JoinSet::new();
    let mut last_limit_log: Option<Instant> = None;
    let mut limit_hits: u64 = 0;
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(%error, "cannot accept an HTTP connection");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = shutdown.cancelled() => break,
                    }
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // A slot for it; at the limit, make room by closing the longest-stalled connection
        // (the new one waits, holding one descriptor, until there is room).
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                limit_hits += 1;
                if last_limit_log.is_none_or(|at| at.elapsed() >= LIMIT_LOG_INTERVAL) {
                    tracing::warn!(
                        limit = limits.max_connections,
                        times = limit_hits,
                        "HTTP connection limit reached (http.max_connections): the longest \
                         stalled connection is closed to make room, or new connections wait \
                         until one closes"
                    );
                    last_limit_log = Some(Instant::now());
                }
                let waited = tokio::select! {
                    permit = wait_for_room(&permits, &registry) => permit,
                    () = shutdown.cancelled() => None,
                };
                match waited {
                    Some(permit) => permit,
                    None => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (router, shutdown) = (router.clone(), shutdown.clone());
        let activity = Arc::new(Activity::new());
        let shed = CancellationToken::new();
        let id = registry.add(activity.clone(), shed.clone());
        let registry = registry.clone();
        connections.spawn(async move {
            serve_connection(stream, router, limits, activity, shed, shutdown).await;
            registry.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A free connection slot: sheds the longest-stalled connection (its task ends at once and
/// gives its permit back), and tries again as connections age past [`MIN_STALL_TO_SHED`].
async fn wait_for_room(
    permits: &Arc<Semaphore>,
    registry: &Registry,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    loop {
        registry.shed_one();
        tokio::select! {
            permit = permits.clone().acquire_owned() => return permit.ok(),
            () = tokio::time::sleep(MIN_STALL_TO_SHED / 2) => {}
        }
    }
}

/// One connection, until the client closes it, a timeout cuts it off, or shutdown.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    activity: Arc<Activity>,
    shed: CancellationToken,
    shutdown: CancellationToken,
) {
    let io = Guarded::new(stream, limits, activity.clone());
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut router = router.clone();
        let busy = activity.begin();
        async move {
            let response =
                tower_service::Service::call(&mut router, request.map(axum::body::Body::new)).await;
            drop(busy);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header deadline is [`Guarded`]'s: from the first byte of a head, not from the end of
    // the previous response.
    builder.header_read_timeout(None);
    // A head larger than the framing watch follows is refused by the library (431), so no
    // request escapes the watch by being large.
    builder.max_buf_size(super::framing::MAX_HEAD);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP connection ended");
            }
            return;
        }
        // Closed gracefully all the same: a request that began in the instant since it was
        // picked is answered first (the library has seen no head of a stalled one yet: the
        // framing watch holds heads back until they are complete).
        () = shed.cancelled() => {
            tracing::debug!("closing a stalled HTTP connection to make room for a new one");
        }
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        tracing::debug!(%error, "HTTP connection ended during shutdown");
    }
}

/// Requests in flight on one connection, when bytes last moved, and when the head being
/// received started.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
    head_started: Mutex<Option<Instant>>,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
            head_started: Mutex::new(None),
        }
    }

    fn touch(&self) {
        *lock(&self.last) = Instant::now();
    }

    fn last(&self) -> Instant {
        *lock(&self.last)
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Since when the connection has made no progress: the start of a head still arriving,
    /// else the last byte moved.
    fn stalled_since(&self) -> Instant {
        lock(&self.head_started).unwrap_or_else(|| self.last())
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }
}

/// A request in flight; the idle clock restarts when it ends.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A client connection with the header and idle deadlines, and the framing watch.
struct Guarded {
    inner: TcpStream,
    framing: Framing,
    /// Bytes the framing watch has released and the HTTP library has not read yet.
    released: Vec<u8>,
    at: usize,
    eof: bool,
    limits: Limits,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
}

impl Guarded {
    fn new(inner: TcpStream, limits: Limits, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            framing: Framing::default(),
            released: Vec::new(),
            at: 0,
            eof: false,
            limits,
            activity,
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(0))),
        }
    }

    /// When this connection is to be cut off, if nothing happens before: the header deadline
    /// while a head is arriving, else the idle deadline while no request is in flight.
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        if let Some(started) = self.framing.head_started() {
            return Some((
                Instant::from_std(started) + self.limits.header_timeout,
                "its request headers took longer than http.header_timeout",
            ));
        }
        (self.activity.in_flight.load(Ordering::SeqCst) == 0).then(|| {
            (
                self.activity.last() + self.limits.idle_timeout,
                "it was idle for longer than http.idle_timeout",
            )
        })
    }

    /// Called when the socket has nothing to offer: fails once the deadline has passed,
    /// otherwise arranges to be woken at it.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some((deadline, why)) = self.deadline() else {
            return Poll::Pending;
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if Instant::now() >= deadline || self.timer.as_mut().poll(cx).is_ready() {
            tracing::debug!("closing an HTTP connection: {why}");
            return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, why));
        }
        Poll::Pending
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.at < this.released.len() {
                let n = buf.remaining().min(this.released.len() - this.at);
                buf.put_slice(&this.released[this.at..this.at + n]);
                this.at += n;
                if this.at == this.released.len() {
                    this.released.clear();
                    this.at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut scratch = [0u8; 8192];
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    this.framing.finish(&mut this.released);
                    this.eof = true;
                }
                Poll::Ready(Ok(())) => {
                    this.activity.touch();
                    this.framing
                        .feed(read.filled(), std::time::Instant::now(), &mut this.released);
                    *lock(&this.activity.head_started) =
                        this.framing.head_started().map(Instant::from_std);
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    let error = ready!(this.poll_deadline(cx));
                    return Poll::Ready(Err(error));
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain assignments only; a poisoned lock still holds a whole value.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                this.activity.touch();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                // A client that does not read its answer: the idle deadline applies too.
                let error = ready!(this.poll_deadline(cx));
                Poll::Ready(Err(error))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stalled_for(activity: &Activity, seconds: u64) {
        *lock(&activity.last) = Instant::now() - Duration::from_secs(seconds);
    }

    #[tokio::test]
    async fn the_limit_sheds_the_longest_stalled_and_never_a_request_in_flight() {
        let registry = Registry::default();
        let add = |seconds| {
            let activity = Arc::new(Activity::new());
            stalled_for(&activity, seconds);
            let shed = CancellationToken::new();
            registry.add(activity.clone(), shed.clone());
            (activity, shed)
        };
        let (busy, busy_shed) = add(60);
        let _request = busy.begin();
        stalled_for(&busy, 60);
        let (_, old_shed) = add(30);
        let (_, young_shed) = add(5);
        let (_, fresh_shed) = add(0);
        assert!(registry.shed_one());
        assert!(old_shed.is_cancelled());
        assert!(registry.shed_one());
        assert!(young_shed.is_cancelled());
        assert!(
            !registry.shed_one(),
            "the rest is in flight or just arrived"
        );
        assert!(!busy_shed.is_cancelled() && !fresh_shed.is_cancelled());
    }
}
