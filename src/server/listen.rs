//! Accept loops: a bounded number of connections, each served as HTTP/2 or HTTP/1.1 (chosen by
//! ALPN), with timeouts against slow and idle clients and a graceful drain on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::shutdown::Signal;
use super::tls::Tls;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Open connections per listener; beyond it the listener stops accepting until one closes.
    pub max_connections: usize,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Time a client has to send a request's headers (HTTP/1.1, where it also bounds idle
    /// keep-alive) or the connection preface (HTTP/2).
    pub header_read_timeout: Duration,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// A connection with no request in flight for this long is closed gracefully (HTTP/2:
    /// GOAWAY, which clients answer by reconnecting). Without it an HTTP/2 client that answers
    /// pings, or trickles a HEADERS frame, holds a connection slot for as long as it likes.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 1024,
            max_concurrent_streams: 256,
            header_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The protocol a connection speaks, fixed before hyper sees it: sniffing it from the first
/// bytes (hyper-util's auto mode) would wait on a silent client with no deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

/// One builder per protocol.
struct Builders {
    h1: Builder<TokioExecutor>,
    h2: Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: &ConnLimits) -> Builders {
        let mut h1 = Builder::new(TokioExecutor::new()).http1_only();
        h1.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(64 * 1024);
        let mut h2 = Builder::new(TokioExecutor::new()).http2_only();
        h2.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(64 * 1024)
            // Detects peers that vanished without closing, so their slots are freed.
            .keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(20));
        Builders { h1, h2 }
    }

    fn get(&self, proto: Proto) -> &Builder<TokioExecutor> {
        match proto {
            Proto::H1 => &self.h1,
            Proto::H2 => &self.h2,
        }
    }
}

/// The HTTP/2 client preface.
const H2_PREFACE_LEN: usize = 24;

/// Fails reads with `TimedOut` until the first `need` bytes have arrived, if they take longer
/// than the deadline. hyper bounds HTTP/1.1 header reads itself, but nothing bounds the wait
/// for the HTTP/2 preface.
struct FirstBytes<IO> {
    io: IO,
    need: usize,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<IO> FirstBytes<IO> {
    fn new(io: IO, need: usize, within: Duration) -> FirstBytes<IO> {
        let deadline = (need > 0).then(|| Box::pin(tokio::time::sleep(within)));
        FirstBytes { io, need, deadline }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FirstBytes<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() - before;
                self.need = self.need.saturating_sub(got);
                if self.need == 0 {
                    self.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no request within the header read timeout",
                ))),
                _ => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FirstBytes<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves `app` over TLS until `shutdown`, then lets open connections finish for at most `drain`.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<Tls>,
    app: Router,
    limits: ConnLimits,
    shutdown: Signal,
    drain: Duration,
) {
    serve_tls_as(
        "webhook",
        listener,
        move || tls.acceptor(),
        app,
        limits,
        shutdown,
        drain,
    )
    .await;
}

/// Serves the admin `app` over TLS with the webhook's certificate (reloaded with it), asking
/// no client certificate: kubelet probes and scrapers have none.
pub async fn serve_admin_tls(
    listener: TcpListener,
    tls: Arc<Tls>,
    app: Router,
    limits: ConnLimits,
    shutdown: Signal,
    drain: Duration,
) {
    serve_tls_as(
        "admin",
        listener,
        move || tls.admin_acceptor(),
        app,
        limits,
        shutdown,
        drain,
    )
    .await;
}

async fn serve_tls_as(
    name: &'static str,
    listener: TcpListener,
    acceptor: impl Fn() -> tokio_rustls::TlsAcceptor,
    app: Router,
    limits: ConnLimits,
    shutdown: Signal,
    drain: Duration,
) {
    let handshake_timeout = limits.handshake_timeout;
    let handshake = move |tcp: TcpStream, peer: SocketAddr| {
        let acceptor = acceptor();
        async move {
            match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    // HTTP/2 over TLS requires ALPN (RFC 9113 §3.2); without it, HTTP/1.1.
                    let proto = match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Proto::H2,
                        _ => Proto::H1,
                    };
                    Some((stream, proto))
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    None
                }
            }
        }
    };
    serve(listener, name, app, limits, shutdown, drain, handshake).await;
}

/// Serves `app` over plain HTTP (the admin port).
pub async fn serve_plain(listener: TcpListener, app: Router, limits: ConnLimits, shutdown: Signal, drain: Duration) {
    // Probes and scrapers speak HTTP/1.1.
    let handshake = |tcp: TcpStream, _peer: SocketAddr| async move { Some((tcp, Proto::H1)) };
    serve(listener, "admin", app, limits, shutdown, drain, handshake).await;
}

async fn serve<H, F, IO>(
    listener: TcpListener,
    name: &'static str,
    app: Router,
    limits: ConnLimits,
    shutdown: Signal,
    drain: Duration,
    handshake: H,
) where
    H: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = Option<(IO, Proto)>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let builders = Arc::new(Builders::new(&limits));
    let header_read_timeout = limits.header_read_timeout;
    let idle_timeout = limits.idle_timeout;
    // Every connection task holds a slot until it ends, so the slots also count open connections.
    let max_connections = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max_connections as usize));
    // Dropped when this function returns: connections that outlived the drain are cut then.
    let (_cut_trigger, cut) = super::shutdown::channel();
    loop {
        let permit = tokio::select! {
            () = shutdown.wait() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning on the error.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let handshake = handshake(tcp, peer);
        let builders = builders.clone();
        let app = app.clone();
        let shutdown = shutdown.clone();
        let cut = cut.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // A handshake still in progress when shutdown begins has no request to finish.
            let io = tokio::select! {
                io = handshake => io,
                () = shutdown.wait() => None,
            };
            let Some((io, proto)) = io else { return };
            let need = if proto == Proto::H2 { H2_PREFACE_LEN } else { 0 };
            let io = FirstBytes::new(io, need, header_read_timeout);
            let activity = Activity::new();
            let service = TowerToHyperService::new(activity.clone().track(app));
            let conn = builders.get(proto).serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            let why = tokio::select! {
                result = conn.as_mut() => return ended(name, peer, result),
                () = shutdown.wait() => "shutdown",
                () = activity.idle(idle_timeout) => "idle",
            };
            tracing::debug!(listener = name, %peer, why, "closing the connection after its requests");
            conn.as_mut().graceful_shutdown();
            // HTTP/2 closes after a PING round trip; a client that never answers it (one stuck
            // in the middle of a frame) is dropped once it has had as long as for headers.
            tokio::select! {
                result = conn => ended(name, peer, result),
                () = cut.wait() => {}
                () = activity.idle(header_read_timeout) => {
                    tracing::debug!(listener = name, %peer, "no response to the close; dropping the connection");
                }
            }
        });
    }
    drop(listener);
    let open = max_connections as usize - slots.available_permits();
    if tokio::time::timeout(drain, slots.acquire_many(max_connections))
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            drain_s = drain.as_secs_f64(),
            "connections still open at the shutdown timeout; closing them"
        );
    } else if open > 0 {
        tracing::info!(listener = name, connections = open, "open connections drained");
    }
}

fn ended<E: std::fmt::Display>(name: &str, peer: SocketAddr, result: Result<(), E>) {
    if let Err(e) = result {
        tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
    }
}

/// Requests in flight on one connection and when the last one ended, for the idle timeout.
/// Read by polling, never signalled: a signal at each request's start and end woke the
/// connection's task twice per request (re-polling the HTTP/2 connection and arming a new
/// timer each time), which cost more than the review's own logging. The idle check instead
/// wakes once per timeout, or every [`BUSY_RECHECK`] while a request is in flight.
#[derive(Clone)]
struct Activity(Arc<ActivityState>);

struct ActivityState {
    in_flight: AtomicUsize,
    /// When the last request ended (at first: when the connection opened), since `epoch`.
    last_end_nanos: AtomicU64,
    epoch: Instant,
}

/// How often a connection with a request in flight looks again whether it has gone idle: the
/// idle timeout then ends at most this much after it is due.
const BUSY_RECHECK: Duration = Duration::from_millis(500);

impl ActivityState {
    fn since_epoch(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
    fn last_end(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_end_nanos.load(Ordering::Acquire))
    }
}

/// One request in flight; counted until dropped.
struct InFlight(Arc<ActivityState>);

impl InFlight {
    fn start(state: &Arc<ActivityState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.since_epoch(Instant::now());
        // The end time first: whoever sees the count fall sees when it fell.
        self.0.last_end_nanos.fetch_max(now, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity(Arc::new(ActivityState {
            in_flight: AtomicUsize::new(0),
            last_end_nanos: AtomicU64::new(0),
            epoch: Instant::now(),
        }))
    }

    /// `app`, counting each request from its call until its response is ready.
    fn track(
        self,
        app: Router,
    ) -> impl tower::Service<
        Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
    > + Clone {
        let activity = self.0;
        tower::service_fn(move |req: Request<Incoming>| {
            let in_flight = InFlight::start(&activity);
            let app = app.clone();
            async move {
                let response = app.oneshot(req).await;
                drop(in_flight);
                response
            }
        })
    }

    /// Resolves once no request has been in flight for `after`, counted from this call at the
    /// earliest.
    async fn idle(&self, after: Duration) {
        let state = &self.0;
        let called = Instant::now();
        loop {
            let now = Instant::now();
            let due = if state.in_flight.load(Ordering::Acquire) > 0 {
                now + BUSY_RECHECK.min(after)
            } else {
                let due = state.last_end().max(called) + after;
                if now >= due {
                    return;
                }
                due
            };
            tokio::time::sleep_until(due).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(10);

    fn start(a: &Activity) -> InFlight {
        InFlight::start(&a.0)
    }

    fn idle_at(a: &Activity) -> tokio::task::JoinHandle<Instant> {
        let a = a.clone();
        tokio::spawn(async move {
            a.idle(AFTER).await;
            Instant::now()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_once_its_last_request_has_ended_for_the_timeout() {
        let a = Activity::new();
        let t0 = Instant::now();
        let request = start(&a);
        let idle = idle_at(&a);
        tokio::time::sleep(3 * AFTER).await;
        assert!(!idle.is_finished(), "a request in flight for longer than the timeout");
        drop(request);
        assert_eq!(idle.await.unwrap(), t0 + 4 * AFTER);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_comes_and_goes_restarts_the_count() {
        let a = Activity::new();
        let t0 = Instant::now();
        let idle = idle_at(&a);
        tokio::time::sleep(AFTER / 2).await;
        drop(start(&a));
        assert_eq!(idle.await.unwrap(), t0 + AFTER / 2 + AFTER);
    }

    #[tokio::test(start_paused = true)]
    async fn the_count_starts_no_earlier_than_the_call() {
        // After a shutdown's close, an idle connection gets the whole timeout again.
        let a = Activity::new();
        tokio::time::sleep(5 * AFTER).await;
        let called = Instant::now();
        assert_eq!(idle_at(&a).await.unwrap(), called + AFTER);
    }
}
