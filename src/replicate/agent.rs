//! The agent's publisher: every durable result, in order, from the ledger's cursor to
//! JetStream, and each new signed checkpoint.
//!
//! Checks never wait for it: the recorder writes results to the ledger as always, and this
//! task reads them back from the replication queue when NATS can take them. Each message is
//! published and its acknowledgement awaited before the next, so the stream holds one
//! agent's results in order and the cursor only moves over what JetStream has stored.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::wire::{self, MSG_ID_HEADER};
use super::{ReplicateError, Trouble};
use crate::config::{Config, ReplicationSpec};
use crate::ledger::{Ledger, ProbeNames};
use crate::model::LocationName;

/// Results read from the ledger per round.
const READ_AT_ONCE: usize = 8 * wire::RESULTS_PER_MESSAGE;
/// Longest wait for JetStream's acknowledgement of one message.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// With nothing to send, the queue is looked at again this often even unwoken.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// At a stop, how long the publisher goes on sending what the last group commits queued:
/// with NATS up, a clean stop leaves nothing behind for the next start to send.
pub const DRAIN_AT_STOP: Duration = Duration::from_secs(3);

/// Runs until `stop`: publishes while the configuration makes this daemon an agent.
/// `written` is notified after each group commit. At `stop` (which the daemon gives once its
/// last results are written) it sends what is queued for up to [`DRAIN_AT_STOP`]; whatever is
/// left waits in the ledger for the next start.
pub async fn run(
    ledger: Arc<Ledger>,
    mut config: watch::Receiver<Arc<Config>>,
    written: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut link: Option<(ReplicationSpec, jetstream::Context)> = None;
    let mut trouble = Trouble::new("cannot replicate results; they wait in the ledger");
    let mut checkpoint_sent = 0u64;
    let mut names = ProbeNames::default();
    loop {
        let current = Arc::clone(&config.borrow_and_update());
        let spec = current.replication.clone().filter(|_| current.is_agent());
        let outcome = match spec {
            None => {
                link = None;
                Ok(false)
            }
            Some(spec) => {
                let location = current.daemon.location.clone();
                let round = Round {
                    ledger: &ledger,
                    spec: &spec,
                    location: &location,
                    names: &mut names,
                };
                round.publish(&mut link, &mut checkpoint_sent).await
            }
        };
        let pause = match outcome {
            Ok(more) => {
                if let Some(since) = trouble.recovered() {
                    let backlog = ledger.replication_backlog().unwrap_or(0);
                    info!(%since, backlog, "replication to NATS resumed");
                }
                if more { Duration::ZERO } else { IDLE_POLL }
            }
            Err(e) => {
                link = None;
                trouble.failed(&e)
            }
        };
        if pause.is_zero() && !stop.is_cancelled() {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => {
                drain(&ledger, &current, &mut link, &mut names, &mut checkpoint_sent).await;
                return;
            }
            () = written.notified(), if !trouble.failing() => {}
            () = tokio::time::sleep(pause) => {}
            changed = config.changed() => if changed.is_err() { return },
        }
    }
}

/// The last rounds at a stop, while NATS takes them and for at most [`DRAIN_AT_STOP`].
async fn drain(
    ledger: &Arc<Ledger>,
    config: &Config,
    link: &mut Option<(ReplicationSpec, jetstream::Context)>,
    names: &mut ProbeNames,
    checkpoint_sent: &mut u64,
) {
    let Some(spec) = config.replication.as_ref().filter(|_| config.is_agent()) else {
        return;
    };
    let rounds = async {
        loop {
            let round = Round {
                ledger,
                spec,
                location: &config.daemon.location,
                names: &mut *names,
            };
            match round.publish(&mut *link, &mut *checkpoint_sent).await {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    debug!(error = %e, "results left for the next start");
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(DRAIN_AT_STOP, rounds).await.is_err() {
        debug!("stopped sending at the stop deadline; the rest waits in the ledger");
    }
}

/// What one publishing round works with.
struct Round<'a> {
    ledger: &'a Arc<Ledger>,
    spec: &'a ReplicationSpec,
    location: &'a LocationName,
    names: &'a mut ProbeNames,
}

impl Round<'_> {
    /// Publishes what the queue holds (up to [`READ_AT_ONCE`] results) and the newest
    /// checkpoint; returns whether more is queued.
    async fn publish(
        self,
        link: &mut Option<(ReplicationSpec, jetstream::Context)>,
        checkpoint_sent: &mut u64,
    ) -> Result<bool, ReplicateError> {
        let Round {
            ledger,
            spec,
            location,
            names,
        } = self;
        if link.as_ref().is_none_or(|(linked, _)| linked != spec) {
            let context = super::connect(spec).await?;
            info!(nats = %spec.nats, stream = %spec.stream, %location, "replicating results to NATS JetStream");
            *link = Some((spec.clone(), context));
        }
        let Some((_, context)) = link.as_ref() else {
            return Ok(false);
        };
        // A quick read of a few entries: not worth a blocking-pool thread.
        let pending = ledger.replication_pending(READ_AT_ONCE, names)?;
        let mut sent = 0usize;
        for entry in &pending {
            // Where the checks ran: the location on record then (it may have changed since).
            let first_at = entry.records.first().map(|r| r.at);
            let place = match first_at.map(|at| ledger.location_at(at)) {
                Some(Ok(Some(recorded))) => recorded,
                _ => location.clone(),
            };
            for message in wire::messages_of(entry, &place) {
                let end = message.first_seq + message.results.len() as u64;
                publish(
                    context,
                    wire::results_subject(&spec.stream, &place),
                    wire::message_id(&place, message.first_seq),
                    message.to_bytes(),
                )
                .await?;
                sent += message.results.len();
                let writer = Arc::clone(ledger);
                tokio::task::spawn_blocking(move || writer.advance_replication(end))
                    .await
                    .map_err(|e| {
                        ReplicateError::Transport(format!("ledger writer failed: {e}"))
                    })??;
            }
        }
        if sent > 0 {
            debug!(results = sent, "replicated");
        }
        publish_checkpoint(ledger, spec, location, context, checkpoint_sent).await?;
        Ok(sent >= READ_AT_ONCE)
    }
}

/// Publishes the newest signed checkpoint if it is newer than the last one sent.
async fn publish_checkpoint(
    ledger: &Ledger,
    spec: &ReplicationSpec,
    location: &LocationName,
    context: &jetstream::Context,
    sent: &mut u64,
) -> Result<(), ReplicateError> {
    let Some((size, note)) = ledger.checkpoint_at_or_before(u64::MAX)? else {
        return Ok(());
    };
    if size <= *sent {
        return Ok(());
    }
    publish(
        context,
        wire::checkpoints_subject(&spec.stream, location),
        format!("{location}:checkpoint:{size}"),
        note.into_bytes(),
    )
    .await?;
    *sent = size;
    Ok(())
}

/// One message, acknowledged by JetStream (a duplicate id within the window is
/// acknowledged too, as a duplicate).
async fn publish(
    context: &jetstream::Context,
    subject: String,
    id: String,
    body: Vec<u8>,
) -> Result<(), ReplicateError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(MSG_ID_HEADER, id.as_str());
    let ack = context
        .publish_with_headers(subject, headers, Bytes::from(body))
        .await
        .map_err(|e| ReplicateError::Transport(format!("publish {id}: {e}")))?;
    match tokio::time::timeout(ACK_TIMEOUT, ack).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ReplicateError::Transport(format!(
            "JetStream did not store {id}: {}",
            super::explain_stream_error(&e.to_string())
        ))),
        Err(_) => Err(ReplicateError::Transport(format!(
            "no acknowledgement for {id} within {ACK_TIMEOUT:?}"
        ))),
    }
}
