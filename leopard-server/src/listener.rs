//! The accept loop of `leopard serve`: HTTP/1.1 and HTTP/2 connections served by hyper with
//! limits against slow and silent clients, and a bounded graceful shutdown.
//!
//! - A connection must send its first byte within the header timeout, and its request headers
//!   within the same timeout (hyper's `header_read_timeout`); otherwise it is closed. Ten
//!   thousand idle sockets therefore cost ten thousand small tasks for a few seconds, never a
//!   worker or a database connection, and real clients are served beside them.
//! - On shutdown the listener is closed at once (new connections are refused), every open
//!   connection is told to finish its in-flight request and close (idle keep-alive connections
//!   close immediately), and whatever is still open after the shutdown timeout is dropped.

use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct ListenerConfig {
    /// How long a connection may stay silent before its first byte, and take to send a
    /// request's headers.
    pub header_timeout: Duration,
    /// How long in-flight requests get after the shutdown signal.
    pub shutdown_timeout: Duration,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains the open connections
/// for at most the shutdown timeout. Each request carries `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ListenerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let watcher = graceful.watcher();
                    let builder = builder.clone();
                    let router = router.clone();
                    tokio::spawn(async move {
                        if !first_byte_within(&stream, config.header_timeout).await {
                            return;
                        }
                        let _ = stream.set_nodelay(true);
                        let service = router.map_request(move |mut req: http::Request<_>| {
                            req.extensions_mut().insert(ConnectInfo(peer));
                            req
                        });
                        let conn = builder
                            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
                        if let Err(err) = watcher.watch(conn).await {
                            tracing::debug!(%peer, error = %err, "connection ended with an error");
                        }
                    });
                }
                // Out of file descriptors or a connection reset before accept: back off a
                // moment rather than spin.
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!(
        timeout_secs = config.shutdown_timeout.as_secs(),
        "shutting down: draining open connections"
    );
    if tokio::time::timeout(config.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown timeout were dropped");
    }
}

/// Whether the connection sends a byte within `timeout` (a silent or closed one is dropped).
async fn first_byte_within(stream: &TcpStream, timeout: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(timeout, stream.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}
