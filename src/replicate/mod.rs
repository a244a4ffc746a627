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

/// A task's trouble with the transport: since when, and how long to wait before the next
/// attempt. The first failure of an outage is a warning, the ones after it debug lines, and
/// the end of it an info line: one outage, three lines, however long it lasts.
#[derive(Debug)]
struct Trouble {
    since: Option<jiff::Timestamp>,
    pause: Duration,
    /// What the warning says is not happening (`cannot …`).
    what: &'static str,
}

impl Trouble {
    fn new(what: &'static str) -> Trouble {
        Trouble {
            since: None,
            pause: FIRST_BACKOFF,
            what,
        }
    }

    /// Whether the last attempt failed.
    fn failing(&self) -> bool {
        self.since.is_some()
    }

    /// An attempt failed: logs it and returns the pause before the next (doubling up to
    /// [`MAX_BACKOFF`]).
    fn failed(&mut self, error: &ReplicateError) -> Duration {
        let pause = self.pause;
        self.pause = (self.pause * 2).min(MAX_BACKOFF);
        if self.since.is_none() {
            self.since = Some(jiff::Timestamp::now());
            tracing::warn!(error = %error, retry_in = ?pause, "{}", self.what);
        } else {
            tracing::debug!(error = %error, retry_in = ?pause, "still failing: {}", self.what);
        }
        pause
    }

    /// An attempt worked: returns since when it had been failing, if it had.
    fn recovered(&mut self) -> Option<jiff::Timestamp> {
        self.pause = FIRST_BACKOFF;
        self.since.take()
    }
}
