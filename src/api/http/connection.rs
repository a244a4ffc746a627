//! One HTTP/1.1 connection to the listener, with the bounds `axum::serve` lacks: the request
//! head must arrive within [`HEAD_TIMEOUT`] (which, in hyper, also runs while a kept-alive
//! connection waits for its next request: it is the idle timeout too), a connection lives at
//! most [`MAX_AGE`] before it is asked to close, and a connection asked to close (age, daemon
//! stopping) gets [`CLOSE_GRACE`] to finish its response before it is dropped. So no client, idle
//! or slow, holds a descriptor for long, and shutdown never waits on one.

use std::time::Duration;

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpStream, sync::OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Longest wait for a request's head, from the connection's start or the previous response.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection's longest life; then it closes after its response in progress.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// How long a connection asked to close may take to finish its response.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Read buffer (and so request head) limit per connection: a status page's requests are small.
const MAX_BUFFER: usize = 16 * 1024;

/// Serves `stream` with `app` until the client leaves or a bound ends it; `permit` holds the
/// connection's place under the listener's cap until then.
pub async fn serve(
    stream: TcpStream,
    app: Router,
    shutdown: CancellationToken,
    permit: OwnedSemaphorePermit,
) {
    let _place = permit;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_BUFFER);
    let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => Some(ended),
        () = shutdown.cancelled() => None,
        () = tokio::time::sleep(MAX_AGE) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(CLOSE_GRACE, connection).await {
                Ok(ended) => ended,
                Err(_) => {
                    debug!("HTTP connection dropped: no end within the close grace");
                    return;
                }
            }
        }
    };
    if let Err(e) = ended {
        debug!(error = %e, "HTTP connection ended with an error");
    }
}
