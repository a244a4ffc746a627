//! The one task that owns ledger writes: it applies the sentinel rule, feeds each probe's state
//! machine, publishes live status, and appends results in group commits.
//!
//! A result is *written* only once the group commit holding it has been flushed; only then is
//! it logged as written and visible to queries (they take the read side of [`WriteGate`], the
//! commit holds the write side), so nothing a user saw is lost by `kill -9`.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use super::{lag::LagHistogram, schedule::Scheduled};
use crate::{
    alert::{self, Alerter, Event, Seen},
    config::Config,
    ledger::{Ledger, LedgerError, ResultRecord},
    model::{NameMap, Outcome, ProbeName, State},
    query::{self, LastCheck, ProbeStatus, QueryError},
    threshold::Tracker,
};

/// Longest a result waits for its group commit.
const COMMIT_WINDOW: Duration = Duration::from_millis(250);
/// Most results in one group commit.
const MAX_BATCH: usize = 4096;
/// Most results taken from the queue at once.
const RECEIVE_AT_ONCE: usize = 256;
/// First delay before retrying a failed commit; doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// Readers take the read side to see only flushed results; a group commit holds the write side
/// from its first write until its flush returns.
pub type WriteGate = Arc<RwLock<()>>;

/// Live status of every scheduled probe, for the socket and `status`.
pub type StatusBoard = Arc<RwLock<NameMap<ProbeStatus>>>;

/// Counters the daemon reports (systemd STATUS, logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Results durably written since start.
    pub written: u64,
    /// Probes currently down.
    pub down: usize,
}

/// State the recorder shares with the rest of the daemon.
#[derive(Clone)]
pub struct Shared {
    /// The ledger.
    pub ledger: Arc<Ledger>,
    /// See [`WriteGate`].
    pub gate: WriteGate,
    /// See [`StatusBoard`].
    pub board: StatusBoard,
    /// Notified when alerts are stored in the outbox, to wake their delivery.
    pub alerts: Arc<tokio::sync::Notify>,
    /// How late checks started, for `/metrics`.
    pub lag: Arc<LagHistogram>,
}

/// The recorder task's state.
pub struct Recorder {
    shared: Shared,
    config: watch::Receiver<Arc<Config>>,
    counts: watch::Sender<Counts>,
    trackers: NameMap<Tracker>,
    /// Whether the sentinel's newest result was a failure.
    monitor_offline: bool,
    alerter: Alerter,
    /// Alerts raised by results of the batch being gathered; stored with its commit.
    events: Vec<Event>,
}

impl Recorder {
    /// A recorder whose state machines are rebuilt from the ledger ([`query::resume`]), exactly
    /// as they stood, so a restart neither forgets an outage, nor moves its start, nor invents
    /// a new one.
    pub fn new(
        shared: Shared,
        config: watch::Receiver<Arc<Config>>,
        counts: watch::Sender<Counts>,
    ) -> Result<Self, LedgerError> {
        let mut recorder = Recorder {
            shared,
            config,
            counts,
            trackers: NameMap::default(),
            monitor_offline: false,
            alerter: Alerter::default(),
            events: Vec::new(),
        };
        let config = Arc::clone(&recorder.config.borrow());
        recorder.sync_with(&config)?;
        Ok(recorder)
    }

    /// Adds trackers for new probes (replayed from the ledger), updates thresholds of kept
    /// ones and forgets removed ones.
    fn sync_with(&mut self, config: &Config) -> Result<(), LedgerError> {
        let now = Timestamp::now();
        self.trackers
            .retain(|name, _| config.probe_by_name(name).is_some_and(|p| p.enabled));
        let previous = self
            .shared
            .board
            .write()
            .map(|mut board| std::mem::take(&mut *board))
            .unwrap_or_default();
        let mut board = NameMap::with_capacity_and_hasher(config.probes.len(), Default::default());
        for spec in config.probes.iter().filter(|p| p.enabled) {
            match self.trackers.get_mut(&spec.name) {
                Some(tracker) => tracker.set_thresholds(query::thresholds(spec)),
                None => {
                    let tracker =
                        query::resume(&self.shared.ledger, spec, now).map_err(|e| match e {
                            QueryError::Ledger(e) => e,
                            other => LedgerError::sink(other.to_string()),
                        })?;
                    if config.daemon.sentinel.as_ref() != Some(&spec.name) {
                        self.alerter.resume(&spec.name, tracker.state(), now);
                    }
                    self.trackers.insert(spec.name.clone(), tracker);
                    let records = self.shared.ledger.last_results(&spec.name, 1)?;
                    let last = records.last().map(LastCheck::from);
                    let status =
                        query::probe_status(spec, self.trackers.get(&spec.name), last, now);
                    board.insert(spec.name.clone(), status);
                    continue;
                }
            }
            let kept = previous.get(&spec.name);
            let last = kept.and_then(|status| status.last.clone());
            let mut status = query::probe_status(spec, self.trackers.get(&spec.name), last, now);
            status.checks_since_start = kept.map_or(0, |status| status.checks_since_start);
            board.insert(spec.name.clone(), status);
        }
        if let Ok(mut shared) = self.shared.board.write() {
            *shared = board;
        }
        Ok(())
    }

    /// Runs until every sender of `results` is gone, then commits what is left.
    pub async fn run(mut self, mut results: mpsc::Receiver<Scheduled>) {
        let mut batch: Vec<ResultRecord> = Vec::with_capacity(MAX_BATCH);
        // Results are taken from the queue as many as are there, not one per wakeup: checks
        // finish in bursts (see `schedule::PHASE_SLOT`).
        let mut received: Vec<Scheduled> = Vec::with_capacity(RECEIVE_AT_ONCE);
        loop {
            let open = tokio::select! {
                count = results.recv_many(&mut received, RECEIVE_AT_ONCE) => count > 0,
                changed = self.config.changed() => {
                    if changed.is_ok() {
                        let config = Arc::clone(&self.config.borrow_and_update());
                        if let Err(e) = self.sync_with(&config) {
                            error!(error = %e, "cannot rebuild probe states after reload");
                        }
                    }
                    continue;
                }
            };
            if !open {
                break;
            }
            self.process_all(&mut received, &mut batch);
            let window = tokio::time::sleep(COMMIT_WINDOW);
            tokio::pin!(window);
            let mut closed = false;
            while batch.len() < MAX_BATCH {
                let room = (MAX_BATCH - batch.len()).min(RECEIVE_AT_ONCE);
                tokio::select! {
                    count = results.recv_many(&mut received, room) => {
                        if count == 0 {
                            closed = true;
                            break;
                        }
                        self.process_all(&mut received, &mut batch);
                    }
                    () = &mut window => break,
                }
            }
            self.commit(&mut batch).await;
            if closed {
                break;
            }
        }
        self.commit(&mut batch).await;
    }

    fn process_all(&mut self, received: &mut Vec<Scheduled>, batch: &mut Vec<ResultRecord>) {
        for scheduled in received.drain(..) {
            batch.push(self.process(scheduled));
        }
    }

    /// Applies the sentinel rule, feeds the state machine and the status board.
    fn process(&mut self, scheduled: Scheduled) -> ResultRecord {
        let mut record = ResultRecord::from(&scheduled.result);
        let config = Arc::clone(&self.config.borrow());
        let sentinel = config.daemon.sentinel.as_ref();
        if sentinel == Some(&record.probe) {
            let offline = record.outcome == Outcome::Down;
            if offline != self.monitor_offline {
                if offline {
                    warn!(sentinel = %record.probe, detail = %record.detail, "monitor offline: failures of other probes are recorded as unknown");
                } else {
                    info!(sentinel = %record.probe, "monitor back online");
                }
            }
            self.monitor_offline = offline;
        } else if self.monitor_offline && record.outcome == Outcome::Down {
            // The monitor's own outage must not be billed to the target (SPEC §3).
            record.outcome = Outcome::Unknown;
            record.detail = format!(
                "monitor offline (sentinel {} down): {}",
                sentinel.map(ProbeName::as_str).unwrap_or("?"),
                record.detail
            );
        }
        let lag = scheduled
            .started
            .saturating_duration_since(scheduled.planned);
        self.shared.lag.record(lag);
        if lag > Duration::from_secs(1) {
            debug!(probe = %record.probe, lag_ms = lag.as_millis() as u64, "check started late");
        }
        let transition = self
            .trackers
            .get_mut(&record.probe)
            .and_then(|tracker| tracker.observe(&query::observation(&record)));
        if let Some(t) = &transition {
            match &t.cause {
                Some((class, detail)) => warn!(
                    probe = %record.probe, from = %t.from, to = %t.to, since = %t.since,
                    class = %class, detail = %detail, "state changed"
                ),
                None => info!(
                    probe = %record.probe, from = %t.from, to = %t.to, since = %t.since,
                    "state changed"
                ),
            }
        }
        if let Some(spec) = config.probe_by_name(&record.probe) {
            let tracker = self.trackers.get(&record.probe);
            let seen = Seen {
                spec,
                is_sentinel: sentinel == Some(&record.probe),
                result: &scheduled.result,
                transition: transition.as_ref(),
                state: tracker.map_or((State::Unknown, None), |t| (t.state(), t.since())),
            };
            let raised = self.alerter.observe(seen, Timestamp::now());
            self.events.extend(raised);
            let last = LastCheck::from(&record);
            if let Ok(mut board) = self.shared.board.write() {
                match board.get_mut(&record.probe) {
                    // In place: no new name strings per result.
                    Some(status) => query::update_status(status, tracker, last),
                    None => {
                        let status =
                            query::probe_status(spec, tracker, Some(last), Timestamp::now());
                        board.insert(record.probe.clone(), status);
                    }
                }
            }
        }
        record
    }

    /// Appends and flushes `batch`, retrying until it succeeds: results are never dropped.
    async fn commit(&mut self, batch: &mut Vec<ResultRecord>) {
        if batch.is_empty() {
            return;
        }
        let mut delay = FIRST_RETRY_DELAY;
        let records = Arc::new(std::mem::take(batch));
        // Alerts are stored before the results that raised them: once the results are
        // written, a restart replays the state and would not raise them again.
        let mut events = std::mem::take(&mut self.events);
        let alerting = !events.is_empty();
        loop {
            let shared = self.shared.clone();
            let to_write = Arc::clone(&records);
            let mut to_queue = std::mem::take(&mut events);
            let config = Arc::clone(&self.config.borrow());
            let written = tokio::task::spawn_blocking(move || {
                if !to_queue.is_empty() {
                    alert::queue(&config, &shared.ledger, &mut to_queue, Timestamp::now())
                        .map_err(|e| (e, to_queue))?;
                }
                let _exclusive = shared.gate.write().unwrap_or_else(|p| p.into_inner());
                shared.ledger.append(&to_write).map_err(|e| (e, Vec::new()))
            })
            .await;
            match written {
                Ok(Ok(())) => break,
                Ok(Err((e, unqueued))) => {
                    // Alerts not stored yet go with the retry; stored ones never twice.
                    events = unqueued;
                    error!(error = %e, results = records.len(), retry_in = ?delay, "cannot write results; retrying");
                }
                Err(e) => {
                    error!(error = %e, results = records.len(), retry_in = ?delay, "ledger writer failed; retrying")
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
        if alerting {
            self.shared.alerts.notify_one();
        }
        let newest = records.iter().map(|r| r.at).max();
        debug!(results = records.len(), newest = ?newest, "written");
        let down = self
            .trackers
            .values()
            .filter(|t| t.state() == crate::model::State::Down)
            .count();
        self.counts.send_modify(|c| {
            c.written += records.len() as u64;
            c.down = down;
        });
        if let Ok(mut reuse) = Arc::try_unwrap(records) {
            reuse.clear();
            *batch = reuse;
        }
    }
}
