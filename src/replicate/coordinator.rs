//! The coordinator's consumer: every agent's results from JetStream into this ledger, each
//! location's under its series name (`probe@location`), then to the recorder, which
//! evaluates probes over locations (SPEC §9).
//!
//! A durable pull consumer keeps the position on the server: a coordinator that stops picks
//! up where it acknowledged. A batch is acknowledged only after its results are durable
//! here; a batch redelivered after a crash is stored once all the same
//! (`Ledger::append_new`). What is not a results message is logged and terminated (never
//! redelivered); results of a probe or location this configuration does not know are
//! stored anyway — a coordinator whose configuration lags its agents' must not lose them —
//! and logged once each.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::wire::{self, ResultsMessage};
use super::{ReplicateError, Trouble};
use crate::config::{Config, ReplicationSpec};
use crate::ledger::{Ledger, ResultRecord};
use crate::model::{LocationName, ProbeName};

/// Messages fetched per batch (each holds up to [`wire::RESULTS_PER_MESSAGE`] results).
const FETCH_AT_ONCE: usize = 256;
/// How long a fetch waits for messages before it returns what it has.
const FETCH_WAIT: Duration = Duration::from_secs(1);
/// How long JetStream waits for an acknowledgement before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// Results taken in: what was new, for the recorder's state machines.
pub type Observed = mpsc::Sender<Vec<ResultRecord>>;

/// Runs until `stop`, consuming while the configuration makes this daemon a coordinator.
/// Readers take `gate`'s read side; each store holds its write side, as group commits do.
pub async fn run(
    ledger: Arc<Ledger>,
    mut config: watch::Receiver<Arc<Config>>,
    gate: Arc<RwLock<()>>,
    observed: Observed,
    stop: CancellationToken,
) {
    let mut link: Option<(ReplicationSpec, PullConsumer)> = None;
    let mut trouble = Trouble::new("cannot consume results from NATS");
    let mut warned: HashSet<(ProbeName, LocationName)> = HashSet::new();
    loop {
        let current = Arc::clone(&config.borrow_and_update());
        let spec = current
            .replication
            .clone()
            .filter(|_| current.is_coordinator());
        let outcome = match spec {
            None => {
                link = None;
                Ok(0)
            }
            Some(spec) => {
                let batch = Batch {
                    ledger: &ledger,
                    config: &current,
                    gate: &gate,
                    observed: &observed,
                    warned: &mut warned,
                };
                consume_round(&spec, &mut link, batch).await
            }
        };
        let pause = match outcome {
            Ok(_) => {
                if let Some(since) = trouble.recovered() {
                    info!(%since, "consuming results from NATS again");
                }
                // A fetch waits for messages itself; without a link there is nothing to do
                // until the configuration changes.
                if link.is_some() {
                    Duration::ZERO
                } else {
                    FETCH_WAIT
                }
            }
            Err(e) => {
                link = None;
                trouble.failed(&e)
            }
        };
        if stop.is_cancelled() {
            return;
        }
        if pause.is_zero() {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
            changed = config.changed() => if changed.is_err() { return },
        }
    }
}

/// What one round works with.
struct Batch<'a> {
    ledger: &'a Arc<Ledger>,
    config: &'a Config,
    gate: &'a Arc<RwLock<()>>,
    observed: &'a Observed,
    warned: &'a mut HashSet<(ProbeName, LocationName)>,
}

/// Fetches one batch (waiting up to [`FETCH_WAIT`]), stores it, acknowledges it; returns
/// how many messages it held.
async fn consume_round(
    spec: &ReplicationSpec,
    link: &mut Option<(ReplicationSpec, PullConsumer)>,
    batch: Batch<'_>,
) -> Result<usize, ReplicateError> {
    if link.as_ref().is_none_or(|(linked, _)| linked != spec) {
        let consumer = open_consumer(spec).await?;
        info!(nats = %spec.nats, stream = %spec.stream, consumer = %spec.consumer, "consuming agents' results from NATS JetStream");
        *link = Some((spec.clone(), consumer));
    }
    let Some((_, consumer)) = link.as_ref() else {
        return Ok(0);
    };
    let mut messages = consumer
        .batch()
        .max_messages(FETCH_AT_ONCE)
        .expires(FETCH_WAIT)
        .messages()
        .await
        .map_err(|e| ReplicateError::Transport(format!("fetch: {e}")))?;
    let mut good = Vec::new();
    let mut records: Vec<ResultRecord> = Vec::new();
    let mut count = 0usize;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| ReplicateError::Transport(format!("fetch: {e}")))?;
        count += 1;
        match ResultsMessage::parse(&message.payload) {
            Ok(parsed) => {
                note_unknown(batch.config, &parsed, batch.warned);
                records.extend(parsed.records());
                good.push(message);
            }
            Err(e) => {
                warn!(subject = %message.subject, error = %e, "a message on the results subjects is not a result; dropped");
                message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(|e| ReplicateError::Transport(format!("ack: {e}")))?;
            }
        }
    }
    if !records.is_empty() {
        let ledger = Arc::clone(batch.ledger);
        let gate = Arc::clone(batch.gate);
        let fresh = tokio::task::spawn_blocking(move || {
            let _exclusive = gate.write().unwrap_or_else(|p| p.into_inner());
            ledger.append_new(&records)
        })
        .await
        .map_err(|e| ReplicateError::Transport(format!("ledger writer failed: {e}")))??;
        debug!(
            messages = good.len(),
            new = fresh.len(),
            "stored agents' results"
        );
        if !fresh.is_empty() {
            // The recorder stopping means the daemon stops: nothing to tell.
            let _ = batch.observed.send(fresh).await;
        }
    }
    // Only now are they durable here.
    for message in good {
        message
            .ack()
            .await
            .map_err(|e| ReplicateError::Transport(format!("ack: {e}")))?;
    }
    Ok(count)
}

/// Connects and opens (creating if needed) the durable consumer of every location's results.
async fn open_consumer(spec: &ReplicationSpec) -> Result<PullConsumer, ReplicateError> {
    let context = super::connect(spec).await?;
    let stream = context
        .get_stream(&spec.stream)
        .await
        .map_err(|e| ReplicateError::JetStream {
            url: spec.nats.clone(),
            reason: e.to_string(),
        })?;
    stream
        .get_or_create_consumer(
            &spec.consumer,
            jetstream::consumer::pull::Config {
                durable_name: Some(spec.consumer.clone()),
                filter_subject: wire::all_results(&spec.stream),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| ReplicateError::JetStream {
            url: spec.nats.clone(),
            reason: format!("consumer {}: {e}", spec.consumer),
        })
}

/// Logs, once per probe and location, results this configuration will not evaluate.
fn note_unknown(
    config: &Config,
    message: &ResultsMessage,
    warned: &mut HashSet<(ProbeName, LocationName)>,
) {
    for result in &message.results {
        let known = config
            .probe_by_name(&result.probe)
            .is_some_and(|spec| spec.locations.contains(&message.location));
        if !known && warned.insert((result.probe.clone(), message.location.clone())) {
            warn!(
                probe = %result.probe,
                location = %message.location,
                "results of a probe or location this coordinator does not evaluate (no probe of that name lists the location): stored, not evaluated"
            );
        }
    }
}
