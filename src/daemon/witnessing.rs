//! This daemon as a witness of other logs (`[witness]`, SPEC §9): the cosigner the listener's
//! `POST /add-checkpoint` answers with, the `log_fork` alert when a log signs a history that
//! does not extend what was cosigned, and the `log_silent` watch over logs that stop sending.
//!
//! The protocol and its state live in `evidence::witness`; this module only holds the
//! cosigner for the running configuration and turns what it observes into alerts.

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::recorder::Shared;
use crate::{
    alert::{Event, EventKind},
    config::{Config, WitnessSpec},
    evidence::{
        key::{PublicKey, SigningKey},
        witness::{Answer, Witness, WitnessedLog},
    },
    ledger::ForkRecord,
    model::State,
};

/// The cosigner of the running configuration (none when it has no `[witness]`).
#[derive(Debug, Default)]
pub struct WitnessDesk {
    witness: RwLock<Option<Arc<Witness>>>,
}

impl WitnessDesk {
    /// Builds the cosigner `config` asks for; on error the old one stays.
    pub fn reload(&self, config: &Config) -> Result<(), String> {
        let witness = match &config.witness {
            Some(spec) => Some(Arc::new(build(spec)?)),
            None => None,
        };
        *self.witness.write().unwrap_or_else(PoisonError::into_inner) = witness;
        Ok(())
    }

    /// The cosigner, if this daemon witnesses any log.
    pub fn get(&self) -> Option<Arc<Witness>> {
        self.witness
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn build(spec: &WitnessSpec) -> Result<Witness, String> {
    let key = SigningKey::read_openssh(&spec.signing_key)
        .map_err(|e| format!("[witness] signing_key: {e}"))?;
    let mut logs = Vec::with_capacity(spec.logs.len());
    for log in &spec.logs {
        let key = PublicKey::from_openssh(&log.key)
            .map_err(|e| format!("[witness] log {}: {e}", log.origin))?;
        logs.push(WitnessedLog {
            origin: log.origin.clone(),
            key,
        });
    }
    Witness::new(&spec.name, key, logs).map_err(|e| format!("[witness]: {e}"))
}

/// Answers one add-checkpoint request: the status and body to send back. A first fork of a
/// log raises `log_fork` through the channels.
pub async fn add_checkpoint(shared: &Shared, config: &Arc<Config>, body: bytes::Bytes) -> Answer {
    let Some(witness) = shared.witness.get() else {
        return Answer::UnknownOrigin("this upledger witnesses no log".into());
    };
    let ledger = Arc::clone(&shared.ledger);
    let outcome = tokio::task::spawn_blocking(move || {
        witness.add_checkpoint(&ledger, &body, Timestamp::now())
    })
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    if let (Some(fork), Some(origin)) = (&outcome.fork, &outcome.origin) {
        error!(log = %origin, size = fork.size, reason = %fork.reason, "a witnessed log forked");
        let mut event = Event::new(EventKind::LogFork, None, fork.at);
        event.log = Some(origin.clone());
        event.detail = Some(fork_detail(fork));
        event.summarize();
        raise(shared, config, event).await;
    }
    outcome.answer
}

fn fork_detail(fork: &ForkRecord) -> String {
    format!(
        "it signed a checkpoint of size {} (sent as extending size {}) that does not extend \
         the one this witness cosigned: {}",
        fork.size, fork.old, fork.reason
    )
}

/// Stores `event` in the outbox and wakes delivery.
async fn raise(shared: &Shared, config: &Arc<Config>, event: Event) {
    let ledger = Arc::clone(&shared.ledger);
    let config = Arc::clone(config);
    let queued = tokio::task::spawn_blocking(move || {
        let mut events = [event];
        crate::alert::queue(&config, &ledger, &mut events, Timestamp::now())
    })
    .await;
    match queued {
        Ok(Ok(_)) => shared.alerts.notify_one(),
        Ok(Err(e)) => error!(error = %e, "cannot store a witness alert"),
        Err(e) => error!(error = %e, "cannot store a witness alert"),
    }
}

/// Checks every witnessed log's silence now: `log_silent` once when a log has sent nothing
/// for `[witness] silence` (counted from `started` when it never sent anything), and again
/// (state up) once it sends.
pub async fn check_silence(shared: &Shared, config: &Arc<Config>, started: Timestamp) {
    let Some(spec) = config.witness.clone() else {
        return;
    };
    let silence = SignedDuration::try_from(spec.silence).unwrap_or(SignedDuration::MAX);
    let ledger = Arc::clone(&shared.ledger);
    let now = Timestamp::now();
    let found = tokio::task::spawn_blocking(move || {
        let mut changes = Vec::new();
        for log in &spec.logs {
            let last = ledger.last_heard(&log.origin)?;
            let alerted = ledger.silent_alerted(&log.origin)?;
            let since = last.unwrap_or(started);
            let silent = now.duration_since(since) > silence;
            if silent != alerted {
                ledger.set_silent_alerted(&log.origin, silent)?;
                changes.push((log.origin.clone(), silent, last, since));
            }
        }
        Ok::<_, crate::ledger::LedgerError>(changes)
    })
    .await;
    let changes = match found {
        Ok(Ok(changes)) => changes,
        Ok(Err(e)) => {
            error!(error = %e, "cannot read the witnessed logs' state");
            return;
        }
        Err(e) => {
            error!(error = %e, "cannot read the witnessed logs' state");
            return;
        }
    };
    for (origin, silent, last, since) in changes {
        let mut event = Event::new(EventKind::LogSilent, None, now);
        event.log = Some(origin.clone());
        event.state = Some(if silent { State::Down } else { State::Up });
        event.since = Some(since);
        event.detail = Some(match (silent, last) {
            (true, Some(last)) => format!("last checkpoint at {last}"),
            (true, None) => format!("no checkpoint since the witness started at {started}"),
            (false, _) => format!("checkpoint received at {since}"),
        });
        event.summarize();
        if silent {
            warn!(log = %origin, since = %since, "a witnessed log is silent");
        } else {
            info!(log = %origin, "a witnessed log sends checkpoints again");
        }
        raise(shared, config, event).await;
    }
}

/// How often silence is checked, at most.
const SILENCE_LOOK: Duration = Duration::from_secs(30);

/// Checks silence until `cancel`: every quarter of the configured silence, at most every
/// [`SILENCE_LOOK`].
pub async fn silence_forever(
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    cancel: CancellationToken,
    started: Timestamp,
) {
    loop {
        let current = Arc::clone(&config.borrow());
        let every = current.witness.as_ref().map_or(SILENCE_LOOK, |w| {
            (w.silence / 4).clamp(Duration::from_millis(200), SILENCE_LOOK)
        });
        check_silence(&shared, &current, started).await;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
