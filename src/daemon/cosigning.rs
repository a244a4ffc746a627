//! The log's side of witnessing (SPEC §9): every checkpoint the log signs goes to every
//! witness of `[evidence] witnesses`, in order, with a consistency proof from the last one
//! that witness cosigned; the cosignatures that come back are stored beside the checkpoint.
//!
//! The outbox is durable without a queue of its own: checkpoints are kept forever, and per
//! witness the ledger keeps the size it last cosigned, so after an outage or a restart the
//! sender resumes from there and every checkpoint in between is still sent (none skipped).

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::recorder::Shared;
use crate::{
    config::{Config, WitnessTarget},
    evidence::{
        cosign::{self, AddCheckpoint},
        key::PublicKey,
        merkle,
        note::Note,
    },
    ledger::Ledger,
};

/// The longest wait between attempts at a witness that fails; a new checkpoint also wakes
/// the sender, so a witness that comes back is reached within this or one checkpoint.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one add-checkpoint request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the sender looks even when nothing woke it.
const IDLE_LOOK: Duration = Duration::from_secs(60);

/// What one round of sending to a witness came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Round {
    /// Every stored checkpoint is cosigned by it.
    UpToDate,
    /// It could not be reached or refused; try again later. The reason is logged once.
    Failed(String),
}

/// Sends checkpoints to every configured witness until `cancel`; `wake` is notified when a
/// checkpoint was signed.
pub async fn run(
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .user_agent(concat!("upledger/", env!("CARGO_PKG_VERSION")))
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            warn!(error = %e, "cannot build the HTTP client for witnesses: checkpoints are not sent");
            return;
        }
    };
    // Per witness URL: consecutive failures and the reason last logged.
    let mut failing: std::collections::HashMap<String, (u32, String)> = Default::default();
    loop {
        let witnesses = config.borrow().evidence.witnesses.clone();
        let mut wait = IDLE_LOOK;
        for witness in &witnesses {
            let url = witness.url.to_string();
            let round = send_pending(&client, &shared.ledger, witness, &cancel).await;
            match round {
                Round::UpToDate => {
                    if failing.remove(&url).is_some() {
                        info!(witness = %url, "the witness cosigns again");
                    }
                }
                Round::Failed(reason) => {
                    let entry = failing.entry(url.clone()).or_insert((0, String::new()));
                    entry.0 = entry.0.saturating_add(1);
                    if entry.1 != reason {
                        warn!(witness = %url, reason = %reason, "checkpoints are not cosigned; retrying");
                        entry.1 = reason;
                    }
                    let backoff = crate::alert::dispatch::retry_delay(entry.0, 0.5);
                    wait = wait.min(backoff.min(MAX_BACKOFF));
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends the checkpoints `witness` has not cosigned yet, oldest first.
async fn send_pending(
    client: &reqwest::Client,
    ledger: &Arc<Ledger>,
    witness: &WitnessTarget,
    cancel: &CancellationToken,
) -> Round {
    let key = match PublicKey::from_openssh(&witness.key) {
        Ok(key) => key,
        Err(e) => return Round::Failed(format!("its key cannot be read: {e}")),
    };
    let url = witness.url.to_string();
    let endpoint = format!("{}/add-checkpoint", url.trim_end_matches('/'));
    // At most this many requests in one round, so a long backlog does not hold up the other
    // witnesses (the next round follows at once: the sender was not told to wait).
    for _ in 0..1000 {
        if cancel.is_cancelled() {
            return Round::UpToDate;
        }
        let next = {
            let ledger = Arc::clone(ledger);
            let url = url.clone();
            tokio::task::spawn_blocking(move || next_request(&ledger, &url)).await
        };
        let (request, size) = match next {
            Ok(Ok(Some(next))) => next,
            Ok(Ok(None)) => return Round::UpToDate,
            Ok(Err(e)) => return Round::Failed(e),
            Err(e) => return Round::Failed(e.to_string()),
        };
        let response = client
            .post(&endpoint)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(request.render())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return Round::Failed(format!("cannot reach {endpoint}: {e}")),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => return Round::Failed(format!("{endpoint}: cannot read the answer: {e}")),
        };
        let outcome = {
            let ledger = Arc::clone(ledger);
            let url = url.clone();
            tokio::task::spawn_blocking(move || {
                settle(&ledger, &url, &key, &request, size, status.as_u16(), &text)
            })
            .await
        };
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Round::Failed(reason),
            Err(e) => return Round::Failed(e.to_string()),
        }
    }
    Round::Failed("backlog: more checkpoints follow".into())
}

/// The add-checkpoint request for the oldest checkpoint the witness at `url` has not
/// cosigned, and its size; `None` when it has cosigned the newest.
fn next_request(ledger: &Ledger, url: &str) -> Result<Option<(AddCheckpoint, u64)>, String> {
    let acked = ledger.witness_acked(url).map_err(|e| e.to_string())?;
    let old = acked.unwrap_or(0);
    // A witness that has cosigned nothing gets the newest checkpoint: older ones add nothing
    // it could check. One that has gets every later one, in order.
    let found = match acked {
        None => ledger.checkpoint_at_or_before(u64::MAX),
        Some(size) => ledger.checkpoint_at_or_after(size.saturating_add(1)),
    }
    .map_err(|e| e.to_string())?;
    let Some((size, note)) = found else {
        return Ok(None);
    };
    if size <= old {
        return Ok(None);
    }
    let proof = if old == 0 {
        Vec::new()
    } else {
        merkle::consistency_proof(old, size, &crate::evidence::log::LedgerNodes(ledger))
            .map_err(|e| format!("no consistency proof from {old} to {size}: {e}"))?
    };
    Ok(Some((AddCheckpoint { old, proof, note }, size)))
}

/// Stores what the witness answered: its cosignature (200), or the size it holds (409).
fn settle(
    ledger: &Ledger,
    url: &str,
    key: &PublicKey,
    request: &AddCheckpoint,
    size: u64,
    status: u16,
    text: &str,
) -> Result<(), String> {
    match status {
        200 => {
            let cosigned = format!("{}{}", request.note, text);
            let note = Note::parse(&cosigned)
                .map_err(|e| format!("its answer is not a cosignature: {e}"))?;
            let valid = cosign::cosignatures_by(&note, key);
            if valid.is_empty() {
                return Err(format!(
                    "its answer carries no valid cosignature by {}",
                    key.fingerprint()
                ));
            }
            for line in text.lines().filter(|line| !line.is_empty()) {
                let line = format!("{line}\n");
                let Ok(one) = Note::parse(&format!("{}{line}", request.note)) else {
                    continue;
                };
                if let Some(cosignature) = cosign::cosignatures_by(&one, key).first() {
                    ledger
                        .put_cosignature(size, &cosignature.name, &line)
                        .map_err(|e| e.to_string())?;
                }
            }
            ledger
                .set_witness_acked(url, size)
                .map_err(|e| e.to_string())?;
            debug!(witness = url, size, "checkpoint cosigned");
            Ok(())
        }
        409 => {
            let held: u64 = text
                .trim()
                .parse()
                .map_err(|_| format!("409 without a size: {text:?}"))?;
            let newest = ledger
                .checkpoint_at_or_before(u64::MAX)
                .map_err(|e| e.to_string())?
                .map_or(0, |(size, _)| size);
            if held > newest {
                return Err(format!(
                    "it has cosigned a tree of {held} leaves, larger than this log's newest \
                     checkpoint ({newest}): this ledger is behind what the witness saw (a \
                     restored or forked copy?); waiting for the log to grow past it"
                ));
            }
            if held == request.old {
                return Err(format!("it answered 409 with the size sent ({held})"));
            }
            // Resume from what it holds: later checkpoints go with proofs from there.
            ledger
                .set_witness_acked(url, held)
                .map_err(|e| e.to_string())?;
            info!(
                witness = url,
                held, "the witness holds another size; resending from it"
            );
            Ok(())
        }
        _ => Err(format!(
            "it refused checkpoint {size} (HTTP {status}): {}",
            text.trim()
        )),
    }
}

/// How long a bundle waits for the witnesses to cosign the checkpoint it was anchored in.
const COSIGN_PATIENCE: Duration = Duration::from_secs(10);

/// `bundle` with the cosignatures of its checkpoint, once every configured witness has
/// cosigned it or [`COSIGN_PATIENCE`] has passed (a witness that is down does not hold up a
/// bundle for long; `verify --quorum` then says what is missing).
pub async fn await_cosignatures(
    shared: &Shared,
    config: &Arc<Config>,
    mut bundle: crate::evidence::bundle::Bundle,
) -> crate::evidence::bundle::Bundle {
    let witnesses = config.evidence.witnesses.len();
    if witnesses == 0 {
        return bundle;
    }
    let Ok(size) = bundle.tree_size() else {
        return bundle;
    };
    shared.checkpoints.notify_one();
    let deadline = tokio::time::Instant::now() + COSIGN_PATIENCE;
    loop {
        let ledger = Arc::clone(&shared.ledger);
        let count = tokio::task::spawn_blocking(move || ledger.cosignatures(size))
            .await
            .ok()
            .and_then(Result::ok)
            .map_or(0, |lines| lines.len());
        if count >= witnesses || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few small reads of the ledger, on this thread: the bundle is large, moving it to a
    // blocking thread and back buys nothing. A failure leaves it without cosignatures.
    if let Err(e) = bundle.attach_cosignatures(&shared.ledger) {
        warn!(error = %e, "cannot add cosignatures to the bundle");
    }
    bundle
}
