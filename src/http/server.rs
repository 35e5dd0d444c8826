//! The HTTP server loop, with the limits a port on the internet needs: at most
//! `http.max_connections` connections at once (logged when reached), a deadline for each
//! request's headers counted from their first byte (`http.header_timeout`), and an idle timeout
//! for a connection with no request in flight and no bytes moving (`http.idle_timeout`).
//!
//! At the limit, new connections wait in the kernel's listen backlog rather than being refused:
//! slow or idle connections are closed by the timeouts, so a real request gets its turn within
//! `http.header_timeout`. Each connection's bytes pass through [`framing`](super::framing)
//! before the HTTP library parses them. A request in flight is never cut off by the idle
//! timeout: a `POST /message` waiting on its commit must be answered (see `routes`).
//!
//! Shutdown stops accepting, lets each connection finish the request in flight, then closes it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    let mut connections = JoinSet::new();
    let mut last_limit_log: Option<Instant> = None;
    let mut limit_hits: u64 = 0;
    loop {
        while connections.try_join_next().is_some() {}
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                limit_hits += 1;
                if last_limit_log.is_none_or(|at| at.elapsed() >= LIMIT_LOG_INTERVAL) {
                    tracing::warn!(
                        limit = limits.max_connections,
                        times = limit_hits,
                        "HTTP connection limit reached (http.max_connections): new connections \
                         wait until one closes; slow or idle clients are closed after \
                         http.header_timeout / http.idle_timeout"
                    );
                    last_limit_log = Some(Instant::now());
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = shutdown.cancelled() => break,
                }
            }
        };
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
        let _ = stream.set_nodelay(true);
        let (router, shutdown) = (router.clone(), shutdown.clone());
        connections.spawn(async move {
            serve_connection(stream, router, limits, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One connection, until the client closes it, a timeout cuts it off, or shutdown.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
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
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP connection ended");
            }
            return;
        }
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        tracing::debug!(%error, "HTTP connection ended during shutdown");
    }
}

/// Requests in flight on one connection, and when bytes last moved.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    fn touch(&self) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
