//! Results between locations (SPEC §9): agents publish every durable result to NATS
//! JetStream, coordinators consume them into their own ledgers. May use `ledger`, `config`
//! and `model`; never `api` (nor `daemon`: the daemon hands in what the tasks need).
//!
//! JetStream is the durable, replicated transport (one server, or a cluster of three); each
//! side keeps its own position in its own ledger or in a durable consumer, so either side,
//! or NATS, can stop for any length of time and nothing is lost: the agent's ledger keeps
//! what NATS has not acknowledged (see `ledger::replication`), the stream keeps what no
//! coordinator has acknowledged, and a coordinator stores a result once however often it
//! arrives.

pub mod agent;
pub mod coordinator;
pub mod wire;

use std::time::Duration;

use async_nats::jetstream;

use crate::config::ReplicationSpec;
use crate::ledger::LedgerError;

/// Why the transport is not usable right now; always retried.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    /// No connection to the NATS server.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The configured address.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// The server answered but has no JetStream, or refused the stream or consumer.
    #[error("JetStream at {url}: {reason}")]
    JetStream {
        /// The configured address.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A publish or fetch failed.
    #[error("{0}")]
    Transport(String),
    /// The local ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// First pause after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between attempts: a NATS server coming back is used within this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// JetStream's deduplication window for the stream it creates: replays within it are
/// dropped by NATS; later ones by the coordinator's ledger.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// Connects to `spec.nats` and checks the stream exists, creating it when it does not.
async fn connect(spec: &ReplicationSpec) -> Result<jetstream::Context, ReplicateError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(concat!("upledger ", env!("CARGO_PKG_VERSION")))
        .connection_timeout(CONNECT_TIMEOUT)
        // The client's own reconnects are unbounded; the tasks here decide when to give up
        // on a connection (never) and how to tell the operator.
        .max_reconnects(None);
    if let Some(creds) = &spec.creds {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| ReplicateError::Connect {
                url: spec.nats.clone(),
                reason: format!("cannot read creds file {}: {e}", creds.display()),
            })?;
    }
    if let Some(ca) = &spec.tls_ca {
        options = options.add_root_certificates(ca.clone());
    }
    let client =
        options
            .connect(spec.nats.as_str())
            .await
            .map_err(|e| ReplicateError::Connect {
                url: spec.nats.clone(),
                reason: e.to_string(),
            })?;
    let context = jetstream::new(client);
    context
        .get_or_create_stream(jetstream::stream::Config {
            name: spec.stream.clone(),
            subjects: vec![wire::stream_subjects(&spec.stream)],
            storage: jetstream::stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| ReplicateError::JetStream {
            url: spec.nats.clone(),
            reason: explain_stream_error(&e.to_string()),
        })?;
    Ok(context)
}

/// The client's words, with what to do when the server simply has no JetStream.
fn explain_stream_error(reason: &str) -> String {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("not enabled")
        || lower.contains("no responders")
        || lower.contains("unavailable")
    {
        format!("{reason} (is JetStream enabled? start nats-server with -js)")
    } else {
        reason.to_owned()
    }
}

/// Exponential backoff between attempts.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(FIRST_BACKOFF)
    }
}

impl Backoff {
    /// The pause before the next attempt, doubling the one after.
    fn next(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        pause
    }

    fn reset(&mut self) {
        self.0 = FIRST_BACKOFF;
    }
}
