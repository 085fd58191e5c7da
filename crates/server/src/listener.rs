//! Listeners: the accept loop for plain HTTP and TLS, HTTP/1.1 and HTTP/2, with graceful
//! shutdown. Every request carries a [`ConnInfo`] extension (peer address, which listener) so
//! that network rules can judge it.
//!
//! Owns the life of a connection: admission against the caps ([`limits`]), the TLS handshake,
//! the header-read timeout (hyper's own, for HTTP/1.1), the timeout for a connection without a
//! request (no first request, or kept alive idle; also covering what hyper does not time:
//! protocol detection and HTTP/2), the inactivity timeout between request-body frames
//! (tower-http's `TimeoutBody`), and backing off when `accept` fails. It never reads requests
//! beyond what hyper parses, and never closes a connection that has a request in progress
//! except through hyper's and the body's own timeouts.

pub mod limits;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use limits::{Admitted, Close, InFlight, RateLimited};
pub use limits::{ConnectionLimits, FdLimit, raise_fd_limit};

/// Which listener a request arrived on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerKind {
    Public,
    /// A private endpoint's listener: serves only `registry_id`.
    PrivateEndpoint {
        endpoint_id: String,
        registry_id: String,
    },
}

/// Connection facts attached to every request.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub listener: ListenerKind,
}

/// Serves `router` on `listener` until `shutdown` turns true, then lets open connections
/// finish their in-flight requests. `limits` is shared by every listener of the process.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    kind: ListenerKind,
    router: Router,
    limits: Arc<ConnectionLimits>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let settings = limits.settings;
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let mut backoff = AcceptBackoff::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff.reset();
                    a
                }
                Err(e) => {
                    backoff.failed(&e).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(admitted) = limits.admit(peer.ip()) else {
            // Closed at once: the refusal is logged (rate-limited) by `admit`.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            info: ConnInfo { peer, local, listener: kind.clone() },
            router: router.clone(),
            builder: builder.clone(),
            admitted,
            body_read_timeout: settings.body_read_timeout,
        };
        let (tls, watcher) = (tls.clone(), graceful.watcher());
        let (header_read, idle) = (settings.header_read_timeout, settings.idle_timeout);
        tokio::spawn(async move {
            let activity = conn.admitted.activity.clone();
            tokio::select! {
                () = conn.run(stream, tls, watcher) => {}
                why = activity.watchdog(header_read, idle) => {
                    let reason = match why {
                        Close::NoRequest => "no request within the header-read timeout",
                        Close::Idle => "idle for the idle timeout",
                        Close::Evicted => "the server is full and another client needed the place",
                    };
                    tracing::debug!(%peer, reason, "closing a connection without a request in progress");
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {},
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("connections still open after 30 s; closing them");
        }
    }
    Ok(())
}

/// One admitted connection.
struct Connection {
    info: ConnInfo,
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    /// Holds the connection's place under the caps until it is dropped.
    admitted: Admitted,
    body_read_timeout: Duration,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>, watcher: hyper_util::server::graceful::Watcher) {
        match tls {
            None => self.http(stream, watcher).await,
            Some(acceptor) => match acceptor.accept(stream).await {
                Ok(tls_stream) => self.http(tls_stream, watcher).await,
                Err(e) => tracing::debug!(peer = %self.info.peer, error = %e, "TLS handshake failed"),
            },
        }
    }

    async fn http<I>(self, io: I, watcher: hyper_util::server::graceful::Watcher)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection { info, router, builder, admitted, body_read_timeout } = self;
        let activity = admitted.activity.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let in_flight = activity.begin();
            let mut req =
                req.map(|body| axum::body::Body::new(tower_http::timeout::TimeoutBody::new(body_read_timeout, body)));
            req.extensions_mut().insert(info.clone());
            let response = router.clone().oneshot(req);
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| axum::body::Body::new(Tracked { body, _in_flight: in_flight })),
                )
            }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
        let _ = watcher.watch(conn).await;
        drop(admitted);
    }
}

/// A response body that keeps its request counted as in progress until it has been sent or
/// dropped.
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// What the accept loop does when `accept` fails. Running out of file descriptors (EMFILE,
/// ENFILE) or memory leaves the connection in the backlog, so retrying at once would spin:
/// wait, doubling from 10 ms to 1 s, and log at most every 10 s. A connection the peer reset
/// before it was accepted is only that connection's failure.
struct AcceptBackoff {
    delay: Duration,
    log: RateLimited,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn new() -> AcceptBackoff {
        AcceptBackoff { delay: Self::FIRST, log: RateLimited::new(Duration::from_secs(10)) }
    }

    fn reset(&mut self) {
        self.delay = Self::FIRST;
    }

    async fn failed(&mut self, e: &std::io::Error) {
        use std::io::ErrorKind;
        if matches!(e.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset) {
            tracing::debug!(error = %e, "accept: the peer went away first");
            return;
        }
        let delay = self.delay;
        self.log.log(|suppressed| {
            tracing::warn!(error = %e, retry_in = ?delay, suppressed, "accept failed; backing off (suppressed: failures not logged since the last message)")
        });
        tokio::time::sleep(delay).await;
        self.delay = (delay * 2).min(Self::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn accept_failures_back_off_doubling_to_a_second_and_success_resets() {
        let mut backoff = AcceptBackoff::new();
        let emfile = std::io::Error::from_raw_os_error(24); // EMFILE: Too many open files
        let start = tokio::time::Instant::now();
        backoff.failed(&emfile).await;
        assert_eq!(start.elapsed(), AcceptBackoff::FIRST);
        let mut waited = vec![];
        for _ in 0..9 {
            let t = tokio::time::Instant::now();
            backoff.failed(&emfile).await;
            waited.push(t.elapsed().as_millis());
        }
        assert_eq!(waited, vec![20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.delay, AcceptBackoff::FIRST);
        // A connection the peer reset before it was accepted costs no wait.
        let t = tokio::time::Instant::now();
        backoff.failed(&std::io::Error::from(std::io::ErrorKind::ConnectionAborted)).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
